/**
 * End to end: the WhatsApp adapter over the real offline engine (pocketsphinx, espeak-ng preview
 * voice, template chat model, SQLite) with real speech clips sent as `ptt` messages through the
 * fake whatsapp-web.js client: enroll → ready → voice turn, and the bad inputs a user can send.
 */
import { submitNow } from '../../helpers/submit.js';
import wwebjs from 'whatsapp-web.js';
import { afterEach, expect, it } from 'vitest';
import { startWhatsAppBot, type WhatsAppBot } from '../../../src/bots/whatsapp/index.js';
import { silentLogger } from '../../../src/core/log.js';
import type { ChannelSender, ConversationEngine, InboundMessage, OutboundReply, ReplyTarget, VoiceNote } from '../../../src/core/types.js';
import { FakeWhatsAppClient, type SentRecord } from '../../fakes/whatsapp/fake-client.js';
import type { IncomingMessageOptions } from '../../fakes/whatsapp/raw.js';
import { createTestApp, type TestApp } from '../../helpers/app.js';
import { describeIfSpeech, readSpeech } from '../../helpers/speech.js';
import { ffprobe, readOpusHead, tempDataDir, toWhatsAppPtt } from './support.js';

const USER = '4915112345678@c.us';
const GROUP = '120363025246125486@g.us';
type Media = InstanceType<typeof wwebjs.MessageMedia>;

/** Passes everything to the real engine and keeps the voice notes it produced, to compare with what was sent. */
class VoiceNoteTap implements ConversationEngine {
  readonly voiceNotes: VoiceNote[] = [];
  constructor(private readonly inner: ConversationEngine) {}
  get commands() {
    return this.inner.commands;
  }
  handle(message: InboundMessage, target: ReplyTarget): Promise<void> {
    return this.inner.handle(message, {
      reply: (reply) => this.tap(reply, () => target.reply(reply)),
      activity: (kind) => target.activity(kind),
      status: (text) => target.status(text),
    });
  }
  /** Adapters submit messages; this engine handles them at once, like an engine without a job queue. */
  submit(message: InboundMessage, target?: ReplyTarget): Promise<boolean> {
    return submitNow((m, t) => this.handle(m, t), message, target);
  }

  registerMediaFetcher(): void {}

  registerSender(sender: ChannelSender): void {
    this.inner.registerSender({ channel: sender.channel, send: (chatId, reply) => this.tap(reply, () => sender.send(chatId, reply)) });
  }
  private tap(reply: OutboundReply, next: () => Promise<void>): Promise<void> {
    if (reply.voice) this.voiceNotes.push(reply.voice);
    return next();
  }
}

let app: TestApp | undefined;
let bot: WhatsAppBot | undefined;
let removeDir: (() => Promise<void>) | undefined;
afterEach(async () => {
  await bot?.stop();
  await app?.close();
  await removeDir?.();
  bot = app = removeDir = undefined;
});

async function start(env: Record<string, string> = {}) {
  app = await createTestApp({ env });
  const tap = new VoiceNoteTap(app.engine);
  const client = new FakeWhatsAppClient();
  const data = await tempDataDir();
  removeDir = data.remove;
  bot = await startWhatsAppBot({ engine: tap, logger: silentLogger, dataDir: data.dir, client, minSendIntervalMs: 0, qrOutput: null });
  await expect.poll(() => bot!.state).toBe('ready');
  const say = async (options: Omit<IncomingMessageOptions, 'botWid'>, media?: { bytes: Buffer; stage?: 'REUPLOADING' }) => {
    const before = client.sent.length;
    client.receive({ notifyName: 'Linda', ...options }, media);
    await bot!.idle();
    return client.sent.slice(before);
  };
  return { app, tap, client, say };
}

const texts = (records: SentRecord[]) => records.filter((r) => typeof r.content === 'string').map((r) => r.content as string);

async function expectPtt(record: SentRecord | undefined, voice: VoiceNote | undefined): Promise<void> {
  expect(record?.options.sendAudioAsVoice).toBe(true);
  const media = record!.content as Media;
  expect(media).toBeInstanceOf(wwebjs.MessageMedia);
  expect(media.mimetype).toBe('audio/ogg; codecs=opus');
  const bytes = Buffer.from(media.data, 'base64');
  expect(bytes.equals(voice!.oggOpus)).toBe(true);
  const probe = await ffprobe(bytes);
  expect(probe).toMatchObject({ formatName: 'ogg', codecName: 'opus', channels: 1 });
  expect(probe.durationSec).toBeGreaterThan(0.5);
  expect(Math.abs(probe.durationSec - voice!.durationSec)).toBeLessThanOrEqual(0.1);
  expect(readOpusHead(bytes)).toMatchObject({ channels: 1, inputSampleRateHz: 16_000 });
}

describeIfSpeech('WhatsApp end to end with the offline engine and real speech', () => {
  it('enrolls from LJSpeech voice notes, clones, then answers a voice note with a ptt voice note', { timeout: 240_000 }, async () => {
    const { tap, client, say } = await start();
    const lj = await Promise.all(
      ['LJ001-0001.wav', 'LJ001-0004.wav', 'LJ001-0005.wav', 'LJ001-0006.wav', 'LJ001-0009.wav', 'LJ001-0011.wav'].map((f) => toWhatsAppPtt(readSpeech(`coqui-tts-ljspeech/${f}`))),
    );
    const ptt = (bytes: Buffer) => say({ chatId: USER, type: 'ptt', media: { sizeBytes: bytes.length, mimetype: 'audio/ogg; codecs=opus', durationSec: 8 } }, { bytes });

    const consent = texts(await say({ chatId: USER, type: 'chat', body: '!enroll' }));
    expect(consent[0]).toMatch(/I agree that VoiceTwin may clone my voice\. My code word is \w+\./);
    expect(consent[0]).toContain('*1.* I agree\n*2.* Cancel');

    const spoken = texts(await ptt(lj[0]!));
    expect(spoken[0]).toMatch(/recorded your spoken consent/);
    const granted = texts(await say({ chatId: USER, type: 'chat', body: '1' }));
    expect(granted[0]).toMatch(/^Consent recorded/);
    expect((await app!.store.profiles.get(`whatsapp:${USER}`))?.state).toBe('collecting');

    for (const sample of lj.slice(1)) {
      if ((await app!.store.profiles.get(`whatsapp:${USER}`))?.state !== 'collecting') break;
      const replies = texts(await ptt(sample));
      expect(replies.join('\n')).toMatch(/Sample accepted|Enough speech collected/);
    }
    await app!.engine.whenIdle();
    const profile = await app!.store.profiles.get(`whatsapp:${USER}`);
    expect(profile?.state).toBe('ready');
    // Clone progress edited the status message in place, then the greeting came as a voice note.
    expect(client.pupPage.edits.map((e) => e.content).join('\n')).toMatch(/Your twin voice is ready/);
    const greeting = client.sent.find((r) => r.options.sendAudioAsVoice);
    await expectPtt(greeting, tap.voiceNotes[0]);

    const jfk = readSpeech('derived-telegram-oga/jfk_telegram_style.oga');
    const turn = await say({ chatId: USER, type: 'ptt', media: { sizeBytes: jfk.length, mimetype: 'audio/ogg; codecs=opus', durationSec: 11 } }, { bytes: jfk });
    expect(client.pupPage.chatStates.some((s) => s.chatId === USER && s.state === 'recording')).toBe(true);
    await expectPtt(turn[0], tap.voiceNotes.at(-1));
    // The transcript-bearing text follows as a separate message (offline voices are labelled).
    expect(turn[1]?.options.sendAudioAsVoice).toBeUndefined();
    expect(String(turn[1]?.content).toLowerCase()).toMatch(/country/);
  });

  it('answers bad inputs clearly, or ignores them silently where a user expects silence', { timeout: 120_000 }, async () => {
    const { client, say } = await start();
    const clip = await toWhatsAppPtt(readSpeech('coqui-tts-ljspeech/LJ001-0004.wav'));

    // downloadMedia() yields undefined: the media expired on the phone.
    const expired = texts(await say({ chatId: USER, type: 'ptt' }, { bytes: clip, stage: 'REUPLOADING' }));
    expect(expired).toEqual(['⚠️ I could not download that voice note from WhatsApp (it may have expired on your phone). Please record it again.']);

    // 30 MB: refused from the declared size, never downloaded.
    const big = Buffer.alloc(30 * 1024 * 1024, 7);
    const downloadsBefore = client.pupPage.downloads;
    const tooLarge = texts(await say({ chatId: USER, type: 'audio', media: { sizeBytes: big.length, mimetype: 'audio/ogg; codecs=opus', durationSec: 120 } }, { bytes: big }));
    expect(tooLarge[0]).toMatch(/^⚠️ .*30(\.0)? MB.*20 MB/);
    expect(client.pupPage.downloads).toBe(downloadsBefore);

    // A forwarded voice note is never an enrollment sample.
    await say({ chatId: USER, type: 'chat', body: '/enroll' });
    await say({ chatId: USER, type: 'ptt' }, { bytes: clip });
    await say({ chatId: USER, type: 'chat', body: 'I agree' });
    expect((await app!.store.profiles.get(`whatsapp:${USER}`))?.state).toBe('collecting');
    const forwarded = texts(await say({ chatId: USER, type: 'ptt', isForwarded: true, forwardingScore: 1 }, { bytes: clip }));
    expect(forwarded[0]).toMatch(/^⚠️ Forwarded voice notes cannot be used/);
    expect(await app!.store.samples.list(`whatsapp:${USER}`)).toHaveLength(0);

    // A group message without a mention: no answer at all, nothing stored.
    const group = await say({ chatId: GROUP, author: '447700900123@c.us', type: 'ptt' }, { bytes: clip });
    expect(group).toEqual([]);
    expect(await app!.store.users.get('whatsapp:447700900123@c.us')).toBeUndefined();
  });
});
