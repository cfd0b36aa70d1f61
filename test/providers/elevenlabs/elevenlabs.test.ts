import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { ProviderError, UserInputError } from '../../../src/core/errors.js';
import { createLogger } from '../../../src/core/log.js';
import type { CloneSample } from '../../../src/core/providers.js';
import { probeAudio } from '../../../src/core/audio/probe.js';
import { ElevenLabsSpeechToText, ElevenLabsSynthesizer, ElevenLabsVoiceCloner } from '../../../src/providers/elevenlabs/index.js';
import { ElevenLabsFake, PREMADE_VOICE_IDS } from '../../fakes/elevenlabs/server.js';
import { speechPcm16k, wavSamples } from '../../fakes/elevenlabs/audio.js';
import { rejection } from '../../helpers/rejection.js';

const API_KEY = 'xi-test-5f1e0c9a7b3d4e2f8a6b';

function captureLogs(): { logger: ReturnType<typeof createLogger>; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { logger: createLogger({ level: 'trace', destination }), text: () => chunks.join('') };
}

let fake: ElevenLabsFake;
let samples: CloneSample[];

beforeAll(async () => {
  fake = await ElevenLabsFake.start({ apiKey: API_KEY });
  const texts = [
    'The quick brown fox jumps over the lazy dog near the river bank.',
    'She sells sea shells by the sea shore on a sunny afternoon.',
    'A journey of a thousand miles begins with a single step forward.',
  ];
  samples = await Promise.all(
    texts.map(async (text, i) => {
      const pcm = await speechPcm16k(text);
      return { id: `s${i}`, pcm, speechSec: pcm.samples.length / pcm.sampleRateHz };
    }),
  );
});

afterAll(async () => {
  await fake.close();
});

describe('ElevenLabsVoiceCloner (POST /v1/voices/add)', () => {
  it('uploads every sample as a WAV `files` part with name, labels and noise removal off', async () => {
    const cloner = new ElevenLabsVoiceCloner({ apiKey: API_KEY, baseUrl: fake.baseUrl, minSpeechSec: 5 });
    const voice = await cloner.clone({ userId: 'telegram:42', displayName: 'Ada', samples });

    const [req] = fake.on('clone');
    expect(req?.headers['xi-api-key']).toBe(API_KEY);
    expect(req?.fields?.name).toEqual(['VoiceTwin Ada']);
    expect(req?.fields?.remove_background_noise).toEqual(['false']);
    expect(JSON.parse(req?.fields?.labels?.[0] ?? '{}')).toMatchObject({ owner: 'telegram:42' });
    const files = (req?.files ?? []).filter((f) => f.field === 'files');
    expect(files).toHaveLength(3);
    files.forEach((file, i) => {
      expect(file.bytes.subarray(0, 4).toString('latin1')).toBe('RIFF');
      const decoded = wavSamples(file.bytes);
      expect(decoded.sampleRateHz).toBe(16_000);
      expect(decoded.samples).toEqual(samples[i]?.pcm.samples);
    });

    expect(voice.provider).toBe('elevenlabs');
    expect(fake.voices.has(voice.voiceId)).toBe(true);
    expect(voice.approximate).toBe(false);

    await cloner.deleteVoice(voice);
    expect(fake.voices.has(voice.voiceId)).toBe(false);
    const del = fake.on('delete').at(-1);
    expect(del?.path).toBe(`/v1/voices/${voice.voiceId}`);
    // Deleting again: ElevenLabs says voice_not_found, which counts as deleted.
    await cloner.deleteVoice(voice);
    expect(fake.on('delete').at(-1)?.status).toBe(400);
  });

  it('needs 60 s of speech by default and refuses less without calling the API', async () => {
    const cloner = new ElevenLabsVoiceCloner({ apiKey: API_KEY, baseUrl: fake.baseUrl });
    expect(cloner.minSpeechSec).toBe(60);
    const before = fake.on('clone').length;
    const err = await rejection(cloner.clone({ userId: 'telegram:1', samples }));
    expect(err).toBeInstanceOf(UserInputError);
    expect((err as UserInputError).code).toBe('AUDIO_TOO_SHORT');
    expect(fake.on('clone').length).toBe(before);
  });
});

describe('ElevenLabsSynthesizer (POST /v1/text-to-speech/{voice_id})', () => {
  it('asks for opus_48000_64 with the configured model and gets Ogg/Opus', async () => {
    const tts = new ElevenLabsSynthesizer({ apiKey: API_KEY, baseUrl: fake.baseUrl });
    const voice = { provider: 'elevenlabs', voiceId: PREMADE_VOICE_IDS[0] as string, params: {}, approximate: false, label: 'test' };
    const out = await tts.synthesize({ text: 'Hello from your twin.', voice, languageCode: 'en-GB' });

    const req = fake.on('tts').at(-1);
    expect(req?.path).toBe(`/v1/text-to-speech/${voice.voiceId}`);
    expect(req?.query.get('output_format')).toBe('opus_48000_64');
    expect(req?.json).toMatchObject({ text: 'Hello from your twin.', model_id: 'eleven_flash_v2_5', language_code: 'en' });
    expect(out.container).toBe('ogg');
    expect(out.bytes.subarray(0, 4).toString('latin1')).toBe('OggS');
    expect(out.characters).toBe('Hello from your twin.'.length);
    const probe = await probeAudio(out.bytes);
    expect(probe.codec).toBe('opus');
    expect(probe.durationSec).toBeGreaterThan(0.5);
  });

  it('reports an MP3 answer as such (to be transcoded) and logs it', async () => {
    const logs = captureLogs();
    fake.ttsAudio = 'mp3';
    try {
      const tts = new ElevenLabsSynthesizer({ apiKey: API_KEY, baseUrl: fake.baseUrl, model: 'eleven_multilingual_v2', defaultVoiceId: PREMADE_VOICE_IDS[1], logger: logs.logger });
      const out = await tts.synthesize({ text: 'Namaste, kaise ho?', languageCode: 'hi' });
      expect(out.container).toBe('mp3');
      expect((await probeAudio(out.bytes)).codec).toBe('mp3');
      const req = fake.on('tts').at(-1);
      expect(req?.json).toMatchObject({ model_id: 'eleven_multilingual_v2' });
      expect(req?.json).not.toHaveProperty('language_code'); // not supported by multilingual v2
      expect(logs.text()).toContain('another container');
    } finally {
      fake.ttsAudio = 'requested';
    }
  });

  it('treats text over the model limit as the user’s error and empty audio as a provider failure', async () => {
    const tts = new ElevenLabsSynthesizer({ apiKey: API_KEY, baseUrl: fake.baseUrl, model: 'eleven_v3', defaultVoiceId: PREMADE_VOICE_IDS[0] });
    const tooLong = await rejection(tts.synthesize({ text: 'word '.repeat(1200) }));
    expect(tooLong).toBeInstanceOf(UserInputError);
    expect((tooLong as UserInputError).code).toBe('TEXT_TOO_LONG');

    fake.ttsAudio = 'empty';
    try {
      const empty = await rejection(tts.synthesize({ text: 'Hi.' }));
      expect(empty).toBeInstanceOf(ProviderError);
      expect((empty as ProviderError).retryable).toBe(true);
    } finally {
      fake.ttsAudio = 'requested';
    }
    const unknownVoice = await rejection(tts.synthesize({ text: 'Hi.', voice: { provider: 'elevenlabs', voiceId: 'nope', params: {}, approximate: false, label: '' } }));
    expect(unknownVoice).toMatchObject({ retryable: false, options: { status: 400 } });
  });
});

describe('ElevenLabsSpeechToText (POST /v1/speech-to-text)', () => {
  it('sends 16 kHz audio as raw pcm_s16le_16 with scribe_v2 and parses the transcript', async () => {
    fake.sttText = 'the quick brown fox jumps over the lazy dog';
    const stt = new ElevenLabsSpeechToText({ apiKey: API_KEY, baseUrl: fake.baseUrl });
    const pcm = samples[0]?.pcm;
    if (!pcm) throw new Error('no sample');
    const transcript = await stt.transcribe(pcm, { languageHint: 'en-US' });

    const req = fake.on('stt').at(-1);
    expect(req?.fields?.model_id).toEqual(['scribe_v2']);
    expect(req?.fields?.file_format).toEqual(['pcm_s16le_16']);
    expect(req?.fields?.language_code).toEqual(['en']);
    expect(req?.files?.[0]?.bytes.length).toBe(pcm.samples.length * 2);
    expect(transcript.text).toBe('the quick brown fox jumps over the lazy dog');
    expect(transcript.languageCode).toBe('en');
    expect(transcript.durationSec).toBeCloseTo(pcm.samples.length / 16_000, 3);
    expect(stt.reliable).toBe(true);
  });

  it('sends other sample rates as a WAV file', async () => {
    const stt = new ElevenLabsSpeechToText({ apiKey: API_KEY, baseUrl: fake.baseUrl });
    const pcm = { samples: new Int16Array(24_000).map((_, i) => Math.round(8000 * Math.sin(i / 10))), sampleRateHz: 24_000 };
    const transcript = await stt.transcribe(pcm);
    const req = fake.on('stt').at(-1);
    expect(req?.fields?.file_format).toEqual(['other']);
    expect(req?.files?.[0]?.bytes.subarray(0, 4).toString('latin1')).toBe('RIFF');
    expect(transcript.durationSec).toBeCloseTo(1, 3);
  });
});

describe('ElevenLabs error classification', () => {
  const voice = { provider: 'elevenlabs', voiceId: PREMADE_VOICE_IDS[0] as string, params: {}, approximate: false, label: '' };

  it('maps 401, 429 with Retry-After, 5xx and timeouts, without SDK-level retries', async () => {
    const bad = new ElevenLabsSynthesizer({ apiKey: 'wrong-key-123456', baseUrl: fake.baseUrl });
    const auth = await rejection(bad.synthesize({ text: 'Hi.', voice }));
    expect(auth).toBeInstanceOf(ProviderError);
    expect(auth).toMatchObject({ retryable: false, options: { status: 401 } });
    expect((auth as Error).message).toContain('invalid_api_key');
    expect((auth as Error).message).not.toContain('wrong-key-123456');

    const tts = new ElevenLabsSynthesizer({ apiKey: API_KEY, baseUrl: fake.baseUrl });
    const before = fake.on('tts').length;
    fake.inject('tts', { status: 429, detailStatus: 'too_many_concurrent_requests', retryAfterSec: 2 });
    const limited = await rejection(tts.synthesize({ text: 'Hi.', voice }));
    expect(limited).toMatchObject({ retryable: true, options: { status: 429, retryAfterSec: 2 } });
    expect(fake.on('tts').length).toBe(before + 1); // the SDK did not retry on its own

    fake.inject('tts', { status: 503 });
    expect(await rejection(tts.synthesize({ text: 'Hi.', voice }))).toMatchObject({ retryable: true, options: { status: 503 } });

    fake.inject('tts', { status: 401, detailStatus: 'quota_exceeded' });
    const quota = await rejection(tts.synthesize({ text: 'Hi.', voice }));
    expect(quota).toMatchObject({ retryable: false, options: { status: 401 } });
    expect((quota as Error).message).toContain('quota_exceeded');

    const slow = new ElevenLabsSynthesizer({ apiKey: API_KEY, baseUrl: fake.baseUrl, timeoutSec: 0.2 });
    fake.inject('tts', { status: 500, delayMs: 1000 });
    expect(await rejection(slow.synthesize({ text: 'Hi.', voice }))).toMatchObject({ retryable: true });
  });
});
