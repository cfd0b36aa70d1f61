/**
 * The shared blob directory check: processes on one Redis must see one blob directory.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BlobVolumeError, checkSharedBlobVolume } from '../../../src/core/store/blob-volume.js';
import { KeyedLock } from '../../../src/core/store/keyed-lock.js';
import type { KeyValueRepository } from '../../../src/core/store/types.js';

/** An in-memory key-value repository with an atomic update and take, as the store's. */
function memoryKv(): KeyValueRepository {
  const values = new Map<string, unknown>();
  const lock = new KeyedLock();
  const kv: KeyValueRepository = {
    get: async <T>(k: string) => values.get(k) as T | undefined,
    set: async (k, v) => void values.set(k, v),
    delete: async (k) => void values.delete(k),
    update: <T>(k: string, fn: (c: T | undefined) => T) => lock.run(k, async () => {
      const next = fn(values.get(k) as T | undefined);
      values.set(k, next);
      return next;
    }),
    take: <T>(k: string) => lock.run(k, async () => {
      const value = values.get(k) as T | undefined;
      values.delete(k);
      return value;
    }),
    updateMany: async () => {
      throw new Error('not used by the blob volume check');
    },
  };
  return kv;
}

const dirs: string[] = [];
afterEach(async () => {
  while (dirs.length) await rm(dirs.pop()!, { recursive: true, force: true });
});

/** `<temp dir>/blobs`, the temp dir removed after the test. */
async function blobDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vt-vol-'));
  dirs.push(dir);
  return path.join(dir, 'blobs');
}

describe('checkSharedBlobVolume', () => {
  it('registers the first directory, accepts it again and from processes starting at once', async () => {
    const kv = memoryKv();
    const dir = await blobDir();
    const [a, b] = await Promise.all([checkSharedBlobVolume(dir, kv), checkSharedBlobVolume(dir, kv)]);
    expect(a).toBe(b);
    expect(await checkSharedBlobVolume(dir, kv)).toBe(a);
  });

  it('refuses another directory with a message that says what to do', async () => {
    const kv = memoryKv();
    const first = await blobDir();
    const other = await blobDir();
    await checkSharedBlobVolume(first, kv);
    const err = await checkSharedBlobVolume(other, kv, 200).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlobVolumeError);
    expect((err as Error).message).toContain('shared volume');
  });
});
