/**
 * One behavioural contract for every store backend. Each backend's test file builds a harness
 * (how to open a store over the same data again, how to clean up) and calls {@link storeContract}.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChatTurn, MemoryRecord } from '../../../src/core/providers.js';
import type { JobRecord, SampleRecord, Store, UserRecord, VoiceProfile } from '../../../src/core/store/types.js';
import { USERS_INDEX_CHUNK_KEYS } from '../../../src/core/store/keyv-store.js';

/** How a backend's test file opens stores. */
export interface StoreHarness {
  /** Opens a store over the harness's data; persistent harnesses see the same data every time. */
  open(options?: { dataKey?: Buffer; historyMaxTurns?: number; namespace?: string }): Promise<Store>;
  /** The data directory of the harness (blobs live under `<dataDir>/blobs`). */
  dataDir: string;
  /** The data key stores are opened with unless told otherwise. */
  dataKey: Buffer;
  /** Closes every store the harness opened and deletes all data it created. */
  cleanup(): Promise<void>;
}

export function makeUser(key: string, overrides: Partial<UserRecord> = {}): UserRecord {
  const [channel, chatId] = key.split(':') as [UserRecord['channel'], string];
  return {
    key,
    channel,
    address: { channel, chatId },
    displayName: `Name of ${key}`,
    persona: 'supportive',
    sendTextWithVoice: true,
    optedOut: false,
    blocked: false,
    messageCount: 0,
    createdAtMs: 1_700_000_000_000,
    updatedAtMs: 1_700_000_000_000,
    ...overrides,
  };
}

export function makeProfile(userKey: string, overrides: Partial<VoiceProfile> = {}): VoiceProfile {
  return {
    userKey,
    state: 'collecting',
    consent: { phrase: 'I agree to clone my voice, code word maple', codeWord: 'maple', grantedAtMs: 1_700_000_000_500, method: 'spoken-match' },
    speechSec: 12.5,
    requiredSpeechSec: 60,
    updatedAtMs: 1_700_000_001_000,
    ...overrides,
  };
}

export function makeSample(userKey: string, id: string, blobKey = `${userKey}/sample/${'0'.repeat(32)}`): SampleRecord {
  return { id, userKey, blobKey, durationSec: 8.2, speechSec: 7.1, loudnessDb: -23.4, snrDb: 31.5, sourceMessageId: `msg-${id}`, createdAtMs: 1_700_000_002_000 };
}

export function makeJob(id: string, overrides: Partial<JobRecord> = {}): JobRecord {
  return { id, kind: 'clone', state: 'queued', data: { attempt: 1 }, createdAtMs: 1_700_000_003_000, updatedAtMs: 1_700_000_003_000, ...overrides };
}

export function turn(i: number, role: ChatTurn['role'] = i % 2 === 0 ? 'user' : 'twin'): ChatTurn {
  return { role, text: `turn ${i}`, atMs: 1_700_000_000_000 + i };
}

export function memory(id: string, text = `fact ${id}`): MemoryRecord {
  return { id, text, createdAtMs: 1_700_000_004_000, source: 'explicit' };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Files under a directory, recursively (empty when it does not exist). */
async function filesUnder(dir: string): Promise<string[]> {
  try {
    const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * Registers the store contract tests.
 * @param name the backend's name, shown in test titles
 * @param options.persistent true when data survives close() and a new open()
 * @param makeHarness builds a fresh harness (fresh data) for each test
 */
export function storeContract(name: string, options: { persistent: boolean }, makeHarness: () => Promise<StoreHarness>): void {
  const { persistent } = options;
  describe(`store contract: ${name}`, () => {
    let harness: StoreHarness;
    let store: Store;

    beforeEach(async () => {
      harness = await makeHarness();
      store = await harness.open();
    });
    afterEach(async () => {
      await harness.cleanup();
    });

    it('reports its backend', () => {
      expect(store.backend).toBe(name);
    });

    describe('users', () => {
      it('stores, replaces, lists and deletes users', async () => {
        expect(await store.users.get('telegram:1')).toBeUndefined();
        expect(await store.users.list()).toEqual([]);

        const alice = makeUser('telegram:1');
        await store.users.put(alice);
        expect(await store.users.get('telegram:1')).toEqual(alice);

        const updated = { ...alice, messageCount: 7, persona: 'coaching' as const, updatedAtMs: alice.updatedAtMs + 1 };
        await store.users.put(updated);
        expect(await store.users.get('telegram:1')).toEqual(updated);

        const bob = makeUser('discord:2');
        const carol = makeUser('whatsapp:3@c.us');
        await store.users.put(bob);
        await store.users.put(carol);
        expect(await store.users.list()).toEqual([updated, bob, carol]);

        await store.users.delete('discord:2');
        expect(await store.users.get('discord:2')).toBeUndefined();
        expect(await store.users.list()).toEqual([updated, carol]);

        await store.users.delete('discord:2');
        await store.users.delete('never:seen');
        expect((await store.users.list()).map((u) => u.key)).toEqual(['telegram:1', 'whatsapp:3@c.us']);
      });

      it('re-adds a deleted user to the list when it is stored again', async () => {
        await store.users.put(makeUser('telegram:1'));
        await store.users.delete('telegram:1');
        await store.users.put(makeUser('telegram:1', { messageCount: 2 }));
        expect((await store.users.list()).map((u) => [u.key, u.messageCount])).toEqual([['telegram:1', 2]]);
      });

      it('keeps first-seen order across index chunks, and deletes from a middle chunk', async () => {
        const n = USERS_INDEX_CHUNK_KEYS * 2 + 50;
        for (let i = 0; i < n; i++) await store.users.put(makeUser(`telegram:${i}`));
        // Replacing a user does not index it again.
        await store.users.put(makeUser('telegram:5', { messageCount: 3 }));
        let keys = (await store.users.list()).map((u) => u.key);
        expect(keys).toHaveLength(n);
        expect(keys.slice(0, 3)).toEqual(['telegram:0', 'telegram:1', 'telegram:2']);
        expect(keys.at(-1)).toBe(`telegram:${n - 1}`);
        const middle = `telegram:${USERS_INDEX_CHUNK_KEYS + 7}`;
        await store.users.delete(middle);
        await store.users.put(makeUser('telegram:new'));
        keys = (await store.users.list()).map((u) => u.key);
        expect(keys).toHaveLength(n);
        expect(keys).not.toContain(middle);
        expect(keys.at(-1)).toBe('telegram:new');
        expect(new Set(keys).size).toBe(keys.length);
      });

      it('returns copies: mutating a returned record does not change the store', async () => {
        await store.users.put(makeUser('telegram:1'));
        const got = await store.users.get('telegram:1');
        got!.messageCount = 99;
        expect((await store.users.get('telegram:1'))!.messageCount).toBe(0);
      });

      it('rejects a user without a key', async () => {
        await expect(async () => store.users.put({ ...makeUser('telegram:1'), key: '' })).rejects.toThrow(/non-empty/);
      });
    });

    describe('profiles', () => {
      it('stores, replaces and deletes a voice profile', async () => {
        expect(await store.profiles.get('telegram:1')).toBeUndefined();
        const profile = makeProfile('telegram:1');
        await store.profiles.put(profile);
        expect(await store.profiles.get('telegram:1')).toEqual(profile);

        const ready = makeProfile('telegram:1', {
          state: 'ready',
          voice: { provider: 'local', voiceId: 'v1', params: { pitchHz: 118, wpm: 165 }, approximate: true, label: 'offline preview voice' },
        });
        await store.profiles.put(ready);
        expect(await store.profiles.get('telegram:1')).toEqual(ready);
        expect(await store.profiles.get('telegram:2')).toBeUndefined();

        await store.profiles.delete('telegram:1');
        expect(await store.profiles.get('telegram:1')).toBeUndefined();
        await store.profiles.delete('telegram:1');
      });
    });

    describe('samples', () => {
      it('lists samples per user in the order added; the same id replaces', async () => {
        expect(await store.samples.list('telegram:1')).toEqual([]);
        const a = makeSample('telegram:1', 'a');
        const b = makeSample('telegram:1', 'b');
        const other = makeSample('telegram:2', 'x');
        await store.samples.add(a);
        await store.samples.add(b);
        await store.samples.add(other);
        expect(await store.samples.list('telegram:1')).toEqual([a, b]);
        expect(await store.samples.list('telegram:2')).toEqual([other]);

        const a2 = { ...a, speechSec: 9.9 };
        await store.samples.add(a2);
        expect(await store.samples.list('telegram:1')).toEqual([a2, b]);

        await store.samples.deleteAll('telegram:1');
        expect(await store.samples.list('telegram:1')).toEqual([]);
        expect(await store.samples.list('telegram:2')).toEqual([other]);
        await store.samples.deleteAll('telegram:1');
      });
    });

    describe('history', () => {
      it('returns the most recent turns oldest first', async () => {
        expect(await store.history.recent('telegram:1', 10)).toEqual([]);
        await store.history.append('telegram:1', turn(0), turn(1));
        await store.history.append('telegram:1', turn(2));
        await store.history.append('telegram:1');
        expect(await store.history.recent('telegram:1', 10)).toEqual([turn(0), turn(1), turn(2)]);
        expect(await store.history.recent('telegram:1', 2)).toEqual([turn(1), turn(2)]);
        expect(await store.history.recent('telegram:1', 0)).toEqual([]);
        expect(await store.history.recent('telegram:2', 5)).toEqual([]);
      });

      it('keeps only the newest 200 turns by default', async () => {
        const turns = Array.from({ length: 230 }, (_, i) => turn(i));
        await store.history.append('telegram:1', ...turns.slice(0, 150));
        await store.history.append('telegram:1', ...turns.slice(150));
        const kept = await store.history.recent('telegram:1', 1000);
        expect(kept).toHaveLength(200);
        expect(kept[0]).toEqual(turn(30));
        expect(kept[199]).toEqual(turn(229));
        expect((await store.summarize('telegram:1')).historyTurns).toBe(200);
      });

      it('honours a configured cap', async () => {
        const small = await harness.open({ historyMaxTurns: 3, namespace: `cap${randomBytes(3).toString('hex')}` });
        for (let i = 0; i < 5; i++) await small.history.append('telegram:1', turn(i));
        expect(await small.history.recent('telegram:1', 10)).toEqual([turn(2), turn(3), turn(4)]);
      });

      it('rejects a negative or fractional limit', async () => {
        await expect(store.history.recent('telegram:1', -1)).rejects.toThrow(RangeError);
        await expect(store.history.recent('telegram:1', 1.5)).rejects.toThrow(RangeError);
      });

      it('deleteAll removes the history', async () => {
        await store.history.append('telegram:1', turn(0));
        await store.history.deleteAll('telegram:1');
        expect(await store.history.recent('telegram:1', 10)).toEqual([]);
      });
    });

    describe('memories', () => {
      it('adds, replaces by id, removes and clears memories', async () => {
        expect(await store.memories.list('telegram:1')).toEqual([]);
        await store.memories.add('telegram:1', memory('m1'));
        await store.memories.add('telegram:1', memory('m2'));
        await store.memories.add('telegram:2', memory('m1', 'someone else'));
        expect(await store.memories.list('telegram:1')).toEqual([memory('m1'), memory('m2')]);

        await store.memories.add('telegram:1', memory('m1', 'updated'));
        expect(await store.memories.list('telegram:1')).toEqual([memory('m1', 'updated'), memory('m2')]);

        expect(await store.memories.remove('telegram:1', 'm1')).toBe(true);
        expect(await store.memories.remove('telegram:1', 'm1')).toBe(false);
        expect(await store.memories.remove('telegram:1', 'nope')).toBe(false);
        expect(await store.memories.list('telegram:1')).toEqual([memory('m2')]);

        await store.memories.deleteAll('telegram:1');
        expect(await store.memories.list('telegram:1')).toEqual([]);
        expect(await store.memories.list('telegram:2')).toEqual([memory('m1', 'someone else')]);
      });
    });

    describe('jobs', () => {
      it('stores jobs and lists the unfinished ones oldest first', async () => {
        expect(await store.jobs.get('j1')).toBeUndefined();
        expect(await store.jobs.listUnfinished()).toEqual([]);
        const j1 = makeJob('j1', { userKey: 'telegram:1', createdAtMs: 30 });
        const j2 = makeJob('j2', { kind: 'broadcast', state: 'running', createdAtMs: 10, data: { sent: 3, recipients: ['telegram:1'] } });
        const j3 = makeJob('j3', { userKey: 'telegram:2', state: 'done', createdAtMs: 20 });
        await store.jobs.put(j1);
        await store.jobs.put(j2);
        await store.jobs.put(j3);
        expect(await store.jobs.get('j2')).toEqual(j2);
        expect(await store.jobs.listUnfinished()).toEqual([j2, j1]);

        const j1Running = { ...j1, state: 'running' as const };
        await store.jobs.put(j1Running);
        expect(await store.jobs.listUnfinished()).toEqual([j2, j1Running]);

        const j2Failed = { ...j2, state: 'failed' as const, error: 'network down' };
        await store.jobs.put(j2Failed);
        expect(await store.jobs.listUnfinished()).toEqual([j1Running]);
        expect(await store.jobs.get('j2')).toEqual(j2Failed);

        await store.jobs.put({ ...j3, state: 'queued' });
        expect((await store.jobs.listUnfinished()).map((j) => j.id)).toEqual(['j3', 'j1']);
      });

      it('deleteForUser removes only that user’s jobs, finished or not', async () => {
        await store.jobs.put(makeJob('a', { userKey: 'telegram:1' }));
        await store.jobs.put(makeJob('b', { userKey: 'telegram:1', state: 'done' }));
        await store.jobs.put(makeJob('c', { userKey: 'telegram:2' }));
        await store.jobs.put(makeJob('d', { kind: 'broadcast' }));
        await store.jobs.deleteForUser('telegram:1');
        expect(await store.jobs.get('a')).toBeUndefined();
        expect(await store.jobs.get('b')).toBeUndefined();
        expect((await store.jobs.listUnfinished()).map((j) => j.id).sort()).toEqual(['c', 'd']);
        await store.jobs.deleteForUser('telegram:1');
      });
    });

    describe('dedupe', () => {
      it('claims an id once', async () => {
        expect(await store.dedupe.claim('telegram:update:1')).toBe(true);
        expect(await store.dedupe.claim('telegram:update:1')).toBe(false);
        expect(await store.dedupe.claim('telegram:update:1')).toBe(false);
        expect(await store.dedupe.claim('telegram:update:2')).toBe(true);
      });

      it('forgets a claim after its TTL', async () => {
        expect(await store.dedupe.claim('discord:interaction:9', 80)).toBe(true);
        expect(await store.dedupe.claim('discord:interaction:9', 80)).toBe(false);
        await sleep(200);
        expect(await store.dedupe.claim('discord:interaction:9', 80)).toBe(true);
      });

      it('gives exactly one winner among concurrent claims of the same id', async () => {
        const results = await Promise.all(Array.from({ length: 25 }, () => store.dedupe.claim('whatsapp:msg:ABC')));
        expect(results.filter(Boolean)).toHaveLength(1);
        const mixed = await Promise.all(Array.from({ length: 20 }, (_, i) => store.dedupe.claim(`id-${i % 5}`)));
        expect(mixed.filter(Boolean)).toHaveLength(5);
      });

      it('rejects a non-positive TTL', async () => {
        await expect(store.dedupe.claim('x', 0)).rejects.toThrow(RangeError);
        await expect(store.dedupe.claim('x', Number.NaN)).rejects.toThrow(RangeError);
        expect(await store.dedupe.claim('x')).toBe(true);
      });
    });

    describe('kv', () => {
      it('stores JSON values with optional TTL', async () => {
        expect(await store.kv.get('missing')).toBeUndefined();
        await store.kv.set('tts:abc', { blobKey: 'telegram:1/tts/x', characters: 42, tags: ['a'] });
        await store.kv.set('counter', 3);
        await store.kv.set('flag', false);
        expect(await store.kv.get('tts:abc')).toEqual({ blobKey: 'telegram:1/tts/x', characters: 42, tags: ['a'] });
        expect(await store.kv.get<number>('counter')).toBe(3);
        expect(await store.kv.get<boolean>('flag')).toBe(false);

        await store.kv.set('short', 'soon gone', 80);
        expect(await store.kv.get('short')).toBe('soon gone');
        await sleep(200);
        expect(await store.kv.get('short')).toBeUndefined();

        await store.kv.delete('counter');
        expect(await store.kv.get('counter')).toBeUndefined();
      });

      it('refuses binary values and undefined', async () => {
        await expect(store.kv.set('audio', Buffer.from('RIFF'))).rejects.toThrow(/blob store/);
        await expect(store.kv.set('audio', new Uint8Array(4))).rejects.toThrow(/blob store/);
        await expect(store.kv.set('nothing', undefined)).rejects.toThrow(TypeError);
        expect(await store.kv.get('audio')).toBeUndefined();
      });

      it('keeps kv keys apart from record keys', async () => {
        await store.users.put(makeUser('telegram:1'));
        await store.kv.set('user:telegram:1', 'not a user');
        expect((await store.users.get('telegram:1'))!.key).toBe('telegram:1');
        expect(await store.kv.get('user:telegram:1')).toBe('not a user');
      });
    });

    describe('namespaces', () => {
      it('isolates stores with different namespaces on the same backend', async () => {
        const other = await harness.open({ namespace: `other${randomBytes(3).toString('hex')}` });
        await store.users.put(makeUser('telegram:1'));
        await store.kv.set('k', 1);
        expect(await other.users.get('telegram:1')).toBeUndefined();
        expect(await other.users.list()).toEqual([]);
        expect(await other.kv.get('k')).toBeUndefined();
        expect(await other.dedupe.claim('m')).toBe(true);
        expect(await store.dedupe.claim('m')).toBe(true);
      });

      it('refuses a namespace with pattern characters', async () => {
        await expect(harness.open({ namespace: 'bad*ns' })).rejects.toThrow(/namespace/);
      });
    });

    describe('concurrency within one process', () => {
      it('loses no history turn when appends for one user race', async () => {
        const turns = Array.from({ length: 60 }, (_, i) => turn(i));
        await Promise.all(turns.map((t) => store.history.append('telegram:1', t)));
        expect(await store.history.recent('telegram:1', 100)).toEqual(turns);
      });

      it('loses no memory, sample or user when writes race', async () => {
        await Promise.all([
          ...Array.from({ length: 30 }, (_, i) => store.memories.add('telegram:1', memory(`m${i}`))),
          ...Array.from({ length: 30 }, (_, i) => store.samples.add(makeSample('telegram:1', `s${i}`))),
          ...Array.from({ length: 30 }, (_, i) => store.users.put(makeUser(`telegram:${100 + i}`))),
          ...Array.from({ length: 30 }, (_, i) => store.jobs.put(makeJob(`job${i}`, { userKey: 'telegram:1', createdAtMs: i }))),
        ]);
        expect((await store.memories.list('telegram:1')).map((m) => m.id).sort()).toEqual(Array.from({ length: 30 }, (_, i) => `m${i}`).sort());
        expect(await store.samples.list('telegram:1')).toHaveLength(30);
        expect((await store.users.list()).map((u) => u.key).sort()).toEqual(Array.from({ length: 30 }, (_, i) => `telegram:${100 + i}`).sort());
        expect(await store.jobs.listUnfinished()).toHaveLength(30);
        await store.jobs.deleteForUser('telegram:1');
        expect(await store.jobs.listUnfinished()).toEqual([]);
      });

      it('removes memories racing with adds without resurrecting them', async () => {
        for (let i = 0; i < 10; i++) await store.memories.add('telegram:1', memory(`m${i}`));
        const removals = await Promise.all([
          ...Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? store.memories.remove('telegram:1', `m${i}`) : Promise.resolve(null))),
          ...Array.from({ length: 5 }, (_, i) => store.memories.add('telegram:1', memory(`n${i}`)).then(() => null)),
        ]);
        expect(removals.filter((r) => r === true)).toHaveLength(5);
        expect((await store.memories.list('telegram:1')).map((m) => m.id).sort()).toEqual(['m1', 'm3', 'm5', 'm7', 'm9', 'n0', 'n1', 'n2', 'n3', 'n4']);
      });
    });

    describe('summarize and deleteUser', () => {
      async function populate(key: string): Promise<string[]> {
        await store.users.put(makeUser(key));
        await store.profiles.put(makeProfile(key));
        const sampleBlob = await store.blobs.put(key, Buffer.from(`sample audio of ${key}`), 'sample');
        const consentBlob = await store.blobs.put(key, Buffer.from(`consent of ${key}`), 'consent');
        await store.samples.add(makeSample(key, 's1', sampleBlob));
        await store.history.append(key, turn(0), turn(1), turn(2));
        await store.memories.add(key, memory('m1'));
        await store.jobs.put(makeJob(`clone-${key}`, { userKey: key }));
        return [sampleBlob, consentBlob];
      }

      it('summarizes everything stored for a user', async () => {
        const blobKeys = await populate('telegram:1');
        await populate('discord:2');
        const summary = await store.summarize('telegram:1');
        expect(summary.user).toEqual(makeUser('telegram:1'));
        expect(summary.profile).toEqual(makeProfile('telegram:1'));
        expect(summary.samples).toEqual([makeSample('telegram:1', 's1', blobKeys[0])]);
        expect(summary.historyTurns).toBe(3);
        expect(summary.memories).toEqual([memory('m1')]);
        expect([...summary.blobKeys].sort()).toEqual([...blobKeys].sort());

        expect(await store.summarize('nobody:0')).toEqual({ user: undefined, profile: undefined, samples: [], historyTurns: 0, memories: [], blobKeys: [] });
      });

      it('deletes every record, job and blob of a user and nothing of others', async () => {
        const aliceBlobs = await populate('telegram:1');
        const bobBlobs = await populate('discord:2');
        const filesBefore = await filesUnder(path.join(harness.dataDir, 'blobs'));
        expect(filesBefore).toHaveLength(4);

        await store.deleteUser('telegram:1');

        expect(await store.summarize('telegram:1')).toEqual({ user: undefined, profile: undefined, samples: [], historyTurns: 0, memories: [], blobKeys: [] });
        expect(await store.history.recent('telegram:1', 10)).toEqual([]);
        expect(await store.jobs.get('clone-telegram:1')).toBeUndefined();
        expect((await store.jobs.listUnfinished()).map((j) => j.id)).toEqual(['clone-discord:2']);
        expect((await store.users.list()).map((u) => u.key)).toEqual(['discord:2']);
        for (const key of aliceBlobs) await expect(store.blobs.get(key)).rejects.toThrow(/not found/);
        const filesAfter = await filesUnder(path.join(harness.dataDir, 'blobs'));
        expect(filesAfter).toHaveLength(2);

        const bob = await store.summarize('discord:2');
        expect(bob.user?.key).toBe('discord:2');
        expect(bob.historyTurns).toBe(3);
        expect([...bob.blobKeys].sort()).toEqual([...bobBlobs].sort());
        expect((await store.blobs.get(bobBlobs[0]!)).toString()).toBe('sample audio of discord:2');

        await store.deleteUser('telegram:1');
        await store.deleteUser('never:seen');
        expect((await store.users.list()).map((u) => u.key)).toEqual(['discord:2']);
      });
    });

    describe('lifecycle', () => {
      it('refuses calls after close and closes idempotently', async () => {
        await store.close();
        await store.close();
        await expect(store.users.get('telegram:1')).rejects.toThrow(/closed/);
        await expect(store.dedupe.claim('x')).rejects.toThrow(/closed/);
      });

      it('waits for calls in flight before closing', async () => {
        const pending = Promise.all(Array.from({ length: 20 }, (_, i) => store.history.append('telegram:1', turn(i))));
        await store.close();
        await pending;
        if (persistent) {
          const reopened = await harness.open();
          expect(await reopened.history.recent('telegram:1', 50)).toHaveLength(20);
        }
      });

      it.runIf(persistent)('keeps everything across close and reopen', async () => {
        const blobKeys = await (async () => {
          await store.users.put(makeUser('telegram:1'));
          await store.profiles.put(makeProfile('telegram:1'));
          await store.samples.add(makeSample('telegram:1', 's1'));
          await store.history.append('telegram:1', turn(0), turn(1));
          await store.memories.add('telegram:1', memory('m1'));
          await store.jobs.put(makeJob('j1', { userKey: 'telegram:1', state: 'running' }));
          await store.kv.set('k', { a: 1 });
          expect(await store.dedupe.claim('update:1')).toBe(true);
          return [await store.blobs.put('telegram:1', Buffer.from('persisted audio'), 'reference')];
        })();
        await store.close();

        const reopened = await harness.open();
        expect(await reopened.users.list()).toEqual([makeUser('telegram:1')]);
        expect(await reopened.profiles.get('telegram:1')).toEqual(makeProfile('telegram:1'));
        expect(await reopened.samples.list('telegram:1')).toEqual([makeSample('telegram:1', 's1')]);
        expect(await reopened.history.recent('telegram:1', 5)).toEqual([turn(0), turn(1)]);
        expect(await reopened.memories.list('telegram:1')).toEqual([memory('m1')]);
        expect((await reopened.jobs.listUnfinished()).map((j) => j.id)).toEqual(['j1']);
        expect(await reopened.kv.get('k')).toEqual({ a: 1 });
        expect(await reopened.dedupe.claim('update:1')).toBe(false);
        expect((await reopened.blobs.get(blobKeys[0]!)).toString()).toBe('persisted audio');
      });

      it.runIf(persistent)('refuses to open with a different data key', async () => {
        await store.users.put(makeUser('telegram:1'));
        await store.close();
        await expect(harness.open({ dataKey: randomBytes(32) })).rejects.toThrow(/data key does not match/);
        const again = await harness.open();
        expect(await again.users.get('telegram:1')).toEqual(makeUser('telegram:1'));
      });
    });
  });
}

