/**
 * With Redis, several processes share one store, but the encrypted audio blobs (enrollment
 * samples, consent recordings, the synthesis cache) are files under `<data dir>/blobs`. Every
 * process must therefore see the same directory: one host, or a shared volume. This check makes a
 * wrong set-up fail at start-up instead of as "sample not found" in a clone job later.
 *
 * How: the blob directory holds a random volume id (`blobs/.volume-id`, 0600); the store holds the
 * id of the directory the first process registered (`kv:blob-volume`, set atomically). A process
 * whose directory has another id, or none while one is registered, refuses to start.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { KeyValueRepository } from './types.js';

/** File holding the blob directory's volume id. */
export const VOLUME_ID_FILE = '.volume-id';

/** The blob directory is not the one the other processes on this Redis use. */
export class BlobVolumeError extends Error {
  override readonly name = 'BlobVolumeError';
}

async function readId(file: string): Promise<string | undefined> {
  try {
    return (await fs.readFile(file, 'utf8')).trim() || undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Registers or checks the blob directory's volume id against the store.
 * @param blobDir the blob directory (`<data dir>/blobs`), created 0700 when missing
 * @param kv the shared store's key-value repository
 * @param waitMs how long to wait for another process on the same volume to write the id when two
 *   start at once, ms (default 3000)
 * @returns the volume id
 * @throws BlobVolumeError when the directory is not the registered one
 */
export async function checkSharedBlobVolume(blobDir: string, kv: KeyValueRepository, waitMs = 3000): Promise<string> {
  await fs.mkdir(blobDir, { recursive: true, mode: 0o700 });
  const file = path.join(blobDir, VOLUME_ID_FILE);
  const local = await readId(file);
  const candidate = local ?? randomBytes(16).toString('hex');
  const registered = await kv.update<string>('blob-volume', (current) => current ?? candidate);
  if (local === registered) return registered;
  if (!local && registered === candidate) {
    await fs.writeFile(file, candidate, { mode: 0o600, flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    const written = await readId(file);
    if (written === registered) return registered;
  }
  // Another process on the same volume may be writing the id right now.
  const deadline = Date.now() + waitMs;
  while (!local && Date.now() < deadline) {
    if ((await readId(file)) === registered) return registered;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new BlobVolumeError(
    `The audio blob directory ${blobDir} is not the one the other VoiceTwin processes on this Redis use. ` +
      'With REDIS_URL, every process must see the same VOICETWIN_DATA_DIR/blobs (one host, or a shared volume).',
  );
}
