/**
 * The logger's privacy layers on real SDK error objects (grammY, @discordjs/rest) and on plain
 * fields: the error serializer's allowlist, redaction paths, secret values and token patterns.
 */
import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { DiscordAPIError } from '@discordjs/rest';
import { GrammyError, HttpError } from 'grammy';
import { describe, expect, it } from 'vitest';
import { ProviderError, UserInputError } from '../../src/core/errors.js';
import { createLogger, hashLogId, hashWhatsAppIds, secretScrubber, secretsFromEnv, serializeError, setLogIdKey, type Logger } from '../../src/core/log.js';
import { Engine } from '../../src/core/engine.js';
import { createStore } from '../../src/core/store/keyv-store.js';
import type { OutboundReply } from '../../src/core/types.js';

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

describe('WhatsApp ids in logs', () => {
  it('replaces the phone number of every WhatsApp id by one keyed hash per number, wherever it appears', () => {
    const log = capture([]);
    const number = '4915112345678';
    log.logger.child({ channel: 'whatsapp', chatId: `${number}@c.us`, messageId: `false_${number}@c.us_3EB0C0FFEE` }).info({ userKey: `whatsapp:${number}@c.us` }, `send to ${number}@c.us failed`);
    log.logger.info({ chatId: '4917700000001@c.us', group: '120363041234567890@g.us', lid: '+123456789012@lid' }, 'other');
    const text = log.text();
    expect(text).not.toContain(number);
    expect(text).not.toContain('4917700000001');
    expect(text).not.toContain('120363041234567890');
    const [first, second] = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
    const hash = hashLogId(number);
    expect(hash).toMatch(/^#[0-9a-f]{12}$/);
    expect(first).toMatchObject({ chatId: `${hash}@c.us`, messageId: `false_${hash}@c.us_3EB0C0FFEE`, userKey: `whatsapp:${hash}@c.us`, msg: `send to ${hash}@c.us failed` });
    expect(second!.chatId).toBe(`${hashLogId('4917700000001')}@c.us`);
    expect(second!.chatId).not.toBe(first!.chatId);
    expect(second!.group).toBe(`${hashLogId('120363041234567890')}@g.us`);
    expect(second!.lid).toBe(`${hashLogId('123456789012')}@lid`);
    // Not WhatsApp ids: left alone.
    const scrub = secretScrubber([]);
    expect(scrub('mail ana@example.com, telegram:1001, status@broadcast, 12:30')).toBe('mail ana@example.com, telegram:1001, status@broadcast, 12:30');
  });

  it('hashes with the key set for the deployment: the same in every process, HMAC-SHA256 of the number', () => {
    const key = Buffer.alloc(32, 7);
    setLogIdKey(key);
    expect(hashLogId('4915112345678')).toBe(`#${createHmac('sha256', key).update('4915112345678').digest('hex').slice(0, 12)}`);
    expect(hashWhatsAppIds('chat 4915112345678@c.us')).toBe(`chat ${hashLogId('4915112345678')}@c.us`);
    expect(() => setLogIdKey(Buffer.alloc(4))).toThrow(/at least 16 bytes/);
  });
});

describe('"user input refused"', () => {
  it('logs the code only, not the details (which may hold what the user sent)', async () => {
    const marker = `bluebird${Date.now()}`;
    const refuse = async (): Promise<never> => {
      throw new UserInputError('TEXT_TOO_LONG', 'That text is too long to speak in one go.', { message: `provider echoed ${marker}`, heard: marker });
    };
    const dataDir = await mkdtemp(path.join(tmpdir(), 'vt-log-'));
    const store = await createStore({ backend: 'memory', dataDir, dataKey: Buffer.alloc(32, 1) });
    const log = capture([]);
    const engine = new Engine({
      store,
      logger: log.logger,
      providers: {
        stt: { name: 'none', reliable: true, transcribe: refuse },
        chat: { name: 'none', reply: refuse, extractMemories: refuse, insight: refuse },
        tts: { name: 'none', synthesize: refuse },
        cloner: { name: 'none', minSpeechSec: 3, clone: refuse },
      },
    });
    const replies: OutboundReply[] = [];
    try {
      await engine.handle(
        { id: 'm1', channel: 'console', chatId: 'u1', userId: 'u1', receivedAtMs: Date.now(), text: 'hello' },
        { reply: async (r) => void replies.push(r), activity: async () => undefined, status: async () => async () => undefined },
      );
    } finally {
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    }
    expect(replies.at(-1)).toMatchObject({ kind: 'error', text: 'That text is too long to speak in one go.' });
    const refused = log
      .text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'user input refused');
    expect(refused).toMatchObject({ code: 'TEXT_TOO_LONG' });
    expect(refused).not.toHaveProperty('details');
    expect(log.text()).not.toContain(marker);
  });
});
