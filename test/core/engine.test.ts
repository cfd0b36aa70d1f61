/**
 * Engine behaviour with the real audio pipeline (ffmpeg, espeak-ng-made speech) and the real SQLite
 * store, and scripted providers so that each decision of the engine can be checked exactly: what
 * the STT "heard" is set by the test, the chat model and synthesizer record what they were asked.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChatRequest, ClonedVoice, Providers, SpeechToText } from '../../src/core/providers.js';
import type { ChannelSender, InboundMessage, OutboundReply, ReplyTarget } from '../../src/core/types.js';
import { getOggOpusInfo } from '../../src/core/audio/index.js';
import { createTestApp, type TestApp } from '../helpers/app.js';

let workDir: string;
const cache = new Map<string, Buffer>();

function tool(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr?.toString()}`);
}

/** espeak-ng speech as an Ogg/Opus voice note (cached per text). */
async function speech(text: string): Promise<Buffer> {
  const hit = cache.get(text);
  if (hit) return hit;
  const wav = path.join(workDir, `s${cache.size}.wav`);
  const ogg = path.join(workDir, `s${cache.size}.ogg`);
  tool('espeak-ng', ['-v', 'en-us', '-w', wav, '--', text]);
  tool('ffmpeg', ['-loglevel', 'error', '-y', '-i', wav, '-ac', '1', '-c:a', 'libopus', ogg]);
  const bytes = await readFile(ogg);
  cache.set(text, bytes);
  return bytes;
}

/** ffmpeg lavfi audio (silence, tone, noise) as WAV. */
async function lavfi(source: string, name: string): Promise<Buffer> {
  const out = path.join(workDir, `${name}.wav`);
  tool('ffmpeg', ['-loglevel', 'error', '-y', '-f', 'lavfi', '-i', source, '-ac', '1', '-ar', '16000', out]);
  return readFile(out);
}

class Recorder implements ReplyTarget, ChannelSender {
  readonly channel = 'console' as const;
  replies: OutboundReply[] = [];
  activities: string[] = [];
  statuses: string[] = [];
  async reply(r: OutboundReply): Promise<void> {
    this.replies.push(r);
  }
  async activity(kind: string): Promise<void> {
    this.activities.push(kind);
  }
  async status(text: string): Promise<(t: string) => Promise<void>> {
    this.statuses.push(text);
    return async (t) => void this.statuses.push(t);
  }
  async send(_chatId: string, r: OutboundReply): Promise<void> {
    this.replies.push(r);
  }
  last(): OutboundReply {
    return this.replies[this.replies.length - 1]!;
  }
  errors(): OutboundReply[] {
    return this.replies.filter((r) => r.kind === 'error');
  }
}

/** Providers whose STT returns what the test says was spoken, and which record their calls. */
function scripted(options: { reliable: boolean }) {
  const heard: string[] = [];
  const chatRequests: ChatRequest[] = [];
  const synthesized: string[] = [];
  const cloned: number[] = [];
  const deleted: string[] = [];
  const stt: SpeechToText = {
    name: 'scripted',
    reliable: options.reliable,
    transcribe: async (pcm) => ({ text: heard.shift() ?? '', durationSec: pcm.samples.length / pcm.sampleRateHz }),
  };
  const providers: Providers = {
    stt,
    chat: {
      name: 'scripted',
      reply: async (req) => {
        chatRequests.push(req);
        return { text: `You said ${req.userText}. ${req.memories[0] ? `I remember that ${req.memories[0].text}.` : ''} Tell me more.` };
      },
      extractMemories: async (history) => history.filter((t) => t.role === 'user' && /my name is/i.test(t.text)).map((t) => t.text),
      insight: async () => 'You often talk about your plans.',
    },
    tts: {
      name: 'espeak-test',
      synthesize: async ({ text }) => {
        synthesized.push(text);
        const wav = path.join(workDir, `tts-${synthesized.length}-${Date.now()}.wav`);
        tool('espeak-ng', ['-v', 'en-us', '-w', wav, '--', text]);
        return { bytes: await readFile(wav), characters: text.length };
      },
    },
    cloner: {
      name: 'scripted',
      minSpeechSec: 3,
      clone: async ({ samples }): Promise<ClonedVoice> => {
        cloned.push(samples.length);
        return { provider: 'scripted', voiceId: 'v1', params: {}, approximate: false, label: 'test clone' };
      },
      deleteVoice: async (voice) => void deleted.push(voice.voiceId),
    },
  };
  return { providers, heard, chatRequests, synthesized, cloned, deleted };
}

let app: TestApp;
let out: Recorder;
let seq = 0;
const msg = (partial: Partial<InboundMessage>): InboundMessage => ({
  id: `m${++seq}`,
  channel: 'console',
  chatId: 'c1',
  userId: 'u1',
  displayName: 'Ana',
  receivedAtMs: Date.now(),
  ...partial,
});
const voice = (bytes: Buffer, extra: Partial<InboundMessage> = {}): InboundMessage => msg({ audio: { bytes, isVoiceNote: true, declaredSizeBytes: bytes.length }, ...extra });
const cmd = (name: string, args = ''): InboundMessage => msg({ command: { name, args } });

beforeEach(async () => {
  workDir = workDir ?? (await mkdtemp(path.join(tmpdir(), 'voicetwin-engine-')));
  out = new Recorder();
});
afterEach(async () => {
  await app?.close();
});

describe('commands and text', () => {
  let s: ReturnType<typeof scripted>;
  beforeEach(async () => {
    s = scripted({ reliable: true });
    app = await createTestApp({ providers: s.providers });
    app.engine.registerSender(out);
  });

  it('answers /start and /help, and refuses an unknown command with a hint', async () => {
    await app.engine.handle(cmd('start'), out);
    expect(out.last().text).toContain('/enroll');
    await app.engine.handle(cmd('help'), out);
    for (const c of app.engine.commands.filter((c) => !c.operatorOnly)) expect(out.last().text).toContain(`/${c.name}`);
    await app.engine.handle(cmd('frobnicate'), out);
    expect(out.last()).toMatchObject({ kind: 'error' });
    expect(out.last().text).toMatch(/don't know the command \/frobnicate.*\/help/);
  });

  it('refuses empty and 20,000-character text without storing anything', async () => {
    await app.engine.handle(msg({ text: '   ' }), out);
    expect(out.last()).toMatchObject({ kind: 'error' });
    expect(out.last().text).toMatch(/voice notes and text/);
    await app.engine.handle(msg({ text: 'x'.repeat(20_000) }), out);
    expect(out.last().text).toMatch(/20,000 characters.*at most 4,000/);
    expect(await app.store.history.recent('console:u1', 10)).toEqual([]);
    expect(s.chatRequests).toHaveLength(0);
  });

  it('answers text with a voice note in the default voice, labelled, and stores the turn', async () => {
    await app.engine.handle(msg({ text: 'I want to plan my week' }), out);
    const r = out.last();
    expect(r.kind).toBe('answer');
    expect(r.voice).toBeDefined();
    const info = getOggOpusInfo(r.voice!.oggOpus);
    expect(info.channels).toBe(1);
    expect(Math.abs(info.durationSec - r.voice!.durationSec)).toBeLessThan(0.1);
    expect(r.voice!.durationSec).toBeGreaterThan(0.5);
    expect(r.voice!.waveform).toHaveLength(256);
    expect(r.text).toContain('You said I want to plan my week');
    expect(r.text).toMatch(/Default voice.*\/enroll/);
    const history = await app.store.history.recent('console:u1', 10);
    expect(history.map((t) => t.role)).toEqual(['user', 'twin']);
    expect(out.activities).toContain('record_voice');
  });

  it('passes persona, history and the relevant memory to the chat model', async () => {
    await app.engine.handle(cmd('style', 'coaching'), out);
    await app.engine.handle(cmd('remember', 'my sister Ana lives in Porto'), out);
    await app.engine.handle(cmd('remember', 'I am learning the cello'), out);
    await app.engine.handle(msg({ text: 'Should I visit my sister this summer?' }), out);
    const req = s.chatRequests.at(-1)!;
    expect(req.persona).toBe('coaching');
    expect(req.systemPrompt).toMatch(/coaching/);
    expect(req.memories[0]?.text).toBe('my sister Ana lives in Porto');
    expect(req.memories.map((m) => m.text)).not.toContain('I am learning the cello');
    await app.engine.handle(msg({ text: 'And then what?' }), out);
    expect(s.chatRequests.at(-1)!.history.map((t) => t.text)).toContain('Should I visit my sister this summer?');
  });

  it('lists and forgets memories, and refuses an unknown id', async () => {
    await app.engine.handle(cmd('remember', 'I like jazz'), out);
    const id = /id ([0-9a-f]{4})/.exec(out.last().text!)![1]!;
    await app.engine.handle(cmd('memories'), out);
    expect(out.last().text).toContain(`${id}: I like jazz`);
    await app.engine.handle(cmd('forget', 'zzzz'), out);
    expect(out.last().kind).toBe('error');
    expect(await app.store.memories.list('console:u1')).toHaveLength(1);
    await app.engine.handle(cmd('forget', id), out);
    expect(await app.store.memories.list('console:u1')).toHaveLength(0);
  });

  it('refuses an unknown persona and keeps the current one', async () => {
    await app.engine.handle(cmd('style', 'grumpy'), out);
    expect(out.last().kind).toBe('error');
    expect(out.last().text).toContain('supportive');
    expect((await app.store.users.get('console:u1'))!.persona).toBe('supportive');
    await app.engine.handle(msg({ action: 'style:humorous' }), out);
    expect((await app.store.users.get('console:u1'))!.persona).toBe('humorous');
  });

  it('clears the blocked mark when the user writes again', async () => {
    await app.engine.handle(msg({ text: 'hello' }), out);
    const user = (await app.store.users.get('console:u1'))!;
    await app.store.users.put({ ...user, blocked: true });
    await app.engine.handle(msg({ text: 'I am back' }), out);
    expect((await app.store.users.get('console:u1'))!.blocked).toBe(false);
  });

  it('handles a redelivered message id once', async () => {
    const m = msg({ text: 'hello there' });
    await app.engine.handle(m, out);
    await app.engine.handle({ ...m }, out);
    expect(s.chatRequests).toHaveLength(1);
    expect(app.events.some((e) => e.type === 'duplicate' && e.messageId === m.id)).toBe(true);
  });

  it('keeps one user in order while serving others', async () => {
    const texts = ['one', 'two', 'three', 'four'];
    await Promise.all([
      ...texts.map((t) => app.engine.handle(msg({ text: `u1 ${t}` }), out)),
      app.engine.handle(msg({ text: 'u2 hi', userId: 'u2', chatId: 'c2' }), out),
    ]);
    const u1 = (await app.store.history.recent('console:u1', 20)).filter((t) => t.role === 'user').map((t) => t.text);
    expect(u1).toEqual(texts.map((t) => `u1 ${t}`));
    expect(await app.store.history.recent('console:u2', 5)).toHaveLength(2);
  });

  it('serves a repeated phrase from the synthesis cache', async () => {
    await app.engine.handle(cmd('say', 'Good morning.'), out);
    await app.engine.handle(cmd('say', 'Good morning.'), out);
    expect(s.synthesized.filter((t) => t === 'Good morning.')).toHaveLength(1);
    expect(out.replies.filter((r) => r.voice)).toHaveLength(2);
  });

  it('adds an insight every 5 messages and extracts memories every 3', async () => {
    for (const t of ['My name is Ana', 'I walked today', 'It rained', 'I read a book', 'Time for bed']) {
      await app.engine.handle(msg({ text: t }), out);
    }
    // Both run as `insights` jobs on the queue after their turn.
    await app.engine.whenIdle();
    expect(out.replies.filter((r) => r.kind === 'insight')).toHaveLength(1);
    expect((await app.store.memories.list('console:u1')).map((m) => m.source)).toEqual(['extracted']);
  });
});

describe('enrollment', () => {
  it('requires the spoken phrase to match with a reliable STT, refuses bad samples, then clones', async () => {
    const s = scripted({ reliable: true });
    app = await createTestApp({ providers: s.providers });
    app.engine.registerSender(out);
    await app.engine.handle(cmd('enroll'), out);
    const profile = (await app.store.profiles.get('console:u1'))!;
    expect(profile.state).toBe('consent');
    expect(out.last().text).toContain(profile.consent.phrase);

    const phraseAudio = await speech(profile.consent.phrase);
    s.heard.push('I agree that something may clone my voice');
    await app.engine.handle(voice(phraseAudio), out);
    expect(out.last().text).toMatch(/does not match/);
    expect((await app.store.profiles.get('console:u1'))!.state).toBe('consent');

    s.heard.push(profile.consent.phrase.toLowerCase());
    await app.engine.handle(voice(phraseAudio), out);
    const granted = (await app.store.profiles.get('console:u1'))!;
    expect(granted.state).toBe('collecting');
    expect(granted.consent).toMatchObject({ method: 'spoken-match', heardText: profile.consent.phrase.toLowerCase() });
    expect(granted.consent.audioBlobKey).toBeDefined();
    expect(granted.consent.grantedAtMs).toBeGreaterThan(0);

    // Bad samples: each refused with its own reason, nothing counted.
    const sample = await speech('This is a sample of my voice for the twin.');
    await app.engine.handle(voice(sample, { forwarded: true }), out);
    expect(out.last().text).toMatch(/Forwarded/);
    await app.engine.handle(voice(await lavfi('anullsrc=r=16000:cl=mono:d=3', 'silence')), out);
    await app.engine.handle(voice(await lavfi('sine=f=440:d=3', 'tone')), out);
    await app.engine.handle(voice(Buffer.from('not audio at all, just some text bytes')), out);
    await app.engine.handle(voice(Buffer.alloc(0)), out);
    await app.engine.handle(voice(sample.subarray(0, Math.floor(sample.length / 3))), out);
    expect(out.errors().length).toBeGreaterThanOrEqual(6);
    expect((await app.store.profiles.get('console:u1'))!.speechSec).toBe(0);
    expect(await app.store.samples.list('console:u1')).toHaveLength(0);

    await app.engine.handle(voice(sample), out);
    expect(out.last().text).toMatch(/Sample accepted/);
    await app.engine.handle(voice(await speech('I like long walks by the sea and cooking for my friends.')), out);
    await app.engine.whenIdle();
    const ready = (await app.store.profiles.get('console:u1'))!;
    expect(ready.state).toBe('ready');
    expect(ready.voice?.label).toBe('test clone');
    expect(s.cloned).toEqual([2]);
    expect(out.statuses.some((t) => /ready/.test(t))).toBe(true);
    const greeting = out.replies.find((r) => r.voice && /twin speaking/.test(r.text ?? ''));
    expect(greeting).toBeDefined();

    // Voice turn in the cloned voice, no approximation label.
    s.heard.push('how are you today');
    await app.engine.handle(voice(sample), out);
    expect(out.last().text).toContain('You said: "how are you today"');
    expect(out.last().voiceLabel).toBeUndefined();

    // Delete everything, with a confirmation first.
    await app.engine.handle(cmd('delete'), out);
    expect(await app.store.profiles.get('console:u1')).toBeDefined();
    await app.engine.handle(msg({ action: 'delete:confirm' }), out);
    expect(s.deleted).toEqual(['v1']);
    const summary = await app.store.summarize('console:u1');
    expect(summary).toMatchObject({ samples: [], historyTurns: 0, memories: [], blobKeys: [] });
    expect(summary.profile).toBeUndefined();
  });

  it('with an unreliable STT needs a typed confirmation and a spoken one, in either order', async () => {
    const s = scripted({ reliable: false });
    app = await createTestApp({ providers: s.providers });
    await app.engine.handle(cmd('enroll'), out);
    expect(out.last().buttons?.flat().map((b) => b.data)).toContain('consent:agree');
    const phrase = (await app.store.profiles.get('console:u1'))!.consent.phrase;
    s.heard.push('eye agree that voice twin');
    await app.engine.handle(voice(await speech(phrase)), out);
    expect((await app.store.profiles.get('console:u1'))!.state).toBe('consent');
    await app.engine.handle(msg({ text: 'I AGREE' }), out);
    const p = (await app.store.profiles.get('console:u1'))!;
    expect(p.state).toBe('collecting');
    expect(p.consent.method).toBe('typed-and-spoken');
  });

  it('never clones from a typed confirmation alone', async () => {
    const s = scripted({ reliable: false });
    app = await createTestApp({ providers: s.providers });
    await app.engine.handle(cmd('enroll'), out);
    await app.engine.handle(msg({ action: 'consent:agree' }), out);
    expect((await app.store.profiles.get('console:u1'))!.state).toBe('consent');
    await app.engine.handle(voice(await speech('Hello there, this is a voice note.')), out);
    // The voice note during consent is the spoken consent; still nothing cloned, samples start after.
    expect((await app.store.profiles.get('console:u1'))!.state).toBe('collecting');
    expect(s.cloned).toEqual([]);
  });
});

describe('bad audio in a chat turn', () => {
  it('refuses oversize files before download and loses nothing', async () => {
    const s = scripted({ reliable: true });
    app = await createTestApp({ providers: s.providers });
    await app.engine.handle(msg({ text: 'first message' }), out);
    let downloaded = false;
    await app.engine.handle(
      msg({ audio: { isVoiceNote: true, declaredSizeBytes: 25 * 1024 * 1024, download: async () => ((downloaded = true), Buffer.alloc(10)) } }),
      out,
    );
    expect(downloaded).toBe(false);
    expect(out.last().text).toMatch(/25(\.0)? MB.*20 MB/);
    await app.engine.handle(msg({ audio: { isVoiceNote: true, declaredDurationSec: 3600, download: async () => ((downloaded = true), Buffer.alloc(10)) } }), out);
    expect(downloaded).toBe(false);
    expect(out.last().kind).toBe('error');
    expect(await app.store.history.recent('console:u1', 10)).toHaveLength(2);
  });

  it('accepts MP3 bytes whatever their name, and says so when nothing was heard', async () => {
    const s = scripted({ reliable: true });
    app = await createTestApp({ providers: s.providers });
    const wav = path.join(workDir, 'mp3src.wav');
    const mp3 = path.join(workDir, 'voice.ogg');
    tool('espeak-ng', ['-w', wav, '--', 'What a lovely day it is']);
    tool('ffmpeg', ['-loglevel', 'error', '-y', '-i', wav, '-f', 'mp3', mp3]);
    s.heard.push('what a lovely day it is');
    await app.engine.handle(msg({ audio: { bytes: await readFile(mp3), isVoiceNote: false, fileName: 'voice.ogg', declaredMime: 'audio/ogg' } }), out);
    expect(out.last().kind).toBe('answer');
    s.heard.push('');
    await app.engine.handle(msg({ audio: { bytes: await readFile(mp3), isVoiceNote: true } }), out);
    expect(out.last().text).toMatch(/couldn't make out any words/);
  });
});

describe('restart', () => {
  it('keeps profiles, samples, history and memories across a restart (SQLite)', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-restart-'));
    try {
      const s = scripted({ reliable: true });
      app = await createTestApp({ providers: s.providers, dataDir });
      await app.engine.handle(cmd('remember', 'I live in Lisbon'), out);
      await app.engine.handle(msg({ text: 'hello' }), out);
      await app.engine.handle(cmd('enroll'), out);
      const phrase = (await app.store.profiles.get('console:u1'))!.consent.phrase;
      s.heard.push(phrase);
      await app.engine.handle(voice(await speech(phrase)), out);
      await app.engine.handle(voice(await speech('This is a sample of my voice for the twin.')), out);
      await app.close();

      const s2 = scripted({ reliable: true });
      app = await createTestApp({ providers: s2.providers, dataDir });
      const summary = await app.store.summarize('console:u1');
      expect(summary.profile?.state).toBe('collecting');
      expect(summary.samples).toHaveLength(1);
      expect(summary.historyTurns).toBe(2);
      expect(summary.memories.map((m) => m.text)).toEqual(['I live in Lisbon']);
      const wav = await app.store.blobs.get(summary.samples[0]!.blobKey);
      expect(wav.subarray(0, 4).toString()).toBe('RIFF');
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('operator commands', () => {
  it('refuses a non-operator, logs nothing as queued, and runs for an operator', async () => {
    const s = scripted({ reliable: true });
    app = await createTestApp({ providers: s.providers, env: { OPERATORS: 'console:boss' } });
    const runs: string[] = [];
    app.engine.registerOperatorCommand({
      info: { name: 'broadcast', description: 'Send to everyone', args: '<text>', operatorOnly: true },
      run: async ({ args, target }) => {
        runs.push(args);
        await target.reply({ kind: 'info', text: 'queued' });
      },
    });
    expect(app.engine.commands.at(-1)).toMatchObject({ name: 'broadcast', operatorOnly: true });
    await app.engine.handle(cmd('broadcast', 'hello all'), out);
    expect(out.last()).toMatchObject({ kind: 'error' });
    expect(out.last().text).toMatch(/only for the operators/);
    expect(runs).toEqual([]);
    await app.engine.handle(msg({ userId: 'boss', chatId: 'b', command: { name: 'broadcast', args: ' hello all ' } }), out);
    expect(runs).toEqual(['hello all']);
    await app.engine.handle(cmd('help'), out);
    expect(out.last().text).not.toContain('/broadcast');
    await app.engine.handle(msg({ userId: 'boss', chatId: 'b', command: { name: 'help', args: '' } }), out);
    expect(out.last().text).toContain('/broadcast <text>');
  });
});

describe('usage and budgets', () => {
  it('counts characters and seconds per user, answers in text when the spoken budget is used up, refuses voice past the STT budget', async () => {
    const s = scripted({ reliable: true });
    app = await createTestApp({ providers: s.providers, env: { DAILY_TTS_CHARS: '20', DAILY_STT_SEC: '1' } });
    s.heard.push('hello there');
    await app.engine.handle(voice(await speech('Hello there, how are you today?')), out);
    expect(out.last().voice).toBeDefined();
    const used = await app.engine.usage!.today('console:u1');
    expect(used.total.ttsChars).toBeGreaterThan(20);
    expect(used.total.sttSec).toBeGreaterThan(1);
    expect(used.byProvider['espeak-test']?.ttsChars).toBe(used.total.ttsChars);

    await app.engine.handle(msg({ text: 'Another question for you' }), out);
    expect(out.last().kind).toBe('answer');
    expect(out.last().voice).toBeUndefined();
    expect(out.last().text).toMatch(/You said Another question for you.*spoken replies.*resets at midnight UTC/s);
    expect(await app.store.history.recent('console:u1', 10)).toHaveLength(4);

    await app.engine.handle(voice(await speech('Hello there, how are you today?')), out);
    expect(out.last()).toMatchObject({ kind: 'error' });
    expect(out.last().text).toMatch(/voice notes.*please type/);

    await app.engine.handle(cmd('status'), out);
    expect(out.last().text).toMatch(/Today: \d+ of 20 characters spoken, \d+ of 1 s transcribed/);
  });
});

describe('slow clone', () => {
  it('says so after CLONE_TIMEOUT_S, answers in the default voice meanwhile, and finishes in the background', async () => {
    const s = scripted({ reliable: true });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const fast = s.providers.cloner.clone.bind(s.providers.cloner);
    s.providers.cloner = { ...s.providers.cloner, clone: async (req) => (await gate, fast(req)) };
    app = await createTestApp({ providers: s.providers, env: { CLONE_TIMEOUT_S: '1' } });
    app.engine.registerSender(out);
    await app.engine.handle(cmd('enroll'), out);
    const phrase = (await app.store.profiles.get('console:u1'))!.consent.phrase;
    s.heard.push(phrase);
    await app.engine.handle(voice(await speech(phrase)), out);
    await app.engine.handle(voice(await speech('This is a sample of my voice for the twin.')), out);
    await app.engine.handle(voice(await speech('I like long walks by the sea and cooking for my friends.')), out);
    expect((await app.store.profiles.get('console:u1'))!.state).toBe('processing');
    await new Promise((r) => setTimeout(r, 1300));
    expect(out.statuses.some((t) => /taking longer than usual/.test(t))).toBe(true);
    await app.engine.handle(msg({ text: 'Are you there?' }), out);
    expect(out.last().text).toMatch(/Default voice/);
    release();
    await app.engine.whenIdle();
    expect((await app.store.profiles.get('console:u1'))!.state).toBe('ready');
  });
});
