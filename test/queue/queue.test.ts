/**
 * One contract for both job queues: the embedded SQLite queue and BullMQ on the Redis started by
 * `.ci/run` (127.0.0.1:6379, or REDIS_URL). Each test uses its own data dir / key prefix.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { EmbeddedQueue } from '../../src/queue/embedded.js';
import { BullQueue, partitionOf } from '../../src/queue/bullmq.js';
import type { Job, JobQueue } from '../../src/core/jobs.js';
import { PermanentJobError } from '../../src/core/jobs.js';
import { redisAvailable, REDIS_URL } from '../helpers/redis.js';
import { deleteRedisNamespace, redisKeysContaining, sqliteFilesContaining } from '../helpers/raw-scan.js';

type Factory = () => Promise<JobQueue>;

/** Every queue in the contract stores job data sealed with this key. */
const DATA_KEY = randomBytes(32);

const opened: JobQueue[] = [];
const dirs: string[] = [];
afterEach(async () => {
  while (opened.length) await opened.pop()!.close(1000);
  while (dirs.length) await rm(dirs.pop()!, { recursive: true, force: true });
});

/** A temporary data dir, removed after the test. */
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vt-queue-'));
  dirs.push(dir);
  return dir;
}

async function embeddedFactory(): Promise<Factory> {
  const dataDir = await tempDir();
  return async () => {
    const q = await EmbeddedQueue.open({ dataDir, pollMs: 20, concurrency: 4, dataKey: DATA_KEY });
    opened.push(q);
    return q;
  };
}

function bullFactory(): Factory {
  const prefix = `vt-test-${randomBytes(4).toString('hex')}`;
  return async () => {
    const q = await BullQueue.open({ redisUrl: REDIS_URL, prefix, partitions: 4, concurrency: 4, lockDurationMs: 2000, dataKey: DATA_KEY });
    opened.push(q);
    return q;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function contract(name: string, make: () => Promise<Factory>) {
  describe(name, () => {
    it('runs every job once, in enqueue order per key, keys concurrently', async () => {
      const open = await make();
      const q = await open();
      const seen: string[] = [];
      let running = 0;
      let maxRunning = 0;
      const perKeyRunning = new Map<string, number>();
      q.process<{ n: number }>('turn', async (job: Job<{ n: number }>) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        perKeyRunning.set(job.key, (perKeyRunning.get(job.key) ?? 0) + 1);
        expect(perKeyRunning.get(job.key)).toBe(1);
        await sleep(5 + (job.data.n % 3) * 5);
        seen.push(`${job.key}#${job.data.n}`);
        perKeyRunning.set(job.key, perKeyRunning.get(job.key)! - 1);
        running--;
      });
      await q.start();
      const users = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7', 'u8'];
      await Promise.all(users.map(async (u) => {
        for (let n = 0; n < 6; n++) await q.enqueue('turn', { n }, { id: `${u}-${n}`, key: u });
      }));
      await q.whenIdle();
      expect(seen).toHaveLength(48);
      for (const u of users) {
        expect(seen.filter((s) => s.startsWith(`${u}#`))).toEqual([0, 1, 2, 3, 4, 5].map((n) => `${u}#${n}`));
      }
      expect(maxRunning).toBeGreaterThan(1);
      expect(maxRunning).toBeLessThanOrEqual(4);
    });

    it('deduplicates by id, also after the job finished', async () => {
      const open = await make();
      const q = await open();
      let runs = 0;
      q.process('turn', async () => {
        runs++;
      });
      await q.start();
      expect((await q.enqueue('turn', {}, { id: 'm1', key: 'u' })).created).toBe(true);
      expect((await q.enqueue('turn', {}, { id: 'm1', key: 'u' })).created).toBe(false);
      await q.whenIdle();
      expect((await q.enqueue('turn', {}, { id: 'm1', key: 'u' })).created).toBe(false);
      await q.whenIdle();
      expect(runs).toBe(1);
    });

    it('retries a failing job with backoff, then keeps it as failed; a permanent error is not retried', async () => {
      const open = await make();
      const q = await open();
      const attempts: number[] = [];
      q.process('flaky', async (job) => {
        attempts.push(job.attempt);
        if (job.attempt < 2) throw new Error('transient');
      });
      q.process('broken', async () => {
        throw new Error('always broken');
      });
      q.process('poison', async () => {
        throw new PermanentJobError('cannot ever work');
      });
      await q.start();
      await q.enqueue('flaky', {}, { id: 'f1', key: 'a', maxAttempts: 3 });
      await q.enqueue('broken', {}, { id: 'b1', key: 'b', maxAttempts: 2 });
      await q.enqueue('poison', {}, { id: 'p1', key: 'c', maxAttempts: 5 });
      await q.whenIdle();
      expect(attempts).toEqual([1, 2]);
      const failed = await q.failed();
      expect(failed.map((f) => f.id).sort()).toEqual(['b1', 'p1']);
      expect(failed.find((f) => f.id === 'b1')).toMatchObject({ kind: 'broken', attempts: 2, error: 'always broken' });
      expect(failed.find((f) => f.id === 'p1')?.attempts).toBe(1);
      const stats = await q.stats();
      expect(stats.find((s) => s.kind === 'flaky')).toMatchObject({ done: 1, failed: 0 });
      expect(stats.find((s) => s.kind === 'broken')).toMatchObject({ failed: 1 });
      expect(stats.find((s) => s.kind === 'flaky')?.latencyMs?.count).toBe(1);
    });

    it('keeps queued jobs across a restart and runs them after it', async () => {
      const open = await make();
      const first = await open();
      await first.enqueue('turn', { n: 1 }, { id: 'x1', key: 'u' });
      await first.enqueue('turn', { n: 2 }, { id: 'x2', key: 'u' });
      await first.close(100);
      opened.splice(opened.indexOf(first), 1);
      const second = await open();
      const seen: number[] = [];
      second.process<{ n: number }>('turn', async (job) => void seen.push(job.data.n));
      await second.start();
      await second.whenIdle();
      expect(seen).toEqual([1, 2]);
    });
  });
}

contract('embedded queue (SQLite)', embeddedFactory);
describe.skipIf(!(await redisAvailable()))('with Redis', () => {
  contract('BullMQ queue (Redis)', async () => bullFactory());
  it('spreads keys over partitions stably', () => {
    expect(partitionOf('telegram:1', 16)).toBe(partitionOf('telegram:1', 16));
    const parts = new Set(Array.from({ length: 200 }, (_, i) => partitionOf(`telegram:${i}`, 16)));
    expect(parts.size).toBe(16);
  });
});

describe('embedded queue crash recovery', () => {
  it('graceful close: a job that finishes within the grace period is done, one that does not runs again after a restart', async () => {
    const open = await embeddedFactory();
    const first = await open();
    let release!: () => void;
    const stuck = new Promise<void>((r) => (release = r));
    const runs: string[] = [];
    first.process('turn', async (job) => {
      runs.push(`${job.id}#${job.attempt}`);
      if (job.id === 'slow') await stuck;
    });
    await first.start();
    await first.enqueue('turn', {}, { id: 'quick', key: 'a' });
    await first.enqueue('turn', {}, { id: 'slow', key: 'b' });
    while (!runs.includes('slow#1')) await sleep(10);
    await first.close(300);
    opened.splice(opened.indexOf(first), 1);
    release();
    const second = await open();
    second.process('turn', async (job) => void runs.push(`${job.id}#${job.attempt}`));
    await second.start();
    await second.whenIdle();
    expect(runs.filter((r) => r.startsWith('quick'))).toEqual(['quick#1']);
    expect(runs.filter((r) => r.startsWith('slow'))).toEqual(['slow#1', 'slow#2']);
  });


  it('returns the running job of a dead process to the queue at start', async () => {
    const dataDir = await tempDir();
    const { spawnSync } = await import('node:child_process');
    // A child process claims a job and is killed with SIGKILL while running it.
    const script = `
      import { EmbeddedQueue } from ${JSON.stringify(path.resolve('src/queue/embedded.ts'))};
      const q = await EmbeddedQueue.open({ dataDir: ${JSON.stringify(dataDir)}, pollMs: 10 });
      await q.enqueue('turn', { n: 1 }, { id: 'c1', key: 'u' });
      q.process('turn', async () => { process.kill(process.pid, 'SIGKILL'); await new Promise(() => {}); });
      await q.start();
      await new Promise(() => {});
    `;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 20000 });
    expect(child.signal).toBe('SIGKILL');
    const q = await EmbeddedQueue.open({ dataDir, pollMs: 10 });
    opened.push(q);
    const attempts: number[] = [];
    q.process('turn', async (job) => void attempts.push(job.attempt));
    await q.start();
    await q.whenIdle();
    expect(attempts).toEqual([2]);
  });
});

const redisUp = await redisAvailable();

describe('job data at rest', () => {
  it('embedded: stores the message text sealed, and seals plain rows of an older version on open', async () => {
    const dataDir = await tempDir();
    const marker = `divorce-hearing-${randomBytes(5).toString('hex')}`;
    // An older version wrote plain JSON.
    const plain = await EmbeddedQueue.open({ dataDir, pollMs: 10 });
    await plain.enqueue('turn', { text: `legacy ${marker}` }, { id: 'old', key: 'telegram:1' });
    await plain.close(100);
    expect(await sqliteFilesContaining(dataDir, marker)).not.toEqual([]);

    const q = await EmbeddedQueue.open({ dataDir, pollMs: 10, dataKey: DATA_KEY });
    opened.push(q);
    await q.enqueue('turn', { text: `new ${marker}` }, { id: 'new', key: 'telegram:1' });
    expect(await sqliteFilesContaining(dataDir, marker)).toEqual([]);
    const seen: unknown[] = [];
    q.process<{ text: string }>('turn', async (job) => void seen.push(job.data.text));
    await q.start();
    await q.whenIdle();
    expect(seen).toEqual([`legacy ${marker}`, `new ${marker}`]);
    expect(await sqliteFilesContaining(dataDir, marker)).toEqual([]);
  });

  it('embedded: a job whose sealed data was moved to another job fails instead of running with it', async () => {
    const dataDir = await tempDir();
    const q = await EmbeddedQueue.open({ dataDir, pollMs: 10, dataKey: DATA_KEY });
    await q.enqueue('turn', { text: 'for a' }, { id: 'a', key: 'ka' });
    await q.enqueue('turn', { text: 'for b' }, { id: 'b', key: 'kb' });
    await q.close(100);
    const sqlite3 = (await import('sqlite3')).default;
    const db = new sqlite3.Database(path.join(dataDir, 'jobs.sqlite'));
    await new Promise<void>((resolve, reject) => db.run(`UPDATE jobs SET data = (SELECT data FROM jobs WHERE id = 'a') WHERE id = 'b'`, (err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve) => db.close(() => resolve()));
    const again = await EmbeddedQueue.open({ dataDir, pollMs: 10, dataKey: DATA_KEY });
    opened.push(again);
    const seen: string[] = [];
    again.process<{ text: string }>('turn', async (job) => void seen.push(job.data.text));
    await again.start();
    await again.whenIdle();
    expect(seen).toEqual(['for a']);
    expect((await again.failed()).map((f) => [f.id, f.error])).toEqual([['b', 'job data cannot be decrypted']]);
  });

  it.skipIf(!redisUp)('BullMQ: stores the message text sealed in Redis', async () => {
    const prefix = `vt-test-${randomBytes(4).toString('hex')}`;
    const q = await BullQueue.open({ redisUrl: REDIS_URL, prefix, partitions: 2, concurrency: 2, lockDurationMs: 2000, dataKey: DATA_KEY });
    opened.push(q);
    const marker = `pin-hint-${randomBytes(5).toString('hex')}`;
    await q.enqueue('turn', { text: marker }, { id: 'm1', key: 'telegram:9' });
    expect(await redisKeysContaining(REDIS_URL, prefix, marker)).toEqual([]);
    const seen: string[] = [];
    q.process<{ text: string }>('turn', async (job) => void seen.push(job.data.text));
    await q.start();
    await q.whenIdle();
    expect(seen).toEqual([marker]);
    expect(await redisKeysContaining(REDIS_URL, prefix, marker)).toEqual([]);
    await deleteRedisNamespace(REDIS_URL, prefix);
  });
});

describe.skipIf(!redisUp)('BullMQ graceful shutdown', () => {
  // What SIGTERM does in `voicetwin serve` (intake stops, then the queue closes with a 10 s grace).
  it('close: a job finishing within the grace period completes, one that does not returns to the queue, waiting jobs stay; nothing is lost or run twice to completion', { timeout: 60_000 }, async () => {
    const prefix = `vt-test-${randomBytes(4).toString('hex')}`;
    const open = async (): Promise<BullQueue> => {
      const q = await BullQueue.open({ redisUrl: REDIS_URL, prefix, partitions: 4, concurrency: 4, lockDurationMs: 2000, dataKey: DATA_KEY });
      opened.push(q);
      return q;
    };
    // Three keys on three different partitions, so the jobs run side by side.
    const keys: string[] = [];
    for (let i = 0; keys.length < 3; i++) if (!keys.some((k) => partitionOf(k, 4) === partitionOf(`user-${i}`, 4))) keys.push(`user-${i}`);
    const [quickKey, slowKey, waitingKey] = keys as [string, string, string];
    const first = await open();
    let release!: () => void;
    const stuck = new Promise<void>((r) => (release = r));
    const runs: string[] = [];
    const completed: string[] = [];
    first.process('turn', async (job) => {
      runs.push(`${job.id}@first`);
      if (job.id === 'slow') await stuck;
      else await sleep(job.id === 'quick' ? 300 : 5000);
      completed.push(`${job.id}@first`);
    });
    let resumedAtMs = 0;
    await first.start();
    await first.enqueue('turn', {}, { id: 'quick', key: quickKey });
    await first.enqueue('turn', {}, { id: 'slow', key: slowKey });
    while (!(runs.includes('quick@first') && runs.includes('slow@first'))) await sleep(10);
    // Queued behind `slow` (same key), and on a third partition behind a job that will not start here.
    await first.enqueue('turn', {}, { id: 'after-slow', key: slowKey });
    await first.enqueue('turn', {}, { id: 'waiting', key: waitingKey });
    const closing = Date.now();
    await first.close(1000);
    const closedAtMs = Date.now();
    const closeMs = closedAtMs - closing;
    opened.splice(opened.indexOf(first), 1);
    expect(closeMs, 'close returns within its grace period').toBeLessThan(3000);
    expect(completed).toContain('quick@first');
    release(); // the abandoned handler ends after the close: its outcome must not count

    const second = await open();
    second.process('turn', async (job) => {
      if (job.id === 'slow') resumedAtMs = Date.now();
      runs.push(`${job.id}@second`);
      completed.push(`${job.id}@second`);
    });
    await second.start();
    await second.whenIdle();
    // Returned to the queue at the close, not left to stalled-job recovery (the 2 s lock running out first).
    expect(resumedAtMs - closedAtMs, 'the cut-off job runs again at once').toBeLessThan(1500);
    expect(runs.filter((r) => r.startsWith('quick'))).toEqual(['quick@first']);
    expect(runs.filter((r) => r.startsWith('slow'))).toEqual(['slow@first', 'slow@second']);
    expect(runs.filter((r) => r.startsWith('after-slow'))).toEqual(['after-slow@second']);
    // `waiting` may have started in the first process too (it had a free slot) and been cut off like `slow`.
    expect(runs.filter((r) => r === 'waiting@second')).toHaveLength(1);
    expect(runs.filter((r) => r === 'waiting@first').length).toBeLessThanOrEqual(1);
    // Per-key order held across the shutdown: `after-slow` ran after `slow` ran again.
    expect(runs.indexOf('after-slow@second')).toBeGreaterThan(runs.indexOf('slow@second'));
    const turn = (await second.stats()).find((k) => k.kind === 'turn');
    expect(turn).toMatchObject({ queued: 0, running: 0, done: 4, failed: 0 });
    await second.close(1000);
    opened.splice(opened.indexOf(second), 1);
    await deleteRedisNamespace(REDIS_URL, prefix);
  });
});

describe.skipIf(!redisUp)('BullMQ and SIGTERM', () => {
  it('a worker process stopped with SIGTERM exits within its grace period; its jobs finish or return to the queue, none lost', { timeout: 60_000 }, async () => {
    const prefix = `vt-test-${randomBytes(4).toString('hex')}`;
    const { spawn } = await import('node:child_process');
    // The worker: runs `turn` jobs (`slow-*` take 30 s), and on SIGTERM closes the queue with a 1 s grace, as `serve` does with 10 s.
    const script = `
      import { BullQueue } from ${JSON.stringify(path.resolve('src/queue/bullmq.ts'))};
      const q = await BullQueue.open({ redisUrl: ${JSON.stringify(REDIS_URL)}, prefix: ${JSON.stringify(prefix)}, partitions: 4, concurrency: 2, lockDurationMs: 2000 });
      q.process('turn', async (job) => {
        process.stdout.write('start ' + job.id + '\\n');
        await new Promise((r) => setTimeout(r, job.id.startsWith('slow') ? 30000 : 200));
        process.stdout.write('end ' + job.id + '\\n');
      });
      process.once('SIGTERM', () => void q.close(1000).then(() => { process.stdout.write('closed\\n'); process.exit(0); }));
      await q.start();
      process.stdout.write('ready\\n');
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const until = async (what: string, ms = 20_000): Promise<void> => {
      const deadline = Date.now() + ms;
      while (!out.includes(what)) {
        if (Date.now() > deadline) throw new Error(`no "${what}" from the worker:\n${out}\n${err}`);
        await sleep(20);
      }
    };
    await until('ready', 40_000);
    const producer = await BullQueue.open({ redisUrl: REDIS_URL, prefix, partitions: 4, concurrency: 4, lockDurationMs: 2000 });
    opened.push(producer);
    const ids = ['slow-a', 'quick-b', 'quick-c', 'quick-d', 'quick-e'];
    for (const [i, id] of ids.entries()) await producer.enqueue('turn', {}, { id, key: `user-${i}` });
    await until('start slow-a');
    await until('start quick-');
    const signalled = Date.now();
    child.kill('SIGTERM');
    const code = await exited;
    expect(code, err).toBe(0);
    expect(Date.now() - signalled, 'exits within the grace period').toBeLessThan(5000);
    expect(out).toContain('closed');
    // Whatever the worker started and finished stays done; the rest runs in the next process.
    const finishedThere = ids.filter((id) => out.includes(`end ${id}`));
    expect(finishedThere).not.toContain('slow-a');
    for (const id of ids.filter((i) => out.includes(`start ${i}`) && i !== 'slow-a')) expect(finishedThere, `${id} finished within the grace period`).toContain(id);
    const ranHere: string[] = [];
    producer.process('turn', async (job) => void ranHere.push(job.id));
    await producer.start();
    await producer.whenIdle();
    expect([...finishedThere, ...ranHere].sort()).toEqual([...ids].sort());
    expect(ranHere).toContain('slow-a');
    expect((await producer.stats()).find((k) => k.kind === 'turn')).toMatchObject({ done: ids.length, failed: 0, running: 0, queued: 0 });
    await deleteRedisNamespace(REDIS_URL, prefix);
  });
});

describe.skipIf(!redisUp)('BullMQ kinds on a queue of their own', () => {
  it('a long job of such a kind holds up no key; its own jobs still run one at a time, in order', { timeout: 30_000 }, async () => {
    const prefix = `vt-test-${randomBytes(4).toString('hex')}`;
    // One partition: without a queue of its own, the long job would hold up every turn.
    const q = await BullQueue.open({ redisUrl: REDIS_URL, prefix, partitions: 1, concurrency: 4, lockDurationMs: 2000, ownQueueKinds: ['broadcast'] });
    opened.push(q);
    let release!: () => void;
    const stuck = new Promise<void>((r) => (release = r));
    const events: string[] = [];
    q.process('broadcast', async (job) => {
      events.push(`start ${job.id}`);
      if (job.id === 'b1') await stuck;
      events.push(`end ${job.id}`);
    });
    q.process('turn', async (job) => void events.push(`turn ${job.id}`));
    await q.start();
    await q.enqueue('broadcast', {}, { id: 'b1', key: 'broadcast' });
    await q.enqueue('broadcast', {}, { id: 'b2', key: 'broadcast' });
    while (!events.includes('start b1')) await sleep(10);
    await q.enqueue('turn', {}, { id: 't1', key: 'telegram:1' });
    await q.enqueue('turn', {}, { id: 't2', key: 'telegram:2' });
    while (!events.includes('turn t2')) await sleep(10);
    expect(events).toEqual(['start b1', 'turn t1', 'turn t2']);
    release();
    await q.whenIdle();
    expect(events.slice(3)).toEqual(['end b1', 'start b2', 'end b2']);
    expect((await q.stats()).find((k) => k.kind === 'broadcast')).toMatchObject({ done: 2, failed: 0 });
    await deleteRedisNamespace(REDIS_URL, prefix);
  });
});
