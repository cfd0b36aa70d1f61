import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStore } from '../../src/core/store/keyv-store.js';
import type { Store } from '../../src/core/store/types.js';
import type { SpeechSynthesizer } from '../../src/core/providers.js';
import { getOggOpusInfo } from '../../src/core/audio/index.js';
import { VoiceRenderer, voiceEncoderRate } from '../../src/core/voice.js';
import { ffprobeDurationSec, makeSpeechWav, toPcm, toWav } from '../helpers/audio.js';

describe('voiceEncoderRate', () => {
  it('picks the lowest Opus rate at or above the source rate, up to the channel rate', () => {
    expect(voiceEncoderRate(16000, 48000)).toBe(16000);
    expect(voiceEncoderRate(8000, 48000)).toBe(16000);
    expect(voiceEncoderRate(22050, 48000)).toBe(24000);
    expect(voiceEncoderRate(24000, 48000)).toBe(24000);
    expect(voiceEncoderRate(44100, 48000)).toBe(48000);
    expect(voiceEncoderRate(22050, 16000)).toBe(16000);
    expect(voiceEncoderRate(44100, 24000)).toBe(24000);
  });

  it('keeps the channel rate on fixed-rate channels', () => {
    expect(voiceEncoderRate(16000, 48000, true)).toBe(48000);
    expect(voiceEncoderRate(22050, 16000, true)).toBe(16000);
  });
});

describe('VoiceRenderer encodes at the speech’s own rate', () => {
  let store: Store;
  let dataDir: string;
  const speech = makeSpeechWav('This is a short reply spoken by the twin.');
  /** A synthesizer answering 16-bit mono WAV at `rate` Hz, a different text each call (no cache hits). */
  const synthAt = (rate: number): SpeechSynthesizer => ({
    name: `wav-${rate}`,
    synthesize: async () => ({ bytes: toWav(speech, rate), characters: 10 }),
  });

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'vt-voice-rate-'));
    store = await createStore({ backend: 'sqlite', dataDir, dataKey: randomBytes(32) });
  });
  afterAll(async () => {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const cases = [
    { rate: 16000, channel: 'telegram', expected: 16000 },
    { rate: 22050, channel: 'telegram', expected: 24000 },
    { rate: 16000, channel: 'discord', expected: 48000 },
    { rate: 22050, channel: 'whatsapp', expected: 16000 },
  ] as const;
  for (const { rate, channel, expected } of cases) {
    it(`${rate} Hz speech on ${channel} → OpusHead ${expected} Hz, same duration`, async () => {
      const renderer = new VoiceRenderer({ store, tts: synthAt(rate), logger: pino({ level: 'silent' }) });
      const { voice } = await renderer.render(`telegram:${rate}${channel}`, `Reply for ${channel} at ${rate}.`, undefined, channel);
      expect(voice.sampleRateHz).toBe(expected);
      expect(getOggOpusInfo(voice.oggOpus).inputSampleRateHz).toBe(expected);
      const sourceSec = toPcm(speech).samples.length / 16000;
      // ffmpeg decodes the note on its own: the speech plays at its own speed whatever the encoder rate.
      expect(ffprobeDurationSec(voice.oggOpus)).toBeGreaterThan(sourceSec - 0.1);
      expect(ffprobeDurationSec(voice.oggOpus)).toBeLessThan(sourceSec + 0.3);
    });
  }
});
