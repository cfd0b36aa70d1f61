import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config.js';

const BASE = { VOICETWIN_DATA_DIR: '/tmp/vt-config-el', LOG_LEVEL: 'silent' };

describe('elevenlabs-agent configuration', () => {
  it('is off without ELEVENLABS_AGENT_ID', () => {
    expect(loadConfig(BASE).elevenlabsAgent).toBeUndefined();
  });

  it('reads every variable with its default', () => {
    const config = loadConfig({ ...BASE, ELEVENLABS_API_KEY: 'xi-key', ELEVENLABS_AGENT_ID: 'agent_01abc', ELEVENLABS_POST_CALL_SECRET: 'wsec_1' });
    expect(config.elevenlabsAgent).toEqual({
      agentId: 'agent_01abc',
      initiationSecretHeader: 'x-voicetwin-secret',
      postCallSecret: 'wsec_1',
      cloneCacheSec: 86_400,
      deleteCloneAfterCall: false,
      cloneMinSpeechSec: 10,
      memoryCount: 3,
    });
    const custom = loadConfig({
      ...BASE, ELEVENLABS_API_KEY: 'xi-key', ELEVENLABS_AGENT_ID: 'agent_01abc', ELEVENLABS_CLONE_CACHE_H: '2', ELEVENLABS_DELETE_CLONE_AFTER_CALL: 'true',
      ELEVENLABS_INITIATION_SECRET: 'a'.repeat(32), ELEVENLABS_INITIATION_SECRET_HEADER: 'X-My-Secret', PHONE_HOLD_AUDIO_URL: '/hold.mp3',
    });
    expect(custom.elevenlabsAgent).toMatchObject({ cloneCacheSec: 7200, deleteCloneAfterCall: true, initiationSecret: 'a'.repeat(32), initiationSecretHeader: 'x-my-secret', holdAudioUrl: '/hold.mp3' });
  });

  it.each([
    [{ ELEVENLABS_AGENT_ID: 'agent_01abc' }, 'ELEVENLABS_AGENT_ID'],
    [{ ELEVENLABS_API_KEY: 'k', ELEVENLABS_AGENT_ID: 'agent 01' }, 'ELEVENLABS_AGENT_ID'],
    [{ ELEVENLABS_API_KEY: 'k', ELEVENLABS_AGENT_ID: 'agent_01', ELEVENLABS_INITIATION_SECRET: 'short' }, 'ELEVENLABS_INITIATION_SECRET'],
    [{ ELEVENLABS_API_KEY: 'k', ELEVENLABS_AGENT_ID: 'agent_01', ELEVENLABS_CLONE_CACHE_H: 'soon' }, 'ELEVENLABS_CLONE_CACHE_H'],
    [{ ELEVENLABS_API_KEY: 'k', ELEVENLABS_AGENT_ID: 'agent_01', ELEVENLABS_DELETE_CLONE_AFTER_CALL: 'maybe' }, 'ELEVENLABS_DELETE_CLONE_AFTER_CALL'],
    [{ ELEVENLABS_API_KEY: 'k', ELEVENLABS_AGENT_ID: 'agent_01', PHONE_HOLD_AUDIO_URL: 'ftp://x/hold.mp3' }, 'PHONE_HOLD_AUDIO_URL'],
  ])('refuses %o naming %s', (env, variable) => {
    let error: unknown;
    try {
      loadConfig({ ...BASE, ...env });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(variable);
  });
});
