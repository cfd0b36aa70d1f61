/** The broadcast rate limiter on a virtual clock, and retry_after extraction. */
import { describe, expect, it } from 'vitest';
import { RateLimiter, retryAfterMs, type BroadcastClock } from '../../../src/core/broadcast/index.js';
import { maxInWindow, minGapPerKey } from './support.js';

/** A virtual clock: sleeps resolve in time order as the test advances time. */
class VirtualClock implements BroadcastClock {
  nowMs = 1_000_000;
  private sleepers: Array<{ at: number; resolve: () => void }> = [];
  now(): number {
    return this.nowMs;
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.sleepers.push({ at: this.nowMs + ms, resolve }));
  }
  /** Extra delay of the next wake-ups, ms, one entry per wake-up (a stalled process). */
  lateness: number[] = [];
  /** Runs until no sleeper is left, advancing time to each wake-up. */
  async runAll(): Promise<void> {
    for (let guard = 0; guard < 1_000_000; guard++) {
      await new Promise((r) => setImmediate(r));
      if (this.sleepers.length === 0) return;
      this.sleepers.sort((a, b) => a.at - b.at);
      const next = this.sleepers.shift()!;
      this.nowMs = Math.max(this.nowMs, next.at) + (this.lateness.shift() ?? 0);
      next.resolve();
    }
  }
}

describe('RateLimiter', () => {
  it('never lets more than the limit start in any one-second window, across many chats', async () => {
    const clock = new VirtualClock();
    const limiter = new RateLimiter({ messagesPerSec: 30, perChatIntervalMs: 1000 }, { clock, warmupMs: 0 });
    const starts: number[] = [];
    const all = Array.from({ length: 300 }, (_, i) => limiter.acquire(`chat${i}`).then((t) => starts.push(t)));
    await clock.runAll();
    await Promise.all(all);
    expect(starts).toHaveLength(300);
    expect(maxInWindow(starts, 1000)).toBeLessThanOrEqual(30);
    // With 3 % headroom the 300 starts span 299 × 34.3 ms: nothing is lost beyond it.
    const spanSec = (Math.max(...starts) - Math.min(...starts)) / 1000;
    expect(spanSec).toBeCloseTo((299 / 30) * 1.03, 6);
  });

  it('holds whatever the configured rate', async () => {
    for (const perSec of [1, 7, 300]) {
      const clock = new VirtualClock();
      const limiter = new RateLimiter({ messagesPerSec: perSec, perChatIntervalMs: 0 }, { clock, headroom: 0, warmupMs: 0 });
      const starts: number[] = [];
      const all = Array.from({ length: perSec * 3 + 5 }, (_, i) => limiter.acquire(`c${i}`).then((t) => starts.push(t)));
      await clock.runAll();
      await Promise.all(all);
      expect(maxInWindow(starts, 1000)).toBeLessThanOrEqual(perSec);
    }
  });

  it('spaces messages to one chat by the per-chat interval without holding other chats back', async () => {
    const clock = new VirtualClock();
    const limiter = new RateLimiter({ messagesPerSec: 100, perChatIntervalMs: 1000 }, { clock, warmupMs: 0 });
    const starts: Array<{ key: string; atMs: number }> = [];
    const all = [
      ...Array.from({ length: 4 }, () => limiter.acquire('operator').then((t) => starts.push({ key: 'operator', atMs: t }))),
      ...Array.from({ length: 50 }, (_, i) => limiter.acquire(`u${i}`).then((t) => starts.push({ key: `u${i}`, atMs: t }))),
    ];
    await clock.runAll();
    await Promise.all(all);
    expect(minGapPerKey(starts)).toBeGreaterThanOrEqual(1000);
    const others = starts.filter((s) => s.key !== 'operator').map((s) => s.atMs);
    // 50 other chats at ~98/s finish within about half a second, not behind the operator's 3 s.
    expect(Math.max(...others) - Math.min(...others)).toBeLessThan(600);
    const operatorStarts = starts.filter((s) => s.key === 'operator').map((s) => s.atMs);
    expect(Math.max(...operatorStarts) - Math.min(...operatorStarts)).toBeGreaterThanOrEqual(3000);
  });

  it('starts nothing during a retry_after pause, then goes on at the same pace', async () => {
    const clock = new VirtualClock();
    const limiter = new RateLimiter({ messagesPerSec: 10, perChatIntervalMs: 0 }, { clock, headroom: 0, warmupMs: 0 });
    const starts: number[] = [];
    const first = Array.from({ length: 5 }, (_, i) => limiter.acquire(`a${i}`).then((t) => starts.push(t)));
    await clock.runAll();
    await Promise.all(first);
    const pauseFrom = clock.nowMs;
    limiter.pause(pauseFrom + 5000);
    const second = Array.from({ length: 5 }, (_, i) => limiter.acquire(`b${i}`).then((t) => starts.push(t)));
    await clock.runAll();
    await Promise.all(second);
    const after = starts.slice(5);
    expect(Math.min(...after)).toBeGreaterThanOrEqual(pauseFrom + 5000);
    expect(maxInWindow(starts, 1000)).toBeLessThanOrEqual(10);
  });

  it('warms up after being idle: half the rate at first, the full rate after warmupMs', async () => {
    const clock = new VirtualClock();
    const limiter = new RateLimiter({ messagesPerSec: 100, perChatIntervalMs: 0 }, { clock, headroom: 0, warmupMs: 1000 });
    const burst = async (n: number, prefix: string): Promise<number[]> => {
      const starts: number[] = [];
      const all = Array.from({ length: n }, (_, i) => limiter.acquire(`${prefix}${i}`).then((t) => starts.push(t)));
      await clock.runAll();
      await Promise.all(all);
      return starts.sort((a, b) => a - b);
    };
    const first = await burst(200, 'a');
    const t0 = first[0]!;
    const inFirstSecond = first.filter((t) => t < t0 + 1000).length;
    expect(inFirstSecond).toBeGreaterThan(60); // 100 × ln 2 ≈ 69 at a rate ramping from 50 to 100 per second
    expect(inFirstSecond).toBeLessThan(75);
    expect(first[1]! - first[0]!).toBeCloseTo(20, 6); // doubled spacing at the start
    expect(first.at(-1)! - first.at(-2)!).toBeCloseTo(10, 6); // the normal spacing afterwards
    // A short gap does not restart the warm-up; a pause (retry_after) does.
    clock.nowMs += 500;
    const second = await burst(3, 'b');
    expect(second[1]! - second[0]!).toBeCloseTo(10, 6);
    limiter.pause(clock.nowMs + 100);
    const third = await burst(3, 'c');
    expect(third[1]! - third[0]!).toBeCloseTo(20, 6);
  });

  it('accounts a reply that becomes two platform messages (voice note, then text) as two', async () => {
    const clock = new VirtualClock();
    const limiter = new RateLimiter({ messagesPerSec: 10, perChatIntervalMs: 1000 }, { clock, headroom: 0, warmupMs: 0 });
    const starts: Array<{ key: string; atMs: number }> = [];
    const all = [
      ...Array.from({ length: 10 }, (_, i) => limiter.acquire(`u${i}`, undefined, 2).then((t) => starts.push({ key: `u${i}`, atMs: t }))),
      limiter.acquire('u0', undefined, 2).then((t) => starts.push({ key: 'u0', atMs: t })),
    ];
    await clock.runAll();
    await Promise.all(all);
    // Each reply's second message is counted one spacing after its first: 5 replies per second.
    const firsts = starts.filter((s) => s.key !== 'u0').map((s) => s.atMs).sort((a, b) => a - b);
    expect(firsts[1]! - firsts[0]!).toBe(200);
    expect(maxInWindow([...firsts, ...firsts.map((t) => t + 100)], 1000)).toBeLessThanOrEqual(10);
    // The chat's next reply waits until a second after its previous reply's second message.
    const u0 = starts.filter((s) => s.key === 'u0').map((s) => s.atMs).sort((a, b) => a - b);
    expect(u0[1]! - u0[0]!).toBeGreaterThanOrEqual(2000);
  });

  it('keeps a full spacing after a stall of the process, and ignores the small delays the headroom covers', async () => {
    const clock = new VirtualClock();
    const limiter = new RateLimiter({ messagesPerSec: 10, perChatIntervalMs: 0 }, { clock, headroom: 0.03, warmupMs: 0 });
    const starts: number[] = [];
    await limiter.acquire('a').then((t) => starts.push(t));
    clock.lateness = [40]; // the wake-up for the second slot comes 40 ms late
    const second = limiter.acquire('b').then((t) => starts.push(t));
    await clock.runAll();
    await second;
    expect(limiter.lateWakes).toBe(1);
    // Planned at +103 ms, woken at +143 ms: moved one spacing on, to +246 ms.
    expect(starts[1]! - starts[0]!).toBeCloseTo(103 + 40 + 103, 6);
    clock.lateness = [10]; // within the 15 ms the 3 % headroom absorbs
    const third = limiter.acquire('c').then((t) => starts.push(t));
    await clock.runAll();
    await third;
    expect(limiter.lateWakes).toBe(1);
    expect(starts[2]! - starts[1]!).toBeCloseTo(103, 6); // granted as planned (it starts 10 ms late)
    expect(clock.nowMs - starts[2]!).toBe(10);
  });

  it('gives up waiting when aborted', async () => {
    const limiter = new RateLimiter({ messagesPerSec: 1, perChatIntervalMs: 0 }, { headroom: 0 });
    await limiter.acquire('x');
    const controller = new AbortController();
    const waiting = limiter.acquire('y', controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow();
  });

  it('refuses a pace that is not positive', () => {
    expect(() => new RateLimiter({ messagesPerSec: 0, perChatIntervalMs: 0 })).toThrow(RangeError);
    expect(() => new RateLimiter({ messagesPerSec: 5, perChatIntervalMs: -1 })).toThrow(RangeError);
  });
});

describe('retryAfterMs', () => {
  it('reads retry_after from a Bot API 429 and retryAfterSec from our own errors', () => {
    expect(retryAfterMs({ error_code: 429, description: 'Too Many Requests: retry after 7', parameters: { retry_after: 7 } })).toBe(7000);
    expect(retryAfterMs({ error_code: 429, description: 'Too Many Requests' })).toBe(1000);
    expect(retryAfterMs(Object.assign(new Error('slow down'), { retryAfterSec: 2 }))).toBe(2000);
    expect(retryAfterMs({ error_code: 403, description: 'Forbidden' })).toBeUndefined();
    expect(retryAfterMs(new Error('socket hang up'))).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
  });
});
