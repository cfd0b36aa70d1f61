/**
 * API keys and sign-in codes under concurrent calls, on the SQLite store (one process owns the
 * file, so one store instance) and on the Redis store (127.0.0.1:6379 or VOICETWIN_TEST_REDIS_URL;
 * skipped when Redis does not answer) with two store instances over the same data, as two
 * processes would have: a sign-in code redeemed by many
 * callers at once gives exactly one key, concurrent creations neither lose an index entry nor pass
 * the per-person limit, and concurrent revocations of one key report it revoked once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ApiKeys, MAX_KEYS_PER_PERSON } from '../../src/core/apikeys.js';
import type { Store } from '../../src/core/store/types.js';
import { makeHarness } from './store/harness.js';
import type { StoreHarness } from './store/contract.js';
import { redisAvailable, REDIS_URL } from '../helpers/redis.js';
import { deleteRedisNamespace } from '../helpers/raw-scan.js';

const harnesses: StoreHarness[] = [];
afterEach(async () => {
  while (harnesses.length) await harnesses.pop()!.cleanup();
});

const redisUp = await redisAvailable();

/**
 * Two stores over the same data (two "processes") on Redis; on SQLite, which one process owns
 * (its lock is in-process, see keyv-store.ts), the same store twice.
 */
async function twoStores(backend: 'sqlite' | 'redis'): Promise<[Store, Store]> {
  const harness =
    backend === 'redis'
      ? await makeHarness('redis', { redisUrl: REDIS_URL, namespace: `vt-test-keys-${randomBytes(4).toString('hex')}` }, async (namespaces) => {
          for (const ns of namespaces) await deleteRedisNamespace(REDIS_URL, ns);
        })
      : await makeHarness('sqlite');
  harnesses.push(harness);
  const first = await harness.open();
  return [first, backend === 'redis' ? await harness.open() : first];
}

for (const backend of ['sqlite', 'redis'] as const) {
  describe.skipIf(backend === 'redis' && !redisUp)(`API keys on ${backend}, concurrently`, () => {
    it('a sign-in code redeemed by 10 callers at once gives exactly one key', async () => {
      const [a, b] = await twoStores(backend);
      const keysA = new ApiKeys(a.kv);
      const keysB = new ApiKeys(b.kv);
      const code = await keysA.createSignInCode('web:owner');
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? keysA : keysB).redeemSignInCode(code.toLowerCase())));
      const granted = results.filter((r) => r !== undefined);
      expect(granted).toHaveLength(1);
      expect(await keysA.list('web:owner')).toHaveLength(1);
      expect(await keysB.verify(granted[0]!.key)).toMatchObject({ userKey: 'web:owner', label: 'web sign-in' });
      expect(await keysB.redeemSignInCode(code)).toBeUndefined();
    });

    it('concurrent creations keep every key in the index and never pass the limit', async () => {
      const [a, b] = await twoStores(backend);
      const keysA = new ApiKeys(a.kv);
      const keysB = new ApiKeys(b.kv);
      const first = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? keysA : keysB).create('telegram:7', `k${i}`)));
      const listed = await keysA.list('telegram:7');
      expect(listed.map((r) => r.id).sort()).toEqual(first.map((c) => c.record.id).sort());
      for (const c of first) expect(await keysB.verify(c.key)).toMatchObject({ id: c.record.id });

      const more = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => (i % 2 ? keysA : keysB).create('telegram:7', `extra${i}`)));
      const made = more.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<ApiKeys['create']>>> => r.status === 'fulfilled');
      expect(made).toHaveLength(MAX_KEYS_PER_PERSON - 12);
      for (const r of more) if (r.status === 'rejected') expect(String(r.reason)).toContain(`at most ${MAX_KEYS_PER_PERSON} API keys per person`);
      expect(await keysB.list('telegram:7')).toHaveLength(MAX_KEYS_PER_PERSON);
      // A refused creation leaves no working key behind.
      expect((await a.kv.get<unknown[]>('apikeys:telegram:7'))?.length).toBe(MAX_KEYS_PER_PERSON);
    });

    it('concurrent revocations of one key: revoked once, the other keys untouched', async () => {
      const [a, b] = await twoStores(backend);
      const keysA = new ApiKeys(a.kv);
      const keysB = new ApiKeys(b.kv);
      const created = await Promise.all(['x', 'y', 'z'].map((l) => keysA.create('discord:5', l)));
      const target = created[1]!;
      const outcomes = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? keysA : keysB).revoke('discord:5', target.record.id)));
      expect(outcomes.filter(Boolean)).toHaveLength(1);
      expect(await keysA.verify(target.key)).toBeUndefined();
      expect((await keysB.list('discord:5')).map((r) => r.label).sort()).toEqual(['x', 'z']);
      // Revoking and creating at once: the new key survives, the old ones are gone.
      const [count, fresh] = await Promise.all([keysA.revokeAll('discord:5'), keysB.create('discord:5', 'new')]);
      const left = await keysA.list('discord:5');
      expect(count + left.length).toBe(3);
      if (left.length === 1) expect(left[0]!.id).toBe(fresh.record.id);
      for (const c of [created[0]!, created[2]!]) expect(await keysB.verify(c.key)).toBeUndefined();
    });
  });
}
