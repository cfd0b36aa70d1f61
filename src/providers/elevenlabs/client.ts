/**
 * The ElevenLabs client shared by the cloner, the synthesizer and the recogniser, and the mapping
 * of its errors to {@link ProviderError} / {@link UserInputError}.
 *
 * Uses the maintained SDK `@elevenlabs/elevenlabs-js` (the older `elevenlabs` package is
 * deprecated). The SDK's own retries are switched off (`maxRetries: 0`): the resilient wrapper
 * retries, so a 429 is not retried twice over by two layers.
 *
 * Error bodies are `{ "detail": { "status": "<code>", "message": "…" } }`
 * (https://help.elevenlabs.io/hc/en-us/articles/19572237925521,
 * https://help.elevenlabs.io/hc/en-us/articles/19571824571921).
 */
import { ElevenLabsClient, ElevenLabsError, ElevenLabsTimeoutError } from '@elevenlabs/elevenlabs-js';
import { ProviderError, UserInputError } from '../../core/errors.js';
import { isRetryableStatus, parseRetryAfterSec, redactSecret, redactedGenericError } from '../resilient/errors.js';

/** Provider name used in voices, usage records and logs. */
export const ELEVENLABS = 'elevenlabs';

/** Connection settings. */
export interface ElevenLabsConnection {
  apiKey: string;
  /** API root, e.g. `https://api.elevenlabs.io` (default) or a test server. */
  baseUrl?: string;
  /** SDK-level timeout of one request, seconds (the resilient wrapper also bounds each attempt). */
  timeoutSec?: number;
}

/** Creates an SDK client with retries off. */
export function createElevenLabsClient(connection: ElevenLabsConnection): ElevenLabsClient {
  return new ElevenLabsClient({
    apiKey: connection.apiKey,
    ...(connection.baseUrl ? { baseUrl: connection.baseUrl.replace(/\/+$/, '') } : {}),
    maxRetries: 0,
    timeoutInSeconds: connection.timeoutSec ?? 120,
  });
}

/** `detail.status` and `detail.message` of an ElevenLabs error body, when present. */
export function errorDetail(body: unknown): { status?: string; message?: string } {
  const detail = (body as { detail?: unknown } | undefined)?.detail;
  if (detail && typeof detail === 'object' && !Array.isArray(detail)) {
    const d = detail as { status?: unknown; message?: unknown };
    return { status: typeof d.status === 'string' ? d.status : undefined, message: typeof d.message === 'string' ? d.message : undefined };
  }
  if (Array.isArray(detail)) {
    // FastAPI validation errors: [{ loc, msg, type }]
    const first = detail[0] as { loc?: unknown[]; msg?: unknown } | undefined;
    return { status: 'validation_error', message: first ? `${(first.loc ?? []).join('.')}: ${String(first.msg)}` : undefined };
  }
  if (typeof detail === 'string') return { message: detail };
  return {};
}

/**
 * Maps an SDK error to what the rest of the system understands.
 *
 * - `max_character_limit_exceeded` → UserInputError `TEXT_TOO_LONG` (the user's text, not an outage)
 * - 401/402/403 (`invalid_api_key`, `quota_exceeded`, …) → ProviderError, not retryable
 * - 429 (`too_many_concurrent_requests`, `system_busy`), 408, 5xx → retryable, with `Retry-After`
 * - other 4xx (`voice_not_found`, 422 validation) → ProviderError, not retryable
 * - SDK timeouts and network failures → retryable
 *
 * Messages never contain the API key.
 */
export function mapElevenLabsError(err: unknown, apiKey: string): ProviderError | UserInputError {
  if (err instanceof ProviderError || err instanceof UserInputError) return err;
  if (err instanceof ElevenLabsTimeoutError) {
    return new ProviderError(ELEVENLABS, 'request timed out', { retryable: true, cause: err });
  }
  if (err instanceof ElevenLabsError && err.statusCode !== undefined) {
    const status = err.statusCode;
    const { status: code, message } = errorDetail(err.body);
    if (code === 'max_character_limit_exceeded') {
      return new UserInputError('TEXT_TOO_LONG', 'That text is too long to speak in one go. Please send something shorter.', { provider: ELEVENLABS, message });
    }
    const retryAfterSec = parseRetryAfterSec(err.rawResponse?.headers?.get('retry-after'));
    const text = redactSecret(`HTTP ${status}${code ? ` ${code}` : ''}: ${message ?? 'request failed'}`, apiKey);
    return new ProviderError(ELEVENLABS, text, { retryable: isRetryableStatus(status), status, retryAfterSec, cause: err });
  }
  return redactedGenericError(ELEVENLABS, err, apiKey);
}

/** True when the error says the voice does not exist (already deleted, or never made). */
export function isVoiceNotFound(err: unknown): boolean {
  if (!(err instanceof ElevenLabsError)) return false;
  const { status } = errorDetail(err.body);
  return err.statusCode === 404 || status === 'voice_not_found' || status === 'voice_does_not_exist';
}
