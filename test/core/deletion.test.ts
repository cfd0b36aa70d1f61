/**
 * `/delete` deletes: with the real application (SQLite store + embedded queue, and Redis store +
 * BullMQ), a person's unique marker written into their display name, history, memories and usage
 * is found nowhere in the raw SQLite files (main, -wal, -shm) or Redis values even before deletion
 * (it is sealed), and after deletion not even their user key is left in the store's raw bytes.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { InboundMessage, OutboundReply, ReplyTarget } from '../../src/core/types.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { REDIS_URL, redisAvailable } from '../helpers/redis.js';
import { deleteRedisNamespace, redisKeysContaining, sqliteFilesContaining } from '../helpers/raw-scan.js';

class Recorder implements ReplyTarget {
  replies: OutboundReply[] = [];
  async reply(r: OutboundReply): Promise<void> {
    this.replies.push(r);
  }
  async activity(): Promise<void> {}
  async status(): Promise<(t: string) => Promise<void>> {
    return async () => undefined;
  }
}

const hasRedis = await redisAvailable();
let app: TestApp | undefined;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await app?.close();
  app = undefined;
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** Drives a person through text turns, /remember and usage, then /delete; returns what to scan for. */
async function confideThenDelete(
  a: TestApp,
  scan: (needle: string) => Promise<string[]>,
): Promise<{ beforeMarker: string[]; beforeUserKey: string[]; afterMarker: string[]; afterUserKey: string[] }> {
  const marker = `bluebird${randomBytes(6).toString('hex')}`;
  const userId = `u${randomBytes(6).toString('hex')}`;
  const userKey = `console:${userId}`;
  let seq = 0;
  const msg = (partial: Partial<InboundMessage>): InboundMessage => ({
    id: `${userId}-m${++seq}`,
    channel: 'console',
    chatId: userId,
    userId,
    displayName: `Zed ${marker}`,
    receivedAtMs: Date.now(),
    ...partial,
  });
  const out = new Recorder();
  await a.engine.submit(msg({ text: `I am worried about my divorce hearing ${marker} on Friday` }), out);
  await a.engine.submit(msg({ command: { name: 'remember', args: `my PIN hint is ${marker}` } }), out);
  await a.engine.submit(msg({ text: `Tell me about ${marker}` }), out);
  await a.engine.whenIdle();
  await a.engine.usage?.record(userKey, { provider: 'local', ttsChars: 42 });

  const summary = await a.store.summarize(userKey);
  expect(summary.user?.displayName).toBe(`Zed ${marker}`);
  expect(summary.historyTurns).toBeGreaterThanOrEqual(4);
  expect(summary.memories.map((m) => m.text)).toContain(`my PIN hint is ${marker}`);
  expect((await a.store.history.recent(userKey, 10)).some((t) => t.text.includes(marker))).toBe(true);
  expect((await a.engine.usage?.today(userKey))?.total.ttsChars).toBeGreaterThanOrEqual(42);
  const beforeMarker = await scan(marker);
  const beforeUserKey = await scan(userKey); // ids are in the clear: proves the scan sees the rows

  await a.engine.submit(msg({ action: 'delete:confirm' }), out);
  await a.engine.whenIdle();
  expect(out.replies.at(-1)?.text).toMatch(/^Deleted: /);
  const after = await a.store.summarize(userKey);
  expect(after).toMatchObject({ samples: [], historyTurns: 0, memories: [], blobKeys: [] });
  expect(after.user).toBeUndefined();
  expect((await a.engine.usage?.today(userKey))?.total.ttsChars).toBe(0);
  return { beforeMarker, beforeUserKey, afterMarker: await scan(marker), afterUserKey: await scan(userKey) };
}

describe('deletion that deletes', () => {
  it('SQLite store and embedded queue: nothing of the person left in the raw files', async () => {
    app = await createTestApp();
    const dir = app.dataDir;
    const result = await confideThenDelete(app, (needle) => sqliteFilesContaining(dir, needle));
    expect(result.beforeMarker).toEqual([]);
    expect(result.beforeUserKey).toEqual(expect.arrayContaining(['voicetwin.sqlite-wal', 'jobs.sqlite-wal']));
    expect(result.afterMarker).toEqual([]);
    expect(result.afterUserKey).toEqual([]);
  });

  it.skipIf(!hasRedis)('Redis store and BullMQ: nothing of the person left in Redis values', async () => {
    const namespace = `vt-del-${process.pid}-${randomBytes(3).toString('hex')}`;
    cleanups.push(() => deleteRedisNamespace(REDIS_URL, namespace), () => deleteRedisNamespace(REDIS_URL, `${namespace}-jobs`));
    app = await createTestApp({ env: { REDIS_URL, REDIS_NAMESPACE: namespace } });
    const scan = async (needle: string): Promise<string[]> => [
      ...(await redisKeysContaining(REDIS_URL, namespace, needle)),
      ...(await redisKeysContaining(REDIS_URL, `${namespace}-jobs`, needle)),
    ];
    const result = await confideThenDelete(app, scan);
    expect(result.beforeMarker).toEqual([]);
    expect(result.beforeUserKey.length).toBeGreaterThan(0);
    expect(result.afterMarker).toEqual([]);
    // The store holds no key or value naming the person; the queue keeps only the job of the
    // /delete press itself (locked while it ran; its data sealed, no personal text), until it expires.
    expect(result.afterUserKey.filter((k) => !k.startsWith(`${namespace}-jobs:`))).toEqual([]);
  });
});
