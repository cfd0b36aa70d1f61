/**
 * The store contract on Redis (redis://127.0.0.1:6379 unless VOICETWIN_TEST_REDIS_URL says
 * otherwise). Every test uses its own namespace and deletes its keys afterwards. When Redis does
 * not answer, the suite fails under CI and is skipped, with a message, elsewhere.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { createClient } from '@keyv/redis';
import { storeContract } from './contract.js';
import { makeHarness } from './harness.js';

const REDIS_URL = process.env.VOICETWIN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const runId = `vt-test-${process.pid}-${randomBytes(4).toString('hex')}`;

/** Sends PING over a raw socket; true when the server answers +PONG (or -NOAUTH: it is there). */
async function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port || 6379) });
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => finish(/^(\+PONG|-NOAUTH)/.test(data.toString('latin1'))));
  });
}

/** Deletes every key of the given namespaces. */
async function deleteNamespaces(namespaces: string[]): Promise<number> {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  let deleted = 0;
  try {
    for (const ns of namespaces) {
      for await (const keys of client.scanIterator({ MATCH: `${ns}:*`, COUNT: 500 })) {
        if (keys.length > 0) deleted += await client.unlink(keys);
      }
    }
  } finally {
    await client.close();
  }
  return deleted;
}

async function countKeys(ns: string): Promise<number> {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  let count = 0;
  try {
    for await (const keys of client.scanIterator({ MATCH: `${ns}:*`, COUNT: 500 })) count += keys.length;
  } finally {
    await client.close();
  }
  return count;
}

const available = await redisAnswers(REDIS_URL);
let testCounter = 0;
const redisHarness = () =>
  makeHarness('redis', { redisUrl: REDIS_URL, namespace: `${runId}-${++testCounter}` }, async (namespaces) => {
    await deleteNamespaces(namespaces);
  });

if (available) {
  storeContract('redis', { persistent: true }, redisHarness);

  describe('redis store specifics', () => {
    it('claims an id atomically across two connections (SET NX)', async () => {
      const harness = await redisHarness();
      try {
        const a = await harness.open();
        const b = await harness.open();
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).dedupe.claim('telegram:update:77')));
        expect(results.filter(Boolean)).toHaveLength(1);
      } finally {
        await harness.cleanup();
      }
    });

    it('keeps every key under the namespace, and cleanup leaves none', async () => {
      const ns = `${runId}-keys`;
      const harness = await makeHarness('redis', { redisUrl: REDIS_URL, namespace: ns }, async (namespaces) => {
        await deleteNamespaces(namespaces);
      });
      let cleaned = false;
      try {
        const store = await harness.open();
        await store.history.append('telegram:1', { role: 'user', text: 'hi', atMs: 1 });
        await store.dedupe.claim('m1');
        await store.kv.set('k', 1, 60_000);
        // history, dedupe, kv, the data key check and the records-sealed marker
        expect(await countKeys(ns)).toBe(5);
        await harness.cleanup();
        cleaned = true;
        expect(await countKeys(ns)).toBe(0);
      } finally {
        if (!cleaned) await harness.cleanup();
      }
    });
  });
} else if (process.env.CI) {
  describe('redis store', () => {
    it('needs Redis', () => {
      throw new Error(`Redis does not answer at ${REDIS_URL}; CI must provide it (set VOICETWIN_TEST_REDIS_URL to another server).`);
    });
  });
} else {
  console.warn(`Skipping the Redis store suite: Redis does not answer at ${REDIS_URL} (start redis-server or set VOICETWIN_TEST_REDIS_URL).`);
  describe.skip(`redis store (Redis does not answer at ${REDIS_URL})`, () => { // keep-skip: only outside CI when no Redis answers; under CI the suite fails instead
    it('runs the store contract', () => undefined);
  });
}
