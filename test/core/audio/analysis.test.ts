import { describe, expect, it } from 'vitest';
import { analyseSample, assessEnrollmentSample, speechLevelDb } from '../../../src/core/audio/analysis.js';
import { concatPcm, normaliseLoudness } from '../../../src/core/audio/pcm.js';
import type { UserInputErrorCode } from '../../../src/core/errors.js';
import type { PcmAudio } from '../../../src/core/providers.js';
import {
  filterWav,
  makeBeeps,
  makeMelody,
  makeNoise,
  makeSilence,
  makeSpeechWav,
  makeTone,
  mixWav,
  SAMPLE_SENTENCES,
  toPcm,
} from '../../helpers/audio.js';

const speech = makeSpeechWav(SAMPLE_SENTENCES);
const speechPcm = toPcm(speech);

function verdict(pcm: PcmAudio, minSpeechSec?: number): UserInputErrorCode | 'OK' {
  try {
    assessEnrollmentSample(analyseSample(pcm), { minSpeechSec });
    return 'OK';
  } catch (err) {
    return (err as { code: UserInputErrorCode }).code;
  }
}

describe('analyseSample', () => {
  it('measures espeak-ng speech: speech seconds, voicing, pitch, syllable rate', () => {
    const a = analyseSample(speechPcm);
    expect(a.durationSec).toBeCloseTo(speechPcm.samples.length / 16000, 6);
    expect(a.speechSec).toBeGreaterThan(0.75 * a.durationSec);
    expect(a.speechSec).toBeLessThanOrEqual(a.durationSec);
    expect(a.voicedRatio).toBeGreaterThan(0.5);
    // espeak-ng's default en-us voice speaks at about 100 Hz.
    expect(a.medianF0Hz).toBeGreaterThan(85);
    expect(a.medianF0Hz).toBeLessThan(125);
    expect(a.syllableRatePerSec).toBeGreaterThan(3);
    expect(a.syllableRatePerSec).toBeLessThan(7);
    expect(a.pitchStability).toBeLessThan(0.5);
    expect(a.clippingRatio).toBe(0);
    expect(a.snrDb).toBeGreaterThan(30);
  });

  it('follows the pitch of the voice: a higher espeak-ng voice measures higher', () => {
    const low = analyseSample(toPcm(makeSpeechWav(SAMPLE_SENTENCES, { pitch: 20 })));
    const high = analyseSample(toPcm(makeSpeechWav(SAMPLE_SENTENCES, { pitch: 80 })));
    expect(high.medianF0Hz! / low.medianF0Hz!).toBeGreaterThan(1.3);
  });

  it('follows the speaking rate: faster speech has more syllables per second', () => {
    const slow = analyseSample(toPcm(makeSpeechWav(SAMPLE_SENTENCES, { speedWpm: 110 })));
    const fast = analyseSample(toPcm(makeSpeechWav(SAMPLE_SENTENCES, { speedWpm: 260 })));
    expect(fast.syllableRatePerSec / slow.syllableRatePerSec).toBeGreaterThan(1.4);
  });

  it('measures a pure tone as steady and voiced at its frequency, with no speech rhythm', () => {
    const a = analyseSample(toPcm(makeTone(4, 220)));
    expect(a.medianF0Hz).toBeGreaterThan(218);
    expect(a.medianF0Hz).toBeLessThan(222);
    expect(a.voicedRatio).toBeGreaterThan(0.95);
    expect(a.pitchStability).toBeGreaterThan(0.95);
    expect(a.syllableRatePerSec).toBe(0);
  });

  it('measures noise as unvoiced, with a high floor and a low SNR', () => {
    const a = analyseSample(toPcm(makeNoise(4)));
    expect(a.voicedRatio).toBeLessThan(0.05);
    expect(a.noiseFloorDb).toBeGreaterThan(-30);
    expect(a.snrDb).toBeLessThan(6);
  });

  it('measures clipping and level', () => {
    const clipped = analyseSample(toPcm(filterWav(speech, 'volume=25dB')));
    expect(clipped.clippingRatio).toBeGreaterThan(0.05);
    expect(clipped.peakDb).toBeCloseTo(0, 0);
    const quiet = analyseSample(toPcm(filterWav(speech, 'volume=-30dB')));
    expect(quiet.loudnessDb).toBeCloseTo(analyseSample(speechPcm).loudnessDb - 30, 0);
  });

  it('gives zeros, not NaN, for silence and for empty input', () => {
    for (const pcm of [toPcm(makeSilence(2)), { samples: new Int16Array(0), sampleRateHz: 16000 }]) {
      const a = analyseSample(pcm);
      for (const value of Object.values(a)) if (value !== undefined) expect(Number.isFinite(value)).toBe(true);
      expect(a.speechSec).toBe(0);
      expect(a.medianF0Hz).toBeUndefined();
    }
  });
});

describe('assessEnrollmentSample', () => {
  it('accepts clear speech, including speech over mild background noise', () => {
    expect(verdict(speechPcm)).toBe('OK');
    expect(verdict(toPcm(makeSpeechWav(SAMPLE_SENTENCES, { voice: 'en-us+f3' })))).toBe('OK');
    expect(verdict(toPcm(mixWav(speech, makeNoise(10, { color: 'pink', amplitude: 0.02 }))))).toBe('OK');
  });

  it.each([
    ['silence', 'NO_SPEECH', () => makeSilence(4)],
    ['a faint hiss', 'NO_SPEECH', () => makeNoise(4, { amplitude: 0.002 })],
    ['white noise', 'TOO_NOISY', () => makeNoise(4)],
    ['pink noise', 'TOO_NOISY', () => makeNoise(4, { color: 'pink' })],
    ['speech drowned in noise', 'TOO_NOISY', () => mixWav(speech, makeNoise(10, { amplitude: 0.2 }))],
    ['speech with noise 8 dB below it', 'TOO_NOISY', () => mixWav(speech, makeNoise(10, { amplitude: 0.1 }))],
    ['a pure tone', 'NOT_SPEECH', () => makeTone(4, 220)],
    ['a beeping tone', 'NOT_SPEECH', () => makeBeeps(4, 440, 4)],
    ['a melody of sine notes', 'NOT_SPEECH', () => makeMelody(4)],
    ['speech over loud music', 'NOT_SPEECH', () => mixWav(speech, makeMelody(10), -3)],
    ['a 0.4 s clip', 'AUDIO_TOO_SHORT', () => filterWav(speech, 'atrim=0:0.4')],
    ['heavily clipped speech', 'CLIPPED', () => filterWav(speech, 'volume=25dB')],
    ['whispered-level speech', 'TOO_QUIET', () => filterWav(speech, 'volume=-35dB')],
  ] as const)('rejects %s with %s', (_name, code, make) => {
    expect(verdict(toPcm(make()))).toBe(code);
  });

  it('uses minSpeechSec and tells the user what to do', () => {
    expect(verdict(speechPcm, 30)).toBe('AUDIO_TOO_SHORT');
    expect(() => assessEnrollmentSample(analyseSample(toPcm(makeNoise(3))))).toThrow(
      expect.objectContaining({ code: 'TOO_NOISY', userMessage: expect.stringMatching(/Record again somewhere quieter/) }),
    );
  });
});

describe('normaliseLoudness', () => {
  it('brings quiet speech to the target level', () => {
    const quiet = toPcm(filterWav(speech, 'volume=-25dB'));
    const out = normaliseLoudness(quiet, -20);
    expect(speechLevelDb(out)).toBeGreaterThan(-21);
    expect(speechLevelDb(out)).toBeLessThan(-19);
    expect(out.samples.length).toBe(quiet.samples.length);
  });

  it('limits peaks instead of clipping when the gain is large', () => {
    // Quiet speech with one loud click: plain gain would clip the click.
    const quiet = toPcm(filterWav(speech, 'volume=-30dB'));
    quiet.samples[20_000] = 30_000;
    quiet.samples[20_001] = -30_000;
    const out = normaliseLoudness(quiet, -20);
    let peak = 0;
    for (const s of out.samples) peak = Math.max(peak, Math.abs(s));
    expect(peak).toBeLessThanOrEqual(Math.round(32767 * 10 ** (-1 / 20)));
    // A plain gain capped by the click would have stayed near −50 dBFS.
    expect(speechLevelDb(out)).toBeGreaterThan(-21);
    expect(analyseSample(out).clippingRatio).toBe(0);
  });

  it('leaves silence alone', () => {
    const silence = toPcm(makeSilence(1));
    expect(Array.from(normaliseLoudness(silence).samples).every((s) => s === 0)).toBe(true);
  });
});

describe('concatPcm', () => {
  it('joins parts with silent gaps between them only', () => {
    const a = { samples: new Int16Array(1600).fill(1000), sampleRateHz: 16000 };
    const b = { samples: new Int16Array(800).fill(-1000), sampleRateHz: 16000 };
    const joined = concatPcm([a, b, a], 0.1);
    expect(joined.samples.length).toBe(1600 + 1600 + 800 + 1600 + 1600);
    expect(joined.samples[1599]).toBe(1000);
    expect(joined.samples[1600]).toBe(0);
    expect(joined.samples[3199]).toBe(0);
    expect(joined.samples[3200]).toBe(-1000);
    expect(joined.samples.at(-1)).toBe(1000);
    expect(concatPcm([a]).samples).toEqual(a.samples);
  });

  it('refuses an empty list and mixed sample rates', () => {
    expect(() => concatPcm([])).toThrow(RangeError);
    expect(() => concatPcm([{ samples: new Int16Array(1), sampleRateHz: 16000 }, { samples: new Int16Array(1), sampleRateHz: 22050 }])).toThrow(/one sample rate/);
  });
});
