/**
 * The Replicate client (`replicate` SDK) and the mapping of its errors.
 *
 * The SDK retries 429 (and 5xx on GET) inside every request, up to five times, and in version
 * 1.4.0 the delay between those retries is effectively zero (`lib/util.js`,
 * `withAutomaticRetries`: the sleep runs only when the jittered delay is an integer). Retrying is
 * the resilient wrapper's job, with `Retry-After` honoured; so the client is given a fetch that
 * answers the SDK's repeats of a request that already got a 429/5xx with that same response,
 * without touching the network. One request on the wire, one error out, with its headers.
 *
 * Errors are problem details `{ title, detail, status }` (https://replicate.com/docs/reference/http).
 */
import Replicate from 'replicate';
import { ProviderError } from '../../core/errors.js';
import { isRetryableStatus, parseRetryAfterSec, redactSecret, redactedGenericError } from '../resilient/errors.js';

/** Provider name used in voices, usage records and logs. */
export const REPLICATE = 'replicate';

/** Connection settings. */
export interface ReplicateConnection {
  apiToken: string;
  /** API root including `/v1`, e.g. `https://api.replicate.com/v1` (default) or a test server. */
  baseUrl?: string;
}

/**
 * A fetch that performs each distinct request once: when the SDK repeats a request (same `init`
 * object) after a 429/5xx answer, the stored answer is replayed.
 */
export function singleShotFetch(inner: typeof fetch = globalThis.fetch): typeof fetch {
  const answered = new WeakMap<object, Response>();
  return async (input, init) => {
    const previous = init ? answered.get(init) : undefined;
    if (previous) return previous.clone();
    const response = await inner(input, init);
    if (init && (response.status === 429 || response.status >= 500)) {
      answered.set(init, response);
      return response.clone();
    }
    return response;
  };
}

/** Creates an SDK client whose requests reach the network once each. */
export function createReplicateClient(connection: ReplicateConnection): Replicate {
  return new Replicate({
    auth: connection.apiToken,
    ...(connection.baseUrl ? { baseUrl: connection.baseUrl.replace(/\/+$/, '') } : {}),
    userAgent: 'voicetwin',
    fetch: singleShotFetch(),
    useFileOutput: false,
  });
}

/** The SDK's `ApiError`: an Error with the failed `response` attached. */
function apiErrorResponse(err: unknown): Response | undefined {
  const response = (err as { response?: unknown } | undefined)?.response;
  return err instanceof Error && response instanceof Response ? response : undefined;
}

/** `detail` (else `title`) of a problem-details body embedded in the SDK's error message. */
function problemDetail(message: string): string | undefined {
  const start = message.indexOf('{');
  if (start < 0) return undefined;
  try {
    const body = JSON.parse(message.slice(start, message.lastIndexOf('}') + 1)) as { detail?: unknown; title?: unknown };
    const text = typeof body.detail === 'string' ? body.detail : typeof body.title === 'string' ? body.title : undefined;
    return text?.split('\n')[0];
  } catch {
    return undefined;
  }
}

/**
 * Maps an SDK or HTTP error to a {@link ProviderError}: 429/408/5xx retryable with
 * `Retry-After`, other 4xx not; network failures and timeouts retryable. Never contains the token.
 */
export function mapReplicateError(err: unknown, apiToken: string): ProviderError {
  if (err instanceof ProviderError) return err;
  const response = apiErrorResponse(err);
  if (response) {
    const status = response.status;
    const detail = problemDetail((err as Error).message) ?? response.statusText;
    return new ProviderError(REPLICATE, redactSecret(`HTTP ${status}: ${detail}`, apiToken), {
      retryable: isRetryableStatus(status),
      status,
      retryAfterSec: parseRetryAfterSec(response.headers.get('retry-after')),
      cause: err,
    });
  }
  return redactedGenericError(REPLICATE, err, apiToken);
}
