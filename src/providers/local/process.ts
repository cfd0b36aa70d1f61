/**
 * Running the offline tools (flite, espeak-ng, pocketsphinx_continuous) as child processes over pipes,
 * with their own install hints. Built on `runTool` from the audio pipeline (timeout, abort,
 * output cap, SIGKILL on either); this module only maps its errors to provider errors.
 */
import { AudioToolError, runTool, type ToolResult } from '../../core/audio/process.js';
import { DependencyError, ProviderError } from '../../core/errors.js';

/** Install hint for espeak-ng (Debian/Ubuntu package `espeak-ng`). */
export const ESPEAK_INSTALL_HINT =
  'install espeak-ng: `apt-get install espeak-ng` on Debian/Ubuntu, `apk add espeak-ng` on Alpine, `brew install espeak-ng` on macOS; or set ESPEAK_NG_PATH';

/** Install hint for flite (Debian/Ubuntu package `flite`, in Debian main; it bundles the voices used here). */
export const FLITE_INSTALL_HINT =
  'install flite: `apt-get install flite` on Debian/Ubuntu (it includes the rms, slt and awb voices), `brew install flite` on macOS; or set FLITE_PATH';

/** Install hint for pocketsphinx_continuous and its US English model (Debian packages `pocketsphinx`, `pocketsphinx-en-us`). */
export const POCKETSPHINX_INSTALL_HINT =
  'install pocketsphinx and its US English model: `apt-get install pocketsphinx pocketsphinx-en-us` on Debian/Ubuntu; ' +
  'or set POCKETSPHINX_PATH to the binary and POCKETSPHINX_MODEL_DIR to a model folder holding en-us/, en-us.lm.bin and cmudict-en-us.dict';

/** Binary paths: `FLITE_PATH` / `ESPEAK_NG_PATH` / `POCKETSPHINX_PATH` from the environment, else found on PATH. */
export function localToolPaths(): { flite: string; espeak: string; pocketsphinx: string } {
  return {
    flite: process.env.FLITE_PATH || 'flite',
    espeak: process.env.ESPEAK_NG_PATH || 'espeak-ng',
    pocketsphinx: process.env.POCKETSPHINX_PATH || 'pocketsphinx_continuous',
  };
}

/** Options of {@link runLocalTool}. */
export interface LocalToolRun {
  /** Provider name put on errors (`local`, `pocketsphinx`). */
  provider: string;
  /** Tool name for messages and DependencyError (`espeak-ng`, `pocketsphinx_continuous`). */
  tool: string;
  installHint: string;
  input?: Buffer;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Largest stdout accepted, bytes. */
  maxStdoutBytes?: number;
  /** Run in its own process group, killed as a whole on timeout or abort (for `sh -c` pipelines). */
  processGroup?: boolean;
}

/**
 * Runs `command args…` and returns its result; a non-zero exit is returned, not thrown.
 *
 * @throws DependencyError when the binary is missing (spawn ENOENT), with `installHint`
 * @throws ProviderError (retryable) on timeout; (not retryable) when stdout exceeds the cap
 * @throws the abort reason when `signal` aborts
 */
export async function runLocalTool(command: string, args: readonly string[], options: LocalToolRun): Promise<ToolResult> {
  try {
    return await runTool(command, args, {
      timeoutMs: options.timeoutMs,
      label: options.tool,
      ...(options.input ? { input: options.input } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.maxStdoutBytes ? { maxStdoutBytes: options.maxStdoutBytes } : {}),
      ...(options.processGroup ? { processGroup: true } : {}),
    });
  } catch (err) {
    if (err instanceof DependencyError) throw new DependencyError(options.tool, options.installHint);
    if (err instanceof AudioToolError) {
      throw new ProviderError(options.provider, err.message, { retryable: /timed out/.test(err.message), cause: err });
    }
    throw err;
  }
}

/** The last few lines of a tool's stderr, for error messages. */
export function stderrTail(stderr: string, lines = 3): string {
  return stderr.trim().split('\n').slice(-lines).join(' | ');
}
