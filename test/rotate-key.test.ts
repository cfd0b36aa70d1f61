/**
 * `voicetwin rotate-key` (`src/rotate-key.ts`): on the SQLite store with the embedded queue and on
 * the Redis store with BullMQ, a rotation interrupted midway refuses every start, resumes, and ends
 * with every record, blob and queued job under the new key: raw-byte scans of the SQLite files and
 * Redis values find only the new key's id in the envelopes, each value opens with the new key and
 * not with the old one, and the store opens with the new key only.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from '@keyv/redis';
import sqlite3 from 'sqlite3';
import { loadConfig, type Config } from '../src/config.js';
import { createStore } from '../src/core/store/keyv-store.js';
import { EncryptedBlobStore, BlobIntegrityError } from '../src/core/store/blob-store.js';
import { dataKeyId } from '../src/core/store/data-key.js';
import { KeyRotationError } from '../src/core/store/key-rotation.js';
import { RecordCipher, RecordIntegrityError } from '../src/core/store/record-cipher.js';
import { SERVE_PRESENCE_PREFIX } from '../src/core/store/presence.js';
import type { Store } from '../src/core/store/types.js';
import { silentLogger } from '../src/core/log.js';
import { EmbeddedQueue } from '../src/queue/embedded.js';
import { BullQueue } from '../src/queue/bullmq.js';
import { rotateDataKey } from '../src/rotate-key.js';
import { REDIS_URL, redisAvailable } from './helpers/redis.js';
import { deleteRedisNamespace, redisKeysContaining, sqliteFilesContaining } from './helpers/raw-scan.js';

const hasRedis = await redisAvailable();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'voicetwin-rotate-'));
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Setup {
  config: Config;
  oldKey: Buffer;
  marker: string;
  blobKeys: string[];
  /** Raw scan of what the store and queue keep (SQLite files, or Redis values of both prefixes). */
  scan(needle: string): Promise<string[]>;
  /** Every sealed string in the store and the queue, with the record key it is bound to. */
  sealedValues(): Promise<{ recordKey: string; sealed: string }[]>;
}

function openStore(config: Config, key: Buffer): Promise<Store> {
  return createStore({
    dataDir: config.dataDir,
    ...(config.redisUrl ? { redisUrl: config.redisUrl, namespace: config.redisNamespace } : {}),
    dataKey: key,
    logger: silentLogger,
  });
}

/** A store and queue under `oldKey` holding a person's history, memories, usage, samples and 600 kv records, and a queued turn. */
async function populate(backend: 'sqlite' | 'redis'): Promise<Setup> {
  const dataDir = await tempDir();
  const oldKey = randomBytes(32);
  const namespace = `vt-rotate-${randomBytes(4).toString('hex')}`;
  const config = loadConfig({
    VOICETWIN_DATA_DIR: dataDir,
    VOICETWIN_DATA_KEY: oldKey.toString('hex'),
    LOG_LEVEL: 'silent',
    ...(backend === 'redis' ? { REDIS_URL, REDIS_NAMESPACE: namespace } : {}),
  });
  if (backend === 'redis') {
    cleanups.push(() => deleteRedisNamespace(REDIS_URL, namespace));
    cleanups.push(() => deleteRedisNamespace(REDIS_URL, `${namespace}-jobs`));
  }
  const marker = `bluebird${randomBytes(6).toString('hex')}`;
  const store = await openStore(config, oldKey);
  const blobKeys: string[] = [];
  for (let i = 0; i < 3; i++) {
    const key = `telegram:${100 + i}`;
    const now = Date.now();
    await store.users.put({
      key,
      channel: 'telegram',
      address: { channel: 'telegram', chatId: String(100 + i) },
      displayName: `Zed ${marker}`,
      persona: 'supportive',
      sendTextWithVoice: false,
      optedOut: false,
      blocked: false,
      messageCount: 1,
      createdAtMs: now,
      updatedAtMs: now,
    });
    await store.history.append(key, { role: 'user', text: `my divorce hearing ${marker}`, atMs: now });
    await store.memories.add(key, { id: `m${i}`, text: `PIN hint ${marker}`, createdAtMs: now, source: 'explicit' });
    blobKeys.push(await store.blobs.put(key, Buffer.from(`RIFF sample of ${marker} ${i}`), 'sample'));
  }
  blobKeys.push(await store.blobs.put('shared:tts', Buffer.from(`RIFF shared cache ${marker}`), 'tts'));
  for (let i = 0; i < 600; i++) await store.kv.set(`note:${i}`, { text: `${marker} ${i}` });
  await store.close();

  const queue = config.redisUrl
    ? await BullQueue.open({ redisUrl: REDIS_URL, prefix: `${namespace}-jobs`, partitions: 2, dataKey: oldKey })
    : await EmbeddedQueue.open({ dataDir, dataKey: oldKey });
  await queue.enqueue('turn', { text: `queued ${marker}` }, { id: 'telegram:100:m1', key: 'telegram:100' });
  await queue.enqueue('turn', { text: `queued again ${marker}` }, { id: 'telegram:101:m1', key: 'telegram:101' });
  await queue.close(0);

  if (backend === 'sqlite') {
    return {
      config,
      oldKey,
      marker,
      blobKeys,
      scan: (needle) => sqliteFilesContaining(dataDir, needle),
      sealedValues: async () => [
        ...(await sqliteRows(path.join(dataDir, 'voicetwin.sqlite'), 'SELECT key, value FROM keyv')).flatMap((r) => {
          const value = (JSON.parse(r.value) as { value: unknown }).value;
          return typeof value === 'string' && value.startsWith('enc:') ? [{ recordKey: r.key.slice('voicetwin:'.length), sealed: value }] : [];
        }),
        ...(await sqliteRows(path.join(dataDir, 'jobs.sqlite'), 'SELECT id AS key, data AS value FROM jobs')).map((r) => ({ recordKey: `queue-job:${r.key}`, sealed: r.value })),
      ],
    };
  }
  return {
    config,
    oldKey,
    marker,
    blobKeys,
    scan: async (needle) => [...(await redisKeysContaining(REDIS_URL, namespace, needle)), ...(await redisKeysContaining(REDIS_URL, `${namespace}-jobs`, needle))],
    sealedValues: () => redisSealedValues(namespace),
  };
}

async function sqliteRows(file: string, sql: string): Promise<{ key: string; value: string }[]> {
  const db = new sqlite3.Database(file, sqlite3.OPEN_READONLY);
  try {
    return await new Promise((resolve, reject) => db.all(sql, (err, rows) => (err ? reject(err) : resolve(rows as { key: string; value: string }[]))));
  } finally {
    await new Promise<void>((resolve) => db.close(() => resolve()));
  }
}

async function redisSealedValues(namespace: string): Promise<{ recordKey: string; sealed: string }[]> {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  const out: { recordKey: string; sealed: string }[] = [];
  try {
    for await (const keys of client.scanIterator({ MATCH: `${namespace}:*`, COUNT: 500 })) {
      for (const key of keys) {
        if ((await client.type(key)) !== 'string') continue;
        const value = (JSON.parse((await client.get(key)) ?? '{}') as { value?: unknown }).value;
        if (typeof value === 'string' && value.startsWith('enc:')) out.push({ recordKey: key.slice(namespace.length + 1), sealed: value });
      }
    }
    const jobsPrefix = `${namespace}-jobs:`;
    for await (const keys of client.scanIterator({ MATCH: `${jobsPrefix}*`, COUNT: 500, TYPE: 'hash' })) {
      for (const key of keys) {
        const data = await client.hGet(key, 'data');
        if (!data) continue;
        const sealed = (JSON.parse(data) as { sealed?: string }).sealed;
        const rest = key.slice(jobsPrefix.length);
        if (sealed) out.push({ recordKey: `queue-job:${rest.slice(rest.indexOf(':') + 1)}`, sealed });
      }
    }
  } finally {
    await client.quit().catch(() => undefined);
  }
  return out;
}

/** Interrupts the rotation at its first progress report of `phase` (after `after` items). */
function interruptAt(phase: 'records' | 'blobs' | 'jobs', after = 0) {
  return (p: string, handled: number): void => {
    if (p === phase && handled >= after) throw new Error(`interrupted during ${phase}`);
  };
}

async function rotateAndCheck(backend: 'sqlite' | 'redis'): Promise<void> {
  const s = await populate(backend);
  const oldId = dataKeyId(s.oldKey);
  const newKeyFile = path.join(await tempDir(), 'new-data.key');
  expect(await s.scan(s.marker)).toEqual([]);
  expect(await s.scan(`enc:v2:${oldId}:`)).not.toEqual([]);
  const before = await s.sealedValues();
  expect(before.length).toBeGreaterThan(600);

  // Interrupted midway through the records (the 500th of more than 600).
  await expect(rotateDataKey(s.config, { newKeyFile, logger: silentLogger, onProgress: interruptAt('records', 500) })).rejects.toThrow(/interrupted during records/);
  const newKey = Buffer.from((await fs.readFile(newKeyFile, 'utf8')).trim(), 'hex');
  const newId = dataKeyId(newKey);
  expect((await fs.stat(newKeyFile)).mode & 0o777).toBe(0o600);
  const midway = await s.sealedValues();
  const underNew = midway.filter((v) => v.sealed.startsWith(`enc:v2:${newId}:`)).length;
  expect(underNew).toBeGreaterThan(0);
  expect(underNew).toBeLessThan(midway.length);
  // Neither key opens the store while the rotation is unfinished.
  await expect(openStore(s.config, s.oldKey)).rejects.toThrow(/rotation .* was interrupted/);
  await expect(openStore(s.config, newKey)).rejects.toThrow(/rotation .* was interrupted/);
  // Another new key is refused while this rotation is unfinished.
  const otherKeyFile = path.join(await tempDir(), 'other.key');
  await expect(rotateDataKey(s.config, { newKeyFile: otherKeyFile, logger: silentLogger })).rejects.toMatchObject({ code: 'other-rotation' });

  // Interrupted again during the blobs, then resumed to the end.
  await expect(rotateDataKey(s.config, { newKeyFile, logger: silentLogger, onProgress: interruptAt('blobs') })).rejects.toThrow(/interrupted during blobs/);
  const progress: string[] = [];
  const result = await rotateDataKey(s.config, { newKeyFile, logger: silentLogger, onProgress: (phase) => progress.push(phase) });
  expect(result).toMatchObject({ fromKeyId: oldId, toKeyId: newId, resumed: true });
  expect(result.records.current).toBeGreaterThan(0); // what the interrupted runs already did is skipped
  expect(result.records.rekeyed).toBe(0);
  expect(result.blobs.rekeyed + result.blobs.current).toBe(s.blobKeys.length);
  expect(result.blobs.unknownFolders).toBe(0);
  expect(result.jobs).toEqual({ rekeyed: 2, current: 0 });
  expect(progress).toEqual(expect.arrayContaining(['records', 'blobs', 'jobs']));

  // Raw bytes: no plaintext, no envelope of the old key or of format 1, only the new key's id.
  expect(await s.scan(s.marker)).toEqual([]);
  expect(await s.scan(`enc:v2:${oldId}:`)).toEqual([]);
  expect(await s.scan('enc:v1:')).toEqual([]);
  const after = await s.sealedValues();
  expect(after.map((v) => v.recordKey).sort()).toEqual(expect.arrayContaining(before.map((v) => v.recordKey).filter((k) => !k.startsWith('meta:')).sort()));
  const withNew = new RecordCipher(newKey);
  const withOld = new RecordCipher(s.oldKey);
  const opened: string[] = [];
  for (const v of after) {
    expect(v.sealed.startsWith(`enc:v2:${newId}:`)).toBe(true);
    opened.push(JSON.stringify(withNew.open(v.recordKey, v.sealed)));
    expect(() => withOld.open(v.recordKey, v.sealed)).toThrow(RecordIntegrityError);
  }
  expect(opened.filter((t) => t.includes(s.marker)).length).toBeGreaterThanOrEqual(600 + 3 * 3 + 2);

  // Blobs: the new key reads them, the old one does not.
  const blobDir = path.join(s.config.dataDir, 'blobs');
  const newBlobs = new EncryptedBlobStore({ dir: blobDir, dataKey: newKey });
  const oldBlobs = new EncryptedBlobStore({ dir: blobDir, dataKey: s.oldKey });
  for (const k of s.blobKeys) {
    expect((await newBlobs.get(k)).toString()).toContain(s.marker);
    await expect(oldBlobs.get(k)).rejects.toThrow(BlobIntegrityError);
  }

  // The store opens with the new key only, with everything in it.
  await expect(openStore(s.config, s.oldKey)).rejects.toThrow(/does not match the key/);
  const store = await openStore(s.config, newKey);
  try {
    expect((await store.history.recent('telegram:101', 5)).map((t) => t.text)).toEqual([`my divorce hearing ${s.marker}`]);
    expect((await store.users.get('telegram:102'))?.displayName).toBe(`Zed ${s.marker}`);
    expect(await store.kv.get('note:599')).toEqual({ text: `${s.marker} 599` });
  } finally {
    await store.close();
  }
  // A second run with the same key has nothing to do.
  await expect(rotateDataKey(s.config, { newKeyFile, logger: silentLogger })).rejects.toMatchObject({ code: 'already-rotated' });
}

describe('voicetwin rotate-key', () => {
  it('SQLite store and embedded queue: interrupted, resumed, everything under the new key', async () => {
    await rotateAndCheck('sqlite');
  }, 60_000);

  it.skipIf(!hasRedis)('Redis store and BullMQ: interrupted, resumed, everything under the new key', async () => {
    await rotateAndCheck('redis');
  }, 60_000);

  it('refuses while a server is running on the store, and leaves the store as it was', async () => {
    const s = await populate('sqlite');
    const store = await openStore(s.config, s.oldKey);
    // A server on another host (its presence record renewed within the last 30 s).
    await store.kv.set(`${SERVE_PRESENCE_PREFIX}other-host:4242`, { host: 'other-host', pid: 4242, startedAtMs: Date.now() }, 30_000);
    await store.close();
    const newKeyFile = path.join(await tempDir(), 'k');
    const err = await rotateDataKey(s.config, { newKeyFile, logger: silentLogger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyRotationError);
    expect((err as KeyRotationError).message).toMatch(/A VoiceTwin server is running on this store \(other-host:4242\)/);
    const again = await openStore(s.config, s.oldKey); // no rotation marker was left
    await again.close();
    expect(await s.scan(`enc:v2:${dataKeyId(s.oldKey)}:`)).not.toEqual([]);
  }, 30_000);

  it('CLI: --help, and the local default key (data.key) replaced by a generated one', async () => {
    const run = promisify(execFile);
    const bin = path.resolve('bin/voicetwin.js');
    const help = await run(process.execPath, [bin, 'rotate-key', '--help']);
    expect(help.stdout).toMatch(/--new-key-file <path>/);
    expect(help.stdout).toMatch(/Resumable/);

    const dataDir = await tempDir();
    const env = { ...process.env, VOICETWIN_DATA_DIR: dataDir, LOG_LEVEL: 'silent', VOICETWIN_DATA_KEY: '', VOICETWIN_DATA_KEY_FILE: '', REDIS_URL: '' };
    const config = loadConfig({ VOICETWIN_DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
    const { loadDataKey } = await import('../src/core/store/data-key.js');
    const { key: oldKey } = await loadDataKey({ dataDir, logger: silentLogger });
    const store = await openStore(config, oldKey);
    await store.history.append('console:local', { role: 'user', text: 'the hearing is on Friday', atMs: Date.now() });
    await store.close();

    const out = await run(process.execPath, [bin, 'rotate-key'], { env, cwd: path.resolve('.') });
    expect(out.stdout).toMatch(/^Data key rotated from key id [0-9a-f]{8} to [0-9a-f]{8}\./m);
    expect(out.stdout).toMatch(/records: \d+/);
    expect(out.stdout).toMatch(/The new key replaced .*data\.key/);
    const { key: newKey } = await loadDataKey({ dataDir, logger: silentLogger });
    expect(newKey.equals(oldKey)).toBe(false);
    await expect(fs.stat(path.join(dataDir, 'data.key.next'))).rejects.toThrow(/ENOENT/);
    const reopened = await openStore(config, newKey);
    expect((await reopened.history.recent('console:local', 1))[0]?.text).toBe('the hearing is on Friday');
    await reopened.close();
  }, 60_000);
});
