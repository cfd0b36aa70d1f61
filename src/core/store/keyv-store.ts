/**
 * The {@link Store} over keyv (https://github.com/jaredwray/keyv): one embedded SQLite file by
 * default (`@keyv/sqlite`, no server), Redis when a URL is given (`@keyv/redis`), or keyv's
 * in-memory Map for tests. Audio never goes into keyv; it goes to the encrypted blob store.
 *
 * Key layout, all under `<namespace>:` (default `voicetwin:`):
 *
 * | key                     | value                                   |
 * |-------------------------|-----------------------------------------|
 * | `user:<userKey>`        | {@link UserRecord}                      |
 * | `users:chunks`          | number of users-index chunks            |
 * | `users:chunk:<i>`       | ≤ 1000 user keys, first-seen order (index) |
 * | `profile:<userKey>`     | {@link VoiceProfile}                    |
 * | `samples:<userKey>`     | {@link SampleRecord}[]                  |
 * | `history:<userKey>`     | ChatTurn[], oldest first, capped        |
 * | `memories:<userKey>`    | MemoryRecord[]                          |
 * | `job:<id>`              | {@link JobRecord}                       |
 * | `jobs:open`             | ids of queued/running jobs (index)      |
 * | `jobs:user:<userKey>`   | ids of a user's jobs (index)            |
 * | `dedupe:<messageId>`    | `true`, with a TTL                      |
 * | `kv:<key>`              | any JSON value, optional TTL            |
 * | `meta:data-key-check`   | HMAC of the data key (detects a wrong key at start-up) |
 *
 * Values of `user:`, `profile:`, `samples:`, `history:`, `memories:`, `job:` and `kv:` are sealed
 * with the data key (AES-256-GCM, the record key as associated data; see `record-cipher.ts`);
 * indexes, dedupe claims and `meta:` hold ids only and stay in the clear.
 *
 * Why explicit indexes rather than keyv's `iterator()`: the iterator walks every record in the
 * namespace (histories, memories, samples…) to find a handful of users or open jobs; the SQLite
 * adapter pages it with `LIKE … LIMIT 10 OFFSET n` (quadratic, and `_` in a namespace is a LIKE
 * wildcard); Redis `SCAN` may return a key twice and is no snapshot. An index is one read on every
 * backend. The store prefixes keys itself (keyv's `useKeyPrefix: false`, adapter namespace unset)
 * so the stored keys are identical on every backend.
 *
 * Concurrency: every read-modify-write (history append, memory/sample add, index updates, dedupe
 * claim on SQLite and memory, `kv.update`) runs under a per-key lock. On SQLite and memory it is an
 * in-process lock: one VoiceTwin process owns the file. On Redis it is also a lease in Redis
 * ({@link RedisLeaseLock}), so several processes on one Redis lose no write; the dedupe claim is
 * one atomic `SET NX PX` (https://redis.io/docs/latest/commands/set/).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { Keyv } from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import KeyvRedis, { RedisErrorMessages, type RedisClientType } from '@keyv/redis';
import { silentLogger, type Logger } from '../log.js';
import type { ChatTurn, MemoryRecord } from '../providers.js';
import { EncryptedBlobStore } from './blob-store.js';
import { DATA_KEY_BYTES } from './data-key.js';
import { createPrivateFile, securePrivateTree } from './file-modes.js';
import { KeyedLock, RedisLeaseLock, type LeaseClient, type Lock } from './keyed-lock.js';
import { RecordCipher, isSealed } from './record-cipher.js';
import { mapRawRecords, redisRawRecords, sqliteRawRecords, type RawRecords } from './raw-records.js';
import type {
  BlobStore,
  DedupeRepository,
  HistoryRepository,
  JobRecord,
  JobRepository,
  KeyValueRepository,
  MemoryRepository,
  ProfileRepository,
  SampleRecord,
  SampleRepository,
  Store,
  UserDataSummary,
  UserKey,
  UserRecord,
  UserRepository,
  VoiceProfile,
} from './types.js';

/** The backends a store can run on. */
export type StoreBackend = Store['backend'];

/** Name of the SQLite file inside the data directory. */
export const SQLITE_FILE = 'voicetwin.sqlite';
/** Default number of history turns kept per user. */
export const DEFAULT_HISTORY_MAX_TURNS = 200;
/** Default time a dedupe claim is remembered: 7 days, in ms. */
export const DEFAULT_DEDUPE_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** Default namespace (key prefix). */
export const DEFAULT_NAMESPACE = 'voicetwin';

const DEFAULT_REDIS_CONNECT_TIMEOUT_MS = 5000;
const SQLITE_BUSY_TIMEOUT_MS = 5000;
const SQLITE_TABLE = 'keyv';
const SQLITE_SWEEP_INTERVAL_MS = 60 * 60 * 1000;
const GET_MANY_BATCH = 256;
const NAMESPACE_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const OPEN_JOB_STATES: ReadonlySet<JobRecord['state']> = new Set(['queued', 'running']);
const DATA_KEY_CHECK_LABEL = 'voicetwin data key check v1';
/** Set once every personal record has been sealed (later starts skip the walk). */
const RECORDS_SEALED_MARKER = 'meta:records-sealed-v1';

/** Options of {@link createStore}. */
export interface CreateStoreOptions {
  /** `sqlite` (default without `redisUrl`), `redis` (default with `redisUrl`) or `memory` (tests). */
  backend?: StoreBackend;
  /** Data directory: holds `voicetwin.sqlite` and `blobs/`; created when missing, made 0700 with every file in it 0600 (see `file-modes.ts`). */
  dataDir: string;
  /** `redis://[user:password@]host:port[/db]` or `rediss://…`; required for the redis backend. */
  redisUrl?: string;
  /** The 32-byte data key (see `loadDataKey`). */
  dataKey: Buffer;
  logger?: Logger;
  /** Prefix of every key, 1–64 of `A-Z a-z 0-9 _ . -`; default `voicetwin`. */
  namespace?: string;
  /** History turns kept per user (oldest dropped); default 200. */
  historyMaxTurns?: number;
  /** How long to wait for Redis to accept the connection, in ms; default 5000. */
  redisConnectTimeoutMs?: number;
}

/**
 * Opens the store: connects the backend, checks the data key against the one the data was written
 * with, and returns every repository.
 *
 * @throws Error naming the backend and its location (SQLite path, Redis URL with credentials
 *   masked) when the backend cannot be opened or reached; Error when the data key is not 32 bytes,
 *   when it differs from the key the store was created with, or when an option is invalid
 */
export async function createStore(options: CreateStoreOptions): Promise<Store> {
  const backend: StoreBackend = options.backend ?? (options.redisUrl ? 'redis' : 'sqlite');
  const logger = (options.logger ?? silentLogger).child({ component: 'store', backend });
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  if (!NAMESPACE_PATTERN.test(namespace)) {
    throw new Error(`Invalid store namespace "${namespace}": use 1–64 characters of A-Z, a-z, 0-9, _ . -`);
  }
  if (!Buffer.isBuffer(options.dataKey) || options.dataKey.length !== DATA_KEY_BYTES) {
    throw new Error(`The data key must be ${DATA_KEY_BYTES} bytes`);
  }
  const historyMaxTurns = options.historyMaxTurns ?? DEFAULT_HISTORY_MAX_TURNS;
  if (!Number.isInteger(historyMaxTurns) || historyMaxTurns < 1) {
    throw new Error(`historyMaxTurns must be a positive integer (got ${String(historyMaxTurns)})`);
  }
  if (!options.dataDir) throw new Error('createStore needs a dataDir');
  await securePrivateTree(options.dataDir, logger);

  const opened = await openBackend(backend, options, logger);
  const store = new KeyvStore({
    ...opened,
    backend,
    namespace,
    historyMaxTurns,
    blobs: new EncryptedBlobStore({ dir: path.join(options.dataDir, 'blobs'), dataKey: options.dataKey }),
    cipher: new RecordCipher(options.dataKey),
    logger,
  });
  try {
    await store.checkDataKey(options.dataKey, options.dataDir);
    await store.sealPlaintextRecords();
    await store.startMaintenance();
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  logger.debug({ namespace }, 'store opened');
  return store;
}

/**
 * Masks the credentials of a connection URL for logs and errors:
 * `redis://user:secret@host:6379` → `redis://user:***@host:6379`. A URL with only a user name
 * (which Redis may read as a password) has it masked too. Unparseable input gives `<invalid URL>`.
 */
export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    else if (parsed.username) parsed.username = '***';
    return parsed.toString();
  } catch {
    return '<invalid URL>';
  }
}

interface OpenedBackend {
  keyv: Keyv;
  sqlite?: KeyvSqlite;
  redis?: KeyvRedis<string>;
  /** The in-memory backend's Map (memory backend only). */
  map?: Map<string, unknown>;
}

async function openBackend(backend: StoreBackend, options: CreateStoreOptions, logger: Logger): Promise<OpenedBackend> {
  // Errors are also thrown to the caller (throwOnErrors); the listener keeps keyv from treating an
  // emitted 'error' as unhandled, and records the cause of connection failures.
  const seenErrors: string[] = [];
  let lastLoggedMs = 0;
  const onError = (err: unknown): void => {
    const message = errorMessage(err);
    if (seenErrors.length < 5 && !seenErrors.includes(message)) seenErrors.push(message);
    const now = Date.now();
    if (now - lastLoggedMs > 30_000) {
      lastLoggedMs = now;
      logger.warn({ err: errorMessage(err) }, 'store backend error');
    }
  };

  if (backend === 'memory') {
    const map = new Map<string, unknown>();
    const keyv = new Keyv({ store: map, namespace: undefined, useKeyPrefix: false, throwOnErrors: true });
    keyv.on('error', onError);
    return { keyv, map };
  }

  if (backend === 'sqlite') {
    const file = path.resolve(options.dataDir, SQLITE_FILE);
    await createPrivateFile(file); // SQLite gives its -wal and -shm files the database file's mode
    const sqlite = new KeyvSqlite({ uri: `sqlite://${file}`, table: SQLITE_TABLE, busyTimeout: SQLITE_BUSY_TIMEOUT_MS });
    const keyv = new Keyv({ store: sqlite, namespace: undefined, useKeyPrefix: false, throwOnErrors: true });
    keyv.on('error', onError);
    sqlite.namespace = undefined;
    try {
      // WAL lets reads run during a write and makes each write one sequential append;
      // synchronous=NORMAL is the setting SQLite recommends with WAL
      // (https://www.sqlite.org/wal.html, https://www.sqlite.org/pragma.html#pragma_synchronous).
      await sqlite.query('PRAGMA journal_mode=WAL');
      await sqlite.query('PRAGMA synchronous=NORMAL');
      // Deleted rows are overwritten with zeros rather than left in free pages
      // (https://www.sqlite.org/pragma.html#pragma_secure_delete).
      await sqlite.query('PRAGMA secure_delete=ON');
    } catch (err) {
      await sqlite.disconnect().catch(() => undefined);
      throw new Error(`Cannot open the sqlite store at ${file}: ${errorMessage(err)}`, { cause: err });
    }
    return { keyv, sqlite };
  }

  if (backend === 'redis') {
    const url = options.redisUrl;
    if (!url) throw new Error('The redis store needs a URL (REDIS_URL), e.g. redis://127.0.0.1:6379');
    const masked = maskUrl(url);
    let protocol: string;
    try {
      protocol = new URL(url).protocol;
    } catch {
      throw new Error(`Cannot connect to the redis store: REDIS_URL is not a valid URL (expected redis://host:port or rediss://host:port)`);
    }
    if (protocol !== 'redis:' && protocol !== 'rediss:') {
      throw new Error(`Cannot connect to the redis store at ${masked}: the URL must start with redis:// or rediss://`);
    }
    const redis = new KeyvRedis<string>(url, {
      throwOnConnectError: true,
      throwOnErrors: true,
      connectionTimeout: options.redisConnectTimeoutMs ?? DEFAULT_REDIS_CONNECT_TIMEOUT_MS,
    });
    const keyv = new Keyv({ store: redis, namespace: undefined, useKeyPrefix: false, throwOnErrors: true });
    keyv.on('error', onError);
    redis.namespace = undefined;
    try {
      const client = (await redis.getClient()) as RedisClientType;
      await client.ping();
    } catch (err) {
      await redis.disconnect(true).catch(() => undefined);
      // On a failed connect the adapter throws a generic message; the socket's own errors
      // (ECONNREFUSED, a timeout, WRONGPASS…) arrived as 'error' events.
      const generic = err instanceof Error && err.message === String(RedisErrorMessages.RedisClientNotConnectedThrown);
      const reason = generic && seenErrors.length > 0 ? seenErrors.join('; ') : errorMessage(err);
      throw new Error(`Cannot connect to the redis store at ${masked}: ${reason}`, { cause: err });
    }
    return { keyv, redis };
  }

  throw new Error(`Unknown store backend "${String(backend)}" (expected sqlite, redis or memory)`);
}

function errorMessage(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(errorMessage).join('; ');
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/**
 * Key families whose values are personal and stored sealed (see `record-cipher.ts`). Indexes
 * (`users:chunk:*`, `jobs:open`, `jobs:user:*`), dedupe claims and `meta:` stay in the clear: they
 * hold ids and are read or written atomically by the backend.
 */
export const SEALED_FAMILIES: readonly string[] = ['user:', 'profile:', 'samples:', 'history:', 'memories:', 'job:', 'kv:'];

/** True when values under `key` (without the namespace) are stored sealed. */
export function isSealedFamily(key: string): boolean {
  return SEALED_FAMILIES.some((family) => key.startsWith(family));
}

/**
 * Keyv access under the namespace prefix. Values of the {@link SEALED_FAMILIES} are sealed with
 * the data key on write and opened on read; a value found in plaintext (written before sealing
 * existed, and not yet migrated) is read as it is.
 */
class Records {
  constructor(
    readonly keyv: Keyv,
    readonly prefix: string,
    readonly cipher: RecordCipher,
  ) {}

  key(key: string): string {
    return `${this.prefix}${key}`;
  }

  /** @throws RecordIntegrityError when a sealed value fails authentication */
  async get<T>(key: string): Promise<T | undefined> {
    return this.open<T>(key, await this.keyv.get<unknown>(this.key(key)));
  }

  /**
   * Reads many keys, in batches: @keyv/sqlite matches rows to keys with a linear search per key,
   * so one call with thousands of keys would be quadratic.
   */
  async getMany<T>(keys: string[]): Promise<(T | undefined)[]> {
    const out: (T | undefined)[] = [];
    for (let i = 0; i < keys.length; i += GET_MANY_BATCH) {
      const slice = keys.slice(i, i + GET_MANY_BATCH);
      const values = await this.keyv.getMany<unknown>(slice.map((k) => this.key(k)));
      values.forEach((value, j) => out.push(this.open<T>(slice[j]!, value)));
    }
    return out;
  }

  async set(key: string, value: unknown, ttlMs?: number): Promise<void> {
    await this.keyv.set(this.key(key), isSealedFamily(key) ? this.cipher.seal(key, value) : value, ttlMs);
  }

  async delete(key: string): Promise<void> {
    await this.keyv.delete(this.key(key));
  }

  private open<T>(key: string, value: unknown): T | undefined {
    if (value === undefined) return undefined;
    return isSealed(value) ? this.cipher.open<T>(key, value) : (value as T);
  }
}

/**
 * Admits public operations until the store closes, and lets `close()` wait for those already
 * admitted (including work still queued behind a per-key lock).
 */
class Gate {
  readonly #running = new Set<Promise<unknown>>();
  #closed = false;

  run<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('The store is closed'));
    let promise: Promise<T>;
    try {
      promise = operation();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.#running.add(promise);
    const done = (): void => void this.#running.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /** Stops admitting operations and waits for the admitted ones to settle. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }
}

/** Adds `item` to the list under `key` unless present. Call under the key's lock. */
async function addToIndex(records: Records, key: string, item: string): Promise<void> {
  const list = (await records.get<string[]>(key)) ?? [];
  if (list.includes(item)) return;
  list.push(item);
  await records.set(key, list);
}

/** Removes `item` from the list under `key`; deletes the key when the list empties. Call under the key's lock. */
async function removeFromIndex(records: Records, key: string, item: string): Promise<void> {
  const list = await records.get<string[]>(key);
  if (!list?.includes(item)) return;
  const next = list.filter((x) => x !== item);
  if (next.length === 0) await records.delete(key);
  else await records.set(key, next);
}

function checkUserKey(key: unknown, what = 'user key'): asserts key is UserKey {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError(`A ${what} must be a non-empty string`);
}

/** User keys per users-index chunk: adding a user rewrites one chunk of at most this many keys. */
export const USERS_INDEX_CHUNK_KEYS = 1000;

class KeyvUserRepository implements UserRepository {
  /** User keys known to be in the index (saves a read on every put). */
  readonly #indexed = new Set<UserKey>();
  #migrated: Promise<void> | undefined;

  constructor(
    private readonly records: Records,
    private readonly lock: Lock,
  ) {}

  get(key: UserKey): Promise<UserRecord | undefined> {
    return this.records.get<UserRecord>(`user:${key}`);
  }

  /**
   * Creates or replaces the user; a new user's key is appended to the users index first (so a
   * crash in between leaves an index entry without a record, which `list` skips, never a user
   * missing from broadcasts).
   */
  put(user: UserRecord): Promise<void> {
    checkUserKey(user?.key);
    return this.lock.run(`user:${user.key}`, async () => {
      if (!this.#indexed.has(user.key)) {
        // A stored record means the key was indexed before it was written.
        if ((await this.records.get(`user:${user.key}`)) === undefined) await this.indexAdd(user.key);
        this.#indexed.add(user.key);
      }
      await this.records.set(`user:${user.key}`, user);
    });
  }

  /** Deletes the user and its index entry; deleting a missing user does nothing. */
  delete(key: UserKey): Promise<void> {
    return this.lock.run(`user:${key}`, async () => {
      await this.records.delete(`user:${key}`);
      this.#indexed.delete(key);
      await this.indexRemove(key);
    });
  }

  /** Every user, in the order they were first stored. */
  async list(): Promise<UserRecord[]> {
    await this.migrate();
    const count = (await this.records.get<number>('users:chunks')) ?? 0;
    const chunks = await this.records.getMany<string[]>(Array.from({ length: count }, (_, i) => `users:chunk:${i}`));
    const keys = [...new Set(chunks.flatMap((c) => c ?? []))];
    const users = await this.records.getMany<UserRecord>(keys.map((k) => `user:${k}`));
    return users.filter((u): u is UserRecord => u !== undefined);
  }

  /**
   * The users index is `users:chunks` (how many chunks) and `users:chunk:<i>` (up to
   * {@link USERS_INDEX_CHUNK_KEYS} keys each, first-seen order), so adding a user costs one
   * bounded write however many users there are. Stores written before kept one `users` list; it
   * is split into chunks once, on first use (idempotent if interrupted: the list is deleted last).
   */
  private migrate(): Promise<void> {
    this.#migrated ??= this.lock.run('users', async () => {
      const legacy = await this.records.get<string[]>('users');
      if (!legacy) return;
      const count = Math.ceil(legacy.length / USERS_INDEX_CHUNK_KEYS);
      for (let i = 0; i < count; i++) {
        await this.records.set(`users:chunk:${i}`, legacy.slice(i * USERS_INDEX_CHUNK_KEYS, (i + 1) * USERS_INDEX_CHUNK_KEYS));
      }
      await this.records.set('users:chunks', count);
      await this.records.delete('users');
    });
    return this.#migrated;
  }

  private async indexAdd(key: UserKey): Promise<void> {
    await this.migrate();
    await this.lock.run('users', async () => {
      const count = (await this.records.get<number>('users:chunks')) ?? 0;
      const last = count > 0 ? ((await this.records.get<string[]>(`users:chunk:${count - 1}`)) ?? []) : undefined;
      if (last && last.length < USERS_INDEX_CHUNK_KEYS) {
        last.push(key);
        await this.records.set(`users:chunk:${count - 1}`, last);
      } else {
        await this.records.set(`users:chunk:${count}`, [key]);
        await this.records.set('users:chunks', count + 1);
      }
    });
  }

  /** Removes every entry of `key` (reads each chunk: deletions are rare). */
  private async indexRemove(key: UserKey): Promise<void> {
    await this.migrate();
    await this.lock.run('users', async () => {
      const count = (await this.records.get<number>('users:chunks')) ?? 0;
      const chunkKeys = Array.from({ length: count }, (_, i) => `users:chunk:${i}`);
      const chunks = await this.records.getMany<string[]>(chunkKeys);
      for (let i = 0; i < count; i++) {
        const chunk = chunks[i];
        if (chunk?.includes(key)) await this.records.set(chunkKeys[i]!, chunk.filter((k) => k !== key));
      }
    });
  }
}

class KeyvProfileRepository implements ProfileRepository {
  constructor(
    private readonly records: Records,
    private readonly lock: Lock,
  ) {}

  get(key: UserKey): Promise<VoiceProfile | undefined> {
    return this.records.get<VoiceProfile>(`profile:${key}`);
  }

  put(profile: VoiceProfile): Promise<void> {
    checkUserKey(profile?.userKey);
    return this.lock.run(`profile:${profile.userKey}`, () => this.records.set(`profile:${profile.userKey}`, profile));
  }

  delete(key: UserKey): Promise<void> {
    return this.lock.run(`profile:${key}`, () => this.records.delete(`profile:${key}`));
  }
}

/** A per-user JSON list with serialised read-modify-write. */
class UserList<T> {
  constructor(
    private readonly records: Records,
    private readonly lock: Lock,
    private readonly name: string,
  ) {}

  read(key: UserKey): Promise<T[]> {
    return this.records.get<T[]>(`${this.name}:${key}`).then((list) => list ?? []);
  }

  /** Applies `change` to the current list under the lock; an empty result deletes the key. */
  update<R>(key: UserKey, change: (list: T[]) => { next: T[]; result: R; changed?: boolean }): Promise<R> {
    checkUserKey(key);
    const recordKey = `${this.name}:${key}`;
    return this.lock.run(recordKey, async () => {
      const current = (await this.records.get<T[]>(recordKey)) ?? [];
      const { next, result, changed = true } = change(current);
      if (!changed) return result;
      if (next.length === 0) await this.records.delete(recordKey);
      else await this.records.set(recordKey, next);
      return result;
    });
  }

  clear(key: UserKey): Promise<void> {
    const recordKey = `${this.name}:${key}`;
    return this.lock.run(recordKey, () => this.records.delete(recordKey));
  }
}

class KeyvSampleRepository implements SampleRepository {
  readonly #list: UserList<SampleRecord>;
  constructor(records: Records, lock: Lock) {
    this.#list = new UserList(records, lock, 'samples');
  }

  /** The user's samples in the order they were added. */
  list(key: UserKey): Promise<SampleRecord[]> {
    return this.#list.read(key);
  }

  /** Appends the sample; a sample with the same id replaces the earlier one in place. */
  async add(sample: SampleRecord): Promise<void> {
    checkUserKey(sample?.userKey);
    await this.#list.update(sample.userKey, (list) => {
      const at = list.findIndex((s) => s.id === sample.id);
      if (at >= 0) list[at] = sample;
      else list.push(sample);
      return { next: list, result: undefined };
    });
  }

  deleteAll(key: UserKey): Promise<void> {
    return this.#list.clear(key);
  }
}

class KeyvHistoryRepository implements HistoryRepository {
  readonly #list: UserList<ChatTurn>;
  constructor(
    records: Records,
    lock: Lock,
    private readonly maxTurns: number,
  ) {
    this.#list = new UserList(records, lock, 'history');
  }

  /**
   * The last `limit` turns, oldest first.
   * @throws RangeError when `limit` is not a non-negative integer
   */
  async recent(key: UserKey, limit: number): Promise<ChatTurn[]> {
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer (got ${String(limit)})`);
    if (limit === 0) return [];
    const turns = await this.#list.read(key);
    return turns.slice(-limit);
  }

  /** Appends turns in order, keeping only the newest `maxTurns`. */
  async append(key: UserKey, ...turns: ChatTurn[]): Promise<void> {
    if (turns.length === 0) return;
    await this.#list.update(key, (list) => ({ next: list.concat(turns).slice(-this.maxTurns), result: undefined }));
  }

  /**
   * Deletes the turns whose `atMs` is before `beforeMs` (retention); the key goes when none is left.
   * @returns how many turns were deleted
   */
  pruneBefore(key: UserKey, beforeMs: number): Promise<number> {
    return this.#list.update(key, (list) => {
      const next = list.filter((t) => !(t.atMs < beforeMs));
      const removed = list.length - next.length;
      return { next, result: removed, changed: removed > 0 };
    });
  }

  deleteAll(key: UserKey): Promise<void> {
    return this.#list.clear(key);
  }
}

class KeyvMemoryRepository implements MemoryRepository {
  readonly #list: UserList<MemoryRecord>;
  constructor(records: Records, lock: Lock) {
    this.#list = new UserList(records, lock, 'memories');
  }

  /** The user's memories in the order they were added. */
  list(key: UserKey): Promise<MemoryRecord[]> {
    return this.#list.read(key);
  }

  /** Appends the memory; a memory with the same id replaces the earlier one in place. */
  async add(key: UserKey, memory: MemoryRecord): Promise<void> {
    await this.#list.update(key, (list) => {
      const at = list.findIndex((m) => m.id === memory.id);
      if (at >= 0) list[at] = memory;
      else list.push(memory);
      return { next: list, result: undefined };
    });
  }

  remove(key: UserKey, id: string): Promise<boolean> {
    return this.#list.update(key, (list) => {
      const next = list.filter((m) => m.id !== id);
      const removed = next.length !== list.length;
      return { next, result: removed, changed: removed };
    });
  }

  deleteAll(key: UserKey): Promise<void> {
    return this.#list.clear(key);
  }
}

class KeyvJobRepository implements JobRepository {
  constructor(
    private readonly records: Records,
    private readonly lock: Lock,
  ) {}

  get(id: string): Promise<JobRecord | undefined> {
    return this.records.get<JobRecord>(`job:${id}`);
  }

  /** Creates or replaces the job and keeps the open-jobs and per-user indexes in step. */
  put(job: JobRecord): Promise<void> {
    if (typeof job?.id !== 'string' || job.id.length === 0) throw new TypeError('A job id must be a non-empty string');
    return this.lock.run(`job:${job.id}`, async () => {
      const previous = await this.records.get<JobRecord>(`job:${job.id}`);
      const open = OPEN_JOB_STATES.has(job.state);
      // Indexes gain an id before the record is written and lose it after, so a crash in between
      // leaves an extra id (filtered out on read), never a missing one.
      if (job.userKey) {
        const userKey = job.userKey;
        await this.lock.run(`jobs:user:${userKey}`, () => addToIndex(this.records, `jobs:user:${userKey}`, job.id));
      }
      if (open) await this.lock.run('jobs:open', () => addToIndex(this.records, 'jobs:open', job.id));
      await this.records.set(`job:${job.id}`, job);
      if (!open && previous && OPEN_JOB_STATES.has(previous.state)) {
        await this.lock.run('jobs:open', () => removeFromIndex(this.records, 'jobs:open', job.id));
      }
      if (previous?.userKey && previous.userKey !== job.userKey) {
        const oldKey = previous.userKey;
        await this.lock.run(`jobs:user:${oldKey}`, () => removeFromIndex(this.records, `jobs:user:${oldKey}`, job.id));
      }
    });
  }

  /** Queued and running jobs, oldest first. */
  async listUnfinished(): Promise<JobRecord[]> {
    const ids = (await this.records.get<string[]>('jobs:open')) ?? [];
    const jobs = await this.records.getMany<JobRecord>(ids.map((id) => `job:${id}`));
    return jobs.filter((j): j is JobRecord => j !== undefined && OPEN_JOB_STATES.has(j.state)).sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  /** Deletes every job that names the user. Idempotent. */
  deleteForUser(key: UserKey): Promise<void> {
    return this.lock.run(`jobs:user:${key}`, async () => {
      const ids = (await this.records.get<string[]>(`jobs:user:${key}`)) ?? [];
      for (const id of ids) {
        await this.lock.run(`job:${id}`, async () => {
          await this.records.delete(`job:${id}`);
          await this.lock.run('jobs:open', () => removeFromIndex(this.records, 'jobs:open', id));
        });
      }
      await this.records.delete(`jobs:user:${key}`);
    });
  }
}

class KeyvDedupeRepository implements DedupeRepository {
  constructor(
    private readonly records: Records,
    private readonly lock: Lock,
    private readonly redis: KeyvRedis<string> | undefined,
  ) {}

  /**
   * Claims an inbound message id.
   * @param ttlMs how long the claim is remembered, in ms (default 7 days)
   * @returns true the first time an id is claimed within its TTL, false afterwards
   * @throws RangeError when `ttlMs` is not a positive number
   */
  async claim(messageId: string, ttlMs: number = DEFAULT_DEDUPE_TTL_MS): Promise<boolean> {
    if (typeof messageId !== 'string' || messageId.length === 0) throw new TypeError('A message id must be a non-empty string');
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`ttlMs must be a positive number of milliseconds (got ${String(ttlMs)})`);
    const key = `dedupe:${messageId}`;
    const ttl = Math.ceil(ttlMs);
    const redis = this.redis;
    if (redis) {
      // One atomic SET NX PX; the value is in keyv's stored form so keyv reads it too.
      const value = JSON.stringify({ value: true, expires: Date.now() + ttl });
      const client = (await redis.getClient()) as RedisClientType;
      const reply = await client.set(this.records.key(key), value, { NX: true, PX: ttl });
      return reply === 'OK';
    }
    return this.lock.run(key, async () => {
      if ((await this.records.get<boolean>(key)) !== undefined) return false;
      await this.records.set(key, true, ttl);
      return true;
    });
  }
}

class KeyvKeyValueRepository implements KeyValueRepository {
  constructor(
    private readonly records: Records,
    private readonly lock: Lock,
  ) {}

  /**
   * Atomic read-modify-write: `fn` gets the current value (or undefined) and returns the new one,
   * under the key's lock (across processes on Redis).
   * @returns the value stored
   */
  update<T>(key: string, fn: (current: T | undefined) => T, ttlMs?: number): Promise<T> {
    return this.lock.run(`kv:${key}`, async () => {
      const next = fn(await this.get<T>(key));
      await this.set(key, next, ttlMs);
      return next;
    });
  }

  get<T>(key: string): Promise<T | undefined> {
    return this.records.get<T>(`kv:${key}`);
  }

  /**
   * Stores a JSON-serialisable value.
   * @param ttlMs expiry in ms; omitted means no expiry
   * @throws TypeError for `undefined` or binary values (audio belongs in the blob store);
   *   RangeError when `ttlMs` is not a positive number
   */
  async set<T>(key: string, value: T, ttlMs?: number): Promise<void> {
    if (value === undefined) throw new TypeError(`kv value for "${key}" is undefined; use delete() instead`);
    if (Buffer.isBuffer(value) || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
      throw new TypeError(`kv value for "${key}" is binary; store audio in the blob store and keep its blob key here`);
    }
    if (ttlMs !== undefined && (!Number.isFinite(ttlMs) || ttlMs <= 0)) {
      throw new RangeError(`ttlMs must be a positive number of milliseconds (got ${String(ttlMs)})`);
    }
    await this.records.set(`kv:${key}`, value, ttlMs === undefined ? undefined : Math.ceil(ttlMs));
  }

  delete(key: string): Promise<void> {
    return this.records.delete(`kv:${key}`);
  }
}

interface Repositories {
  users: KeyvUserRepository;
  profiles: KeyvProfileRepository;
  samples: KeyvSampleRepository;
  history: KeyvHistoryRepository;
  memories: KeyvMemoryRepository;
  jobs: KeyvJobRepository;
  dedupe: KeyvDedupeRepository;
  kv: KeyvKeyValueRepository;
  blobs: BlobStore;
}

/** Wraps every method of `target` so it runs through the gate (refused after close, awaited by close). */
function gated<T extends object>(target: T, gate: Gate): T {
  return new Proxy(target, {
    get(obj, prop) {
      const value: unknown = Reflect.get(obj, prop, obj);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => gate.run(() => (value as (...a: unknown[]) => Promise<unknown>).apply(obj, args));
    },
  });
}

class KeyvStore implements Store {
  readonly backend: StoreBackend;
  readonly users: UserRepository;
  readonly profiles: ProfileRepository;
  readonly samples: SampleRepository;
  readonly history: HistoryRepository;
  readonly memories: MemoryRepository;
  readonly jobs: JobRepository;
  readonly dedupe: DedupeRepository;
  readonly kv: KeyValueRepository;
  readonly blobs: BlobStore;

  /** The repositories without the gate, for operations that are already inside it. */
  readonly #repos: Repositories;
  readonly #gate = new Gate();
  readonly #records: Records;
  readonly #keyv: Keyv;
  readonly #sqlite: KeyvSqlite | undefined;
  readonly #raw: RawRecords;
  readonly #logger: Logger;
  #sweepTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  constructor(
    options: OpenedBackend & { backend: StoreBackend; namespace: string; historyMaxTurns: number; blobs: BlobStore; cipher: RecordCipher; logger: Logger },
  ) {
    this.backend = options.backend;
    this.#keyv = options.keyv;
    this.#sqlite = options.sqlite;
    this.#logger = options.logger;
    this.#raw = options.sqlite
      ? sqliteRawRecords(options.sqlite)
      : options.redis
        ? redisRawRecords(options.redis)
        : mapRawRecords(options.map ?? new Map<string, unknown>());
    const records = new Records(options.keyv, `${options.namespace}:`, options.cipher);
    this.#records = records;
    // With Redis, several processes share the data: every read-modify-write also holds a lease in Redis.
    const redis = options.redis;
    const lock: Lock = redis ? new RedisLeaseLock(async () => (await redis.getClient()) as unknown as LeaseClient, records.key('')) : new KeyedLock();
    this.#repos = {
      users: new KeyvUserRepository(records, lock),
      profiles: new KeyvProfileRepository(records, lock),
      samples: new KeyvSampleRepository(records, lock),
      history: new KeyvHistoryRepository(records, lock, options.historyMaxTurns),
      memories: new KeyvMemoryRepository(records, lock),
      jobs: new KeyvJobRepository(records, lock),
      dedupe: new KeyvDedupeRepository(records, lock, options.redis),
      kv: new KeyvKeyValueRepository(records, lock),
      blobs: options.blobs,
    };
    const gate = this.#gate;
    this.users = gated(this.#repos.users, gate);
    this.profiles = gated(this.#repos.profiles, gate);
    this.samples = gated(this.#repos.samples, gate);
    this.history = gated(this.#repos.history, gate);
    this.memories = gated(this.#repos.memories, gate);
    this.jobs = gated(this.#repos.jobs, gate);
    this.dedupe = gated(this.#repos.dedupe, gate);
    this.kv = gated(this.#repos.kv, gate);
    this.blobs = gated(this.#repos.blobs, gate);
  }

  /**
   * Records an HMAC of the data key on first use and compares it afterwards, so a lost or changed
   * key is reported at start-up instead of as unreadable blobs later.
   * @throws Error when the key differs from the one the store was created with
   */
  async checkDataKey(dataKey: Buffer, dataDir: string): Promise<void> {
    const check = createHmac('sha256', dataKey).update(DATA_KEY_CHECK_LABEL).digest();
    const stored = await this.#records.get<string>('meta:data-key-check');
    if (stored === undefined) {
      await this.#records.set('meta:data-key-check', check.toString('base64'));
      return;
    }
    const storedBytes = Buffer.from(stored, 'base64');
    if (storedBytes.length !== check.length || !timingSafeEqual(storedBytes, check)) {
      throw new Error(
        `The data key does not match the key this ${this.backend} store was created with, so its voice data cannot be decrypted. ` +
          `Restore the original VOICETWIN_DATA_KEY (or ${path.join(dataDir, 'data.key')}).`,
      );
    }
  }

  /**
   * Seals every personal record still stored in plaintext (written before values were sealed):
   * walks the {@link SEALED_FAMILIES}, and replaces each plaintext row with its sealed form only if
   * the row is unchanged since it was read (so a concurrent write by another process wins), keeping
   * its expiry. Idempotent: sealed rows are skipped, so an interrupted run resumes where it stopped.
   * Logs progress every 1000 records and a summary when anything was sealed.
   * @returns the number of records sealed
   */
  async sealPlaintextRecords(): Promise<number> {
    const records = this.#records;
    if ((await records.get<boolean>(RECORDS_SEALED_MARKER)) === true) return 0;
    let scanned = 0;
    let sealed = 0;
    const started = Date.now();
    for (const family of SEALED_FAMILIES) {
      for await (const rows of this.#raw.scan(records.key(family))) {
        for (const row of rows) {
          scanned++;
          const data = (await this.#keyv.deserializeData(row.raw)) as { value?: unknown; expires?: number } | undefined;
          if (!data || data.value === undefined || isSealed(data.value)) continue;
          if (typeof data.expires === 'number' && data.expires < Date.now()) continue;
          const key = row.key.slice(records.prefix.length);
          const next = (await this.#keyv.serializeData({ value: records.cipher.seal(key, data.value), expires: data.expires })) as string;
          if (await this.#raw.replaceIf(row.key, row.raw, next)) sealed++;
          if (sealed > 0 && sealed % 1000 === 0) this.#logger.info({ sealed, scanned }, 'sealing plaintext personal records');
        }
      }
    }
    if (sealed > 0) {
      // The plaintext is gone from the table (secure_delete) but old pages still sit in the WAL.
      await this.#checkpoint();
      this.#logger.info({ sealed, scanned, durationMs: Date.now() - started }, 'sealed plaintext personal records with the data key');
    }
    await records.set(RECORDS_SEALED_MARKER, true);
    return sealed;
  }

  /**
   * SQLite: copies the WAL into the database and truncates it to zero bytes
   * (https://www.sqlite.org/pragma.html#pragma_wal_checkpoint), so page images holding deleted or
   * replaced values leave the `-wal` file. A checkpoint blocked by a reader is logged, not thrown.
   */
  async #checkpoint(): Promise<void> {
    if (!this.#sqlite) return;
    try {
      const rows = (await this.#sqlite.query('PRAGMA wal_checkpoint(TRUNCATE)')) as { busy: number }[];
      if (rows[0]?.busy) this.#logger.warn('sqlite WAL checkpoint was blocked by a reader; old pages stay in the -wal file until the next one');
    } catch (err) {
      this.#logger.warn({ err: errorMessage(err) }, 'sqlite WAL checkpoint failed');
    }
  }

  /** SQLite has no native TTL: expired rows (dedupe claims, kv with TTL) are swept now and hourly. */
  async startMaintenance(): Promise<void> {
    if (!this.#sqlite) return;
    await this.#sweepExpired();
    this.#sweepTimer = setInterval(() => void this.#sweepExpired(), SQLITE_SWEEP_INTERVAL_MS);
    this.#sweepTimer.unref();
  }

  async #sweepExpired(): Promise<void> {
    const sqlite = this.#sqlite;
    if (!sqlite) return;
    const prefix = this.#records.prefix;
    // A key range instead of LIKE: `_` and `%` in keys are not wildcards here. `;` follows `:`.
    const upper = `${prefix.slice(0, -1)};`;
    try {
      await this.#gate.run(() =>
        sqlite.query(
          `DELETE FROM ${SQLITE_TABLE} WHERE key >= ? AND key < ? AND json_extract(value, '$.expires') < ?`,
          prefix,
          upper,
          Date.now(),
        ),
      );
    } catch (err) {
      this.#logger.warn({ err: errorMessage(err) }, 'could not sweep expired sqlite rows');
    }
  }

  /** Everything stored for a user. */
  summarize(key: UserKey): Promise<UserDataSummary> {
    return this.#gate.run(async () => {
      const repos = this.#repos;
      const [user, profile, samples, history, memories, blobKeys] = await Promise.all([
        repos.users.get(key),
        repos.profiles.get(key),
        repos.samples.list(key),
        this.#records.get<ChatTurn[]>(`history:${key}`),
        repos.memories.list(key),
        repos.blobs.list(key),
      ]);
      return { user, profile, samples, historyTurns: history?.length ?? 0, memories, blobKeys };
    });
  }

  /**
   * Deletes every blob and record of the user: samples, history, memories, profile, the user's
   * jobs, the user record and its index entry, their daily usage records (`kv:usage:<day>:<userKey>`)
   * and the outbox records of `options.messageIds`. On SQLite deleted rows are zeroed
   * (`secure_delete`) and the WAL is truncated afterwards, so the person's rows leave the `-wal`
   * file too. Idempotent; a partial failure can be retried.
   * @param options.messageIds inbound message ids of the user whose outbox records go too
   */
  deleteUser(key: UserKey, options: { messageIds?: readonly string[] } = {}): Promise<void> {
    return this.#gate.run(async () => {
      checkUserKey(key);
      const repos = this.#repos;
      const blobCount = await repos.blobs.deleteAll(key);
      await Promise.all([repos.samples.deleteAll(key), repos.history.deleteAll(key), repos.memories.deleteAll(key), repos.profiles.delete(key)]);
      await repos.jobs.deleteForUser(key);
      await repos.users.delete(key);
      const usagePrefix = this.#records.key('kv:usage:');
      const usageKeys = await this.#rawKeys(usagePrefix, (rest) => /^\d{4}-\d{2}-\d{2}:/.test(rest) && rest.slice(11) === key);
      const outboxKeys: string[] = [];
      for (const id of options.messageIds ?? []) outboxKeys.push(...(await this.#rawKeys(this.#records.key(`kv:outbox:${id}:`), () => true)));
      for (const full of [...usageKeys, ...outboxKeys]) await this.#keyv.delete(full);
      await this.#checkpoint();
      this.#logger.info({ blobCount, usageRecords: usageKeys.length, outboxRecords: outboxKeys.length }, 'deleted all data of a user');
    });
  }

  /** Full keys starting with `prefix` whose remainder passes `match`. */
  async #rawKeys(prefix: string, match: (rest: string) => boolean): Promise<string[]> {
    const keys = new Set<string>();
    for await (const rows of this.#raw.scan(prefix)) {
      for (const row of rows) if (match(row.key.slice(prefix.length))) keys.add(row.key);
    }
    return [...keys];
  }

  /** Waits for calls in flight, then closes the backend connection. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#sweepTimer) clearInterval(this.#sweepTimer);
      await this.#gate.close();
      await this.#keyv.disconnect();
    })();
    return this.#closing;
  }
}
