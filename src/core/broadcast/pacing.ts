/**
 * Pacing of broadcast sends, per channel: a global spacing between message starts, a minimum gap
 * per chat, a pause when the platform answers with `retry_after`, and a bound on sends in flight.
 *
 * Platform limits (the defaults of {@link DEFAULT_CHANNEL_PACE}):
 * - Telegram: "no more than one message per second" in a chat and "about 30 messages per second"
 *   in bulk (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this);
 *   a 429 carries `parameters.retry_after` in seconds (https://core.telegram.org/bots/api#responseparameters).
 * - Discord: 50 requests per second globally (https://discord.com/developers/docs/topics/rate-limits#global-rate-limit);
 *   a direct message costs up to two requests (open the DM channel, post), and per-route buckets
 *   and 429s are handled by the adapter's REST queue. Discord publishes no limit for DMs to many
 *   users, so the default stays far below: 5 messages per second.
 * - WhatsApp Web: no published limit and bulk messaging is against the terms
 *   (https://www.whatsapp.com/legal/terms-of-service); one message every 1.5 s, one at a time, the
 *   adapter's own default pace.
 *
 * The adapters pace their own calls too (Telegram's flood-control transformer, Discord's REST
 * queue, WhatsApp's send queue). The broadcast paces anyway so it never depends on an adapter for
 * its limits, so its ETA is right, and so it never piles thousands of sends into an adapter's
 * queue. Its spacing is `headroom` (default 3 %) wider than the adapters' so theirs do not add
 * waits of their own, and so up to 30 ms of jitter between our start and the platform's receipt
 * cannot push a one-second window over the limit. For the same reason it warms up: after being
 * idle it starts at half the rate and reaches the full rate over `warmupMs` (default 1 s), while
 * the first calls open connections and run cold code and so take longer, then arrive bunched.
 */
import { setTimeout as sleepMs } from 'node:timers/promises';
import type { Channel } from '../types.js';

/** Pace of one channel. */
export interface ChannelPace {
  /** Messages per second across all chats of the channel. */
  messagesPerSec: number;
  /** Minimum gap between two messages to one chat, ms. */
  perChatIntervalMs: number;
  /** Sends in flight at once (started, not yet answered). */
  maxInFlight: number;
  /**
   * True when the platform carries a voice note's text as its caption (one message, Telegram);
   * false when the adapter sends the text as a second message (Discord voice messages take no
   * content; WhatsApp voice notes take no caption).
   */
  voiceWithCaption: boolean;
}

/** Default pace per channel (see the module comment for the sources). */
export const DEFAULT_CHANNEL_PACE: Readonly<Record<Channel, Readonly<ChannelPace>>> = {
  telegram: { messagesPerSec: 30, perChatIntervalMs: 1000, maxInFlight: 32, voiceWithCaption: true },
  discord: { messagesPerSec: 5, perChatIntervalMs: 1000, maxInFlight: 4, voiceWithCaption: false },
  whatsapp: { messagesPerSec: 1000 / 1500, perChatIntervalMs: 1500, maxInFlight: 1, voiceWithCaption: false },
  console: { messagesPerSec: 100, perChatIntervalMs: 0, maxInFlight: 8, voiceWithCaption: true },
  // The web channel stores replies for the person's next visit: no platform limit to respect.
  web: { messagesPerSec: 100, perChatIntervalMs: 0, maxInFlight: 8, voiceWithCaption: true },
};

/** Default widening of the spacing beyond the limit (3 %). */
export const DEFAULT_HEADROOM = 0.03;
/** Default warm-up after an idle period, ms. */
export const DEFAULT_WARMUP_MS = 1000;
/** A gap between grants this long (ms) counts as idle: the next grant starts a warm-up. */
const IDLE_MS = 2000;
/** Smallest lateness of a timer (ms) treated as a stall of this process. */
const MIN_LATE_WAKE_MS = 5;

/** Time source; tests pass a virtual one. */
export interface BroadcastClock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds.
   * @throws the signal's reason (an AbortError) when `signal` aborts first
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The system clock. */
export const systemClock: BroadcastClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => (ms > 0 ? sleepMs(ms, undefined, signal ? { signal } : undefined) : signal?.aborted ? Promise.reject(signal.reason as Error) : Promise.resolve()),
};

/**
 * Paces message starts on one channel. Starts across all chats are spaced by
 * `1000 / messagesPerSec × (1 + headroom)` ms, so no window of one second holds more than
 * `messagesPerSec` of them; starts in one chat are at least `perChatIntervalMs × (1 + headroom)`
 * apart; after
 * {@link pause} nothing starts before the pause ends. After an idle period (and a pause) the
 * spacing starts doubled and shrinks linearly to its normal value over `warmupMs`. Slots are
 * granted in call order.
 */
export class RateLimiter {
  /** Spacing between two starts on the channel, ms. */
  readonly intervalMs: number;
  /** Spacing between two starts in one chat, ms (the per-chat interval widened by the headroom too). */
  readonly chatIntervalMs: number;
  private nextSlotMs = 0;
  private pausedUntilMs = 0;
  private lastGrantMs = Number.NEGATIVE_INFINITY;
  private warmStartMs = 0;
  private readonly warmupMs: number;
  /**
   * A wake-up this late (ms) moves the slot: half the jitter the headroom absorbs in one second
   * (15 ms at 3 %), so smaller stalls, which the headroom covers, cost nothing.
   */
  private readonly lateWakeMs: number;
  private readonly lastByChat = new Map<string, number>();
  private grants = 0;
  /** Slots moved because the process was stalled while waiting (see {@link acquire}). */
  lateWakes = 0;

  /**
   * @throws RangeError when the pace is not positive and finite or headroom is negative
   */
  constructor(
    readonly pace: Pick<ChannelPace, 'messagesPerSec' | 'perChatIntervalMs'>,
    private readonly options: { headroom?: number; warmupMs?: number; clock?: BroadcastClock } = {},
  ) {
    const headroom = options.headroom ?? DEFAULT_HEADROOM;
    this.warmupMs = options.warmupMs ?? DEFAULT_WARMUP_MS;
    this.lateWakeMs = Math.max(MIN_LATE_WAKE_MS, (headroom * 1000) / 2);
    if (!(this.warmupMs >= 0)) throw new RangeError(`warmupMs must be ≥ 0, got ${this.warmupMs}`);
    if (!(pace.messagesPerSec > 0) || !Number.isFinite(pace.messagesPerSec)) throw new RangeError(`messagesPerSec must be a positive number, got ${pace.messagesPerSec}`);
    if (!(pace.perChatIntervalMs >= 0) || !Number.isFinite(pace.perChatIntervalMs)) throw new RangeError(`perChatIntervalMs must be ≥ 0, got ${pace.perChatIntervalMs}`);
    if (!(headroom >= 0)) throw new RangeError(`headroom must be ≥ 0, got ${headroom}`);
    this.intervalMs = (1000 / pace.messagesPerSec) * (1 + headroom);
    this.chatIntervalMs = pace.perChatIntervalMs * (1 + headroom);
  }

  private get clock(): BroadcastClock {
    return this.options.clock ?? systemClock;
  }

  /** Messages per second this limiter lets through at most once warm. */
  get effectivePerSec(): number {
    return 1000 / this.intervalMs;
  }

  /** End of the current `retry_after` pause, ms since the epoch (0 when none). */
  get pausedUntil(): number {
    return this.pausedUntilMs;
  }

  /**
   * Stops every start on the channel until `untilMs` (a platform's `retry_after`). A later end
   * extends the pause; an earlier one is ignored. Sending resumes with a warm-up.
   */
  pause(untilMs: number): void {
    this.pausedUntilMs = Math.max(this.pausedUntilMs, untilMs);
    this.lastGrantMs = Number.NEGATIVE_INFINITY; // warm up again afterwards
  }

  /**
   * Waits for a slot to send `messages` messages (default 1) to `chatId` and resolves when the
   * first may start; the following ones are accounted as starting one spacing apart (globally and
   * in the chat), as the adapter sends them. When the wait ends much later than asked (15 ms at
   * the default headroom: the process was stalled, so the previous call may have left late as
   * well), the slot moves on by the delay plus one spacing, so the stall cannot bunch two calls.
   * @returns the slot's start, ms since the epoch
   * @throws the abort reason when `signal` aborts while waiting
   */
  async acquire(chatId: string, signal?: AbortSignal, messages = 1): Promise<number> {
    const count = Math.max(1, Math.floor(messages));
    const clock = this.clock;
    for (;;) {
      signal?.throwIfAborted();
      let now = clock.now();
      const last = this.lastByChat.get(chatId);
      const chatReadyMs = last === undefined ? 0 : last + this.chatIntervalMs;
      const notBefore = Math.max(chatReadyMs, this.pausedUntilMs);
      if (notBefore > now) {
        await clock.sleep(Math.ceil(notBefore - now), signal);
        continue;
      }
      // Reserve synchronously (no await since the checks), so concurrent callers see it.
      let slot = Math.max(now, this.nextSlotMs);
      if (slot - this.lastGrantMs >= IDLE_MS) this.warmStartMs = slot;
      const warm = this.warmupMs > 0 ? Math.max(0, 1 - (slot - this.warmStartMs) / this.warmupMs) : 0;
      this.nextSlotMs = slot + this.intervalMs * (1 + warm) * count;
      this.lastGrantMs = slot;
      let lastInChat = slot + this.chatIntervalMs * (count - 1);
      this.lastByChat.set(chatId, lastInChat);
      if (++this.grants % 256 === 0) this.prune(now);
      const waited = now < slot;
      while ((now = clock.now()) < slot) await clock.sleep(Math.ceil(slot - now), signal);
      const lateMs = now - slot;
      if (waited && lateMs > this.lateWakeMs) {
        // The timer fired late, so this process was stalled, and the call granted before may have
        // left late too: keep a full spacing after it by moving this slot (and the next) later.
        const shift = this.intervalMs * count;
        slot += lateMs + shift;
        this.nextSlotMs = Math.max(this.nextSlotMs + lateMs + shift, slot + this.intervalMs * count);
        lastInChat = slot + this.chatIntervalMs * (count - 1);
        this.lastByChat.set(chatId, lastInChat);
        this.lateWakes++;
        while ((now = clock.now()) < slot) await clock.sleep(Math.ceil(slot - now), signal);
      }
      if (this.pausedUntilMs > now) {
        // A pause arrived while waiting: give the slot up and queue again after it.
        if (this.lastByChat.get(chatId) === lastInChat) {
          if (last === undefined) this.lastByChat.delete(chatId);
          else this.lastByChat.set(chatId, last);
        }
        continue;
      }
      return slot;
    }
  }

  /** Forgets chats whose gap has passed, so the map only holds recently used chats. */
  private prune(now: number): void {
    for (const [chatId, last] of this.lastByChat) {
      if (last + this.chatIntervalMs <= now) this.lastByChat.delete(chatId);
    }
  }

  /** Chats currently remembered (for tests and metrics). */
  get trackedChats(): number {
    return this.lastByChat.size;
  }
}

/**
 * Milliseconds a platform asked us to wait, from a send error, or undefined when the error is not
 * a rate limit: an error carrying `retryAfterSec` (our convention, see ProviderError), or a Bot API
 * error with `error_code` 429 and `parameters.retry_after` in seconds
 * (https://core.telegram.org/bots/api#responseparameters), as grammY's GrammyError carries it once
 * the adapter's own retries gave up.
 */
export function retryAfterMs(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { retryAfterSec?: unknown; error_code?: unknown; parameters?: { retry_after?: unknown } };
  if (typeof e.retryAfterSec === 'number' && e.retryAfterSec >= 0) return e.retryAfterSec * 1000;
  if (e.error_code === 429) {
    const sec = e.parameters?.retry_after;
    return typeof sec === 'number' && sec >= 0 ? sec * 1000 : 1000;
  }
  return undefined;
}
