/**
 * Encrypted audio blobs on disk (enrollment samples, consent voice notes, reference audio, TTS
 * cache). Each blob is one file, encrypted with AES-256-GCM under the data key:
 *
 * ```
 * offset  size  field
 * 0       3     magic "VTB"
 * 3       1     format version (2)
 * 4       4     id of the data key that encrypted it (the 4 bytes `dataKeyId` writes as hex)
 * 8       12    IV, random per blob
 * 20      16    GCM authentication tag
 * 36      n     ciphertext (n = plaintext size in bytes)
 * ```
 *
 * Format 1 (written before key ids existed) has no key id: the IV follows the version byte at
 * offset 4; it is still read. The additional authenticated data is the header (8 bytes; 4 in
 * format 1) followed by the UTF-8 blob key, so a file
 * copied or moved to another blob key (another user, another kind) fails authentication exactly
 * like a modified file or a wrong data key. AES-GCM and its 12-byte IV / 16-byte tag follow
 * NIST SP 800-38D (https://csrc.nist.gov/pubs/sp/800/38/d/final), as implemented by node:crypto
 * (https://nodejs.org/api/crypto.html#class-cipher).
 *
 * Layout: `<dir>/<first 32 hex chars of sha256(ownerKey)>/<kind>.<id>.vtb`. Blob keys are
 * `<ownerKey>/<kind>/<id>` where `id` is 32 hex characters whose first 12 are the creation time in
 * ms (so `list` returns blobs oldest first). Writes go to a temporary file that is fsynced and
 * renamed into place, so a crash never leaves a half-written blob under a real key.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { BlobStore, UserKey } from './types.js';
import { DATA_KEY_BYTES, dataKeyId } from './data-key.js';

/** The kinds of blob the engine stores. */
export type BlobKind = Parameters<BlobStore['put']>[2];

const BLOB_KINDS: readonly BlobKind[] = ['sample', 'consent', 'reference', 'tts', 'inbox'];
const MAGIC = Buffer.from('VTB', 'latin1');
const FORMAT_VERSION = 2;
const KEY_ID_BYTES = 4;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Header size per format version: magic, version byte, and (format 2) the key id. */
const HEADER_BYTES: Record<number, number> = { 1: MAGIC.length + 1, 2: MAGIC.length + 1 + KEY_ID_BYTES };
const FILE_SUFFIX = '.vtb';
const BLOB_FILE = /^(sample|consent|reference|tts|inbox)\.([0-9a-f]{32})\.vtb$/;
const MAX_OWNER_KEY_CHARS = 512;

/** A blob key that does not exist (never written, or deleted). */
export class BlobNotFoundError extends Error {
  override readonly name = 'BlobNotFoundError';
  constructor(readonly blobKey: string) {
    super(`Blob not found: ${blobKey}`);
  }
}

/**
 * A blob that exists but cannot be decrypted: it was modified on disk, moved from another blob
 * key, written with another data key, or is not a blob file at all.
 */
export class BlobIntegrityError extends Error {
  override readonly name = 'BlobIntegrityError';
  constructor(
    readonly blobKey: string,
    reason: string,
  ) {
    super(`Blob ${blobKey} cannot be read: ${reason}`);
  }
}

/** A parsed blob key. */
interface ParsedBlobKey {
  ownerKey: UserKey;
  kind: BlobKind;
  id: string;
}

/**
 * {@link BlobStore} over a directory, encrypting every blob with AES-256-GCM.
 */
export class EncryptedBlobStore implements BlobStore {
  readonly #dir: string;
  readonly #dataKey: Buffer;
  readonly #keyId: Buffer;
  /** Keys that may decrypt a blob, by hex key id; the current key first. */
  readonly #ring: Map<string, Buffer>;

  /**
   * @param options.dir the blob directory (created on first write, mode 0700)
   * @param options.dataKey the 32-byte data key (see `loadDataKey`) new blobs are encrypted with
   * @param options.openKeys further 32-byte keys accepted when reading (the previous key during a rotation)
   * @throws Error when a key is not 32 bytes
   */
  constructor(options: { dir: string; dataKey: Buffer; openKeys?: readonly Buffer[] }) {
    if (!Buffer.isBuffer(options.dataKey) || options.dataKey.length !== DATA_KEY_BYTES) {
      throw new Error(`The data key must be ${DATA_KEY_BYTES} bytes (got ${Buffer.isBuffer(options.dataKey) ? options.dataKey.length : typeof options.dataKey})`);
    }
    this.#dir = options.dir;
    this.#dataKey = Buffer.from(options.dataKey);
    this.#keyId = Buffer.from(dataKeyId(this.#dataKey), 'hex');
    this.#ring = new Map([[this.#keyId.toString('hex'), this.#dataKey]]);
    for (const key of options.openKeys ?? []) this.#ring.set(dataKeyId(key), Buffer.from(key));
  }

  /**
   * Encrypts and stores `bytes`.
   * @returns the new blob key, `<ownerKey>/<kind>/<id>`
   * @throws Error when `ownerKey` is empty, too long or has control characters, or `kind` is unknown
   */
  async put(ownerKey: UserKey, bytes: Buffer, kind: BlobKind): Promise<string> {
    checkOwnerKey(ownerKey);
    if (!BLOB_KINDS.includes(kind)) throw new Error(`Unknown blob kind "${String(kind)}" (expected one of ${BLOB_KINDS.join(', ')})`);
    if (!Buffer.isBuffer(bytes)) throw new TypeError('Blob bytes must be a Buffer');
    const id = Date.now().toString(16).padStart(12, '0').slice(-12) + randomBytes(10).toString('hex');
    const blobKey = `${ownerKey}/${kind}/${id}`;

    const dir = this.#ownerDir(ownerKey);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await this.#writeFile(path.join(dir, fileName(kind, id)), this.#encrypt(blobKey, bytes));
    return blobKey;
  }

  /** The file bytes of `plaintext` stored under `blobKey`, in the current format with the current key. */
  #encrypt(blobKey: string, plaintext: Buffer): Buffer {
    const header = Buffer.concat([MAGIC, Buffer.from([FORMAT_VERSION]), this.#keyId]);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#dataKey, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(additionalData(header, blobKey));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([header, iv, cipher.getAuthTag(), ciphertext]);
  }

  /** Writes `file` to a fsynced temporary file (0600) renamed onto `finalPath`. */
  async #writeFile(finalPath: string, file: Buffer): Promise<void> {
    const tmpPath = `${finalPath}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await fs.open(tmpPath, 'wx', 0o600);
    try {
      await handle.writeFile(file);
      await handle.sync();
    } catch (err) {
      await handle.close();
      await fs.rm(tmpPath, { force: true });
      throw err;
    }
    await handle.close();
    await fs.rename(tmpPath, finalPath);
  }

  /**
   * Reads and decrypts a blob.
   * @returns the plaintext bytes
   * @throws BlobNotFoundError when no blob has that key; BlobIntegrityError when the file fails
   *   authentication (tampered, moved from another key, wrong data key) or is not a blob file;
   *   Error when `blobKey` is malformed
   */
  async get(blobKey: string): Promise<Buffer> {
    const parsed = parseBlobKey(blobKey);
    let file: Buffer;
    try {
      file = await fs.readFile(this.#blobPath(parsed));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(blobKey);
      throw err;
    }
    return this.#decrypt(blobKey, file);
  }

  #decrypt(blobKey: string, file: Buffer): Buffer {
    if (file.length < MAGIC.length + 1 || !file.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new BlobIntegrityError(blobKey, 'the file is not a VoiceTwin blob (bad header)');
    }
    const version = file[MAGIC.length]!;
    const headerBytes = HEADER_BYTES[version];
    if (headerBytes === undefined) {
      throw new BlobIntegrityError(blobKey, `unsupported blob format version ${String(version)} (this build reads versions 1 and ${FORMAT_VERSION})`);
    }
    const payloadOffset = headerBytes + IV_BYTES + TAG_BYTES;
    if (file.length < payloadOffset) throw new BlobIntegrityError(blobKey, 'the file is not a VoiceTwin blob (bad header)');
    const header = file.subarray(0, headerBytes);
    const keyId = version === 1 ? undefined : header.subarray(MAGIC.length + 1).toString('hex');
    const keys = keyId === undefined ? [...this.#ring.values()] : [this.#ring.get(keyId)].filter((k): k is Buffer => k !== undefined);
    for (const key of keys) {
      const decipher = createDecipheriv('aes-256-gcm', key, file.subarray(headerBytes, headerBytes + IV_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAAD(additionalData(header, blobKey));
      decipher.setAuthTag(file.subarray(headerBytes + IV_BYTES, payloadOffset));
      const plaintext = decipher.update(file.subarray(payloadOffset));
      try {
        decipher.final();
        return plaintext;
      } catch {
        // the next key of the ring, if any
      }
    }
    throw new BlobIntegrityError(
      blobKey,
      'authentication failed (the file was modified, belongs to another blob key, or was written with a different data key)',
    );
  }

  /**
   * Re-encrypts every blob of `ownerKey` that is not yet under the current key (format 1, or
   * format 2 with another key id): decrypts it with a key of the ring and replaces the file
   * atomically (temporary file, fsync, rename). Idempotent: blobs already under the current key
   * are left as they are, so an interrupted run can simply be repeated.
   * @returns how many blobs were re-encrypted and how many were already under the current key
   * @throws BlobIntegrityError when a blob opens with no key of the ring
   */
  async rekeyOwner(ownerKey: UserKey): Promise<{ rekeyed: number; current: number }> {
    let rekeyed = 0;
    let current = 0;
    for (const blobKey of await this.list(ownerKey)) {
      const filePath = this.#blobPath(parseBlobKey(blobKey));
      let file: Buffer;
      try {
        file = await fs.readFile(filePath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      if (file[MAGIC.length] === FORMAT_VERSION && file.subarray(MAGIC.length + 1, MAGIC.length + 1 + KEY_ID_BYTES).equals(this.#keyId)) {
        current++;
        continue;
      }
      await this.#writeFile(filePath, this.#encrypt(blobKey, this.#decrypt(blobKey, file)));
      rekeyed++;
    }
    return { rekeyed, current };
  }

  /** Names of the owner folders under the blob directory (see {@link blobOwnerFolder}). */
  async ownerFolders(): Promise<string[]> {
    return (await readDirOrEmpty(this.#dir)).filter((n) => /^[0-9a-f]{32}$/.test(n));
  }

  /** Deletes one blob; deleting a missing blob does nothing. @throws Error when `blobKey` is malformed */
  async delete(blobKey: string): Promise<void> {
    await fs.rm(this.#blobPath(parseBlobKey(blobKey)), { force: true });
  }

  /** Blob keys owned by `ownerKey`, oldest first; empty when there are none. */
  async list(ownerKey: UserKey): Promise<string[]> {
    checkOwnerKey(ownerKey);
    const names = await readDirOrEmpty(this.#ownerDir(ownerKey));
    const blobs: { id: string; key: string }[] = [];
    for (const name of names) {
      const match = BLOB_FILE.exec(name);
      if (match) blobs.push({ id: match[2]!, key: `${ownerKey}/${match[1]!}/${match[2]!}` });
    }
    blobs.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return blobs.map((b) => b.key);
  }

  /**
   * Deletes every blob of `ownerKey` (and any temporary file left by an interrupted write), then the
   * owner's directory. Idempotent.
   * @returns the number of blobs deleted
   */
  async deleteAll(ownerKey: UserKey): Promise<number> {
    checkOwnerKey(ownerKey);
    const dir = this.#ownerDir(ownerKey);
    const names = await readDirOrEmpty(dir);
    let deleted = 0;
    for (const name of names) {
      if (!name.endsWith(FILE_SUFFIX) && !name.endsWith('.tmp')) continue;
      await fs.rm(path.join(dir, name), { force: true });
      if (BLOB_FILE.test(name)) deleted += 1;
    }
    await fs.rmdir(dir).catch((err: NodeJS.ErrnoException) => {
      // A concurrent put may have added a file; the directory then stays with it.
      if (err.code !== 'ENOENT' && err.code !== 'ENOTEMPTY') throw err;
    });
    return deleted;
  }

  #ownerDir(ownerKey: UserKey): string {
    return path.join(this.#dir, blobOwnerFolder(ownerKey));
  }

  #blobPath(parsed: ParsedBlobKey): string {
    return path.join(this.#ownerDir(parsed.ownerKey), fileName(parsed.kind, parsed.id));
  }
}

/** The folder of an owner's blobs under the blob directory: the first 32 hex characters of sha256(ownerKey). */
export function blobOwnerFolder(ownerKey: UserKey): string {
  return createHash('sha256').update(ownerKey, 'utf8').digest('hex').slice(0, 32);
}

/**
 * Creates the encrypted blob store.
 * @param options.dir the blob directory, normally `<dataDir>/blobs`
 * @param options.dataKey the 32-byte data key
 * @throws Error when `dataKey` is not 32 bytes
 */
export function createBlobStore(options: { dir: string; dataKey: Buffer }): EncryptedBlobStore {
  return new EncryptedBlobStore(options);
}

/**
 * Splits a blob key into owner, kind and id. The owner key may itself contain `/`, so the key is
 * split from the right.
 * @throws Error when the key is not `<ownerKey>/<kind>/<32 hex id>`
 */
export function parseBlobKey(blobKey: string): ParsedBlobKey {
  if (typeof blobKey === 'string') {
    const idSep = blobKey.lastIndexOf('/');
    const kindSep = idSep > 0 ? blobKey.lastIndexOf('/', idSep - 1) : -1;
    if (kindSep > 0) {
      const ownerKey = blobKey.slice(0, kindSep);
      const kind = blobKey.slice(kindSep + 1, idSep) as BlobKind;
      const id = blobKey.slice(idSep + 1);
      if (BLOB_KINDS.includes(kind) && /^[0-9a-f]{32}$/.test(id) && isValidOwnerKey(ownerKey)) return { ownerKey, kind, id };
    }
  }
  throw new Error(`Malformed blob key "${String(blobKey)}" (expected <ownerKey>/<kind>/<id>)`);
}

function fileName(kind: BlobKind, id: string): string {
  return `${kind}.${id}${FILE_SUFFIX}`;
}

function additionalData(header: Buffer, blobKey: string): Buffer {
  return Buffer.concat([header, Buffer.from(blobKey, 'utf8')]);
}

function isValidOwnerKey(ownerKey: unknown): ownerKey is string {
  // eslint-disable-next-line no-control-regex
  return typeof ownerKey === 'string' && ownerKey.length > 0 && ownerKey.length <= MAX_OWNER_KEY_CHARS && !/[\u0000-\u001f\u007f]/.test(ownerKey);
}

function checkOwnerKey(ownerKey: unknown): asserts ownerKey is string {
  if (!isValidOwnerKey(ownerKey)) {
    throw new Error(`Invalid blob owner key (expected 1–${MAX_OWNER_KEY_CHARS} characters without control characters)`);
  }
}

async function readDirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
