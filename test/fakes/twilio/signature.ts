/**
 * Twilio's request signature, implemented independently of the `twilio` package from the
 * documented algorithm (https://www.twilio.com/docs/usage/security#validating-requests):
 * take the full URL Twilio requested (with query string), append each POST parameter's name and
 * value with the parameters sorted alphabetically by name, HMAC-SHA1 the result with the auth
 * token as key, and base64-encode the digest. The value goes in `X-Twilio-Signature`.
 */
import { createHmac } from 'node:crypto';

/** The `X-Twilio-Signature` value for `url` and form `params` (none for a WebSocket upgrade). */
export function twilioSignature(authToken: string, url: string, params: Record<string, string> = {}): string {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, key) => acc + key + params[key], url);
  return createHmac('sha1', authToken).update(Buffer.from(data, 'utf8')).digest('base64');
}

/** Posts a signed Twilio webhook (form-encoded) to `localUrl`, signed for `signedUrl`. */
export async function postTwilio(
  localUrl: string,
  params: Record<string, string>,
  options: { authToken: string; signedUrl?: string; signature?: string; headers?: Record<string, string> },
): Promise<{ status: number; body: string; ms: number }> {
  const t = performance.now();
  const res = await fetch(localUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': options.signature ?? twilioSignature(options.authToken, options.signedUrl ?? localUrl, params),
      ...options.headers,
    },
    body: new URLSearchParams(params).toString(),
  });
  const body = await res.text();
  return { status: res.status, body, ms: performance.now() - t };
}

/** The form fields Twilio posts to a voice webhook for an incoming call (https://www.twilio.com/docs/voice/twiml#request-parameters). */
export function voiceParams(callSid: string, from: string, to = '+15005550006', extra: Record<string, string> = {}): Record<string, string> {
  return {
    AccountSid: 'AC' + '0'.repeat(32),
    ApiVersion: '2010-04-01',
    CallSid: callSid,
    CallStatus: 'ringing',
    Called: to,
    Caller: from,
    Direction: 'inbound',
    From: from,
    To: to,
    ...extra,
  };
}
