/**
 * Errors as RFC 9457 problem details (`application/problem+json`,
 * https://www.rfc-editor.org/rfc/rfc9457): every error the HTTP server answers has a `status`, a
 * short `title`, a `detail` a person can read (the engine's user-facing message for errors a
 * user caused) and, for our own errors, a stable `code`.
 */
import { STATUS_CODES } from 'node:http';
import { isUserInputError, type UserInputErrorCode } from '../core/errors.js';

/** The media type of a problem document (RFC 9457 §3). */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** A problem details document (RFC 9457 §3.1), with our `code` extension member. */
export interface Problem {
  /** A URI reference naming the problem type; `about:blank` when the status says it all. */
  type: string;
  title: string;
  status: number;
  detail?: string;
  /** Stable machine-readable code, e.g. `TEXT_TOO_LONG`, `RATE_LIMITED`, `UNAUTHORIZED`. */
  code?: string;
  /** Seconds to wait before retrying (429), mirrored from the `Retry-After` header. */
  retryAfterSec?: number;
}

/** An error that becomes a problem response with this status and detail. */
export class HttpProblem extends Error {
  override readonly name = 'HttpProblem';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    readonly detail: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(`${statusCode} ${code}: ${detail}`);
  }
}

/** HTTP status of each user error code (422 unless a more specific status fits). */
const USER_ERROR_STATUS: Partial<Record<UserInputErrorCode, number>> = {
  FILE_TOO_LARGE: 413,
  UNSUPPORTED_FORMAT: 415,
  BUDGET_EXCEEDED: 429,
  FORBIDDEN: 403,
  NOT_ENROLLED: 409,
  NOT_READY: 409,
  NO_CONSENT: 409,
  BUSY: 409,
  BAD_LINK_CODE: 400,
  ALREADY_LINKED: 409,
  NOT_LINKED: 409,
};

/** Fastify's own error codes we map to a stable `code`. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_TYPE: 'BAD_REQUEST',
  FST_REQ_FILE_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_FILES_LIMIT: 'BODY_TOO_LARGE',
  FST_PARTS_LIMIT: 'BODY_TOO_LARGE',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
};

/**
 * Turns any thrown value into a problem document. User errors keep their user-facing message;
 * errors with a 4xx `statusCode` (Fastify's, the rate limiter's) keep their status; anything else
 * is a 500 with a short apology (the cause is logged by the caller, never sent).
 */
export function toProblem(err: unknown): Problem & { headers: Record<string, string> } {
  if (err instanceof HttpProblem) {
    return { ...base(err.statusCode), code: err.code, detail: err.detail, headers: err.headers };
  }
  if (isUserInputError(err)) {
    const status = USER_ERROR_STATUS[err.code] ?? 422;
    return { ...base(status), code: err.code, detail: err.userMessage, headers: {} };
  }
  const e = err as { statusCode?: unknown; code?: unknown; message?: unknown; validation?: unknown };
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const code = typeof e.code === 'string' ? (FASTIFY_CODES[e.code] ?? e.code) : 'BAD_REQUEST';
    const detail = e.statusCode === 413 ? 'The request body is larger than this endpoint accepts.' : typeof e.message === 'string' ? e.message : undefined;
    return { ...base(e.statusCode), code, ...(detail ? { detail } : {}), headers: {} };
  }
  return { ...base(500), code: 'INTERNAL', detail: 'Sorry, something went wrong on our side. Nothing you stored was lost; please try again in a moment.', headers: {} };
}

function base(status: number): Problem {
  return { type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status };
}
