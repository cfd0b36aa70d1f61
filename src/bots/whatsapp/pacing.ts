/**
 * Conservative pacing of outbound WhatsApp messages.
 *
 * WhatsApp publishes no rate limit for WhatsApp Web. Its Terms of Service forbid "bulk messaging,
 * auto-messaging" (https://www.whatsapp.com/legal/terms-of-service, "Acceptable Use") and the
 * whatsapp-web.js README warns that unofficial clients may be blocked
 * (https://github.com/wwebjs/whatsapp-web.js#disclaimer). So every send of the process goes
 * through one queue that starts sends one at a time, at least `minIntervalMs` apart.
 */
import { setTimeout as sleepMs } from 'node:timers/promises';

/** Time source for {@link SendPacer}; tests pass a virtual clock. */
export interface PacerClock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms` milliseconds. */
  sleep(ms: number): Promise<void>;
}

const systemClock: PacerClock = { now: () => Date.now(), sleep: (ms) => sleepMs(ms) };

/** Default gap between two outbound WhatsApp messages, milliseconds. */
export const DEFAULT_MIN_SEND_INTERVAL_MS = 1500;

/**
 * A global, serial send queue: task N+1 starts at least `minIntervalMs` after task N started, and
 * never before task N settled. A failing task rejects its own promise only; the queue goes on.
 */
export class SendPacer {
  private tail: Promise<unknown> = Promise.resolve();
  private lastStartMs = Number.NEGATIVE_INFINITY;
  private waiting = 0;

  /**
   * @param minIntervalMs minimum gap between the starts of two sends, ms (≥ 0)
   * @param clock time source (the system clock by default)
   * @throws RangeError when `minIntervalMs` is negative or not finite
   */
  constructor(
    readonly minIntervalMs: number,
    private readonly clock: PacerClock = systemClock,
  ) {
    if (!Number.isFinite(minIntervalMs) || minIntervalMs < 0) {
      throw new RangeError(`minSendIntervalMs must be a finite number ≥ 0, got ${minIntervalMs}`);
    }
  }

  /** Number of sends queued and not yet started. */
  get pending(): number {
    return this.waiting;
  }

  /** Queues `task`; resolves or rejects with its result once it has run in turn. */
  run<T>(task: () => Promise<T>): Promise<T> {
    this.waiting += 1;
    const result = this.tail.then(async () => {
      const waitMs = this.lastStartMs + this.minIntervalMs - this.clock.now();
      if (waitMs > 0) await this.clock.sleep(waitMs);
      this.waiting -= 1;
      this.lastStartMs = this.clock.now();
      return task();
    });
    this.tail = result.catch(() => undefined);
    return result;
  }
}
