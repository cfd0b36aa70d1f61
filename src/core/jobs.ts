/**
 * The job queue as the core sees it: durable, plain-data jobs with per-key order. A queue engine
 * sits behind this interface like a vendor behind a provider interface (see DESIGN.md):
 * `src/queue/embedded.ts` (a durable queue in an embedded SQLite file, the one-process default) and
 * `src/queue/bullmq.ts` (BullMQ on Redis, several processes).
 *
 * Semantics every implementation keeps:
 * - **Durable**: a job is stored before `enqueue` resolves; a process killed while running it
 *   (`kill -9`) does not lose it: it runs again (at-least-once).
 * - **Deduplicated by id**: enqueuing an id that is queued, running, or finished within the
 *   retention period does nothing (`created: false`). "Done" is marked when the handler returns,
 *   so a redelivered message whose first run was interrupted still runs.
 * - **Per-key order**: jobs with the same `key` run one at a time, in enqueue order, across
 *   processes; different keys run concurrently.
 * - **Bounded retries**: a handler that throws is retried with exponential backoff up to
 *   `maxAttempts`; then the job is kept as failed (`failed()`) for inspection.
 */

/** What a job carries: JSON-safe data only (no functions, no Buffers, no class instances). */
export type JobData = Record<string, unknown>;

/** A job as a handler receives it. */
export interface Job<T extends JobData = JobData> {
  id: string;
  kind: string;
  /** The ordering key (e.g. the user key); jobs of one key never run concurrently. */
  key: string;
  data: T;
  /** 1 on the first run, 2 on the first retry… */
  attempt: number;
  /** Attempts allowed before the job is kept as failed. */
  maxAttempts: number;
  /** When it was enqueued, ms since the epoch. */
  enqueuedAtMs: number;
}

/** Runs one job. Throwing schedules a retry (or ends the job as failed after the last attempt). */
export type JobHandler<T extends JobData = JobData> = (job: Job<T>) => Promise<void>;

/** Options of {@link JobQueue.enqueue}. */
export interface EnqueueOptions {
  /** Unique id; enqueuing an id again while the job exists is a no-op (deduplication). */
  id: string;
  /** Ordering key: jobs with the same key run one at a time, in order. */
  key: string;
  /** Attempts before the job is kept as failed; default 3. */
  maxAttempts?: number;
}

/** Result of {@link JobQueue.enqueue}. */
export interface EnqueueResult {
  id: string;
  /** False when a job with that id already existed (queued, running, done or failed). */
  created: boolean;
}

/** Counts and latencies of one kind of job. */
export interface JobKindStats {
  kind: string;
  /** Waiting to run (including retries waiting for their backoff). */
  queued: number;
  running: number;
  /** Finished successfully and still retained (for deduplication). */
  done: number;
  failed: number;
  /** Enqueue → finish latency of the most recent finished jobs, ms (p50/p95); absent when none. */
  latencyMs?: { p50: number; p95: number; count: number };
}

/** A job that used up its attempts, kept for inspection (`voicetwin jobs --failed`). */
export interface FailedJob {
  id: string;
  kind: string;
  key: string;
  attempts: number;
  /** The last error's message. */
  error: string;
  failedAtMs: number;
}

/** A durable job queue; see the module comment for the guarantees. */
export interface JobQueue {
  /** `embedded` (SQLite) or `bullmq` (Redis). */
  readonly engine: 'embedded' | 'bullmq';
  /**
   * Stores a job; resolves once it is durable.
   * @throws Error when the backend cannot store it (the caller must not acknowledge its input)
   */
  enqueue(kind: string, data: JobData, options: EnqueueOptions): Promise<EnqueueResult>;
  /** Registers the handler of a kind. Call before {@link start}; jobs of kinds with no handler wait. */
  process<T extends JobData>(kind: string, handler: JobHandler<T>): void;
  /** Starts running jobs (recovers the jobs of a crashed process first). */
  start(): Promise<void>;
  /** Per-kind counts and latencies. */
  stats(): Promise<JobKindStats[]>;
  /** Jobs kept as failed, newest first (at most `limit`, default 50). */
  failed(limit?: number): Promise<FailedJob[]>;
  /** Resolves when no job of this process is running and none of the kinds it handles is waiting (retries included). */
  whenIdle(): Promise<void>;
  /**
   * Deletes the jobs (in any state, data included) whose ordering key is one of `keys`: a person's
   * turns and clone jobs when they delete their data. A job that is running right now may finish;
   * on BullMQ it cannot be removed while locked and expires with the finished jobs.
   * @returns the ids of the jobs deleted (turn job ids are inbound message ids)
   */
  forget?(keys: readonly string[]): Promise<string[]>;
  /**
   * Graceful shutdown: stops taking jobs, waits up to `graceMs` (default 10 s) for running ones,
   * returns the rest to the queue, closes connections.
   */
  close(graceMs?: number): Promise<void>;
}

/** Thrown by a handler to end a job at once as failed, without retries (the input can never work). */
export class PermanentJobError extends Error {
  override readonly name = 'PermanentJobError';
}

/** Exponential backoff before retry `attempt + 1`, ms: 500, 2000, 8000… capped at 60 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(60_000, 500 * 4 ** Math.max(0, attempt - 1));
}

/** p50/p95 of a list of durations, ms; undefined for an empty list. */
export function latencySummary(values: number[]): JobKindStats['latencyMs'] {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: Math.round(at(0.5)), p95: Math.round(at(0.95)), count: sorted.length };
}
