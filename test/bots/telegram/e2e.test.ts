/**
 * End to end: the real grammY bot, the real offline engine (pocketsphinx, espeak-ng preview voice,
 * template chat model, SQLite) and the local Bot API server, with real speech clips sent as
 * Telegram voice notes (Ogg/Opus mono, as ffmpeg -c:a libopus -ac 1 makes them).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Update } from 'grammy/types';
import { startTelegramBot, type TelegramBotHandle } from '../../../src/bots/telegram/index.js';
import { silentLogger } from '../../../src/core/log.js';
import { createTestApp, type TestApp } from '../../helpers/app.js';
import { ffprobeJson, toOggOpus } from '../../helpers/audio.js';
import { describeIfSpeech, readSpeech } from '../../helpers/speech.js';
import { FakeTelegramServer, type RecordedCall } from '../../fakes/telegram/server.js';
import { readZip } from '../../helpers/unzip.js';

describeIfSpeech('Telegram end to end on the offline stack', () => {
  let fake: FakeTelegramServer;
  let app: TestApp;
  let bot: TelegramBotHandle;
  const ada = { id: 1001, first_name: 'Ada', last_name: 'Lovelace', language_code: 'en' };
  const userKey = `telegram:${ada.id}`;

  beforeAll(async () => {
    fake = await FakeTelegramServer.start();
    app = await createTestApp({ env: { ENROLL_MIN_SPEECH_SEC: '12', INSIGHT_EVERY: '0', MEMORY_EVERY: '0' } });
    bot = await startTelegramBot({
      token: fake.token,
      engine: app.engine,
      logger: silentLogger,
      apiRoot: fake.apiRoot,
      pollingTimeoutSec: 5,
      throttle: { privateChatIntervalMs: 50 },
    });
  });

  afterAll(async () => {
    await bot?.stop();
    await app?.engine.whenIdle();
    await app?.close();
    await fake?.close();
  });

  /** What a bot message shows: the text of a message or the caption of a voice note. */
  const shown = (call: RecordedCall) => String(call.params.text ?? call.params.caption ?? '');

  /**
   * Runs `act` and resolves with the first successful `method` call made after it whose shown text
   * matches `pattern` (and that is addressed to `chatId`).
   */
  async function expectCall(method: string, pattern: RegExp, act: () => void, chatId = ada.id, timeoutMs = 30_000): Promise<RecordedCall> {
    const mark = fake.calls.length;
    act();
    try {
      return await fake.waitForCall(
        method,
        (c) => fake.calls.indexOf(c) >= mark && c.status === 200 && String(c.params.chat_id) === String(chatId) && pattern.test(shown(c)),
        timeoutMs,
      );
    } catch (err) {
      const seen = fake.calls.slice(mark).map((c) => `${c.method} ${c.status} ${shown(c).slice(0, 120)}`);
      throw new Error(`no ${method} matching ${pattern}; calls since: ${JSON.stringify(seen, null, 1)}`, { cause: err });
    }
  }

  /** A clip of the speech folder as a Telegram voice note: Ogg/Opus mono. */
  const voiceOf = (relPath: string) => toOggOpus(readSpeech(relPath));

  it('enrolls, answers voice and text in a voice note, changes persona, refuses bad input and deletes everything', async () => {
    const start = await expectCall('sendMessage', /VoiceTwin/, () => fake.sendCommand('/start', { from: ada }));
    expect(shown(start)).toContain('Ada');
    expect(fake.myCommands.map((c) => (c as { command: string }).command)).toContain('enroll');

    // Consent: the phrase with the one "I agree" button, the spoken consent, then that button.
    const consent = await expectCall('sendMessage', /need your consent/, () => fake.sendCommand('/enroll', { from: ada }));
    expect(JSON.stringify(consent.params.reply_markup)).toContain('consent:agree');
    const spoken = await expectCall('sendMessage', /spoken consent.*my message above/s, () =>
      fake.sendVoice(voiceOf('coqui-tts-ljspeech/LJ001-0004.wav'), { from: ada, durationSec: 5.14 }),
    );
    expect(spoken.params.reply_markup).toBeUndefined();
    const agree = fake.botMessages(ada.id).find((m) => m.message_id === (consent.response as { result: { message_id: number } }).result.message_id);
    await expectCall('sendMessage', /Consent recorded/, () => fake.pressButton('consent:agree', { from: ada, message: agree! }));

    // A forwarded voice note is never a sample.
    await expectCall('sendMessage', /Forwarded voice notes cannot be used/, () =>
      fake.sendVoice(voiceOf('coqui-tts-ljspeech/LJ001-0006.wav'), { from: ada, durationSec: 5.68, forwarded: true }),
    );

    // Samples until the clone starts, then the status message is edited to "ready" and the greeting arrives.
    const samples = ['LJ001-0001.wav', 'LJ001-0005.wav', 'LJ001-0009.wav', 'LJ001-0011.wav'];
    let cloning = false;
    for (const name of samples) {
      const reply = await expectCall('sendMessage', /Sample accepted|Cloning your voice now/, () =>
        fake.sendVoice(voiceOf(`coqui-tts-ljspeech/${name}`), { from: ada, durationSec: 8 }),
      );
      if (/Cloning your voice now/.test(shown(reply))) {
        cloning = true;
        break;
      }
    }
    expect(cloning).toBe(true);
    await fake.waitForCall('editMessageText', (c) => /voice is ready/.test(shown(c)), 30_000);
    const greeting = await fake.waitForCall('sendVoice', (c) => /This is your twin speaking/.test(shown(c)), 30_000);
    expect(greeting.files.voice!.bytes.subarray(0, 4).toString()).toBe('OggS');
    expect((await app.store.profiles.get(userKey))?.state).toBe('ready');

    // A voice turn: the Telegram-style JFK voice note in, a native voice note out.
    const jfk = readSpeech('derived-telegram-oga/jfk_telegram_style.oga');
    const turn = await expectCall('sendVoice', /You said:/, () => fake.sendVoice(jfk, { from: ada, durationSec: 11.01 }));
    expect(turn.contentType).toMatch(/^multipart\/form-data/);
    const probe = ffprobeJson(turn.files.voice!.bytes);
    expect(probe.format.format_name).toBe('ogg');
    expect(probe.streams).toHaveLength(1);
    expect(probe.streams[0]).toMatchObject({ codec_type: 'audio', codec_name: 'opus', channels: 1 });
    const statedSec = Number(turn.params.duration);
    expect(statedSec).toBeGreaterThanOrEqual(1);
    expect(Math.abs(Number(probe.format.duration) - statedSec)).toBeLessThanOrEqual(0.6);
    expect(fake.callsTo('sendChatAction').map((c) => c.params.action)).toContain('record_voice');

    // A text turn (redelivered updates are covered by the restart test below).
    const textTurn = await expectCall('sendVoice', /./, () => fake.sendText('How are you today?', { from: ada }));
    expect(shown(textTurn)).not.toMatch(/You said:/);

    // Persona change through the inline keyboard.
    const picker = await expectCall('sendMessage', /Choose how your twin talks/, () => fake.sendCommand('/style', { from: ada }));
    expect(JSON.stringify(picker.params.reply_markup)).toContain('style:coaching');
    const pickerMessage = fake.botMessages(ada.id).find((m) => m.message_id === (picker.response as { result: { message_id: number } }).result.message_id)!;
    let press: Update | undefined;
    await expectCall('sendMessage', /now coaching/, () => (press = fake.pressButton('style:coaching', { from: ada, message: pickerMessage })));
    expect(fake.isCallbackAnswered(press!)).toBe(true);
    expect((await app.store.users.get(userKey))?.persona).toBe('coaching');

    // Bad inputs, each answered clearly, and another chat still served meanwhile.
    const getFilesBefore = fake.callsTo('getFile').length;
    await expectCall('sendMessage', /MB/, () => fake.sendVoice(Buffer.from('OggS'), { from: ada, durationSec: 60, declaredSizeBytes: 30_000_000 }));
    expect(fake.callsTo('getFile')).toHaveLength(getFilesBefore);
    await expectCall('sendMessage', /not an audio format/, () =>
      fake.sendDocument(Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n'), { from: ada, fileName: 'notes.pdf', mimeType: 'application/pdf' }),
    );
    await expectCall('sendMessage', /damaged|incomplete|could not/i, () => fake.sendVoice(jfk.subarray(0, 1500), { from: ada, durationSec: 11 }));
    await expectCall('sendMessage', /./, () => fake.sendSticker({ from: ada }));
    await expectCall('sendMessage', /don't know the command \/teleport/, () => fake.sendCommand('/teleport now', { from: ada }));
    const bob = { id: 2002, first_name: 'Bob', language_code: 'en' };
    await expectCall('sendVoice', /./, () => fake.sendText('Hello, is anyone there?', { from: bob }), bob.id);

    // /export sends a zip of everything stored, as a document with sendDocument.
    const exported = await expectCall('sendDocument', /Everything I store about you/, () => fake.sendCommand('/export', { from: ada }));
    const upload = exported.files.document!;
    expect(upload.fileName).toMatch(/^voicetwin-export-.*\.zip$/);
    const archive = readZip(upload.bytes);
    const exportJson = JSON.parse(archive.get('voicetwin-export.json')!.toString('utf8')) as { samples: { file: string }[]; history: unknown[] };
    expect(exportJson.samples.length).toBeGreaterThan(0);
    expect(exportJson.history.length).toBeGreaterThan(0);
    for (const sample of exportJson.samples) expect(archive.get(sample.file)!.subarray(0, 4).toString('latin1')).toBe('RIFF');

    // /delete asks first; the confirmation button removes every record and blob of the user.
    const ask = await expectCall('sendMessage', /deletes everything/, () => fake.sendCommand('/delete', { from: ada }));
    const askMessage = fake.botMessages(ada.id).find((m) => m.message_id === (ask.response as { result: { message_id: number } }).result.message_id)!;
    const deleted = await expectCall('sendMessage', /Deleted: \d+ voice samples/, () => fake.pressButton('delete:confirm', { from: ada, message: askMessage }));
    expect(shown(deleted)).toMatch(/your cloned voice/);
    const left = await app.store.summarize(userKey);
    expect(left.profile).toBeUndefined();
    expect(left.samples).toEqual([]);
    expect(left.memories).toEqual([]);
    expect(left.historyTurns).toBe(0);
    expect(left.blobKeys).toEqual([]);
  });
});

describe('Telegram end to end: faults and a restart', () => {
  it('delivers a reply once through 429 and 500, and after a restart answers no update twice and keeps the history', async () => {
    const fake = await FakeTelegramServer.start();
    const dataDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-telegram-'));
    const user = { id: 3003, first_name: 'Grace', language_code: 'en' };
    const start = async () => {
      const app = await createTestApp({ dataDir, env: { INSIGHT_EVERY: '0', MEMORY_EVERY: '0' } });
      const bot = await startTelegramBot({ token: fake.token, engine: app.engine, logger: silentLogger, apiRoot: fake.apiRoot, pollingTimeoutSec: 5 });
      return { app, bot };
    };
    let first: Awaited<ReturnType<typeof start>> | undefined;
    let second: Awaited<ReturnType<typeof start>> | undefined;
    try {
      first = await start();
      fake.failNext('sendVoice', { error_code: 429, description: 'Too Many Requests: retry after 1', parameters: { retry_after: 1 } });
      fake.failNext('sendVoice', { error_code: 500, description: 'Internal Server Error' });
      fake.sendText('Tell me something nice.', { from: user });
      const attempts = await fake.waitForCalls('sendVoice', 3, { timeoutMs: 30_000 });
      expect(attempts.map((c) => c.status)).toEqual([429, 500, 200]);
      expect(attempts[2]!.files.voice!.bytes.equals(attempts[0]!.files.voice!.bytes)).toBe(true);

      const update = fake.sendText('Are you still there?', { from: user });
      await fake.waitForCalls('sendVoice', 4, { timeoutMs: 30_000 });
      // Crash: the process goes away; Telegram delivers the last update again to the new process.
      await first.bot.stop();
      await first.app.close();
      first = undefined;
      second = await start();
      fake.redeliver(update);
      const app = second.app;
      await fake.waitUntil(() => app.events.some((e) => e.type === 'duplicate'), 15_000, 'the redelivery to be dropped');
      fake.sendText('Good, then one more question.', { from: user });
      await fake.waitForCalls('sendVoice', 5, { timeoutMs: 30_000 });
      await new Promise((r) => setTimeout(r, 300));
      const delivered = fake.botMessages(user.id).filter((m) => m.voice);
      expect(delivered).toHaveLength(3);
      const history = await app.store.history.recent(`telegram:${user.id}`, 20);
      expect(history.filter((t) => t.role === 'user').map((t) => t.text)).toEqual([
        'Tell me something nice.',
        'Are you still there?',
        'Good, then one more question.',
      ]);
    } finally {
      await first?.bot.stop();
      await first?.app.close();
      await second?.bot.stop();
      await second?.app.close();
      await fake.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
