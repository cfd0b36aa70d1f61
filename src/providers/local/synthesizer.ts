/**
 * The offline text-to-speech provider (name `local`): flite for English, espeak-ng for the
 * languages flite lacks (Hindi, German, …) and as the fallback when flite is not installed.
 */
import { DependencyError, ProviderError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ClonedVoice, SpeechSynthesizer, SynthesizedAudio } from '../../core/providers.js';
import { EspeakSpeechSynthesizer, isAudibleWav, LOCAL_PROVIDER } from './espeak.js';
import { DEFAULT_FLITE_VOICE, isFliteParams, parseFliteParams, runFlite, sweepStaleFliteDirs, type FliteVoiceParams } from './flite.js';

/** The offline engines: `flite` (default) or `espeak-ng` (formant synthesis, many languages). */
export type OfflineTtsEngine = 'flite' | 'espeak-ng';

/**
 * Parses an engine name (`flite`, `espeak-ng` or `espeak`; case-insensitive); `flite` when
 * undefined or empty. The `OFFLINE_TTS` variable itself is read and validated by `src/config.ts`.
 * @throws ProviderError (not retryable) for any other value
 */
export function offlineTtsEngine(value?: string): OfflineTtsEngine {
  const v = (value ?? '').trim().toLowerCase();
  if (v === '' || v === 'flite') return 'flite';
  if (v === 'espeak-ng' || v === 'espeak') return 'espeak-ng';
  throw new ProviderError(LOCAL_PROVIDER, `OFFLINE_TTS must be flite or espeak-ng, not ${JSON.stringify(value)}`, { retryable: false });
}

/** Options of {@link LocalSpeechSynthesizer}. */
export interface LocalSynthesizerOptions {
  /** Engine for English; default flite (the app passes `OFFLINE_TTS` from its config). */
  engine?: OfflineTtsEngine;
  /** flite binary; default `FLITE_PATH` or `flite` on PATH. */
  fliteBinaryPath?: string;
  /** espeak-ng binary; default `ESPEAK_NG_PATH` or `espeak-ng` on PATH. */
  espeakBinaryPath?: string;
  /** Time allowed per call, ms, from the text length in characters. Default 15 s + 20 ms per character. */
  timeoutMs?: (characters: number) => number;
  /** Folder for flite's per-call temporary folders; default `os.tmpdir()`. */
  tmpRoot?: string;
  logger?: Logger;
}

/**
 * {@link SpeechSynthesizer} of the offline stack (name `local`).
 *
 * `synthesize` speaks `text` in `voice` when it is a `local` voice, else in the default voice
 * (flite `rms`). Which engine speaks:
 * - flite, when the voice has flite settings (`fliteVoice`, see {@link FliteVoiceParams}) or no
 *   voice is given, and `languageCode` is absent or English, or Hindi with no Devanagari in the
 *   text (romanised Hinglish is read by the English voice);
 * - espeak-ng, with the voice's espeak-ng settings (`espeakVoice`, `pitch`, `speedWpm`; preview
 *   voices carry both sets), when `languageCode` is not English (espeak-ng switches language when
 *   it has it), when the voice only has espeak-ng settings (voices made before flite), when the
 *   engine is `espeak-ng`, and when flite is missing (logged once as a warning).
 *
 * Returns a WAV (flite: 16 kHz, espeak-ng: 22.05 kHz; mono 16-bit PCM) with `characters` = Unicode
 * code points of `text`.
 *
 * @throws ProviderError (not retryable) when the text is blank, the voice parameters are invalid,
 *   an engine fails, or the output has no audible samples; (retryable) on timeout
 * @throws DependencyError when espeak-ng is needed and missing
 * @throws the abort reason when `signal` aborts
 */
export class LocalSpeechSynthesizer implements SpeechSynthesizer {
  readonly name = LOCAL_PROVIDER;
  readonly engine: OfflineTtsEngine;
  private readonly espeak: EspeakSpeechSynthesizer;
  private readonly timeoutMs: (characters: number) => number;
  private fliteMissing = false;
  /** The sweep of folders left by a killed process, run once before the first flite call. */
  private swept: Promise<unknown> | undefined;

  constructor(private readonly options: LocalSynthesizerOptions = {}) {
    this.engine = options.engine ?? 'flite';
    this.timeoutMs = options.timeoutMs ?? ((characters) => 15_000 + 20 * characters);
    this.espeak = new EspeakSpeechSynthesizer({
      ...(options.espeakBinaryPath ? { binaryPath: options.espeakBinaryPath } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      timeoutMs: this.timeoutMs,
    });
  }

  async synthesize(request: { text: string; voice?: ClonedVoice; languageCode?: string; signal?: AbortSignal }): Promise<SynthesizedAudio> {
    const text = request.text.trim();
    if (!text) throw new ProviderError(this.name, 'nothing to synthesise: the text is blank', { retryable: false });
    request.signal?.throwIfAborted();
    let params: Record<string, unknown> = {};
    if (request.voice?.provider === LOCAL_PROVIDER) params = request.voice.params;
    else if (request.voice) this.options.logger?.debug({ provider: request.voice.provider }, 'offline TTS: voice of another provider, using the default voice');

    // Romanised Hindi (Hinglish in Latin letters) is read by the English voice: espeak-ng's Hindi
    // voice switches to its English rules for Latin letters anyway (`espeak-ng -v hi -x` shows
    // "(en)…(hi)"), and flite's English is the more intelligible of the two.
    const primary = request.languageCode?.toLowerCase().split('-')[0];
    const english = !primary || primary === 'en' || (primary === 'hi' && !/[\u0900-\u097F]/u.test(text));
    const hasFlite = isFliteParams(params) || params.espeakVoice === undefined;
    if (this.engine === 'flite' && english && hasFlite && !this.fliteMissing) {
      const fliteParams: FliteVoiceParams = isFliteParams(params) ? parseFliteParams(params) : { fliteVoice: DEFAULT_FLITE_VOICE };
      try {
        return await this.flite(request.text, text, fliteParams, request.signal);
      } catch (err) {
        if (!(err instanceof DependencyError)) throw err;
        this.fliteMissing = true;
        this.options.logger?.warn({ err: err.message }, 'flite is missing: the offline voice falls back to espeak-ng');
      }
    }
    const espeakVoice = params.espeakVoice !== undefined ? request.voice : undefined;
    const out = await this.espeak.synthesize({
      text: request.text,
      ...(espeakVoice ? { voice: espeakVoice } : {}),
      ...(request.languageCode ? { languageCode: request.languageCode } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
    });
    return out;
  }

  private async flite(original: string, text: string, params: FliteVoiceParams, signal?: AbortSignal): Promise<SynthesizedAudio> {
    const characters = [...original].length;
    this.swept ??= sweepStaleFliteDirs(this.options.tmpRoot ? { tmpRoot: this.options.tmpRoot } : {}).then((removed) => {
      if (removed > 0) this.options.logger?.info({ removed }, 'removed temporary flite folders left by an earlier process');
    });
    await this.swept;
    const startedMs = Date.now();
    const bytes = await runFlite(text, params, {
      timeoutMs: this.timeoutMs(characters),
      ...(this.options.fliteBinaryPath ? { binaryPath: this.options.fliteBinaryPath } : {}),
      ...(this.options.tmpRoot ? { tmpRoot: this.options.tmpRoot } : {}),
      ...(signal ? { signal } : {}),
      onCleanupError: (dir, err) => this.options.logger?.warn({ dir, err }, 'temporary flite folder not removed yet; retrying later'),
    });
    if (!isAudibleWav(bytes)) throw new ProviderError(this.name, `flite produced no audible speech for ${characters} characters`, { retryable: false });
    this.options.logger?.debug({ characters, sizeBytes: bytes.length, elapsedMs: Date.now() - startedMs, voice: params.fliteVoice }, 'flite synthesised');
    return { bytes, characters };
  }
}
