/**
 * Personal records are sealed at rest (AES-256-GCM, record key as associated data): raw-byte scans
 * of the SQLite files and of every Redis value under the namespace find none of the words a person
 * confided; plaintext left by an older version is sealed on start, idempotently.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Keyv } from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import KeyvRedis from '@keyv/redis';
import { SQLITE_FILE } from '../../../src/core/store/keyv-store.js';
import { RecordIntegrityError, SEALED_PREFIX } from '../../../src/core/store/record-cipher.js';
import type { Store } from '../../../src/core/store/types.js';
import { makeJob, makeProfile, makeUser, type StoreHarness } from './contract.js';
import { makeHarness } from './harness.js';
import { REDIS_URL, redisAvailable } from '../../helpers/redis.js';
import { deleteRedisNamespace, redisKeysContaining, sqliteFilesContaining } from '../../helpers/raw-scan.js';

const hasRedis = await redisAvailable();

/** Writes `marker` into every personal field the store holds for `userKey`. */
async function confide(store: Store, userKey: string, marker: string): Promise<void> {
  await store.users.put(makeUser(userKey, { displayName: `Ann ${marker}` }));
  await store.profiles.put(makeProfile(userKey, { consent: { phrase: `I agree ${marker}`, codeWord: 'maple', heardText: `i agree ${marker}` } }));
  await store.history.append(userKey, { role: 'user', text: `I am worried about ${marker} on Friday`, atMs: 1 }, { role: 'twin', text: `About ${marker}…`, atMs: 2 });
  await store.memories.add(userKey, { id: 'm1', text: `my PIN hint is ${marker}`, createdAtMs: 3, source: 'explicit' });
  await store.jobs.put(makeJob('j1', { userKey, data: { note: marker } }));
  await store.kv.set(`usage:2026-01-01:${userKey}`, { userKey, note: marker }, 60_000);
}

interface Backend {
  name: 'sqlite' | 'redis';
  harness(): Promise<StoreHarness>;
  /** Where the marker is found in raw storage. */
  scan(harness: StoreHarness, marker: string): Promise<string[]>;
  /** A keyv over the same rows, without sealing (an older VoiceTwin's writes). */
  plainKeyv(harness: StoreHarness): Keyv;
  namespace: string;
}

const runId = `vt-atrest-${process.pid}-${randomBytes(3).toString('hex')}`;
let counter = 0;

function sqliteBackend(): Backend {
  return {
    name: 'sqlite',
    namespace: 'voicetwin',
    harness: () => makeHarness('sqlite'),
    scan: (h, marker) => sqliteFilesContaining(h.dataDir, marker),
    plainKeyv(h) {
      const sqlite = new KeyvSqlite({ uri: `sqlite://${path.join(h.dataDir, SQLITE_FILE)}`, table: 'keyv' });
      sqlite.namespace = undefined;
      return new Keyv({ store: sqlite, namespace: undefined, useKeyPrefix: false });
    },
  };
}

function redisBackend(): Backend {
  const namespace = `${runId}-${counter++}`;
  return {
    name: 'redis',
    namespace,
    harness: () => makeHarness('redis', { redisUrl: REDIS_URL, namespace }, async (ns) => Promise.all(ns.map((n) => deleteRedisNamespace(REDIS_URL, n))).then(() => undefined)),
    scan: (_h, marker) => redisKeysContaining(REDIS_URL, namespace, marker),
    plainKeyv() {
      const redis = new KeyvRedis<string>(REDIS_URL);
      redis.namespace = undefined;
      return new Keyv({ store: redis, namespace: undefined, useKeyPrefix: false });
    },
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

for (const make of [sqliteBackend, redisBackend]) {
  const name = make === sqliteBackend ? 'sqlite' : 'redis';
  describe.skipIf(name === 'redis' && !hasRedis)(`personal records at rest (${name})`, () => {
    it('stores no personal field in plaintext, and reads every one back', async () => {
      const backend = make();
      const harness = await backend.harness();
      cleanups.push(() => harness.cleanup());
      const store = await harness.open();
      const marker = `bluebird-${randomBytes(6).toString('hex')}`;
      await confide(store, 'telegram:4242', marker);

      expect(await backend.scan(harness, marker)).toEqual([]);
      expect((await store.users.get('telegram:4242'))?.displayName).toBe(`Ann ${marker}`);
      expect((await store.profiles.get('telegram:4242'))?.consent.heardText).toBe(`i agree ${marker}`);
      expect((await store.history.recent('telegram:4242', 10)).map((t) => t.text)).toEqual([`I am worried about ${marker} on Friday`, `About ${marker}…`]);
      expect((await store.memories.list('telegram:4242'))[0]?.text).toBe(`my PIN hint is ${marker}`);
      expect((await store.jobs.get('j1'))?.data).toEqual({ note: marker });
      expect(await store.kv.get(`usage:2026-01-01:telegram:4242`)).toEqual({ userKey: 'telegram:4242', note: marker });
      expect((await store.users.list()).map((u) => u.key)).toEqual(['telegram:4242']);
      await store.close();
      expect(await backend.scan(harness, marker)).toEqual([]);
    });

    it('refuses a sealed value moved to another record', async () => {
      const backend = make();
      const harness = await backend.harness();
      cleanups.push(() => harness.cleanup());
      const store = await harness.open();
      await store.history.append('telegram:1', { role: 'user', text: 'only for person 1', atMs: 1 });
      await store.history.append('telegram:2', { role: 'user', text: 'person 2', atMs: 1 });
      const raw = backend.plainKeyv(harness);
      try {
        const sealed = await raw.get<string>(`${backend.namespace}:history:telegram:1`);
        expect(sealed?.startsWith(SEALED_PREFIX)).toBe(true);
        await raw.set(`${backend.namespace}:history:telegram:2`, sealed);
      } finally {
        await raw.disconnect();
      }
      await expect(store.history.recent('telegram:2', 5)).rejects.toBeInstanceOf(RecordIntegrityError);
      expect((await store.history.recent('telegram:1', 5))[0]?.text).toBe('only for person 1');
    });

    it('seals plaintext written by an older version on start, keeps expiries, and does it once', async () => {
      const backend = make();
      const harness = await backend.harness();
      cleanups.push(() => harness.cleanup());
      const first = await harness.open();
      await first.close();
      const ns = backend.namespace;
      const marker = `legacy-${randomBytes(6).toString('hex')}`;
      const raw = backend.plainKeyv(harness);
      try {
        await raw.set(`${ns}:meta:records-sealed-v1`, false); // a store from before sealing
        await raw.set(`${ns}:user:discord:7`, makeUser('discord:7', { displayName: marker }));
        await raw.set(`${ns}:users:chunk:0`, ['discord:7']);
        await raw.set(`${ns}:users:chunks`, 1);
        await raw.set(`${ns}:history:discord:7`, [{ role: 'user', text: marker, atMs: 1 }]);
        await raw.set(`${ns}:memories:discord:7`, [{ id: 'a', text: marker, createdAtMs: 1 }]);
        await raw.set(`${ns}:kv:usage:2026-01-01:discord:7`, { note: marker }, 3_600_000);
      } finally {
        await raw.disconnect();
      }
      expect((await backend.scan(harness, marker)).length).toBeGreaterThan(0);

      const store = await harness.open();
      expect((await store.users.list()).map((u) => u.displayName)).toEqual([marker]);
      expect((await store.history.recent('discord:7', 5))[0]?.text).toBe(marker);
      expect((await store.memories.list('discord:7'))[0]?.text).toBe(marker);
      expect(await store.kv.get('usage:2026-01-01:discord:7')).toEqual({ note: marker });
      expect(await backend.scan(harness, marker)).toEqual([]);

      const check = backend.plainKeyv(harness);
      try {
        const stored = (await check.get<string>(`${ns}:history:discord:7`, { raw: true })) as unknown as { value: string; expires?: number };
        expect(stored.value.startsWith(SEALED_PREFIX)).toBe(true);
        const usage = (await check.get<string>(`${ns}:kv:usage:2026-01-01:discord:7`, { raw: true })) as unknown as { value: string; expires?: number };
        expect(usage.value.startsWith(SEALED_PREFIX)).toBe(true);
        expect(usage.expires).toBeGreaterThan(Date.now());
        expect(await check.get(`${ns}:meta:records-sealed-v1`)).toBe(true);
      } finally {
        await check.disconnect();
      }
      await store.close();
      // A second start finds nothing to do and reads the same values.
      const again = await harness.open();
      expect((await again.history.recent('discord:7', 5))[0]?.text).toBe(marker);
    });
  });
}
