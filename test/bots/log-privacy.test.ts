/**
 * The log policy end to end: the real engine (scripted providers, so the transcript, the reply and
 * the extracted memory carry known words) behind each real adapter (grammY, discord.js,
 * whatsapp-web.js structures) against the local fakes, with every send failing. The logger runs at
 * `trace` and is given no secret values, so only the structural layers of src/core/log.ts (error
 * serializer, redaction, token patterns) stand between the failures and the output. The captured
 * output is then searched for the user's words and for the bot tokens: none may appear.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDiscordBot } from '../../src/bots/discord/index.js';
import { startTelegramBot } from '../../src/bots/telegram/index.js';
import { startWhatsAppBot } from '../../src/bots/whatsapp/index.js';
import { Engine } from '../../src/core/engine.js';
import { createLogger, hashLogId, type Logger } from '../../src/core/log.js';
import type { Providers } from '../../src/core/providers.js';
import { createStore } from '../../src/core/store/index.js';
import type { Store } from '../../src/core/store/types.js';
import type { Channel, ChannelSender, ConversationEngine, InboundMessage, ReplyTarget } from '../../src/core/types.js';
import { FakeDiscord, OPTION_TYPE } from '../fakes/discord/server.js';
import { FakeTelegramServer, TELEGRAM_ERRORS } from '../fakes/telegram/server.js';
import { FakeWhatsAppClient } from '../fakes/whatsapp/fake-client.js';
import { makeSpeechWav, toOggOpus } from '../helpers/audio.js';

const tag = randomBytes(4).toString('hex');
/** The user's words, one unique marker per place they travel through. */
const WORDS = {
  text: `plumtext${tag}`,
  caption: `plumcaption${tag}`,
  transcript: `plumheard${tag}`,
  reply: `plumreply${tag}`,
  memory: `plummemory${tag}`,
  insight: `pluminsight${tag}`,
  remember: `plumremember${tag}`,
  say: `plumsay${tag}`,
  command: `plumcmd${tag}`,
};

/** All log output of one adapter's run, as written. */
class LogCapture {
  text = '';
  readonly logger: Logger;
  constructor() {
    const destination = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        this.text += chunk.toString('utf8');
        done();
      },
    });
    this.logger = createLogger({ level: 'trace', destination, secrets: [] });
  }
  lines(): Record<string, unknown>[] {
    return this.text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  /** Every user word and every secret found in the output. */
  leaks(secrets: string[]): string[] {
    const lower = this.text.toLowerCase();
    return [...Object.values(WORDS).filter((w) => lower.includes(w.toLowerCase())), ...secrets.filter((s) => this.text.includes(s))];
  }
}

/** Providers whose outputs carry the markers. */
function markedProviders(): Providers {
  return {
    stt: { name: 'marked-stt', reliable: true, transcribe: async (pcm) => ({ text: `I said ${WORDS.transcript} today`, durationSec: pcm.samples.length / pcm.sampleRateHz }) },
    chat: {
      name: 'marked-chat',
      reply: async (req) => ({ text: `Here is ${WORDS.reply}. You told me ${req.userText}.` }),
      extractMemories: async () => [`The user likes ${WORDS.memory}`],
      insight: async () => `You often mention ${WORDS.insight}.`,
    },
    tts: { name: 'marked-tts', synthesize: async ({ text }) => ({ bytes: makeSpeechWav(text.slice(0, 60)), characters: text.length }) },
    cloner: {
      name: 'marked-cloner',
      minSpeechSec: 1,
      clone: async () => ({ provider: 'marked-cloner', voiceId: 'v', params: {}, approximate: false, label: 'marked' }),
    },
  };
}

/** The real engine, counting finished turns and keeping the sender the adapter registers. */
class CountingEngine implements ConversationEngine {
  finished = 0;
  sender: ChannelSender | undefined;
  constructor(readonly engine: Engine) {}
  get commands() {
    return this.engine.commands;
  }
  async handle(message: InboundMessage, target: ReplyTarget): Promise<void> {
    try {
      await this.engine.handle(message, target);
    } finally {
      this.finished += 1;
    }
  }
  /** Engines with a durable intake: without a job queue, `submit` handles the message to completion. */
  async submit(message: InboundMessage, target?: ReplyTarget): Promise<boolean> {
    const intake = this.engine as unknown as { submit?: (m: InboundMessage, t?: ReplyTarget) => Promise<boolean> };
    if (!intake.submit) {
      await this.handle(message, target!);
      return true;
    }
    try {
      return await intake.submit.call(this.engine, message, target);
    } finally {
      this.finished += 1;
    }
  }
  registerMediaFetcher(channel: Channel, fetcher: unknown): void {
    (this.engine as unknown as { registerMediaFetcher?: (c: Channel, f: unknown) => void }).registerMediaFetcher?.call(this.engine, channel, fetcher);
  }
  registerSender(sender: ChannelSender): void {
    this.sender = sender;
    this.engine.registerSender(sender);
  }
}

async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

let dataDir: string;
let store: Store;
let voiceNote: Buffer;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-logs-'));
  store = await createStore({ backend: 'memory', dataDir, dataKey: randomBytes(32) });
  voiceNote = toOggOpus(makeSpeechWav('Hello there, this is a voice note about my day.'));
});
afterAll(async () => {
  await store?.close();
  await rm(dataDir, { recursive: true, force: true });
});

function makeEngine(logger: Logger): CountingEngine {
  return new CountingEngine(
    new Engine({ store, providers: markedProviders(), logger, settings: { memoryEvery: 1, insightEvery: 1, operators: [] } }),
  );
}

describe('no user words and no token in the logs when every send fails', () => {
  it('Telegram: Bot API errors (GrammyError payloads with captions) and a network failure', async () => {
    const logs = new LogCapture();
    const fake = await FakeTelegramServer.start();
    const engine = makeEngine(logs.logger);
    const bot = await startTelegramBot({ token: fake.token, engine, logger: logs.logger, apiRoot: fake.apiRoot, pollingTimeoutSec: 1, throttle: { privateChatIntervalMs: 0, groupChatIntervalMs: 0 } });
    try {
      await fake.waitForCall('getUpdates');
      // The voice note is refused (the user's privacy setting), the audio-file fallback and every
      // text fail with errors that are not "recipient gone", so GrammyErrors, with the request
      // payload (caption, text) attached, reach the adapter's and the engine's error logs.
      const badText = { error_code: 400, description: "Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 12" };
      fake.failNext('sendVoice', TELEGRAM_ERRORS.voiceForbidden(), 200);
      fake.failNext('sendAudio', { error_code: 400, description: 'Bad Request: failed to get HTTP URL content' }, 200);
      for (const method of ['sendMessage', 'editMessageText']) fake.failNext(method, badText, 200);
      for (const method of ['sendChatAction', 'answerCallbackQuery']) fake.failNext(method, TELEGRAM_ERRORS.chatNotFound(), 200);
      fake.sendCommand('/text on');
      fake.sendText(`Please keep ${WORDS.text} between us`);
      fake.sendVoice(voiceNote, { durationSec: 3, caption: `About ${WORDS.caption}` });
      fake.sendCommand(`/remember ${WORDS.remember}`);
      fake.sendCommand(`/say ${WORDS.say}`);
      fake.sendCommand(`/${WORDS.command}`);
      await waitUntil(() => engine.finished >= 6, 'six turns');
      await engine.engine.whenIdle();
      expect(fake.calls.filter((c) => c.status === 400 && /^send(Voice|Audio|Message)$/.test(c.method)).length).toBeGreaterThanOrEqual(6);
      const caption = fake.calls.find((c) => c.method === 'sendAudio' && String(c.params.caption ?? '').includes(WORDS.reply));
      expect(caption, 'an audio reply with the reply as caption was attempted').toBeDefined();
    } finally {
      await bot.stop();
    }
    // A send with the Bot API unreachable: grammY's HttpError wraps the fetch error, whose message
    // names the request URL, token included. The engine logs such failures with { err }.
    await fake.close();
    const err = await engine.sender!.send(String(fake.defaultUser.id), { kind: 'answer', text: `Late ${WORDS.reply}` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    logs.logger.child({ channel: 'telegram' }).error({ err }, 'could not deliver reply');

    expect(logs.lines().filter((l) => Number(l.level) >= 40).length).toBeGreaterThan(3);
    expect(logs.leaks([fake.token, fake.token.split(':')[1]!])).toEqual([]);
    expect(logs.text).toMatch(/failed to get HTTP URL content/);
    expect(logs.text).toMatch(/can't parse entities/);
    expect(logs.text).toMatch(/\/bot\[redacted\]\//);
    await engine.engine.stop();
  });

  it('Discord: API errors carrying the request body (message content and files)', async () => {
    const logs = new LogCapture();
    const fake = await FakeDiscord.start();
    const engine = makeEngine(logs.logger);
    const bot = await startDiscordBot({ token: fake.token, applicationId: fake.applicationId, guildId: fake.guildId, apiBase: fake.apiBase, engine, logger: logs.logger });
    try {
      const user = fake.addUser(`ana${tag}`);
      // Every message to the user's DM fails with an error that is not "recipient gone", so the
      // DiscordAPIError, with the request body (content, files) attached, reaches the error logs.
      const dm = fake.dmChannelId(user.id);
      fake.failMessagesIn(dm, { status: 400, code: 50035, message: 'Invalid Form Body' });
      fake.sendDirectMessage({ user, content: '/text on' });
      fake.sendDirectMessage({ user, content: `Please keep ${WORDS.text} between us` });
      const attachment = fake.hostAttachment(voiceNote, { filename: 'voice-message.ogg', contentType: 'audio/ogg', durationSec: 3, waveform: 'AAECAw==', channelId: dm });
      fake.sendDirectMessage({ user, attachments: [attachment], voice: true });
      await waitUntil(() => engine.finished >= 3, 'three DM turns');
      // A slash command whose interaction token expires before the answer: the adapter falls back
      // to the DM, which is blocked.
      const say = fake.sendSlashCommand({ user, name: 'say', options: [{ name: 'text', type: OPTION_TYPE.STRING, value: WORDS.say }] });
      fake.expireInteractionToken(say.id);
      fake.sendSlashCommand({ user, name: 'remember', options: [{ name: 'memory', type: OPTION_TYPE.STRING, value: WORDS.remember }] });
      await waitUntil(() => engine.finished >= 5, 'five turns');
      await engine.engine.whenIdle();
      const refused = fake.calls.filter((c) => c.errorCode === 50035);
      expect(refused.length).toBeGreaterThanOrEqual(4);
      expect(refused.some((c) => JSON.stringify(c.json ?? {}).includes(WORDS.reply))).toBe(true);
    } finally {
      await bot.stop();
    }
    expect(logs.lines().filter((l) => Number(l.level) >= 40).length).toBeGreaterThan(1);
    expect(logs.leaks([fake.token])).toEqual([]);
    expect(logs.text).toMatch(/Invalid Form Body/);
    await engine.engine.stop();
  });

  it('WhatsApp: failed sends of voice notes and texts', async () => {
    const logs = new LogCapture();
    const client = new FakeWhatsAppClient();
    const engine = makeEngine(logs.logger);
    const waDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-logs-wa-'));
    const bot = await startWhatsAppBot({ engine, logger: logs.logger, dataDir: waDir, client, minSendIntervalMs: 0, qrOutput: null, reconnect: { initialDelayMs: 20, maxDelayMs: 80 } });
    try {
      await waitUntil(() => bot.state === 'ready', 'ready');
      client.sendFailure = () =>
        new Error("Evaluation failed: TypeError: Cannot read properties of undefined (reading 'serialize')\n    at pptr:evaluate;WWebJS.sendMessage:1:200");
      const chatId = '4915112345678@c.us';
      client.receive({ chatId, type: 'chat', body: '/text on', notifyName: 'Ana' });
      client.receive({ chatId, type: 'chat', body: `Please keep ${WORDS.text} between us`, notifyName: 'Ana' });
      client.receive({ chatId, type: 'ptt', notifyName: 'Ana', media: { sizeBytes: voiceNote.length, mimetype: 'audio/ogg; codecs=opus', durationSec: 3 } }, { bytes: voiceNote });
      client.receive({ chatId, type: 'chat', body: `/remember ${WORDS.remember}`, notifyName: 'Ana' });
      client.receive({ chatId, type: 'chat', body: `/say ${WORDS.say}`, notifyName: 'Ana' });
      client.receive({ chatId, type: 'chat', body: `/${WORDS.command}`, notifyName: 'Ana' });
      await waitUntil(() => engine.finished >= 6, 'six turns');
      await bot.idle();
      await engine.engine.whenIdle();
    } finally {
      await bot.stop();
      await rm(waDir, { recursive: true, force: true });
    }
    expect(logs.lines().filter((l) => Number(l.level) >= 50).length).toBeGreaterThan(1);
    expect(logs.text).toMatch(/Evaluation failed/);
    expect(logs.leaks([])).toEqual([]);
    // The chat id is a phone number: logged as its keyed hash, the same on every line.
    expect(logs.text).not.toContain('4915112345678');
    expect(logs.text.split(`${hashLogId('4915112345678')}@c.us`).length).toBeGreaterThan(6);
    await engine.engine.stop();
  });
});
