/**
 * The offline "preview" voice: not a clone, an espeak-ng voice matched to two measurable traits
 * of the speaker — median pitch (F0) and speaking rate — using the calibration tables in
 * calibration.ts. It is labelled as an approximation everywhere it is shown.
 */
import { createHash } from 'node:crypto';
import { analyseSample } from '../../core/audio/index.js';
import { ProviderError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { CloneSample, ClonedVoice, VoiceCloner } from '../../core/providers.js';
import { pitchForF0, speedForSyllableRate, variantForF0, type EspeakVariant } from './calibration.js';
import { LOCAL_PROVIDER, type EspeakVoiceParams } from './espeak.js';

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

/** {@link ClonedVoice.params} of a preview voice: the espeak-ng settings plus what they were matched to. */
export interface PreviewVoiceParams extends EspeakVoiceParams {
  espeakVoice: EspeakVariant;
  pitch: number;
  speedWpm: number;
  speakerF0Hz: number;
  speakerSyllableRatePerSec: number;
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

/** The espeak-ng settings matched to a measured speaker (see calibration.ts). */
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

/** Options of {@link EspeakPreviewCloner}. */
export interface PreviewClonerOptions {
  /** Seconds of speech needed (default {@link DEFAULT_PREVIEW_MIN_SPEECH_SEC}). */
  minSpeechSec?: number;
  logger?: Logger;
}

/**
 * {@link VoiceCloner} making the offline preview voice (name `local`).
 *
 * `clone` measures the samples ({@link measureSpeaker}), picks the espeak-ng variant by F0
 * (`en-us+m3` below 165 Hz, else `en-us+f3`), `-p` from the F0 and `-s` from the syllable rate
 * through the calibration tables, and returns
 * `{ provider: 'local', voiceId: 'espeak:<12 hex>', approximate: true, label, params }` where
 * `params` is a {@link PreviewVoiceParams} and the label reads
 * `offline preview voice (espeak-ng, 118 Hz, 165 wpm) — an approximation, not a neural clone`.
 * The voice id is a hash of the user id and the settings, so the same samples give the same id.
 *
 * The intonation range (`pitchRange`) is left at espeak-ng's default on purpose. Measured with the
 * same pitch tracker, speakers' F0 interquartile ranges are 2.5–7.6 semitones (JFK 5.2, LJSpeech
 * 7.2–7.6, LibriSpeech 2033 4.3), espeak-ng's only 2.7 (en-us+m3, default) to 4.6 (range 99); and
 * widening the range also raises the median F0 (+15% at range 99), which would undo the pitch match.
 
 * Nothing is kept provider-side, so there is no `deleteVoice`.
 *
 * @throws ProviderError (not retryable) when there are no samples or none has voiced speech
 * @throws the abort reason when `signal` is already aborted
 */
export class EspeakPreviewCloner implements VoiceCloner {
  readonly name = LOCAL_PROVIDER;
  readonly minSpeechSec: number;

  constructor(private readonly options: PreviewClonerOptions = {}) {
    this.minSpeechSec = options.minSpeechSec ?? DEFAULT_PREVIEW_MIN_SPEECH_SEC;
  }

  async clone(request: { userId: string; displayName?: string; samples: CloneSample[]; signal?: AbortSignal }): Promise<ClonedVoice> {
    request.signal?.throwIfAborted();
    if (request.samples.length === 0) throw new ProviderError(this.name, 'no enrollment samples to make a voice from', { retryable: false });
    const measurement = measureSpeaker(request.samples);
    request.signal?.throwIfAborted();
    const params = previewParams(measurement);
    const hash = createHash('sha256')
      .update(JSON.stringify([request.userId, params.espeakVoice, params.pitch, params.speedWpm]))
      .digest('hex')
      .slice(0, 12);
    const f0 = Math.round(measurement.medianF0Hz);
    this.options.logger?.info({ speechSec: measurement.speechSec, f0Hz: f0, syllableRatePerSec: params.speakerSyllableRatePerSec, ...pick(params) }, 'offline preview voice made');
    return {
      provider: LOCAL_PROVIDER,
      voiceId: `espeak:${hash}`,
      approximate: true,
      label: `offline preview voice (espeak-ng, ${f0} Hz, ${params.speedWpm} wpm) — an approximation, not a neural clone`,
      params: { ...params },
    };
  }
}

function pick(params: PreviewVoiceParams): Record<string, unknown> {
  return { espeakVoice: params.espeakVoice, pitch: params.pitch, speedWpm: params.speedWpm };
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
