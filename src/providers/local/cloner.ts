/**
 * The offline "preview" voice: not a clone, a flite voice (espeak-ng when flite is unavailable)
 * matched to two measurable traits of the speaker — median pitch (F0) and speaking rate. The
 * flite voice is fitted per speaker: it speaks a fixed text, the result is measured with the same
 * analysis as the enrollment samples, and flite's pitch target and duration stretch are corrected
 * until both are close (see {@link fitFliteVoice}). It is labelled as an approximation everywhere
 * it is shown.
 */
import { createHash } from 'node:crypto';
import { analyseSample, wavToPcm } from '../../core/audio/index.js';
import { DependencyError, ProviderError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { CloneSample, ClonedVoice, VoiceCloner } from '../../core/providers.js';
import { FIT_MIN_DURATION_STRETCH, FLITE_NATURAL, fliteVoiceForF0, pitchForF0, RATE_STRETCH_EXPONENT, speedForSyllableRate, variantForF0, type EspeakVariant, type FlitePreviewVoice } from './calibration.js';
import { LOCAL_PROVIDER, type EspeakVoiceParams } from './espeak.js';
import { DURATION_STRETCH_MAX, F0_TARGET_MAX_HZ, F0_TARGET_MIN_HZ, runFlite, type FliteVoiceParams } from './flite.js';
import type { OfflineTtsEngine } from './synthesizer.js';

/** Default seconds of enrollment speech before the preview voice is made. */
export const DEFAULT_PREVIEW_MIN_SPEECH_SEC = 20;

/** What the cloner measured across a user's samples. */
export interface SpeakerMeasurement {
  /** Median F0 of voiced speech, Hz (speech-weighted median of the samples' medians). */
  medianF0Hz: number;
  /** Syllable nuclei per second of speech (total nuclei / total speech seconds). */
  syllableRatePerSec: number;
  /** Seconds of speech the measurement rests on. */
  speechSec: number;
}

/**
 * {@link ClonedVoice.params} of a preview voice: the espeak-ng settings (always, for other
 * languages and the fallback), the flite settings (when flite made it) and what they were matched
 * to. Frequencies in Hz, rates in syllable nuclei per second of speech.
 */
export interface PreviewVoiceParams extends EspeakVoiceParams {
  espeakVoice: EspeakVariant;
  pitch: number;
  speedWpm: number;
  fliteVoice?: FlitePreviewVoice;
  f0TargetHz?: number;
  durationStretch?: number;
  speakerF0Hz: number;
  speakerSyllableRatePerSec: number;
  /** Median F0 and syllable rate the fitted flite voice measured on {@link FIT_TEXT}. */
  fitF0Hz?: number;
  fitSyllableRatePerSec?: number;
}

/**
 * Measures `samples` (mono PCM, any rate analyseSample supports; 16 kHz expected) with
 * `analyseSample` from src/core/audio. Samples without voiced speech are skipped.
 * @throws ProviderError (not retryable) when no sample has voiced speech
 */
export function measureSpeaker(samples: CloneSample[]): SpeakerMeasurement {
  const rows: Array<{ f0Hz: number; rate: number; speechSec: number }> = [];
  for (const sample of samples) {
    const analysis = analyseSample(sample.pcm);
    if (analysis.medianF0Hz === undefined || analysis.speechSec <= 0) continue;
    rows.push({ f0Hz: analysis.medianF0Hz, rate: analysis.syllableRatePerSec, speechSec: analysis.speechSec });
  }
  if (rows.length === 0) {
    throw new ProviderError(LOCAL_PROVIDER, `no voiced speech found in ${samples.length} enrollment sample(s)`, { retryable: false });
  }
  const speechSec = rows.reduce((sum, r) => sum + r.speechSec, 0);
  const syllableRatePerSec = rows.reduce((sum, r) => sum + r.rate * r.speechSec, 0) / speechSec;
  return { medianF0Hz: weightedMedian(rows.map((r) => [r.f0Hz, r.speechSec])), syllableRatePerSec, speechSec };
}

/** The espeak-ng settings matched to a measured speaker through the calibration tables (calibration.ts). */
export function previewParams(measurement: SpeakerMeasurement): PreviewVoiceParams {
  const variant = variantForF0(measurement.medianF0Hz);
  return {
    espeakVoice: variant,
    pitch: pitchForF0(variant, measurement.medianF0Hz),
    speedWpm: speedForSyllableRate(variant, measurement.syllableRatePerSec),
    speakerF0Hz: Math.round(measurement.medianF0Hz * 10) / 10,
    speakerSyllableRatePerSec: Math.round(measurement.syllableRatePerSec * 100) / 100,
  };
}

/**
 * The text a flite voice speaks while it is fitted to a speaker: one narrative paragraph and one
 * conversational one (eight sentences, 104 words, about 30 s). The syllable rate measured on a
 * text depends on its words, by ±10% for the same settings (awb: the narrative paragraph alone
 * measured 5% faster, the conversational one 15% slower, than replies and the bench sentences);
 * the two together came within 5% of both for awb and slt at several settings.
 */
export const FIT_TEXT =
  'Yesterday I walked along the river with my sister, and we talked about the garden, the weather and our plans for the summer. ' +
  'She thinks we should travel north this year. I would rather stay at home, read a few good books and finally learn to cook properly. ' +
  "I hear you, and I'm glad you told me. It sounds like a long week, but you handled it well. " +
  'Maybe tomorrow you can rest a little, call a friend, or cook something simple. What matters most to you right now? ' +
  'Whatever it is, we can think it through together, one small step at a time.';

/** Relative errors the fit stops at (the goals are 5% for F0 and 10% for rate; the fit aims closer). */
const FIT_STOP_F0 = 0.02;
const FIT_STOP_RATE = 0.03;

/** Outcome of {@link fitFliteVoice}. */
export interface FliteFit {
  params: FliteVoiceParams & { fliteVoice: FlitePreviewVoice; f0TargetHz: number; durationStretch: number };
  /** What the fitted voice measured on {@link FIT_TEXT}: median F0, Hz; syllables per second of speech. */
  medianF0Hz: number;
  syllableRatePerSec: number;
  /** Synthesis rounds used (1–maxRounds). */
  rounds: number;
}

/**
 * Fits a flite voice to `target`: picks the voice by F0 ({@link fliteVoiceForF0}), starts from
 * `int_f0_target_mean` = the speaker's F0 and a duration stretch from the voice's own rate
 * ({@link FLITE_NATURAL}, {@link RATE_STRETCH_EXPONENT}), then speaks {@link FIT_TEXT}, measures
 * it with `analyseSample` and corrects: the pitch target by the F0 ratio, the stretch by a secant
 * step in log-log space (the first step assumes the exponent). Stops when F0 is within 2% and the
 * rate within 3%, or after `maxRounds`; returns the best round (smallest error relative to the 5% /
 * 10% goals). The stretch stays at or above {@link FIT_MIN_DURATION_STRETCH} (faster flite speech
 * is no longer intelligible) and the pitch target within flite's bounds, so very fast speakers
 * stay a little slower; the fit stops early when the settings stop moving.
 *
 * @param synthesize speaks text with flite settings and returns a 16-bit PCM WAV
 * @throws whatever `synthesize` throws; the abort reason when `signal` aborts between rounds;
 *   ProviderError (not retryable) when the fit text yields no pitch
 */
export async function fitFliteVoice(
  target: Pick<SpeakerMeasurement, 'medianF0Hz' | 'syllableRatePerSec'>,
  synthesize: (text: string, params: FliteVoiceParams) => Promise<Buffer>,
  options: { maxRounds?: number; signal?: AbortSignal } = {},
): Promise<FliteFit> {
  const fliteVoice = fliteVoiceForF0(target.medianF0Hz);
  const natural = FLITE_NATURAL[fliteVoice];
  let f0TargetHz = clamp(target.medianF0Hz, F0_TARGET_MIN_HZ, F0_TARGET_MAX_HZ);
  let durationStretch = clamp(Math.pow(target.syllableRatePerSec / natural.syllableRatePerSec, 1 / RATE_STRETCH_EXPONENT), FIT_MIN_DURATION_STRETCH, DURATION_STRETCH_MAX);
  let best: (FliteFit & { score: number }) | undefined;
  let previous: { stretch: number; rate: number } | undefined;
  const maxRounds = options.maxRounds ?? 5;
  for (let round = 1; round <= maxRounds; round++) {
    options.signal?.throwIfAborted();
    const params = { fliteVoice, f0TargetHz: Math.round(f0TargetHz * 10) / 10, durationStretch: Math.round(durationStretch * 1000) / 1000 };
    const analysis = analyseSample(wavToPcm(await synthesize(FIT_TEXT, params)));
    if (analysis.medianF0Hz === undefined) throw new ProviderError(LOCAL_PROVIDER, `flite ${fliteVoice} produced no voiced speech while fitting the preview voice`, { retryable: false });
    const f0Error = analysis.medianF0Hz / target.medianF0Hz - 1;
    const rateError = analysis.syllableRatePerSec / target.syllableRatePerSec - 1;
    const score = Math.max(Math.abs(f0Error) / 0.05, Math.abs(rateError) / 0.1);
    if (!best || score < best.score) best = { params, medianF0Hz: analysis.medianF0Hz, syllableRatePerSec: analysis.syllableRatePerSec, rounds: round, score };
    if (Math.abs(f0Error) <= FIT_STOP_F0 && Math.abs(rateError) <= FIT_STOP_RATE) break;
    f0TargetHz = clamp(params.f0TargetHz * (target.medianF0Hz / analysis.medianF0Hz), F0_TARGET_MIN_HZ, F0_TARGET_MAX_HZ);
    let exponent = RATE_STRETCH_EXPONENT;
    if (previous && Math.abs(Math.log(params.durationStretch / previous.stretch)) > 0.01) {
      const measured = Math.log(analysis.syllableRatePerSec / previous.rate) / Math.log(params.durationStretch / previous.stretch);
      if (measured < -0.15 && measured > -1.5) exponent = measured;
    }
    previous = { stretch: params.durationStretch, rate: analysis.syllableRatePerSec };
    durationStretch = clamp(params.durationStretch * Math.exp(Math.log(target.syllableRatePerSec / analysis.syllableRatePerSec) / exponent), FIT_MIN_DURATION_STRETCH, DURATION_STRETCH_MAX);
    // Settings pinned at a bound (a speaker faster or slower than flite can measure): stop.
    if (Math.abs(durationStretch - params.durationStretch) < 0.005 && Math.abs(f0TargetHz / params.f0TargetHz - 1) < 0.01) break;
  }
  const { score: _score, ...fit } = best!;
  return { ...fit, rounds: Math.min(maxRounds, fit.rounds) };
}

/** Options of {@link OfflinePreviewCloner}. */
export interface PreviewClonerOptions {
  /** Seconds of speech needed (default {@link DEFAULT_PREVIEW_MIN_SPEECH_SEC}). */
  minSpeechSec?: number;
  /** Engine of the voice; default flite (the app passes `OFFLINE_TTS` from its config). */
  engine?: OfflineTtsEngine;
  /** flite binary; default `FLITE_PATH` or `flite` on PATH. */
  fliteBinaryPath?: string;
  /** Most synthesis rounds of the fit (default 5). */
  maxFitRounds?: number;
  logger?: Logger;
}

/**
 * {@link VoiceCloner} making the offline preview voice (name `local`).
 *
 * `clone` measures the samples ({@link measureSpeaker}), computes the espeak-ng settings through
 * the calibration tables ({@link previewParams}), and — unless the engine is `espeak-ng` — fits a
 * flite voice ({@link fitFliteVoice}: `awb` below 165 Hz, else `slt`; up to five flite runs of
 * about 16 s of speech each). It returns
 * `{ provider: 'local', voiceId: 'flite:<12 hex>', approximate: true, label, params }` where
 * `params` is a {@link PreviewVoiceParams} and the label reads
 * `offline preview voice (flite slt, 211 Hz, 4.1 syllables/s) — an approximation, not a neural clone`.
 * When flite is missing the voice is espeak-ng only (`espeak:<12 hex>`, label naming espeak-ng,
 * e.g. `(espeak-ng, 118 Hz, 165 wpm)`) and a warning is logged. The id is a hash of the user id
 * and the settings, so the same samples give the same id.
 *
 * Nothing is kept provider-side, so there is no `deleteVoice`.
 *
 * @throws ProviderError (not retryable) when there are no samples or none has voiced speech, or
 *   flite fails while fitting
 * @throws the abort reason when `signal` aborts
 */
export class OfflinePreviewCloner implements VoiceCloner {
  readonly name = LOCAL_PROVIDER;
  readonly minSpeechSec: number;
  private readonly engine: OfflineTtsEngine;

  constructor(private readonly options: PreviewClonerOptions = {}) {
    this.minSpeechSec = options.minSpeechSec ?? DEFAULT_PREVIEW_MIN_SPEECH_SEC;
    this.engine = options.engine ?? 'flite';
  }

  async clone(request: { userId: string; displayName?: string; samples: CloneSample[]; signal?: AbortSignal }): Promise<ClonedVoice> {
    request.signal?.throwIfAborted();
    if (request.samples.length === 0) throw new ProviderError(this.name, 'no enrollment samples to make a voice from', { retryable: false });
    const measurement = measureSpeaker(request.samples);
    request.signal?.throwIfAborted();
    let params = previewParams(measurement);
    const f0 = Math.round(measurement.medianF0Hz);
    let fitted = false;
    if (this.engine === 'flite') {
      try {
        const fit = await fitFliteVoice(
          measurement,
          (text, flite) => runFlite(text, flite, { timeoutMs: 30_000, ...(this.options.fliteBinaryPath ? { binaryPath: this.options.fliteBinaryPath } : {}), ...(request.signal ? { signal: request.signal } : {}) }),
          { ...(this.options.maxFitRounds ? { maxRounds: this.options.maxFitRounds } : {}), ...(request.signal ? { signal: request.signal } : {}) },
        );
        params = { ...params, ...fit.params, fitF0Hz: Math.round(fit.medianF0Hz * 10) / 10, fitSyllableRatePerSec: Math.round(fit.syllableRatePerSec * 100) / 100 };
        fitted = true;
      } catch (err) {
        if (!(err instanceof DependencyError)) throw err;
        this.options.logger?.warn({ err: err.message }, 'flite is missing: the preview voice uses espeak-ng');
      }
    }
    const hash = createHash('sha256')
      .update(JSON.stringify([request.userId, params.espeakVoice, params.pitch, params.speedWpm, params.fliteVoice, params.f0TargetHz, params.durationStretch]))
      .digest('hex')
      .slice(0, 12);
    this.options.logger?.info({ speechSec: measurement.speechSec, f0Hz: f0, syllableRatePerSec: params.speakerSyllableRatePerSec, ...pick(params) }, 'offline preview voice made');
    const label = fitted
      ? `offline preview voice (flite ${params.fliteVoice}, ${f0} Hz, ${params.speakerSyllableRatePerSec.toFixed(1)} syllables/s) — an approximation, not a neural clone`
      : `offline preview voice (espeak-ng, ${f0} Hz, ${params.speedWpm} wpm) — an approximation, not a neural clone`;
    return { provider: LOCAL_PROVIDER, voiceId: `${fitted ? 'flite' : 'espeak'}:${hash}`, approximate: true, label, params: { ...params } };
  }
}

function pick(params: PreviewVoiceParams): Record<string, unknown> {
  return { fliteVoice: params.fliteVoice, f0TargetHz: params.f0TargetHz, durationStretch: params.durationStretch, espeakVoice: params.espeakVoice, pitch: params.pitch, speedWpm: params.speedWpm };
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/** Median of `[value, weight]` pairs: the smallest value whose cumulative weight reaches half the total. */
function weightedMedian(pairs: Array<[number, number]>): number {
  const sorted = [...pairs].sort((a, b) => a[0] - b[0]);
  const half = sorted.reduce((sum, [, w]) => sum + w, 0) / 2;
  let cumulative = 0;
  for (const [value, weight] of sorted) {
    cumulative += weight;
    if (cumulative >= half) return value;
  }
  return sorted[sorted.length - 1]![0];
}
