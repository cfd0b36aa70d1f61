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

  it('uses the configured pocketsphinx model folder', async () => {
    const providers = createLocalProviders({ pocketsphinxModelDir: '/nonexistent/model' });
    await expect(providers.stt.transcribe({ samples: new Int16Array(1600).fill(1000), sampleRateHz: 16000 })).rejects.toBeInstanceOf(DependencyError);
  });
});

describe('checkLocalTools', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env.ESPEAK_NG_PATH = saved.ESPEAK_NG_PATH;
    process.env.POCKETSPHINX_PATH = saved.POCKETSPHINX_PATH;
    if (saved.ESPEAK_NG_PATH === undefined) delete process.env.ESPEAK_NG_PATH;
    if (saved.POCKETSPHINX_PATH === undefined) delete process.env.POCKETSPHINX_PATH;
  });

  it('passes with espeak-ng, pocketsphinx_continuous and the model installed', async () => {
    await expect(checkLocalTools()).resolves.toBeUndefined();
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
