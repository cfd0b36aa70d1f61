/**
 * Offline voice calibration. The flite preview voice is fitted per speaker at clone time (see
 * cloner.ts, {@link fitFliteVoice}); this module holds the starting points of that fit and the
 * espeak-ng tables used for the espeak-ng fallback settings every preview voice also carries.
 *
 * How espeak-ng's `-p` (pitch, 0–99) and `-s` (speed, words per minute) translate into what a
 * listener measures, so the offline preview voice can be matched to a speaker.
 *
 * Calibration method (reproduce with `npx tsx test/providers/local/calibrate-espeak.ts`):
 * espeak-ng 1.51 speaks one fixed 44-word English text (three sentences); the WAV (22.05 kHz) is
 * resampled to 16 kHz mono with ffmpeg and measured with `analyseSample` from src/core/audio, the
 * same analysis the cloner applies to enrollment samples:
 * - pitch tables: median F0 of voiced speech frames (Hz) at `-p` 0, 10, …, 90, 99, default speed;
 * - rate tables: syllable nuclei per second of speech at `-s` 80…450 wpm, `-p 50`.
 * Re-run it after an espeak-ng upgrade or a change to the analysis and paste the output here.
 *
 * Measured 2026-11 (espeak-ng 1.51):
 *
 * | -p | en-us+m3 F0 Hz | en-us+f3 F0 Hz |     | -s wpm | m3 syll/s | f3 syll/s |
 * |----|----------------|----------------|-----|--------|-----------|-----------|
 * |  0 |  73.5          | 145.2          |     |   80   | 2.57      | 2.59      |
 * | 10 |  78.0          | 153.8          |     |  100   | 3.03      | 2.98      |
 * | 20 |  82.7          | 164.3          |     |  120   | 3.53      | 3.32      |
 * | 30 |  88.2          | 177.0          |     |  140   | 4.06      | 3.91      |
 * | 40 |  95.7          | 189.7          |     |  160   | 4.40      | 4.45      |
 * | 50 | 104.9          | 206.9          |     |  175   | 4.67      | 4.96      |
 * | 60 | 115.1          | 224.3          |     |  200   | 5.43      | 5.63      |
 * | 70 | 126.6          | 243.3          |     |  225   | 5.71      | 5.98      |
 * | 80 | 140.1          | 265.9          |     |  250   | 5.98      | 6.49      |
 * | 90 | 156.4          | 294.5          |     |  300   | 6.92      | 7.05      |
 * | 99 | 172.4          | 327.5          |     |  350   | 7.70      | 8.06      |
 * |    |                |                |     |  400   | 8.33      | 8.19      |
 * |    |                |                |     |  450   | 8.29      | 8.63      |
 *
 * F0 rises roughly exponentially with `-p` (about 0.9% per step), so pitch is interpolated
 * linearly in log-frequency; the rate tables are interpolated linearly and made non-decreasing
 * first (espeak-ng saturates near 400 wpm).
 */

/** An espeak-ng voice variant the preview voice uses. */
export type EspeakVariant = 'en-us+m3' | 'en-us+f3';

/** `[pitch -p, median F0 Hz]` pairs per variant, measured as described in the module comment. */
export const PITCH_CALIBRATION: Record<EspeakVariant, ReadonlyArray<readonly [number, number]>> = {
  'en-us+m3': [[0, 73.5], [10, 78.0], [20, 82.7], [30, 88.2], [40, 95.7], [50, 104.9], [60, 115.1], [70, 126.6], [80, 140.1], [90, 156.4], [99, 172.4]],
  'en-us+f3': [[0, 145.2], [10, 153.8], [20, 164.3], [30, 177.0], [40, 189.7], [50, 206.9], [60, 224.3], [70, 243.3], [80, 265.9], [90, 294.5], [99, 327.5]],
};

/** `[speed -s wpm, syllables per second of speech]` pairs per variant, measured as described in the module comment. */
export const RATE_CALIBRATION: Record<EspeakVariant, ReadonlyArray<readonly [number, number]>> = {
  'en-us+m3': [[80, 2.57], [100, 3.03], [120, 3.53], [140, 4.06], [160, 4.4], [175, 4.67], [200, 5.43], [225, 5.71], [250, 5.98], [300, 6.92], [350, 7.7], [400, 8.33], [450, 8.29]],
  'en-us+f3': [[80, 2.59], [100, 2.98], [120, 3.32], [140, 3.91], [160, 4.45], [175, 4.96], [200, 5.63], [225, 5.98], [250, 6.49], [300, 7.05], [350, 8.06], [400, 8.19], [450, 8.63]],
};

/**
 * Speakers whose median F0 is below this get the male variant, the others the female one, Hz.
 * 165 Hz lies between the commonly quoted adult speaking-F0 ranges (male about 85–155 Hz, female
 * about 165–255 Hz) and where both variants' tables overlap, so either variant can reach it.
 * Pitch is not sex: a man declaiming loudly (the JFK inaugural clip measures about 234 Hz) gets
 * the higher variant, because matching the measured pitch is what this voice can do.
 */
export const VARIANT_SPLIT_F0_HZ = 165;

/** espeak-ng's `-p` range. */
export const PITCH_MIN = 0;
export const PITCH_MAX = 99;
/** espeak-ng's `-s` range, words per minute. */
export const SPEED_MIN_WPM = 80;
export const SPEED_MAX_WPM = 450;

/** The variant for a speaker with median F0 `f0Hz` (Hz). */
export function variantForF0(f0Hz: number): EspeakVariant {
  return f0Hz < VARIANT_SPLIT_F0_HZ ? 'en-us+m3' : 'en-us+f3';
}

/**
 * The `-p` value (integer 0–99) at which `variant` speaks with median F0 `f0Hz` (Hz), by inverse
 * interpolation of {@link PITCH_CALIBRATION} in log-frequency; clamped to the table's ends.
 */
export function pitchForF0(variant: EspeakVariant, f0Hz: number): number {
  const table = PITCH_CALIBRATION[variant].map(([p, hz]) => [Math.log(hz), p] as const);
  return clampRound(interpolate(table, Math.log(f0Hz)), PITCH_MIN, PITCH_MAX);
}

/** The median F0 (Hz) `variant` is expected to have at `-p pitch` (forward interpolation of the table). */
export function expectedF0Hz(variant: EspeakVariant, pitch: number): number {
  const table = PITCH_CALIBRATION[variant].map(([p, hz]) => [p, Math.log(hz)] as const);
  return Math.exp(interpolate(table, pitch));
}

/**
 * The `-s` value (integer words per minute, 80–450) at which `variant` speaks `syllablesPerSec`
 * syllables per second of speech, by inverse interpolation of {@link RATE_CALIBRATION}.
 */
export function speedForSyllableRate(variant: EspeakVariant, syllablesPerSec: number): number {
  let runningMax = -Infinity;
  const table: Array<readonly [number, number]> = [];
  for (const [wpm, rate] of RATE_CALIBRATION[variant]) {
    if (rate <= runningMax) continue; // keep the curve increasing (saturation near 400 wpm)
    runningMax = rate;
    table.push([rate, wpm]);
  }
  return clampRound(interpolate(table, syllablesPerSec), SPEED_MIN_WPM, SPEED_MAX_WPM);
}

/** Piecewise-linear interpolation over `[x, y]` pairs sorted by x; clamps outside the range. */
function interpolate(table: ReadonlyArray<readonly [number, number]>, x: number): number {
  const first = table[0]!;
  const last = table[table.length - 1]!;
  if (x <= first[0]) return first[1];
  if (x >= last[0]) return last[1];
  for (let i = 1; i < table.length; i++) {
    const [x1, y1] = table[i]!;
    if (x <= x1) {
      const [x0, y0] = table[i - 1]!;
      return y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
    }
  }
  return last[1];
}

function clampRound(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.round(value)));
}

/** A flite voice the preview voice is made from (flite.ts): `awb` (male) or `slt` (female). */
export type FlitePreviewVoice = 'awb' | 'slt';

/**
 * What each preview voice does at its own settings with flite 2.2: median F0 of voiced speech, Hz,
 * and syllable nuclei per second of speech, measured with `analyseSample` like the speakers
 * (2026-11; the rate varies by about ±10% with the text spoken). Only the fit's starting points.
 */
export const FLITE_NATURAL: Record<FlitePreviewVoice, { medianF0Hz: number; syllableRatePerSec: number }> = {
  awb: { medianF0Hz: 131, syllableRatePerSec: 4.1 },
  slt: { medianF0Hz: 172, syllableRatePerSec: 3.5 },
};

/**
 * How the measured syllable rate answers flite's `duration_stretch`: rate ∝ stretch^(−0.5)
 * (rms: stretch 0.8 → ×1.11, 1.3 → ×0.86 on the bench sentences), not ∝ stretch^(−1), because the
 * nucleus detector merges syllables as speech gets faster. Used for the fit's first step.
 */
export const RATE_STRETCH_EXPONENT = -0.5;

/**
 * Shortest duration stretch the fit uses (fastest speech). Faster than this flite stops being
 * intelligible: round-trip word error rate on the bench sentences, slt at 212 Hz: 24% at 0.66,
 * 34% at 0.6, 56% at 0.51; awb: 32% at 0.6. The syllable rate measured there (slt 0.66: 4.9 per
 * second) already covers fast readers (LibriSpeech 2412: 5.0).
 */
export const FIT_MIN_DURATION_STRETCH = 0.66;

/**
 * The flite voice for a speaker with median F0 `f0Hz` (Hz): `awb` below
 * {@link VARIANT_SPLIT_F0_HZ}, else `slt` — the same split as the espeak-ng variants. Both follow
 * a pitch target from 85 to 300 Hz with a round-trip word error rate of 5–13%, so the split
 * chooses the timbre (male or female vocal tract) nearest the speaker, not the reachable pitch.
 */
export function fliteVoiceForF0(f0Hz: number): FlitePreviewVoice {
  return f0Hz < VARIANT_SPLIT_F0_HZ ? 'awb' : 'slt';
}
