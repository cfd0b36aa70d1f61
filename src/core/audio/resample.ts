/**
 * In-process sample-rate conversion of mono 16-bit PCM by band-limited interpolation: a
 * polyphase windowed-sinc filter (Kaiser window, β = 8), one phase per distinct fractional
 * position between the two rates. Method: J. O. Smith, "Digital Audio Resampling Home Page",
 * https://ccrma.stanford.edu/~jos/resample/ (windowed-sinc interpolation); Kaiser window:
 * https://ccrma.stanford.edu/~jos/sasp/Kaiser_Window.html.
 */
import type { PcmAudio } from '../providers.js';

/** Filter half-length in zero crossings of the sinc at the output's cut-off. */
const HALF_ZERO_CROSSINGS = 16;
/** Kaiser window shape: about 80 dB stop-band rejection. */
const KAISER_BETA = 8;
/** Cut-off as a fraction of the lower of the two Nyquist frequencies (leaves a transition band). */
const CUTOFF_FRACTION = 0.94;
/** More phases than this (rates with a small common divisor) are not converted in-process. */
export const MAX_RESAMPLE_PHASES = 4096;

const tableCache = new Map<string, { table: Float64Array; taps: number; phases: number; step: number; left: number }>();

/**
 * Converts `pcm` to `sampleRateHz` with a linear-phase low-pass at 0.94 × the lower Nyquist
 * frequency (about 80 dB stop-band). Output length is round(n × out / in) samples, so the
 * duration is kept to within one output sample; samples are rounded and clipped to 16 bits.
 *
 * @param sampleRateHz output rate, Hz
 * @returns the converted audio, the same object when the rates are equal, or undefined when the
 *   ratio of the rates needs more than {@link MAX_RESAMPLE_PHASES} filter phases
 * @throws RangeError for a non-positive or non-integer rate
 */
export function resamplePcm(pcm: PcmAudio, sampleRateHz: number): PcmAudio | undefined {
  const inRate = pcm.sampleRateHz;
  if (!Number.isInteger(inRate) || !Number.isInteger(sampleRateHz) || inRate <= 0 || sampleRateHz <= 0) {
    throw new RangeError(`sample rates must be positive integers, got ${inRate} → ${sampleRateHz}`);
  }
  if (inRate === sampleRateHz) return pcm;
  const filter = filterFor(inRate, sampleRateHz);
  if (!filter) return undefined;
  const { table, taps, phases, step, left } = filter;
  const n = pcm.samples.length;
  // Input as floats with `taps` zeros on each side, so the filter never reads out of range.
  const input = new Float64Array(n + 2 * taps);
  input.set(pcm.samples, taps);
  const outCount = Math.round((n * sampleRateHz) / inRate);
  const out = new Int16Array(outCount);
  // Output sample j sits at input time j × step / phases = base + phase / phases.
  let base = 0;
  let phase = 0;
  for (let j = 0; j < outCount; j++) {
    let x = base - left + taps;
    let c = phase * taps;
    const cEnd = c + taps;
    let acc = 0;
    while (c < cEnd) acc += table[c++]! * input[x++]!;
    const v = Math.round(acc);
    out[j] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    phase += step;
    while (phase >= phases) {
      phase -= phases;
      base++;
    }
  }
  return { samples: out, sampleRateHz };
}

function filterFor(inRate: number, outRate: number) {
  const key = `${inRate}:${outRate}`;
  const cached = tableCache.get(key);
  if (cached) return cached;
  const g = gcd(inRate, outRate);
  const phases = outRate / g;
  const step = inRate / g;
  if (phases > MAX_RESAMPLE_PHASES) return undefined;
  // Cut-off relative to the input sample rate's Nyquist frequency.
  const fc = CUTOFF_FRACTION * Math.min(1, outRate / inRate);
  const halfWidth = HALF_ZERO_CROSSINGS / fc; // in input samples
  const left = Math.ceil(halfWidth) - 1;
  const taps = left + Math.ceil(halfWidth) + 1;
  const table = new Float64Array(phases * taps);
  const i0Beta = besselI0(KAISER_BETA);
  for (let p = 0; p < phases; p++) {
    const frac = p / phases;
    let sum = 0;
    const row = new Float64Array(taps);
    for (let k = 0; k < taps; k++) {
      const x = k - left - frac; // distance from the output instant, input samples
      const r = x / halfWidth;
      if (Math.abs(r) >= 1) continue;
      const arg = Math.PI * fc * x;
      const sinc = x === 0 ? 1 : Math.sin(arg) / arg;
      const w = besselI0(KAISER_BETA * Math.sqrt(1 - r * r)) / i0Beta;
      row[k] = fc * sinc * w;
      sum += row[k]!;
    }
    for (let k = 0; k < taps; k++) table[p * taps + k] = row[k]! / sum; // unity gain at 0 Hz
  }
  const filter = { table, taps, phases, step, left };
  tableCache.set(key, filter);
  return filter;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Modified Bessel function of the first kind, order 0 (power series). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 50; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < 1e-12 * sum) break;
  }
  return sum;
}
