/**
 * Usage accounting and per-user daily budgets, vendor- and platform-neutral.
 *
 * Counters per user, per provider and per UTC day: characters synthesised (TTS), seconds
 * transcribed (STT), input/output tokens, calls, and an estimated cost from configurable unit
 * prices. A day's record lives under `usage:<YYYY-MM-DD>:<userKey>` in a key-value store, plus an
 * all-users total under `usage:<YYYY-MM-DD>:*` for an operator-wide cost cap.
 *
 * Each update is one atomic read-modify-write of the store (`kv.update`: a lock per key, also
 * across processes on Redis), so no increment is lost. Budgets are soft limits: the call that
 * crosses one is allowed.
 */
import { randomBytes } from 'node:crypto';
import { UserInputError } from './errors.js';

/** The part of the key-value repository usage needs (see `KeyValueRepository` in store/types.ts). */
export interface UsageKeyValueStore {
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
  /** Atomic read-modify-write (see `KeyValueRepository.update`). */
  update<T>(key: string, fn: (current: T | undefined) => T, ttlMs?: number): Promise<T>;
  /** Atomic read-modify-write of several keys (see `KeyValueRepository.updateMany`); needed by {@link UsageMeter.moveAll}. */
  updateMany?<T>(keys: readonly string[], fn: (current: (T | undefined)[]) => (T | undefined)[], ttlMs?: number): Promise<(T | undefined)[]>;
}

/** One provider call's consumption. Absent fields count as zero. */
export interface UsageEvent {
  /** Provider name, e.g. `elevenlabs`, `replicate`, `gemini`, `local`. */
  provider: string;
  /** Characters sent to TTS. */
  ttsChars?: number;
  /** Seconds of audio sent to STT. */
  sttSec?: number;
  inputTokens?: number;
  outputTokens?: number;
}

/** Counters of one provider (or the total) for one day. */
export interface UsageCounters {
  ttsChars: number;
  sttSec: number;
  inputTokens: number;
  outputTokens: number;
  calls: number;
  /** Estimated cost in US dollars from the configured unit prices. */
  costUsd: number;
}

/** One user's (or everyone's, `userKey` = `*`) usage on one UTC day. */
export interface DailyUsage {
  userKey: string;
  /** UTC day, `YYYY-MM-DD`. */
  day: string;
  total: UsageCounters;
  byProvider: Record<string, UsageCounters>;
}

/**
 * Unit prices of one provider, in US dollars. Absent prices count as free. Vendors change
 * prices; these are estimates for budgeting, not invoices.
 */
export interface UnitPrices {
  /** Per 1 000 characters synthesised. */
  ttsUsdPer1kChars?: number;
  /** Per minute of audio transcribed. */
  sttUsdPerMinute?: number;
  /** Per million input tokens. */
  inputUsdPer1MTokens?: number;
  /** Per million output tokens. */
  outputUsdPer1MTokens?: number;
}

/** Per-user daily limits; absent limits are unlimited. */
export interface UsageLimits {
  /** Characters of spoken replies per user per UTC day. */
  dailyTtsChars?: number;
  /** Seconds of voice notes transcribed per user per UTC day. */
  dailySttSec?: number;
  /** Estimated cost per user per UTC day, US dollars. */
  dailyCostUsd?: number;
  /** Estimated cost of all users together per UTC day, US dollars (an operator's cap). */
  globalDailyCostUsd?: number;
}

/** Settings of a {@link UsageMeter}. */
export interface UsageConfig {
  /** Unit prices by provider name. */
  prices?: Record<string, UnitPrices>;
  limits?: UsageLimits;
  /** How long daily records are kept, days (default 35). */
  retentionDays?: number;
}

/** Which budget a check is about: spoken replies, transcription, or both. */
export type BudgetKind = 'tts' | 'stt';

const DAY_MS = 86_400_000;
const GLOBAL_KEY = '*';

function zero(): UsageCounters {
  return { ttsChars: 0, sttSec: 0, inputTokens: 0, outputTokens: 0, calls: 0, costUsd: 0 };
}

/** The UTC day of `ms`, `YYYY-MM-DD`. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * Estimated cost of one event in US dollars.
 * @param prices the provider's unit prices (undefined = free)
 */
export function estimateCostUsd(event: UsageEvent, prices: UnitPrices | undefined): number {
  if (!prices) return 0;
  return (
    ((event.ttsChars ?? 0) / 1000) * (prices.ttsUsdPer1kChars ?? 0) +
    ((event.sttSec ?? 0) / 60) * (prices.sttUsdPerMinute ?? 0) +
    ((event.inputTokens ?? 0) / 1e6) * (prices.inputUsdPer1MTokens ?? 0) +
    ((event.outputTokens ?? 0) / 1e6) * (prices.outputUsdPer1MTokens ?? 0)
  );
}

function add(into: UsageCounters, event: UsageEvent, costUsd: number): void {
  into.ttsChars += Math.max(0, event.ttsChars ?? 0);
  into.sttSec += Math.max(0, event.sttSec ?? 0);
  into.inputTokens += Math.max(0, event.inputTokens ?? 0);
  into.outputTokens += Math.max(0, event.outputTokens ?? 0);
  into.calls += 1;
  into.costUsd += costUsd;
}

/** A daily record as stored while identities are merged (see {@link UsageMeter.moveAll}). */
interface MergeableUsage extends DailyUsage {
  /** Set on a source record about to be folded into another person's. */
  mergeId?: string;
  /** Merge ids of the source records already folded into this one. */
  mergedIds?: string[];
}

function sumCounters(a: UsageCounters, b: UsageCounters): UsageCounters {
  return {
    ttsChars: a.ttsChars + b.ttsChars,
    sttSec: a.sttSec + b.sttSec,
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    calls: a.calls + b.calls,
    costUsd: a.costUsd + b.costUsd,
  };
}

function formatDuration(ms: number): string {
  const totalMin = Math.max(1, Math.ceil(ms / 60_000));
  const h = Math.floor(totalMin / 60);
  const m = totalMin % 60;
  return h > 0 ? `${h} h ${m} min` : `${m} min`;
}

/**
 * Counts usage and enforces daily budgets.
 *
 * @example
 *   const meter = new UsageMeter(store.kv, { prices: { elevenlabs: { ttsUsdPer1kChars: 0.05 } }, limits: { dailyTtsChars: 5000 } });
 *   await meter.checkBudget('telegram:42', ['tts']);        // throws UserInputError BUDGET_EXCEEDED when reached
 *   await meter.record('telegram:42', { provider: 'elevenlabs', ttsChars: 180 });
 */
export class UsageMeter {
  private readonly prices: Record<string, UnitPrices>;
  private readonly limits: UsageLimits;
  private readonly ttlMs: number;
  private readonly retentionDays: number;

  constructor(
    private readonly kv: UsageKeyValueStore,
    config: UsageConfig = {},
    private readonly now: () => number = Date.now,
  ) {
    this.prices = config.prices ?? {};
    this.limits = config.limits ?? {};
    this.retentionDays = config.retentionDays ?? 35;
    this.ttlMs = this.retentionDays * DAY_MS;
  }

  /**
   * Folds every retained daily record of `source` into `target`'s (two identities linked into one
   * person, `docs/identity.md`), then deletes the source's. Idempotent: the source record is first
   * stamped with a random merge id, and the target remembers the ids it has added, so a re-run
   * after a crash between writing the target and deleting the source adds nothing twice.
   * @returns how many days were folded in
   * @throws Error when the key-value store has no `updateMany`
   */
  async moveAll(source: string, target: string): Promise<number> {
    const kv = this.kv;
    if (!kv.updateMany) throw new Error('moving usage needs a key-value store with updateMany');
    if (source === target) return 0;
    const today = this.now();
    let moved = 0;
    for (let i = 0; i <= this.retentionDays; i++) {
      const day = utcDay(today - i * DAY_MS);
      const sourceKey = this.key(source, day);
      const targetKey = this.key(target, day);
      if ((await kv.get<MergeableUsage>(sourceKey)) === undefined) continue;
      const mergeId = randomBytes(8).toString('hex');
      await kv.updateMany<MergeableUsage>([sourceKey], ([s]) => [s && !s.mergeId ? { ...s, mergeId } : s], this.ttlMs);
      const [written] = await kv.updateMany<MergeableUsage>(
        [targetKey, sourceKey],
        ([t, s]) => {
          if (!s?.mergeId) return [t, s];
          const into: MergeableUsage = t ?? { userKey: target, day, total: zero(), byProvider: {} };
          if (into.mergedIds?.includes(s.mergeId)) return [into, undefined];
          const next: MergeableUsage = { ...into, total: sumCounters(into.total, s.total), byProvider: { ...into.byProvider }, mergedIds: [...(into.mergedIds ?? []), s.mergeId] };
          for (const [provider, counters] of Object.entries(s.byProvider)) next.byProvider[provider] = sumCounters(next.byProvider[provider] ?? zero(), counters);
          return [next, undefined];
        },
        this.ttlMs,
      );
      if (written) moved++;
    }
    return moved;
  }

  /** The configured limits. */
  get budget(): Readonly<UsageLimits> {
    return this.limits;
  }

  /**
   * Adds one provider call's consumption to the user's and the global record of today (UTC).
   * @returns the user's updated usage of today
   */
  async record(userKey: string, event: UsageEvent): Promise<DailyUsage> {
    const day = utcDay(this.now());
    const costUsd = estimateCostUsd(event, this.prices[event.provider]);
    const [user] = await Promise.all([this.update(userKey, day, event, costUsd), this.update(GLOBAL_KEY, day, event, costUsd)]);
    return user;
  }

  /** The user's usage of today (UTC); zeros when nothing was recorded. */
  async today(userKey: string): Promise<DailyUsage> {
    return this.read(userKey, utcDay(this.now()));
  }

  /** The user's usage of a given UTC day (`YYYY-MM-DD`). */
  async day(userKey: string, day: string): Promise<DailyUsage> {
    return this.read(userKey, day);
  }

  /**
   * What is left of today's budget; undefined fields are unlimited.
   */
  async remaining(userKey: string): Promise<{ ttsChars?: number; sttSec?: number; costUsd?: number }> {
    const { total } = await this.today(userKey);
    const left = (limit: number | undefined, used: number): number | undefined => (limit === undefined ? undefined : Math.max(0, limit - used));
    return {
      ttsChars: left(this.limits.dailyTtsChars, total.ttsChars),
      sttSec: left(this.limits.dailySttSec, total.sttSec),
      costUsd: left(this.limits.dailyCostUsd, total.costUsd),
    };
  }

  /**
   * Refuses work when a daily limit is already reached. The call that crosses a limit is
   * allowed; the next one is refused, so a reply is never cut in half.
   * @param kinds which budgets the coming work uses (`tts` for a spoken reply, `stt` for a voice
   *   note); the cost limits always apply
   * @throws UserInputError `BUDGET_EXCEEDED` with a message saying what ran out and when it resets
   */
  async checkBudget(userKey: string, kinds: readonly BudgetKind[] = ['tts', 'stt']): Promise<void> {
    const nowMs = this.now();
    const day = utcDay(nowMs);
    const resetIn = formatDuration(Date.parse(`${day}T00:00:00Z`) + DAY_MS - nowMs);
    const { total } = await this.read(userKey, day);
    const { dailyTtsChars, dailySttSec, dailyCostUsd, globalDailyCostUsd } = this.limits;
    const refuse = (what: string, limit: string, hint: string, details: Record<string, unknown>): never => {
      throw new UserInputError('BUDGET_EXCEEDED', `You have used today's ${what} (${limit}). It resets at midnight UTC, in ${resetIn}. ${hint}`, {
        userKey,
        day,
        ...details,
      });
    };
    if (kinds.includes('tts') && dailyTtsChars !== undefined && total.ttsChars >= dailyTtsChars) {
      refuse('allowance of spoken replies', `${dailyTtsChars.toLocaleString('en-US')} characters`, 'Until then I can answer in text.', { ttsChars: total.ttsChars, dailyTtsChars });
    }
    if (kinds.includes('stt') && dailySttSec !== undefined && total.sttSec >= dailySttSec) {
      refuse('allowance of voice notes', `${Math.round(dailySttSec / 60)} min of audio`, 'Until then please type your messages.', { sttSec: total.sttSec, dailySttSec });
    }
    if (dailyCostUsd !== undefined && total.costUsd >= dailyCostUsd) {
      refuse('usage allowance', `about $${dailyCostUsd.toFixed(2)}`, 'Please come back tomorrow.', { costUsd: total.costUsd, dailyCostUsd });
    }
    if (globalDailyCostUsd !== undefined) {
      const everyone = await this.read(GLOBAL_KEY, day);
      if (everyone.total.costUsd >= globalDailyCostUsd) {
        throw new UserInputError('BUDGET_EXCEEDED', `The twin has reached its daily usage limit for everyone. It resets at midnight UTC, in ${resetIn}. Please come back then.`, {
          day,
          globalCostUsd: everyone.total.costUsd,
          globalDailyCostUsd,
        });
      }
    }
  }

  private key(userKey: string, day: string): string {
    return `usage:${day}:${userKey}`;
  }

  private async read(userKey: string, day: string): Promise<DailyUsage> {
    const stored = await this.kv.get<DailyUsage>(this.key(userKey, day));
    return stored ?? { userKey, day, total: zero(), byProvider: {} };
  }

  /** Adds the event to the day's record in one atomic read-modify-write (across processes on Redis). */
  private update(userKey: string, day: string, event: UsageEvent, costUsd: number): Promise<DailyUsage> {
    return this.kv.update<DailyUsage>(
      this.key(userKey, day),
      (stored) => {
        const usage = stored ?? { userKey, day, total: zero(), byProvider: {} };
        add(usage.total, event, costUsd);
        add((usage.byProvider[event.provider] ??= zero()), event, costUsd);
        return usage;
      },
      this.ttlMs,
    );
  }

}
