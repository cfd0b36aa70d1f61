/**
 * Errors a user can cause. Adapters render `userMessage` in the chat; the engine never
 * changes stored state before throwing one.
 */

/** Stable codes for every error a user can cause, so adapters and tests can branch on them. */
export type UserInputErrorCode =
  | 'EMPTY_AUDIO'
  | 'UNSUPPORTED_FORMAT'
  | 'CORRUPT_AUDIO'
  | 'FILE_TOO_LARGE'
  | 'AUDIO_TOO_LONG'
  | 'AUDIO_TOO_SHORT'
  | 'NO_SPEECH'
  | 'LANGUAGE_UNSUPPORTED'
  | 'TOO_NOISY'
  | 'TOO_QUIET'
  | 'CLIPPED'
  | 'NOT_SPEECH'
  | 'FORWARDED_SAMPLE'
  | 'EMPTY_TEXT'
  | 'TEXT_TOO_LONG'
  | 'UNKNOWN_COMMAND'
  | 'BAD_ARGUMENT'
  | 'NO_CONSENT'
  | 'CONSENT_MISMATCH'
  | 'NOT_ENROLLED'
  | 'NOT_READY'
  | 'BUSY'
  | 'BUDGET_EXCEEDED'
  | 'FORBIDDEN'
  | 'EXPORT_TOO_LARGE'
  | 'NOT_CONFIGURED'
  | 'BAD_LINK_CODE'
  | 'ALREADY_LINKED'
  | 'NOT_LINKED';

/**
 * An error caused by what the user sent (bad audio, unknown command, empty text…).
 *
 * @param code stable machine-readable code
 * @param userMessage one or two plain sentences for the user: what was wrong and what to do
 * @param details extra context for logs only (never shown to the user)
 */
export class UserInputError extends Error {
  override readonly name = 'UserInputError';
  constructor(
    readonly code: UserInputErrorCode,
    readonly userMessage: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(`${code}: ${userMessage}`);
  }
}

/** True when `err` is a {@link UserInputError} (also across module copies). */
export function isUserInputError(err: unknown): err is UserInputError {
  return err instanceof UserInputError || (err instanceof Error && err.name === 'UserInputError' && 'code' in err);
}

/**
 * A provider call failed (network, 5xx, 429, timeout, empty output). `retryable` says whether a
 * retry or a fallback provider may succeed; `retryAfterSec` carries a server's `Retry-After`.
 */
export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  constructor(
    readonly provider: string,
    message: string,
    readonly options: { retryable: boolean; status?: number; retryAfterSec?: number; cause?: unknown } = { retryable: false },
  ) {
    super(`${provider}: ${message}`, { cause: options.cause });
  }
  get retryable(): boolean {
    return this.options.retryable;
  }
}

/** A required system tool (ffmpeg, ffprobe, espeak-ng, pocketsphinx) is missing or broken. */
export class DependencyError extends Error {
  override readonly name = 'DependencyError';
  constructor(
    readonly tool: string,
    readonly installHint: string,
  ) {
    super(`${tool} is not available: ${installHint}`);
  }
}
