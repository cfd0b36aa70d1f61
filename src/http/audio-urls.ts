/**
 * Short-lived signed URLs for audio in the blob store: `/v1/audio/<id>?exp=<unix s>&sig=<mac>`,
 * where `id` is the blob key encrypted with AES-256-GCM (so a link does not reveal whose audio it
 * is) and `mac` is HMAC-SHA256 over `<id>.<exp>`; both keys are derived from the given key. Anyone holding the URL may fetch the audio until it expires (like a
 * presigned object URL); the audio stays encrypted in the blob store and is decrypted per request.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** How long a signed audio URL stays valid by default, seconds (15 minutes). */
export const AUDIO_URL_TTL_SEC = 15 * 60;

/** Signs and checks audio URLs. */
export class AudioUrlSigner {
  readonly #macKey: Buffer;
  readonly #encKey: Buffer;

  /**
   * @param key at least 32 bytes of secret (the app's `urlSigningKey`)
   * @param basePath the path signed URLs start with (default `/v1/audio`; `/v1/export` for export links)
   */
  constructor(
    key: Buffer,
    private readonly now: () => number = Date.now,
    private readonly basePath = '/v1/audio',
  ) {
    this.#macKey = createHmac('sha256', key).update('mac').digest();
    this.#encKey = createHmac('sha256', key).update('enc').digest();
  }

  /** The path (with query) of a signed URL for `blobKey` (any short string: a blob key, an export subject), valid `ttlSec`. */
  sign(blobKey: string, ttlSec = AUDIO_URL_TTL_SEC): { path: string; expiresAtMs: number } {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#encKey, iv);
    const sealed = Buffer.concat([cipher.update(blobKey), cipher.final()]);
    const id = Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString('base64url');
    const exp = Math.floor(this.now() / 1000) + ttlSec;
    return { path: `${this.basePath}/${id}?exp=${exp}&sig=${this.mac(id, exp)}`, expiresAtMs: exp * 1000 };
  }

  /** The blob key of a valid, unexpired signature; undefined otherwise. */
  verify(id: string, exp: string | undefined, sig: string | undefined): string | undefined {
    if (!exp || !sig || !/^\d{1,12}$/.test(exp) || !/^[\w-]{38,400}$/.test(id)) return undefined;
    if (Number(exp) * 1000 < this.now()) return undefined;
    const expected = Buffer.from(this.mac(id, Number(exp)));
    const given = Buffer.from(sig);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const raw = Buffer.from(id, 'base64url');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#encKey, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString();
    } catch {
      return undefined;
    }
  }

  private mac(id: string, exp: number): string {
    return createHmac('sha256', this.#macKey).update(`${id}.${exp}`).digest('base64url');
  }
}
