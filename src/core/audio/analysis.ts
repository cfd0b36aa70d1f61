/**
 * Measurements of an enrollment sample in plain TypeScript (no ffmpeg): voice activity,
 * loudness, clipping, SNR, pitch, speaking rate, and the verdict on whether it is usable.
 *
 * Methods:
 * - Voice activity: 10 ms frame energy against an adaptive noise floor (the minimum of the
 *   smoothed energy within ±1.5 s, R. Martin's "minimum statistics" idea), speech = more than
 *   10 dB above the floor and above −60 dBFS, with pauses under 200 ms bridged and blips under
 *   30 ms dropped.
 * - Pitch: normalised cross-correlation (as in RAPT, D. Talkin, "A Robust Algorithm for Pitch
 *   Tracking", 1995) over 60–400 Hz on the 50–1000 Hz band decimated to about 4 kHz,
 *   30 ms window every 20 ms, the lag refined at the full rate with parabolic interpolation.
 * - Syllable nuclei: peaks of the smoothed 250–2500 Hz band energy on voiced speech frames with a
 *   2 dB dip between neighbours (after N. H. de Jong and T. Wempe, "Praat script to detect syllable
 *   nuclei and measure speech rate automatically", Behavior Research Methods 41, 2009).
 * - Filters: RBJ Audio EQ Cookbook biquads (https://www.w3.org/TR/audio-eq-cookbook/).
 */
import { UserInputError } from '../errors.js';
import type { PcmAudio } from '../providers.js';
import type { SampleAnalysis } from './types.js';

const FRAME_SEC = 0.01;
const FULL_SCALE = 32768;
/** dB value used for digital silence. */
const SILENCE_DB = -100;
/** Frames quieter than this (dBFS) carry no sound worth analysing. */
const SOUND_FLOOR_DB = -60;
const VAD_MARGIN_DB = 10;
/** Width of the window the noise floor is the minimum of, seconds. */
const FLOOR_WINDOW_SEC = 3;
const MIN_F0_HZ = 60;
const MAX_F0_HZ = 400;
/** Normalised cross-correlation a frame's best lag needs to count as voiced. */
const VOICING_THRESHOLD = 0.6;
/** Pitch analysis window, seconds (normalised cross-correlation needs no more than one period). */
const PITCH_WINDOW_SEC = 0.03;
/** Pitch is estimated every this many 10 ms frames. */
const PITCH_HOP_FRAMES = 2;
/** Score bonus per octave up when choosing among correlation peaks. */
const OCTAVE_BIAS = 0.03;
/** Consecutive voiced frames closer than this (semitones) count as a steady pitch. */
const STEADY_PITCH_SEMITONES = 0.1;
/** Samples at or above this magnitude count as clipped (99% of full scale). */
const CLIP_LEVEL = 32440;

/** Per-frame detail behind a {@link SampleAnalysis}, for tuning and tests. */
export interface FrameTrack {
  /** Frame length, seconds (0.01). */
  frameSec: number;
  /** Frame energy, dBFS (RMS of the DC-blocked signal; full-scale square wave = 0 dB). */
  energyDb: Float32Array;
  /** 1 where the voice-activity detector marks speech. */
  speech: Uint8Array;
  /** Fundamental frequency per frame, Hz; 0 when unvoiced or not analysed. */
  f0Hz: Float32Array;
}

/**
 * Measures an enrollment sample. Designed for 16 kHz mono (any rate from 8 kHz works).
 *
 * - `durationSec`: samples / rate.
 * - `speechSec`: seconds of 10 ms frames the voice-activity detector marks as speech.
 * - `loudnessDb`: RMS of the speech frames in dBFS (full-scale square wave = 0 dB; a full-scale
 *   sine is −3 dB), leaving out the loudest 1% of speech frames (clicks, bumps); the whole clip's
 *   RMS when no speech is found. Not LUFS.
 * - `clippingRatio`: fraction of samples at ≥ 99% of full scale.
 * - `snrDb`: mean power of speech frames (or of the loudest 10% of frames when there is no speech)
 *   over the mean power of the quietest 10% of frames, dB.
 * - `voicedRatio`: fraction of frames louder than −60 dBFS that have a pitch.
 * - `medianF0Hz`: median pitch of voiced speech frames (of all voiced frames when none is speech), Hz.
 * - `syllableRatePerSec`, `pitchStability`, `noiseFloorDb`, `peakDb`: see {@link SampleAnalysis}.
 *
 * Runs in a few milliseconds per second of audio.
 */
export function analyseSample(pcm: PcmAudio): SampleAnalysis {
  return analyseSampleFrames(pcm).analysis;
}

/** {@link analyseSample} plus the per-frame tracks it was computed from. */
export function analyseSampleFrames(pcm: PcmAudio): { analysis: SampleAnalysis; frames: FrameTrack } {
  const fs = pcm.sampleRateHz;
  const n = pcm.samples.length;
  const hop = Math.max(1, Math.round(fs * FRAME_SEC));
  const frameCount = Math.floor(n / hop);

  const { x, power, energyDb, peak, clipped } = frameEnergies(pcm, hop, frameCount);

  // Noise floor and voice activity.
  const sortedDb = Float32Array.from(energyDb).sort();
  const quietCount = Math.max(1, Math.floor(frameCount * 0.1));
  const noiseFloorDb = frameCount ? percentile(sortedDb, 0.1) : SILENCE_DB;
  const speech = voiceActivity(energyDb);
  let speechFrames = 0;
  for (let f = 0; f < frameCount; f++) speechFrames += speech[f]!;

  // Loudness and SNR.
  const byPower = Array.from(power).sort((a, b) => a - b);
  const quietPower = mean(byPower.slice(0, quietCount));
  const loudPower = mean(byPower.slice(Math.max(0, frameCount - quietCount)));
  const signalPower = speechFrames ? speechPowerMean(power, speech) : loudPower;
  const loudnessDb = speechFrames ? toDb(signalPower) : toDb(mean(byPower));
  const snrDb = Math.max(0, toDb(signalPower) - toDb(quietPower));

  // Pitch.
  const f0Hz = trackPitch(x, fs, hop, frameCount, energyDb);
  let soundFrames = 0;
  let voicedFrames = 0;
  let steadyPairs = 0;
  let pairs = 0;
  const speechF0: number[] = [];
  const allF0: number[] = [];
  for (let f = 0; f < frameCount; f++) {
    if (energyDb[f]! > SOUND_FLOOR_DB) soundFrames++;
    const v = f0Hz[f]!;
    if (v <= 0) continue;
    voicedFrames++;
    allF0.push(v);
    if (speech[f]) speechF0.push(v);
    // Pitch is estimated every PITCH_HOP_FRAMES frames; compare successive estimates.
    const prev = f % PITCH_HOP_FRAMES === 0 && f >= PITCH_HOP_FRAMES ? f0Hz[f - PITCH_HOP_FRAMES]! : 0;
    if (prev > 0) {
      pairs++;
      if (Math.abs(12 * Math.log2(v / prev)) < STEADY_PITCH_SEMITONES) steadyPairs++;
    }
  }
  const f0Pool = speechF0.length ? speechF0 : allF0;

  const syllables = countSyllableNuclei(x, fs, hop, frameCount, speech, f0Hz);
  const speechSec = speechFrames * FRAME_SEC;

  const analysis: SampleAnalysis = {
    durationSec: fs > 0 ? n / fs : 0,
    speechSec: round(speechSec, 2),
    loudnessDb: round(loudnessDb, 1),
    clippingRatio: n ? clipped / n : 0,
    snrDb: round(snrDb, 1),
    voicedRatio: soundFrames ? voicedFrames / soundFrames : 0,
    medianF0Hz: f0Pool.length ? round(median(f0Pool), 1) : undefined,
    syllableRatePerSec: speechSec > 0 ? round(syllables / speechSec, 2) : 0,
    pitchStability: pairs ? steadyPairs / pairs : 0,
    noiseFloorDb: round(noiseFloorDb, 1),
    peakDb: round(peak > 0 ? 20 * Math.log10(peak / FULL_SCALE) : SILENCE_DB, 1),
  };
  return { analysis, frames: { frameSec: FRAME_SEC, energyDb, speech, f0Hz } };
}

/** DC-blocked float copy of the samples, per-frame power (ratio to full scale) and dB, peak and clipped-sample count. */
function frameEnergies(pcm: PcmAudio, hop: number, frameCount: number) {
  const n = pcm.samples.length;
  const x = new Float32Array(n);
  let peak = 0;
  let clipped = 0;
  const r = 1 - 2 * Math.PI * (20 / pcm.sampleRateHz); // DC blocker pole, ~20 Hz corner
  let prevIn = 0;
  let prevOut = 0;
  for (let i = 0; i < n; i++) {
    const s = pcm.samples[i]!;
    const a = s < 0 ? -s : s;
    if (a > peak) peak = a;
    if (a >= CLIP_LEVEL) clipped++;
    const y = s - prevIn + r * prevOut;
    prevIn = s;
    prevOut = y;
    x[i] = y;
  }
  const power = new Float64Array(frameCount);
  const energyDb = new Float32Array(frameCount);
  for (let f = 0; f < frameCount; f++) {
    let sum = 0;
    const start = f * hop;
    for (let i = start; i < start + hop; i++) sum += x[i]! * x[i]!;
    power[f] = sum / hop / (FULL_SCALE * FULL_SCALE);
    energyDb[f] = toDb(power[f]!);
  }
  return { x, power, energyDb, peak, clipped };
}

/**
 * RMS level of the speech in `pcm`, dBFS (same measure as {@link SampleAnalysis.loudnessDb}):
 * speech frames by the voice-activity detector, or all frames when none is speech;
 * −100 for digital silence.
 */
export function speechLevelDb(pcm: PcmAudio): number {
  const hop = Math.max(1, Math.round(pcm.sampleRateHz * FRAME_SEC));
  const frameCount = Math.floor(pcm.samples.length / hop);
  if (frameCount === 0) return SILENCE_DB;
  const { power, energyDb } = frameEnergies(pcm, hop, frameCount);
  const speech = voiceActivity(energyDb);
  return speech.includes(1) ? toDb(speechPowerMean(power, speech)) : toDb(mean(power));
}

/**
 * Mean power of the speech frames without the loudest 1% of them (when there are at least 100),
 * so a click or a microphone bump does not set the level of a whole recording.
 */
function speechPowerMean(power: Float64Array, speech: Uint8Array): number {
  const values: number[] = [];
  for (let f = 0; f < power.length; f++) if (speech[f]) values.push(power[f]!);
  if (values.length === 0) return 0;
  values.sort((a, b) => a - b);
  const keep = values.length >= 100 ? Math.ceil(values.length * 0.99) : values.length;
  return mean(values.slice(0, keep));
}

/** Frame-energy VAD with an adaptive floor; see the module comment. */
function voiceActivity(energyDb: Float32Array): Uint8Array {
  const count = energyDb.length;
  const speech = new Uint8Array(count);
  const floor = adaptiveFloorDb(energyDb);
  for (let f = 0; f < count; f++) {
    const e = energyDb[f]!;
    speech[f] = e > floor[f]! + VAD_MARGIN_DB && e > SOUND_FLOOR_DB ? 1 : 0;
  }
  flipShortRuns(speech, 1, 3, false); // blips under 30 ms
  flipShortRuns(speech, 0, 20, true); // pauses under 200 ms inside speech
  return speech;
}

/**
 * Noise floor per frame: the minimum of the 30 ms-smoothed frame energy within ±1.5 s
 * ("minimum statistics"), ignoring digital silence unless the whole window is silent.
 */
function adaptiveFloorDb(energyDb: Float32Array): Float32Array {
  const count = energyDb.length;
  const smooth = new Float32Array(count);
  for (let f = 0; f < count; f++) {
    const a = energyDb[Math.max(0, f - 1)]!;
    const b = energyDb[f]!;
    const c = energyDb[Math.min(count - 1, f + 1)]!;
    // Digital silence (exact zeros) would pin the floor at −100 dB; keep it out of the minimum.
    smooth[f] = b <= SILENCE_DB ? Infinity : (a + b + c) / 3;
  }
  const radius = Math.round(FLOOR_WINDOW_SEC / 2 / FRAME_SEC);
  const floor = slidingMin(smooth, radius);
  for (let f = 0; f < count; f++) if (!Number.isFinite(floor[f]!)) floor[f] = SILENCE_DB;
  return floor;
}

/**
 * Minimum of `values` over the window [i − radius, i + radius] (clipped to the array) for every i,
 * in O(n) with a monotonic deque of indices.
 * @param radius half-width of the window, in elements (≥ 0)
 * @returns a new array of the same length
 */
export function slidingMin(values: Float32Array, radius: number): Float32Array {
  const n = values.length;
  const out = new Float32Array(n);
  const deque = new Int32Array(n);
  let head = 0;
  let tail = 0;
  let next = 0;
  for (let i = 0; i < n; i++) {
    const right = Math.min(n - 1, i + radius);
    while (next <= right) {
      while (tail > head && values[deque[tail - 1]!]! >= values[next]!) tail--;
      deque[tail++] = next++;
    }
    while (deque[head]! < i - radius) head++;
    out[i] = values[deque[head]!]!;
  }
  return out;
}

/**
 * Sets runs of `value` shorter than `minFrames` to the other value; with `interiorOnly`, runs
 * touching either end of the track are kept.
 */
function flipShortRuns(track: Uint8Array, value: 0 | 1, minFrames: number, interiorOnly: boolean): void {
  let f = 0;
  while (f < track.length) {
    if (track[f] !== value) {
      f++;
      continue;
    }
    let end = f;
    while (end < track.length && track[end] === value) end++;
    if ((!interiorOnly || (f > 0 && end < track.length)) && end - f < minFrames) track.fill(value ? 0 : 1, f, end);
    f = end;
  }
}

/**
 * Pitch per 10 ms frame by normalised cross-correlation; see the module comment.
 * Frames quieter than −60 dBFS are skipped (0).
 */
function trackPitch(x: Float32Array, fs: number, hop: number, frameCount: number, energyDb: Float32Array): Float32Array {
  const f0 = new Float32Array(frameCount);
  // Band-limit to 50–1000 Hz (rumble out, upper harmonics out), then decimate to about 4 kHz.
  const low = Float32Array.from(x);
  applyBiquad(low, biquadHighPass(fs, 50, Math.SQRT1_2));
  const lp = biquadLowPass(fs, 1000, Math.SQRT1_2);
  applyBiquad(low, lp);
  applyBiquad(low, lp);
  const decimation = Math.max(1, Math.round(fs / 4000));
  const fd = fs / decimation;
  const d = new Float32Array(Math.floor(low.length / decimation));
  for (let i = 0; i < d.length; i++) d[i] = low[i * decimation]!;
  const cumD = cumulativeSquares(d);
  const cumLow = cumulativeSquares(low);

  const window = Math.round(PITCH_WINDOW_SEC * fd);
  const minLag = Math.max(2, Math.floor(fd / MAX_F0_HZ));
  const maxLag = Math.ceil(fd / MIN_F0_HZ);
  const nccf = new Float64Array(maxLag + 2);
  const hopD = hop / decimation;

  for (let f = 0; f < frameCount; f += PITCH_HOP_FRAMES) {
    if (energyDb[f]! <= SOUND_FLOOR_DB) continue;
    // Centre the window on the pair of frames this estimate stands for.
    const start = Math.round((f + PITCH_HOP_FRAMES / 2) * hopD - window / 2);
    if (start < 0 || start + window + maxLag + 1 > d.length) continue;
    const e0 = cumD[start + window]! - cumD[start]!;
    if (e0 <= 0) continue;
    for (let lag = minLag - 1; lag <= maxLag + 1; lag++) {
      let acc = 0;
      for (let i = start, j = start + lag; i < start + window; i++, j++) acc += d[i]! * d[j]!;
      const el = cumD[start + lag + window]! - cumD[start + lag]!;
      nccf[lag] = el > 0 ? acc / Math.sqrt(e0 * el) : 0;
    }
    // Best interior peak, with a small bonus per octave up (as Praat's octave cost) against
    // picking a multiple of the period.
    let chosen = -1;
    let chosenScore = -Infinity;
    for (let lag = minLag; lag <= maxLag; lag++) {
      const v = nccf[lag]!;
      if (v < VOICING_THRESHOLD || v < nccf[lag - 1]! || v < nccf[lag + 1]!) continue;
      const score = v - OCTAVE_BIAS * Math.log2(lag);
      if (score > chosenScore) {
        chosenScore = score;
        chosen = lag;
      }
    }
    if (chosen < 0) continue;
    const refined = refineLag(low, cumLow, start * decimation, window * decimation, chosen * decimation, decimation - 1);
    const hz = fs / refined;
    if (hz >= MIN_F0_HZ * 0.95 && hz <= MAX_F0_HZ * 1.05) {
      for (let k = f; k < Math.min(frameCount, f + PITCH_HOP_FRAMES); k++) f0[k] = hz;
    }
  }
  return f0;
}

/** Best lag near `centre` on the full-rate signal, with parabolic interpolation; 0 when none. */
function refineLag(y: Float32Array, cum: Float64Array, start: number, window: number, centre: number, radius: number): number {
  const lo = Math.max(2, centre - radius);
  const hi = centre + radius;
  if (start < 0 || start + window + hi + 1 > y.length) return centre;
  const e0 = cum[start + window]! - cum[start]!;
  const values: number[] = [];
  let bestLag = -1;
  let bestValue = -Infinity;
  for (let lag = lo; lag <= hi; lag++) {
    let acc = 0;
    for (let i = start; i < start + window; i++) acc += y[i]! * y[i + lag]!;
    const el = cum[start + lag + window]! - cum[start + lag]!;
    const v = e0 > 0 && el > 0 ? acc / Math.sqrt(e0 * el) : 0;
    values.push(v);
    if (lag > lo && lag < hi && v > bestValue) {
      bestValue = v;
      bestLag = lag;
    }
  }
  if (bestLag < 0) return centre;
  const a = values[bestLag - lo - 1]!;
  const b = values[bestLag - lo]!;
  const c = values[bestLag - lo + 1]!;
  const denominator = a - 2 * b + c;
  const shift = denominator < 0 ? (0.5 * (a - c)) / denominator : 0;
  return bestLag + Math.max(-0.5, Math.min(0.5, shift));
}

/** Syllable nuclei count; see the module comment. */
function countSyllableNuclei(x: Float32Array, fs: number, hop: number, frameCount: number, speech: Uint8Array, f0Hz: Float32Array): number {
  const band = Float32Array.from(x);
  applyBiquad(band, biquadHighPass(fs, 250, Math.SQRT1_2));
  applyBiquad(band, biquadLowPass(fs, Math.min(2500, fs * 0.45), Math.SQRT1_2));
  const bandPower = new Float64Array(frameCount);
  for (let f = 0; f < frameCount; f++) {
    let sum = 0;
    for (let i = f * hop; i < (f + 1) * hop; i++) sum += band[i]! * band[i]!;
    bandPower[f] = sum / hop / (FULL_SCALE * FULL_SCALE);
  }
  // 50 ms moving average of power, in dB.
  const smooth = new Float32Array(frameCount);
  for (let f = 0; f < frameCount; f++) {
    let sum = 0;
    let k = 0;
    for (let j = Math.max(0, f - 2); j <= Math.min(frameCount - 1, f + 2); j++, k++) sum += bandPower[j]!;
    smooth[f] = toDb(sum / k);
  }
  const voicedNear = (f: number): boolean => {
    for (let j = Math.max(0, f - 2); j <= Math.min(frameCount - 1, f + 2); j++) if (f0Hz[j]! > 0) return true;
    return false;
  };
  let count = 0;
  let lastPeak = -Infinity;
  let dipSinceLast = Infinity;
  for (let f = 1; f < frameCount - 1; f++) {
    const v = smooth[f]!;
    if (v < dipSinceLast) dipSinceLast = v;
    if (!(v > smooth[f - 1]! && v >= smooth[f + 1]!)) continue;
    if (!speech[f] || !voicedNear(f)) continue;
    if (count === 0 || (v - dipSinceLast >= 2 && lastPeak - dipSinceLast >= 2)) {
      count++;
      lastPeak = v;
      dipSinceLast = v;
    } else if (v > lastPeak) {
      lastPeak = v; // same nucleus, higher peak
      dipSinceLast = v;
    }
  }
  return count;
}

interface Biquad {
  b0: number;
  b1: number;
  b2: number;
  a1: number;
  a2: number;
}

function biquadLowPass(fs: number, cutoffHz: number, q: number): Biquad {
  const w = (2 * Math.PI * cutoffHz) / fs;
  const alpha = Math.sin(w) / (2 * q);
  const cos = Math.cos(w);
  const a0 = 1 + alpha;
  return { b0: (1 - cos) / 2 / a0, b1: (1 - cos) / a0, b2: (1 - cos) / 2 / a0, a1: (-2 * cos) / a0, a2: (1 - alpha) / a0 };
}

function biquadHighPass(fs: number, cutoffHz: number, q: number): Biquad {
  const w = (2 * Math.PI * cutoffHz) / fs;
  const alpha = Math.sin(w) / (2 * q);
  const cos = Math.cos(w);
  const a0 = 1 + alpha;
  return { b0: (1 + cos) / 2 / a0, b1: -(1 + cos) / a0, b2: (1 + cos) / 2 / a0, a1: (-2 * cos) / a0, a2: (1 - alpha) / a0 };
}

/** Filters `y` in place (direct form I). */
function applyBiquad(y: Float32Array, { b0, b1, b2, a1, a2 }: Biquad): void {
  let x1 = 0;
  let x2 = 0;
  let y1 = 0;
  let y2 = 0;
  for (let i = 0; i < y.length; i++) {
    const x0 = y[i]!;
    const out = b0 * x0 + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
    x2 = x1;
    x1 = x0;
    y2 = y1;
    y1 = out;
    y[i] = out;
  }
}

function cumulativeSquares(y: Float32Array): Float64Array {
  const cum = new Float64Array(y.length + 1);
  for (let i = 0; i < y.length; i++) cum[i + 1] = cum[i]! + y[i]! * y[i]!;
  return cum;
}

function toDb(powerRatio: number): number {
  return powerRatio > 1e-10 ? 10 * Math.log10(powerRatio) : SILENCE_DB;
}

function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return values.length ? sum / values.length : 0;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function percentile(sorted: Float32Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function round(value: number, decimals: number): number {
  const k = 10 ** decimals;
  return Math.round(value * k) / k;
}

/** Thresholds used by {@link assessEnrollmentSample}. */
export const ENROLLMENT_THRESHOLDS = {
  /** Below this peak level (dBFS) the recording is treated as silence. */
  silencePeakDb: -50,
  /** Maximum share of clipped samples. */
  maxClippingRatio: 0.01,
  /** Speech quieter than this (dBFS RMS) is too quiet. */
  minLoudnessDb: -48,
  /** Speech less than this many dB above the noise is too noisy. */
  minSnrDb: 15,
  /** Less speech than this (seconds) counts as none. */
  minAnySpeechSec: 0.2,
  /** Background louder than this (dBFS) with no speech found means noise, not silence. */
  noisyFloorDb: -50,
  /** Voiced frames needed before the pitch is judged (0.5 s). */
  minVoicedFramesForPitch: 50,
  /** Pitch steadier than this share of frame pairs is a tone or music, not speech. */
  maxPitchStability: 0.6,
} as const;

/**
 * Decides whether an analysed sample is good enough to clone a voice from.
 * Checks run in this order and the first failure is thrown:
 *
 * 1. NO_SPEECH: peak below −50 dBFS (silence, a muted microphone).
 * 2. CLIPPED: more than 1% of samples at full scale.
 * 3. NOT_SPEECH: at least 0.5 s of voiced sound whose pitch is steady (pitchStability > 0.6),
 *    or mostly voiced sound with no syllable rhythm — a tone or music.
 * 4. TOO_NOISY: no speech found (under 0.2 s) over a background louder than −50 dBFS, or speech
 *    less than 15 dB above the background.
 * 5. NO_SPEECH: sound but no speech found.
 * 6. AUDIO_TOO_SHORT: less than `minSpeechSec` of speech.
 * 7. TOO_QUIET: speech RMS below −48 dBFS.
 *
 * @param options.minSpeechSec seconds of speech required (default 1)
 * @throws UserInputError with one of the codes above and a message saying what to do
 */
export function assessEnrollmentSample(analysis: SampleAnalysis, options: { minSpeechSec?: number } = {}): void {
  const t = ENROLLMENT_THRESHOLDS;
  const minSpeechSec = options.minSpeechSec ?? 1;
  const details = { ...analysis };
  if (analysis.peakDb < t.silencePeakDb) {
    throw new UserInputError('NO_SPEECH', "I couldn't hear anything in that recording. Check that your microphone is on and not muted, then record again.", details);
  }
  if (analysis.clippingRatio > t.maxClippingRatio) {
    throw new UserInputError('CLIPPED', 'That recording is distorted because it is too loud. Hold the phone a little further away, speak at a normal volume and record again.', details);
  }
  const voicedSec = analysis.voicedRatio * analysis.durationSec;
  if (voicedSec * 100 >= t.minVoicedFramesForPitch && (analysis.pitchStability > t.maxPitchStability || (analysis.voicedRatio > 0.9 && analysis.syllableRatePerSec < 0.5))) {
    throw new UserInputError('NOT_SPEECH', "That sounds like a tone or music rather than a voice. Please record yourself speaking, with no music in the background.", details);
  }
  const anySpeech = analysis.speechSec >= t.minAnySpeechSec;
  if ((!anySpeech && analysis.noiseFloorDb > t.noisyFloorDb) || (anySpeech && analysis.snrDb < t.minSnrDb)) {
    throw new UserInputError('TOO_NOISY', 'There is too much background noise in that recording. Record again somewhere quieter, close to the microphone.', details);
  }
  if (!anySpeech) {
    throw new UserInputError('NO_SPEECH', "I couldn't hear any speech in that recording. Please record yourself reading a few sentences aloud.", details);
  }
  if (analysis.speechSec < minSpeechSec) {
    throw new UserInputError('AUDIO_TOO_SHORT', `That recording has only ${analysis.speechSec.toFixed(1)} s of speech; I need at least ${minSpeechSec} s. Please record a longer sample.`, details);
  }
  if (analysis.loudnessDb < t.minLoudnessDb) {
    throw new UserInputError('TOO_QUIET', 'Your voice is very quiet in that recording. Hold the microphone closer, speak up a little and record again.', details);
  }
}
