import { describe, expect, it } from 'vitest';
import { ConfigError, enabledChannels, loadConfig } from '../../src/config.js';

describe('loadConfig', () => {
  it('gives the documented defaults with an empty environment', () => {
    const c = loadConfig({}, '/srv/vt');
    expect(c.dataDir).toBe('/srv/vt/data');
    expect(c.limits).toEqual({ maxAudioBytes: 20 * 1024 * 1024, maxTurnAudioSec: 600, maxSampleAudioSec: 180, maxTextChars: 4000, replyMaxChars: 600 });
    expect(c.providers.stt).toEqual(['local']);
    expect(c.providers.tts).toEqual(['local']);
    expect(c.engine.defaultPersona).toBe('supportive');
    expect(c.redisUrl).toBeUndefined();
    expect(enabledChannels(c)).toEqual([]);
  });

  it('reads OFFLINE_TTS: flite by default, espeak-ng on request, a clear error otherwise', () => {
    expect(loadConfig({}).providers.offlineTts).toBe('flite');
    expect(loadConfig({ OFFLINE_TTS: '' }).providers.offlineTts).toBe('flite');
    expect(loadConfig({ OFFLINE_TTS: ' Flite ' }).providers.offlineTts).toBe('flite');
    expect(loadConfig({ OFFLINE_TTS: 'eSpeak-NG' }).providers.offlineTts).toBe('espeak-ng');
    expect(loadConfig({ OFFLINE_TTS: 'espeak' }).providers.offlineTts).toBe('espeak-ng');
    const err = (() => {
      try {
        loadConfig({ OFFLINE_TTS: 'rhvoice' });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe('OFFLINE_TTS');
    expect((err as Error).message).toBe('OFFLINE_TTS: expected flite or espeak-ng, got "rhvoice"');
  });

  it('reads the reply fidelity check settings, off by default', () => {
    expect(loadConfig({}).engine).toMatchObject({ verifyReplies: false, verifyMaxWer: 0.5 });
    expect(loadConfig({ VERIFY_REPLIES: 'true', VERIFY_REPLIES_MAX_WER: '0.3' }).engine).toMatchObject({ verifyReplies: true, verifyMaxWer: 0.3 });
    expect(() => loadConfig({ VERIFY_REPLIES: 'maybe' })).toThrow(/^VERIFY_REPLIES: expected true or false/);
    expect(() => loadConfig({ VERIFY_REPLIES_MAX_WER: '5' })).toThrow(ConfigError);
  });

  it('orders configured cloud providers before the offline stack', () => {
    const c = loadConfig({ ELEVENLABS_API_KEY: 'k', GEMINI_API_KEY: 'g' });
    expect(c.providers.stt).toEqual(['elevenlabs', 'gemini', 'local']);
    expect(c.providers.chat).toEqual(['gemini', 'local']);
    expect(c.providers.tts).toEqual(['elevenlabs', 'local']);
  });

  it.each([
    [{ MAX_AUDIO_BYTES: 'lots' }, 'MAX_AUDIO_BYTES'],
    [{ MAX_TURN_AUDIO_SEC: '-5' }, 'MAX_TURN_AUDIO_SEC'],
    [{ DEFAULT_PERSONA: 'grumpy' }, 'DEFAULT_PERSONA'],
    [{ REDIS_URL: 'http://localhost' }, 'REDIS_URL'],
    [{ TELEGRAM_BOT_TOKEN: 'nope' }, 'TELEGRAM_BOT_TOKEN'],
    [{ DISCORD_TOKEN: 'x' }, 'DISCORD_APPLICATION_ID'],
    [{ TTS_PROVIDERS: 'elevenlabs,local' }, 'TTS_PROVIDERS'],
    [{ TTS_PROVIDERS: 'acme' }, 'TTS_PROVIDERS'],
    [{ OPERATORS: 'telegram' }, 'OPERATORS'],
    [{ WHATSAPP_ENABLED: 'maybe' }, 'WHATSAPP_ENABLED'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
  ])('refuses %o naming the variable', (env, variable) => {
    let caught: unknown;
    try {
      loadConfig(env);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).variable).toBe(variable);
    expect((caught as ConfigError).message).toContain(variable);
  });

  it('resolves VOICETWIN_DATA_KEY_FILE, refusing a path inside the data dir or alongside VOICETWIN_DATA_KEY', () => {
    const c = loadConfig({ VOICETWIN_DATA_KEY_FILE: 'secrets/data-key' }, '/srv/vt');
    expect(c.dataKeyFile).toBe('/srv/vt/secrets/data-key');
    expect(c.dataKey).toBeUndefined();
    expect(loadConfig({ VOICETWIN_DATA_KEY_FILE: '/run/secrets/vt', VOICETWIN_DATA_DIR: '/srv/vt/data' }).dataKeyFile).toBe('/run/secrets/vt');
    expect(() => loadConfig({ VOICETWIN_DATA_KEY_FILE: 'data/key' }, '/srv/vt')).toThrow(
      /^VOICETWIN_DATA_KEY_FILE: \(\/srv\/vt\/data\/key\) lies inside the data directory \/srv\/vt\/data;.*VOICETWIN_DATA_KEY\./,
    );
    expect(() => loadConfig({ VOICETWIN_DATA_KEY_FILE: '/srv/vt/data', VOICETWIN_DATA_DIR: '/srv/vt/data' })).toThrow(ConfigError);
    expect(() => loadConfig({ VOICETWIN_DATA_KEY_FILE: '/run/secrets/vt', VOICETWIN_DATA_KEY: 'a'.repeat(64) })).toThrow(/not both/);
  });

  it('requires a configured data key with Redis', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' })).toThrow(/^VOICETWIN_DATA_KEY: REDIS_URL is set, so the data key must come from VOICETWIN_DATA_KEY or VOICETWIN_DATA_KEY_FILE/);
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', VOICETWIN_DATA_KEY: 'a'.repeat(64) }).redisUrl).toBe('redis://127.0.0.1:6379');
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', VOICETWIN_DATA_KEY_FILE: '/run/secrets/vt' }).dataKeyFile).toBe('/run/secrets/vt');
  });

  it('masks credentials of a bad Redis URL in the message', () => {
    expect(() => loadConfig({ REDIS_URL: 'http://user:hunter2@host' })).toThrow(/\*\*\*@host/);
    expect(() => loadConfig({ REDIS_URL: 'http://user:hunter2@host' })).not.toThrow(/hunter2/);
  });

  it('enables bots from their variables', () => {
    const c = loadConfig({
      TELEGRAM_BOT_TOKEN: '123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ',
      DISCORD_TOKEN: 't',
      DISCORD_APPLICATION_ID: '123456789012345678',
      WHATSAPP_ENABLED: 'true',
      OPERATORS: 'telegram:1, discord:2',
    });
    expect(enabledChannels(c)).toEqual(['telegram', 'discord', 'whatsapp']);
    expect(c.telegram?.webhookPort).toBe(8443);
    expect(c.operators).toEqual(['telegram:1', 'discord:2']);
  });
});
