/**
 * Checking that a request comes from Twilio (https://www.twilio.com/docs/usage/security): the
 * `X-Twilio-Signature` header is the base64 HMAC-SHA1, keyed with the account's auth token, of the
 * full URL Twilio requested (scheme, host, path, query) followed by every POST parameter's name and
 * value, sorted by name. The check itself is the official package's `validateRequest`; this module
 * rebuilds the URL Twilio saw, which behind a proxy or tunnel is not the one the server received.
 */
import twilio from 'twilio';

/** Twilio's signature header (lower case, as Node exposes headers). */
export const TWILIO_SIGNATURE_HEADER = 'x-twilio-signature';

/**
 * The public URL of a request as Twilio requested it: `publicUrl` (HTTP_PUBLIC_URL) + the path and
 * query received when set, else scheme and host from `X-Forwarded-Proto` / `Host`.
 * @param rawUrl the request target as received (`/telephony/twilio/voice?x=1`)
 * @param scheme `https`/`http` for webhooks, `wss`/`ws` for the media WebSocket
 */
export function publicRequestUrl(rawUrl: string, headers: Readonly<Record<string, string | string[] | undefined>>, options: { publicUrl?: string | undefined; websocket?: boolean }): string {
  const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v)?.split(',')[0]?.trim();
  let base: string;
  if (options.publicUrl) {
    base = options.publicUrl.replace(/\/+$/, '');
  } else {
    const proto = first(headers['x-forwarded-proto']) ?? 'http';
    const host = first(headers['x-forwarded-host']) ?? first(headers.host) ?? 'localhost';
    base = `${proto}://${host}`;
  }
  if (options.websocket) base = base.replace(/^https:/, 'wss:').replace(/^http:/, 'ws:');
  return `${base}${rawUrl}`;
}

/**
 * True when `signature` is Twilio's for `url` and `params` (POST form fields; `{}` for the media
 * WebSocket's GET upgrade). Uses `twilio.validateRequest`, which compares in constant time.
 */
export function isTwilioSignatureValid(authToken: string, signature: string | undefined, url: string, params: Record<string, string>): boolean {
  if (!signature) return false;
  return twilio.validateRequest(authToken, signature, url, params);
}
