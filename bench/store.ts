/**
 * Storage benchmark: per-operation latency of the store on SQLite (a temporary data directory),
 * on Redis (when REDIS_URL or redis://127.0.0.1:6379 answers; a throwaway namespace, deleted
 * afterwards) and of the encrypted blob store. Operations run one after another, so ops/s for one
 * caller is about 1000 / p50Ms.
 *
 * Run alone with `npx tsx bench/store.ts`; the main bench runner imports {@link benchStore}.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createClient } from '@keyv/redis';
import { createStore } from '../src/core/store/keyv-store.js';
import { RecordCipher } from '../src/core/store/record-cipher.js';
import type { Store, UserRecord } from '../src/core/store/types.js';
import type { ChatTurn } from '../src/core/providers.js';

/** Latency of one operation, in milliseconds. */
export interface OpLatency {
  p50Ms: number;
  p95Ms: number;
}

const ITERATIONS = Number(process.env.BENCH_STORE_ITERATIONS ?? 300);
const WARMUP = 20;
/** Users stored before timing `users.putNew` (BENCH_STORE_USERS). */
const NEW_USERS_BEFORE = Number(process.env.BENCH_STORE_USERS ?? 5000);
const BLOB_SIZE_BYTES = 1024 * 1024;
const BLOB_ITERATIONS = 40;

function percentile(sorted: number[], p: number): number {
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round((sorted[idx] ?? 0) * 1000) / 1000;
}

/** Times `op(i)` for `iterations` runs after a warm-up; returns p50/p95 in ms. */
async function measure(iterations: number, op: (i: number) => Promise<unknown>): Promise<OpLatency> {
  for (let i = 0; i < Math.min(WARMUP, iterations); i++) await op(-1 - i);
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    await op(i);
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  return { p50Ms: percentile(samples, 50), p95Ms: percentile(samples, 95) };
}

function user(i: number): UserRecord {
  return {
    key: `telegram:${1000 + (i % 50)}`,
    channel: 'telegram',
    address: { channel: 'telegram', chatId: String(1000 + (i % 50)) },
    displayName: 'Bench User',
    persona: 'supportive',
    sendTextWithVoice: true,
    optedOut: false,
    blocked: false,
    messageCount: i,
    createdAtMs: 1_700_000_000_000,
    updatedAtMs: 1_700_000_000_000 + i,
  };
}

function turn(i: number): ChatTurn {
  return { role: i % 2 ? 'twin' : 'user', text: `A typical chat turn of about a hundred characters, number ${i}, about plans for the weekend.`, atMs: 1_700_000_000_000 + i };
}

/** Runs the repository operations the engine uses on every chat turn. */
async function benchRepositories(prefix: string, store: Store, out: Record<string, OpLatency>): Promise<void> {
  out[`${prefix}.users.put`] = await measure(ITERATIONS, (i) => store.users.put(user(i)));
  out[`${prefix}.users.get`] = await measure(ITERATIONS, (i) => store.users.get(user(i).key));
  // Fill one history to its cap first, so appends measure the steady state (read 200, write 200).
  await store.history.append('telegram:history', ...Array.from({ length: 200 }, (_, i) => turn(i)));
  out[`${prefix}.history.append`] = await measure(ITERATIONS, (i) => store.history.append('telegram:history', turn(i)));
  out[`${prefix}.history.recent20`] = await measure(ITERATIONS, () => store.history.recent('telegram:history', 20));
  out[`${prefix}.dedupe.claim`] = await measure(ITERATIONS, (i) => store.dedupe.claim(`bench:update:${i}`));
  // Adding a new user when thousands exist: one bounded index chunk is rewritten, not the whole list.
  for (let i = 0; i < NEW_USERS_BEFORE; i++) await store.users.put({ ...user(0), key: `telegram:seed-${i}`, address: { channel: 'telegram', chatId: `seed-${i}` } });
  out[`${prefix}.users.putNew@${NEW_USERS_BEFORE}`] = await measure(ITERATIONS, (i) =>
    store.users.put({ ...user(0), key: `telegram:new-${i}`, address: { channel: 'telegram', chatId: `new-${i}` } }),
  );
}

/**
 * The cost field encryption adds to history operations, measured on the cipher alone: a history at
 * its cap (200 turns of ~100 characters, ~25 KB of JSON) is opened on every read and sealed again on
 * every append, so an append adds `seal + open` and a read adds `open`. Upper bounds: the JSON
 * serialisation counted here replaces keyv's own serialisation of the unsealed list.
 */
function benchFieldEncryption(out: Record<string, OpLatency>, dataKey: Buffer): Promise<void> {
  const cipher = new RecordCipher(dataKey);
  const history = Array.from({ length: 200 }, (_, i) => turn(i));
  const sealed = cipher.seal('history:telegram:history', history);
  return (async () => {
    out['crypto.history200.seal'] = await measure(ITERATIONS * 5, async () => cipher.seal('history:telegram:history', history));
    out['crypto.history200.open'] = await measure(ITERATIONS * 5, async () => cipher.open('history:telegram:history', sealed));
    out['crypto.history200.appendAdded'] = await measure(ITERATIONS * 5, async () => cipher.seal('history:telegram:history', cipher.open<unknown[]>('history:telegram:history', sealed)));
  })();
}

async function redisReachable(url: string): Promise<boolean> {
  const client = createClient({ url, socket: { connectTimeout: 1000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    if (client.isOpen) await client.close();
  }
}

async function deleteNamespace(url: string, namespace: string): Promise<void> {
  const client = createClient({ url });
  await client.connect();
  try {
    for await (const keys of client.scanIterator({ MATCH: `${namespace}:*`, COUNT: 500 })) {
      if (keys.length > 0) await client.unlink(keys);
    }
  } finally {
    await client.close();
  }
}

/**
 * Measures the store.
 * @returns p50/p95 latency in ms per operation, keyed `<backend>.<repository>.<op>`,
 *   `blob.put.1MiB` / `blob.get.1MiB` and `crypto.history200.*` (field encryption of a full history:
 *   `seal`, `open`, and `appendAdded` = open + seal); Redis entries are absent when Redis does not answer
 */
export async function benchStore(): Promise<Record<string, OpLatency>> {
  const out: Record<string, OpLatency> = {};
  const dataDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-bench-store-'));
  const dataKey = randomBytes(32);
  try {
    await benchFieldEncryption(out, dataKey);
    const sqlite = await createStore({ backend: 'sqlite', dataDir, dataKey });
    try {
      await benchRepositories('sqlite', sqlite, out);
      const audio = randomBytes(BLOB_SIZE_BYTES);
      const keys: string[] = [];
      out['blob.put.1MiB'] = await measure(BLOB_ITERATIONS, async () => keys.push(await sqlite.blobs.put('telegram:blob', audio, 'sample')));
      out['blob.get.1MiB'] = await measure(BLOB_ITERATIONS, (i) => sqlite.blobs.get(keys[Math.max(0, i) % keys.length]!));
    } finally {
      await sqlite.close();
    }

    const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    if (await redisReachable(redisUrl)) {
      const namespace = `vt-bench-${randomBytes(4).toString('hex')}`;
      const redis = await createStore({ backend: 'redis', dataDir, dataKey, redisUrl, namespace });
      try {
        await benchRepositories('redis', redis, out);
      } finally {
        await redis.close();
        await deleteNamespace(redisUrl, namespace);
      }
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const results = await benchStore();
  console.log(JSON.stringify(results, null, 2));
}
