/**
 * Runs the system ffmpeg/ffprobe as child processes connected by pipes: input bytes on stdin,
 * output on stdout, stderr kept for error context. Every run has a timeout and honours an
 * AbortSignal; either one kills the child with SIGKILL.
 */
import { spawn } from 'node:child_process';
import { DependencyError } from '../errors.js';

/** Paths of the audio tools: `FFMPEG_PATH` / `FFPROBE_PATH` from the environment, else found on PATH. */
export function audioToolPaths(): { ffmpeg: string; ffprobe: string } {
  return {
    ffmpeg: process.env.FFMPEG_PATH || 'ffmpeg',
    ffprobe: process.env.FFPROBE_PATH || 'ffprobe',
  };
}

/** Install hint shown when ffmpeg or ffprobe is missing. */
export const FFMPEG_INSTALL_HINT =
  'install ffmpeg (it provides ffprobe too): `apt-get install ffmpeg` on Debian/Ubuntu, `apk add ffmpeg` on Alpine, ' +
  '`brew install ffmpeg` on macOS; or set FFMPEG_PATH and FFPROBE_PATH to the binaries';

/** A tool run that did not finish normally: timed out, produced too much output, or crashed. */
export class AudioToolError extends Error {
  override readonly name = 'AudioToolError';
  constructor(
    message: string,
    readonly tool: string,
    /** Tail of the tool's stderr (at most 8 KiB), for logs. */
    readonly stderr: string,
    readonly exitCode: number | null = null,
  ) {
    super(stderr ? `${message}: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : message);
  }
}

/** Options of {@link runTool}. */
export interface RunToolOptions {
  /** Bytes written to the child's stdin (stdin is closed after them; ignored when absent). */
  input?: Buffer;
  /** Kill the child and reject after this many milliseconds. */
  timeoutMs: number;
  /** Kill the child and reject with the signal's reason when aborted. */
  signal?: AbortSignal;
  /** Kill the child and reject when stdout grows beyond this many bytes (default 512 MiB). */
  maxStdoutBytes?: number;
  /** Short name for error messages (defaults to the command). */
  label?: string;
  /**
   * Run the child in its own process group and kill the whole group on timeout or abort (for a
   * shell pipeline, whose commands would otherwise outlive a killed shell).
   */
  processGroup?: boolean;
}

/** What a finished run left behind. A non-zero exit is reported here, not thrown. */
export interface ToolResult {
  stdout: Buffer;
  /** Tail of stderr (at most 8 KiB). */
  stderr: string;
  /** Exit code; null when the child died from a signal. */
  exitCode: number | null;
}

const STDERR_KEEP_BYTES = 8 * 1024;

/**
 * Spawns `command args…`, feeds `input` to stdin and collects stdout.
 *
 * Resolves when the child exits (whatever its exit code). An EPIPE on stdin is expected and
 * ignored: ffprobe stops reading once it has the headers it needs.
 *
 * @throws DependencyError when the command is not installed (spawn ENOENT)
 * @throws AudioToolError on timeout or when stdout exceeds `maxStdoutBytes`
 * @throws the abort reason (an `AbortError` by default) when `signal` aborts
 */
export function runTool(command: string, args: readonly string[], options: RunToolOptions): Promise<ToolResult> {
  const label = options.label ?? command;
  const maxStdoutBytes = options.maxStdoutBytes ?? 512 * 1024 * 1024;
  return new Promise<ToolResult>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(abortReason(options.signal));
      return;
    }
    const child = spawn(command, args, {
      stdio: [options.input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      windowsHide: true,
      detached: options.processGroup === true,
    });
    const stdoutChunks: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = Buffer.alloc(0);
    let settled = false;

    const finish = (err: unknown, result?: ToolResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (err !== undefined) reject(err);
      else resolve(result!);
    };
    const kill = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (options.processGroup && child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
          return;
        } catch {
          // The group is gone already; fall through to the child itself.
        }
      }
      child.kill('SIGKILL');
    };
    const stderrText = (): string => stderr.toString('utf8');

    const timer = setTimeout(() => {
      kill();
      finish(new AudioToolError(`${label} timed out after ${options.timeoutMs} ms`, label, stderrText()));
    }, options.timeoutMs);
    const onAbort = (): void => {
      kill();
      finish(abortReason(options.signal!));
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('error', (err: NodeJS.ErrnoException) => {
      kill();
      if (err.code === 'ENOENT') finish(new DependencyError(label, FFMPEG_INSTALL_HINT));
      else finish(new AudioToolError(`${label} could not run (${err.message})`, label, stderrText()));
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxStdoutBytes) {
        kill();
        finish(new AudioToolError(`${label} produced more than ${maxStdoutBytes} bytes`, label, stderrText()));
        return;
      }
      stdoutChunks.push(chunk);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = Buffer.concat([stderr, chunk]);
      if (stderr.length > STDERR_KEEP_BYTES) stderr = stderr.subarray(stderr.length - STDERR_KEEP_BYTES);
    });
    child.on('close', (exitCode) => {
      finish(undefined, { stdout: Buffer.concat(stdoutChunks, stdoutBytes), stderr: stderrText(), exitCode });
    });

    if (options.input && child.stdin) {
      // The child may exit before reading everything (EPIPE); its exit status tells what happened.
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.input);
    }
  });
}

function abortReason(signal: AbortSignal): unknown {
  if (signal.reason !== undefined) return signal.reason;
  const err = new Error('The operation was aborted');
  err.name = 'AbortError';
  return err;
}
