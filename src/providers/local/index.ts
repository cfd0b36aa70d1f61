/**
 * The offline provider stack: pocketsphinx speech-to-text, a flite preview voice fitted to the
 * speaker's pitch and rate, flite text-to-speech (espeak-ng for other languages and as the
 * fallback) and a template persona engine. Runs the whole loop with no API key; every voice it
 * makes is labelled as an approximation.
 */
import type { Logger } from '../../core/log.js';
import type { Providers } from '../../core/providers.js';
import { OfflinePreviewCloner } from './cloner.js';
import { PocketsphinxSpeechToText } from './pocketsphinx.js';
import { ESPEAK_INSTALL_HINT, FLITE_INSTALL_HINT, localToolPaths, POCKETSPHINX_INSTALL_HINT, runLocalTool } from './process.js';
import { LocalSpeechSynthesizer, type OfflineTtsEngine } from './synthesizer.js';
import { TemplateChatModel } from './template.js';
import { DependencyError } from '../../core/errors.js';

export { PocketsphinxSpeechToText, parseHypotheses, DEFAULT_POCKETSPHINX_MODEL_DIR, POCKETSPHINX_FAST_ARGS, type PocketsphinxOptions } from './pocketsphinx.js';
export {
  EspeakSpeechSynthesizer,
  parseEspeakParams,
  espeakArgs,
  fixStreamedWavSizes,
  isAudibleWav,
  DEFAULT_ESPEAK_VOICE,
  LOCAL_PROVIDER,
  type EspeakVoiceParams,
  type EspeakSynthesizerOptions,
} from './espeak.js';
export {
  OfflinePreviewCloner,
  measureSpeaker,
  previewParams,
  fitFliteVoice,
  FIT_TEXT,
  DEFAULT_PREVIEW_MIN_SPEECH_SEC,
  type FliteFit,
  type PreviewVoiceParams,
  type SpeakerMeasurement,
  type PreviewClonerOptions,
} from './cloner.js';
export { runFlite, parseFliteParams, fliteArgs, FLITE_VOICES, DEFAULT_FLITE_VOICE, type FliteVoice, type FliteVoiceParams } from './flite.js';
export { LocalSpeechSynthesizer, offlineTtsEngine, type OfflineTtsEngine, type LocalSynthesizerOptions } from './synthesizer.js';
export { TemplateChatModel, composeReply, composeInsight, extractFacts, MIN_REPLY_CHARS, type TemplateChatOptions } from './template.js';
export {
  PITCH_CALIBRATION,
  RATE_CALIBRATION,
  VARIANT_SPLIT_F0_HZ,
  FLITE_NATURAL,
  pitchForF0,
  speedForSyllableRate,
  expectedF0Hz,
  variantForF0,
  fliteVoiceForF0,
  type EspeakVariant,
  type FlitePreviewVoice,
} from './calibration.js';
export { ESPEAK_INSTALL_HINT, FLITE_INSTALL_HINT, POCKETSPHINX_INSTALL_HINT } from './process.js';

/** Options of {@link createLocalProviders}. */
export interface LocalProvidersOptions {
  /** Seconds of enrollment speech before the preview voice is made (default 20). */
  minSpeechSec?: number;
  /** pocketsphinx model folder (default /usr/share/pocketsphinx/model/en-us). */
  pocketsphinxModelDir?: string;
  /** Seed of the template chat model when a request carries none. */
  seed?: number;
  /** Offline TTS engine for English; default flite (the app passes `OFFLINE_TTS` from its config). */
  engine?: OfflineTtsEngine;
  logger?: Logger;
}

/**
 * The offline {@link Providers}: `stt` pocketsphinx (not reliable), `chat` template, `cloner`
 * flite preview voice fitted to the speaker (espeak-ng when flite is missing or
 * `engine` is `espeak-ng`), `tts` flite with espeak-ng for other languages and as the fallback.
 * Nothing is spawned until first use; call {@link checkLocalTools} at start-up to fail early.
 */
export function createLocalProviders(options: LocalProvidersOptions = {}): Providers {
  const logger = options.logger?.child({ provider: 'local' });
  const engine = options.engine ?? 'flite';
  return {
    stt: new PocketsphinxSpeechToText({ ...(options.pocketsphinxModelDir ? { modelDir: options.pocketsphinxModelDir } : {}), ...(logger ? { logger } : {}) }),
    chat: new TemplateChatModel(options.seed !== undefined ? { defaultSeed: options.seed } : {}),
    cloner: new OfflinePreviewCloner({ engine, ...(options.minSpeechSec !== undefined ? { minSpeechSec: options.minSpeechSec } : {}), ...(logger ? { logger } : {}) }),
    tts: new LocalSpeechSynthesizer({ engine, ...(logger ? { logger } : {}) }),
  };
}

/**
 * Checks that espeak-ng runs (`espeak-ng --version`), that `pocketsphinx_continuous` is installed,
 * and that the pocketsphinx model files exist; and whether flite runs with its voices
 * (`flite -lv`). flite is not required — the offline voice falls back to espeak-ng — so a missing
 * flite is logged as a warning (when `options.logger` is given) and reported in the result.
 * @param options.pocketsphinxModelDir model folder to check (default /usr/share/pocketsphinx/model/en-us)
 * @returns `{ flite: true }` when flite and its rms, awb and slt voices are available
 * @throws DependencyError naming the missing tool or file, with the install command
 */
export async function checkLocalTools(options: { pocketsphinxModelDir?: string; timeoutMs?: number; logger?: Logger } = {}): Promise<{ flite: boolean }> {
  const paths = localToolPaths();
  const timeoutMs = options.timeoutMs ?? 10_000;
  let flite = false;
  try {
    const voices = await runLocalTool(paths.flite, ['-lv'], { provider: 'local', tool: 'flite', installHint: FLITE_INSTALL_HINT, timeoutMs });
    const listed = new Set(voices.stdout.toString('utf8').replace(/^.*:/, '').trim().split(/\s+/));
    flite = voices.exitCode === 0 && ['rms', 'awb', 'slt'].every((v) => listed.has(v));
  } catch (err) {
    if (!(err instanceof DependencyError)) throw err;
  }
  if (!flite) options.logger?.warn(`flite or its voices are missing; the offline voice falls back to espeak-ng (${FLITE_INSTALL_HINT})`);
  const espeak = await runLocalTool(paths.espeak, ['--version'], { provider: 'local', tool: 'espeak-ng', installHint: ESPEAK_INSTALL_HINT, timeoutMs });
  if (espeak.exitCode !== 0 || !/espeak/i.test(espeak.stdout.toString('utf8'))) throw new DependencyError('espeak-ng', ESPEAK_INSTALL_HINT);
  // pocketsphinx_continuous has no --version; with no arguments it prints its options to stderr and exits non-zero.
  const sphinx = await runLocalTool(paths.pocketsphinx, [], { provider: 'pocketsphinx', tool: 'pocketsphinx_continuous', installHint: POCKETSPHINX_INSTALL_HINT, timeoutMs });
  if (!/-hmm|-infile|Arguments list/i.test(sphinx.stderr)) throw new DependencyError('pocketsphinx_continuous', POCKETSPHINX_INSTALL_HINT);
  await new PocketsphinxSpeechToText(options.pocketsphinxModelDir ? { modelDir: options.pocketsphinxModelDir } : {}).checkModel();
  return { flite };
}
