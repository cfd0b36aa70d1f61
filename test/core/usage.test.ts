import { KeyedLock } from '../../src/core/store/keyed-lock.js';
import { describe, expect, it } from 'vitest';
import { isUserInputError, type UserInputError } from '../../src/core/errors.js';
import { UsageMeter, estimateCostUsd, utcDay, type UsageKeyValueStore } from '../../src/core/usage.js';

/** A Map-backed key-value store that also records TTLs, like the keyv repository would get them. */
class MapStore implements UsageKeyValueStore {
  readonly values = new Map<string, unknown>();
  readonly ttls = new Map<string, number | undefined>();
  async get<T>(key: string): Promise<T | undefined> {
    const v = this.values.get(key);
    return v === undefined ? undefined : (structuredClone(v) as T);
  }
  async set<T>(key: string, value: T, ttlMs?: number): Promise<void> {
    await new Promise((r) => setImmediate(r)); // a real store yields between read and write
    this.values.set(key, structuredClone(value));
    this.ttls.set(key, ttlMs);
  }
  private readonly locks = new KeyedLock();
  /** Atomic per key, as the store's `update` is. */
  update<T>(k: string, fn: (current: T | undefined) => T, ttlMs?: number): Promise<T> {
    return this.locks.run(k, async () => {
      const next = fn(await this.get<T>(k));
      await this.set(k, next, ttlMs);
      return next;
    });
  }
}

const prices = {
  elevenlabs: { ttsUsdPer1kChars: 0.05, sttUsdPerMinute: 0.4 / 60 },
  gemini: { inputUsdPer1MTokens: 0.3, outputUsdPer1MTokens: 2.5 },
};

async function budgetError(p: Promise<unknown>): Promise<UserInputError> {
  try {
    await p;
  } catch (err) {
    if (isUserInputError(err)) return err;
    throw err;
  }
  throw new Error('expected BUDGET_EXCEEDED');
}

describe('UsageMeter', () => {
  it('counts per user, per provider and per UTC day, with estimated cost', async () => {
    const kv = new MapStore();
    let now = Date.parse('2025-03-01T23:59:00Z');
    const meter = new UsageMeter(kv, { prices }, () => now);
    await meter.record('telegram:1', { provider: 'elevenlabs', ttsChars: 1000 });
    await meter.record('telegram:1', { provider: 'elevenlabs', sttSec: 90 });
    await meter.record('telegram:1', { provider: 'gemini', inputTokens: 2000, outputTokens: 400 });
    await meter.record('telegram:2', { provider: 'elevenlabs', ttsChars: 10 });

    const u1 = await meter.today('telegram:1');
    expect(u1.day).toBe('2025-03-01');
    expect(u1.byProvider.elevenlabs).toMatchObject({ ttsChars: 1000, sttSec: 90, calls: 2 });
    expect(u1.byProvider.elevenlabs?.costUsd).toBeCloseTo(0.05 + 0.01, 10);
    expect(u1.byProvider.gemini).toMatchObject({ inputTokens: 2000, outputTokens: 400, calls: 1 });
    expect(u1.byProvider.gemini?.costUsd).toBeCloseTo(0.0006 + 0.001, 10);
    expect(u1.total.calls).toBe(3);
    expect(u1.total.costUsd).toBeCloseTo(0.0616, 10);
    expect((await meter.today('telegram:2')).total.ttsChars).toBe(10);
    expect((await meter.day('*', '2025-03-01')).total.ttsChars).toBe(1010);
    expect(kv.ttls.get('usage:2025-03-01:telegram:1')).toBe(35 * 86_400_000);

    now = Date.parse('2025-03-02T00:00:30Z');
    expect((await meter.today('telegram:1')).total.calls).toBe(0);
    await meter.record('telegram:1', { provider: 'elevenlabs', ttsChars: 5 });
    expect((await meter.today('telegram:1')).total.ttsChars).toBe(5);
    expect((await meter.day('telegram:1', '2025-03-01')).total.ttsChars).toBe(1000);
  });

  it('loses no increment when calls for one user overlap', async () => {
    const meter = new UsageMeter(new MapStore(), { prices });
    await Promise.all(Array.from({ length: 25 }, () => meter.record('discord:7', { provider: 'elevenlabs', ttsChars: 4 })));
    const usage = await meter.today('discord:7');
    expect(usage.total.ttsChars).toBe(100);
    expect(usage.total.calls).toBe(25);
  });

  it('refuses with BUDGET_EXCEEDED once a daily limit is reached, and only for that kind', async () => {
    const now = Date.parse('2025-06-10T21:30:00Z');
    const meter = new UsageMeter(new MapStore(), { prices, limits: { dailyTtsChars: 500, dailySttSec: 120 } }, () => now);
    await meter.checkBudget('telegram:9');
    await meter.record('telegram:9', { provider: 'elevenlabs', ttsChars: 499 });
    await meter.checkBudget('telegram:9', ['tts']); // 499 < 500: the crossing call is allowed
    await meter.record('telegram:9', { provider: 'elevenlabs', ttsChars: 300 });

    const err = await budgetError(meter.checkBudget('telegram:9', ['tts']));
    expect(err.code).toBe('BUDGET_EXCEEDED');
    expect(err.userMessage).toContain('500 characters');
    expect(err.userMessage).toContain('2 h 30 min');
    expect(err.userMessage).toContain('text');
    await meter.checkBudget('telegram:9', ['stt']); // transcription still allowed
    await meter.checkBudget('telegram:10'); // another user unaffected

    await meter.record('telegram:9', { provider: 'elevenlabs', sttSec: 125 });
    const sttErr = await budgetError(meter.checkBudget('telegram:9', ['stt']));
    expect(sttErr.userMessage).toContain('2 min of audio');
    expect(await meter.remaining('telegram:9')).toEqual({ ttsChars: 0, sttSec: 0, costUsd: undefined });
  });

  it('applies per-user and global cost caps', async () => {
    const meter = new UsageMeter(new MapStore(), { prices, limits: { dailyCostUsd: 0.1, globalDailyCostUsd: 0.15 } });
    await meter.record('a', { provider: 'elevenlabs', ttsChars: 2000 }); // $0.10
    expect((await budgetError(meter.checkBudget('a'))).userMessage).toContain('$0.10');
    await meter.checkBudget('b');
    await meter.record('b', { provider: 'elevenlabs', ttsChars: 1000 }); // global $0.15
    const err = await budgetError(meter.checkBudget('b'));
    expect(err.userMessage).toContain('everyone');
  });

  it('estimates nothing for providers without prices', () => {
    expect(estimateCostUsd({ provider: 'local', ttsChars: 1e6, sttSec: 1e4 }, undefined)).toBe(0);
    expect(utcDay(Date.parse('2024-12-31T23:59:59.999Z'))).toBe('2024-12-31');
  });
});
