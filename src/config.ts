/**
 * The environment (and an optional `.env`) parsed into one typed, validated {@link Config}.
 * A bad value stops start-up with a {@link ConfigError} naming the variable. Every variable and its
 * default is listed in `.env.example`.
 */
import path from 'node:path';
import { z } from 'zod';
import type { Channel } from './core/types.js';
import { PERSONA_NAMES, type PersonaName } from './core/personas.js';
import type { EngineLimits, EngineSettings } from './core/engine.js';
import { defaultAudioWorkerThreads } from './core/audio/workers.js';
import { isInsideDir, keyFileInsideDataDirMessage } from './core/store/data-key.js';
import type { OfflineTtsEngine } from './providers/local/synthesizer.js';
import { loadElevenLabsAgentConfig, type ElevenLabsAgentConfig } from './telephony/elevenlabs/config.js';

/** A configuration problem; `variable` names the environment variable at fault. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

/** Provider names that may appear in the `*_PROVIDERS` lists. */
export const PROVIDER_NAMES = ['elevenlabs', 'replicate', 'gemini', 'local'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** The validated configuration. Durations in seconds, sizes in bytes. */
export interface Config {
  dataDir: string;
  /** VOICETWIN_DATA_KEY as given (hex or base64 of 32 bytes). */
  dataKey?: string;
  /**
   * VOICETWIN_DATA_KEY_FILE resolved to an absolute path outside the data dir. With neither this
   * nor `dataKey`, the key lives in `<dataDir>/data.key` (SQLite only; warned about at every start).
   */
  dataKeyFile?: string;
  redisUrl?: string;
  /** Key prefix in Redis, so several deployments can share one server (REDIS_NAMESPACE). */
  redisNamespace: string;
  log: { level: string; pretty: boolean };
  /** What the engine accepts and says (bytes, seconds, characters). */
  limits: EngineLimits;
  /**
   * Engine settings from DEFAULT_PERSONA, ENROLL_MIN_SPEECH_SEC, INSIGHT_EVERY, MEMORY_EVERY,
   * TURN_CONCURRENCY, CLONE_TIMEOUT_S, CHAT_SEED, VERIFY_REPLIES and VERIFY_REPLIES_MAX_WER
   * (documented on {@link EngineSettings}).
   */
  engine: Omit<EngineSettings, 'limits' | 'operators' | 'voiceSampleRateHz'>;
  providers: {
    stt: ProviderName[];
    chat: ProviderName[];
    tts: ProviderName[];
    clone: ProviderName[];
    pocketsphinxModelDir: string;
    /** `MEMORY_RETRIEVAL`: `auto` (by meaning with Gemini embeddings when a Gemini key is set, else words) or `words`. */
    memoryRetrieval: 'auto' | 'words';
    /**
     * OFFLINE_TTS: the offline voice engine for English, `flite` (default; CMU Flite, Debian main)
     * or `espeak-ng` (`espeak` accepted; case-insensitive). espeak-ng always speaks the languages
     * flite lacks (Hindi, German, …) and stands in when flite is missing.
     */
    offlineTts: OfflineTtsEngine;
  };
  elevenlabs?: { apiKey: string; baseUrl?: string; ttsModel: string; sttModel: string; defaultVoiceId?: string };
  /** The `elevenlabs-agent` phone mode (ELEVENLABS_AGENT_ID and friends, see docs/telephony-elevenlabs.md). */
  elevenlabsAgent?: ElevenLabsAgentConfig;
  replicate?: { apiToken: string; baseUrl?: string; model: string };
  gemini?: { apiKey: string; baseUrl?: string; chatModel: string };
  telegram?: { token: string; apiRoot?: string; selfHostedApi: boolean; webhookUrl?: string; webhookSecret?: string; webhookPort: number };
  discord?: { token: string; applicationId: string; guildId?: string; apiBase?: string };
  whatsapp?: { chromiumPath?: string; minSendIntervalMs: number };
  /** Per-user daily budgets (UTC days); absent → unlimited. */
  budgets: { dailyTtsChars?: number; dailySttSec?: number; dailyCostUsd?: number; globalDailyCostUsd?: number };
  /** Operators as `<channel>:<user id>` keys (OPERATORS). */
  operators: string[];
  /** Worker threads for Opus encoding/decoding and sample analysis (AUDIO_WORKERS); 0 = on the main thread. */
  audioWorkers: number;
  /**
   * The job queue: embedded SQLite by default, BullMQ when `REDIS_URL` is set.
   * `concurrency` (QUEUE_CONCURRENCY, default TURN_CONCURRENCY): jobs this process runs at once;
   * `partitions` (QUEUE_PARTITIONS, default 16): BullMQ partition queues for per-user order;
   * `lockMs` (QUEUE_LOCK_MS, default 30000): how long a crashed process's job stays locked.
   */
  queue: { concurrency: number; partitions: number; lockMs: number };
  /**
   * Retention, in days; 0 keeps forever. `historyDays` (HISTORY_RETENTION_DAYS, default 0):
   * conversation turns older than this are deleted; `audioDays` (AUDIO_RETENTION_DAYS, default 30):
   * synthesis cache and turn audio older than this are deleted. Samples and the consent recording
   * are kept as long as the voice exists. Enforced hourly (`core/retention.ts`).
   */
  retention: { historyDays: number; audioDays: number };
  /**
   * The HTTP server (`src/http/`): health, the Telegram webhook, the REST API.
   * `host` (HTTP_HOST, default `127.0.0.1`); `port` (HTTP_PORT, default 8080, or the deprecated
   * TELEGRAM_WEBHOOK_PORT when only that is set; 0 picks a free port); `enabled` (HTTP_ENABLED,
   * default true); `publicUrl` (HTTP_PUBLIC_URL): the base of links the server prints and signs;
   * timeouts in ms: `headersTimeoutMs` (HTTP_HEADERS_TIMEOUT_MS, 10 000), `requestTimeoutMs`
   * (HTTP_REQUEST_TIMEOUT_MS, the whole request including its body, 60 000), `idleTimeoutMs`
   * (HTTP_IDLE_TIMEOUT_MS, a silent socket, 30 000); rate limits per minute:
   * `rateLimitPerIp` (HTTP_RATE_LIMIT_PER_IP, 300), `rateLimitPerKey` (HTTP_RATE_LIMIT_PER_KEY, 120).
   */
  /**
   * The phone line (`src/telephony/`, docs/telephony.md), present when TWILIO_AUTH_TOKEN is set.
   * `mode` (PHONE_MODE, default `pipeline`): how a call is conversed, see `CallMode`;
   * `twilio.authToken` (TWILIO_AUTH_TOKEN): checks the `X-Twilio-Signature` of every webhook;
   * `twilio.accountSid` (TWILIO_ACCOUNT_SID, optional, `AC…`); `twilio.phoneNumber`
   * (TWILIO_PHONE_NUMBER, E.164, shown by `/phone`); `maxCallSec` (MAX_CALL_SEC, default 900):
   * longest call, seconds; `dailyCallMin` (DAILY_CALL_MIN, default 30): minutes one person may be on
   * the phone per UTC day; `unlinkedCallsPerHour` (PHONE_UNLINKED_CALLS_PER_HOUR, default 5): calls
   * and wrong codes accepted per hour from one unlinked number.
   */
  telephony?: {
    mode: PhoneModeName;
    twilio: { authToken: string; accountSid?: string; phoneNumber?: string };
    maxCallSec: number;
    dailyCallMin: number;
    unlinkedCallsPerHour: number;
  };
  http: {
    enabled: boolean;
    host: string;
    port: number;
    publicUrl?: string;
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    idleTimeoutMs: number;
    rateLimitPerIp: number;
    rateLimitPerKey: number;
  };
}

type Env = Record<string, string | undefined>;

/** Conversation modes of the phone line (PHONE_MODE). */
export const PHONE_MODES = ['pipeline', 'elevenlabs-agent'] as const;
export type PhoneModeName = (typeof PHONE_MODES)[number];

const CHANNELS: Channel[] = ['telegram', 'discord', 'whatsapp', 'console', 'web'];

function str(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function num(env: Env, name: string, fallback: number, schema: z.ZodNumber): number {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  const parsed = schema.safeParse(Number(raw));
  if (!/^-?\d+(\.\d+)?$/.test(raw) || !parsed.success) {
    throw new ConfigError(name, `expected ${describeNumber(schema)}, got "${raw}"`);
  }
  return parsed.data;
}

function describeNumber(schema: z.ZodNumber): string {
  const min = schema.minValue;
  const max = schema.maxValue;
  const kind = schema.isInt ? 'a whole number' : 'a number';
  if (min !== null && max !== null && max < Number.MAX_SAFE_INTEGER) return `${kind} from ${min} to ${max}`;
  if (min !== null) return `${kind} ≥ ${min}`;
  return kind;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(name, `expected true or false, got "${raw}"`);
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `expected a URL, got "${maskUrl(raw)}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `expected a ${protocols.join(' or ')} URL, got "${maskUrl(raw)}"`);
  }
  return raw.replace(/\/+$/, '');
}

/** Hides credentials in a URL for messages and logs. */
export function maskUrl(raw: string): string {
  return raw.replace(/\/\/([^/@]*)@/, '//***@');
}

function providerList(env: Env, name: string, fallback: ProviderName[], allowed: readonly ProviderName[]): ProviderName[] {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  const list = raw.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (list.length === 0) throw new ConfigError(name, 'expected a comma-separated list of providers');
  for (const p of list) {
    if (!(allowed as readonly string[]).includes(p)) {
      throw new ConfigError(name, `unknown provider "${p}"; expected some of ${allowed.join(', ')}`);
    }
  }
  return list as ProviderName[];
}

function memoryRetrieval(env: Env): 'auto' | 'words' {
  const value = (str(env, 'MEMORY_RETRIEVAL') ?? 'auto').toLowerCase();
  if (value !== 'auto' && value !== 'words') throw new ConfigError('MEMORY_RETRIEVAL', `expected auto or words, got "${value}"`);
  return value;
}

function operators(env: Env): string[] {
  const raw = str(env, 'OPERATORS');
  if (raw === undefined) return [];
  return raw.split(',').map((entry) => {
    const item = entry.trim();
    const m = /^([a-z]+):(.+)$/.exec(item);
    if (!m || !CHANNELS.includes(m[1] as Channel)) {
      throw new ConfigError('OPERATORS', `expected entries like telegram:123,discord:456, got "${item}"`);
    }
    return `${m[1]}:${m[2]!.trim()}`;
  });
}

/**
 * Builds the configuration from an environment.
 * @param env usually `process.env` (after `.env` was loaded)
 * @param cwd base for relative paths (data dir)
 * @throws ConfigError naming the first bad variable
 */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const elevenKey = str(env, 'ELEVENLABS_API_KEY');
  const replicateToken = str(env, 'REPLICATE_API_TOKEN');
  const geminiKey = str(env, 'GEMINI_API_KEY');
  const configured = (p: ProviderName): boolean =>
    p === 'local' || (p === 'elevenlabs' && !!elevenKey) || (p === 'replicate' && !!replicateToken) || (p === 'gemini' && !!geminiKey);
  const defaults = (order: ProviderName[]): ProviderName[] => order.filter(configured);

  const providers = {
    stt: providerList(env, 'STT_PROVIDERS', defaults(['elevenlabs', 'gemini', 'local']), ['elevenlabs', 'gemini', 'local']),
    chat: providerList(env, 'CHAT_PROVIDERS', defaults(['gemini', 'local']), ['gemini', 'local']),
    tts: providerList(env, 'TTS_PROVIDERS', defaults(['elevenlabs', 'replicate', 'local']), ['elevenlabs', 'replicate', 'local']),
    clone: providerList(env, 'CLONE_PROVIDERS', defaults(['elevenlabs', 'replicate', 'local']), ['elevenlabs', 'replicate', 'local']),
    pocketsphinxModelDir: str(env, 'POCKETSPHINX_MODEL_DIR') ?? '/usr/share/pocketsphinx/model/en-us',
    memoryRetrieval: memoryRetrieval(env),
    offlineTts: offlineTts(env),
  };
  for (const [variable, list] of [
    ['STT_PROVIDERS', providers.stt],
    ['CHAT_PROVIDERS', providers.chat],
    ['TTS_PROVIDERS', providers.tts],
    ['CLONE_PROVIDERS', providers.clone],
  ] as const) {
    for (const p of list) {
      if (!configured(p)) {
        const keyVar = p === 'elevenlabs' ? 'ELEVENLABS_API_KEY' : p === 'replicate' ? 'REPLICATE_API_TOKEN' : 'GEMINI_API_KEY';
        throw new ConfigError(variable, `lists "${p}" but ${keyVar} is not set`);
      }
    }
  }

  const persona = (str(env, 'DEFAULT_PERSONA') ?? 'supportive').toLowerCase();
  if (!(PERSONA_NAMES as readonly string[]).includes(persona)) {
    throw new ConfigError('DEFAULT_PERSONA', `expected one of ${PERSONA_NAMES.join(', ')}, got "${persona}"`);
  }

  const telegramToken = str(env, 'TELEGRAM_BOT_TOKEN');
  if (telegramToken !== undefined && !/^\d+:[\w-]{20,}$/.test(telegramToken)) {
    throw new ConfigError('TELEGRAM_BOT_TOKEN', 'expected a token like 123456:ABC-DEF… from @BotFather');
  }
  const discordToken = str(env, 'DISCORD_TOKEN');
  const discordApp = str(env, 'DISCORD_APPLICATION_ID');
  if ((discordToken === undefined) !== (discordApp === undefined)) {
    throw new ConfigError(discordToken ? 'DISCORD_APPLICATION_ID' : 'DISCORD_TOKEN', 'DISCORD_TOKEN and DISCORD_APPLICATION_ID must be set together');
  }
  if (discordApp !== undefined && !/^\d{5,25}$/.test(discordApp)) {
    throw new ConfigError('DISCORD_APPLICATION_ID', `expected a numeric snowflake, got "${discordApp}"`);
  }

  const logLevel = (str(env, 'LOG_LEVEL') ?? 'info').toLowerCase();
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `expected fatal, error, warn, info, debug, trace or silent, got "${logLevel}"`);
  }

  const dataDir = path.resolve(cwd, str(env, 'VOICETWIN_DATA_DIR') ?? './data');
  const dataKey = str(env, 'VOICETWIN_DATA_KEY');
  const dataKeyFileRaw = str(env, 'VOICETWIN_DATA_KEY_FILE');
  const dataKeyFile = dataKeyFileRaw === undefined ? undefined : path.resolve(cwd, dataKeyFileRaw);
  if (dataKey !== undefined && dataKeyFile !== undefined) {
    throw new ConfigError('VOICETWIN_DATA_KEY_FILE', 'set either VOICETWIN_DATA_KEY or VOICETWIN_DATA_KEY_FILE, not both');
  }
  const redisUrl = url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  if (dataKey === undefined && dataKeyFile === undefined && redisUrl !== undefined) {
    throw new ConfigError(
      'VOICETWIN_DATA_KEY',
      'REDIS_URL is set, so the data key must come from VOICETWIN_DATA_KEY or VOICETWIN_DATA_KEY_FILE (a key generated into the data dir is for the local SQLite default only). Generate one with: openssl rand -hex 32',
    );
  }
  if (dataKeyFile !== undefined && isInsideDir(dataKeyFile, dataDir)) {
    throw new ConfigError('VOICETWIN_DATA_KEY_FILE', keyFileInsideDataDirMessage(dataKeyFile, dataDir).replace(/^VOICETWIN_DATA_KEY_FILE /, ''));
  }

  return {
    dataDir,
    ...(dataKey !== undefined ? { dataKey } : {}),
    ...(dataKeyFile !== undefined ? { dataKeyFile } : {}),
    ...optional('redisUrl', redisUrl),
    redisNamespace: namespace(env),
    log: { level: logLevel, pretty: bool(env, 'LOG_PRETTY', false) },
    limits: {
      maxAudioBytes: num(env, 'MAX_AUDIO_BYTES', 20 * 1024 * 1024, z.number().int().min(1000)),
      maxTurnAudioSec: num(env, 'MAX_TURN_AUDIO_SEC', 600, z.number().min(1).max(7200)),
      maxSampleAudioSec: num(env, 'MAX_SAMPLE_AUDIO_SEC', 180, z.number().min(1).max(3600)),
      maxTextChars: num(env, 'MAX_TEXT_CHARS', 4000, z.number().int().min(10).max(100_000)),
      replyMaxChars: num(env, 'REPLY_MAX_CHARS', 600, z.number().int().min(40).max(5000)),
    },
    engine: {
      defaultPersona: persona as PersonaName,
      ...optional('enrollMinSpeechSec', str(env, 'ENROLL_MIN_SPEECH_SEC') === undefined ? undefined : num(env, 'ENROLL_MIN_SPEECH_SEC', 20, z.number().min(1).max(600))),
      insightEvery: num(env, 'INSIGHT_EVERY', 5, z.number().int().min(0).max(1000)),
      memoryEvery: num(env, 'MEMORY_EVERY', 3, z.number().int().min(0).max(1000)),
      memoryMinSimilarity: num(env, 'MEMORY_MIN_SIMILARITY', 0.6, z.number().min(-1).max(1)),
      turnConcurrency: num(env, 'TURN_CONCURRENCY', 4, z.number().int().min(1).max(64)),
      cloneTimeoutSec: num(env, 'CLONE_TIMEOUT_S', 35, z.number().min(1).max(3600)),
      verifyReplies: bool(env, 'VERIFY_REPLIES', false),
      verifyMaxWer: num(env, 'VERIFY_REPLIES_MAX_WER', 0.5, z.number().min(0).max(2)),
      seed: num(env, 'CHAT_SEED', 7, z.number().int().min(0)),
    },
    retention: {
      historyDays: num(env, 'HISTORY_RETENTION_DAYS', 0, z.number().int().min(0).max(36_500)),
      audioDays: num(env, 'AUDIO_RETENTION_DAYS', 30, z.number().int().min(0).max(36_500)),
    },
    providers,
    ...optional(
      'elevenlabs',
      elevenKey && {
        apiKey: elevenKey,
        ...optional('baseUrl', url(env, 'ELEVENLABS_BASE_URL', ['http:', 'https:'])),
        ttsModel: str(env, 'ELEVENLABS_TTS_MODEL') ?? 'eleven_flash_v2_5',
        sttModel: str(env, 'ELEVENLABS_STT_MODEL') ?? 'scribe_v2',
        ...optional('defaultVoiceId', str(env, 'ELEVENLABS_DEFAULT_VOICE_ID')),
      },
    ),
    ...optional('elevenlabsAgent', loadElevenLabsAgentConfig(env)),
    ...optional(
      'replicate',
      replicateToken && {
        apiToken: replicateToken,
        ...optional('baseUrl', url(env, 'REPLICATE_BASE_URL', ['http:', 'https:'])),
        model: str(env, 'REPLICATE_MODEL') ?? 'resemble-ai/chatterbox',
      },
    ),
    ...optional(
      'gemini',
      geminiKey && {
        apiKey: geminiKey,
        ...optional('baseUrl', url(env, 'GEMINI_BASE_URL', ['http:', 'https:'])),
        chatModel: str(env, 'GEMINI_CHAT_MODEL') ?? 'gemini-2.5-flash',
      },
    ),
    ...optional(
      'telegram',
      telegramToken && {
        token: telegramToken,
        ...optional('apiRoot', url(env, 'TELEGRAM_API_ROOT', ['http:', 'https:'])),
        selfHostedApi: bool(env, 'TELEGRAM_SELF_HOSTED_API', false),
        ...optional('webhookUrl', url(env, 'TELEGRAM_WEBHOOK_URL', ['https:', 'http:'])),
        ...optional('webhookSecret', str(env, 'TELEGRAM_WEBHOOK_SECRET')),
        webhookPort: num(env, 'TELEGRAM_WEBHOOK_PORT', 8443, z.number().int().min(1).max(65535)),
      },
    ),
    ...optional(
      'discord',
      discordToken &&
        discordApp && {
          token: discordToken,
          applicationId: discordApp,
          ...optional('guildId', str(env, 'DISCORD_GUILD_ID')),
          ...optional('apiBase', url(env, 'DISCORD_API_BASE', ['http:', 'https:'])),
        },
    ),
    ...optional(
      'whatsapp',
      bool(env, 'WHATSAPP_ENABLED', false) && {
        ...optional('chromiumPath', str(env, 'PUPPETEER_EXECUTABLE_PATH')),
        minSendIntervalMs: num(env, 'WHATSAPP_MIN_SEND_INTERVAL_MS', 1500, z.number().int().min(0).max(600_000)),
      },
    ),
    budgets: {
      ...optionalNum(env, 'DAILY_TTS_CHARS', 'dailyTtsChars', z.number().int().min(1)),
      ...optionalNum(env, 'DAILY_STT_SEC', 'dailySttSec', z.number().min(1)),
      ...optionalNum(env, 'DAILY_COST_USD', 'dailyCostUsd', z.number().min(0)),
      ...optionalNum(env, 'DAILY_COST_USD_ALL_USERS', 'globalDailyCostUsd', z.number().min(0)),
    },
    operators: operators(env),
    audioWorkers: num(env, 'AUDIO_WORKERS', defaultAudioWorkerThreads(), z.number().int().min(0).max(16)),
    queue: {
      concurrency: num(env, 'QUEUE_CONCURRENCY', num(env, 'TURN_CONCURRENCY', 4, z.number().int().min(1).max(64)), z.number().int().min(1).max(64)),
      partitions: num(env, 'QUEUE_PARTITIONS', 16, z.number().int().min(1).max(256)),
      lockMs: num(env, 'QUEUE_LOCK_MS', 30_000, z.number().int().min(1000).max(600_000)),
    },
    http: httpConfig(env),
    ...optional('telephony', telephonyConfig(env)),
  };
}

function telephonyConfig(env: Env): Config['telephony'] {
  const authToken = str(env, 'TWILIO_AUTH_TOKEN');
  if (authToken === undefined) {
    for (const name of ['TWILIO_PHONE_NUMBER', 'PHONE_MODE']) {
      if (str(env, name) !== undefined) throw new ConfigError('TWILIO_AUTH_TOKEN', `${name} is set but TWILIO_AUTH_TOKEN is not: the phone line needs it to check Twilio's webhook signatures`);
    }
    return undefined;
  }
  const mode = (str(env, 'PHONE_MODE') ?? 'pipeline').toLowerCase();
  if (!(PHONE_MODES as readonly string[]).includes(mode)) throw new ConfigError('PHONE_MODE', `expected ${PHONE_MODES.join(' or ')}, got "${mode}"`);
  const phoneNumber = str(env, 'TWILIO_PHONE_NUMBER');
  if (phoneNumber !== undefined && !/^\+[1-9]\d{6,14}$/.test(phoneNumber)) {
    throw new ConfigError('TWILIO_PHONE_NUMBER', `expected an E.164 number like +14155550123, got "${phoneNumber}"`);
  }
  const accountSid = str(env, 'TWILIO_ACCOUNT_SID');
  if (accountSid !== undefined && !/^AC[0-9a-fA-F]{32}$/.test(accountSid)) throw new ConfigError('TWILIO_ACCOUNT_SID', 'expected AC followed by 32 hexadecimal characters');
  return {
    mode: mode as PhoneModeName,
    twilio: { authToken, ...optional('accountSid', accountSid), ...optional('phoneNumber', phoneNumber) },
    maxCallSec: num(env, 'MAX_CALL_SEC', 900, z.number().int().min(10).max(14_400)),
    dailyCallMin: num(env, 'DAILY_CALL_MIN', 30, z.number().min(1).max(1440)),
    unlinkedCallsPerHour: num(env, 'PHONE_UNLINKED_CALLS_PER_HOUR', 5, z.number().int().min(1).max(1000)),
  };
}

function httpConfig(env: Env): Config['http'] {
  const port = z.number().int().min(0).max(65535);
  const legacyPort = str(env, 'TELEGRAM_WEBHOOK_PORT') !== undefined && str(env, 'HTTP_PORT') === undefined;
  const host = str(env, 'HTTP_HOST') ?? '127.0.0.1';
  if (!/^[\w.:-]{1,255}$/.test(host)) throw new ConfigError('HTTP_HOST', `expected a host name or IP address, got "${host}"`);
  const ms = (name: string, fallback: number): number => num(env, name, fallback, z.number().int().min(100).max(3_600_000));
  return {
    enabled: bool(env, 'HTTP_ENABLED', true),
    host,
    port: legacyPort ? num(env, 'TELEGRAM_WEBHOOK_PORT', 8080, port) : num(env, 'HTTP_PORT', 8080, port),
    ...optional('publicUrl', url(env, 'HTTP_PUBLIC_URL', ['http:', 'https:'])),
    headersTimeoutMs: ms('HTTP_HEADERS_TIMEOUT_MS', 10_000),
    requestTimeoutMs: ms('HTTP_REQUEST_TIMEOUT_MS', 60_000),
    idleTimeoutMs: ms('HTTP_IDLE_TIMEOUT_MS', 30_000),
    rateLimitPerIp: num(env, 'HTTP_RATE_LIMIT_PER_IP', 300, z.number().int().min(1)),
    rateLimitPerKey: num(env, 'HTTP_RATE_LIMIT_PER_KEY', 120, z.number().int().min(1)),
  };
}

/** OFFLINE_TTS: `flite` (default, also when empty), `espeak-ng` or `espeak`, case-insensitive. */
function offlineTts(env: Env): OfflineTtsEngine {
  const raw = str(env, 'OFFLINE_TTS');
  const v = raw?.toLowerCase();
  if (v === undefined || v === 'flite') return 'flite';
  if (v === 'espeak-ng' || v === 'espeak') return 'espeak-ng';
  throw new ConfigError('OFFLINE_TTS', `expected flite or espeak-ng, got "${raw!.slice(0, 40)}"`);
}

function optionalNum<K extends string>(env: Env, name: string, key: K, schema: z.ZodNumber): { [P in K]?: number } {
  return str(env, name) === undefined ? {} : ({ [key]: num(env, name, 0, schema) } as { [P in K]?: number });
}

function namespace(env: Env): string {
  const raw = str(env, 'REDIS_NAMESPACE') ?? 'voicetwin';
  if (!/^[\w.-]{1,64}$/.test(raw)) throw new ConfigError('REDIS_NAMESPACE', `expected 1–64 letters, digits, dots, dashes or underscores, got "${raw}"`);
  return raw;
}

function optional<K extends string, V>(key: K, value: V | undefined | false | ''): { [P in K]?: V } {
  return value === undefined || value === false || value === '' ? {} : ({ [key]: value } as { [P in K]?: V });
}

/** Channels with a bot configured, for `serve`. */
export function enabledChannels(config: Config): Channel[] {
  const out: Channel[] = [];
  if (config.telegram) out.push('telegram');
  if (config.discord) out.push('discord');
  if (config.whatsapp) out.push('whatsapp');
  return out;
}
