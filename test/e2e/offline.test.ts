/**
 * End to end on the offline stack (real ffmpeg, espeak-ng, pocketsphinx, template chat model,
 * SQLite or Redis): enrollment with consent, samples, background clone, voice and text turns, and
 * a restart. Uses audio the test makes itself, and the real speech clips when they are present.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { InboundMessage, OutboundReply, ReplyTarget } from '../../src/core/types.js';
import { analyseSample, decodeToPcm } from '../../src/core/audio/index.js';
import { APPROXIMATION_NOTE } from '../../src/core/engine.js';
import { loadConfig } from '../../src/config.js';
import { runDemo } from '../../src/demo.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { ffprobeJson, makeSpeechWav, toOggOpus, SAMPLE_SENTENCES } from '../helpers/audio.js';

const SENTENCES = [
  SAMPLE_SENTENCES,
  'Yesterday I walked along the river after work, and the light over the water was beautiful.',
  'On weekends I like to cook for my friends and talk for hours about books and music.',
];
import { describeIfSpeech, readSpeech } from '../helpers/speech.js';

class Recorder implements ReplyTarget {
  readonly channel = 'console' as const;
  replies: OutboundReply[] = [];
  async reply(r: OutboundReply): Promise<void> {
    this.replies.push(r);
  }
  async activity(): Promise<void> {}
  async status(text: string): Promise<(t: string) => Promise<void>> {
    this.replies.push({ kind: 'status', text });
    return async (t) => void this.replies.push({ kind: 'status', text: t });
  }
  async send(_c: string, r: OutboundReply): Promise<void> {
    this.replies.push(r);
  }
  last(): OutboundReply {
    return this.replies[this.replies.length - 1]!;
  }
}

/** Asserts what every reply voice note must be: Ogg/Opus mono, > 0.5 s, stated duration within 0.1 s, with speech. */
async function expectGoodVoiceNote(reply: OutboundReply): Promise<void> {
  expect(reply.voice).toBeDefined();
  const v = reply.voice!;
  const probe = ffprobeJson(v.oggOpus);
  const stream = probe.streams.find((s) => s.codec_type === 'audio')!;
  expect(probe.format.format_name).toBe('ogg');
  expect(stream.codec_name).toBe('opus');
  expect(stream.channels).toBe(1);
  const probed = Number(probe.format.duration ?? stream.duration);
  expect(probed).toBeGreaterThan(0.5);
  expect(Math.abs(probed - v.durationSec)).toBeLessThanOrEqual(0.1);
  expect(v.waveform).toHaveLength(256);
  const analysis = analyseSample(await decodeToPcm(v.oggOpus, { sampleRateHz: 16000 }));
  expect(analysis.speechSec).toBeGreaterThan(0.5);
}

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function enroll(a: TestApp, out: Recorder, base: Omit<InboundMessage, 'id'>, consentClip: Buffer, samples: Buffer[]): Promise<void> {
  let n = 0;
  const send = (partial: Partial<InboundMessage>): Promise<void> => a.engine.handle({ ...base, id: `${base.userId}:enroll:${++n}`, ...partial }, out);
  await send({ command: { name: 'enroll', args: '' } });
  await send({ audio: { bytes: consentClip, isVoiceNote: true } });
  await send({ action: 'consent:agree' });
  const key = `${base.channel}:${base.userId}`;
  expect((await a.store.profiles.get(key))?.state, JSON.stringify(out.replies.map((r) => r.text))).toBe("collecting");
  for (let i = 0; i < samples.length * 3; i++) {
    if ((await a.store.profiles.get(key))?.state !== 'collecting') break;
    await send({ audio: { bytes: samples[i % samples.length]!, isVoiceNote: true } });
  }
  await a.engine.whenIdle();
}

describe('offline stack, generated speech', () => {
  it('enrolls, clones a preview voice and answers voice and text turns with good voice notes', async () => {
    app = await createTestApp({ env: { ENROLL_MIN_SPEECH_SEC: '8' } });
    const out = new Recorder();
    app.engine.registerSender(out);
    const base = { channel: 'console' as const, chatId: 'g', userId: 'g', displayName: 'Gen', receivedAtMs: Date.now() };
    const samples = SENTENCES.map((t) => toOggOpus(makeSpeechWav(t, { voice: 'en-us+f3', pitch: 70 })));
    await enroll(app, out, base, toOggOpus(makeSpeechWav('I agree that VoiceTwin may clone my voice.', { voice: 'en-us+f3', pitch: 70 })), samples);
    const profile = (await app.store.profiles.get('console:g'))!;
    expect(profile.state).toBe('ready');
    expect(profile.voice).toMatchObject({ provider: 'local', approximate: true });
    expect(profile.consent.method).toBe('typed-and-spoken');

    await app.engine.handle({ ...base, id: 'g:turn', audio: { bytes: toOggOpus(makeSpeechWav('I want to finish my garden this week')), isVoiceNote: true } }, out);
    const turn = out.last();
    expect(turn.kind).toBe('answer');
    expect(turn.text).toContain(APPROXIMATION_NOTE);
    await expectGoodVoiceNote(turn);

    await app.engine.handle({ ...base, id: 'g:text', text: 'What should I focus on tomorrow?' }, out);
    await expectGoodVoiceNote(out.last());
    await app.engine.handle({ ...base, id: 'g:status', command: { name: 'status', args: '' } }, out);
    expect(out.last().text).toMatch(/ready.*offline preview voice/s);
    expect(out.last().text).toContain(APPROXIMATION_NOTE);
  });
});

describeIfSpeech('offline stack, real speech clips', () => {
  it('enrolls from LJSpeech clips, then answers JFK as a Telegram-style voice note', async () => {
    app = await createTestApp();
    const out = new Recorder();
    app.engine.registerSender(out);
    const base = { channel: 'console' as const, chatId: 'lj', userId: 'lj', displayName: 'Linda', receivedAtMs: Date.now() };
    const lj = ['LJ001-0001.wav', 'LJ001-0004.wav', 'LJ001-0005.wav', 'LJ001-0006.wav', 'LJ001-0007.mp3'].map((f) => readSpeech(`coqui-tts-ljspeech/${f}`));
    await enroll(app, out, base, lj[0]!, lj.slice(1));
    const profile = (await app.store.profiles.get('console:lj'))!;
    expect(profile.state).toBe('ready');
    expect(profile.speechSec).toBeGreaterThanOrEqual(20);
    // A female reader gets the female preview variant.
    expect(String(profile.voice?.params.espeakVoice ?? '')).toMatch(/f\d|female/);

    await app.engine.handle({ ...base, id: 'lj:jfk', audio: { bytes: readSpeech('derived-telegram-oga/jfk_telegram_style.oga'), isVoiceNote: true, declaredDurationSec: 11 } }, out);
    const turn = out.last();
    expect(turn.kind).toBe('answer');
    expect(turn.text?.toLowerCase()).toMatch(/country/);
    await expectGoodVoiceNote(turn);
  });
});

describe('restart keeps everything (Redis)', () => {
  it('finds the profile, samples, history and memories after reopening', async () => {
    const userId = `r-${randomUUID().slice(0, 8)}`;
    const env = { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_NAMESPACE: `vt-test-${userId}`, ENROLL_MIN_SPEECH_SEC: '30' };
    // The same data dir after the restart: with Redis the encrypted audio blobs stay on that volume.
    const dataDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-restart-'));
    app = await createTestApp({ env, dataDir });
    const out = new Recorder();
    const base = { channel: 'console' as const, chatId: userId, userId, receivedAtMs: Date.now() };
    await app.engine.handle({ ...base, id: `${userId}:1`, command: { name: 'remember', args: 'I play the violin' } }, out);
    await app.engine.handle({ ...base, id: `${userId}:2`, text: 'Hello twin' }, out);
    await enroll(app, out, base, toOggOpus(makeSpeechWav('I agree that VoiceTwin may clone my voice. My code word is mountain.')), [toOggOpus(makeSpeechWav(SENTENCES[1]!))]);
    const before = await app.store.summarize(`console:${userId}`);
    await app.close();

    app = await createTestApp({ env, dataDir });
    try {
      const after = await app.store.summarize(`console:${userId}`);
      // The samples' audio is readable after the restart too.
      for (const s of after.samples) expect((await app.store.blobs.get(s.blobKey)).length).toBeGreaterThan(44);
      expect(after.profile?.state).toBe('collecting');
      expect(after.samples.map((s) => s.id)).toEqual(before.samples.map((s) => s.id));
      expect(after.samples.length).toBeGreaterThan(0);
      expect(after.historyTurns).toBe(2);
      expect(after.memories.map((m) => m.text)).toEqual(['I play the violin']);
    } finally {
      await app.store.deleteUser(`console:${userId}`);
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('voicetwin demo', () => {
  it('runs the whole offline walkthrough and writes playable voice notes', async () => {
    const outDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-demo-out-'));
    const lines: string[] = [];
    try {
      const result = await runDemo(loadConfig({ LOG_LEVEL: 'silent', ENROLL_MIN_SPEECH_SEC: '12' }), { samplePaths: [], outDir, persona: 'reflective', write: (l) => lines.push(l) });
      expect(result.profileState).toBe('ready');
      expect(result.turns.map((t) => t.input)).toEqual(['voice', 'text']);
      expect(result.turns.every((t) => t.persona === 'reflective')).toBe(true);
      const files = (await readdir(outDir)).filter((f) => f.endsWith('.ogg'));
      expect(files.length).toBeGreaterThanOrEqual(3);
      for (const f of files) {
        const bytes = await readFile(path.join(outDir, f));
        expect(bytes.subarray(0, 4).toString()).toBe('OggS');
      }
      expect(lines.join('\n')).toMatch(/offline demo/i);
      expect(lines.join('\n')).toMatch(/timings: decode \d+ ms, stt \d+ ms/);
    } finally {
      await rm(outDir, { recursive: true, force: true });
    }
  });
});
