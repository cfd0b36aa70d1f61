/**
 * The job queue on Redis with BullMQ (https://docs.bullmq.io), used when `REDIS_URL` is set, so
 * several processes share the work. Same guarantees as the embedded queue (see `core/jobs.ts`).
 *
 * What BullMQ gives us, used as documented:
 * - deduplication by job id (https://docs.bullmq.io/guide/jobs/job-ids): adding an id that exists
 *   is a no-op; finished jobs are kept `retentionMs` (`removeOnComplete.age`) so a redelivered
 *   message id stays recognised;
 * - retries with exponential backoff (https://docs.bullmq.io/guide/retrying-failing-jobs); jobs that
 *   use up their attempts are kept in the failed set (`removeOnFail: false`);
 * - stalled-job recovery (https://docs.bullmq.io/guide/workers/stalled-jobs): a job whose worker
 *   died loses its lock after `lockDuration` and is moved back to wait, up to `maxStalledCount` times;
 * - graceful shutdown (https://docs.bullmq.io/guide/workers/graceful-shutdown): `close` waits
 *   for the jobs in progress, then returns those still running to their queue (`Job.moveToWait`).
 *
 * Per-key order (a BullMQ Pro "groups" feature in the paid edition) is kept with partitions: a key
 * is hashed onto one of `partitions` queues, and each partition queue has a **global concurrency of
 * 1** (https://docs.bullmq.io/guide/queues/global-concurrency), so across every process at most one
 * job of a partition runs at a time, in FIFO order. Limits, documented in docs/queue.md: two keys
 * on the same partition wait for each other (head-of-line blocking; raise `QUEUE_PARTITIONS` for
 * more parallelism), and a job that fails and waits for its retry lets the next job of its
 * partition run first.
 *
 * Each process takes jobs itself (BullMQ's manual processing,
 * https://docs.bullmq.io/patterns/manually-fetching-jobs): while it has a free slot (at most
 * `concurrency` jobs at once) it asks the partitions in turn for their next job
 * (`getNextJob(token, { block: false })`, which returns nothing while the partition's one job is
 * running elsewhere), runs it through `Worker.processJob` (completion, failure and retries as
 * BullMQ does them), extends its lock while it runs, and runs the stalled-job checker. A process
 * never takes a job it cannot start, so adding processes adds capacity.
 */
import { createHash } from 'node:crypto';
import { Queue, Worker, type Job as BullJob } from 'bullmq';
import { Redis } from 'ioredis';
import { silentLogger, type Logger } from '../core/log.js';
import { RecordCipher, sealedKeyId } from '../core/store/record-cipher.js';
import {
  PermanentJobError,
  latencySummary,
  type EnqueueOptions,
  type EnqueueResult,
  type FailedJob,
  type Job,
  type JobData,
  type JobHandler,
  type JobKindStats,
  type JobQueue,
} from '../core/jobs.js';
import { UnrecoverableError } from 'bullmq';

/** Options of {@link BullQueue.open}. */
export interface BullQueueOptions {
  /** `redis://…` URL (`REDIS_URL`). */
  redisUrl: string;
  /** Prefix of every BullMQ key; default `voicetwin-jobs`. */
  prefix?: string;
  /** Number of partition queues (per-key order); default 16. */
  partitions?: number;
  /**
   * Kinds whose jobs go to a queue of their own (`k-<kind>`, global concurrency 1: one at a time,
   * in order) instead of their key's partition: long jobs, such as a broadcast that runs for
   * minutes, which would otherwise hold up every key hashed onto their partition for their whole
   * run. Every process must be opened with the same list. Default none.
   */
  ownQueueKinds?: readonly string[];
  /** Jobs this process runs at once; default 4. */
  concurrency?: number;
  /** Lock of a running job, ms; a dead worker's job is recovered after it. Default 30 000. */
  lockDurationMs?: number;
  /** How long finished jobs are kept (deduplication window), ms. Default 7 days. */
  retentionMs?: number;
  logger?: Logger;
  /**
   * The 32-byte data key: each job's data (which carries the inbound message, its text included)
   * is stored sealed with it, the job id as associated data. Without it data is stored as JSON.
   */
  dataKey?: Buffer;
}

interface Envelope {
  kind: string;
  key: string;
  /** Plain data (no data key, or written before sealing). */
  data?: JobData;
  /** The data sealed with the data key, the job id as associated data (see `record-cipher.ts`). */
  sealed?: string;
}

const REPLACE_FIELD_IF_SCRIPT = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1 else return 0 end`;

/** The partition a key belongs to: a stable hash, so every process agrees. */
export function partitionOf(key: string, partitions: number): number {
  return createHash('sha1').update(key).digest().readUInt32BE(0) % partitions;
}

/** The BullMQ job queue; see the module comment. */
export class BullQueue implements JobQueue {
  readonly engine = 'bullmq' as const;
  readonly #connection: Redis;
  readonly #queues: Queue[];
  readonly #workers: Worker[] = [];
  readonly #handlers = new Map<string, JobHandler>();
  readonly #log: Logger;
  readonly #options: Required<Omit<BullQueueOptions, 'logger' | 'redisUrl' | 'dataKey' | 'ownQueueKinds'>>;
  /** The queues of {@link BullQueueOptions.ownQueueKinds}, by kind. */
  readonly #kindQueues = new Map<string, Queue>();
  readonly #cipher: RecordCipher | undefined;
  /** Jobs running in this process: their run, and what returning them to the queue at shutdown needs. */
  readonly #active = new Map<Promise<unknown>, { job: BullJob; token: string; extender: NodeJS.Timeout }>();
  /** Runs whose job {@link close} returned to the queue. */
  readonly #returned = new Set<Promise<unknown>>();
  #started = false;
  #closing = false;
  #cursor = 0;
  #tokens = 0;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  private constructor(connection: Redis, options: BullQueueOptions) {
    this.#connection = connection;
    this.#log = (options.logger ?? silentLogger).child({ component: 'queue', engine: 'bullmq' });
    this.#cipher = options.dataKey ? new RecordCipher(options.dataKey) : undefined;
    this.#options = {
      prefix: options.prefix ?? 'voicetwin-jobs',
      partitions: options.partitions ?? 16,
      concurrency: options.concurrency ?? 4,
      lockDurationMs: options.lockDurationMs ?? 30_000,
      retentionMs: options.retentionMs ?? 7 * 24 * 3600 * 1000,
    };
    this.#queues = Array.from(
      { length: this.#options.partitions },
      (_, i) => new Queue(`p${i}`, { connection, prefix: this.#options.prefix }),
    );
    for (const kind of new Set(options.ownQueueKinds ?? [])) {
      const queue = new Queue(`k-${kind}`, { connection, prefix: this.#options.prefix });
      this.#kindQueues.set(kind, queue);
      this.#queues.push(queue);
    }
  }

  /**
   * Connects to Redis and sets the global concurrency of each partition (and own-kind queue) to 1.
   * @throws Error naming the URL (password masked) when Redis does not answer
   */
  static async open(options: BullQueueOptions): Promise<BullQueue> {
    // BullMQ workers need `maxRetriesPerRequest: null` (https://docs.bullmq.io/guide/connections).
    const connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
    connection.on('error', () => undefined);
    try {
      await connection.connect();
      await connection.ping();
    } catch (err) {
      connection.disconnect();
      throw new Error(`Cannot reach Redis for the job queue at ${options.redisUrl.replace(/\/\/[^@]*@/, '//***@')}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const queue = new BullQueue(connection, options);
    await Promise.all(queue.#queues.map((q) => q.setGlobalConcurrency(1)));
    return queue;
  }

  /**
   * Re-encrypts the sealed data of every job under `prefix` (every partition, every state) that is
   * not yet under `newKey`, for a data key rotation: walks the job hashes with `SCAN … TYPE hash`
   * (https://redis.io/docs/latest/commands/scan/) and replaces each job's `data` field with a
   * compare-and-set script, so a job changed meanwhile is left for the next run. Idempotent.
   * @param options.prefix the BullMQ key prefix (`<REDIS_NAMESPACE>-jobs`)
   * @returns how many jobs were re-encrypted and how many were already under the new key
   * @throws Error when Redis cannot be reached; RecordIntegrityError when a job's data opens with neither key
   */
  static async rekeyJobs(options: { redisUrl: string; prefix?: string; oldKey: Buffer; newKey: Buffer; onProgress?: (handled: number) => void }): Promise<{ rekeyed: number; current: number }> {
    const prefix = `${options.prefix ?? 'voicetwin-jobs'}:`;
    const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 3, lazyConnect: true });
    redis.on('error', () => undefined);
    await redis.connect();
    try {
      const cipher = new RecordCipher(options.newKey, [options.oldKey]);
      let rekeyed = 0;
      let current = 0;
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`, 'COUNT', 500, 'TYPE', 'hash');
        cursor = next;
        for (const key of keys) {
          const rest = key.slice(prefix.length);
          const sep = rest.indexOf(':');
          if (sep < 0) continue;
          const id = rest.slice(sep + 1);
          const stored = await redis.hget(key, 'data');
          if (!stored) continue;
          let envelope: Envelope;
          try {
            envelope = JSON.parse(stored) as Envelope;
          } catch {
            continue;
          }
          if (envelope.sealed === undefined && envelope.data === undefined) continue;
          if (sealedKeyId(envelope.sealed) === cipher.keyId) {
            current++;
            continue;
          }
          const data = envelope.sealed !== undefined ? cipher.open<JobData>(`queue-job:${id}`, envelope.sealed) : (envelope.data ?? {});
          const replaced: Envelope = { kind: envelope.kind, key: envelope.key, sealed: cipher.seal(`queue-job:${id}`, data) };
          const done = await redis.eval(REPLACE_FIELD_IF_SCRIPT, 1, key, 'data', stored, JSON.stringify(replaced));
          if (Number(done) === 1) rekeyed++;
          if ((rekeyed + current) % 500 === 0) options.onProgress?.(rekeyed + current);
        }
      } while (cursor !== '0');
      options.onProgress?.(rekeyed + current);
      return { rekeyed, current };
    } finally {
      redis.disconnect();
    }
  }

  /** The partition queue of a key. */
  #queueFor(key: string): Queue {
    return this.#queues[partitionOf(key, this.#options.partitions)]!;
  }

  async enqueue(kind: string, data: JobData, options: EnqueueOptions): Promise<EnqueueResult> {
    const queue = this.#kindQueues.get(kind) ?? this.#queueFor(options.key);
    // BullMQ ignores an add whose id exists; the look-up only tells the caller which happened.
    const existing = await queue.getJob(options.id);
    if (existing) return { id: options.id, created: false };
    const envelope: Envelope = this.#cipher
      ? { kind, key: options.key, sealed: this.#cipher.seal(`queue-job:${options.id}`, data) }
      : { kind, key: options.key, data };
    await queue.add(kind, envelope, {
      jobId: options.id,
      attempts: options.maxAttempts ?? 5,
      backoff: { type: 'exponential', delay: 500 },
      removeOnComplete: { age: Math.ceil(this.#options.retentionMs / 1000) },
      removeOnFail: false,
    });
    this.#wake?.();
    return { id: options.id, created: true };
  }

  process<T extends JobData>(kind: string, handler: JobHandler<T>): void {
    this.#handlers.set(kind, handler as JobHandler);
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    for (const queue of this.#queues) {
      const worker = new Worker(queue.name, (job) => this.#run(job), {
        connection: this.#connection,
        prefix: this.#options.prefix,
        lockDuration: this.#options.lockDurationMs,
        stalledInterval: this.#options.lockDurationMs,
        // A job interrupted by crashes is retried a few times, then kept as failed.
        maxStalledCount: 4,
        autorun: false,
      });
      worker.on('error', (err) => this.#log.error({ err, queue: queue.name }, 'queue worker error'));
      this.#workers.push(worker);
      await worker.startStalledCheckTimer();
    }
    this.#loop = this.#fetchLoop();
  }

  /** Takes jobs while there are free slots, asking the partitions in turn; waits briefly when none has one. */
  async #fetchLoop(): Promise<void> {
    const partitions = this.#workers.length;
    let idleMs = 25;
    while (!this.#closing) {
      let took = false;
      for (let i = 0; i < partitions && this.#active.size < this.#options.concurrency && !this.#closing; i++) {
        const index = (this.#cursor + i) % partitions;
        const worker = this.#workers[index]!;
        const token = `${worker.id}:${++this.#tokens}`;
        let job: BullJob | undefined;
        try {
          job = await worker.getNextJob(token, { block: false });
        } catch (err) {
          if (!this.#closing) this.#log.warn({ err, queue: worker.name }, 'could not fetch a job');
        }
        if (!job) continue;
        took = true;
        this.#track(worker, job, token);
      }
      this.#cursor = (this.#cursor + 1) % partitions;
      // Idle: poll again after 25 ms, backing off to 250 ms; a job finished or enqueued here wakes it.
      idleMs = took ? 25 : Math.min(250, idleMs * 2);
      if (!took || this.#active.size >= this.#options.concurrency) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.#active.size >= this.#options.concurrency ? 1000 : idleMs);
          this.#wake = () => {
            idleMs = 25;
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
      }
    }
  }

  /**
   * A job's data from its envelope: sealed (opened with the data key) or plain.
   * @throws UnrecoverableError when the data cannot be decrypted (wrong key, tampered, or no key)
   */
  #openData(id: string, envelope: Envelope): JobData {
    if (envelope.sealed === undefined) return envelope.data ?? {};
    if (!this.#cipher) throw new UnrecoverableError(`job ${id} holds sealed data and the queue was opened without the data key`);
    try {
      return this.#cipher.open<JobData>(`queue-job:${id}`, envelope.sealed);
    } catch (err) {
      throw new UnrecoverableError(err instanceof Error ? err.message : String(err));
    }
  }

  /** Runs a fetched job through BullMQ's own completion/failure handling, extending its lock meanwhile. */
  #track(worker: Worker, job: BullJob, token: string): void {
    const lockMs = this.#options.lockDurationMs;
    const extender = setInterval(() => void job.extendLock(token, lockMs).catch(() => undefined), Math.max(500, Math.floor(lockMs / 2)));
    const run = worker
      .processJob(job, token, () => false)
      .catch((err: unknown) => {
        // After a shutdown returned the job to the queue, its lock is gone and a late outcome is refused.
        if (this.#returned.has(run)) this.#log.info({ jobId: job.id }, 'a job returned to the queue at shutdown ended here; its outcome is ignored');
        else this.#log.error({ err, jobId: job.id }, 'job outcome not recorded; it will be recovered as stalled');
      })
      .finally(() => {
        clearInterval(extender);
        this.#active.delete(run);
        this.#wake?.();
      });
    this.#active.set(run, { job, token, extender });
  }

  /** The processor BullMQ calls through `processJob`. */
  async #run(bullJob: BullJob): Promise<void> {
    const envelope = bullJob.data as Envelope;
    const handler = this.#handlers.get(envelope.kind);
    if (!handler) throw new UnrecoverableError(`no handler for jobs of kind "${envelope.kind}" in this process`);
    const data = this.#openData(bullJob.id ?? '', envelope);
    const job: Job = {
      id: bullJob.id ?? '',
      kind: envelope.kind,
      key: envelope.key,
      data,
      attempt: bullJob.attemptsMade + 1,
      maxAttempts: bullJob.opts.attempts ?? 1,
      enqueuedAtMs: bullJob.timestamp,
    };
    try {
      await handler(job);
    } catch (err) {
      if (err instanceof PermanentJobError) throw new UnrecoverableError(err.message);
      throw err;
    }
  }

  /**
   * Deletes the jobs whose key is one of `keys` from their partitions (waiting, delayed, finished
   * and failed; an active job is locked by its worker and is left to expire with the finished
   * jobs). Walks the partitions' job lists: meant for rare calls such as a person's deletion.
   * @returns the ids deleted
   */
  async forget(keys: readonly string[]): Promise<string[]> {
    const wanted = new Set(keys);
    const deleted: string[] = [];
    for (const queue of new Set(keys.map((k) => this.#queueFor(k)))) {
      const jobs = await queue.getJobs(['wait', 'delayed', 'prioritized', 'completed', 'failed']);
      for (const job of jobs) {
        if (!job?.id || !wanted.has((job.data as Envelope).key)) continue;
        try {
          await job.remove();
          deleted.push(job.id);
        } catch (err) {
          this.#log.warn({ err, jobId: job.id }, 'could not remove a job of a deleted person');
        }
      }
    }
    return deleted;
  }

  async stats(): Promise<JobKindStats[]> {
    const byKind = new Map<string, JobKindStats>();
    const latencies = new Map<string, number[]>();
    const get = (kind: string): JobKindStats => {
      let s = byKind.get(kind);
      if (!s) byKind.set(kind, (s = { kind, queued: 0, running: 0, done: 0, failed: 0 }));
      return s;
    };
    for (const queue of this.#queues) {
      const [waiting, active, done, failed] = await Promise.all([
        queue.getJobs(['wait', 'delayed', 'prioritized'], 0, 999),
        queue.getJobs(['active'], 0, 999),
        queue.getJobs(['completed'], 0, 199),
        queue.getJobs(['failed'], 0, 999),
      ]);
      for (const j of waiting) if (j) get((j.data as Envelope).kind).queued++;
      for (const j of active) if (j) get((j.data as Envelope).kind).running++;
      for (const j of failed) if (j) get((j.data as Envelope).kind).failed++;
      for (const j of done) {
        if (!j) continue;
        const kind = (j.data as Envelope).kind;
        get(kind).done++;
        if (j.finishedOn) latencies.set(kind, [...(latencies.get(kind) ?? []), j.finishedOn - j.timestamp]);
      }
    }
    for (const [kind, values] of latencies) {
      const latency = latencySummary(values);
      if (latency) get(kind).latencyMs = latency;
    }
    return [...byKind.values()].sort((a, b) => a.kind.localeCompare(b.kind));
  }

  async failed(limit = 50): Promise<FailedJob[]> {
    const all: FailedJob[] = [];
    for (const queue of this.#queues) {
      for (const j of await queue.getFailed(0, limit - 1)) {
        if (!j) continue;
        const envelope = j.data as Envelope;
        all.push({ id: j.id ?? '', kind: envelope.kind, key: envelope.key, attempts: j.attemptsMade, error: j.failedReason ?? '', failedAtMs: j.finishedOn ?? 0 });
      }
    }
    return all.sort((a, b) => b.failedAtMs - a.failedAtMs).slice(0, limit);
  }

  async whenIdle(): Promise<void> {
    for (;;) {
      let pending = this.#active.size;
      if (pending === 0) {
        for (const queue of this.#queues) {
          const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
          pending += (counts.wait ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0);
          if (pending > 0) break;
        }
        if (pending === 0) return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Graceful shutdown (https://docs.bullmq.io/guide/workers/graceful-shutdown): stops fetching,
   * waits up to `graceMs` for the jobs running here, then returns those still running to the head
   * of their queue (`Job.moveToWait` with the job's lock token, which also drops the lock), so
   * another process takes them at once instead of after stalled-job recovery (up to
   * `lockDurationMs` plus the stalled-check interval). Their lock extenders stop first: an
   * extender left running would keep an abandoned job locked, and every other process waiting.
   * A job that cannot be returned (Redis gone) is recovered as stalled. Then closes workers,
   * queues and the connection.
   */
  async close(graceMs = 10_000): Promise<void> {
    this.#closing = true;
    this.#wake?.();
    await this.#loop;
    if (this.#active.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.#active.keys()]), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      let returned = 0;
      for (const [run, { job, token, extender }] of this.#active) {
        clearInterval(extender);
        this.#returned.add(run);
        try {
          await job.moveToWait(token);
          returned++;
        } catch (err) {
          this.#log.warn({ err, jobId: job.id }, 'could not return a running job to the queue at shutdown; it is recovered as stalled');
        }
      }
      if (returned > 0) this.#log.warn({ returned }, 'running jobs returned to the queue at shutdown');
    }
    await Promise.all(this.#workers.map((w) => w.close(true).catch(() => undefined)));
    await Promise.all(this.#queues.map((q) => q.close().catch(() => undefined)));
    this.#connection.disconnect();
  }
}
