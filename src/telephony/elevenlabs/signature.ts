/**
 * Verification of ElevenLabs' signed webhooks (the post-call webhooks).
 *
 * The `ElevenLabs-Signature` header is `t=<unix seconds>,v0=<hex HMAC-SHA256>` where the HMAC is
 * keyed with the webhook's shared secret over `<t>.<raw request body>`
 * (https://elevenlabs.io/docs/agents-platform/workflows/post-call-webhooks#authentication).
 *
 * Two checks must both pass: ours (exact raw bytes, constant-time comparison, a timestamp neither
 * older than {@link SIGNATURE_TOLERANCE_SEC} nor more than {@link FUTURE_SKEW_SEC} ahead of our
 * clock) and the SDK's `webhooks.constructEvent` (the vendor's reading of the same scheme, which
 * also parses the JSON). The SDK alone compares with `!==` and accepts any future timestamp.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';

/** Oldest signature accepted, seconds (ElevenLabs' own example and the SDK use 30 minutes). */
export const SIGNATURE_TOLERANCE_SEC = 30 * 60;
/** How far a signature's timestamp may be ahead of our clock (clock skew), seconds. */
export const FUTURE_SKEW_SEC = 5 * 60;

/** Why a signature was refused (logged; never the body). */
export type SignatureFailure = 'missing' | 'malformed' | 'stale' | 'future' | 'mismatch' | 'not-json' | 'no-secret';

/** A refused signature. `reason` is safe to log. */
export class WebhookSignatureError extends Error {
  override readonly name = 'WebhookSignatureError';
  constructor(readonly reason: SignatureFailure) {
    super(`webhook signature refused: ${reason}`);
  }
}

/** The parts of an `ElevenLabs-Signature` header, or undefined when it is not `t=…,v0=…`. */
export function parseSignatureHeader(header: string | undefined): { timestampSec: number; v0: string } | undefined {
  if (!header) return undefined;
  let t: string | undefined;
  let v0: string | undefined;
  for (const part of header.split(',')) {
    const item = part.trim();
    if (item.startsWith('t=')) t = item.slice(2);
    else if (item.startsWith('v0=')) v0 = item.slice(3);
  }
  if (!t || !/^\d{1,12}$/.test(t) || !v0 || !/^[0-9a-f]{64}$/i.test(v0)) return undefined;
  return { timestampSec: Number(t), v0: v0.toLowerCase() };
}

/**
 * Verifies a post-call webhook and returns its parsed JSON body.
 *
 * @param rawBody the request body exactly as received (bytes)
 * @param header the `ElevenLabs-Signature` header
 * @param secret the webhook's shared secret (shown once when the webhook is created)
 * @param nowMs our clock, ms since the epoch
 * @throws WebhookSignatureError with the reason: `missing`, `malformed`, `stale` (older than
 *   30 min), `future` (more than 5 min ahead), `mismatch` (our HMAC or the SDK's check failed),
 *   `not-json`, `no-secret`
 */
export async function verifyPostCallSignature(client: ElevenLabsClient, rawBody: Buffer, header: string | undefined, secret: string, nowMs: number = Date.now()): Promise<unknown> {
  if (!secret) throw new WebhookSignatureError('no-secret');
  if (!header) throw new WebhookSignatureError('missing');
  const parsed = parseSignatureHeader(header);
  if (!parsed) throw new WebhookSignatureError('malformed');
  const nowSec = nowMs / 1000;
  if (parsed.timestampSec < nowSec - SIGNATURE_TOLERANCE_SEC) throw new WebhookSignatureError('stale');
  if (parsed.timestampSec > nowSec + FUTURE_SKEW_SEC) throw new WebhookSignatureError('future');
  const expected = createHmac('sha256', secret).update(`${parsed.timestampSec}.`).update(rawBody).digest();
  const given = Buffer.from(parsed.v0, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new WebhookSignatureError('mismatch');
  try {
    return (await client.webhooks.constructEvent(rawBody.toString('utf8'), header, secret)) as unknown;
  } catch (err) {
    throw new WebhookSignatureError(err instanceof SyntaxError ? 'not-json' : 'mismatch');
  }
}
