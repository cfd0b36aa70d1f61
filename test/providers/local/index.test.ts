import { afterEach, describe, expect, it } from 'vitest';
import { DependencyError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/log.js';
import { checkLocalTools, createLocalProviders } from '../../../src/providers/local/index.js';

describe('createLocalProviders', () => {
  it('assembles the offline stack with the configured threshold', () => {
    const providers = createLocalProviders({ minSpeechSec: 12, logger: silentLogger });
    expect(providers.stt.name).toBe('pocketsphinx');
    expect(providers.stt.reliable).toBe(false);
    expect(providers.chat.name).toBe('template');
    expect(providers.cloner.name).toBe('local');
    expect(providers.cloner.minSpeechSec).toBe(12);
    expect(providers.tts.name).toBe('local');
    expect(createLocalProviders().cloner.minSpeechSec).toBe(20);
  });

  it('speaks English with flite by default and with espeak-ng when the engine option (OFFLINE_TTS in the config) says so', async () => {
    const rate = async (engine?: 'flite' | 'espeak-ng'): Promise<number> => {
      const out = await createLocalProviders(engine ? { engine } : {}).tts.synthesize({ text: 'Hello there.' });
      return out.bytes.readUInt32LE(24);
    };
    expect(await rate()).toBe(16000);
    expect(await rate('espeak-ng')).toBe(22050);
    // The variable is the config's business: the providers do not read the environment.
    const saved = process.env.OFFLINE_TTS;
    try {
      process.env.OFFLINE_TTS = 'espeak-ng';
      expect(await rate()).toBe(16000);
    } finally {
      if (saved === undefined) delete process.env.OFFLINE_TTS;
      else process.env.OFFLINE_TTS = saved;
    }
  });

  it('uses the configured pocketsphinx model folder', async () => {
    const providers = createLocalProviders({ pocketsphinxModelDir: '/nonexistent/model' });
    await expect(providers.stt.transcribe({ samples: new Int16Array(1600).fill(1000), sampleRateHz: 16000 })).rejects.toBeInstanceOf(DependencyError);
  });
});

describe('checkLocalTools', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const name of ['ESPEAK_NG_PATH', 'POCKETSPHINX_PATH', 'FLITE_PATH'] as const) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  });

  it('passes with flite, espeak-ng, pocketsphinx_continuous and the model installed', async () => {
    await expect(checkLocalTools()).resolves.toEqual({ flite: true });
  });

  it('reports a missing flite with a warning instead of failing (espeak-ng is the fallback)', async () => {
    process.env.FLITE_PATH = '/nonexistent/flite';
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (message: unknown) => void warnings.push(String(message)) } as unknown as typeof silentLogger;
    await expect(checkLocalTools({ logger })).resolves.toEqual({ flite: false });
    expect(warnings.join('\n')).toMatch(/falls back to espeak-ng.*apt-get install flite/);
  });

  it('names the missing tool and how to install it', async () => {
    process.env.ESPEAK_NG_PATH = '/nonexistent/espeak-ng';
    await expect(checkLocalTools()).rejects.toThrow(/espeak-ng is not available: install espeak-ng: `apt-get install espeak-ng`/);
    delete process.env.ESPEAK_NG_PATH;
    process.env.POCKETSPHINX_PATH = '/nonexistent/pocketsphinx_continuous';
    await expect(checkLocalTools()).rejects.toThrow(/pocketsphinx_continuous is not available: install pocketsphinx and its US English model: `apt-get install pocketsphinx pocketsphinx-en-us`/);
    delete process.env.POCKETSPHINX_PATH;
    // A binary that runs but is not the tool.
    process.env.POCKETSPHINX_PATH = '/bin/true';
    await expect(checkLocalTools()).rejects.toBeInstanceOf(DependencyError);
    delete process.env.POCKETSPHINX_PATH;
    await expect(checkLocalTools({ pocketsphinxModelDir: '/nonexistent/model' })).rejects.toThrow(/pocketsphinx model/);
  });
});
