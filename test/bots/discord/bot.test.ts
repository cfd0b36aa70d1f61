/**
 * The Discord adapter driven by the real discord.js client against the local fake Discord
 * (test/fakes/discord), with a recording engine: slash command registration, deferral and edits,
 * voice-message replies and their fallbacks, rate limits, direct messages, buttons, the DM sender.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDiscordBot, type DiscordBot } from '../../../src/bots/discord/index.js';
import { MAX_CONTENT_CHARS, VOICE_UNDELIVERABLE_NOTICE } from '../../../src/bots/discord/render.js';
import { PERSONA_NAMES } from '../../../src/core/personas.js';
import { COMMANDS } from '../../../src/core/engine.js';
import { buildSlashCommands, EPHEMERAL_COMMANDS } from '../../../src/bots/discord/commands.js';
import { RecipientUnavailableError, type InboundMessage, type OutboundReply, type VoiceNote } from '../../../src/core/types.js';
import { silentLogger } from '../../../src/core/log.js';
import { DEFAULT_APP_PERMISSIONS, FakeDiscord, MESSAGE_FLAG, OPTION_TYPE, PERMISSION, type FakeInteraction, type FakeUser, type PostedMessage } from '../../fakes/discord/server.js';
import { makeSpeechWav, toOggOpus, ffprobeDurationSec } from '../../helpers/audio.js';
import { RecordingEngine, makeVoiceNote, opusHead, probeStream } from './recording-engine.js';

let fake: FakeDiscord;
let engine: RecordingEngine;
let bot: DiscordBot;
let alice: FakeUser;
let voice: VoiceNote;

beforeAll(async () => {
  fake = await FakeDiscord.start();
  engine = new RecordingEngine();
  bot = await startDiscordBot({ token: fake.token, applicationId: fake.applicationId, guildId: fake.guildId, apiBase: fake.apiBase, engine, logger: silentLogger });
  alice = fake.addUser('alice');
  voice = makeVoiceNote('Hello, this is your twin speaking. It is good to hear from you.');
});

afterAll(async () => {
  await bot?.stop();
  await fake?.close();
});

beforeEach(() => {
  engine.script = async () => undefined;
});

/** Waits until `count` messages answer the interaction (original response first). */
function answers(interaction: FakeInteraction, count: number): Promise<PostedMessage[]> {
  return fake.waitFor(() => {
    const list = fake.messagesFor(interaction.id).filter((m) => !(Number(m.message.flags) & MESSAGE_FLAG.LOADING));
    return list.length >= count ? list : undefined;
  }, 15_000, `${count} answers to interaction ${interaction.id}`);
}

function inboundFor(interaction: FakeInteraction): Promise<InboundMessage> {
  return engine.waitFor((m) => m.id === `discord:interaction:${interaction.id}`);
}

describe('slash command registration', () => {
  it('bulk-overwrites the guild commands with the bot token, built for servers and DMs', () => {
    const put = fake.calls.find((c) => c.method === 'PUT');
    expect(put?.path).toBe(`/applications/${fake.applicationId}/guilds/${fake.guildId}/commands`);
    expect(put?.authorization).toBe(`Bot ${fake.token}`);
    const commands = put!.json as Array<{ name: string; description: string; options?: Array<{ name: string; type: number; required?: boolean; choices?: Array<{ value: string }> }>; contexts?: number[] }>;
    expect(commands.map((c) => c.name)).toEqual(['enroll', 'talk', 'say', 'style', 'remember', 'memories', 'forget', 'status', 'delete', 'help', 'text', 'stop']);
    const byName = Object.fromEntries(commands.map((c) => [c.name, c]));
    expect(byName.enroll!.description).toBe('Clone your voice from a few voice notes (asks for consent first)');
    expect(byName.enroll!.options).toEqual([expect.objectContaining({ name: 'sample', type: OPTION_TYPE.ATTACHMENT, required: false })]);
    expect(byName.talk!.options!.map((o) => [o.name, o.type])).toEqual([
      ['voice', OPTION_TYPE.ATTACHMENT],
      ['text', OPTION_TYPE.STRING],
    ]);
    expect(byName.say!.options![0]).toMatchObject({ name: 'text', type: OPTION_TYPE.STRING, required: true });
    expect(byName.style!.options![0]!.choices!.map((c) => c.value)).toEqual([...PERSONA_NAMES]);
    expect(byName.forget!.options![0]).toMatchObject({ name: 'memory', required: true });
    expect(byName.text!.options![0]!.choices!.map((c) => c.value)).toEqual(['on', 'off']);
    for (const c of commands) {
      expect(c.description.length).toBeGreaterThan(0);
      expect(c.description.length).toBeLessThanOrEqual(100);
      expect(c.contexts).toEqual([0, 1]);
    }
  });

  it("offers /web (a one-time sign-in link, answered privately) when the engine's menu has it", () => {
    const names = buildSlashCommands(COMMANDS).map((c) => c.name);
    expect(names.at(-1)).toBe('web');
    expect(names.filter((n) => n === 'web')).toHaveLength(1);
    expect(EPHEMERAL_COMMANDS.has('web')).toBe(true);
  });

  it('registers globally without a guild id, and fails start-up clearly on a wrong token', async () => {
    const other = await FakeDiscord.start();
    const globalBot = await startDiscordBot({ token: other.token, applicationId: other.applicationId, apiBase: other.apiBase, engine: new RecordingEngine(), logger: silentLogger });
    try {
      expect(other.calls.find((c) => c.method === 'PUT')?.path).toBe(`/applications/${other.applicationId}/commands`);
      expect(other.registeredCommands.get('global')).toHaveLength(12);
    } finally {
      await globalBot.stop();
    }
    await expect(startDiscordBot({ token: 'wrong', applicationId: other.applicationId, apiBase: other.apiBase, engine: new RecordingEngine(), logger: silentLogger })).rejects.toThrow(
      /registering slash commands failed.*DISCORD_TOKEN/,
    );
    await other.close();
  });
});

describe('interactions', () => {
  it('defers at once, maps the command, then edits the deferred response', async () => {
    engine.script = async (_m, target) => {
      await sleep(300);
      await target.reply({ kind: 'info', text: 'Your twin is now coaching.' });
    };
    const interaction = fake.sendSlashCommand({ user: alice, name: 'style', options: [{ name: 'persona', type: OPTION_TYPE.STRING, value: 'coaching' }] });
    const [original] = await answers(interaction, 1);
    const state = fake.interactions.get(interaction.id)!;
    expect(state.ackType).toBe(5);
    expect(state.ackFlags ?? 0).toBe(0);
    expect(state.ackedAtMs! - state.dispatchedAtMs).toBeLessThan(3000);
    expect(original!.via).toBe('original');
    expect(original!.message.content).toBe('Your twin is now coaching.');
    const edit = fake.calls.find((c) => c.method === 'PATCH' && c.path.endsWith(`/messages/@original`) && c.path.includes(interaction.token));
    expect(edit!.atMs).toBeGreaterThanOrEqual(state.ackedAtMs!);
    const inbound = await inboundFor(interaction);
    expect(inbound).toMatchObject({ channel: 'discord', chatId: alice.id, userId: alice.id, displayName: 'Alice', command: { name: 'style', args: 'coaching' }, languageCode: 'en-US' });
  });

  it('defers private commands as ephemeral and maps /style without a persona to styles', async () => {
    engine.script = async (_m, target) => target.reply({ kind: 'info', text: 'Profile: none yet.', ephemeral: true });
    const status = fake.sendSlashCommand({ user: alice, name: 'status' });
    await answers(status, 1);
    expect(fake.interactions.get(status.id)!.ackFlags).toBe(MESSAGE_FLAG.EPHEMERAL);
    expect(Number(fake.messagesFor(status.id)[0]!.message.flags) & MESSAGE_FLAG.EPHEMERAL).toBeTruthy();

    const styles = fake.sendSlashCommand({ user: alice, name: 'style' });
    await answers(styles, 1);
    expect((await inboundFor(styles)).command).toEqual({ name: 'styles', args: '' });

    const text = fake.sendSlashCommand({ user: alice, name: 'text', options: [{ name: 'mode', type: OPTION_TYPE.STRING, value: 'off' }] });
    await answers(text, 1);
    expect((await inboundFor(text)).command).toEqual({ name: 'text', args: 'off' });
  });

  it('answers an error privately even when the command was deferred publicly', async () => {
    engine.script = async (_m, target) => target.reply({ kind: 'error', text: 'Your message was empty.' });
    const talk = fake.sendSlashCommand({ user: alice, name: 'talk' });
    const [reply] = await answers(talk, 1);
    expect((await inboundFor(talk)).text).toBe('');
    expect(reply!.via).toBe('followup');
    expect(Number(reply!.message.flags) & MESSAGE_FLAG.EPHEMERAL).toBeTruthy();
    expect(reply!.message.content).toBe('⚠️ Your message was empty.');
    expect(fake.calls.some((c) => c.method === 'DELETE' && c.path.includes(talk.token))).toBe(true);
  });

  it('apologises privately when the engine fails unexpectedly', async () => {
    engine.script = async () => {
      throw new Error('database on fire');
    };
    const i = fake.sendSlashCommand({ user: alice, name: 'say', options: [{ name: 'text', type: OPTION_TYPE.STRING, value: 'x' }] });
    const [reply] = await answers(i, 1);
    expect(reply!.message.content).toMatch(/^⚠️ Sorry, something went wrong/);
    expect(Number(reply!.message.flags) & MESSAGE_FLAG.EPHEMERAL).toBeTruthy();
    expect(String(reply!.message.content)).not.toMatch(/database/);
  });

  it('continues in the DMs once the interaction token has expired', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    engine.script = async (_m, target) => {
      await gate;
      await target.reply({ kind: 'answer', text: 'Sorry for the wait.', voice, sendTextWithVoice: true });
    };
    const i = fake.sendSlashCommand({ user: alice, name: 'say', options: [{ name: 'text', type: OPTION_TYPE.STRING, value: 'slow' }] });
    await fake.waitFor(() => fake.interactions.get(i.id)!.ackType, 10_000, 'deferral');
    fake.expireInteractionToken(i.id);
    release();
    const dm = fake.dmChannelId(alice.id);
    const posted = await fake.waitFor(() => {
      const list = fake.channelMessages(dm).filter((m) => m.atMs >= fake.interactions.get(i.id)!.ackedAtMs!);
      return list.length >= 2 ? list : undefined;
    }, 10_000, 'replies in the DM');
    expect(fake.calls.some((c) => c.path.includes(i.token) && c.errorCode === 50027)).toBe(true);
    expect(posted[0]!.message.content).toBe('Sorry for the wait.');
    expect(Number(posted[1]!.message.flags)).toBe(MESSAGE_FLAG.IS_VOICE_MESSAGE);
  });

  it('removes a deferred response the engine never answered', async () => {
    const help = fake.sendSlashCommand({ user: alice, name: 'help' });
    await fake.waitFor(() => fake.calls.some((c) => c.method === 'DELETE' && c.path.includes(help.token)), 10_000, 'delete of the unanswered response');
    expect(fake.messagesFor(help.id)).toHaveLength(0);
  });

  it('splits long text at 2,000 characters', async () => {
    const long = Array.from({ length: 90 }, (_, i) => `Sentence number ${i} is here to make the text long.`).join(' ');
    engine.script = async (_m, target) => target.reply({ kind: 'info', text: long });
    const i = fake.sendSlashCommand({ user: alice, name: 'memories' });
    const parts = await answers(i, 3);
    for (const p of parts) expect(String(p.message.content).length).toBeLessThanOrEqual(MAX_CONTENT_CHARS);
    expect(parts.map((p) => p.message.content).join(' ')).toBe(long);
  });

  it('edits a status message in place', async () => {
    engine.script = async (_m, target) => {
      const edit = await target.status('Cloning your voice… 0%');
      await edit('Cloning your voice… 100%');
    };
    const i = fake.sendSlashCommand({ user: alice, name: 'enroll' });
    await fake.waitFor(() => fake.messagesFor(i.id)[0]?.message.content === 'Cloning your voice… 100%', 10_000, 'status edit');
    expect(fake.messagesFor(i.id)[0]!.edits).toBe(2);
  });

  it('acknowledges 20 concurrent interactions within 3 s while the engine is slow', async () => {
    engine.script = async (_m, target) => {
      await sleep(2500);
      await target.reply({ kind: 'info', text: 'done' });
    };
    const users = Array.from({ length: 20 }, (_, n) => fake.addUser(`load${n}`));
    const batch = users.map((user) => fake.sendSlashCommand({ user, name: 'say', options: [{ name: 'text', type: OPTION_TYPE.STRING, value: 'hello' }] }));
    await Promise.all(batch.map((i) => answers(i, 1)));
    const delays = batch.map((i) => fake.interactions.get(i.id)!).map((s) => s.ackedAtMs! - s.dispatchedAtMs);
    expect(delays.every((d) => d < 3000)).toBe(true);
    expect(Math.max(...delays)).toBeLessThan(1500);
  });
});

describe('voice replies', () => {
  const answer = (): OutboundReply => ({ kind: 'answer', text: 'Hello, this is your twin speaking.', voice, sendTextWithVoice: true });

  it('sends a native voice message: flag 8192, one Ogg/Opus mono attachment, duration and waveform, no content', async () => {
    engine.script = async (_m, target) => target.reply(answer());
    const i = fake.sendSlashCommand({ user: alice, name: 'say', options: [{ name: 'text', type: OPTION_TYPE.STRING, value: 'Hello' }] });
    const [text, voiceMessage] = await answers(i, 2);
    expect(text!.message.content).toBe('Hello, this is your twin speaking.');
    expect(voiceMessage!.via).toBe('followup');
    expect(Number(voiceMessage!.message.flags)).toBe(MESSAGE_FLAG.IS_VOICE_MESSAGE);
    expect(voiceMessage!.body.content ?? '').toBe('');
    expect(voiceMessage!.files).toHaveLength(1);
    const file = voiceMessage!.files[0]!;
    expect(file.filename).toBe('voice-message.ogg');
    const probe = probeStream(file.bytes);
    expect(probe).toMatchObject({ codec: 'opus', channels: 1, format: 'ogg' });
    expect(opusHead(file.bytes).inputSampleRateHz).toBe(48000);
    const meta = (voiceMessage!.body.attachments as Array<{ duration_secs: number; waveform: string }>)[0]!;
    expect(Math.abs(meta.duration_secs - ffprobeDurationSec(file.bytes))).toBeLessThan(0.1);
    const waveform = Buffer.from(meta.waveform, 'base64');
    expect(waveform.length).toBeGreaterThan(0);
    expect(waveform.length).toBeLessThanOrEqual(256);
    expect(Math.max(...waveform)).toBeGreaterThan(0);
  });

  it('sends a plain audio file without the Send Voice Messages permission, then text without Attach Files', async () => {
    engine.script = async (_m, target) => target.reply(answer());
    fake.setAppPermissions(fake.guildChannelId, DEFAULT_APP_PERMISSIONS & ~PERMISSION.SEND_VOICE_MESSAGES);
    try {
      const i = fake.sendSlashCommand({ user: alice, name: 'say', options: [{ name: 'text', type: OPTION_TYPE.STRING, value: 'Hello' }] });
      const [, file] = await answers(i, 2);
      expect(Number(file!.message.flags) & MESSAGE_FLAG.IS_VOICE_MESSAGE).toBe(0);
      expect(file!.files).toHaveLength(1);
      expect(probeStream(file!.files[0]!.bytes).codec).toBe('opus');
      expect(fake.calls.filter((c) => c.path.includes(i.token) && Number((c.json as { flags?: number } | undefined)?.flags ?? 0) & MESSAGE_FLAG.IS_VOICE_MESSAGE)).toHaveLength(0);

      fake.setAppPermissions(fake.guildChannelId, DEFAULT_APP_PERMISSIONS & ~PERMISSION.SEND_VOICE_MESSAGES & ~PERMISSION.ATTACH_FILES);
      const j = fake.sendSlashCommand({ user: alice, name: 'say', options: [{ name: 'text', type: OPTION_TYPE.STRING, value: 'Hello' }] });
      const [first, notice] = await answers(j, 2);
      expect(first!.message.content).toBe('Hello, this is your twin speaking.');
      expect(notice!.message.content).toBe(VOICE_UNDELIVERABLE_NOTICE);
      expect(fake.messagesFor(j.id).every((m) => m.files.length === 0)).toBe(true);
    } finally {
      fake.setAppPermissions(fake.guildChannelId, DEFAULT_APP_PERMISSIONS);
    }
  });

  it('falls back to an audio file when Discord answers 50173 in a channel', async () => {
    const bob = fake.addUser('bob');
    const dm = fake.dmChannelId(bob.id);
    fake.rejectVoiceMessages(dm);
    engine.script = async (_m, target) => target.reply(answer());
    fake.sendDirectMessage({ user: bob, content: 'hi twin' });
    const posted = await fake.waitFor(() => {
      const list = fake.channelMessages(dm);
      return list.length >= 2 ? list : undefined;
    }, 15_000, 'DM replies');
    expect(fake.calls.some((c) => c.path === `/channels/${dm}/messages` && c.errorCode === 50173)).toBe(true);
    expect(posted[0]!.message.content).toBe('Hello, this is your twin speaking.');
    expect(Number(posted[1]!.message.flags)).toBe(0);
    expect(posted[1]!.files).toHaveLength(1);
  });

  it('waits out a 429 with retry_after and still delivers the voice message', async () => {
    engine.script = async (_m, target) => target.reply(answer());
    fake.rateLimit('POST', /^\/webhooks\/\d+\/[^/]+$/, { count: 1, retryAfterSec: 1 });
    const i = fake.sendSlashCommand({ user: alice, name: 'say', options: [{ name: 'text', type: OPTION_TYPE.STRING, value: 'Hello' }] });
    const [, voiceMessage] = await answers(i, 2);
    expect(Number(voiceMessage!.message.flags)).toBe(MESSAGE_FLAG.IS_VOICE_MESSAGE);
    const followUps = fake.calls.filter((c) => c.method === 'POST' && c.path.includes(i.token) && c.path.startsWith('/webhooks/'));
    expect(followUps.map((c) => c.status)).toEqual([429, 200]);
    expect(followUps[1]!.atMs - followUps[0]!.atMs).toBeGreaterThanOrEqual(950);
  });

  it('sends the voice message alone when the user turned text off', async () => {
    engine.script = async (_m, target) => target.reply({ kind: 'answer', text: 'hidden text', voice, sendTextWithVoice: false });
    const i = fake.sendSlashCommand({ user: alice, name: 'say', options: [{ name: 'text', type: OPTION_TYPE.STRING, value: 'Hello' }] });
    const [only] = await answers(i, 1);
    expect(Number(only!.message.flags)).toBe(MESSAGE_FLAG.IS_VOICE_MESSAGE);
    await sleep(200);
    expect(fake.messagesFor(i.id)).toHaveLength(1);
  });
});

describe('attachments', () => {
  it('passes the declared size of a 30 MB /talk attachment without downloading it', async () => {
    let inbound: InboundMessage | undefined;
    engine.script = async (m, target) => {
      inbound = m;
      await target.reply({ kind: 'error', text: 'That file is too large.' });
    };
    const big = fake.hostAttachment(Buffer.alloc(16), { filename: 'long.ogg', contentType: 'audio/ogg', declaredSizeBytes: 30 * 1024 * 1024 });
    const i = fake.sendSlashCommand({ user: alice, name: 'talk', options: [{ name: 'voice', type: OPTION_TYPE.ATTACHMENT, value: big.id }], attachments: [big] });
    await answers(i, 1);
    expect(inbound!.audio).toMatchObject({ declaredSizeBytes: 30 * 1024 * 1024, declaredMime: 'audio/ogg', fileName: 'long.ogg', isVoiceNote: false });
    expect(inbound!.audio!.platformMaxBytes).toBeUndefined();
    expect(fake.cdnHits).not.toContain(big.id);
  });

  it('maps /enroll with a sample to audio the engine downloads from the CDN', async () => {
    const bytes = toOggOpus(makeSpeechWav('This is a sample of my voice.'));
    let downloaded: Buffer | undefined;
    engine.script = async (m, target) => {
      downloaded = await m.audio!.download!();
      await target.reply({ kind: 'info', text: 'Sample accepted.' });
    };
    const sample = fake.hostAttachment(bytes, { filename: 'sample.ogg', contentType: 'audio/ogg' });
    const i = fake.sendSlashCommand({ user: alice, name: 'enroll', options: [{ name: 'sample', type: OPTION_TYPE.ATTACHMENT, value: sample.id }], attachments: [sample] });
    await answers(i, 1);
    const inbound = await inboundFor(i);
    expect(inbound.command).toBeUndefined();
    expect(inbound.audio).toMatchObject({ declaredSizeBytes: bytes.length, isVoiceNote: false });
    expect(downloaded!.equals(bytes)).toBe(true);
    expect(fake.cdnHits).toContain(sample.id);
  });
});

describe('direct messages', () => {
  it('turns a DM voice message into a voice-note turn and answers with a voice message in the DM', async () => {
    const carol = fake.addUser('carol');
    const bytes = toOggOpus(makeSpeechWav('How are you today?'));
    let downloaded: Buffer | undefined;
    engine.script = async (m, target) => {
      await target.activity('record_voice');
      downloaded = await m.audio!.download!();
      await target.reply({ kind: 'answer', text: 'I am well, thank you.', voice, sendTextWithVoice: true });
    };
    const dm = fake.dmChannelId(carol.id);
    const attachment = fake.hostAttachment(bytes, { filename: 'voice-message.ogg', contentType: 'audio/ogg', durationSec: 1.4, waveform: 'AAECAw==', channelId: dm });
    const message = fake.sendDirectMessage({ user: carol, attachments: [attachment], voice: true });
    const inbound = await engine.waitFor((m) => m.id === `discord:message:${String(message.id)}`);
    expect(inbound).toMatchObject({ channel: 'discord', chatId: carol.id, userId: carol.id, displayName: 'Carol' });
    expect(inbound.audio).toMatchObject({ isVoiceNote: true, declaredDurationSec: 1.4, declaredSizeBytes: bytes.length, declaredMime: 'audio/ogg' });
    const posted = await fake.waitFor(() => {
      const list = fake.channelMessages(dm);
      return list.length >= 2 ? list : undefined;
    }, 15_000, 'DM replies');
    expect(downloaded!.equals(bytes)).toBe(true);
    expect(fake.calls.some((c) => c.path === `/channels/${dm}/typing`)).toBe(true);
    expect(posted[0]!.message.content).toBe('I am well, thank you.');
    expect(Number(posted[1]!.message.flags)).toBe(MESSAGE_FLAG.IS_VOICE_MESSAGE);
    expect(posted[1]!.files).toHaveLength(1);
  });

  it('maps DM text to a text turn, typed /commands to commands, and ignores nothing silently', async () => {
    const dave = fake.addUser('dave');
    engine.script = async (_m, target) => target.reply({ kind: 'info', text: 'ok' });
    const text = fake.sendDirectMessage({ user: dave, content: 'I had a long day.' });
    const command = fake.sendDirectMessage({ user: dave, content: '/remember my cat is called Miso' });
    const pdf = fake.hostAttachment(Buffer.from('%PDF-1.7\n'), { filename: 'cv.pdf', contentType: 'application/pdf' });
    const file = fake.sendDirectMessage({ user: dave, content: 'my file', attachments: [pdf] });
    expect((await engine.waitFor((m) => m.id === `discord:message:${String(text.id)}`)).text).toBe('I had a long day.');
    expect((await engine.waitFor((m) => m.id === `discord:message:${String(command.id)}`)).command).toEqual({ name: 'remember', args: 'my cat is called Miso' });
    const withFile = await engine.waitFor((m) => m.id === `discord:message:${String(file.id)}`);
    expect(withFile.text).toBe('my file');
    expect(withFile.audio).toMatchObject({ declaredMime: 'application/pdf', isVoiceNote: false });
  });
});

describe('forwarded messages', () => {
  it('marks a forwarded voice message as forwarded and takes its audio from the snapshot', async () => {
    const gina = fake.addUser('gina');
    engine.script = async (_m, target) => target.reply({ kind: 'error', text: 'Forwarded voice notes cannot be used.' });
    const bytes = toOggOpus(makeSpeechWav('Someone else speaking.'));
    const attachment = fake.hostAttachment(bytes, { filename: 'voice-message.ogg', contentType: 'audio/ogg', durationSec: 1.2, waveform: 'AAAA' });
    const message = fake.sendDirectMessage({ user: gina, attachments: [attachment], voice: true, forwarded: true });
    const inbound = await engine.waitFor((m) => m.id === `discord:message:${String(message.id)}`);
    expect(inbound.forwarded).toBe(true);
    expect(inbound.audio).toMatchObject({ isVoiceNote: true, declaredDurationSec: 1.2, declaredSizeBytes: bytes.length });
    const dm = fake.dmChannelId(gina.id);
    const reply = await fake.waitFor(() => fake.channelMessages(dm)[0], 10_000, 'refusal in the DM');
    expect(reply.message.content).toBe('⚠️ Forwarded voice notes cannot be used.');
  });
});

describe('buttons', () => {
  it('turns a press by the owner into an action and takes the buttons off; refuses other users', async () => {
    engine.script = async (m, target) => {
      if (m.action) return target.reply({ kind: 'info', text: `pressed ${m.action}` });
      await target.reply({ kind: 'info', text: 'Delete everything?', ephemeral: true, buttons: [[{ label: 'Delete everything', data: 'delete:confirm' }, { label: 'Keep my data', data: 'delete:cancel' }]] });
    };
    const i = fake.sendSlashCommand({ user: alice, name: 'delete' });
    const [prompt] = await answers(i, 1);
    const row = (prompt!.message.components as Array<{ components: Array<{ custom_id: string; label: string; style: number }> }>)[0]!;
    expect(row.components.map((b) => b.label)).toEqual(['Delete everything', 'Keep my data']);
    const confirm = row.components[0]!.custom_id;
    expect(confirm).toBe(`vt:${alice.id}:delete:confirm`);

    const mallory = fake.addUser('mallory');
    const stolen = fake.pressButton({ user: mallory, message: prompt!, customId: confirm });
    await fake.waitFor(() => fake.interactions.get(stolen.id)!.ackType, 10_000, 'refusal');
    expect(fake.interactions.get(stolen.id)!.ackType).toBe(4);
    expect(fake.messagesFor(stolen.id)[0]!.message.content).toMatch(/someone else/);
    expect(engine.messages.some((m) => m.userId === mallory.id)).toBe(false);

    const press = fake.pressButton({ user: alice, message: prompt!, customId: confirm });
    const action = await engine.waitFor((m) => m.id === `discord:interaction:${press.id}`);
    expect(action.action).toBe('delete:confirm');
    const reply = await fake.waitFor(() => fake.messagesFor(press.id).find((m) => m.via === 'followup'), 10_000, 'button reply');
    expect(fake.interactions.get(press.id)!.ackType).toBe(6);
    expect(reply.message.content).toBe('pressed delete:confirm');
    expect(Number(reply.message.flags) & MESSAGE_FLAG.EPHEMERAL).toBeTruthy();
    await fake.waitFor(() => ((prompt!.message.components as unknown[]).length === 0 ? true : undefined), 10_000, 'buttons removed');
  });
});

describe('sender for replies outside a turn', () => {
  it('opens the DM channel and sends there; a blocked user is a RecipientUnavailableError', async () => {
    const erin = fake.addUser('erin');
    await engine.sender!.send(erin.id, { kind: 'status', text: 'Your twin voice is ready.' });
    const dm = fake.dmChannelId(erin.id);
    expect(fake.calls.some((c) => c.method === 'POST' && c.path === '/users/@me/channels' && (c.json as { recipient_id: string }).recipient_id === erin.id)).toBe(true);
    expect(fake.channelMessages(dm)[0]!.message.content).toBe('Your twin voice is ready.');

    const frank = fake.addUser('frank');
    fake.blockDirectMessages(frank.id);
    const err = await engine.sender!.send(frank.id, { kind: 'status', text: 'hello' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RecipientUnavailableError);
    expect(err).toMatchObject({ channel: 'discord', chatId: frank.id });
    expect(String((err as Error).message)).toMatch(/50007/);
  });
});
