/**
 * A small pool of worker threads for CPU-bound audio work — Opus encoding of replies, Ogg/Opus
 * decoding of incoming voice notes, enrollment-sample analysis — so it never blocks the event loop
 * (bot polling, heartbeats, other users' turns), and a long reply is encoded on several cores at
 * once. Built on Piscina (https://github.com/piscinajs/piscina); idle workers do not keep the
 * process alive. Every function here falls back to the calling thread when the pool is off
 * (`setAudioWorkerThreads(0)`) or has failed, with the same result (see {@link onAudioWorkers}).
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { PcmAudio } from '../providers.js';
import type { SampleAnalysis } from './types.js';
import { analyseSample } from './analysis.js';
import { decodeOggOpusInProcess, type OpusChunkJob } from './opus.js';
import type { OpusChunkRunner } from './opus-chunks.js';
import type { AudioTaskFailure, AudioWorkerResults, AudioWorkerTask } from './worker-tasks.js';

/** Default worker count: one per core, at most 4. */
export function defaultAudioWorkerThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

let threads = defaultAudioWorkerThreads();
let pool: Piscina<AudioWorkerTask, unknown> | undefined;
/** Set when the pool could not run a task: later work stays in the calling thread. */
let broken: Error | undefined;

/**
 * Sets how many worker threads do audio work; 0 keeps it all in the calling thread. A running pool
 * of another size is closed and replaced on next use.
 * @throws RangeError for a negative or non-integer count
 */
export function setAudioWorkerThreads(count: number): void {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`audio worker threads must be a non-negative integer, got ${count}`);
  if (count === threads) return;
  threads = count;
  broken = undefined;
  void closeAudioWorkers();
}

/** The configured worker count (0 = in-thread), or 0 after the pool has failed. */
export function audioWorkerThreads(): number {
  return broken ? 0 : threads;
}

/** Why the pool was given up, if it was (for start-up diagnostics). */
export function audioWorkersError(): Error | undefined {
  return broken;
}

/**
 * Runs one task on the pool. An error thrown by the task (libopus refusing a frame, say) is
 * rethrown as an {@link AudioTaskError}; a failure of the pool itself (a worker that cannot start
 * or dies) turns the pool off and is rethrown as it is.
 */
async function runTask<K extends AudioWorkerTask['kind']>(task: Extract<AudioWorkerTask, { kind: K }>, transferList: ArrayBuffer[] = []): Promise<AudioWorkerResults[K]> {
  pool ??= new Piscina({
    filename: new URL('./worker.mjs', import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: 60_000,
  });
  let result: unknown;
  try {
    result = await pool.run(task, { transferList });
  } catch (err) {
    broken = err instanceof Error ? err : new Error(String(err));
    throw err;
  }
  if (typeof result === 'object' && result !== null && 'taskFailed' in result) throw new AudioTaskError((result as AudioTaskFailure).taskFailed);
  return result as AudioWorkerResults[K];
}

/** An audio task that threw on a worker thread (the pool itself is fine). */
export class AudioTaskError extends Error {
  override name = 'AudioTaskError';
}

/**
 * Starts the workers and loads their code now, so the first voice note does not pay for it (about
 * 0.3 s). Never throws: a pool that cannot start is recorded and audio work stays in-thread.
 */
export async function warmAudioWorkers(): Promise<void> {
  if (audioWorkerThreads() === 0) return;
  try {
    await Promise.all(Array.from({ length: threads }, () => runTask({ kind: 'ping' })));
  } catch {
    // Recorded in `broken` by runTask.
  }
}

/**
 * Encodes Opus pieces on the pool, all at once (the pool queues what exceeds its threads). Each
 * job's samples are moved to the worker (the buffer is detached here afterwards).
 * @returns each job's packets, or undefined for a job the worker could not encode in-process
 * @throws AudioTaskError when libopus fails on a piece; Error when the pool itself fails (the
 *   caller falls back to this thread either way)
 */
export const encodeChunksInWorkers: OpusChunkRunner = async (jobs: OpusChunkJob[]) => {
  const results = await Promise.all(jobs.map((job) => runTask({ kind: 'encode-opus', job }, [job.samples.buffer as ArrayBuffer])));
  return results.map((r) => {
    if (r === undefined) return undefined;
    const packets: Buffer[] = [];
    const bytes = Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
    let offset = 0;
    for (const length of r.lengths) {
      packets.push(bytes.subarray(offset, offset + length));
      offset += length;
    }
    return packets;
  });
};

/**
 * Runs `work` on the pool when it is on, else (or when the pool itself fails, which turns it off)
 * `fallback` in this thread. An error thrown by the task on a worker ({@link AudioTaskError}) is
 * rethrown, not retried here: the same code would fail the same way.
 */
export async function onAudioWorkers<T>(work: () => Promise<T>, fallback: () => T | Promise<T>): Promise<T> {
  if (audioWorkerThreads() > 0) {
    try {
      return await work();
    } catch (err) {
      if (err instanceof AudioTaskError) throw err;
    }
  }
  return fallback();
}

/**
 * `decodeOggOpusInProcess` (see `opus.ts`) on a worker thread: same arguments and result. The
 * file is copied (at most MAX_AUDIO_BYTES) and the copy moved to the worker.
 * @returns mono PCM at `sampleRateHz`, or undefined when the in-process decoder does not apply
 */
export function decodeOggOpusOffThread(bytes: Buffer, sampleRateHz: number, maxDurationSec?: number): Promise<PcmAudio | undefined> {
  return onAudioWorkers(
    () => {
      const copy = new Uint8Array(bytes);
      return runTask({ kind: 'decode-opus', bytes: copy, sampleRateHz, ...(maxDurationSec !== undefined ? { maxDurationSec } : {}) }, [copy.buffer]);
    },
    () => decodeOggOpusInProcess(bytes, sampleRateHz, maxDurationSec),
  );
}

/**
 * `analyseSample` (see `analysis.ts`) on a worker thread: same measurements. The samples are
 * copied to the worker; the caller's stay intact.
 * @throws AudioTaskError when the analysis throws on the worker
 */
export function analyseSampleOffThread(pcm: PcmAudio): Promise<SampleAnalysis> {
  return onAudioWorkers(
    () => runTask({ kind: 'analyse-sample', pcm }),
    () => analyseSample(pcm),
  );
}

/**
 * Stops the workers once their running tasks are done (they restart on next use). Safe to call at
 * any time. Graceful on purpose: terminating a thread inside a native libopus call aborts the
 * whole process ("napi_throw" fatal error).
 */
export async function closeAudioWorkers(): Promise<void> {
  const p = pool;
  pool = undefined;
  if (p) await p.close();
}
