/**
 * Field encryption of personal records at rest (history, memories, names, consent, samples' figures,
 * usage, job data): AES-256-GCM under the data key, the same construction as the blob store
 * (`blob-store.ts`), applied to one JSON value at a time.
 *
 * A sealed value is one string:
 *
 * ```
 * "enc:v1:" + base64( IV (12 bytes, random per write) | GCM tag (16 bytes) | ciphertext )
 * ```
 *
 * The additional authenticated data is `voicetwin record v1\0` followed by the UTF-8 record key
 * (e.g. `history:telegram:42`), so a sealed value copied to another record (another person,
 * another family) fails authentication like a modified value or a wrong data key. The plaintext is
 * the value's JSON. AES-GCM with a 96-bit random IV stays within NIST SP 800-38D's bound (2^32
 * invocations per key) for any realistic number of writes.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DATA_KEY_BYTES } from './data-key.js';

/** Prefix of every sealed value. */
export const SEALED_PREFIX = 'enc:v1:';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const AAD_LABEL = 'voicetwin record v1\0';

/** A sealed value that cannot be opened: modified, moved from another record, or sealed with another key. */
export class RecordIntegrityError extends Error {
  override readonly name = 'RecordIntegrityError';
  constructor(readonly recordKey: string) {
    super(`The stored record ${recordKey} cannot be decrypted (modified, moved from another record, or written with another data key)`);
  }
}

/** True when `value` is in the sealed format (a string starting with {@link SEALED_PREFIX}). */
export function isSealed(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(SEALED_PREFIX);
}

/** Seals and opens JSON values bound to their record keys. */
export class RecordCipher {
  readonly #key: Buffer;

  /** @throws Error when `dataKey` is not 32 bytes */
  constructor(dataKey: Buffer) {
    if (!Buffer.isBuffer(dataKey) || dataKey.length !== DATA_KEY_BYTES) throw new Error(`The data key must be ${DATA_KEY_BYTES} bytes`);
    this.#key = Buffer.from(dataKey);
  }

  /**
   * Encrypts the JSON of `value` for the record `recordKey`.
   * @param recordKey the key the value is stored under, without the namespace (`history:telegram:42`)
   * @param value any JSON-serialisable value (not `undefined`)
   * @returns the sealed string (about 4/3 of the JSON's size plus 45 characters)
   */
  seal(recordKey: string, value: unknown): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(aad(recordKey));
    const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    return SEALED_PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  /**
   * Decrypts a sealed string written by {@link seal} for the same record key.
   * @throws RecordIntegrityError when the value fails authentication or is malformed
   */
  open<T>(recordKey: string, sealed: string): T {
    const bytes = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64');
    if (bytes.length < IV_BYTES + TAG_BYTES) throw new RecordIntegrityError(recordKey);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, bytes.subarray(0, IV_BYTES));
      decipher.setAAD(aad(recordKey));
      decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      const plain = Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
      return JSON.parse(plain.toString('utf8')) as T;
    } catch {
      throw new RecordIntegrityError(recordKey);
    }
  }
}

function aad(recordKey: string): Buffer {
  return Buffer.from(AAD_LABEL + recordKey, 'utf8');
}
