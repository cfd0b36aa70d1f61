/**
 * One pino logger for the process, with secrets redacted. Use `logger.child({ channel, chatId, updateId })`
 * per request instead of string concatenation.
 *
 * Log policy (docs/privacy.md): no message text, caption, transcript, reply or memory in any line
 * at any level (log ids, counts and lengths instead), and no secret. Three layers enforce it:
 * 1. `redact` paths replace fields that hold secrets or user content wherever a caller names them;
 * 2. the `err` serializer keeps only an allowlist of error fields (type, message, stack, codes,
 *    statuses, the method), so SDK errors that carry the request do not log it: grammY's
 *    `GrammyError.payload` (a caption, a text), discord.js's `DiscordAPIError.requestBody` (message
 *    content and files), and a `UserInputError`'s user-facing message, which may quote the user;
 * 3. every finished line is scrubbed of the configured secret values and of token-shaped strings
 *    (a Telegram token in a Bot API URL, a Discord token or interaction token, `Bearer`/`Bot`
 *    authorization values, provider API keys, Redis passwords), wherever they appear; and the
 *    phone number in a WhatsApp id (`<number>@c.us`, also inside user keys and message ids) is
 *    replaced by a keyed hash, the same for the same number, so lines can still be correlated.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** What replaces a redacted value. */
export const REDACTED = '[redacted]';

/** Paths pino replaces with `[redacted]` wherever they appear (tokens, keys, user content). */
export const REDACT_PATHS = [
  'token',
  '*.token',
  'apiKey',
  '*.apiKey',
  '*.*.apiKey',
  'apiToken',
  '*.apiToken',
  'key',
  '*.key',
  'dataKey',
  '*.dataKey',
  'secret',
  '*.secret',
  'secretToken',
  '*.secretToken',
  'webhookSecret',
  '*.webhookSecret',
  'password',
  '*.password',
  'authorization',
  '*.authorization',
  'Authorization',
  '*.Authorization',
  'headers.authorization',
  '*.headers.authorization',
  'headers.Authorization',
  '*.headers.Authorization',
  'headers["xi-api-key"]',
  '*.headers["xi-api-key"]',
  'headers["x-goog-api-key"]',
  '*.headers["x-goog-api-key"]',
  'headers["x-telegram-bot-api-secret-token"]',
  '*.headers["x-telegram-bot-api-secret-token"]',
  'config.telegram.token',
  'config.telegram.webhookSecret',
  'config.discord.token',
  'config.elevenlabs.apiKey',
  'config.replicate.apiToken',
  'config.gemini.apiKey',
  'config.dataKey',
  'config.redisUrl',
  'redisUrl',
  '*.redisUrl',
  // User content: a caller that names it by mistake still logs nothing of it.
  'text',
  '*.text',
  'caption',
  '*.caption',
  'content',
  '*.content',
  'transcript',
  '*.transcript',
  'userText',
  '*.userText',
  'replyText',
  '*.replyText',
  'heardText',
  '*.heardText',
  'userMessage',
  '*.userMessage',
  'memory',
  '*.memory',
  'memories',
  '*.memories',
  'payload',
  '*.payload',
  'requestBody',
  '*.requestBody',
];

/** Error fields kept by {@link serializeError} when their value is a string, number or boolean. */
const ERROR_FIELDS = new Set([
  'type',
  'message',
  'stack',
  'code',
  'errno',
  'syscall',
  'status',
  'statusCode',
  'statusText',
  'error_code',
  'description',
  'method',
  'url',
  'provider',
  'retryable',
  'retryAfterSec',
  'timeout',
]);
/** Error fields that hold another error, serialized the same way. */
const NESTED_ERROR_FIELDS = new Set(['error', 'aggregateErrors']);
const MAX_NESTED_ERRORS = 10;

/**
 * Token-shaped strings, replaced in every finished log line. Each pattern names the documentation
 * of the format it matches.
 */
const SECRET_PATTERNS: { pattern: RegExp; replace: string }[] = [
  // Telegram bot token `<bot id>:<35 characters>` (https://core.telegram.org/bots/api#authorizing-your-bot),
  // also inside `https://api.telegram.org/bot<token>/<method>` and `/file/bot<token>/<path>`.
  { pattern: /\/bot\d+(?::|%3A)[^/\s"'?#]+/gi, replace: `/bot${REDACTED}` },
  { pattern: /\b\d{3,}:[A-Za-z0-9_-]{30,}/g, replace: REDACTED },
  // Discord bot token: three base64url parts separated by dots (https://discord.com/developers/docs/reference#authentication).
  { pattern: /\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}/g, replace: REDACTED },
  // Discord interaction tokens in webhook and callback paths (https://discord.com/developers/docs/interactions/receiving-and-responding).
  { pattern: /(\/(?:webhooks|interactions)\/\d+\/)[A-Za-z0-9_.-]{20,}/g, replace: `$1${REDACTED}` },
  // Authorization header values `Bearer <token>` (RFC 6750 §2.1); `Bot <token>` is a Discord token, above.
  { pattern: /\bBearer\s+[A-Za-z0-9._~+/=-]{16,}/g, replace: `Bearer ${REDACTED}` },
  // Provider keys: ElevenLabs `sk_…`, Google `AIza…`, Replicate `r8_…`.
  { pattern: /\bsk_[A-Za-z0-9]{20,}/g, replace: REDACTED },
  { pattern: /\bAIza[A-Za-z0-9_-]{30,}/g, replace: REDACTED },
  { pattern: /\br8_[A-Za-z0-9]{20,}/g, replace: REDACTED },
  // Credentials in a connection URL: `redis://user:password@host`.
  { pattern: /\b([a-z][a-z0-9+.-]*:\/\/[^/\s:@"]*:)[^/\s@"]+@/gi, replace: `$1${REDACTED}@` },
];

/**
 * A WhatsApp id: the phone number (or a linked-device / group number) before `@c.us`,
 * `@s.whatsapp.net`, `@g.us` or `@lid` (https://docs.wwebjs.dev/global.html#ContactId: `user` is
 * the number, `server` the suffix). It also appears inside message ids (`false_<id>_<hex>`).
 */
const WHATSAPP_ID = /(?<![\dA-Za-z])\+?(\d{5,20})(?=@(?:c\.us|s\.whatsapp\.net|g\.us|lid)(?![A-Za-z0-9.-]))/g;

/** The key of the log's id hashes: random per process until {@link setLogIdKey} sets a stable one. */
let idHashKey: Buffer = randomBytes(32);

/**
 * Sets the key of the hashes that stand for phone numbers in log lines (`#<12 hex>`; see
 * {@link hashLogId}). The app derives it from the data key, so every process of a deployment writes
 * the same hash for the same number; before it is set, a random per-process key is used.
 * @param key at least 16 bytes of secret
 */
export function setLogIdKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length < 16) throw new Error('The log id key must be at least 16 bytes');
  idHashKey = Buffer.from(key);
}

/** The keyed hash written instead of `number`: `#` and the first 12 hex characters of HMAC-SHA256(key, number). */
export function hashLogId(number: string): string {
  return `#${createHmac('sha256', idHashKey).update(number).digest('hex').slice(0, 12)}`;
}

/** Replaces the number of every WhatsApp id in `text` by its keyed hash (`4915…@c.us` → `#1f0c…@c.us`). */
export function hashWhatsAppIds(text: string): string {
  return text.includes('@') ? text.replace(WHATSAPP_ID, (_m, number: string) => hashLogId(number)) : text;
}

/** Secret values shorter than this are not scrubbed by value (too likely to match ordinary text). */
const MIN_SECRET_CHARS = 8;

/**
 * Returns a function that replaces every occurrence of the given secret values (and their JSON-
 * and URL-escaped forms) and of token-shaped strings in a text.
 * @param secrets values to hide wherever they appear; empty and short values are ignored
 */
export function secretScrubber(secrets: readonly (string | undefined)[] = []): (text: string) => string {
  const values = new Set<string>();
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret.trim().length < MIN_SECRET_CHARS) continue;
    const value = secret.trim();
    values.add(value);
    values.add(JSON.stringify(value).slice(1, -1));
    values.add(encodeURIComponent(value));
  }
  const byValue = values.size > 0 ? new RegExp([...values].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|'), 'g') : undefined;
  return (text: string): string => {
    let out = byValue ? text.replace(byValue, REDACTED) : text;
    for (const { pattern, replace } of SECRET_PATTERNS) out = out.replace(pattern, replace);
    return hashWhatsAppIds(out);
  };
}

/**
 * The secrets of an environment (as `process.env` or `.env` hold them): bot tokens, webhook
 * secrets, API keys, the data key, the Redis URL's password.
 */
export function secretsFromEnv(env: Record<string, string | undefined>): string[] {
  const names = [
    'TELEGRAM_BOT_TOKEN',
    'TELEGRAM_WEBHOOK_SECRET',
    'DISCORD_TOKEN',
    'ELEVENLABS_API_KEY',
    'REPLICATE_API_TOKEN',
    'GEMINI_API_KEY',
    'VOICETWIN_DATA_KEY',
  ];
  const out = names.map((n) => env[n]).filter((v): v is string => typeof v === 'string' && v.trim() !== '');
  const redisUrl = env.REDIS_URL;
  if (redisUrl) {
    try {
      const parsed = new URL(redisUrl);
      if (parsed.password) out.push(decodeURIComponent(parsed.password));
    } catch {
      // An invalid URL is reported by the configuration; the pattern still masks user:password@.
    }
  }
  return out;
}

/**
 * pino's `err` serializer, reduced to an allowlist of fields: whatever an SDK attaches to its
 * errors (the request payload, the request body with files, the response, headers) is left out.
 * The user-facing message of a `UserInputError` anywhere in the cause chain is replaced by its
 * length, since it may quote what the user said.
 */
export function serializeError(err: unknown): unknown {
  if (!isErrorLike(err)) return err;
  const serialized = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
  return reduceError(serialized, userMessagesOf(err), 0);
}

function reduceError(serialized: Record<string, unknown>, hidden: string[], depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(serialized)) {
    if (ERROR_FIELDS.has(key) && (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')) {
      out[key] = typeof value === 'string' ? hideAll(value, hidden) : value;
    } else if (NESTED_ERROR_FIELDS.has(key) && depth < 3) {
      if (Array.isArray(value)) {
        out[key] = value.slice(0, MAX_NESTED_ERRORS).map((v) => (isPlainObject(v) ? reduceError(v, hidden, depth + 1) : String(v)));
      } else if (isPlainObject(value)) {
        out[key] = reduceError(value, hidden, depth + 1);
      }
    }
  }
  // grammY's retry hint and discord.js's error code live in nested objects; keep their numbers.
  const parameters = serialized.parameters;
  if (isPlainObject(parameters) && typeof parameters.retry_after === 'number') out.retryAfterSec = parameters.retry_after;
  const options = serialized.options;
  if (isPlainObject(options)) {
    for (const field of ['retryable', 'status', 'retryAfterSec'] as const) {
      const value = options[field];
      if (out[field] === undefined && (typeof value === 'number' || typeof value === 'boolean')) out[field] = value;
    }
  }
  return out;
}

/** User-facing messages of UserInputErrors in the error, its causes and nested errors. */
function userMessagesOf(err: unknown, depth = 0, seen = new Set<unknown>()): string[] {
  if (depth > 8 || !err || typeof err !== 'object' || seen.has(err)) return [];
  seen.add(err);
  const out: string[] = [];
  const e = err as { userMessage?: unknown; cause?: unknown; error?: unknown; errors?: unknown };
  if (typeof e.userMessage === 'string' && e.userMessage.length > 0) out.push(e.userMessage);
  out.push(...userMessagesOf(e.cause, depth + 1, seen), ...userMessagesOf(e.error, depth + 1, seen));
  if (Array.isArray(e.errors)) for (const inner of e.errors) out.push(...userMessagesOf(inner, depth + 1, seen));
  return out;
}

function hideAll(text: string, hidden: string[]): string {
  let out = text;
  for (const h of hidden) out = out.split(h).join(`[user message, ${[...h].length} characters]`);
  return out;
}

function isErrorLike(value: unknown): value is Error {
  return value instanceof Error || (!!value && typeof value === 'object' && typeof (value as { message?: unknown }).message === 'string' && 'stack' in value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return !!value && typeof value === 'object' && !Array.isArray(value);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Creates the process logger.
 * @param options.level pino level (`info` default)
 * @param options.pretty human-readable output for terminals (pino-pretty)
 * @param options.destination a writable stream (tests capture logs with it)
 * @param options.secrets values never to write (tokens, keys); default: those of `process.env`
 *   (see {@link secretsFromEnv})
 */
export function createLogger(
  options: { level?: string; pretty?: boolean; destination?: NodeJS.WritableStream; secrets?: readonly (string | undefined)[] } = {},
): Logger {
  const scrub = secretScrubber(options.secrets ?? secretsFromEnv(process.env));
  const base: LoggerOptions = {
    level: options.level ?? 'info',
    base: { app: 'voicetwin', pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    serializers: { err: serializeError, error: serializeError },
    hooks: { streamWrite: scrub },
  };
  if (options.destination) return pino(base, options.destination as pino.DestinationStream);
  if (options.pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname,app' } } });
  }
  return pino(base);
}

/** A logger that writes nothing (tests, library use). */
export const silentLogger: Logger = pino({ level: 'silent' });
