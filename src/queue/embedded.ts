/**
 * The embedded durable job queue: one table in a SQLite file in the data directory (no server),
 * the default when `REDIS_URL` is not set. Same guarantees as the BullMQ queue (see
 * `core/jobs.ts`): a job is committed before `enqueue` resolves, survives `kill -9`, runs at least
 * once, in order per key, with bounded retries.
 *
 * How it works:
 * - `jobs` rows move `queued → running → done | failed`. A claim is one `BEGIN IMMEDIATE`
 *   transaction (SQLite's write lock, https://www.sqlite.org/lang_transaction.html) that picks the
 *   oldest queued job whose key has no earlier unfinished job, so per-key order holds even across
 *   processes sharing the file.
 * - A running job carries its owner (`host:pid:instance`) and a lease, renewed while it runs. A
 *   job whose lease ran out, or whose owner process on this host is gone (a crash), goes back to
 *   `queued`; that counts as an attempt, so a job that kills its process every time ends as failed.
 * - Finished jobs are kept `retentionMs` (default 7 days) so a redelivered message id is still
 *   recognised as done, then swept.
 *
 * Why not a library: the embedded queues on npm (e.g. over better-sqlite3) have no per-key
 * ordering, and this file is small next to the store it lives beside. The file is opened with
 * `sqlite3` (node-sqlite3), which the store's keyv SQLite adapter already uses.
 */
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import sqlite3 from 'sqlite3';
import { silentLogger, type Logger } from '../core/log.js';
import { createPrivateFile } from '../core/store/file-modes.js';
import { RecordCipher, SEALED_PREFIX, isSealed, sealedKeyId } from '../core/store/record-cipher.js';
import {
  PermanentJobError,
  latencySummary,
  retryDelayMs,
  type EnqueueOptions,
  type EnqueueResult,
  type FailedJob,
  type Job,
  type JobData,
  type JobHandler,
  type JobKindStats,
  type JobQueue,
} from '../core/jobs.js';

/** Name of the queue's SQLite file inside the data directory. */
export const QUEUE_FILE = 'jobs.sqlite';

/** Options of {@link EmbeddedQueue.open}. */
export interface EmbeddedQueueOptions {
  /** Directory of the SQLite file (created 0700 when missing). */
  dataDir: string;
  logger?: Logger;
  /** Jobs this process runs at once (different keys). Default 4. */
  concurrency?: number;
  /** Lease of a running job, ms; renewed every third of it. Default 30 000. */
  leaseMs?: number;
  /** How long finished jobs are kept (deduplication window), ms. Default 7 days. */
  retentionMs?: number;
  /** Poll interval for delayed retries and other processes' jobs, ms. Default 250. */
  pollMs?: number;
  /** Clock (tests). */
  now?: () => number;
  /**
   * The 32-byte data key: each job's `data` (which carries the inbound message, its text included)
   * is stored sealed with it, the job id as associated data (see `record-cipher.ts`). Without it
   * data is stored as plain JSON (tests, tools that only read counts).
   */
  dataKey?: Buffer;
}

interface Row {
  seq: number;
  id: string;
  kind: string;
  key: string;
  data: string;
  state: 'queued' | 'running' | 'done' | 'failed';
  attempts: number;
  max_attempts: number;
  run_at: number;
  owner: string | null;
  lease_until: number | null;
  error: string | null;
  enqueued_at: number;
  finished_at: number | null;
}

const DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000;
const SWEEP_EVERY_MS = 10 * 60 * 1000;

/** A small promise wrapper over one sqlite3 connection; every call is serialised. */
class Db {
  #tail: Promise<unknown> = Promise.resolve();
  constructor(private readonly db: sqlite3.Database) {}

  static open(file: string): Promise<Db> {
    return new Promise((resolve, reject) => {
      const db = new sqlite3.Database(file, (err) => (err ? reject(err) : resolve(new Db(db))));
    });
  }

  run(sql: string, params: unknown[] = []): Promise<number> {
    return new Promise((resolve, reject) => {
      this.db.run(sql, params, function (err) {
        if (err) reject(err);
        else resolve(this.changes);
      });
    });
  }

  all<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return new Promise((resolve, reject) => this.db.all(sql, params, (err, rows) => (err ? reject(err) : resolve(rows as T[]))));
  }

  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.exec(sql, (err) => (err ? reject(err) : resolve())));
  }

  /** Runs `work` alone on the connection; inside a write transaction when `write` is true. */
  serial<T>(work: () => Promise<T>, write = false): Promise<T> {
    const run = async (): Promise<T> => {
      if (!write) return work();
      await this.exec('BEGIN IMMEDIATE');
      try {
        const result = await work();
        await this.exec('COMMIT');
        return result;
      } catch (err) {
        await this.exec('ROLLBACK').catch(() => undefined);
        throw err;
      }
    };
    const result = this.#tail.then(run, run);
    this.#tail = result.catch(() => undefined);
    return result;
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve())));
  }
}

/** The embedded SQLite job queue; see the module comment. */
export class EmbeddedQueue implements JobQueue {
  readonly engine = 'embedded' as const;
  readonly #db: Db;
  readonly #log: Logger;
  readonly #handlers = new Map<string, JobHandler>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #owner: string;
  readonly #concurrency: number;
  readonly #leaseMs: number;
  readonly #retentionMs: number;
  readonly #pollMs: number;
  readonly #now: () => number;
  readonly #cipher: RecordCipher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #leaseTimer: NodeJS.Timeout | undefined;
  #started = false;
  #closing = false;
  #pumping = false;
  #pumpAgain = false;
  #lastSweep = 0;

  private constructor(db: Db, options: EmbeddedQueueOptions) {
    this.#db = db;
    this.#log = (options.logger ?? silentLogger).child({ component: 'queue', engine: 'embedded' });
    this.#owner = `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.#concurrency = Math.max(1, options.concurrency ?? 4);
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    this.#pollMs = options.pollMs ?? 250;
    this.#now = options.now ?? Date.now;
    this.#cipher = options.dataKey ? new RecordCipher(options.dataKey) : undefined;
  }

  /** The stored form of a job's data: sealed under the job id when there is a data key. */
  #sealData(id: string, data: JobData): string {
    return this.#cipher ? this.#cipher.seal(`queue-job:${id}`, data) : JSON.stringify(data);
  }

  /**
   * A job's data from its stored form (sealed, or plain JSON written before sealing).
   * @throws RecordIntegrityError when sealed data fails authentication; Error when sealed and no data key is set
   */
  #openData(id: string, stored: string): JobData {
    if (!isSealed(stored)) return JSON.parse(stored) as JobData;
    if (!this.#cipher) throw new Error(`Job ${id} holds sealed data and the queue was opened without the data key`);
    return this.#cipher.open<JobData>(`queue-job:${id}`, stored);
  }

  /**
   * Seals the data of jobs stored in plain JSON (written before sealing); idempotent. Deleted
   * content is zeroed (`secure_delete`) and the WAL truncated afterwards.
   * @returns how many jobs were sealed
   */
  async #sealPlainJobs(): Promise<number> {
    if (!this.#cipher) return 0;
    const rows = await this.#db.serial(() => this.#db.all<Pick<Row, 'seq' | 'id' | 'data'>>(`SELECT seq, id, data FROM jobs WHERE substr(data, 1, ?) <> ?`, [SEALED_PREFIX.length, SEALED_PREFIX]));
    let sealed = 0;
    for (const row of rows) {
      const data = JSON.parse(row.data) as JobData;
      sealed += await this.#db.serial(() => this.#db.run(`UPDATE jobs SET data = ? WHERE seq = ? AND data = ?`, [this.#sealData(row.id, data), row.seq, row.data]));
    }
    if (sealed > 0) {
      await this.#checkpoint();
      this.#log.info({ sealed }, 'sealed the data of queued jobs stored in plaintext');
    }
    return sealed;
  }

  /** Truncates the WAL so page images of deleted or replaced rows leave the `-wal` file. */
  async #checkpoint(): Promise<void> {
    try {
      await this.#db.serial(() => this.#db.all(`PRAGMA wal_checkpoint(TRUNCATE)`));
    } catch (err) {
      this.#log.warn({ err }, 'job queue WAL checkpoint failed');
    }
  }

  /**
   * Re-encrypts the data of every job in `<dataDir>/jobs.sqlite` that is not yet under `newKey`
   * (sealed with `oldKey`, or plain JSON), for a data key rotation; the job id stays the
   * associated data. Idempotent (jobs sealed with `newKey` are skipped) and safe to repeat after
   * an interruption. Replaced content is zeroed (`secure_delete`) and the WAL truncated. Does
   * nothing when the file does not exist.
   * @returns how many jobs were re-encrypted and how many were already under the new key
   * @throws RecordIntegrityError when a job's data opens with neither key
   */
  static async rekeyJobs(options: { dataDir: string; oldKey: Buffer; newKey: Buffer; onProgress?: (handled: number) => void }): Promise<{ rekeyed: number; current: number }> {
    const file = path.join(options.dataDir, QUEUE_FILE);
    if (!(await fs.stat(file).then(() => true, () => false))) return { rekeyed: 0, current: 0 };
    const db = await Db.open(file);
    try {
      await db.exec(`PRAGMA busy_timeout = 5000; PRAGMA secure_delete = ON;`);
      const cipher = new RecordCipher(options.newKey, [options.oldKey]);
      const rows = await db.all<Pick<Row, 'seq' | 'id' | 'data'>>(`SELECT seq, id, data FROM jobs ORDER BY seq`);
      let rekeyed = 0;
      let current = 0;
      for (const row of rows) {
        if (sealedKeyId(row.data) === cipher.keyId) {
          current++;
        } else {
          const data: JobData = isSealed(row.data) ? cipher.open<JobData>(`queue-job:${row.id}`, row.data) : (JSON.parse(row.data) as JobData);
          rekeyed += await db.run(`UPDATE jobs SET data = ? WHERE seq = ? AND data = ?`, [cipher.seal(`queue-job:${row.id}`, data), row.seq, row.data]);
        }
        if ((rekeyed + current) % 500 === 0) options.onProgress?.(rekeyed + current);
      }
      options.onProgress?.(rekeyed + current);
      await db.all(`PRAGMA wal_checkpoint(TRUNCATE)`);
      return { rekeyed, current };
    } finally {
      await db.close();
    }
  }

  /**
   * Opens (or creates) `<dataDir>/jobs.sqlite` in WAL mode.
   * @throws Error naming the file when it cannot be opened
   */
  static async open(options: EmbeddedQueueOptions): Promise<EmbeddedQueue> {
    await fs.mkdir(options.dataDir, { recursive: true, mode: 0o700 });
    const file = path.join(options.dataDir, QUEUE_FILE);
    let db: Db;
    try {
      // Created owner-only before SQLite opens it, so its -wal and -shm files inherit the mode.
      await createPrivateFile(file);
      db = await Db.open(file);
    } catch (err) {
      throw new Error(`Cannot open the job queue file ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    await db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = NORMAL;
      PRAGMA busy_timeout = 5000;
      PRAGMA secure_delete = ON;
      CREATE TABLE IF NOT EXISTS jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        data TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        run_at INTEGER NOT NULL,
        owner TEXT,
        lease_until INTEGER,
        error TEXT,
        enqueued_at INTEGER NOT NULL,
        finished_at INTEGER
      );
      CREATE INDEX IF NOT EXISTS jobs_key_state ON jobs(key, state, seq);
      CREATE INDEX IF NOT EXISTS jobs_state_seq ON jobs(state, seq);
    `);
    const queue = new EmbeddedQueue(db, options);
    await queue.#sealPlainJobs();
    return queue;
  }

  async enqueue(kind: string, data: JobData, options: EnqueueOptions): Promise<EnqueueResult> {
    if (this.#closing) throw new Error('The job queue is closing');
    const now = this.#now();
    const changes = await this.#db.serial(() =>
      this.#db.run(
        `INSERT OR IGNORE INTO jobs (id, kind, key, data, state, attempts, max_attempts, run_at, enqueued_at) VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, ?)`,
        [options.id, kind, options.key, this.#sealData(options.id, data), options.maxAttempts ?? 5, now, now],
      ),
    );
    if (changes > 0) this.#wake();
    return { id: options.id, created: changes > 0 };
  }

  process<T extends JobData>(kind: string, handler: JobHandler<T>): void {
    this.#handlers.set(kind, handler as JobHandler);
    if (this.#started) this.#wake();
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const recovered = await this.#recover(true);
    if (recovered > 0) this.#log.warn({ recovered }, 'jobs of a stopped process returned to the queue');
    this.#timer = setInterval(() => this.#wake(), this.#pollMs);
    this.#timer.unref();
    this.#leaseTimer = setInterval(() => void this.#renewLeases(), Math.max(50, Math.floor(this.#leaseMs / 3)));
    this.#leaseTimer.unref();
    this.#wake();
  }

  /** Running jobs whose lease ran out, or whose owner process on this host is gone, go back to `queued`. */
  async #recover(checkPids: boolean): Promise<number> {
    const now = this.#now();
    const host = os.hostname();
    return this.#db.serial(async () => {
      const rows = await this.#db.all<Row>(`SELECT * FROM jobs WHERE state = 'running' AND owner IS NOT ? `, [this.#owner]);
      let count = 0;
      for (const row of rows) {
        const [ownerHost, ownerPid] = (row.owner ?? '').split(':');
        const dead = checkPids && ownerHost === host && !processAlive(Number(ownerPid));
        if (!dead && (row.lease_until ?? 0) > now) continue;
        if (row.attempts >= row.max_attempts) {
          await this.#db.run(`UPDATE jobs SET state = 'failed', owner = NULL, error = ?, finished_at = ? WHERE seq = ?`, [
            'interrupted on every attempt (the process stopped while running it)',
            now,
            row.seq,
          ]);
        } else {
          await this.#db.run(`UPDATE jobs SET state = 'queued', owner = NULL, lease_until = NULL, run_at = ? WHERE seq = ?`, [now, row.seq]);
        }
        count++;
      }
      return count;
    }, true);
  }

  async #renewLeases(): Promise<void> {
    if (this.#running.size === 0) return;
    try {
      await this.#db.serial(() =>
        this.#db.run(`UPDATE jobs SET lease_until = ? WHERE owner = ? AND state = 'running'`, [this.#now() + this.#leaseMs, this.#owner]),
      );
    } catch (err) {
      this.#log.warn({ err }, 'job lease renewal failed');
    }
  }

  #wake(): void {
    if (!this.#started || this.#closing) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    void this.#pump()
      .catch((err: unknown) => this.#log.error({ err }, 'job queue poll failed'))
      .finally(() => {
        this.#pumping = false;
        if (this.#pumpAgain) {
          this.#pumpAgain = false;
          this.#wake();
        }
      });
  }

  async #pump(): Promise<void> {
    const now = this.#now();
    if (now - this.#lastSweep > SWEEP_EVERY_MS) {
      this.#lastSweep = now;
      await this.#recover(false);
      await this.#db.serial(() => this.#db.run(`DELETE FROM jobs WHERE state = 'done' AND finished_at < ?`, [now - this.#retentionMs]));
    }
    const free = this.#concurrency - this.#running.size;
    const kinds = [...this.#handlers.keys()];
    if (free <= 0 || kinds.length === 0) return;
    const claimed = await this.#claim(free, kinds);
    for (const row of claimed) {
      const run = this.#run(row).finally(() => {
        this.#running.delete(row.id);
        this.#wake();
      });
      this.#running.set(row.id, run);
    }
  }

  /** Claims up to `limit` runnable jobs of `kinds` in one write transaction. */
  #claim(limit: number, kinds: string[]): Promise<Row[]> {
    const now = this.#now();
    return this.#db.serial(async () => {
      const rows = await this.#db.all<Row>(
        `SELECT * FROM jobs j
          WHERE j.state = 'queued' AND j.run_at <= ? AND j.kind IN (${kinds.map(() => '?').join(',')})
            AND NOT EXISTS (SELECT 1 FROM jobs k WHERE k.key = j.key AND k.seq < j.seq AND k.state IN ('queued', 'running'))
          ORDER BY j.seq LIMIT ?`,
        [now, ...kinds, limit],
      );
      for (const row of rows) {
        row.attempts += 1;
        await this.#db.run(`UPDATE jobs SET state = 'running', attempts = ?, owner = ?, lease_until = ? WHERE seq = ?`, [
          row.attempts,
          this.#owner,
          now + this.#leaseMs,
          row.seq,
        ]);
      }
      return rows;
    }, true);
  }

  async #run(row: Row): Promise<void> {
    const handler = this.#handlers.get(row.kind);
    if (!handler) return;
    let data: JobData;
    try {
      data = this.#openData(row.id, row.data);
    } catch (err) {
      this.#log.error({ err, jobId: row.id, kind: row.kind }, 'job data cannot be read; the job fails');
      await this.#finish(row, `UPDATE jobs SET state = 'failed', owner = NULL, error = ?, finished_at = ? WHERE seq = ? AND owner = ?`, [
        'job data cannot be decrypted',
        this.#now(),
        row.seq,
        this.#owner,
      ]);
      return;
    }
    const job: Job = {
      id: row.id,
      kind: row.kind,
      key: row.key,
      data,
      attempt: row.attempts,
      maxAttempts: row.max_attempts,
      enqueuedAtMs: row.enqueued_at,
    };
    try {
      await handler(job);
      await this.#finish(row, `UPDATE jobs SET state = 'done', owner = NULL, error = NULL, finished_at = ? WHERE seq = ? AND owner = ?`, [
        this.#now(),
        row.seq,
        this.#owner,
      ]);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const final = err instanceof PermanentJobError || row.attempts >= row.max_attempts;
      const log = this.#log.child({ jobId: row.id, kind: row.kind, attempt: row.attempts });
      if (final) {
        log.error({ err }, 'job failed for good; kept for inspection (voicetwin jobs --failed)');
        await this.#finish(row, `UPDATE jobs SET state = 'failed', owner = NULL, error = ?, finished_at = ? WHERE seq = ? AND owner = ?`, [
          message.slice(0, 500),
          this.#now(),
          row.seq,
          this.#owner,
        ]);
      } else {
        const delay = retryDelayMs(row.attempts);
        log.warn({ err, retryInMs: delay }, 'job failed; retrying');
        await this.#finish(row, `UPDATE jobs SET state = 'queued', owner = NULL, error = ?, run_at = ? WHERE seq = ? AND owner = ?`, [
          message.slice(0, 500),
          this.#now() + delay,
          row.seq,
          this.#owner,
        ]);
      }
    }
  }

  async #finish(row: Row, sql: string, params: unknown[]): Promise<void> {
    try {
      await this.#db.serial(() => this.#db.run(sql, params));
    } catch (err) {
      // The lease expires and the job runs again: at-least-once, never lost.
      this.#log.error({ err, jobId: row.id }, 'could not record the end of a job; it will run again');
    }
  }

  /**
   * Deletes every job whose key is one of `keys` (running ones included: their end is then not
   * recorded), zeroing the deleted rows (`secure_delete`) and truncating the WAL.
   * @returns the ids deleted
   */
  async forget(keys: readonly string[]): Promise<string[]> {
    if (keys.length === 0) return [];
    const marks = keys.map(() => '?').join(',');
    const ids = await this.#db.serial(async () => {
      const rows = await this.#db.all<{ id: string }>(`SELECT id FROM jobs WHERE key IN (${marks})`, [...keys]);
      await this.#db.run(`DELETE FROM jobs WHERE key IN (${marks})`, [...keys]);
      return rows.map((r) => r.id);
    }, true);
    await this.#checkpoint();
    return ids;
  }

  async stats(): Promise<JobKindStats[]> {
    const counts = await this.#db.serial(() =>
      this.#db.all<{ kind: string; state: Row['state']; n: number }>(`SELECT kind, state, COUNT(*) AS n FROM jobs GROUP BY kind, state`),
    );
    const recent = await this.#db.serial(() =>
      this.#db.all<{ kind: string; ms: number }>(
        `SELECT kind, finished_at - enqueued_at AS ms FROM jobs WHERE state = 'done' AND finished_at >= ? ORDER BY finished_at DESC LIMIT 2000`,
        [this.#now() - 3600_000],
      ),
    );
    const byKind = new Map<string, JobKindStats>();
    for (const c of counts) {
      const s = byKind.get(c.kind) ?? { kind: c.kind, queued: 0, running: 0, done: 0, failed: 0 };
      s[c.state] = c.n;
      byKind.set(c.kind, s);
    }
    for (const s of byKind.values()) {
      const latency = latencySummary(recent.filter((r) => r.kind === s.kind).map((r) => r.ms));
      if (latency) s.latencyMs = latency;
    }
    return [...byKind.values()].sort((a, b) => a.kind.localeCompare(b.kind));
  }

  async failed(limit = 50): Promise<FailedJob[]> {
    const rows = await this.#db.serial(() =>
      this.#db.all<Row>(`SELECT * FROM jobs WHERE state = 'failed' ORDER BY finished_at DESC LIMIT ?`, [limit]),
    );
    return rows.map((r) => ({ id: r.id, kind: r.kind, key: r.key, attempts: r.attempts, error: r.error ?? '', failedAtMs: r.finished_at ?? 0 }));
  }

  async whenIdle(): Promise<void> {
    for (;;) {
      if (this.#running.size === 0 && !this.#pumping) {
        const kinds = [...this.#handlers.keys()];
        if (kinds.length === 0) return;
        const [row] = await this.#db.serial(() =>
          this.#db.all<{ n: number }>(
            `SELECT COUNT(*) AS n FROM jobs WHERE (state = 'queued' OR state = 'running' AND owner = ?) AND kind IN (${kinds.map(() => '?').join(',')})`,
            [this.#owner, ...kinds],
          ),
        );
        if ((row?.n ?? 0) === 0 && this.#running.size === 0) return;
        this.#wake();
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async close(graceMs = 10_000): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearInterval(this.#timer);
    clearInterval(this.#leaseTimer);
    const running = [...this.#running.values()];
    if (running.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled(running), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    // Jobs still running after the grace period go back to the queue for the next start.
    const returned = await this.#db
      .serial(() => this.#db.run(`UPDATE jobs SET state = 'queued', owner = NULL, lease_until = NULL WHERE owner = ? AND state = 'running'`, [this.#owner]))
      .catch(() => 0);
    if (returned > 0) this.#log.warn({ returned }, 'running jobs returned to the queue at shutdown');
    await this.#db.close().catch(() => undefined);
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
