/**
 * Data key rotation of the store: every sealed record (`record-cipher.ts`) and every blob
 * (`blob-store.ts`) is re-encrypted under a new key. The job queue's payloads are re-encrypted by
 * the queue engines (`src/queue/*`); `src/rotate-key.ts` runs the whole rotation.
 *
 * Resumable and idempotent: records and blobs carry the id of the key that sealed them
 * (`dataKeyId`), so what is already under the new key is skipped and an interrupted run continues
 * where it stopped. While a rotation is under way `meta:key-rotation` holds
 * `{ fromKeyId, toKeyId, startedAtMs }`, and `createStore` refuses to open the store (with either
 * key) until the rotation is finished; only then is `meta:data-key-check` switched to the new key.
 */
import path from 'node:path';
import { Keyv } from 'keyv';
import { silentLogger, type Logger } from '../log.js';
import { EncryptedBlobStore, blobOwnerFolder } from './blob-store.js';
import { DATA_KEY_BYTES, dataKeyId } from './data-key.js';
import { DEFAULT_NAMESPACE, KEY_ROTATION_MARKER, dataKeyCheck, errorMessage, openBackend, type OpenedBackend, type StoreBackend } from './keyv-store.js';
import { RecordCipher, isSealed, sealedKeyId } from './record-cipher.js';
import { Records, SEALED_FAMILIES } from './records.js';
import { mapRawRecords, redisRawRecords, sqliteRawRecords, type RawRecords } from './raw-records.js';
import { SERVE_PRESENCE_PREFIX, presenceIsLive } from './presence.js';

/** The rotation's state record, `meta:key-rotation`. */
export interface KeyRotationState {
  fromKeyId: string;
  toKeyId: string;
  startedAtMs: number;
}

/** Why a rotation was refused. */
export type KeyRotationRefusal = 'same-key' | 'wrong-key' | 'already-rotated' | 'other-rotation' | 'old-key-changed' | 'server-running';

/** The store cannot be rotated as asked (wrong key, a server running, another rotation under way). */
export class KeyRotationError extends Error {
  override readonly name = 'KeyRotationError';
  constructor(
    message: string,
    readonly code: KeyRotationRefusal,
  ) {
    super(message);
  }
}

/** Counts of one re-encryption pass. */
export interface RekeyCounts {
  /** Items re-encrypted under the new key in this run. */
  rekeyed: number;
  /** Items found already under the new key (an earlier, interrupted run). */
  current: number;
}

/** Progress callback: the phase and how many items it has handled so far. */
export type RotationProgress = (phase: 'records' | 'blobs' | 'jobs', handled: number) => void;

/** Families whose keys name a blob owner (`<family><userKey>`). */
const OWNER_FAMILIES = ['user:', 'profile:', 'samples:', 'history:', 'memories:', 'jobs:user:', 'kv:apikeys:'];
const PROGRESS_EVERY = 500;

/** A rotation in progress over one opened store backend. */
export interface StoreKeyRotation {
  readonly fromKeyId: string;
  readonly toKeyId: string;
  /** True when an interrupted rotation to the same key was found and is being continued. */
  readonly resumed: boolean;
  /** Re-seals every record of the sealed families that is not yet under the new key (plaintext rows too). */
  rekeyRecords(onProgress?: RotationProgress): Promise<RekeyCounts>;
  /**
   * Re-encrypts every blob not yet under the new key. Owners are the user keys found in the
   * store's record keys plus `extraOwners` (e.g. the shared default voice's cache owner).
   * @returns counts, plus the blob folders whose owner is not known (left as they are)
   */
  rekeyBlobs(extraOwners: readonly string[], onProgress?: RotationProgress): Promise<RekeyCounts & { unknownFolders: string[] }>;
  /** Records the new key as the store's key (`meta:data-key-check`) and removes the rotation marker. */
  finish(): Promise<void>;
  /** Closes the backend connection. */
  close(): Promise<void>;
}

/**
 * Opens the store's backend for a key rotation from `oldKey` to `newKey`, checks that no server is
 * running, and records (or finds, when resuming) the rotation marker.
 *
 * @param options.dataDir the data directory (SQLite file, `blobs/`)
 * @param options.backend `sqlite`, `redis` or `memory` (tests); default by `redisUrl`
 * @param options.redisUrl, options.namespace as for `createStore`
 * @param options.oldKey the key the store is under now (32 bytes)
 * @param options.newKey the key to move to (32 bytes)
 * @throws KeyRotationError when the keys are equal, when `oldKey` is not the store's key, when the
 *   store is already under `newKey`, when another rotation is under way, or when a running server
 *   is detected (a live presence record); Error when the backend cannot be opened
 */
export async function openKeyRotation(options: {
  dataDir: string;
  backend?: StoreBackend;
  redisUrl?: string;
  namespace?: string;
  oldKey: Buffer;
  newKey: Buffer;
  logger?: Logger;
  /** The memory backend's Map (tests of the memory backend only). */
  memoryMap?: Map<string, unknown>;
}): Promise<StoreKeyRotation> {
  for (const k of [options.oldKey, options.newKey]) {
    if (!Buffer.isBuffer(k) || k.length !== DATA_KEY_BYTES) throw new Error(`The data key must be ${DATA_KEY_BYTES} bytes`);
  }
  const fromKeyId = dataKeyId(options.oldKey);
  const toKeyId = dataKeyId(options.newKey);
  if (fromKeyId === toKeyId) throw new KeyRotationError('The new data key is the same as the current one; give a different key.', 'same-key');
  const backend: StoreBackend = options.backend ?? (options.redisUrl ? 'redis' : 'sqlite');
  const logger = (options.logger ?? silentLogger).child({ component: 'key-rotation', backend });
  const opened: OpenedBackend =
    backend === 'memory' && options.memoryMap
      ? { keyv: new Keyv({ store: options.memoryMap, namespace: undefined, useKeyPrefix: false, throwOnErrors: true }), map: options.memoryMap }
      : await openBackend(backend, { dataDir: options.dataDir, ...(options.redisUrl ? { redisUrl: options.redisUrl } : {}), dataKey: options.oldKey }, logger);
  const keyv = opened.keyv;
  const close = async (): Promise<void> => {
    await keyv.disconnect().catch(() => undefined);
  };
  try {
    const prefix = `${options.namespace ?? DEFAULT_NAMESPACE}:`;
    const cipher = new RecordCipher(options.newKey, [options.oldKey]);
    const records = new Records(keyv, prefix, cipher);
    const raw: RawRecords = opened.sqlite ? sqliteRawRecords(opened.sqlite) : opened.redis ? redisRawRecords(opened.redis) : mapRawRecords(opened.map ?? new Map());

    const state = await records.get<KeyRotationState>(KEY_ROTATION_MARKER);
    if (state) {
      if (state.toKeyId !== toKeyId) {
        throw new KeyRotationError(
          `A rotation to another key (id ${state.toKeyId}) was interrupted; finish it with that key as the new key (the new key given has id ${toKeyId}).`,
          'other-rotation',
        );
      }
      if (state.fromKeyId !== fromKeyId) {
        throw new KeyRotationError(
          `The interrupted rotation started from the key with id ${state.fromKeyId}, but the configured key has id ${fromKeyId}: ` +
            'keep the old key configured (VOICETWIN_DATA_KEY / VOICETWIN_DATA_KEY_FILE) until the rotation has finished.',
          'old-key-changed',
        );
      }
    } else {
      const stored = await records.get<string>('meta:data-key-check');
      if (stored === dataKeyCheck(options.newKey)) throw new KeyRotationError(`The store is already under the new key (id ${toKeyId}); nothing to do.`, 'already-rotated');
      if (stored !== undefined && stored !== dataKeyCheck(options.oldKey)) {
        throw new KeyRotationError('The configured data key is not the key this store was written with; configure the current key to rotate from it.', 'wrong-key');
      }
    }

    const live: string[] = [];
    for await (const rows of raw.scan(records.key(`kv:${SERVE_PRESENCE_PREFIX}`))) {
      for (const row of rows) {
        const data = (await keyv.deserializeData(row.raw)) as { expires?: number } | undefined;
        const rest = row.key.slice(records.key(`kv:${SERVE_PRESENCE_PREFIX}`).length);
        if (presenceIsLive(rest, typeof data?.expires === 'number' ? data.expires : undefined)) live.push(rest);
      }
    }
    if (live.length > 0) {
      throw new KeyRotationError(
        `A VoiceTwin server is running on this store (${live.slice(0, 3).join(', ')}${live.length > 3 ? ', …' : ''}): stop every \`voicetwin serve\` first, then rotate the key.`,
        'server-running',
      );
    }
    if (!state) await records.set(KEY_ROTATION_MARKER, { fromKeyId, toKeyId, startedAtMs: Date.now() } satisfies KeyRotationState);
    logger.info({ fromKeyId, toKeyId, resumed: Boolean(state) }, state ? 'resuming an interrupted data key rotation' : 'starting a data key rotation');

    const checkpoint = async (): Promise<void> => {
      if (!opened.sqlite) return;
      try {
        await opened.sqlite.query('PRAGMA wal_checkpoint(TRUNCATE)');
      } catch (err) {
        logger.warn({ err: errorMessage(err) }, 'sqlite WAL checkpoint failed');
      }
    };

    return {
      fromKeyId,
      toKeyId,
      resumed: Boolean(state),
      async rekeyRecords(onProgress) {
        const counts: RekeyCounts = { rekeyed: 0, current: 0 };
        let handled = 0;
        for (const family of SEALED_FAMILIES) {
          for await (const rows of raw.scan(records.key(family))) {
            for (const row of rows) {
              const data = (await keyv.deserializeData(row.raw)) as { value?: unknown; expires?: number } | undefined;
              if (!data || data.value === undefined) continue;
              if (typeof data.expires === 'number' && data.expires < Date.now()) continue;
              const key = row.key.slice(prefix.length);
              if (isSealed(data.value) && sealedKeyId(data.value) === toKeyId) {
                counts.current++;
              } else {
                const value: unknown = isSealed(data.value) ? cipher.open(key, data.value) : data.value;
                const next = (await keyv.serializeData({ value: cipher.seal(key, value), expires: data.expires })) as string;
                // The row changed meanwhile (it cannot, with no server running): it is left for the next run.
                if (await raw.replaceIf(row.key, row.raw, next)) counts.rekeyed++;
              }
              if (++handled % PROGRESS_EVERY === 0) onProgress?.('records', handled);
            }
          }
        }
        onProgress?.('records', handled);
        await checkpoint();
        return counts;
      },
      async rekeyBlobs(extraOwners, onProgress) {
        const owners = new Map<string, string>();
        for (const owner of extraOwners) owners.set(blobOwnerFolder(owner), owner);
        for (const family of OWNER_FAMILIES) {
          for await (const rows of raw.scan(records.key(family))) {
            for (const row of rows) {
              const owner = row.key.slice(records.key(family).length);
              if (owner) owners.set(blobOwnerFolder(owner), owner);
            }
          }
        }
        const blobs = new EncryptedBlobStore({ dir: path.join(options.dataDir, 'blobs'), dataKey: options.newKey, openKeys: [options.oldKey] });
        const counts = { rekeyed: 0, current: 0, unknownFolders: [] as string[] };
        for (const folder of await blobs.ownerFolders()) {
          const owner = owners.get(folder);
          if (owner === undefined) {
            counts.unknownFolders.push(folder);
            continue;
          }
          const one = await blobs.rekeyOwner(owner);
          counts.rekeyed += one.rekeyed;
          counts.current += one.current;
          onProgress?.('blobs', counts.rekeyed + counts.current);
        }
        if (counts.unknownFolders.length > 0) {
          logger.warn(
            { folders: counts.unknownFolders.length, examples: counts.unknownFolders.slice(0, 3) },
            'blob folders with no known owner (no record of the person is left) stay under the old key and cannot be read after the rotation; delete them',
          );
        }
        return counts;
      },
      async finish() {
        await records.set('meta:data-key-check', dataKeyCheck(options.newKey));
        await records.delete(KEY_ROTATION_MARKER);
        await checkpoint();
        logger.info({ fromKeyId, toKeyId }, 'data key rotation finished');
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
