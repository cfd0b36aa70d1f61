/**
 * An ordered list of providers for one capability, tried in turn: each call gets a timeout and
 * bounded retries ({@link callWithRetry}); a provider whose call fails is taken out of rotation by
 * its {@link CircuitBreaker} and probed back in after a cool-down, in the background when it has
 * a `probe` method, else by admitting one trial call. A {@link UserInputError} is never a
 * provider failure: it is rethrown at once and no fallback is tried.
 */
import type { Logger } from 'pino';
import { ProviderError, isUserInputError } from '../../core/errors.js';
import { CircuitBreaker, DEFAULT_BREAKER_POLICY, type BreakerPolicy, type BreakerSnapshot } from './breaker.js';
import { isAuthStatus } from './errors.js';
import { DEFAULT_RETRY_POLICY, callWithRetry, raceSignal, type RetryPolicy } from './retry.js';

/** Anything in a chain: a named provider, optionally with a cheap authenticated health check. */
export interface ChainMember {
  readonly name: string;
  /**
   * Optional health check used to bring the provider back after a cool-down (e.g. ElevenLabs
   * `GET /v1/models`). Resolves when the provider answers normally.
   * @throws ProviderError when it does not
   */
  probe?(signal: AbortSignal): Promise<void>;
  /** Optional mapping of this provider's SDK errors to {@link ProviderError}s. */
  classifyError?(err: unknown): ProviderError | undefined;
}

/** Events a chain reports (logged, and handed to `onEvent` for metrics and tests). */
export type ChainEvent =
  | { type: 'attempt-failed'; capability: string; provider: string; attempt: number; status?: number; retryable: boolean; retryAfterSec?: number; nextDelayMs?: number; message: string }
  | { type: 'provider-failed'; capability: string; provider: string; status?: number; message: string }
  | { type: 'provider-skipped'; capability: string; provider: string; openUntilMs: number }
  | { type: 'breaker-opened'; capability: string; provider: string; openUntilMs: number }
  | { type: 'breaker-closed'; capability: string; provider: string }
  | { type: 'probe-failed'; capability: string; provider: string; message: string }
  | { type: 'succeeded'; capability: string; provider: string; attempts: number; durationMs: number; fallback: boolean };

/** Settings of a chain. Durations in milliseconds. */
export interface ChainOptions {
  retry?: Partial<RetryPolicy>;
  breaker?: Partial<BreakerPolicy>;
  /** Timeout of one background probe, ms (default 10 000). */
  probeTimeoutMs?: number;
  logger?: Logger;
  onEvent?: (event: ChainEvent) => void;
  now?: () => number;
  random?: () => number;
}

/** The outcome of a successful chain call. */
export interface ChainResult<R, P> {
  result: R;
  /** The provider that answered. */
  provider: P;
  /** Attempts made on that provider (1 = first try). */
  attempts: number;
  /** Failures of providers tried before it, in order. */
  failures: ProviderError[];
}

/** Per-call options of {@link ProviderChain.run}. */
export interface RunOptions<R, P> {
  signal?: AbortSignal;
  /** Skip providers that cannot serve this call (default: all can). */
  accept?: (provider: P) => boolean;
  /** Throw a ProviderError to count a result as a failure (e.g. zero-byte audio). */
  validate?: (result: R, provider: P) => void;
  /** Overrides the chain's retry policy for this call (e.g. a longer timeout for cloning). */
  retry?: Partial<RetryPolicy>;
}

/** A snapshot of one member for `/status`. */
export interface MemberStatus extends BreakerSnapshot {
  name: string;
}

/** An ordered, failure-aware list of providers of one capability. */
export class ProviderChain<P extends ChainMember> {
  readonly members: readonly P[];
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly probeTimers = new Map<string, NodeJS.Timeout>();
  private readonly retry: RetryPolicy;
  private readonly now: () => number;
  private closed = false;

  /**
   * @param capability label for logs and errors (`tts`, `stt`, `chat`, `cloner`)
   * @param members providers in order of preference; names must be unique
   * @throws Error when the list is empty or names repeat (a configuration mistake)
   */
  constructor(
    readonly capability: string,
    members: readonly P[],
    private readonly options: ChainOptions = {},
  ) {
    if (members.length === 0) throw new Error(`${capability}: at least one provider is required`);
    this.members = members;
    this.retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.now = options.now ?? Date.now;
    const policy = { ...DEFAULT_BREAKER_POLICY, ...options.breaker };
    for (const member of members) {
      if (this.breakers.has(member.name)) throw new Error(`${capability}: provider "${member.name}" is listed twice`);
      this.breakers.set(member.name, new CircuitBreaker(member.name, policy, this.now));
    }
  }

  /** Breaker state of every member, in order. */
  status(): MemberStatus[] {
    return this.members.map((m) => ({ name: m.name, ...this.breaker(m).snapshot() }));
  }

  /** Stops background probes (call on shutdown). */
  close(): void {
    this.closed = true;
    for (const timer of this.probeTimers.values()) clearTimeout(timer);
    this.probeTimers.clear();
  }

  /**
   * Calls the first provider in rotation; on failure, the next one, and so on.
   * @param call the operation on one provider; receives a per-attempt signal (timeout + caller abort)
   * @returns the first success with the provider that produced it
   * @throws UserInputError from any provider, untouched (no fallback)
   * @throws the caller's abort reason when `options.signal` aborts
   * @throws ProviderError (`provider` = `<capability>`) when every provider failed or was out of
   *   rotation; `retryable` is true when any failure was retryable
   */
  async run<R>(call: (provider: P, signal: AbortSignal) => Promise<R>, options: RunOptions<R, P> = {}): Promise<ChainResult<R, P>> {
    const candidates = options.accept ? this.members.filter(options.accept) : [...this.members];
    if (candidates.length === 0) {
      throw new ProviderError(this.capability, 'no configured provider can serve this request', { retryable: false });
    }
    const failures: ProviderError[] = [];
    const skipped: P[] = [];
    let tried = 0;
    const attemptOne = async (member: P): Promise<ChainResult<R, P> | undefined> => {
      tried++;
      const breaker = this.breaker(member);
      const startedMs = this.now();
      try {
        const { result, attempts } = await callWithRetry((signal) => call(member, signal), {
          provider: member.name,
          policy: { ...this.retry, ...options.retry },
          signal: options.signal,
          classify: member.classifyError ? (err) => member.classifyError?.(err) : undefined,
          validate: options.validate ? (r) => options.validate?.(r, member) : undefined,
          random: this.options.random,
          onFailure: (f) =>
            this.emit({
              type: 'attempt-failed',
              capability: this.capability,
              provider: member.name,
              attempt: f.attempt,
              status: f.error.options.status,
              retryable: f.error.retryable,
              retryAfterSec: f.error.options.retryAfterSec,
              nextDelayMs: f.nextDelayMs,
              message: f.error.message,
            }),
        });
        this.markHealthy(member);
        this.emit({ type: 'succeeded', capability: this.capability, provider: member.name, attempts, durationMs: this.now() - startedMs, fallback: failures.length > 0 || skipped.length > 0 });
        return { result, provider: member, attempts, failures };
      } catch (err) {
        if (isUserInputError(err)) {
          // The provider answered; the request was at fault.
          this.markHealthy(member);
          throw err;
        }
        if (options.signal?.aborted) {
          breaker.releaseTrial();
          throw err;
        }
        const error = err instanceof ProviderError ? err : new ProviderError(member.name, String(err), { retryable: false, cause: err });
        failures.push(error);
        this.emit({ type: 'provider-failed', capability: this.capability, provider: member.name, status: error.options.status, message: error.message });
        const status = error.options.status;
        const auth = status !== undefined && isAuthStatus(status);
        if (error.retryable || auth) {
          if (breaker.recordFailure(auth ? 'auth' : 'transient', error.options.retryAfterSec)) this.onOpened(member);
        } else if (breaker.state === 'half-open') {
          // A plain 4xx shows the provider is up; the trial succeeded as far as health goes.
          this.markHealthy(member);
        }
        return undefined;
      }
    };

    for (const member of candidates) {
      const breaker = this.breaker(member);
      if (!breaker.tryAcquire()) {
        skipped.push(member);
        this.emit({ type: 'provider-skipped', capability: this.capability, provider: member.name, openUntilMs: breaker.openUntilMs });
        continue;
      }
      const outcome = await attemptOne(member);
      if (outcome) return outcome;
    }
    if (tried === 0 && skipped.length > 0) {
      // Everything is out of rotation: rather than failing outright, give the provider whose
      // cool-down ends first one trial.
      const soonest = [...skipped].sort((a, b) => this.breaker(a).openUntilMs - this.breaker(b).openUntilMs)[0] as P;
      this.breaker(soonest).forceTrial();
      const outcome = await attemptOne(soonest);
      if (outcome) return outcome;
    }
    const summary = failures.length > 0 ? failures.map((f) => f.message).join('; ') : 'every provider is out of rotation';
    throw new ProviderError(this.capability, `all providers failed (${summary})`, {
      retryable: failures.length === 0 || failures.some((f) => f.retryable),
      status: failures.at(-1)?.options.status,
      cause: failures.length > 0 ? new AggregateError(failures, summary) : undefined,
    });
  }

  /**
   * Calls one named member directly, with retries but regardless of its breaker (used for
   * operations only that provider can do, such as deleting its own voice).
   * @throws Error when no member has that name
   */
  async runOn<R>(name: string, call: (provider: P, signal: AbortSignal) => Promise<R>, options: { signal?: AbortSignal; retry?: Partial<RetryPolicy> } = {}): Promise<R> {
    const member = this.members.find((m) => m.name === name);
    if (!member) throw new Error(`${this.capability}: no provider named "${name}"`);
    const { result } = await callWithRetry((signal) => call(member, signal), {
      provider: member.name,
      policy: { ...this.retry, ...options.retry },
      signal: options.signal,
      classify: member.classifyError ? (err) => member.classifyError?.(err) : undefined,
      random: this.options.random,
    });
    return result;
  }

  private breaker(member: P): CircuitBreaker {
    return this.breakers.get(member.name) as CircuitBreaker;
  }

  private markHealthy(member: P): void {
    const breaker = this.breaker(member);
    const wasClosed = breaker.state === 'closed';
    breaker.recordSuccess();
    if (!wasClosed) {
      this.clearProbe(member.name);
      this.emit({ type: 'breaker-closed', capability: this.capability, provider: member.name });
    }
  }

  private onOpened(member: P): void {
    const openUntilMs = this.breaker(member).openUntilMs;
    this.emit({ type: 'breaker-opened', capability: this.capability, provider: member.name, openUntilMs });
    if (member.probe) this.scheduleProbe(member, Math.max(0, openUntilMs - this.now()));
  }

  private clearProbe(name: string): void {
    const timer = this.probeTimers.get(name);
    if (timer) clearTimeout(timer);
    this.probeTimers.delete(name);
  }

  private scheduleProbe(member: P, delayMs: number): void {
    if (this.closed) return;
    this.clearProbe(member.name);
    const timer = setTimeout(() => {
      this.probeTimers.delete(member.name);
      void this.runProbe(member);
    }, delayMs);
    timer.unref();
    this.probeTimers.set(member.name, timer);
  }

  private async runProbe(member: P): Promise<void> {
    const breaker = this.breaker(member);
    if (this.closed || !member.probe || !breaker.tryAcquire()) return;
    const signal = AbortSignal.timeout(this.options.probeTimeoutMs ?? 10_000);
    try {
      await raceSignal(member.probe(signal), signal);
      this.markHealthy(member);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.emit({ type: 'probe-failed', capability: this.capability, provider: member.name, message });
      const retryAfterSec = err instanceof ProviderError ? err.options.retryAfterSec : undefined;
      if (breaker.recordFailure('transient', retryAfterSec)) this.onOpened(member);
    }
  }

  private emit(event: ChainEvent): void {
    const log = this.options.logger;
    if (log) {
      const { type, ...fields } = event;
      if (type === 'succeeded') log.debug(fields, `${this.capability} call succeeded`);
      else if (type === 'breaker-closed') log.info(fields, `${this.capability} provider back in rotation`);
      else if (type === 'provider-skipped') log.debug(fields, `${this.capability} provider out of rotation, skipped`);
      else log.warn(fields, `${this.capability} ${type.replace('-', ' ')}`);
    }
    this.options.onEvent?.(event);
  }
}
