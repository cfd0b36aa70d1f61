import { describe, expect, it } from 'vitest';
import { SendPacer, type PacerClock } from '../../../src/bots/whatsapp/pacing.js';

/** A virtual clock: `sleep` advances time at once and records the wait. */
function virtualClock(): PacerClock & { sleeps: number[]; t: number } {
  const clock = {
    t: 1_000_000,
    sleeps: [] as number[],
    now: () => clock.t,
    sleep: async (ms: number) => {
      clock.sleeps.push(ms);
      clock.t += ms;
    },
  };
  return clock;
}

describe('SendPacer', () => {
  it('starts sends one at a time, minIntervalMs apart, in order', async () => {
    const clock = virtualClock();
    const pacer = new SendPacer(1500, clock);
    const starts: Array<[string, number]> = [];
    const task = (name: string, workMs: number) => async () => {
      starts.push([name, clock.t]);
      clock.t += workMs;
      return name;
    };
    const results = await Promise.all([pacer.run(task('a', 100)), pacer.run(task('b', 2000)), pacer.run(task('c', 0))]);
    expect(results).toEqual(['a', 'b', 'c']);
    expect(starts).toEqual([
      ['a', 1_000_000],
      ['b', 1_001_500],
      ['c', 1_003_500],
    ]);
    // b waited the remaining 1400 ms; c started right after b's 2 s of work (already past the gap).
    expect(clock.sleeps).toEqual([1400]);
  });

  it('keeps going after a failed send and reports the failure to its caller only', async () => {
    const clock = virtualClock();
    const pacer = new SendPacer(10, clock);
    const failed = pacer.run(async () => {
      throw new Error('send failed');
    });
    const next = pacer.run(async () => 'ok');
    await expect(failed).rejects.toThrow('send failed');
    await expect(next).resolves.toBe('ok');
    expect(pacer.pending).toBe(0);
  });

  it('rejects a negative interval', () => {
    expect(() => new SendPacer(-1)).toThrow(RangeError);
  });
});
