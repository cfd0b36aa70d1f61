/**
 * Field encryption of personal records at rest (history, memories, names, consent, samples' figures,
 * usage, job data): AES-256-GCM under the data key, the same construction as the blob store
 * (`blob-store.ts`), applied to one JSON value at a time.
 *
 * A sealed value is one string. Written now (format 2, with the id of the key that sealed it):
 *
 * ```
 * "enc:v2:" + keyId (8 hex, see `dataKeyId`) + ":" + base64( IV (12 bytes, random per write) | GCM tag (16 bytes) | ciphertext )
 * ```
 *
 * with the additional authenticated data `voicetwin record v2\0<keyId>\0<record key>`. Format 1,
 * written before key ids existed, is `"enc:v1:" + base64(IV | tag | ciphertext)` with the
 * additional data `voicetwin record v1\0<record key>`; it is still read. The record key (e.g.
 * `history:telegram:42`) in the additional data means a sealed value copied to another record
 * (another person, another family) fails authentication like a modified value or a wrong data key.
 * The plaintext is the value's JSON. AES-GCM with a 96-bit random IV stays within NIST SP
 * 800-38D's bound (2^32 invocations per key) for any realistic number of writes.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DATA_KEY_BYTES, dataKeyId } from './data-key.js';

/** Prefix of every sealed value, whatever its format version. */
export const SEALED_PREFIX = 'enc:';
const V1_PREFIX = 'enc:v1:';
const V2_PREFIX = 'enc:v2:';
const KEY_ID_CHARS = 8;

const IV_BYTES = 12;
const TAG_BYTES = 16;
const AAD_V1 = 'voicetwin record v1\0';
const AAD_V2 = 'voicetwin record v2\0';

/** A sealed value that cannot be opened: modified, moved from another record, or sealed with another key. */
export class RecordIntegrityError extends Error {
  override readonly name = 'RecordIntegrityError';
  constructor(readonly recordKey: string) {
    super(`The stored record ${recordKey} cannot be decrypted (modified, moved from another record, or written with another data key)`);
  }
}

/** True when `value` is in a sealed format (a string starting with `enc:v1:` or `enc:v2:`). */
export function isSealed(value: unknown): value is string {
  return typeof value === 'string' && (value.startsWith(V2_PREFIX) || value.startsWith(V1_PREFIX));
}

/**
 * The id of the data key that sealed `sealed` (8 hex characters), or undefined for a format-1
 * value (which does not say) or a value that is not sealed.
 */
export function sealedKeyId(sealed: unknown): string | undefined {
  if (typeof sealed !== 'string' || !sealed.startsWith(V2_PREFIX)) return undefined;
  const id = sealed.slice(V2_PREFIX.length, V2_PREFIX.length + KEY_ID_CHARS);
  return sealed[V2_PREFIX.length + KEY_ID_CHARS] === ':' ? id : undefined;
}

/**
 * Seals and opens JSON values bound to their record keys. Seals with one key; opens with that key
 * or any of `openKeys` (a key rotation in progress reads what the old key sealed).
 */
export class RecordCipher {
  readonly #key: Buffer;
  readonly #keyId: string;
  /** Every key that may open a value, by id; the sealing key first. */
  readonly #ring: Map<string, Buffer>;

  /**
   * @param dataKey the 32-byte key new values are sealed with
   * @param openKeys further 32-byte keys accepted when opening (e.g. the previous key during a rotation)
   * @throws Error when a key is not 32 bytes
   */
  constructor(dataKey: Buffer, openKeys: readonly Buffer[] = []) {
    if (!Buffer.isBuffer(dataKey) || dataKey.length !== DATA_KEY_BYTES) throw new Error(`The data key must be ${DATA_KEY_BYTES} bytes`);
    this.#key = Buffer.from(dataKey);
    this.#keyId = dataKeyId(this.#key);
    this.#ring = new Map([[this.#keyId, this.#key]]);
    for (const key of openKeys) {
      const id = dataKeyId(key);
      if (!this.#ring.has(id)) this.#ring.set(id, Buffer.from(key));
    }
  }

  /** The id of the key values are sealed with (8 hex characters, see `dataKeyId`). */
  get keyId(): string {
    return this.#keyId;
  }

  /**
   * Encrypts the JSON of `value` for the record `recordKey`.
   * @param recordKey the key the value is stored under, without the namespace (`history:telegram:42`)
   * @param value any JSON-serialisable value (not `undefined`)
   * @returns the sealed string, format 2 (about 4/3 of the JSON's size plus 54 characters)
   */
  seal(recordKey: string, value: unknown): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(`${AAD_V2}${this.#keyId}\0${recordKey}`, 'utf8'));
    const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    return `${V2_PREFIX}${this.#keyId}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  /**
   * Decrypts a sealed string written by {@link seal} (or format 1) for the same record key, with
   * the key named in it (format 2) or any key of the ring (format 1).
   * @throws RecordIntegrityError when the value fails authentication, is malformed, or was sealed
   *   with a key this cipher does not hold
   */
  open<T>(recordKey: string, sealed: string): T {
    const keyId = sealedKeyId(sealed);
    if (keyId !== undefined) {
      const key = this.#ring.get(keyId);
      const plain = key && decrypt(key, sealed.slice(V2_PREFIX.length + KEY_ID_CHARS + 1), `${AAD_V2}${keyId}\0${recordKey}`);
      if (plain === undefined) throw new RecordIntegrityError(recordKey);
      return parse<T>(plain, recordKey);
    }
    if (!sealed.startsWith(V1_PREFIX)) throw new RecordIntegrityError(recordKey);
    for (const key of this.#ring.values()) {
      const plain = decrypt(key, sealed.slice(V1_PREFIX.length), `${AAD_V1}${recordKey}`);
      if (plain !== undefined) return parse<T>(plain, recordKey);
    }
    throw new RecordIntegrityError(recordKey);
  }
}

function decrypt(key: Buffer, base64: string, aad: string): Buffer | undefined {
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length < IV_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch {
    return undefined;
  }
}

function parse<T>(plain: Buffer, recordKey: string): T {
  try {
    return JSON.parse(plain.toString('utf8')) as T;
  } catch {
    throw new RecordIntegrityError(recordKey);
  }
}
