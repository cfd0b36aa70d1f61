/**
 * A small pool of worker threads for CPU-bound codec work (Opus encoding of reply voice notes), so
 * a reply being encoded never blocks the event loop (bot polling, heartbeats, other users' turns)
 * and a long reply is encoded on several cores at once. Built on Piscina
 * (https://github.com/piscinajs/piscina); idle workers do not keep the process alive.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { OpusChunkJob } from './opus.js';
import type { OpusChunkRunner } from './opus-chunks.js';
import type { AudioWorkerTask, EncodedPackets } from './worker-tasks.js';

/** Default worker count: one per core, at most 4. */
export function defaultAudioWorkerThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

let threads = defaultAudioWorkerThreads();
let pool: Piscina<AudioWorkerTask, EncodedPackets | undefined | 'pong'> | undefined;
/** Set when the pool could not run a task: later encodes stay in this thread. */
let broken: Error | undefined;

/**
 * Sets how many worker threads encode voice notes; 0 keeps all codec work in the calling thread.
 * A running pool of another size is closed and replaced on next use.
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

function getPool(): NonNullable<typeof pool> {
  pool ??= new Piscina({
    filename: new URL('./worker.mjs', import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: 60_000,
  });
  return pool;
}

/**
 * Starts the workers and loads their code now, so the first reply does not pay for it (about
 * 0.3 s). Never throws: a pool that cannot start is recorded and codec work stays in-thread.
 */
export async function warmAudioWorkers(): Promise<void> {
  if (audioWorkerThreads() === 0) return;
  try {
    const p = getPool();
    await Promise.all(Array.from({ length: threads }, () => p.run({ kind: 'ping' })));
  } catch (err) {
    broken = err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * Encodes Opus pieces on the pool, all at once (the pool queues what exceeds its threads).
 * @returns each job's packets, or undefined for a job the worker could not encode in-process
 * @throws Error when the pool itself fails (the caller falls back to this thread), or libopus does
 */
export const encodeChunksInWorkers: OpusChunkRunner = async (jobs: OpusChunkJob[]) => {
  const p = getPool();
  try {
    const results = await Promise.all(jobs.map((job) => p.run({ kind: 'encode-opus', job }, { transferList: [job.samples.buffer as ArrayBuffer] })));
    return results.map((r) => {
      if (r === undefined || r === 'pong') return undefined;
      const packets: Buffer[] = [];
      const bytes = Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
      let offset = 0;
      for (const length of r.lengths) {
        packets.push(bytes.subarray(offset, offset + length));
        offset += length;
      }
      return packets;
    });
  } catch (err) {
    broken = err instanceof Error ? err : new Error(String(err));
    throw err;
  }
};

/** Stops the workers (they restart on next use). Safe to call at any time. */
export async function closeAudioWorkers(): Promise<void> {
  const p = pool;
  pool = undefined;
  if (p) await p.destroy();
}
