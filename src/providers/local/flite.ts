/**
 * Offline text-to-speech with flite (CMU Flite 2.2, Debian main package `flite`,
 * http://cmuflite.org; options from `flite --help`: `-voice`, `-f` text file, `-o` WAV file,
 * `--setf feature=value`). The voices used are the ones compiled into Debian's flite:
 * `rms` (US male), `awb` (Scottish male) and `slt` (US female), all 16 kHz.
 *
 * Two features of flite's own prosody model set the preview voice: `int_f0_target_mean` (Hz), the
 * mean of the generated pitch contour, and `duration_stretch` (a factor on every segment's
 * duration; 1 = the voice's own pace, above 1 = slower). Pitch is set inside the synthesizer rather
 * than by resampling or a pitch-shifting filter afterwards: shifting the rms voice with ffmpeg's
 * `rubberband` filter by ×0.8 and ×1.8 raised the round-trip word error rate from 3% to 64% and
 * 100%, while `int_f0_target_mean` from 85 to 300 Hz kept it between 5% and 13% (bench `offline`).
 * `rms` ignores `int_f0_target_mean`, so it is only the default voice, never a matched one.
 *
 * flite cannot write a WAV to a pipe when it reads a text file (it appends each utterance to the
 * output file and rewrites the header), so each call works in a private temporary folder (mode
 * 0700): the text goes into a file there, never into the argument list or a shell. The folder is
 * removed on every path (success, flite error, timeout, abort), retried while a killed child is
 * still writing into it; folders of a process that died mid-call are swept on the next start.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ProviderError } from '../../core/errors.js';
import { FLITE_INSTALL_HINT, localToolPaths, runLocalTool, stderrTail } from './process.js';

/** The flite voices the offline stack uses. */
export type FliteVoice = 'rms' | 'awb' | 'slt';

/** Every {@link FliteVoice}, for validation. */
export const FLITE_VOICES: readonly FliteVoice[] = ['rms', 'awb', 'slt'];

/** Voices whose pitch follows `int_f0_target_mean` (rms keeps its own). */
export const PITCH_CONTROLLABLE_VOICES: readonly FliteVoice[] = ['awb', 'slt'];

/** The voice used when no voice is given: rms, the most intelligible one (bench `offline`). */
export const DEFAULT_FLITE_VOICE: FliteVoice = 'rms';

/** Bounds of `f0TargetHz`, Hz (the range the pitch analysis can measure). */
export const F0_TARGET_MIN_HZ = 60;
export const F0_TARGET_MAX_HZ = 400;
/** Bounds of `durationStretch` (0.4 = 2.5× faster segments, 2.5 = 2.5× slower). */
export const DURATION_STRETCH_MIN = 0.4;
export const DURATION_STRETCH_MAX = 2.5;

/** flite settings of an offline voice, stored in `ClonedVoice.params` (omitted = the voice's own). */
export interface FliteVoiceParams {
  fliteVoice: FliteVoice;
  /** `int_f0_target_mean`, Hz, 60–400; ignored by `rms`. */
  f0TargetHz?: number;
  /** `duration_stretch`, 0.4–2.5; above 1 is slower. */
  durationStretch?: number;
}

/**
 * Reads {@link FliteVoiceParams} from a voice's `params` (other fields are ignored).
 * @throws ProviderError (not retryable) naming the bad field when a value is missing or out of range
 */
export function parseFliteParams(params: Record<string, unknown>): FliteVoiceParams {
  const bad = (field: string, value: unknown): never => {
    throw new ProviderError('local', `invalid flite voice parameter ${field}=${JSON.stringify(value)}`, { retryable: false });
  };
  const voice = params.fliteVoice;
  if (typeof voice !== 'string' || !(FLITE_VOICES as readonly string[]).includes(voice)) bad('fliteVoice', voice);
  const out: FliteVoiceParams = { fliteVoice: voice as FliteVoice };
  const numeric = (field: 'f0TargetHz' | 'durationStretch', min: number, max: number): void => {
    const value = params[field];
    if (value === undefined) return;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) bad(field, value);
    out[field] = value as number;
  };
  numeric('f0TargetHz', F0_TARGET_MIN_HZ, F0_TARGET_MAX_HZ);
  numeric('durationStretch', DURATION_STRETCH_MIN, DURATION_STRETCH_MAX);
  return out;
}

/** `true` when `params` name a flite voice (`fliteVoice` is set), whatever else they hold. */
export function isFliteParams(params: Record<string, unknown>): boolean {
  return params.fliteVoice !== undefined;
}

/** flite arguments for `params`, reading the text from `textFile` and writing `wavFile`. */
export function fliteArgs(params: FliteVoiceParams, textFile: string, wavFile: string): string[] {
  const args = ['-voice', params.fliteVoice];
  if (params.f0TargetHz !== undefined) args.push('--setf', `int_f0_target_mean=${params.f0TargetHz.toFixed(1)}`);
  if (params.durationStretch !== undefined) args.push('--setf', `duration_stretch=${params.durationStretch.toFixed(3)}`);
  args.push('-f', textFile, '-o', wavFile);
  return args;
}

/** Prefix of the per-call temporary folders (`<tmp>/voicetwin-flite-XXXXXX`). */
export const FLITE_TEMP_PREFIX = 'voicetwin-flite-';

/**
 * `fs.rm` settings for a call's folder: retried (ENOTEMPTY, EBUSY, EPERM) up to 5 times, 100 ms
 * apart and growing, while a killed child may still be writing into it
 * (https://nodejs.org/api/fs.html#fspromisesrmpath-options).
 */
const RM_OPTIONS = { recursive: true, force: true, maxRetries: 5, retryDelay: 100 } as const;

/** Delay before one last removal attempt when the retries did not manage it, ms. */
const LATE_REMOVAL_MS = 5_000;

/** Options of {@link runFlite}. */
export interface RunFliteOptions {
  /** Binary; default `FLITE_PATH` or `flite` on PATH. */
  binaryPath?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Folder in which the per-call folder is made; default `os.tmpdir()`. */
  tmpRoot?: string;
  /** Told when a call's folder could not be removed even after retries (it is tried once more later). */
  onCleanupError?: (dir: string, err: unknown) => void;
}

/**
 * Speaks `text` with flite under `params` and returns flite's WAV: 16 kHz mono 16-bit PCM for the
 * three voices. Nothing is checked about the audio (see the synthesizer for that).
 *
 * @throws DependencyError when flite is missing (with the apt-get hint)
 * @throws ProviderError (not retryable) when flite exits with an error or writes no file;
 *   (retryable) on timeout
 * @throws the abort reason when `signal` aborts
 */
export async function runFlite(text: string, params: FliteVoiceParams, options: RunFliteOptions): Promise<Buffer> {
  const dir = await mkdtemp(path.join(options.tmpRoot ?? tmpdir(), FLITE_TEMP_PREFIX));
  try {
    const textFile = path.join(dir, 'text.txt');
    const wavFile = path.join(dir, 'speech.wav');
    await writeFile(textFile, text, { encoding: 'utf8', mode: 0o600 });
    const result = await runLocalTool(options.binaryPath ?? localToolPaths().flite, fliteArgs(params, textFile, wavFile), {
      provider: 'local',
      tool: 'flite',
      installHint: FLITE_INSTALL_HINT,
      timeoutMs: options.timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (result.exitCode !== 0) {
      throw new ProviderError('local', `flite exited with ${result.exitCode ?? 'a signal'}: ${stderrTail(result.stderr)}`, { retryable: false });
    }
    return await readFile(wavFile).catch(() => {
      throw new ProviderError('local', 'flite wrote no audio file', { retryable: false });
    });
  } finally {
    await removeDir(dir, options.onCleanupError);
  }
}

/**
 * Removes a call's folder with retries; never throws (a cleanup failure must not hide the call's
 * own error or result). When the retries fail, one more attempt runs after 5 s.
 */
async function removeDir(dir: string, onError?: (dir: string, err: unknown) => void): Promise<void> {
  try {
    await rm(dir, RM_OPTIONS);
  } catch (err) {
    onError?.(dir, err);
    setTimeout(() => void rm(dir, RM_OPTIONS).catch(() => undefined), LATE_REMOVAL_MS).unref();
  }
}

/**
 * Removes `voicetwin-flite-*` folders in `tmpRoot` (default `os.tmpdir()`) last changed more than
 * `maxAgeMs` ago (default 10 minutes, far above any call's timeout): what a process killed in the
 * middle of a call left behind. Folders of other users or still in use are left alone.
 * @returns the number of folders removed; never throws
 */
export async function sweepStaleFliteDirs(options: { tmpRoot?: string; maxAgeMs?: number; nowMs?: number } = {}): Promise<number> {
  const root = options.tmpRoot ?? tmpdir();
  const maxAgeMs = options.maxAgeMs ?? 10 * 60_000;
  const now = options.nowMs ?? Date.now();
  let removed = 0;
  let names: string[];
  try {
    names = (await readdir(root)).filter((name) => name.startsWith(FLITE_TEMP_PREFIX));
  } catch {
    return 0;
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  for (const name of names) {
    const dir = path.join(root, name);
    try {
      const info = await stat(dir);
      if (!info.isDirectory() || (uid !== undefined && info.uid !== uid) || now - info.mtimeMs < maxAgeMs) continue;
      await rm(dir, RM_OPTIONS);
      removed++;
    } catch {
      // Gone already, or not ours to remove.
    }
  }
  return removed;
}
