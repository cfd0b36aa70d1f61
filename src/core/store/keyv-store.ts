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
 *
 * Modules: this file opens the backend and assembles the store; each repository has its own
 * module (`users.ts`, `profiles.ts`, `samples.ts`, `history.ts`, `memories.ts`, `job-records.ts`,
 * `dedupe.ts`, `key-value.ts`) over the shared record layer in `records.ts`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { Keyv } from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import KeyvRedis, { RedisErrorMessages, type RedisClientType } from '@keyv/redis';
import { silentLogger, type Logger } from '../log.js';
import type { ChatTurn } from '../providers.js';
import { EncryptedBlobStore } from './blob-store.js';
import { DATA_KEY_BYTES } from './data-key.js';
import { KeyvDedupeRepository } from './dedupe.js';
import { createPrivateFile, securePrivateTree } from './file-modes.js';
import { KeyvHistoryRepository } from './history.js';
import { KeyvJobRepository } from './job-records.js';
import { KeyvKeyValueRepository } from './key-value.js';
import { KeyedLock, RedisLeaseLock, type LeaseClient, type Lock } from './keyed-lock.js';
import { KeyvMemoryRepository } from './memories.js';
import { KeyvProfileRepository } from './profiles.js';
import { RecordCipher, isSealed } from './record-cipher.js';
import { Gate, Records, SEALED_FAMILIES, checkUserKey, gated } from './records.js';
import { mapRawRecords, redisRawRecords, sqliteRawRecords, type RawRecords } from './raw-records.js';
import { KeyvSampleRepository } from './samples.js';
import { KeyvUserRepository } from './users.js';
import type {
  BlobStore,
  DedupeRepository,
  HistoryRepository,
  JobRepository,
  KeyValueRepository,
  MemoryRepository,
  ProfileRepository,
  SampleRepository,
  Store,
  UserDataSummary,
  UserKey,
  UserRepository,
} from './types.js';

export { DEFAULT_DEDUPE_TTL_MS } from './dedupe.js';
export { SEALED_FAMILIES, isSealedFamily } from './records.js';
export { USERS_INDEX_CHUNK_KEYS } from './users.js';

/** The backends a store can run on. */
export type StoreBackend = Store['backend'];

/** Name of the SQLite file inside the data directory. */
export const SQLITE_FILE = 'voicetwin.sqlite';
/** Default number of history turns kept per user. */
export const DEFAULT_HISTORY_MAX_TURNS = 200;
/** Default namespace (key prefix). */
export const DEFAULT_NAMESPACE = 'voicetwin';

const DEFAULT_REDIS_CONNECT_TIMEOUT_MS = 5000;
const SQLITE_BUSY_TIMEOUT_MS = 5000;
const SQLITE_TABLE = 'keyv';
const SQLITE_SWEEP_INTERVAL_MS = 60 * 60 * 1000;
const NAMESPACE_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const DATA_KEY_CHECK_LABEL = 'voicetwin data key check v1';
/**
 * Key-value families whose keys are `kv:<family>:<userKey>:…`, deleted with the person
 * (`deleteUser`): the HTTP API's speech job records.
 */
export const PERSON_KV_FAMILIES: readonly string[] = ['speechjob'];

/** Set once every personal record has been sealed (later starts skip the walk). */
const RECORDS_SEALED_MARKER = 'meta:records-sealed-v1';
/** Present while `voicetwin rotate-key` re-encrypts the store (see `key-rotation.ts`); the store refuses to open meanwhile. */
export const KEY_ROTATION_MARKER = 'meta:key-rotation';

/** The HMAC of a data key kept in `meta:data-key-check` (base64). */
export function dataKeyCheck(dataKey: Buffer): string {
  return createHmac('sha256', dataKey).update(DATA_KEY_CHECK_LABEL).digest('base64');
}

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

/** An opened backend (internal; used by `createStore` and the key rotation). */
export interface OpenedBackend {
  keyv: Keyv;
  sqlite?: KeyvSqlite;
  redis?: KeyvRedis<string>;
  /** The in-memory backend's Map (memory backend only). */
  map?: Map<string, unknown>;
}

/** Opens the keyv backend `backend` (internal; see {@link createStore} for the errors thrown). */
export async function openBackend(backend: StoreBackend, options: CreateStoreOptions, logger: Logger): Promise<OpenedBackend> {
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

/** The message of an error for logs and wrapped errors (internal). */
export function errorMessage(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(errorMessage).join('; ');
  if (err instanceof Error) return err.message || err.name;
  return String(err);
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
   * @throws Error when the key differs from the one the store was created with, or a key rotation
   *   was interrupted (`meta:key-rotation` is present)
   */
  async checkDataKey(dataKey: Buffer, dataDir: string): Promise<void> {
    const rotation = await this.#records.get<{ fromKeyId: string; toKeyId: string }>(KEY_ROTATION_MARKER);
    if (rotation) {
      throw new Error(
        `A data key rotation of this ${this.backend} store (from key id ${rotation.fromKeyId} to ${rotation.toKeyId}) was interrupted: ` +
          'run `voicetwin rotate-key` again with the same settings and the same new key to finish it, then start with the new key.',
      );
    }
    const check = Buffer.from(dataKeyCheck(dataKey), 'base64');
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
   * jobs, the user record and its index entry, their daily usage records (`kv:usage:<day>:<userKey>`),
   * the records of {@link PERSON_KV_FAMILIES} and the outbox records of `options.messageIds`. On SQLite deleted rows are zeroed
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
      const personKeys: string[] = [];
      for (const family of PERSON_KV_FAMILIES) personKeys.push(...(await this.#rawKeys(this.#records.key(`kv:${family}:${key}:`), () => true)));
      for (const full of [...usageKeys, ...outboxKeys, ...personKeys]) await this.#keyv.delete(full);
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
