/**
 * `voicetwin rotate-key`: re-encrypts everything sealed with the data key — the store's records
 * (`src/core/store/key-rotation.ts`), the blobs, and the job queue's payloads (embedded queue or
 * BullMQ) — under a new key. Resumable: run it again after an interruption with the same settings
 * and the same new key. See docs/privacy.md ("Key rotation").
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Config } from './config.js';
import type { Logger } from './core/log.js';
import { SHARED_TTS_OWNER } from './core/retention.js';
import { DATA_KEY_BYTES, DATA_KEY_FILE, DATA_KEY_FILE_ENV, dataKeyId, isInsideDir, loadDataKey, parseDataKey } from './core/store/data-key.js';
import { KeyRotationError, openKeyRotation, type RekeyCounts, type RotationProgress } from './core/store/key-rotation.js';

/** Name of the next key in the data directory while the local default's key is rotated. */
export const NEXT_DATA_KEY_FILE = 'data.key.next';

/** Where the new key comes from. */
export interface NewDataKey {
  key: Buffer;
  /** The file holding it. */
  path: string;
  /** True when the key was generated into `path` by this call. */
  generated: boolean;
  /** True when `path` is `<dataDir>/data.key.next`, moved onto `data.key` once the rotation is done. */
  replacesDataDirKey: boolean;
}

/** What a rotation did. */
export interface RotateKeyResult {
  fromKeyId: string;
  toKeyId: string;
  resumed: boolean;
  records: RekeyCounts;
  blobs: RekeyCounts & { unknownFolders: number };
  jobs: RekeyCounts;
  newKey: NewDataKey;
}

/**
 * The new key of a rotation.
 * - `newKeyFile` given: the key in that file (64 hex characters or base64); when the file does not
 *   exist a random key is generated and written there first (mode 0600). Refused inside the data dir.
 * - not given, with the local default key (`<dataDir>/data.key`): `<dataDir>/data.key.next`, read
 *   or generated the same way; it replaces `data.key` when the rotation finishes.
 * - not given, with `VOICETWIN_DATA_KEY` or `VOICETWIN_DATA_KEY_FILE`: refused (the new key must
 *   live where the configuration can point at it).
 * @throws Error naming the file when it cannot be read, is malformed, or lies inside the data dir
 */
export async function resolveNewKey(config: Config, usesDataDirKey: boolean, newKeyFile?: string): Promise<NewDataKey> {
  let file: string;
  let replacesDataDirKey = false;
  if (newKeyFile) {
    file = path.resolve(newKeyFile);
    const realDataDir = await fs.realpath(config.dataDir).catch(() => config.dataDir);
    const realParent = await fs.realpath(path.dirname(file)).catch(() => path.dirname(file));
    if (isInsideDir(file, config.dataDir) || isInsideDir(path.join(realParent, path.basename(file)), realDataDir)) {
      throw new Error(`--new-key-file ${file} lies inside the data directory ${config.dataDir}; keep the key outside it (e.g. /run/secrets/voicetwin-data-key).`);
    }
  } else if (usesDataDirKey) {
    file = path.join(config.dataDir, NEXT_DATA_KEY_FILE);
    replacesDataDirKey = true;
  } else {
    throw new Error(
      `The data key is configured by VOICETWIN_DATA_KEY or ${DATA_KEY_FILE_ENV}: give --new-key-file <path> outside the data directory ` +
        '(a new key is generated into it when the file does not exist), then point the configuration at the new key once the rotation is done.',
    );
  }
  let text: string | undefined;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`Cannot read the new key file ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (text !== undefined) return { key: parseDataKey(text, `The new key file ${file}`), path: file, generated: false, replacesDataDirKey };
  const key = randomBytes(DATA_KEY_BYTES);
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const handle = await fs.open(file, 'wx', 0o600);
  try {
    await handle.writeFile(`${key.toString('hex')}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { key, path: file, generated: true, replacesDataDirKey };
}

/**
 * Rotates the data key of the store, blobs and job queue the configuration points at.
 *
 * Order: the store's rotation marker is set (the store refuses to open until the end; a running
 * server refuses the rotation), the records are re-sealed, the blobs re-encrypted, the queue's job
 * data re-sealed, then the store is switched to the new key and the marker removed; with the local
 * default key, `data.key.next` then replaces `data.key`.
 *
 * @param options.newKeyFile see {@link resolveNewKey}
 * @param options.onProgress called with the phase and the number of items handled so far
 * @throws KeyRotationError when the rotation is refused (see `openKeyRotation`); Error when a key,
 *   the store or the queue cannot be read
 */
export async function rotateDataKey(
  config: Config,
  options: { newKeyFile?: string; logger: Logger; onProgress?: RotationProgress },
): Promise<RotateKeyResult> {
  const { key: oldKey, source } = await loadDataKey({
    dataDir: config.dataDir,
    ...(config.dataKey !== undefined ? { envValue: config.dataKey } : {}),
    ...(config.dataKeyFile !== undefined ? { keyFile: config.dataKeyFile } : {}),
    allowDataDirKey: !config.redisUrl,
    logger: options.logger,
  });
  const usesDataDirKey = source === 'data-dir' || source === 'generated';
  const newKey = await resolveNewKey(config, usesDataDirKey, options.newKeyFile);
  if (newKey.key.equals(oldKey)) throw new KeyRotationError('The new data key is the same as the current one; give a different key.', 'same-key');

  let rotation;
  try {
    rotation = await openKeyRotation({
      dataDir: config.dataDir,
      ...(config.redisUrl ? { redisUrl: config.redisUrl, namespace: config.redisNamespace } : {}),
      oldKey,
      newKey: newKey.key,
      logger: options.logger,
    });
  } catch (err) {
    // Interrupted after the store was switched but before data.key was replaced: finish that step.
    if (err instanceof KeyRotationError && err.code === 'already-rotated' && newKey.replacesDataDirKey) {
      await fs.rename(newKey.path, path.join(config.dataDir, DATA_KEY_FILE));
      const none = { rekeyed: 0, current: 0 };
      return { fromKeyId: dataKeyId(oldKey), toKeyId: dataKeyId(newKey.key), resumed: true, records: none, blobs: { ...none, unknownFolders: 0 }, jobs: none, newKey };
    }
    throw err;
  }
  try {
    const records = await rotation.rekeyRecords(options.onProgress);
    const blobs = await rotation.rekeyBlobs([SHARED_TTS_OWNER], options.onProgress);
    const onJobs = (n: number): void => options.onProgress?.('jobs', n);
    let jobs: RekeyCounts;
    if (config.redisUrl) {
      const { BullQueue } = await import('./queue/bullmq.js');
      jobs = await BullQueue.rekeyJobs({ redisUrl: config.redisUrl, prefix: `${config.redisNamespace}-jobs`, oldKey, newKey: newKey.key, onProgress: onJobs });
    } else {
      const { EmbeddedQueue } = await import('./queue/embedded.js');
      jobs = await EmbeddedQueue.rekeyJobs({ dataDir: config.dataDir, oldKey, newKey: newKey.key, onProgress: onJobs });
    }
    await rotation.finish();
    if (newKey.replacesDataDirKey) await fs.rename(newKey.path, path.join(config.dataDir, DATA_KEY_FILE));
    return {
      fromKeyId: rotation.fromKeyId,
      toKeyId: rotation.toKeyId,
      resumed: rotation.resumed,
      records,
      blobs: { rekeyed: blobs.rekeyed, current: blobs.current, unknownFolders: blobs.unknownFolders.length },
      jobs,
      newKey,
    };
  } finally {
    await rotation.close();
  }
}
