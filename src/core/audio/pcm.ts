/**
 * Operations on the engine's PCM form (mono signed 16-bit): loudness normalisation with a peak
 * limiter, and joining sentences synthesised separately.
 */
import type { PcmAudio } from '../providers.js';
import { slidingMin, speechLevelDb } from './analysis.js';

/** Default speech level for stored samples and replies, dBFS RMS of speech frames. */
export const DEFAULT_SPEECH_LEVEL_DB = -20;
/** Highest sample level after normalisation, dBFS. */
export const PEAK_CEILING_DB = -1;

const LIMITER_LOOKAHEAD_SEC = 0.005;
const LIMITER_RELEASE_SEC = 0.08;

/**
 * Scales `pcm` so its speech level (RMS of speech frames, dBFS, as {@link speechLevelDb}) reaches
 * `targetDb`, then limits peaks to −1 dBFS with a 5 ms look-ahead limiter (instant attack, 80 ms
 * release), so nothing clips. Digital silence is returned unchanged.
 *
 * @param targetDb target speech level, dBFS RMS (default −20)
 * @returns new PCM at the same sample rate
 */
export function normaliseLoudness(pcm: PcmAudio, targetDb: number = DEFAULT_SPEECH_LEVEL_DB): PcmAudio {
  const levelDb = speechLevelDb(pcm);
  const n = pcm.samples.length;
  if (levelDb <= -100 || n === 0) return { samples: Int16Array.from(pcm.samples), sampleRateHz: pcm.sampleRateHz };
  const gain = 10 ** ((targetDb - levelDb) / 20);
  const ceiling = 32767 * 10 ** (PEAK_CEILING_DB / 20);

  // Gain each sample may take without passing the ceiling.
  const allowed = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const a = Math.abs(pcm.samples[i]!) * gain;
    allowed[i] = a > ceiling ? ceiling / a : 1;
  }
  // Look-ahead: the gain at i is at most the smallest allowed gain within ±lookahead.
  const radius = Math.max(1, Math.round(LIMITER_LOOKAHEAD_SEC * pcm.sampleRateHz));
  const windowMin = slidingMin(allowed, radius);
  const release = 1 - Math.exp(-1 / (LIMITER_RELEASE_SEC * pcm.sampleRateHz));
  const out = new Int16Array(n);
  let envelope = 1;
  for (let i = 0; i < n; i++) {
    const target = windowMin[i]!;
    envelope = target < envelope ? target : envelope + (target - envelope) * release;
    const v = Math.round(pcm.samples[i]! * gain * envelope);
    out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
  return { samples: out, sampleRateHz: pcm.sampleRateHz };
}

/**
 * Joins PCM parts end to end with `gapSec` of silence between consecutive parts (none before the
 * first or after the last), e.g. sentences synthesised concurrently.
 *
 * @param parts at least one part; all at the same sample rate
 * @param gapSec seconds of silence between parts (default 0.25)
 * @throws RangeError when `parts` is empty, the rates differ or `gapSec` is negative
 */
export function concatPcm(parts: PcmAudio[], gapSec = 0.25): PcmAudio {
  const first = parts[0];
  if (!first) throw new RangeError('concatPcm needs at least one part');
  if (!(gapSec >= 0)) throw new RangeError(`gapSec must be ≥ 0, got ${gapSec}`);
  const sampleRateHz = first.sampleRateHz;
  const mismatch = parts.find((p) => p.sampleRateHz !== sampleRateHz);
  if (mismatch) throw new RangeError(`concatPcm parts must share one sample rate: ${sampleRateHz} Hz and ${mismatch.sampleRateHz} Hz`);
  const gap = Math.round(gapSec * sampleRateHz);
  const total = parts.reduce((sum, p) => sum + p.samples.length, 0) + gap * (parts.length - 1);
  const samples = new Int16Array(total);
  let offset = 0;
  parts.forEach((p, i) => {
    if (i > 0) offset += gap;
    samples.set(p.samples, offset);
    offset += p.samples.length;
  });
  return { samples, sampleRateHz };
}
