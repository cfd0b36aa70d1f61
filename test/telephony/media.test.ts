/**
 * The pipeline mode end to end: a local Media Streams client (test/fakes/twilio/media-client.ts)
 * calls the real server with the offline providers (pocketsphinx, flite/espeak-ng, template chat),
 * speaks as 20 ms μ-law frames at real-time pace, and hears the twin's reply, which is decoded and
 * run through the offline STT again.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callSid, createPhoneHarness, AUTH_TOKEN, type PhoneHarness } from './harness.js';
import { FakeTwilioStream } from '../fakes/twilio/media-client.js';
import { makeSpeechWav, toPcm } from '../helpers/audio.js';
import { describeIfSpeech, speechClip } from '../helpers/speech.js';
import { decodeMulaw, encodeMulaw, FRAME_BYTES, mulawFrames } from '../../src/telephony/mulaw.js';
import { CallLog } from '../../src/telephony/call-log.js';
import { MEDIA_STREAM_PATH } from '../../src/telephony/modes.js';
import { normaliseWords } from '../providers/local/wer.js';
import { createLocalProviders } from '../../src/providers/local/index.js';
import type { ChatRequest, Providers } from '../../src/core/providers.js';

/**
 * The offline stack with the chat model answering one fixed sentence, recording each request:
 * pocketsphinx's 16 kHz model hears little of most telephone-band speech, but this sentence comes
 * through μ-law at 8 kHz well enough to check that the reply audio is speech.
 */
const REPLY = 'I would like to read a book about the history of music.';
function scriptedOffline(): { providers: Providers; requests: ChatRequest[] } {
  const local = createLocalProviders({});
  const requests: ChatRequest[] = [];
  const chat: Providers['chat'] = {
    name: 'scripted',
    reply: async (request) => {
      requests.push(request);
      return { text: REPLY };
    },
    extractMemories: (h, k) => local.chat.extractMemories(h, k),
    insight: (h, p) => local.chat.insight(h, p),
  };
  return { providers: { ...local, chat }, requests };
}

const PUBLIC = 'https://twin.example.org';

/** 8 kHz μ-law frames of `wav` (any rate), with `leadSec`/`tailSec` of silence around it. */
function framesOf(wav: Buffer, leadSec = 0.3, tailSec = 1): Buffer[] {
  const pcm = toPcm(wav, 8000);
  const silence = (sec: number): Int16Array => new Int16Array(Math.round(sec * 8000));
  const all = new Int16Array(silence(leadSec).length + pcm.samples.length + silence(tailSec).length);
  all.set(pcm.samples, silence(leadSec).length);
  return mulawFrames(encodeMulaw(all));
}

function silenceFrames(sec: number): Buffer[] {
  return mulawFrames(Buffer.alloc(Math.round(sec * 8000), 0xff));
}

async function placeCall(h: PhoneHarness, n: number, from: string, userId: string): Promise<{ stream: FakeTwilioStream; sid: string }> {
  await h.linkByDtmf(userId, from);
  const sid = callSid(n);
  const twiml = await h.call(sid, from);
  expect(twiml.body).toContain(`<Stream url="wss://twin.example.org${MEDIA_STREAM_PATH}">`);
  const stream = await FakeTwilioStream.open(`${h.localUrl.replace('http', 'ws')}${MEDIA_STREAM_PATH}`, { authToken: AUTH_TOKEN, signedUrl: `wss://twin.example.org${MEDIA_STREAM_PATH}`, callSid: sid });
  stream.start({ callSid: sid, person: `console:${userId}` });
  return { stream, sid };
}

/** Waits until every mark sent so far came back (the audio before it "played"). */
async function playedOut(stream: FakeTwilioStream, minMarks: number, timeoutMs: number): Promise<void> {
  await stream.until(() => {
    const sent = stream.events.filter((e) => e.event === 'mark').length;
    return sent >= minMarks && stream.marks.length >= sent;
  }, timeoutMs, `${minMarks} marks played`);
}

async function heardWords(h: PhoneHarness, mulaw: Buffer): Promise<Set<string>> {
  const transcript = await h.app.engine.providers.stt.transcribe({ samples: decodeMulaw(mulaw), sampleRateHz: 8000 });
  return new Set(normaliseWords(transcript.text));
}

describe('pipeline mode over a Media Stream (generated caller speech, offline stack)', () => {
  let h: PhoneHarness;
  const scripted = scriptedOffline();
  beforeAll(async () => {
    h = await createPhoneHarness({ publicUrl: PUBLIC, providers: scripted.providers });
  });
  afterAll(async () => h?.close());

  it('refuses an upgrade without a valid signature over the wss URL (403)', async () => {
    const url = `${h.localUrl.replace('http', 'ws')}${MEDIA_STREAM_PATH}`;
    await expect(FakeTwilioStream.open(url, { authToken: AUTH_TOKEN, callSid: callSid(1) })).rejects.toThrow(/403/);
    await expect(FakeTwilioStream.open(url, { authToken: 'another-token', signedUrl: `wss://twin.example.org${MEDIA_STREAM_PATH}`, callSid: callSid(1) })).rejects.toThrow(/403/);
    await expect(FakeTwilioStream.open(url, { authToken: AUTH_TOKEN, signedUrl: `wss://twin.example.org${MEDIA_STREAM_PATH}?x=1`, callSid: callSid(1) })).rejects.toThrow(/403/);
    expect(h.logs.filter((l) => l.includes('bad signature') && l.includes(MEDIA_STREAM_PATH)).length).toBe(3);
  });

  it('closes a stream for a call this server did not answer, or with the wrong person', async () => {
    const signedUrl = `wss://twin.example.org${MEDIA_STREAM_PATH}`;
    const url = `${h.localUrl.replace('http', 'ws')}${MEDIA_STREAM_PATH}`;
    const stranger = await FakeTwilioStream.open(url, { authToken: AUTH_TOKEN, signedUrl, callSid: callSid(2) });
    stranger.start({ callSid: callSid(2), person: 'console:ada' });
    await stranger.until(() => stranger.closed !== undefined, 5000, 'close');
    expect(stranger.closed!.code).toBe(1008);
    expect(stranger.received).toHaveLength(0);
  });

  it('greets, hears the caller, answers with persona, memories and history in speech (heard again by the STT) with marks, and logs the call', async () => {
    await h.chat('ada', '/style coaching');
    await h.chat('ada', '/remember I read a good novel every week');
    await h.chat('ada', 'I practised music all morning');
    const { stream, sid } = await placeCall(h, 10, '+14155550301', 'ada');
    // The greeting arrives as 20 ms μ-law frames followed by marks.
    await stream.until(() => stream.received.length > 0, 20_000, 'greeting audio');
    await playedOut(stream, 1, 30_000);
    const greetingFrames = stream.received.length;
    expect(stream.received.every((m) => m.bytes.length === FRAME_BYTES)).toBe(true);

    // The caller's sentence in the offline voice (flite), which pocketsphinx hears best at 8 kHz.
    const said = await scripted.providers.tts.synthesize({ text: 'I would like to read a good book tonight.' });
    await stream.play(framesOf(said.bytes), 1);
    await stream.until(() => stream.received.length > greetingFrames, 60_000, 'reply audio');
    await playedOut(stream, 2, 60_000);
    const replyAudio = stream.audio(greetingFrames);
    expect(replyAudio.length).toBeGreaterThan(8000); // more than a second of speech
    const heard = await heardWords(h, replyAudio);

    const [call] = await new CallLog(h.app.store.kv).list('console:ada');
    expect(call!.callSid).toBe(sid);
    expect(call!.voice).toBe('default voice');
    const caller = call!.transcript.find((t) => t.role === 'caller');
    const twin = call!.transcript.find((t) => t.role === 'twin');
    expect(caller?.text.length).toBeGreaterThan(0);
    expect(twin?.text.length).toBeGreaterThan(0);
    // The turn went to the chat model like any turn: persona, the relevant memory, the history.
    const request = scripted.requests.at(-1)!;
    expect(request.persona).toBe('coaching');
    expect(request.userText).toBe(caller!.text);
    expect(request.memories.map((m) => m.text), `caller heard as "${caller!.text}"`).toContain('I read a good novel every week');
    expect(request.history.map((t) => t.text)).toContain('I practised music all morning');
    // The reply went through the engine like any turn: it is in the person's history.
    const history = await h.app.store.history.recent('console:ada', 10);
    expect(history.map((t) => t.text)).toContain(twin!.text);
    expect(history.filter((t) => t.role === 'user').at(-1)?.messageId).toBe(`phone:${sid}:1`);

    // The audio is speech: the offline STT hears words of what the twin said (telephone band,
    // flite voice, pocketsphinx: a few words, not all).
    const expected = new Set(normaliseWords(twin!.text).filter((w) => w.length > 2));
    const hits = [...heard].filter((w) => expected.has(w));
    expect(hits.length, `twin said "${twin!.text}", STT heard "${[...heard].join(' ')}"`).toBeGreaterThanOrEqual(2);

    stream.stop();
    stream.close();
    await stream.until(() => stream.closed !== undefined, 5000, 'close');
    await new Promise((r) => setTimeout(r, 200));
    const [ended] = await new CallLog(h.app.store.kv).list('console:ada');
    expect(ended!.endedAtMs).toBeGreaterThan(ended!.startedAtMs);
    expect(ended!.durationSec).toBeGreaterThan(3);
  }, 180_000);

  it('barge-in: the caller speaking over the reply gets a clear and the reply stops', async () => {
    const { stream } = await placeCall(h, 11, '+14155550302', 'bea');
    await stream.until(() => stream.received.length > 0, 20_000, 'greeting audio');
    await playedOut(stream, 1, 30_000);
    const marksBefore = stream.events.filter((e) => e.event === 'mark').length;
    await stream.play(framesOf(makeSpeechWav('Tell me a long story about the sea and the ships, please.', { voice: 'en-us+m1', speedWpm: 140 })), 1);
    await stream.until(() => stream.events.filter((e) => e.event === 'mark').length > marksBefore, 60_000, 'reply audio and its mark');
    // The reply is playing (its mark is not back); the caller talks over it.
    expect(stream.marks.length).toBeLessThan(stream.events.filter((e) => e.event === 'mark').length);
    const interruptAt = performance.now();
    await stream.play(framesOf(makeSpeechWav('Wait, stop, I have a question.', { voice: 'en-us+m1', speedWpm: 140 }), 0, 0.2), 1);
    await stream.until(() => stream.clears.length > 0, 10_000, 'clear');
    const clearAt = stream.clears[0]!;
    // Sent soon after the interruption began: the speech starts about 0.1 s into the clip, the
    // detector needs 100 ms to start and 200 ms more for a barge-in; the rest is slack for a busy machine.
    expect(clearAt - interruptAt).toBeLessThan(3000);
    const [call] = await new CallLog(h.app.store.kv).list('console:bea');
    expect(call!.transcript.some((t) => t.text === '(interrupted)')).toBe(true);
    // The interruption is a turn of its own, answered after the clear.
    await stream.play(silenceFrames(1), 1);
    await stream.until(() => stream.received.some((m) => m.atMs > clearAt), 60_000, 'answer to the interruption');
    stream.close();
  }, 180_000);

  it('ends the call at MAX_CALL_SEC with a goodbye, and logs why', async () => {
    const short = await createPhoneHarness({ publicUrl: PUBLIC, telephony: { maxCallSec: 6 } });
    try {
      const { stream, sid } = await placeCall(short, 12, '+14155550303', 'cy');
      const t0 = performance.now();
      await stream.play(silenceFrames(12), 1).catch(() => undefined);
      await stream.until(() => stream.closed !== undefined, 20_000, 'close');
      expect(stream.closed!.code).toBe(1000);
      expect(performance.now() - t0).toBeGreaterThan(5000);
      const [call] = await new CallLog(short.app.store.kv).list('console:cy');
      expect(call!.callSid).toBe(sid);
      expect(call!.endReason).toBe('max-call-length');
      expect(await new CallLog(short.app.store.kv).secondsToday('console:cy')).toBeGreaterThanOrEqual(6);
      expect((await short.chat('cy', '/calls'))[0]).toMatch(/ended: max call length/);
    } finally {
      await short.close();
    }
  }, 60_000);
});

describeIfSpeech('pipeline mode with a real speech clip', () => {
  let h: PhoneHarness;
  beforeAll(async () => {
    h = await createPhoneHarness({ publicUrl: PUBLIC, providers: scriptedOffline().providers });
  });
  afterAll(async () => h?.close());

  it('replays a recorded clip at real-time pace and gets a spoken reply', async () => {
    const clip = speechClip('openai-whisper/jfk.flac');
    const { stream } = await placeCall(h, 20, '+14155550401', 'dee');
    await stream.until(() => stream.received.length > 0, 20_000, 'greeting audio');
    await playedOut(stream, 1, 30_000);
    const before = stream.received.length;
    await stream.play(framesOf(readFileSync(clip.absPath), 0.2, 1), 1);
    await stream.until(() => stream.received.length > before, 90_000, 'reply audio');
    await playedOut(stream, 2, 90_000);
    const [call] = await new CallLog(h.app.store.kv).list('console:dee');
    // The clip was heard as at least one turn of words (pocketsphinx's 16 kHz model gets few of
    // JFK's words right on 8 kHz μ-law, so which words is not checked).
    const callerTurns = call!.transcript.filter((t) => t.role === 'caller');
    expect(callerTurns.length).toBeGreaterThanOrEqual(1);
    expect(callerTurns[0]!.text.length).toBeGreaterThan(0);
    expect(clip.durationSec).toBeGreaterThan(5);
    const heard = await heardWords(h, stream.audio(before));
    expect(call!.transcript.some((t) => t.role === 'twin' && t.text === REPLY)).toBe(true);
    const twin = REPLY;
    const expected = new Set(normaliseWords(twin));
    expect([...heard].filter((w) => expected.has(w) && w.length > 2).length, `twin said "${twin}", STT heard "${[...heard].join(' ')}"`).toBeGreaterThanOrEqual(2);
    stream.close();
  }, 180_000);
});

describe('pipeline mode with a cloned voice', () => {
  it('speaks in the person\'s voice, and logs the fallback when the synthesizer used its default voice', async () => {
    const scripted = scriptedOffline();
    const voices: Array<string | undefined> = [];
    const tts: Providers['tts'] = {
      name: 'chain',
      synthesize: async (request) => {
        voices.push(request.voice?.voiceId);
        // The clone's provider is down: the fallback speaks in its own default voice.
        const out = await scripted.providers.tts.synthesize({ text: request.text });
        return { ...out, provider: 'local', voiceMatched: false };
      },
    };
    const h = await createPhoneHarness({ publicUrl: PUBLIC, providers: { ...scripted.providers, tts } });
    try {
      await h.chat('eve', '/start');
      await h.app.store.profiles.put({
        userKey: 'console:eve',
        state: 'ready',
        consent: { phrase: 'p', codeWord: 'c', grantedAtMs: 1 },
        speechSec: 30,
        requiredSpeechSec: 20,
        voice: { provider: 'elevenlabs', voiceId: 'voice-eve', params: {}, approximate: false, label: 'ElevenLabs instant clone' },
        updatedAtMs: 1,
      });
      const { stream } = await placeCall(h, 30, '+14155550501', 'eve');
      await stream.until(() => stream.received.length > 0, 20_000, 'greeting audio');
      await stream.until(() => voices.length > 0, 5000, 'synthesis');
      expect(voices.every((v) => v === 'voice-eve')).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
      const [call] = await new CallLog(h.app.store.kv).list('console:eve');
      expect(call!.voice).toBe('ElevenLabs instant clone');
      expect(call!.fallback).toMatch(/local spoke in its default voice/);
      expect((await h.chat('eve', '/calls'))[0]).toMatch(/voice: ElevenLabs instant clone, fallback: local spoke in its default voice/);
      stream.close();
    } finally {
      await h.close();
    }
  }, 60_000);
});
