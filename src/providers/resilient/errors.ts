/**
 * Turning HTTP and network failures of any vendor SDK into {@link ProviderError}s with a status,
 * a retryable flag and a server's `Retry-After`, so the resilient wrapper can decide uniformly.
 *
 * Retryable: 408, 429, every 5xx, network errors and timeouts. Not retryable: every other 4xx
 * (401/403 auth, 400/404/422 request errors). Sources: RFC 9110 §15 (status semantics) and
 * §10.2.3 (`Retry-After`: delay-seconds or an HTTP-date).
 */
import { ProviderError, isUserInputError } from '../../core/errors.js';

/** Statuses after which a retry or a fallback provider may succeed. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Statuses that say the credentials or the account are unusable (the provider is down for us). */
export function isAuthStatus(status: number): boolean {
  return status === 401 || status === 402 || status === 403;
}

/**
 * Parses a `Retry-After` header value (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
 * @param value header value, possibly null
 * @param nowMs current time, ms since the epoch (for the HTTP-date form)
 * @returns seconds to wait (≥ 0, fractional allowed), or undefined when absent or unparsable
 */
export function parseRetryAfterSec(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  if (value == null) return undefined;
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const dateMs = Date.parse(trimmed);
  if (Number.isNaN(dateMs)) return undefined;
  return Math.max(0, (dateMs - nowMs) / 1000);
}

/**
 * Parses a protobuf `Duration` in its JSON form (`"37s"`, `"1.5s"`), as Google APIs put it in
 * `google.rpc.RetryInfo.retryDelay` (https://cloud.google.com/apis/design/errors#error_details).
 * @returns seconds, or undefined when not of that form
 */
export function parseDurationSec(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(\d+(?:\.\d+)?)s$/.exec(value.trim());
  return match ? Number(match[1]) : undefined;
}

/**
 * Builds a {@link ProviderError} for an HTTP failure.
 * @param provider provider name (`elevenlabs`, `replicate`, `gemini`)
 * @param status HTTP status
 * @param detail short description from the response body; must not contain secrets
 */
export function httpProviderError(
  provider: string,
  status: number,
  detail: string,
  extra: { retryAfterSec?: number; cause?: unknown } = {},
): ProviderError {
  return new ProviderError(provider, `HTTP ${status}: ${detail}`, {
    retryable: isRetryableStatus(status),
    status,
    retryAfterSec: extra.retryAfterSec,
    cause: extra.cause,
  });
}

/** True when `err` is an abort caused by a timeout signal (`AbortSignal.timeout`). */
function isTimeoutError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || /timeout|timed out/i.test(err.message));
}

/** True when `err` is an abort (caller cancelled or timeout). */
export function isAbortError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

/**
 * Last-resort classification for errors no vendor mapper recognised: network failures
 * (`fetch failed`, ECONNREFUSED, ECONNRESET, socket hang up) and timeouts are retryable; anything
 * else is a non-retryable provider failure. {@link ProviderError}s pass through unchanged, and
 * user errors are rethrown untouched by callers (check {@link isUserInputError} first).
 */
export function genericProviderError(provider: string, err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  if (isTimeoutError(err)) return new ProviderError(provider, 'request timed out', { retryable: true, cause: err });
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown; cause?: { code?: unknown } } | undefined)?.cause?.code ?? (err as { code?: unknown } | undefined)?.code;
  const network =
    err instanceof TypeError ||
    (typeof code === 'string' && /^(ECONN|ENOTFOUND|EAI_AGAIN|EPIPE|ETIMEDOUT|UND_ERR)/.test(code)) ||
    /fetch failed|socket hang up|network/i.test(message);
  if (network) return new ProviderError(provider, `network error: ${code ?? message}`, { retryable: true, cause: err });
  return new ProviderError(provider, message, { retryable: false, cause: err });
}

/**
 * Replaces every occurrence of `secret` (an API key or token) in `text` with `[redacted]`.
 * Secrets shorter than 4 characters are left alone: replacing them would blank out ordinary text.
 */
export function redactSecret(text: string, secret: string | undefined): string {
  return secret && secret.length >= 4 ? text.split(secret).join('[redacted]') : text;
}

/**
 * {@link genericProviderError} for errors a vendor mapper did not recognise, with `secret` (the
 * provider's API key or token) removed from the message.
 * @returns a new ProviderError of `provider` with the generic classification's options
 */
export function redactedGenericError(provider: string, err: unknown, secret: string | undefined): ProviderError {
  const generic = genericProviderError(provider, err);
  const prefix = `${provider}: `;
  const message = generic.message.startsWith(prefix) ? generic.message.slice(prefix.length) : generic.message;
  return new ProviderError(provider, redactSecret(message, secret), { ...generic.options });
}

export { isUserInputError };
