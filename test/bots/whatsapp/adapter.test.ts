/**
 * The WhatsApp adapter against a fake whatsapp-web.js client that emits the library's own
 * `Message` structures built from raw WhatsApp Web data (test/fakes/whatsapp).
 */
import { chmod, lstat, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import wwebjs from 'whatsapp-web.js';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startWhatsAppBot, type WhatsAppBot } from '../../../src/bots/whatsapp/index.js';
import { replyText } from '../../../src/bots/whatsapp/replies.js';
import { isUserInputError } from '../../../src/core/errors.js';
import { RecipientUnavailableError, type VoiceNote } from '../../../src/core/types.js';
import { FakeWhatsAppClient } from '../../fakes/whatsapp/fake-client.js';
import { captureLogs, ffprobe, makeVoiceNote, readOpusHead, RecordingEngine, tempDataDir, waitUntil } from './support.js';

const USER = '4915112345678@c.us';
const OTHER_USER = '447700900123@c.us';
const GROUP = '120363025246125486@g.us';

let voice: VoiceNote;
beforeAll(async () => {
  voice = await makeVoiceNote('Hello, this is your twin speaking.');
});

const running: Array<{ bot: WhatsAppBot; remove(): Promise<void> }> = [];
afterEach(async () => {
  for (const entry of running.splice(0)) {
    await entry.bot.stop();
    await entry.remove();
  }
});

async function setup(options: { engine?: RecordingEngine; client?: FakeWhatsAppClient; minSendIntervalMs?: number; qrOutput?: NodeJS.WritableStream | null } = {}) {
  const engine = options.engine ?? new RecordingEngine();
  const client = options.client ?? new FakeWhatsAppClient();
  const logs = captureLogs();
  const data = await tempDataDir();
  const bot = await startWhatsAppBot({
    engine,
    logger: logs.logger,
    dataDir: data.dir,
    client,
    minSendIntervalMs: options.minSendIntervalMs ?? 0,
    qrOutput: options.qrOutput ?? null,
    reconnect: { initialDelayMs: 20, maxDelayMs: 80 },
  });
  running.push({ bot, remove: data.remove });
  if (client.startup === 'restored') await waitUntil(() => bot.state === 'ready', 'ready');
  return { engine, client, logs, bot, dataDir: data.dir };
}

function pttBytesOf(v: VoiceNote): Buffer {
  return v.oggOpus;
}

describe('inbound mapping', () => {
  it('maps a ptt voice note with the declared size, duration and a download through Message.downloadMedia', async () => {
    const { engine, client } = await setup();
    const bytes = pttBytesOf(voice);
    const sent = client.receive(
      { chatId: USER, type: 'ptt', notifyName: 'Ana', media: { sizeBytes: bytes.length, mimetype: 'audio/ogg; codecs=opus', durationSec: 3 } },
      { bytes },
    );
    await engine.waitForHandled(1);
    const { message } = engine.handled[0]!;
    expect(message).toMatchObject({
      id: `whatsapp:${sent.id._serialized}`,
      channel: 'whatsapp',
      chatId: USER,
      userId: USER,
      displayName: 'Ana',
      audio: { isVoiceNote: true, declaredSizeBytes: bytes.length, declaredDurationSec: 3, declaredMime: 'audio/ogg; codecs=opus' },
    });
    expect(message.id).toMatch(/^whatsapp:false_4915112345678@c\.us_3EB0[0-9A-F]{20}$/);
    expect(message.forwarded).toBeUndefined();
    expect(message.audio?.bytes).toBeUndefined();
    expect(client.pupPage.downloads).toBe(0);
    const downloaded = await message.audio!.download!();
    expect(downloaded.equals(bytes)).toBe(true);
    expect(client.pupPage.downloads).toBe(1);
  });

  it('maps an audio file as audio that is not a voice note', async () => {
    const { engine, client } = await setup();
    client.receive(
      { chatId: USER, type: 'audio', media: { sizeBytes: voice.oggOpus.length, mimetype: 'audio/mpeg', durationSec: 12, filename: 'memo.mp3' } },
      { bytes: voice.oggOpus },
    );
    await engine.waitForHandled(1);
    expect(engine.handled[0]!.message.audio).toMatchObject({ isVoiceNote: false, declaredMime: 'audio/mpeg', fileName: 'memo.mp3', declaredDurationSec: 12 });
  });

  it('splits commands with / and ! prefixes; ! only for known commands', async () => {
    const { engine, client } = await setup();
    client.receive({ chatId: USER, type: 'chat', body: '/enroll' });
    client.receive({ chatId: USER, type: 'chat', body: '!enroll' });
    client.receive({ chatId: USER, type: 'chat', body: '/Style   coaching please' });
    client.receive({ chatId: USER, type: 'chat', body: '!wow that was fast' });
    client.receive({ chatId: USER, type: 'chat', body: '/unknowncmd' });
    client.receive({ chatId: USER, type: 'chat', body: '  how are you?  ' });
    await engine.waitForHandled(6);
    const got = engine.handled.map(({ message }) => ({ command: message.command, text: message.text }));
    expect(got).toEqual([
      { command: { name: 'enroll', args: '' }, text: undefined },
      { command: { name: 'enroll', args: '' }, text: undefined },
      { command: { name: 'style', args: 'coaching please' }, text: undefined },
      { command: undefined, text: '!wow that was fast' },
      { command: { name: 'unknowncmd', args: '' }, text: undefined },
      { command: undefined, text: 'how are you?' },
    ]);
  });

  it('marks a forwarded voice note as forwarded', async () => {
    const { engine, client } = await setup();
    client.receive({ chatId: USER, type: 'ptt', isForwarded: true, forwardingScore: 2 }, { bytes: voice.oggOpus });
    await engine.waitForHandled(1);
    expect(engine.handled[0]!.message.forwarded).toBe(true);
    expect(engine.handled[0]!.message.audio?.isVoiceNote).toBe(true);
  });

  it('ignores messages from the bot itself and status updates, with a log line', async () => {
    const { engine, client, logs } = await setup();
    client.receive({ chatId: USER, type: 'chat', body: 'echo', fromMe: true });
    client.receive({ chatId: 'status@broadcast', author: USER, type: 'ptt' }, { bytes: voice.oggOpus });
    client.receive({ chatId: USER, type: 'e2e_notification' });
    await waitUntil(() => logs.lines.filter((l) => l.event === 'ignored').length === 3, 'three ignore log lines');
    expect(logs.lines.filter((l) => l.event === 'ignored').map((l) => l.reason)).toEqual(['from_me', 'status_broadcast', 'system_message']);
    expect(engine.handled).toHaveLength(0);
    expect(client.sent).toHaveLength(0);
  });

  it('stays silent in a group unless mentioned (by phone id or LID) or quoted, and logs the ignore', async () => {
    const { engine, client, logs } = await setup();
    client.receive({ chatId: GROUP, author: OTHER_USER, type: 'chat', body: 'hi all' });
    client.receive({ chatId: GROUP, author: OTHER_USER, type: 'ptt' }, { bytes: voice.oggOpus });
    await waitUntil(() => logs.lines.filter((l) => l.reason === 'group_without_mention').length === 2, 'group ignores');
    expect(engine.handled).toHaveLength(0);
    expect(client.sent).toHaveLength(0);

    const mention = client.receive({ chatId: GROUP, author: OTHER_USER, type: 'chat', body: '@15550001111 /enroll', mentionedIds: [client.botWid] });
    client.receive({ chatId: GROUP, author: OTHER_USER, type: 'chat', body: '@104010203040506 what do you think?', mentionedIds: [client.botLid] });
    client.receive({ chatId: GROUP, author: OTHER_USER, type: 'ptt', quotedParticipant: client.botWid }, { bytes: voice.oggOpus });
    await engine.waitForHandled(3);
    const [first, second, third] = engine.handled.map((h) => h.message);
    expect(first).toMatchObject({ chatId: GROUP, userId: OTHER_USER, command: { name: 'enroll', args: '' } });
    expect(second).toMatchObject({ chatId: GROUP, userId: OTHER_USER, text: 'what do you think?' });
    expect(third?.audio?.isVoiceNote).toBe(true);

    // Replies in a group quote the message they answer.
    await engine.handled[0]!.target.reply({ kind: 'info', text: 'Let us start.' });
    expect(client.sent.at(-1)).toMatchObject({ chatId: GROUP, content: 'Let us start.', options: { quotedMessageId: mention.id._serialized } });
  });
});

describe('bad inputs', () => {
  it('downloadMedia() yielding undefined (expired media) becomes EMPTY_AUDIO with a clear message', async () => {
    const { engine, client } = await setup();
    client.receive({ chatId: USER, type: 'ptt' }, { bytes: voice.oggOpus, stage: 'REUPLOADING' });
    client.receive({ chatId: USER, type: 'ptt' }, { bytes: voice.oggOpus, missing: true });
    await engine.waitForHandled(2);
    for (const { message } of engine.handled) {
      const err = await message.audio!.download!().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isUserInputError(err)).toBe(true);
      expect(err).toMatchObject({ code: 'EMPTY_AUDIO', userMessage: expect.stringMatching(/could not download that voice note/) });
    }
    // REUPLOADING is refused before any download; the missing blob is a CDN 404.
    expect(client.pupPage.downloads).toBe(1);
  });

  it('declares a 30 MB audio before anything is downloaded', async () => {
    const { engine, client } = await setup();
    const big = Buffer.alloc(30 * 1024 * 1024, 1);
    client.receive({ chatId: USER, type: 'audio', media: { sizeBytes: big.length, mimetype: 'audio/ogg; codecs=opus', durationSec: 1900 } }, { bytes: big });
    await engine.waitForHandled(1);
    expect(engine.handled[0]!.message.audio).toMatchObject({ declaredSizeBytes: 31_457_280, declaredDurationSec: 1900 });
    expect(client.pupPage.downloads).toBe(0);
  });

  it('answers an image with a hint instead of staying silent', async () => {
    const { engine, client } = await setup();
    client.receive({ chatId: USER, type: 'image', media: { sizeBytes: 1000, mimetype: 'image/jpeg' } });
    await waitUntil(() => client.sent.length === 1, 'hint');
    expect(client.sent[0]!.content).toMatch(/voice notes and read text/);
    expect(engine.handled).toHaveLength(0);
  });

  it('answers with an apology when the engine fails unexpectedly', async () => {
    const engine = new RecordingEngine(async () => {
      throw new Error('disk on fire');
    });
    const { client, logs } = await setup({ engine });
    client.receive({ chatId: USER, type: 'chat', body: 'hello' });
    await waitUntil(() => client.sent.length === 1, 'apology');
    expect(client.sent[0]!.content).toMatch(/^⚠️ Sorry, something went wrong/);
    expect(logs.text()).toContain('disk on fire');
  });
});

describe('outbound', () => {
  it('says the voice label once when the text already carries it', () => {
    const label = 'This is an offline preview voice.';
    expect(replyText({ kind: 'answer', text: `Hi there.\n\n(${label})`, voice, sendTextWithVoice: true, voiceLabel: label })).toBe(`Hi there.\n\n(${label})`);
    expect(replyText({ kind: 'answer', text: 'Hi there.', voice, sendTextWithVoice: true, voiceLabel: label })).toBe(`Hi there.\n\n_${label}_`);
    expect(replyText({ kind: 'answer', text: `Hi there.\n\n(${label})`, voice, sendTextWithVoice: false, voiceLabel: label })).toBe(`_${label}_`);
  });

  it('sends a voice reply as a ptt voice note (sendAudioAsVoice) after "recording…", then the text', async () => {
    const engine = new RecordingEngine(async (_message, target) => {
      await target.activity('record_voice');
      await target.reply({ kind: 'answer', text: 'Hello, this is your twin speaking.', voice, sendTextWithVoice: true, voiceLabel: 'offline preview voice' });
    });
    const { client } = await setup({ engine });
    client.receive({ chatId: USER, type: 'ptt' }, { bytes: voice.oggOpus });
    await waitUntil(() => client.sent.length === 2, 'two sends');
    const [voiceSend, textSend] = client.sent;
    expect(voiceSend!.content).toBeInstanceOf(wwebjs.MessageMedia);
    const media = voiceSend!.content as InstanceType<typeof wwebjs.MessageMedia>;
    expect(media.mimetype).toBe('audio/ogg; codecs=opus');
    expect(voiceSend!.options.sendAudioAsVoice).toBe(true);
    const sentBytes = Buffer.from(media.data, 'base64');
    const probe = await ffprobe(sentBytes);
    expect(probe).toMatchObject({ formatName: 'ogg', codecName: 'opus', channels: 1 });
    expect(readOpusHead(sentBytes)).toMatchObject({ channels: 1, inputSampleRateHz: 16_000 });
    expect(probe.durationSec).toBeCloseTo(voice.durationSec, 1);
    expect(textSend!.content).toBe('Hello, this is your twin speaking.\n\n_offline preview voice_');
    expect(textSend!.options.sendAudioAsVoice).toBeUndefined();

    const states = client.pupPage.chatStates.filter((s) => s.chatId === USER);
    expect(states[0]?.state).toBe('recording');
    expect(states[0]!.atMs).toBeLessThanOrEqual(voiceSend!.atMs);
  });

  it('sends only the voice note when the text is not wanted, and clears "typing…" after a turn without reply', async () => {
    const engine = new RecordingEngine(async (message, target) => {
      if (message.text === 'quiet') return void (await target.activity('typing'));
      await target.reply({ kind: 'answer', text: 'transcript', voice, sendTextWithVoice: false });
    });
    const { client } = await setup({ engine });
    client.receive({ chatId: USER, type: 'chat', body: 'talk to me' });
    await waitUntil(() => client.sent.length === 1, 'voice');
    expect(client.sent[0]!.options).toEqual({ sendAudioAsVoice: true });
    client.receive({ chatId: OTHER_USER, type: 'chat', body: 'quiet' });
    await waitUntil(() => client.pupPage.chatStates.some((s) => s.chatId === OTHER_USER && s.state === 'stop'), 'clear state');
    expect(client.pupPage.chatStates.filter((s) => s.chatId === OTHER_USER).map((s) => s.state)).toEqual(['typing', 'stop']);
  });

  it('renders buttons as a numbered list and maps the number back to the action', async () => {
    const engine = new RecordingEngine(async (message, target) => {
      if (message.text === 'style?') {
        await target.reply({ kind: 'info', text: 'Pick a style:', buttons: [[{ label: 'Coach', data: 'style:coaching' }], [{ label: 'Friend', data: 'style:friend' }]] });
      }
    });
    const { client } = await setup({ engine });
    client.receive({ chatId: USER, type: 'chat', body: 'style?' });
    await waitUntil(() => client.sent.length === 1, 'menu');
    expect(client.sent[0]!.content).toBe('Pick a style:\n\n*1.* Coach\n*2.* Friend\n\n_Reply with the number of your choice._');
    client.receive({ chatId: USER, type: 'chat', body: '2' });
    client.receive({ chatId: USER, type: 'chat', body: '2' });
    await engine.waitForHandled(3);
    expect(engine.handled[1]!.message.action).toBe('style:friend');
    expect(engine.handled[1]!.message.text).toBeUndefined();
    expect(engine.handled[2]!.message.text).toBe('2');
  });

  it('edits a status message in place (Message.edit through WhatsApp Web)', async () => {
    const engine = new RecordingEngine(async (_message, target) => {
      const edit = await target.status('Cloning your voice… 0%');
      await edit('Cloning your voice… 50%');
      await edit('Cloning your voice… 100%');
    });
    const { client } = await setup({ engine });
    client.receive({ chatId: USER, type: 'chat', body: 'go' });
    await waitUntil(() => client.pupPage.edits.length === 2, 'edits');
    expect(client.sent).toHaveLength(1);
    expect(client.pupPage.edits.map((e) => [e.msgId, e.content])).toEqual([
      [client.sent[0]!.messageId, 'Cloning your voice… 50%'],
      [client.sent[0]!.messageId, 'Cloning your voice… 100%'],
    ]);
  });

  it('paces all sends of the process at least minSendIntervalMs apart', async () => {
    const engine = new RecordingEngine(async (message, target) => {
      await target.reply({ kind: 'answer', text: `one for ${message.chatId}` });
      await target.reply({ kind: 'answer', text: `two for ${message.chatId}` });
    });
    const { client } = await setup({ engine, minSendIntervalMs: 150 });
    client.receive({ chatId: USER, type: 'chat', body: 'a' });
    client.receive({ chatId: OTHER_USER, type: 'chat', body: 'b' });
    await waitUntil(() => client.sent.length === 4, 'four sends');
    const gaps = client.sent.slice(1).map((record, i) => record.atMs - client.sent[i]!.atMs);
    // Timers may fire a millisecond or two early.
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(148);
  });
});

describe('sender outside a turn', () => {
  it('registers a whatsapp ChannelSender; an unknown chat is RecipientUnavailableError', async () => {
    const { engine, client } = await setup();
    expect(engine.senders.map((s) => s.channel)).toEqual(['whatsapp']);
    await engine.senders[0]!.send(USER, { kind: 'status', text: 'Your voice is ready.' });
    expect(client.sent[0]).toMatchObject({ chatId: USER, content: 'Your voice is ready.' });
    client.unknownChats.add('000@c.us');
    await expect(engine.senders[0]!.send('000@c.us', { kind: 'info', text: 'hi' })).rejects.toBeInstanceOf(RecipientUnavailableError);
  });

  it('waits for the connection before sending', async () => {
    const client = new FakeWhatsAppClient({ startup: 'qr' });
    const { engine, bot } = await setup({ client });
    await waitUntil(() => bot.state === 'qr', 'qr state');
    const sending = engine.senders[0]!.send(USER, { kind: 'status', text: 'done' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(client.sent).toHaveLength(0);
    client.link();
    await sending;
    expect(client.sent).toHaveLength(1);
  });
});

describe('connection life', () => {
  it('logs every state change; restores a session without a QR', async () => {
    const { logs, client } = await setup();
    const states = logs.lines.filter((l) => l.event === 'whatsapp_state').map((l) => l.state);
    expect(states).toEqual(['starting', 'authenticated', 'ready']);
    expect(logs.lines.some((l) => l.event === 'change_state' && l.waState === 'CONNECTED')).toBe(true);
    expect(client.qrPayloads).toHaveLength(0);
  });

  it('makes the data dir, a session and web cache left readable by others, and the QR PNG owner-only at start-up', async () => {
    const data = await tempDataDir();
    const session = path.join(data.dir, 'whatsapp-session', 'session', 'Default', 'IndexedDB');
    await mkdir(session, { recursive: true, mode: 0o755 });
    await mkdir(path.join(data.dir, 'whatsapp-web-cache'), { mode: 0o755 });
    await writeFile(path.join(session, '000003.log'), 'linked account keys', { mode: 0o644 });
    await writeFile(path.join(data.dir, 'whatsapp-web-cache', '2.3000.html'), '<html>', { mode: 0o644 });
    const pngPath = path.join(data.dir, 'whatsapp-qr.png');
    await writeFile(`${pngPath}.${process.pid}.tmp`, 'left by a crash', { mode: 0o644 });
    // Earlier starts restricted the umask: set the open modes explicitly.
    for (const dir of [data.dir, path.join(data.dir, 'whatsapp-session'), path.join(data.dir, 'whatsapp-session', 'session'), session, path.join(data.dir, 'whatsapp-web-cache')]) await chmod(dir, 0o755);
    for (const file of [path.join(session, '000003.log'), path.join(data.dir, 'whatsapp-web-cache', '2.3000.html'), `${pngPath}.${process.pid}.tmp`]) await chmod(file, 0o644);
    const client = new FakeWhatsAppClient({ startup: 'qr' });
    const logs = captureLogs();
    const bot = await startWhatsAppBot({ engine: new RecordingEngine(), logger: logs.logger, dataDir: data.dir, client, qrOutput: null, reconnect: { initialDelayMs: 20, maxDelayMs: 80 } });
    running.push({ bot, remove: data.remove });
    await waitUntil(() => bot.state === 'qr', 'qr state');
    await waitUntil(() => logs.lines.some((l) => l.qrPngPath === pngPath), 'the QR PNG');
    const reachable: string[] = [];
    for (const entry of ['', ...(await readdir(data.dir, { recursive: true }))]) {
      const stats = await lstat(path.join(data.dir, entry));
      if ((stats.mode & 0o077) !== 0) reachable.push(`${entry || '.'} ${(stats.mode & 0o777).toString(8)}`);
      else expect({ entry, mode: (stats.mode & 0o777).toString(8) }).toEqual({ entry, mode: stats.isDirectory() ? '700' : '600' });
    }
    expect(reachable).toEqual([]);
    expect(await readFile(path.join(session, '000003.log'), 'utf8')).toBe('linked account keys');
    expect(logs.lines.some((l) => l.level === 40 && /readable by other users/.test(String(l.msg)))).toBe(true);
  });

  it('writes the QR as a PNG and to the terminal, never to the logs, and removes it once linked', async () => {
    const client = new FakeWhatsAppClient({ startup: 'qr' });
    const terminal = new PassThrough();
    let printed = '';
    terminal.on('data', (chunk: Buffer) => (printed += chunk.toString('utf8')));
    const { bot, logs, dataDir } = await setup({ client, qrOutput: terminal });
    await waitUntil(() => bot.state === 'qr' && printed.includes('▄'), 'QR shown');
    const pngPath = path.join(dataDir, 'whatsapp-qr.png');
    const png = await readFile(pngPath);
    expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
    expect((await stat(pngPath)).mode & 0o777).toBe(0o600);
    expect(printed).toContain('Linked devices');
    const qrLine = logs.lines.find((l) => l.state === 'qr');
    expect(qrLine).toMatchObject({ qrPngPath: pngPath });
    expect(logs.text()).not.toContain(client.qrPayloads[0]!.slice(0, 12));

    client.link();
    await waitUntil(() => bot.state === 'ready', 'ready');
    await expect
      .poll(async () =>
        stat(pngPath).then(
          () => 'exists',
          () => 'gone',
        ),
      )
      .toBe('gone');
  });

  it('reconnects with backoff after a disconnect and after failed starts', async () => {
    const { client, logs, bot } = await setup();
    client.startup = 'unreachable';
    client.emit('disconnected', 'NAVIGATION');
    await waitUntil(() => client.initializeCalls >= 3, 'retries');
    const failures = logs.lines.filter((l) => l.event === 'startup_failed');
    expect(failures[0]?.msg).toBe(
      "WhatsApp client failed to start: cannot reach https://web.whatsapp.com/ (ERR_NAME_NOT_RESOLVED): check this server's internet connection, DNS and proxy",
    );
    const delays = logs.lines.filter((l) => l.event === 'reconnect_scheduled').map((l) => l.delayMs);
    expect(delays.slice(0, 3)).toEqual([20, 20, 40]);
    expect(client.destroyCalls).toBeGreaterThanOrEqual(2);
    client.startup = 'restored';
    await waitUntil(() => bot.state === 'ready', 'ready again', 2_000);
    const callsAtStop = client.initializeCalls;
    await bot.stop();
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(client.initializeCalls).toBe(callsAtStop);
  });

  it('does not reconnect when WhatsApp blocks the account', async () => {
    const { client, logs, bot } = await setup();
    client.emit('disconnected', 'TOS_BLOCK');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(bot.state).toBe('banned');
    expect(client.initializeCalls).toBe(1);
    expect(logs.lines.find((l) => l.state === 'banned')?.level).toBe(50);
  });
});
