/**
 * Short-lived signed URLs for audio in the blob store: `/v1/audio/<id>?exp=<unix s>&sig=<mac>`,
 * where `id` is the blob key in base64url and `mac` is HMAC-SHA256 over `<id>.<exp>` with a key
 * derived from the data key. Anyone holding the URL may fetch the audio until it expires (like a
 * presigned object URL); the audio stays encrypted in the blob store and is decrypted per request.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** How long a signed audio URL stays valid by default, seconds (15 minutes). */
export const AUDIO_URL_TTL_SEC = 15 * 60;

/** Signs and checks audio URLs. */
export class AudioUrlSigner {
  constructor(
    private readonly key: Buffer,
    private readonly now: () => number = Date.now,
  ) {}

  /** The path (with query) of a signed URL for `blobKey`, valid `ttlSec`. */
  sign(blobKey: string, ttlSec = AUDIO_URL_TTL_SEC): { path: string; expiresAtMs: number } {
    const id = Buffer.from(blobKey).toString('base64url');
    const exp = Math.floor(this.now() / 1000) + ttlSec;
    return { path: `/v1/audio/${id}?exp=${exp}&sig=${this.mac(id, exp)}`, expiresAtMs: exp * 1000 };
  }

  /** The blob key of a valid, unexpired signature; undefined otherwise. */
  verify(id: string, exp: string | undefined, sig: string | undefined): string | undefined {
    if (!exp || !sig || !/^\d{1,12}$/.test(exp) || !/^[\w-]{1,200}$/.test(id)) return undefined;
    if (Number(exp) * 1000 < this.now()) return undefined;
    const expected = Buffer.from(this.mac(id, Number(exp)));
    const given = Buffer.from(sig);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    return Buffer.from(id, 'base64url').toString();
  }

  private mac(id: string, exp: number): string {
    return createHmac('sha256', this.key).update(`${id}.${exp}`).digest('base64url');
  }
}
