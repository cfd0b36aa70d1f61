/**
 * Hindi end to end through the composition root. With cloud keys, against the ElevenLabs and
 * Gemini fakes (test/fakes/, which speak the documented wire formats): a Hindi voice note is
 * transcribed by Scribe (`language_code: "hin"`), Gemini is asked to answer in Devanagari Hindi,
 * and ElevenLabs speaks the answer with a multilingual model and `language_code: "hi"` in the
 * person's cloned voice. On the offline stack, whose recogniser only knows English, a Hindi voice
 * note gets the honest answer instead of a garbled transcript. Real Hindi read speech from the
 * shared speech folder when present (skipped with a message otherwise); espeak-ng's Hindi voice
 * makes the audio of the tests that always run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InboundMessage, OutboundReply, ReplyTarget } from '../../src/core/types.js';
import { HINDI_VOICE_UNSUPPORTED } from '../../src/core/engine.js';
import { ElevenLabsFake, PREMADE_VOICE_IDS } from '../fakes/elevenlabs/server.js';
import { GeminiFake } from '../fakes/gemini/server.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { makeSpeechWav, toOggOpus } from '../helpers/audio.js';
import { describeIfSpeech, readManifest, readSpeech, speechAvailable } from '../helpers/speech.js';

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
  async send(_chatId: string, r: OutboundReply): Promise<void> {
    this.replies.push(r);
  }
  last(): OutboundReply {
    return this.replies[this.replies.length - 1]!;
  }
}

const HINDI_REPLY = 'बहुत अच्छा! आज आपने क्या किया? मुझे बताइए।';
const DEVANAGARI = /[\u0900-\u097F]/u;

let eleven: ElevenLabsFake;
let gemini: GeminiFake;
beforeAll(async () => {
  eleven = await ElevenLabsFake.start({ apiKey: 'el-test-key' });
  gemini = await GeminiFake.start({ apiKey: 'gm-test-key' });
  // Gemini answers in Hindi only when the system instruction asks for Devanagari Hindi.
  gemini.respond = (req) => (JSON.stringify(req).includes('Answer in Hindi, written in Devanagari') ? HINDI_REPLY : undefined);
});
afterAll(async () => {
  await eleven?.close();
  await gemini?.close();
});

function cloudApp(extra: Record<string, string> = {}): Promise<TestApp> {
  return createTestApp({
    env: {
      ELEVENLABS_API_KEY: 'el-test-key',
      ELEVENLABS_BASE_URL: eleven.baseUrl,
      ELEVENLABS_DEFAULT_VOICE_ID: PREMADE_VOICE_IDS[0]!,
      GEMINI_API_KEY: 'gm-test-key',
      GEMINI_BASE_URL: gemini.baseUrl,
      STT_PROVIDERS: 'elevenlabs,local',
      CHAT_PROVIDERS: 'gemini,local',
      TTS_PROVIDERS: 'elevenlabs,local',
      CLONE_PROVIDERS: 'elevenlabs,local',
      MEMORY_EVERY: '0',
      INSIGHT_EVERY: '0',
      ...extra,
    },
  });
}

let n = 0;
const base = (userId: string): Omit<InboundMessage, 'id'> => ({ channel: 'console', chatId: userId, userId, displayName: 'Anu', receivedAtMs: Date.now() });
const voiceNote = (userId: string, bytes: Buffer): InboundMessage => ({ ...base(userId), id: `${userId}:${++n}`, audio: { bytes, isVoiceNote: true, declaredSizeBytes: bytes.length } });
const text = (userId: string, body: string): InboundMessage => ({ ...base(userId), id: `${userId}:${++n}`, text: body });

/** The last TTS request's JSON body. */
const lastTts = (): Record<string, unknown> => eleven.on('tts').at(-1)!.json!;

describe('Hindi with cloud providers (fakes), espeak-ng Hindi speech', () => {
  it('detects Hindi from Scribe, has Gemini answer in Devanagari, and has ElevenLabs speak it as Hindi', async () => {
    const app = await cloudApp();
    const out = new Recorder();
    try {
      eleven.sttText = 'नमस्ते, आज मेरा दिन बहुत अच्छा था';
      eleven.sttLanguageCode = 'hin';
      await app.engine.handle(voiceNote('h1', toOggOpus(makeSpeechWav('नमस्ते, आज मेरा दिन बहुत अच्छा था', { voice: 'hi' }))), out);
      const reply = out.last();
      expect(reply.kind).toBe('answer');
      expect(reply.text).toContain(HINDI_REPLY);
      expect(reply.voice!.durationSec).toBeGreaterThan(0.5);
      const instruction = JSON.stringify(gemini.on('generate').at(-1)!.json);
      expect(instruction).toContain('Answer in Hindi, written in Devanagari, keeping your persona');
      const tts = lastTts();
      expect(DEVANAGARI.test(String(tts.text))).toBe(true);
      expect(tts).toMatchObject({ model_id: 'eleven_flash_v2_5', language_code: 'hi' });
      expect((await app.store.users.get('console:h1'))!.lastLanguage).toBe('hi');
    } finally {
      await app.close();
    }
  });

  it('switches an English-only ElevenLabs model to a multilingual one for Hindi, and keeps it for English', async () => {
    const app = await cloudApp({ ELEVENLABS_TTS_MODEL: 'eleven_turbo_v2' });
    const out = new Recorder();
    try {
      await app.engine.handle(text('h2', 'नमस्ते, आप कैसे हैं?'), out);
      expect(out.last().kind).toBe('answer');
      expect(lastTts()).toMatchObject({ model_id: 'eleven_flash_v2_5', language_code: 'hi' });
      await app.engine.handle(text('h2', 'Let us talk in English now, please.'), out);
      expect(lastTts().model_id).toBe('eleven_turbo_v2');
      expect(lastTts().language_code).toBeUndefined();
    } finally {
      await app.close();
    }
  });
});

describe('Hindi on the offline stack', () => {
  it('answers a Hindi voice note honestly instead of guessing English words, and still answers typed Hindi', async () => {
    const app = await createTestApp({ env: { MEMORY_EVERY: '0', INSIGHT_EVERY: '0' } });
    const out = new Recorder();
    try {
      await app.engine.handle(text('o1', 'नमस्ते, मैं अनु हूँ। आज मेरा दिन अच्छा था।'), out);
      const typed = out.last();
      expect(typed.kind).toBe('answer');
      expect(typed.voice!.durationSec).toBeGreaterThan(0.5);
      await app.engine.handle(voiceNote('o1', toOggOpus(makeSpeechWav('नमस्ते, आज मेरा दिन बहुत अच्छा था', { voice: 'hi' }))), out);
      expect(out.last()).toMatchObject({ kind: 'error', text: HINDI_VOICE_UNSUPPORTED });
      expect(await app.store.history.recent('console:o1', 10)).toHaveLength(2);
    } finally {
      await app.close();
    }
  });
});

describeIfSpeech('Hindi read speech (IndicWav2Vec clips)', () => {
  const clips = speechAvailable() ? readManifest().filter((c) => c.path.startsWith('indicwav2vec-hindi/') && c.transcript) : [];

  it('enrolls from Hindi clips against the fakes, then answers a Hindi voice note in Hindi in the cloned voice', async () => {
    expect(clips.length).toBeGreaterThanOrEqual(2);
    const app = await cloudApp({ ENROLL_MIN_SPEECH_SEC: '6' });
    const out = new Recorder();
    app.engine.registerSender(out);
    const user = 'h3';
    try {
      await app.engine.handle({ ...base(user), id: `${user}:enroll`, command: { name: 'enroll', args: '' } }, out);
      const phrase = (await app.store.profiles.get(`console:${user}`))!.consent.phrase;
      // Scribe hears the consent phrase read aloud (the fake answers with the text it is given).
      eleven.sttText = phrase;
      eleven.sttLanguageCode = 'eng';
      await app.engine.handle(voiceNote(user, readSpeech(clips[0]!.path)), out);
      expect((await app.store.profiles.get(`console:${user}`))!.state).toBe('collecting');
      // The folder holds a few short clips (about 4 s each): they are sent in turn until 6 s of speech.
      for (let i = 0; i < clips.length * 3; i++) {
        if ((await app.store.profiles.get(`console:${user}`))!.state !== 'collecting') break;
        await app.engine.handle(voiceNote(user, readSpeech(clips[i % clips.length]!.path)), out);
      }
      await app.engine.whenIdle();
      const profile = (await app.store.profiles.get(`console:${user}`))!;
      expect(profile.state).toBe('ready');
      expect(profile.voice?.provider).toBe('elevenlabs');

      const turn = clips.at(-1)!;
      eleven.sttText = turn.transcript;
      eleven.sttLanguageCode = 'hin';
      await app.engine.handle(voiceNote(user, readSpeech(turn.path)), out);
      const reply = out.last();
      expect(reply.kind).toBe('answer');
      expect(reply.text).toContain(`You said: "${turn.transcript}"`);
      expect(reply.text).toContain(HINDI_REPLY);
      const tts = eleven.on('tts').at(-1)!;
      expect(tts.path).toContain(profile.voice!.voiceId);
      expect(tts.json).toMatchObject({ model_id: 'eleven_flash_v2_5', language_code: 'hi' });
    } finally {
      await app.close();
    }
  });

  it('offline, answers every real Hindi clip with the honest message once the person writes Hindi', async () => {
    const app = await createTestApp({ env: { MEMORY_EVERY: '0', INSIGHT_EVERY: '0' } });
    const out = new Recorder();
    try {
      await app.engine.handle({ ...base('o2'), id: 'o2:lang', command: { name: 'language', args: 'hi' } }, out);
      expect(out.last().text).toContain('Voice notes in Hindi cannot be understood on this server yet');
      for (const clip of clips) {
        await app.engine.handle(voiceNote('o2', readSpeech(clip.path)), out);
        expect(out.last(), clip.path).toMatchObject({ kind: 'error', text: HINDI_VOICE_UNSUPPORTED });
      }
      expect(await app.store.history.recent('console:o2', 10)).toEqual([]);
    } finally {
      await app.close();
    }
  });
});
