/**
 * End to end: the real discord.js client against the local fake Discord, driving the real offline
 * engine (ffmpeg, pocketsphinx, espeak-ng preview voice, SQLite store) with real speech clips from
 * the shared speech folder, sent as Ogg/Opus attachments the way Discord clients upload them.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDiscordBot, type DiscordBot } from '../../../src/bots/discord/index.js';
import { silentLogger } from '../../../src/core/log.js';
import { FakeDiscord, MESSAGE_FLAG, OPTION_TYPE, type FakeAttachment, type FakeInteraction, type FakeUser, type PostedMessage } from '../../fakes/discord/server.js';
import { createTestApp, type TestApp } from '../../helpers/app.js';
import { ffprobeDurationSec, makeSpeechWav, toOggOpus } from '../../helpers/audio.js';
import { describeIfSpeech, readSpeech } from '../../helpers/speech.js';
import { opusHead, probeStream } from './recording-engine.js';

const TIMEOUT_MS = 30_000;

describeIfSpeech('Discord end to end with the offline engine and real speech', () => {
  let fake: FakeDiscord;
  let app: TestApp;
  let bot: DiscordBot;
  let lin: FakeUser;

  beforeAll(async () => {
    fake = await FakeDiscord.start();
    app = await createTestApp({ env: { ENROLL_MIN_SPEECH_SEC: '10' } });
    bot = await startDiscordBot({ token: fake.token, applicationId: fake.applicationId, guildId: fake.guildId, apiBase: fake.apiBase, engine: app.engine, logger: silentLogger });
    lin = fake.addUser('lin');
  });

  afterAll(async () => {
    await bot?.stop();
    await app?.close();
    await fake?.close();
  });

  /** Waits for a message answering `interaction` that matches `predicate`. */
  const answer = (interaction: FakeInteraction, predicate: (m: PostedMessage) => boolean, what: string): Promise<PostedMessage> =>
    fake.waitFor(() => fake.messagesFor(interaction.id).find((m) => !(Number(m.message.flags) & MESSAGE_FLAG.LOADING) && predicate(m)), TIMEOUT_MS, what);
  const content = (m: PostedMessage): string => String(m.message.content ?? '');
  const isVoiceMessage = (m: PostedMessage): boolean => (Number(m.message.flags) & MESSAGE_FLAG.IS_VOICE_MESSAGE) !== 0;
  const isEphemeral = (m: PostedMessage): boolean => (Number(m.message.flags) & MESSAGE_FLAG.EPHEMERAL) !== 0;
  const upload = (bytes: Buffer, filename: string, contentType: string, extra: { declaredSizeBytes?: number } = {}): FakeAttachment =>
    fake.hostAttachment(bytes, { filename, contentType, ...extra });
  const slashWithFile = (user: FakeUser, name: 'enroll' | 'talk', file: FakeAttachment): FakeInteraction =>
    fake.sendSlashCommand({ user, name, options: [{ name: name === 'enroll' ? 'sample' : 'voice', type: OPTION_TYPE.ATTACHMENT, value: file.id }], attachments: [file] });
  const buttonId = (m: PostedMessage, label: string): string => {
    const rows = m.message.components as Array<{ components: Array<{ label: string; custom_id: string }> }>;
    const button = rows.flatMap((r) => r.components).find((b) => b.label === label);
    if (!button) throw new Error(`no "${label}" button on: ${content(m)}`);
    return button.custom_id;
  };
  const expectVoiceMessage = (m: PostedMessage): void => {
    expect(isVoiceMessage(m)).toBe(true);
    expect(content(m)).toBe('');
    expect(m.files).toHaveLength(1);
    const bytes = m.files[0]!.bytes;
    expect(probeStream(bytes)).toMatchObject({ codec: 'opus', channels: 1, format: 'ogg' });
    expect(opusHead(bytes)).toEqual({ channels: 1, inputSampleRateHz: 48000 });
    const meta = (m.body.attachments as Array<{ duration_secs: number; waveform: string }>)[0]!;
    const durationSec = ffprobeDurationSec(bytes);
    expect(durationSec).toBeGreaterThan(0.5);
    expect(Math.abs(meta.duration_secs - durationSec)).toBeLessThan(0.1);
    const waveform = Buffer.from(meta.waveform, 'base64');
    expect(waveform.length).toBeGreaterThan(0);
    expect(waveform.length).toBeLessThanOrEqual(256);
  };
  const profile = () => app.store.profiles.get(`discord:${lin.id}`);

  it('enrolls via /enroll, the consent button and sample attachments, refuses bad files on the way, then answers /talk with a voice message', async () => {
    // /enroll → consent phrase with buttons.
    const enroll = fake.sendSlashCommand({ user: lin, name: 'enroll' });
    const consent = await answer(enroll, (m) => content(m).includes('consent'), 'consent request');
    const phrase = /"(I agree that VoiceTwin[^"]+)"/.exec(content(consent))?.[1];
    expect(phrase).toBeDefined();

    // "I agree" button → asked for the spoken phrase.
    const agree = fake.pressButton({ user: lin, message: consent, customId: buttonId(consent, 'I agree') });
    await answer(agree, (m) => content(m).includes('Now send the voice note'), 'request for the spoken consent');
    expect(fake.interactions.get(agree.id)!.ackType).toBe(6);

    // The spoken phrase as an /enroll attachment → consent granted.
    const spoken = slashWithFile(lin, 'enroll', upload(toOggOpus(makeSpeechWav(phrase!)), 'consent.ogg', 'audio/ogg'));
    await answer(spoken, (m) => content(m).includes('Consent recorded'), 'consent granted');
    expect((await profile())?.state).toBe('collecting');

    // Bad files while collecting: each refused privately, nothing stored changes.
    const before = await profile();
    const pdf = slashWithFile(lin, 'enroll', upload(Buffer.from('%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n'), 'consent-form.pdf', 'application/pdf'));
    const pdfReply = await answer(pdf, (m) => content(m).startsWith('⚠️'), 'PDF refusal');
    expect(content(pdfReply)).toMatch(/not an audio format/);
    expect(isEphemeral(pdfReply)).toBe(true);

    const good = toOggOpus(readSpeech('coqui-tts-ljspeech/LJ001-0001.wav'));
    const corrupt = slashWithFile(lin, 'enroll', upload(good.subarray(0, 300), 'sample.ogg', 'audio/ogg'));
    const corruptReply = await answer(corrupt, (m) => content(m).startsWith('⚠️'), 'corrupt Ogg refusal');
    expect(content(corruptReply)).toMatch(/damaged|incomplete|empty/);
    expect(isEphemeral(corruptReply)).toBe(true);

    const huge = upload(Buffer.alloc(1024), 'long-recording.ogg', 'audio/ogg', { declaredSizeBytes: 30 * 1024 * 1024 });
    const big = slashWithFile(lin, 'enroll', huge);
    const bigReply = await answer(big, (m) => content(m).startsWith('⚠️'), '30 MB refusal');
    expect(content(bigReply)).toMatch(/30\.0 MB; the limit is/);
    expect(isEphemeral(bigReply)).toBe(true);
    expect(fake.cdnHits).not.toContain(huge.id);
    expect(await profile()).toEqual(before);
    expect(await app.store.samples.list(`discord:${lin.id}`)).toHaveLength(0);

    // Real speech samples until the clone starts; then the twin greets in the DM.
    const clips = ['coqui-tts-ljspeech/LJ001-0001.wav', 'coqui-tts-ljspeech/LJ001-0005.wav', 'coqui-tts-ljspeech/LJ001-0006.wav'];
    for (const clip of clips) {
      const bytes = clip === clips[0] ? good : toOggOpus(readSpeech(clip));
      const sample = slashWithFile(lin, 'enroll', upload(bytes, 'sample.ogg', 'audio/ogg'));
      const reply = await answer(sample, (m) => /Sample accepted|Cloning|voice is ready/.test(content(m)), `answer to sample ${clip}`);
      if (!content(reply).startsWith('Sample accepted')) break;
    }
    const dm = fake.dmChannelId(lin.id);
    const greeting = await fake.waitFor(() => fake.channelMessages(dm).find(isVoiceMessage), TIMEOUT_MS, 'greeting voice message in the DM');
    expect((await profile())?.state).toBe('ready');
    expectVoiceMessage(greeting);

    // /talk with real speech → a voice message in the twin's voice.
    const talk = slashWithFile(lin, 'talk', upload(toOggOpus(readSpeech('whisper.cpp/jfk.wav')), 'voice-message.ogg', 'audio/ogg'));
    const text = await answer(talk, (m) => content(m).includes('You said'), 'text of the /talk answer');
    expect(text.via).toBe('original');
    const voice = await answer(talk, isVoiceMessage, 'voice message answering /talk');
    expect(voice.via).toBe('followup');
    expectVoiceMessage(voice);
  });

  it('answers a DM voice message with a voice message in the DM', async () => {
    const bytes = toOggOpus(readSpeech('coqui-tts-ljspeech/LJ001-0009.wav'));
    const dm = fake.dmChannelId(lin.id);
    const attachment = fake.hostAttachment(bytes, { filename: 'voice-message.ogg', contentType: 'audio/ogg', durationSec: ffprobeDurationSec(bytes), waveform: Buffer.alloc(64, 9).toString('base64'), channelId: dm });
    const already = fake.channelMessages(dm).length;
    fake.sendDirectMessage({ user: lin, attachments: [attachment], voice: true });
    const voice = await fake.waitFor(() => fake.channelMessages(dm).slice(already).find(isVoiceMessage), TIMEOUT_MS, 'voice reply in the DM');
    expectVoiceMessage(voice);
    expect(fake.channelMessages(dm).slice(already).some((m) => content(m).includes('You said'))).toBe(true);
  });

  it('changes the persona with /style and deletes everything with /delete after confirmation', async () => {
    const style = fake.sendSlashCommand({ user: lin, name: 'style', options: [{ name: 'persona', type: OPTION_TYPE.STRING, value: 'coaching' }] });
    await answer(style, (m) => content(m).includes('now coaching'), '/style answer');
    expect((await app.store.users.get(`discord:${lin.id}`))?.persona).toBe('coaching');

    const del = fake.sendSlashCommand({ user: lin, name: 'delete' });
    const confirm = await answer(del, (m) => content(m).includes('cannot be undone'), 'delete confirmation');
    expect(isEphemeral(confirm)).toBe(true);
    const press = fake.pressButton({ user: lin, message: confirm, customId: buttonId(confirm, 'Delete everything') });
    await answer(press, (m) => m.via === 'followup' && content(m).length > 0, 'deletion answer');
    expect(await profile()).toBeUndefined();
    expect(await app.store.samples.list(`discord:${lin.id}`)).toHaveLength(0);
  });

  it('gives a user with no profile clear private answers and keeps serving', async () => {
    const newcomer = fake.addUser('newcomer');
    const status = fake.sendSlashCommand({ user: newcomer, name: 'status' });
    const statusReply = await answer(status, (m) => content(m).length > 0, '/status answer');
    expect(isEphemeral(statusReply)).toBe(true);
    const forget = fake.sendSlashCommand({ user: newcomer, name: 'forget', options: [{ name: 'memory', type: OPTION_TYPE.STRING, value: 'm42' }] });
    const forgetReply = await answer(forget, (m) => content(m).startsWith('⚠️'), '/forget refusal');
    expect(content(forgetReply)).toMatch(/no memory with id/);
    expect(isEphemeral(forgetReply)).toBe(true);
    await sleep(50);
    const help = fake.sendSlashCommand({ user: newcomer, name: 'help' });
    await answer(help, (m) => content(m).length > 0, '/help answer');
  });
});
