/**
 * The encrypted blob store: AES-256-GCM at rest, blob keys bound as additional data, atomic writes.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobIntegrityError, BlobNotFoundError, EncryptedBlobStore, parseBlobKey } from '../../../src/core/store/blob-store.js';
import { dataKeyId } from '../../../src/core/store/data-key.js';

let dir: string;
let key: Buffer;
let blobs: EncryptedBlobStore;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'voicetwin-blobs-'));
  key = randomBytes(32);
  blobs = new EncryptedBlobStore({ dir, dataKey: key });
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** The on-disk path of a blob, from the documented layout. */
function fileOf(blobKey: string): string {
  const { ownerKey, kind, id } = parseBlobKey(blobKey);
  return path.join(dir, createHash('sha256').update(ownerKey).digest('hex').slice(0, 32), `${kind}.${id}.vtb`);
}

/** A WAV-like plaintext with a marker that must never appear on disk. */
function audio(sizeBytes = 4096): Buffer {
  const marker = Buffer.from('RIFF-VOICETWIN-PLAINTEXT-MARKER-');
  return Buffer.concat(Array.from({ length: Math.ceil(sizeBytes / marker.length) }, () => marker)).subarray(0, sizeBytes);
}

describe('EncryptedBlobStore', () => {
  it('round-trips bytes and keeps no plaintext on disk', async () => {
    const plain = audio(10_000);
    const blobKey = await blobs.put('telegram:42', plain, 'sample');
    expect(blobKey).toMatch(/^telegram:42\/sample\/[0-9a-f]{32}$/);
    expect(await blobs.get(blobKey)).toEqual(plain);

    const onDisk = await fs.readFile(fileOf(blobKey));
    expect(onDisk.length).toBe(plain.length + 36);
    expect(onDisk.subarray(0, 4)).toEqual(Buffer.from([0x56, 0x54, 0x42, 0x02]));
    expect(onDisk.subarray(4, 8).toString('hex')).toBe(dataKeyId(key));
    expect(onDisk.includes(Buffer.from('PLAINTEXT-MARKER'))).toBe(false);
    expect(onDisk.includes(Buffer.from('RIFF'))).toBe(false);
    const { mode } = await fs.stat(fileOf(blobKey));
    expect(mode & 0o777).toBe(0o600);
  });

  it('uses a fresh IV per blob, so equal bytes encrypt differently', async () => {
    const a = await blobs.put('telegram:42', audio(), 'tts');
    const b = await blobs.put('telegram:42', audio(), 'tts');
    const fa = await fs.readFile(fileOf(a));
    const fb = await fs.readFile(fileOf(b));
    expect(fa.subarray(8, 20)).not.toEqual(fb.subarray(8, 20));
    expect(fa.subarray(36)).not.toEqual(fb.subarray(36));
  });

  it('stores empty blobs', async () => {
    const k = await blobs.put('telegram:42', Buffer.alloc(0), 'consent');
    expect(await blobs.get(k)).toEqual(Buffer.alloc(0));
  });

  it.each([
    ['a ciphertext byte', 40],
    ['a key id byte', 5],
    ['an IV byte', 10],
    ['a tag byte', 25],
  ])('fails authentication when %s is flipped', async (_what, offset) => {
    const k = await blobs.put('telegram:42', audio(), 'sample');
    const file = await fs.readFile(fileOf(k));
    file[offset]! ^= 0x01;
    await fs.writeFile(fileOf(k), file);
    const err = await blobs.get(k).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlobIntegrityError);
    expect((err as Error).message).toMatch(/authentication failed/);
  });

  it('refuses a truncated file, a foreign file and an unknown format version', async () => {
    const k = await blobs.put('telegram:42', audio(), 'sample');
    const file = await fs.readFile(fileOf(k));
    await fs.writeFile(fileOf(k), file.subarray(0, file.length - 1));
    await expect(blobs.get(k)).rejects.toThrow(/authentication failed/);
    await fs.writeFile(fileOf(k), file.subarray(0, 20));
    await expect(blobs.get(k)).rejects.toThrow(/bad header/);
    await fs.writeFile(fileOf(k), Buffer.concat([Buffer.from('RIFF'), file.subarray(4)]));
    await expect(blobs.get(k)).rejects.toThrow(/bad header/);
    const v3 = Buffer.from(file);
    v3[3] = 3;
    await fs.writeFile(fileOf(k), v3);
    await expect(blobs.get(k)).rejects.toThrow(/unsupported blob format version 3/);
  });

  it('reads format-1 files (no key id) and re-encrypts them, and blobs of an old key, under the current key', async () => {
    const oldKey = randomBytes(32);
    const oldStore = new EncryptedBlobStore({ dir, dataKey: oldKey });
    const v2Old = await oldStore.put('telegram:42', audio(3000), 'sample');
    // A format-1 file as written before key ids: "VTB" 0x01 | IV | tag | ciphertext, AAD = header | blob key.
    const v1Key = 'telegram:42/consent/0000000000010000000000000000000a';
    const header = Buffer.from([0x56, 0x54, 0x42, 0x01]);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', oldKey, iv);
    cipher.setAAD(Buffer.concat([header, Buffer.from(v1Key)]));
    const body = Buffer.concat([cipher.update(audio(2000)), cipher.final()]);
    await fs.writeFile(fileOf(v1Key), Buffer.concat([header, iv, cipher.getAuthTag(), body]));
    expect(await oldStore.get(v1Key)).toEqual(audio(2000));
    await expect(blobs.get(v1Key)).rejects.toThrow(BlobIntegrityError);

    const rotating = new EncryptedBlobStore({ dir, dataKey: key, openKeys: [oldKey] });
    expect(await rotating.rekeyOwner('telegram:42')).toEqual({ rekeyed: 2, current: 0 });
    expect(await rotating.rekeyOwner('telegram:42')).toEqual({ rekeyed: 0, current: 2 });
    for (const [k, size] of [[v2Old, 3000], [v1Key, 2000]] as const) {
      const file = await fs.readFile(fileOf(k));
      expect(file[3]).toBe(2);
      expect(file.subarray(4, 8).toString('hex')).toBe(dataKeyId(key));
      expect(await blobs.get(k)).toEqual(audio(size));
      await expect(oldStore.get(k)).rejects.toThrow(BlobIntegrityError);
    }
  });

  it('fails authentication with a different data key', async () => {
    const k = await blobs.put('telegram:42', audio(), 'sample');
    const other = new EncryptedBlobStore({ dir, dataKey: randomBytes(32) });
    await expect(other.get(k)).rejects.toThrow(BlobIntegrityError);
    expect(await blobs.get(k)).toEqual(audio());
  });

  it('fails authentication when a blob is moved to another key (other owner or kind)', async () => {
    const victim = await blobs.put('telegram:42', audio(), 'sample');
    const mine = await blobs.put('telegram:7', Buffer.from('mine'), 'sample');
    // Overwrite my own blob file with the victim's ciphertext: same key, wrong blob key in the AAD.
    await fs.copyFile(fileOf(victim), fileOf(mine));
    await expect(blobs.get(mine)).rejects.toThrow(BlobIntegrityError);

    const { id } = parseBlobKey(victim);
    const asConsent = `telegram:42/consent/${id}`;
    await fs.copyFile(fileOf(victim), fileOf(asConsent));
    await expect(blobs.get(asConsent)).rejects.toThrow(BlobIntegrityError);
  });

  it('lists an owner’s blobs oldest first and deletes them', async () => {
    expect(await blobs.list('telegram:42')).toEqual([]);
    const first = await blobs.put('telegram:42', audio(), 'consent');
    await new Promise((resolve) => setTimeout(resolve, 3));
    const second = await blobs.put('telegram:42', audio(), 'sample');
    await new Promise((resolve) => setTimeout(resolve, 3));
    const third = await blobs.put('telegram:42', audio(), 'reference');
    const others = await blobs.put('whatsapp:123@c.us', audio(), 'sample');
    expect(await blobs.list('telegram:42')).toEqual([first, second, third]);
    expect(await blobs.list('whatsapp:123@c.us')).toEqual([others]);

    await blobs.delete(second);
    await blobs.delete(second);
    await expect(blobs.get(second)).rejects.toThrow(BlobNotFoundError);
    expect(await blobs.list('telegram:42')).toEqual([first, third]);

    expect(await blobs.deleteAll('telegram:42')).toBe(2);
    expect(await blobs.deleteAll('telegram:42')).toBe(0);
    expect(await blobs.list('telegram:42')).toEqual([]);
    await expect(fs.stat(path.dirname(fileOf(first)))).rejects.toThrow(/ENOENT/);
    expect(await blobs.get(others)).toEqual(audio());
  });

  it('leaves no temporary files after writes, and deleteAll removes stray ones', async () => {
    await Promise.all(Array.from({ length: 10 }, (_, i) => blobs.put('telegram:42', audio(100 + i), 'tts')));
    const ownerDir = path.dirname(fileOf((await blobs.list('telegram:42'))[0]!));
    const names = await fs.readdir(ownerDir);
    expect(names).toHaveLength(10);
    expect(names.every((n) => n.endsWith('.vtb'))).toBe(true);
    await fs.writeFile(path.join(ownerDir, 'tts.0123.vtb.abc.tmp'), 'partial');
    expect(await blobs.deleteAll('telegram:42')).toBe(10);
    await expect(fs.stat(ownerDir)).rejects.toThrow(/ENOENT/);
  });

  it('supports owner keys containing slashes', async () => {
    const k = await blobs.put('web:a/b', Buffer.from('x'), 'tts');
    expect(parseBlobKey(k)).toMatchObject({ ownerKey: 'web:a/b', kind: 'tts' });
    expect((await blobs.get(k)).toString()).toBe('x');
    expect(await blobs.list('web:a/b')).toEqual([k]);
  });

  it('rejects malformed keys, bad kinds, bad owners and bad data keys', async () => {
    await expect(blobs.get('nope')).rejects.toThrow(/Malformed blob key/);
    await expect(blobs.get('telegram:42/sample/../../etc')).rejects.toThrow(/Malformed blob key/);
    await expect(blobs.get('telegram:42/video/0123456789abcdef0123456789abcdef')).rejects.toThrow(/Malformed blob key/);
    await expect(blobs.get('telegram:42/sample/0123456789abcdef0123456789abcdef')).rejects.toThrow(BlobNotFoundError);
    await expect(blobs.put('telegram:42', Buffer.from('x'), 'video' as 'tts')).rejects.toThrow(/Unknown blob kind/);
    await expect(blobs.put('', Buffer.from('x'), 'tts')).rejects.toThrow(/owner key/);
    await expect(blobs.put('a\nb', Buffer.from('x'), 'tts')).rejects.toThrow(/owner key/);
    expect(() => new EncryptedBlobStore({ dir, dataKey: randomBytes(16) })).toThrow(/32 bytes/);
  });
});
