/**
 * The real grammY bot, started by startTelegramBot, against the local Bot API server in
 * test/fakes/telegram, with a recording engine.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { startTelegramBot, type TelegramBotHandle, type TelegramBotOptions } from '../../../src/bots/telegram/index.js';
import { VOICE_UNDELIVERABLE_NOTICE } from '../../../src/bots/telegram/render.js';
import { isUserInputError } from '../../../src/core/errors.js';
import { createLogger } from '../../../src/core/log.js';
import { RecipientUnavailableError, type InboundMessage } from '../../../src/core/types.js';
import { FakeTelegramServer, TELEGRAM_ERRORS } from '../../fakes/telegram/server.js';
import { createHttpServer } from '../../../src/http/server.js';
import { TEST_HTTP_SETTINGS } from '../../http/helpers.js';
import { RecordingEngine, makeOggOpus, voiceNote, type Script } from './recording-engine.js';

const logLines: string[] = [];
const logger = createLogger({
  level: 'debug',
  destination: new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  }),
});

interface Harness {
  fake: FakeTelegramServer;
  engine: RecordingEngine;
  bot: TelegramBotHandle;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(script?: Script, options: Partial<TelegramBotOptions> = {}, existing?: FakeTelegramServer): Promise<Harness> {
  const fake = existing ?? (await FakeTelegramServer.start());
  if (!existing) cleanups.push(() => fake.close());
  const engine = new RecordingEngine(script);
  const bot = await startTelegramBot({
    token: fake.token,
    engine,
    logger,
    apiRoot: fake.apiRoot,
    pollingTimeoutSec: 5,
    throttle: { privateChatIntervalMs: 20, groupChatIntervalMs: 20 },
    ...options,
  });
  cleanups.push(() => bot.stop());
  return { fake, engine, bot };
}

describe('Telegram bot against the local Bot API server', () => {
  it('starts with getMe, deleteWebhook and setMyCommands (no operator commands) before polling', async () => {
    const { fake, bot } = await setup();
    await fake.waitForCall('getUpdates');
    const order = fake.calls.map((c) => c.method);
    expect(order.slice(0, 4)).toEqual(['getMe', 'deleteWebhook', 'setMyCommands', 'getUpdates']);
    expect(fake.myCommands).toEqual([
      { command: 'start', description: 'Say hello and see what I can do' },
      { command: 'enroll', description: 'Clone your voice from a few voice notes' },
      { command: 'style', description: 'Pick how your twin talks' },
    ]);
    const poll = fake.callsTo('getUpdates')[0]!;
    expect(poll.params.allowed_updates).toEqual(['message', 'callback_query']);
    expect(Number(poll.params.timeout)).toBe(5);
    expect(bot.bot.botInfo.username).toBe('VoiceTwinTestBot');
  });

  it('refuses to start with a wrong token', async () => {
    const fake = await FakeTelegramServer.start();
    cleanups.push(() => fake.close());
    await expect(
      startTelegramBot({ token: '1:wrong', engine: new RecordingEngine(), logger, apiRoot: fake.apiRoot }),
    ).rejects.toMatchObject({ error_code: 401 });
  });

  it('hands a voice note to the engine, which downloads the exact bytes through getFile', async () => {
    const bytes = await makeOggOpus(1.5);
    let downloaded: Buffer | undefined;
    const { fake, engine } = await setup(async (message) => {
      downloaded = await message.audio?.download?.();
    });
    const update = fake.sendVoice(bytes, { durationSec: 1.5 });
    const [message] = await engine.waitForMessages(1);
    expect(message).toMatchObject({
      id: `telegram:update:${update.update_id}`,
      channel: 'telegram',
      chatId: String(fake.defaultUser.id),
      userId: String(fake.defaultUser.id),
      displayName: 'Ada Lovelace',
      languageCode: 'en',
    });
    expect(message!.audio).toMatchObject({ isVoiceNote: true, declaredSizeBytes: bytes.length, declaredDurationSec: 2, declaredMime: 'audio/ogg', platformMaxBytes: 20 * 1024 * 1024 });
    await fake.waitForCall('GET /file');
    await fake.waitUntil(() => downloaded !== undefined);
    expect(downloaded!.equals(bytes)).toBe(true);
    expect(fake.callsTo('getFile')[0]!.params.file_id).toBe(update.message!.voice!.file_id);
  });

  it('sends a voice reply with sendVoice as multipart Ogg/Opus with duration and the text as caption', async () => {
    const reply = await makeOggOpus(2.4, 330);
    const { fake } = await setup(async (_m, target) => {
      await target.activity('record_voice');
      await target.reply({ kind: 'answer', text: 'Hello from your twin.', voice: voiceNote(reply, 2.4), sendTextWithVoice: true, voiceLabel: 'offline preview voice' });
    });
    fake.sendText('hi');
    const call = await fake.waitForCall('sendVoice');
    expect(call.contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(call.files.voice!.bytes.equals(reply)).toBe(true);
    expect(call.params.voice).toMatch(/^attach:\/\//);
    expect(Number(call.params.duration)).toBe(2);
    expect(call.params.caption).toBe('Hello from your twin.\n\n🔈 offline preview voice');
    expect(String(call.params.chat_id)).toBe(String(fake.defaultUser.id));
    expect(call.status).toBe(200);
    // The adapter shows "typing" as soon as the update arrives; the engine then shows what it does.
    const actions = fake.callsTo('sendChatAction').map((c) => c.params.action);
    expect(actions[0]).toBe('typing');
    expect(actions).toContain('record_voice');
    expect(fake.callsTo('sendMessage')).toHaveLength(0);
  });

  it('sends a caption over 1024 characters as a separate message after the voice note, with the buttons', async () => {
    const reply = await makeOggOpus(1);
    const longText = 'This is a long answer. '.repeat(60);
    const { fake } = await setup(async (_m, target) => {
      await target.reply({ kind: 'answer', text: longText, voice: voiceNote(reply, 1), sendTextWithVoice: true, buttons: [[{ label: 'More', data: 'more' }]] });
    });
    fake.sendText('tell me a lot');
    const text = await fake.waitForCall('sendMessage');
    const voice = fake.callsTo('sendVoice')[0]!;
    expect(voice.atMs).toBeLessThanOrEqual(text.atMs);
    expect(voice.params.caption).toBeUndefined();
    expect(voice.params.reply_markup).toBeUndefined();
    expect(text.params.text).toBe(longText.trim());
    expect(text.params.reply_markup).toEqual({ inline_keyboard: [[{ text: 'More', callback_data: 'more' }]] });
  });

  it('leaves the text out when the user turned text-with-voice off', async () => {
    const reply = await makeOggOpus(1);
    const { fake } = await setup(async (_m, target) => {
      await target.reply({ kind: 'answer', text: 'secret transcript', voice: voiceNote(reply, 1), sendTextWithVoice: false });
    });
    fake.sendText('hi');
    const voice = await fake.waitForCall('sendVoice');
    expect(voice.params.caption).toBeUndefined();
    await new Promise((r) => setTimeout(r, 200));
    expect(fake.callsTo('sendMessage')).toHaveLength(0);
  });

  it('falls back to sendAudio on VOICE_MESSAGES_FORBIDDEN, and to text when that fails too', async () => {
    const reply = await makeOggOpus(1);
    const { fake } = await setup(async (m, target) => {
      await target.reply({ kind: 'answer', text: m.text === 'no text' ? undefined : 'The answer in words.', voice: voiceNote(reply, 1), sendTextWithVoice: false });
    });
    fake.forbidVoiceMessages(fake.defaultUser.id);

    fake.sendText('first');
    const audio = await fake.waitForCall('sendAudio');
    expect(fake.callsTo('sendVoice')[0]!.response).toMatchObject({ ok: false, error_code: 400, description: 'Bad Request: VOICE_MESSAGES_FORBIDDEN' });
    expect(audio.status).toBe(200);
    expect(audio.files.audio!.bytes.equals(reply)).toBe(true);
    expect(Number(audio.params.duration)).toBe(1);

    fake.failNext('sendAudio', { error_code: 400, description: 'Bad Request: CHAT_SEND_AUDIOS_FORBIDDEN' });
    fake.sendText('second');
    const text = await fake.waitForCall('sendMessage');
    expect(text.params.text).toBe('The answer in words.');

    fake.failNext('sendAudio', { error_code: 400, description: 'Bad Request: CHAT_SEND_AUDIOS_FORBIDDEN' });
    fake.sendText('no text');
    const notice = await fake.waitForCall('sendMessage', (c) => c.params.text !== 'The answer in words.');
    expect(notice.params.text).toBe(VOICE_UNDELIVERABLE_NOTICE);
  });

  it('honours 429 retry_after and retries a 5xx, delivering the reply exactly once', async () => {
    const reply = await makeOggOpus(1);
    const { fake } = await setup(async (_m, target) => {
      await target.reply({ kind: 'answer', voice: voiceNote(reply, 1) });
    });
    fake.failNext('sendVoice', TELEGRAM_ERRORS.tooManyRequests(1));
    fake.failNext('sendVoice', TELEGRAM_ERRORS.internal());
    fake.sendText('hi');
    const calls = await fake.waitForCalls('sendVoice', 3, { timeoutMs: 20_000 });
    expect(calls.map((c) => c.status)).toEqual([429, 500, 200]);
    expect(calls[1]!.atMs - calls[0]!.atMs).toBeGreaterThanOrEqual(1000);
    expect(calls[2]!.files.voice!.bytes.equals(reply)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(fake.botMessages(fake.defaultUser.id).filter((m) => m.voice)).toHaveLength(1);
  });

  it('passes a 30 MB voice note with its declared size and never calls getFile itself', async () => {
    let downloadError: unknown;
    const { fake, engine } = await setup(async (message) => {
      // A careless engine that downloads anyway meets Telegram's "file is too big" as a user error.
      if (message.text === undefined) await message.audio?.download?.().catch((err: unknown) => (downloadError = err));
    });
    fake.sendVoice(Buffer.from('OggS'), { durationSec: 1800, declaredSizeBytes: 30_000_000 });
    const [message] = await engine.waitForMessages(1);
    expect(message!.audio).toMatchObject({ declaredSizeBytes: 30_000_000, platformMaxBytes: 20 * 1024 * 1024, declaredDurationSec: 1800 });
    await fake.waitUntil(() => downloadError !== undefined);
    expect(isUserInputError(downloadError) && downloadError.code).toBe('FILE_TOO_LARGE');
    expect(fake.callsTo('GET /file')).toHaveLength(0);
  });

  it('maps the same update delivered twice to the same id, across a restart', async () => {
    const { fake, engine, bot } = await setup();
    const update = fake.sendText('once');
    await engine.waitForMessages(1);
    await bot.stop();
    cleanups.pop();
    const second = await setup(undefined, {}, fake);
    fake.redeliver(update);
    const [again] = await second.engine.waitForMessages(1);
    expect(again!.id).toBe(engine.messages[0]!.id);
    expect(again!.id).toBe(`telegram:update:${update.update_id}`);
  });

  it('answers every callback query and passes its data as the action', async () => {
    const { fake, engine } = await setup(async (m, target) => {
      if (m.command?.name === 'style') {
        await target.reply({ kind: 'info', text: 'Pick a style', buttons: [[{ label: 'Coaching', data: 'persona:coaching' }]] });
      }
    });
    fake.sendCommand('/style@VoiceTwinTestBot');
    const keyboard = await fake.waitForCall('sendMessage');
    expect(keyboard.params.reply_markup).toEqual({ inline_keyboard: [[{ text: 'Coaching', callback_data: 'persona:coaching' }]] });
    const press = fake.pressButton('persona:coaching');
    const [command, action] = await engine.waitForMessages(2);
    expect(command!.command).toEqual({ name: 'style', args: '' });
    expect(action).toMatchObject({ action: 'persona:coaching', chatId: String(fake.defaultUser.id) });
    await fake.waitForCall('answerCallbackQuery');
    expect(fake.isCallbackAnswered(press)).toBe(true);
  });

  it('splits long text, and edits a status message in place ignoring "not modified"', async () => {
    const { fake, engine } = await setup(async (_m, target) => {
      const edit = await target.status('Cloning your voice… 0%');
      await edit('Cloning your voice… 50%');
      await edit('Cloning your voice… 50%');
      await edit('Cloning your voice… 100%');
      await target.reply({ kind: 'answer', text: 'x'.repeat(5000) });
    });
    fake.sendText('go');
    await engine.waitForMessages(1);
    const messages = await fake.waitForCalls('sendMessage', 3);
    expect(messages[0]!.params.text).toBe('Cloning your voice… 0%');
    expect((messages[1]!.params.text as string).length).toBe(4096);
    expect((messages[2]!.params.text as string).length).toBe(904);
    const edits = fake.callsTo('editMessageText');
    expect(edits.map((e) => e.params.text)).toEqual(['Cloning your voice… 50%', 'Cloning your voice… 100%']);
    expect(edits.every((e) => e.status === 200)).toBe(true);
    expect(engine.errors).toEqual([]);
    const statusMessage = fake.botMessages(fake.defaultUser.id)[0]!;
    expect(statusMessage.text).toBe('Cloning your voice… 100%');
  });

  it('reports a blocked user as RecipientUnavailableError from the channel sender', async () => {
    const { fake, engine } = await setup();
    fake.sendText('hi');
    await engine.waitForMessages(1);
    await engine.sender!.send(String(fake.defaultUser.id), { kind: 'info', text: 'Your voice is ready.' });
    fake.blockChat(fake.defaultUser.id);
    const error = await engine.sender!.send(String(fake.defaultUser.id), { kind: 'info', text: 'Broadcast' }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RecipientUnavailableError);
    expect(error).toMatchObject({ channel: 'telegram', chatId: String(fake.defaultUser.id), reason: 'Forbidden: bot was blocked by the user' });
    const missing = await engine.sender!.send('999999', { kind: 'info', text: 'x' }).catch((err: unknown) => err);
    expect(missing).toBeInstanceOf(RecipientUnavailableError);
  });

  it('keeps one chat in order while other chats are served concurrently', async () => {
    const order: string[] = [];
    let releaseSlow!: () => void;
    const slow = new Promise<void>((resolve) => (releaseSlow = resolve));
    const { fake, engine } = await setup(async (m: InboundMessage) => {
      order.push(`start ${m.chatId} ${m.text}`);
      if (m.text === 'slow') await slow;
      order.push(`end ${m.chatId} ${m.text}`);
    });
    const bob = { id: 2002, first_name: 'Bob' };
    fake.sendText('slow');
    fake.sendText('after slow');
    await engine.waitForMessages(1);
    fake.sendText('bob', { from: bob });
    await engine.waitForMessages(2);
    expect(engine.messages[1]!.text).toBe('bob');
    releaseSlow();
    await engine.waitForMessages(3);
    await fake.waitUntil(() => order.length === 6);
    const ada = order.filter((e) => e.includes(' 1001 '));
    expect(ada).toEqual(['start 1001 slow', 'end 1001 slow', 'start 1001 after slow', 'end 1001 after slow']);
  });

  it('paces messages to one chat at the configured interval', async () => {
    const { fake } = await setup(
      async (_m, target) => {
        for (const n of [1, 2, 3]) await target.reply({ kind: 'answer', text: `part ${n}` });
      },
      { throttle: { privateChatIntervalMs: 400 } },
    );
    fake.sendText('go');
    const calls = await fake.waitForCalls('sendMessage', 3);
    // Paced at the client; the arrival times carry some network jitter on a busy machine.
    expect(calls[1]!.atMs - calls[0]!.atMs).toBeGreaterThanOrEqual(340);
    expect(calls[2]!.atMs - calls[1]!.atMs).toBeGreaterThanOrEqual(340);
    expect(calls[2]!.atMs - calls[0]!.atMs).toBeGreaterThanOrEqual(780);
  });

  it('passes a sticker on without content and a PDF document as audio to be sniffed', async () => {
    const { fake, engine } = await setup(async (m, target) => {
      if (!m.audio && !m.text) await target.reply({ kind: 'error', text: 'I understand voice notes and text.' });
    });
    fake.sendSticker();
    fake.sendDocument(Buffer.from('%PDF-1.4\n'), { fileName: 'cv.pdf', mimeType: 'application/pdf' });
    const [sticker, pdf] = await engine.waitForMessages(2);
    expect(sticker!.audio).toBeUndefined();
    expect(pdf!.audio).toMatchObject({ isVoiceNote: false, declaredMime: 'application/pdf', fileName: 'cv.pdf', declaredSizeBytes: 9 });
    const answer = await fake.waitForCall('sendMessage');
    expect(answer.params.text).toBe('I understand voice notes and text.');
    expect(fake.callsTo('getFile')).toHaveLength(0);
  });

  it('shows the voice label once when the text already carries it', async () => {
    const reply = await makeOggOpus(1);
    const label = 'Offline preview voice: an approximation.';
    const { fake } = await setup(async (_m, target) => {
      await target.reply({ kind: 'answer', text: `Hi there.\n\n(${label})`, voice: voiceNote(reply, 1), sendTextWithVoice: true, voiceLabel: label });
    });
    fake.sendText('hi');
    const voice = await fake.waitForCall('sendVoice');
    expect(voice.params.caption).toBe(`Hi there.\n\n(${label})`);
  });

  it('never writes the bot token to the logs', () => {
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.join('')).not.toMatch(/AAFakeTokenForTests/);
  });
});

describe('Telegram bot in webhook mode', () => {
  it('sets the webhook with the secret, rejects a wrong secret and handles updates with the right one', async () => {
    const fake = await FakeTelegramServer.start();
    cleanups.push(() => fake.close());
    const http = await createHttpServer({ settings: TEST_HTTP_SETTINGS, logger });
    const { url: base } = await http.listen();
    cleanups.push(() => http.close());
    const engine = new RecordingEngine(async (_m, target) => target.reply({ kind: 'answer', text: 'pong' }));
    const bot = await startTelegramBot({
      token: fake.token,
      engine,
      logger,
      apiRoot: fake.apiRoot,
      webhook: { url: 'https://twin.example.org/telegram/hook', secret: 's3cret_token-1', mount: (route) => http.mountWebhook(route) },
    });
    cleanups.push(() => bot.stop());
    expect(bot.mode).toBe('webhook');
    expect(fake.callsTo('deleteWebhook')).toHaveLength(0);
    const set = fake.callsTo('setWebhook')[0]!;
    expect(set.params).toMatchObject({ url: 'https://twin.example.org/telegram/hook', secret_token: 's3cret_token-1', allowed_updates: ['message', 'callback_query'] });
    const local = `${base}/telegram/hook`;
    const update = {
      update_id: 9001,
      message: { message_id: 1, date: 1, chat: { id: 1001, type: 'private', first_name: 'Ada' }, from: { id: 1001, is_bot: false, first_name: 'Ada' }, text: 'ping' },
    };

    const wrong = await fetch(local, { method: 'POST', headers: { 'content-type': 'application/json', 'X-Telegram-Bot-Api-Secret-Token': 'nope' }, body: JSON.stringify(update) });
    expect(wrong.status).toBe(401);
    const missing = await fetch(local, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(update) });
    expect(missing.status).toBe(401);
    const elsewhere = await fetch(`${base}/other`, { method: 'POST', body: '{}' });
    expect(elsewhere.status).toBe(404);
    expect(engine.messages).toHaveLength(0);

    // The fake delivers through the webhook it was given, with the secret header.
    expect(fake.webhookInfo?.secretToken).toBe('s3cret_token-1');
    fake.routeWebhookTo(local);
    fake.sendText('ping');
    const [message] = await engine.waitForMessages(1);
    expect(message!.text).toBe('ping');
    await fake.waitUntil(() => fake.webhookDeliveries.length === 1);
    expect(fake.webhookDeliveries[0]!.status).toBe(200);
    const pong = await fake.waitForCall('sendMessage');
    expect(pong.params.text).toBe('pong');
  });

  it('generates and registers a random secret when none is configured', async () => {
    const fake = await FakeTelegramServer.start();
    cleanups.push(() => fake.close());
    const http = await createHttpServer({ settings: TEST_HTTP_SETTINGS, logger });
    const { url: base } = await http.listen();
    cleanups.push(() => http.close());
    const engine = new RecordingEngine(async (_m, target) => target.reply({ kind: 'answer', text: 'pong' }));
    const bot = await startTelegramBot({ token: fake.token, engine, logger, apiRoot: fake.apiRoot, webhook: { url: 'https://twin.example.org/tg', mount: (route) => http.mountWebhook(route) } });
    cleanups.push(() => bot.stop());
    const secret = fake.webhookInfo?.secretToken;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const unsigned = await fetch(`${base}/tg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"update_id":1}' });
    expect(unsigned.status).toBe(401);
    expect(unsigned.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    fake.routeWebhookTo(`${base}/tg`);
    fake.sendText('ping');
    await engine.waitForMessages(1);
    await fake.waitUntil(() => fake.webhookDeliveries.length === 1);
    expect(fake.webhookDeliveries[0]!.status).toBe(200);
  });
});
