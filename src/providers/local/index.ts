/**
 * The offline provider stack: pocketsphinx speech-to-text, an espeak-ng preview voice matched to
 * the speaker's pitch and rate, espeak-ng text-to-speech and a template persona engine. Runs the
 * whole loop with no API key; every voice it makes is labelled as an approximation.
 */
import type { Logger } from '../../core/log.js';
import type { Providers } from '../../core/providers.js';
import { EspeakPreviewCloner } from './cloner.js';
import { EspeakSpeechSynthesizer } from './espeak.js';
import { PocketsphinxSpeechToText } from './pocketsphinx.js';
import { ESPEAK_INSTALL_HINT, localToolPaths, POCKETSPHINX_INSTALL_HINT, runLocalTool } from './process.js';
import { TemplateChatModel } from './template.js';
import { DependencyError } from '../../core/errors.js';

export { PocketsphinxSpeechToText, parseHypotheses, DEFAULT_POCKETSPHINX_MODEL_DIR, POCKETSPHINX_FAST_ARGS, type PocketsphinxOptions } from './pocketsphinx.js';
export {
  EspeakSpeechSynthesizer,
  parseEspeakParams,
  espeakArgs,
  fixStreamedWavSizes,
  DEFAULT_ESPEAK_VOICE,
  LOCAL_PROVIDER,
  type EspeakVoiceParams,
  type EspeakSynthesizerOptions,
} from './espeak.js';
export { EspeakPreviewCloner, measureSpeaker, previewParams, DEFAULT_PREVIEW_MIN_SPEECH_SEC, type PreviewVoiceParams, type SpeakerMeasurement, type PreviewClonerOptions } from './cloner.js';
export { TemplateChatModel, composeReply, composeInsight, extractFacts, MIN_REPLY_CHARS, type TemplateChatOptions } from './template.js';
export { PITCH_CALIBRATION, RATE_CALIBRATION, VARIANT_SPLIT_F0_HZ, pitchForF0, speedForSyllableRate, expectedF0Hz, variantForF0, type EspeakVariant } from './calibration.js';
export { ESPEAK_INSTALL_HINT, POCKETSPHINX_INSTALL_HINT } from './process.js';

/** Options of {@link createLocalProviders}. */
export interface LocalProvidersOptions {
  /** Seconds of enrollment speech before the preview voice is made (default 20). */
  minSpeechSec?: number;
  /** pocketsphinx model folder (default /usr/share/pocketsphinx/model/en-us). */
  pocketsphinxModelDir?: string;
  /** Seed of the template chat model when a request carries none. */
  seed?: number;
  logger?: Logger;
}

/**
 * The offline {@link Providers}: `stt` pocketsphinx (not reliable), `chat` template, `cloner`
 * espeak-ng preview voice, `tts` espeak-ng. Nothing is spawned until first use; call
 * {@link checkLocalTools} at start-up to fail early.
 */
export function createLocalProviders(options: LocalProvidersOptions = {}): Providers {
  const logger = options.logger?.child({ provider: 'local' });
  return {
    stt: new PocketsphinxSpeechToText({ ...(options.pocketsphinxModelDir ? { modelDir: options.pocketsphinxModelDir } : {}), ...(logger ? { logger } : {}) }),
    chat: new TemplateChatModel(options.seed !== undefined ? { defaultSeed: options.seed } : {}),
    cloner: new EspeakPreviewCloner({ ...(options.minSpeechSec !== undefined ? { minSpeechSec: options.minSpeechSec } : {}), ...(logger ? { logger } : {}) }),
    tts: new EspeakSpeechSynthesizer(logger ? { logger } : {}),
  };
}

/**
 * Checks that espeak-ng runs (`espeak-ng --version`), that `pocketsphinx_continuous` is installed,
 * and that the pocketsphinx model files exist.
 * @param options.pocketsphinxModelDir model folder to check (default /usr/share/pocketsphinx/model/en-us)
 * @throws DependencyError naming the missing tool or file, with the install command
 */
export async function checkLocalTools(options: { pocketsphinxModelDir?: string; timeoutMs?: number } = {}): Promise<void> {
  const paths = localToolPaths();
  const timeoutMs = options.timeoutMs ?? 10_000;
  const espeak = await runLocalTool(paths.espeak, ['--version'], { provider: 'local', tool: 'espeak-ng', installHint: ESPEAK_INSTALL_HINT, timeoutMs });
  if (espeak.exitCode !== 0 || !/espeak/i.test(espeak.stdout.toString('utf8'))) throw new DependencyError('espeak-ng', ESPEAK_INSTALL_HINT);
  // pocketsphinx_continuous has no --version; with no arguments it prints its options to stderr and exits non-zero.
  const sphinx = await runLocalTool(paths.pocketsphinx, [], { provider: 'pocketsphinx', tool: 'pocketsphinx_continuous', installHint: POCKETSPHINX_INSTALL_HINT, timeoutMs });
  if (!/-hmm|-infile|Arguments list/i.test(sphinx.stderr)) throw new DependencyError('pocketsphinx_continuous', POCKETSPHINX_INSTALL_HINT);
  await new PocketsphinxSpeechToText(options.pocketsphinxModelDir ? { modelDir: options.pocketsphinxModelDir } : {}).checkModel();
}
