/**
 * A circuit breaker per provider: after failed calls it takes the provider out of rotation for a
 * cool-down, then lets one probe (a background health check or a single trial call) decide
 * whether it comes back. Cool-downs double after each failed probe up to a ceiling.
 *
 * States: `closed` (in rotation) → `open` (skipped until `openUntilMs`) → `half-open` (one trial
 * in flight) → `closed` on success or `open` again on failure. The pattern follows Nygard,
 * "Release It!" (2nd ed.), ch. 5 "Circuit Breaker".
 */

/** Breaker settings. Durations in milliseconds. */
export interface BreakerPolicy {
  /** Consecutive failed calls (each already retried) before the provider leaves rotation. */
  failureThreshold: number;
  /** First cool-down, ms. */
  coolDownMs: number;
  /** Ceiling of the doubling cool-down, ms. */
  maxCoolDownMs: number;
}

/** Defaults: out after one failed (already retried) call, back after 30 s, at most 10 min. */
export const DEFAULT_BREAKER_POLICY: BreakerPolicy = {
  failureThreshold: 1,
  coolDownMs: 30_000,
  maxCoolDownMs: 600_000,
};

export type BreakerState = 'closed' | 'open' | 'half-open';

/** How a failure should weigh: `auth` (401/402/403) opens at once whatever the threshold. */
export type FailureKind = 'transient' | 'auth';

/** A snapshot for `/status` and logs. */
export interface BreakerSnapshot {
  state: BreakerState;
  consecutiveFailures: number;
  /** When an open breaker lets a probe through, ms since the epoch. */
  openUntilMs?: number;
  /** Current cool-down length, ms. */
  coolDownMs: number;
}

/** One provider's breaker. Not shared across processes. */
export class CircuitBreaker {
  private stateValue: BreakerState = 'closed';
  private failures = 0;
  private openUntil = 0;
  private coolDown: number;

  constructor(
    readonly name: string,
    private readonly policy: BreakerPolicy,
    private readonly now: () => number = Date.now,
  ) {
    this.coolDown = policy.coolDownMs;
  }

  get state(): BreakerState {
    return this.stateValue;
  }

  /** When the cool-down ends, ms since the epoch (0 when closed). */
  get openUntilMs(): number {
    return this.stateValue === 'closed' ? 0 : this.openUntil;
  }

  /**
   * Whether a call may go to this provider now. An open breaker whose cool-down has ended turns
   * half-open and admits exactly one trial call; further calls wait for its outcome.
   */
  tryAcquire(): boolean {
    if (this.stateValue === 'closed') return true;
    if (this.stateValue === 'open' && this.now() >= this.openUntil) {
      this.stateValue = 'half-open';
      return true;
    }
    return false;
  }

  /** Forces one trial through even though the breaker is open (used when every provider is out). */
  forceTrial(): void {
    this.stateValue = 'half-open';
  }

  /** A call or probe succeeded: back in rotation, cool-down reset. */
  recordSuccess(): void {
    this.stateValue = 'closed';
    this.failures = 0;
    this.coolDown = this.policy.coolDownMs;
  }

  /**
   * A call or probe failed.
   * @param minOpenSec a server's `Retry-After`: the breaker stays open at least that long
   * @returns true when this failure opened (or re-opened) the breaker
   */
  recordFailure(kind: FailureKind, minOpenSec?: number): boolean {
    this.failures++;
    const wasHalfOpen = this.stateValue === 'half-open';
    if (this.stateValue === 'open') return false;
    if (!wasHalfOpen && kind !== 'auth' && this.failures < this.policy.failureThreshold) return false;
    if (wasHalfOpen) this.coolDown = Math.min(this.policy.maxCoolDownMs, this.coolDown * 2);
    const openMs = Math.max(this.coolDown, (minOpenSec ?? 0) * 1000);
    this.stateValue = 'open';
    this.openUntil = this.now() + openMs;
    return true;
  }

  /** A trial was admitted but not used (the call never reached the provider): re-open as before. */
  releaseTrial(): void {
    if (this.stateValue === 'half-open') this.stateValue = 'open';
  }

  snapshot(): BreakerSnapshot {
    return {
      state: this.stateValue,
      consecutiveFailures: this.failures,
      openUntilMs: this.stateValue === 'closed' ? undefined : this.openUntil,
      coolDownMs: this.coolDown,
    };
  }
}
