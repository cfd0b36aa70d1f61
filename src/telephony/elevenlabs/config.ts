/**
 * Environment variables of the `elevenlabs-agent` phone mode (listed in `.env.example` and
 * docs/telephony-elevenlabs.md). Parsed by `loadConfig` into `Config.elevenlabsAgent`.
 */
import { ConfigError } from '../../config.js';

/** Default name of the secret header of the initiation webhook. */
export const DEFAULT_INITIATION_SECRET_HEADER = 'x-voicetwin-secret';

/** The validated settings. Durations in seconds. */
export interface ElevenLabsAgentConfig {
  /** ELEVENLABS_AGENT_ID: the agent that answers (`agent_…`). */
  agentId: string;
  /** ELEVENLABS_INITIATION_SECRET: value of the pre-call webhook's secret header. */
  initiationSecret?: string;
  /** ELEVENLABS_INITIATION_SECRET_HEADER (default `x-voicetwin-secret`). */
  initiationSecretHeader: string;
  /** ELEVENLABS_POST_CALL_SECRET: HMAC secret of the post-call webhook (`wsec_…`). */
  postCallSecret?: string;
  /** ELEVENLABS_CLONE_CACHE_H (default 24) in seconds: lifetime of a temporary clone. */
  cloneCacheSec: number;
  /** ELEVENLABS_DELETE_CLONE_AFTER_CALL (default false): delete a temporary clone right after the call. */
  deleteCloneAfterCall: boolean;
  /** ELEVENLABS_CALL_CLONE_MIN_SPEECH_SEC (default 10): speech needed for a temporary clone. */
  cloneMinSpeechSec: number;
  /** ELEVENLABS_CALL_MEMORIES (default 3): memories sent with each call. */
  memoryCount: number;
  /** PHONE_HOLD_AUDIO_URL: hold audio while the voice is prepared (silence when unset). */
  holdAudioUrl?: string;
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function number(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || value < min || value > max) throw new ConfigError(name, `expected a number from ${min} to ${max}, got "${raw}"`);
  return value;
}

/**
 * @returns undefined when ELEVENLABS_AGENT_ID is not set (the mode is off)
 * @throws ConfigError naming the variable: the agent id without ELEVENLABS_API_KEY, a malformed
 *   agent id, header name, number, boolean or URL
 */
export function loadElevenLabsAgentConfig(env: Env): ElevenLabsAgentConfig | undefined {
  const agentId = str(env, 'ELEVENLABS_AGENT_ID');
  if (agentId === undefined) return undefined;
  if (!str(env, 'ELEVENLABS_API_KEY')) throw new ConfigError('ELEVENLABS_AGENT_ID', 'is set but ELEVENLABS_API_KEY is not');
  if (!/^[\w-]{4,128}$/.test(agentId)) throw new ConfigError('ELEVENLABS_AGENT_ID', `expected an agent id like agent_01jz…, got "${agentId.slice(0, 40)}"`);
  const header = (str(env, 'ELEVENLABS_INITIATION_SECRET_HEADER') ?? DEFAULT_INITIATION_SECRET_HEADER).toLowerCase();
  if (!/^[a-z0-9-]{1,64}$/.test(header)) throw new ConfigError('ELEVENLABS_INITIATION_SECRET_HEADER', `expected a header name (letters, digits, dashes), got "${header.slice(0, 40)}"`);
  const initiationSecret = str(env, 'ELEVENLABS_INITIATION_SECRET');
  if (initiationSecret !== undefined && initiationSecret.length < 16) throw new ConfigError('ELEVENLABS_INITIATION_SECRET', 'expected at least 16 characters (openssl rand -hex 32)');
  const deleteRaw = str(env, 'ELEVENLABS_DELETE_CLONE_AFTER_CALL') ?? 'false';
  if (!/^(true|false|1|0|yes|no|on|off)$/i.test(deleteRaw)) throw new ConfigError('ELEVENLABS_DELETE_CLONE_AFTER_CALL', `expected true or false, got "${deleteRaw}"`);
  const holdAudioUrl = str(env, 'PHONE_HOLD_AUDIO_URL');
  if (holdAudioUrl !== undefined && !/^(https?:\/\/|\/)/.test(holdAudioUrl)) throw new ConfigError('PHONE_HOLD_AUDIO_URL', 'expected an http(s) URL or a path on our server starting with /');
  const postCallSecret = str(env, 'ELEVENLABS_POST_CALL_SECRET');
  return {
    agentId,
    ...(initiationSecret !== undefined ? { initiationSecret } : {}),
    initiationSecretHeader: header,
    ...(postCallSecret !== undefined ? { postCallSecret } : {}),
    cloneCacheSec: number(env, 'ELEVENLABS_CLONE_CACHE_H', 24, 0.01, 24 * 30) * 3600,
    deleteCloneAfterCall: /^(true|1|yes|on)$/i.test(deleteRaw),
    cloneMinSpeechSec: number(env, 'ELEVENLABS_CALL_CLONE_MIN_SPEECH_SEC', 10, 1, 600),
    memoryCount: number(env, 'ELEVENLABS_CALL_MEMORIES', 3, 0, 20),
    ...(holdAudioUrl !== undefined ? { holdAudioUrl } : {}),
  };
}
