/**
 * The logger's privacy layers on real SDK error objects (grammY, @discordjs/rest) and on plain
 * fields: the error serializer's allowlist, redaction paths, secret values and token patterns.
 */
import { Writable } from 'node:stream';
import { DiscordAPIError } from '@discordjs/rest';
import { GrammyError, HttpError } from 'grammy';
import { describe, expect, it } from 'vitest';
import { ProviderError, UserInputError } from '../../src/core/errors.js';
import { createLogger, secretScrubber, secretsFromEnv, serializeError, type Logger } from '../../src/core/log.js';

const TELEGRAM_TOKEN = '7000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ';
const DISCORD_TOKEN = 'MTA5ODc2NTQzMjEwOTg3NjU0.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB';
const WORDS = 'my sister Ana is moving to Lisbon';

function capture(secrets?: string[]): { logger: Logger; text: () => string; last: () => Record<string, unknown> } {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8');
      done();
    },
  });
  const logger = createLogger({ level: 'trace', destination, ...(secrets ? { secrets } : {}) });
  return {
    logger,
    text: () => text,
    last: () => JSON.parse(text.trim().split('\n').at(-1)!) as Record<string, unknown>,
  };
}

describe('error serializer', () => {
  it("drops a GrammyError's payload (caption, text) and keeps the method, code and description", () => {
    const err = new GrammyError(
      "Call to 'sendAudio' failed!",
      { ok: false, error_code: 400, description: 'Bad Request: failed to get HTTP URL content', parameters: { retry_after: 3 } },
      'sendAudio',
      { chat_id: 1001, caption: `You said: "${WORDS}"`, audio: 'attach://x' },
    );
    const log = capture([]);
    log.logger.warn({ chatId: '1001', err }, 'audio fallback failed');
    expect(log.text()).not.toContain('Lisbon');
    expect(log.last().err).toMatchObject({
      type: 'GrammyError',
      message: "Call to 'sendAudio' failed! (400: Bad Request: failed to get HTTP URL content)",
      method: 'sendAudio',
      error_code: 400,
      description: 'Bad Request: failed to get HTTP URL content',
      retryAfterSec: 3,
    });
    expect(log.last().err).not.toHaveProperty('payload');
  });

  it("drops a DiscordAPIError's request body and hides the interaction token in its URL", () => {
    const interactionToken = 'aW50ZXJhY3Rpb246MTIzOmFiY2RlZjAxMjM0NTY3ODk';
    const err = new DiscordAPIError(
      { code: 50035, message: 'Invalid Form Body' },
      50035,
      400,
      'PATCH',
      `https://discord.com/api/v10/webhooks/1234567890/${interactionToken}/messages/@original`,
      { body: { content: WORDS }, files: [{ name: 'voice-message.ogg', data: Buffer.from('OggS audio bytes') }] },
    );
    const log = capture([]);
    log.logger.error({ err }, 'turn failed');
    expect(log.text()).not.toContain('Lisbon');
    expect(log.text()).not.toContain(interactionToken);
    expect(log.text()).not.toContain('OggS');
    expect(log.last().err).toMatchObject({ type: 'DiscordAPIError', code: 50035, status: 400, method: 'PATCH', url: 'https://discord.com/api/v10/webhooks/1234567890/[redacted]/messages/@original' });
  });

  it("hides the bot token in the URL of a grammY HttpError's network error, keeping the reason", () => {
    const fetchError = Object.assign(new Error(`request to https://api.telegram.org/bot${TELEGRAM_TOKEN}/sendVoice failed, reason: getaddrinfo ENOTFOUND api.telegram.org`), {
      type: 'system',
      code: 'ENOTFOUND',
    });
    const err = new HttpError("Network request for 'sendVoice' failed!", fetchError);
    const log = capture([]);
    log.logger.error({ err }, 'could not deliver reply');
    expect(log.text()).not.toContain(TELEGRAM_TOKEN);
    expect(log.text()).not.toContain(TELEGRAM_TOKEN.split(':')[1]);
    expect(log.last().err).toMatchObject({
      type: 'HttpError',
      error: { code: 'ENOTFOUND', message: 'request to https://api.telegram.org/bot[redacted]/sendVoice failed, reason: getaddrinfo ENOTFOUND api.telegram.org' },
    });
  });

  it("replaces a UserInputError's user message (which may quote the user) by its length, also as a cause", () => {
    const userMessage = `I heard "${WORDS}", which does not match.`;
    const inner = new UserInputError('CONSENT_MISMATCH', userMessage, { heardChars: 33 });
    const outer = new ProviderError('elevenlabs', 'clone failed', { retryable: false, status: 422, cause: inner });
    for (const err of [inner, outer]) {
      const log = capture([]);
      log.logger.error({ err }, 'failed');
      expect(log.text()).not.toContain('Lisbon');
      expect(log.text()).toContain(`[user message, ${[...userMessage].length} characters]`);
    }
    const serialized = serializeError(outer) as Record<string, unknown>;
    expect(serialized).toMatchObject({ type: 'ProviderError', retryable: false, status: 422 });
    expect(String(serialized.message)).toMatch(/^elevenlabs: clone failed: CONSENT_MISMATCH: \[user message/);
  });

  it('leaves values that are not errors alone', () => {
    expect(serializeError('text')).toBe('text');
    expect(serializeError({ a: 1 })).toEqual({ a: 1 });
  });
});

describe('redaction', () => {
  it('redacts secrets and user content by field name', () => {
    const log = capture([]);
    log.logger.info(
      { text: WORDS, caption: WORDS, transcript: WORDS, reply: { text: WORDS }, headers: { authorization: `Bot ${DISCORD_TOKEN}` }, config: { telegram: { token: TELEGRAM_TOKEN } } },
      'fields',
    );
    expect(log.text()).not.toContain('Lisbon');
    expect(log.text()).not.toContain(DISCORD_TOKEN);
    expect(log.text()).not.toContain(TELEGRAM_TOKEN);
    expect(log.last()).toMatchObject({ text: '[redacted]', caption: '[redacted]', reply: { text: '[redacted]' }, headers: { authorization: '[redacted]' } });
  });

  it('scrubs configured secret values anywhere in a line, and token shapes without them', () => {
    const dataKey = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
    const log = capture([dataKey, 'short']);
    log.logger.warn({ detail: `key=${dataKey}`, note: 'a short note', nested: { deep: [`Authorization: Bot ${DISCORD_TOKEN}`] } }, `url https://api.telegram.org/file/bot${TELEGRAM_TOKEN}/voice/file_1.oga`);
    const text = log.text();
    expect(text).not.toContain(dataKey);
    expect(text).not.toContain(DISCORD_TOKEN);
    expect(text).not.toContain(TELEGRAM_TOKEN);
    expect(text).toContain('short'); // too short to scrub by value: it would hit ordinary words
    expect(log.last().msg).toBe('url https://api.telegram.org/file/bot[redacted]/voice/file_1.oga');
  });

  it('takes the secret values from the environment by default', () => {
    expect(secretsFromEnv({ TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN, DISCORD_TOKEN: '', REDIS_URL: 'redis://default:s3cr%40t-pass@redis:6379', GEMINI_API_KEY: 'AIzaSyExampleExampleExampleExample12345' })).toEqual([
      TELEGRAM_TOKEN,
      'AIzaSyExampleExampleExampleExample12345',
      's3cr@t-pass',
    ]);
    const scrub = secretScrubber(['s3cr@t-pass']);
    expect(scrub('auth failed for s3cr@t-pass and redis://default:other-pass@host:6379/0')).toBe('auth failed for [redacted] and redis://default:[redacted]@host:6379/0');
    expect(scrub('Bearer sk_0123456789abcdef0123456789abcdef and r8_ABCDEFGHIJKLMNOPQRSTUVWXYZ')).toBe('Bearer [redacted] and [redacted]');
  });

  it('keeps stack traces and ordinary text readable', () => {
    const scrub = secretScrubber([]);
    const line = 'at TelegramRenderer.send (/srv/voicetwin/src/bots/telegram/render.ts:103:56) 12:30 chat 1001 update telegram:update:100';
    expect(scrub(line)).toBe(line);
  });
});
