/**
 * The Gemini client (`@google/genai`, the maintained SDK; `@google/generative-ai` lost support on
 * 2025-08-31) and the mapping of its errors.
 *
 * The SDK only retries when `httpOptions.retryOptions` is set; it is left unset so the resilient
 * wrapper alone retries. Errors are `google.rpc.Status` bodies
 * (`{ error: { code, message, status, details } }`, https://ai.google.dev/gemini-api/docs/troubleshooting);
 * a 429 carries its wait in a `google.rpc.RetryInfo` detail (`retryDelay: "37s"`), which the SDK
 * keeps in the error message, so it is read from there.
 */
import { ApiError, GoogleGenAI } from '@google/genai';
import { ProviderError } from '../../core/errors.js';
import { isRetryableStatus, parseDurationSec, redactSecret, redactedGenericError } from '../resilient/errors.js';

/** Provider name used in usage records and logs. */
export const GEMINI = 'gemini';

/** Connection settings. */
export interface GeminiConnection {
  apiKey: string;
  /** API root without version, e.g. `https://generativelanguage.googleapis.com` (default) or a test server. */
  baseUrl?: string;
  /** SDK-level timeout of one request, ms (the resilient wrapper also bounds each attempt). */
  timeoutMs?: number;
}

/** Creates an SDK client for the Gemini Developer API (not Vertex AI), without SDK retries. */
export function createGeminiClient(connection: GeminiConnection): GoogleGenAI {
  return new GoogleGenAI({
    apiKey: connection.apiKey,
    vertexai: false,
    httpOptions: {
      ...(connection.baseUrl ? { baseUrl: connection.baseUrl.replace(/\/+$/, '') } : {}),
      timeout: connection.timeoutMs ?? 120_000,
    },
  });
}

interface RpcStatus {
  code?: number;
  message?: string;
  status?: string;
  details?: { '@type'?: string; reason?: string; retryDelay?: string }[];
}

/** The `error` object of a google.rpc.Status JSON body embedded in an SDK error message. */
function rpcStatus(message: string): RpcStatus | undefined {
  const start = message.indexOf('{');
  if (start < 0) return undefined;
  try {
    const body = JSON.parse(message.slice(start)) as { error?: RpcStatus };
    return body.error;
  } catch {
    return undefined;
  }
}

/**
 * Maps an SDK error to a {@link ProviderError}: 429/5xx retryable (with `RetryInfo.retryDelay`
 * as `retryAfterSec`), other 4xx not. An invalid API key comes back as HTTP 400 with
 * `ErrorInfo.reason = API_KEY_INVALID`; it is reported with status 401 so it counts as an
 * authentication failure (the provider leaves rotation at once). Never contains the key.
 */
export function mapGeminiError(err: unknown, apiKey: string): ProviderError {
  if (err instanceof ProviderError) return err;
  if (err instanceof ApiError) {
    const rpc = rpcStatus(err.message);
    const invalidKey = rpc?.details?.some((d) => d.reason === 'API_KEY_INVALID') ?? false;
    const status = invalidKey ? 401 : err.status;
    const retryAfterSec = parseDurationSec(rpc?.details?.find((d) => d['@type']?.endsWith('google.rpc.RetryInfo'))?.retryDelay);
    const text = `HTTP ${err.status}${rpc?.status ? ` ${rpc.status}` : ''}${invalidKey ? ' API_KEY_INVALID' : ''}: ${rpc?.message ?? 'request failed'}`;
    return new ProviderError(GEMINI, redactSecret(text, apiKey), { retryable: isRetryableStatus(status), status, retryAfterSec, cause: err });
  }
  return redactedGenericError(GEMINI, err, apiKey);
}
