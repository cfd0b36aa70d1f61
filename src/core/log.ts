/**
 * One pino logger for the process, with secrets redacted. Use `logger.child({ channel, chatId, updateId })`
 * per request instead of string concatenation.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** Paths pino replaces with `[redacted]` wherever they appear (tokens, keys, raw audio). */
export const REDACT_PATHS = [
  'token',
  '*.token',
  'apiKey',
  '*.apiKey',
  '*.*.apiKey',
  'key',
  '*.key',
  'dataKey',
  '*.dataKey',
  'secret',
  '*.secret',
  'password',
  '*.password',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  '*.headers["xi-api-key"]',
  '*.headers["x-goog-api-key"]',
  'config.telegram.token',
  'config.discord.token',
  'config.elevenlabs.apiKey',
  'config.replicate.apiToken',
  'config.gemini.apiKey',
  'config.dataKey',
  'config.redisUrl',
];

/**
 * Creates the process logger.
 * @param options.level pino level (`info` default)
 * @param options.pretty human-readable output for terminals (pino-pretty)
 * @param options.destination a writable stream (tests capture logs with it)
 */
export function createLogger(options: { level?: string; pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const base: LoggerOptions = {
    level: options.level ?? 'info',
    base: { app: 'voicetwin' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (options.destination) return pino(base, options.destination as pino.DestinationStream);
  if (options.pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname,app' } } });
  }
  return pino(base);
}

/** A logger that writes nothing (tests, library use). */
export const silentLogger: Logger = pino({ level: 'silent' });
