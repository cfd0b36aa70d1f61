/**
 * One provider call with a per-attempt timeout and bounded retries: exponential backoff with
 * jitter on retryable failures (429, 408, 5xx, network, timeout), the server's `Retry-After`
 * honoured when it is within bounds, no retry on other 4xx. User errors pass through untouched.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ProviderError, isUserInputError } from '../../core/errors.js';
import { genericProviderError } from './errors.js';

/** How one provider call is retried. All durations in milliseconds unless named `…Sec`. */
export interface RetryPolicy {
  /** Timeout of one attempt, ms. */
  timeoutMs: number;
  /** Retries after the first attempt (0 = a single attempt). */
  maxRetries: number;
  /** Backoff before the first retry, ms; doubles with every further retry. */
  baseDelayMs: number;
  /** Upper bound of one backoff delay, ms. */
  maxDelayMs: number;
  /**
   * Longest server-requested wait (`Retry-After`) honoured, seconds. A longer one is not waited
   * for: the call fails at once so a fallback provider can answer.
   */
  maxRetryAfterSec: number;
  /**
   * Retry after an attempt timed out (default true). Off for calls that are not idempotent, such
   * as creating a voice clone, where a timed-out request may still have succeeded.
   */
  retryOnTimeout?: boolean;
}

/** Defaults for interactive calls (a chat turn): 20 s per attempt, two retries, 0.5 s → 4 s backoff. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  timeoutMs: 20_000,
  maxRetries: 2,
  baseDelayMs: 500,
  maxDelayMs: 4_000,
  maxRetryAfterSec: 10,
};

/**
 * Backoff before retry number `retry` (0-based): "equal jitter", a random delay between half and
 * all of `min(maxDelayMs, baseDelayMs · 2^retry)`, so concurrent clients spread out.
 * @param random source of uniform [0, 1) numbers (tests pass a fixed one)
 */
export function backoffDelayMs(retry: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return cap / 2 + random() * (cap / 2);
}

/**
 * Delay before the next attempt after `err`, or undefined when no retry should happen (not
 * retryable, or the server asks for a longer wait than `maxRetryAfterSec`).
 */
export function retryDelayMs(err: ProviderError, retry: number, policy: RetryPolicy, random: () => number = Math.random): number | undefined {
  if (!err.retryable) return undefined;
  const retryAfterSec = err.options.retryAfterSec;
  if (retryAfterSec !== undefined) {
    if (retryAfterSec > policy.maxRetryAfterSec) return undefined;
    return retryAfterSec * 1000;
  }
  return backoffDelayMs(retry, policy, random);
}

/** Rejects with the signal's reason as soon as `signal` aborts, else settles like `promise`. */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** What happened on one failed attempt (for logs and tests). */
export interface AttemptFailure {
  provider: string;
  attempt: number;
  error: ProviderError;
  /** Delay before the next attempt, ms; undefined when this was the last one. */
  nextDelayMs?: number;
}

/** Options of {@link callWithRetry}. */
export interface CallOptions<T> {
  provider: string;
  policy: RetryPolicy;
  /** Caller's cancellation; aborting it stops at once and is not a provider failure. */
  signal?: AbortSignal;
  /** Maps a vendor SDK error to a {@link ProviderError}; falls back to {@link genericProviderError}. */
  classify?: (err: unknown) => ProviderError | undefined;
  /** Checks a result; throw a {@link ProviderError} to count it as a failed attempt (e.g. empty audio). */
  validate?: (result: T) => void;
  /** Called after every failed attempt. */
  onFailure?: (failure: AttemptFailure) => void;
  random?: () => number;
}

/**
 * Runs `fn` with a fresh timeout signal per attempt, retrying as the policy says.
 * @param fn the call; it receives a signal that aborts on timeout or on the caller's abort
 * @returns the first successful (and valid) result
 * @throws UserInputError from `fn`, untouched
 * @throws the caller's abort reason when `options.signal` aborts
 * @throws ProviderError after the last failed attempt (timeouts become retryable ProviderErrors)
 */
export async function callWithRetry<T>(fn: (signal: AbortSignal) => Promise<T>, options: CallOptions<T>): Promise<{ result: T; attempts: number }> {
  const { provider, policy } = options;
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    const timeout = AbortSignal.timeout(policy.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let error: ProviderError;
    let timedOut = false;
    try {
      const result = await raceSignal(fn(signal), signal);
      options.validate?.(result);
      return { result, attempts: attempt + 1 };
    } catch (err) {
      if (isUserInputError(err)) throw err;
      if (options.signal?.aborted) throw options.signal.reason;
      if (timeout.aborted) {
        timedOut = true;
        error = new ProviderError(provider, `timed out after ${policy.timeoutMs} ms`, { retryable: true, cause: err });
      } else {
        error = options.classify?.(err) ?? genericProviderError(provider, err);
      }
    }
    const mayRetry = attempt < policy.maxRetries && !(timedOut && policy.retryOnTimeout === false);
    const nextDelayMs = mayRetry ? retryDelayMs(error, attempt, policy, options.random) : undefined;
    options.onFailure?.({ provider, attempt: attempt + 1, error, nextDelayMs });
    if (nextDelayMs === undefined) throw error;
    await sleep(nextDelayMs, undefined, options.signal ? { signal: options.signal } : undefined);
  }
}
