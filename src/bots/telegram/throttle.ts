/**
 * Outbound flood control for the Telegram Bot API, as a grammY API transformer.
 *
 * Telegram's documented limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
 * about one message per second in a single chat, at most 20 messages per minute in a group, and
 * about 30 messages per second overall. The transformer spaces message-producing calls to stay under
 * them; `@grammyjs/auto-retry` still handles any 429 `retry_after` the server answers with.
 *
 * Why not `@grammyjs/transformer-throttler`: its own documentation now recommends auto-retry instead,
 * it is built on Bottleneck (unreleased since 2019), and it queues every API call — `getUpdates`,
 * `getFile`, `sendChatAction`, `answerCallbackQuery` — behind the message limits, which delays the
 * calls that must stay quick. This queue only touches the calls that send or edit messages.
 */
import type { Transformer } from 'grammy';
import { beforeDispatch } from '../../core/outbox.js';

/** Methods that put a message in a chat (or change one) and therefore count against the limits. */
export const THROTTLED_METHODS: ReadonlySet<string> = new Set([
  'sendMessage',
  'sendVoice',
  'sendAudio',
  'sendDocument',
  'sendPhoto',
  'sendVideo',
  'sendVideoNote',
  'sendAnimation',
  'sendSticker',
  'sendMediaGroup',
  'sendLocation',
  'sendContact',
  'sendPoll',
  'copyMessage',
  'forwardMessage',
  'editMessageText',
  'editMessageCaption',
  'editMessageReplyMarkup',
]);

/** Limits of the throttle, all in milliseconds or messages per second. */
export interface SendThrottleOptions {
  /** Minimum gap between two messages to one private chat (positive chat id), ms. Default 1000. */
  privateChatIntervalMs?: number;
  /** Minimum gap between two messages to one group or channel (negative chat id), ms. Default 3000 (20/min). */
  groupChatIntervalMs?: number;
  /** Messages per second across all chats. Default 30. */
  globalPerSecond?: number;
}

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((resolve) => setTimeout(resolve, ms)) : Promise.resolve());

/**
 * Per-chat and global pacing of outbound messages. Calls for one chat run in order, each starting at
 * least `…IntervalMs` after the previous one for that chat started; across chats, starts are spaced by
 * `1000 / globalPerSecond` ms so no one-second window holds more than `globalPerSecond` of them.
 */
export class SendThrottle {
  private readonly privateGapMs: number;
  private readonly groupGapMs: number;
  private readonly globalGapMs: number;
  /** Tail of each chat's queue. */
  private readonly chains = new Map<string, Promise<void>>();
  /** When each chat last started a throttled call, ms since the epoch. */
  private readonly lastStartMs = new Map<string, number>();
  /** Earliest start of the next throttled call in any chat, ms since the epoch. */
  private nextGlobalMs = 0;

  constructor(options: SendThrottleOptions = {}) {
    this.privateGapMs = options.privateChatIntervalMs ?? 1000;
    this.groupGapMs = options.groupChatIntervalMs ?? 3000;
    this.globalGapMs = 1000 / (options.globalPerSecond ?? 30);
  }

  /**
   * Runs `call` when the chat's and the global pacing allow. The call's own duration does not hold
   * the chat's queue beyond its start, but calls of one chat start in submission order.
   */
  async run<T>(chatId: string, call: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(chatId) ?? Promise.resolve();
    const turn = previous.then(() => this.waitForSlot(chatId));
    const tail = turn.catch(() => undefined);
    this.chains.set(chatId, tail);
    void tail.then(() => {
      if (this.chains.get(chatId) === tail) this.chains.delete(chatId);
    });
    await turn;
    return call();
  }

  /** Number of chats with a queued or recently started call (for tests and metrics). */
  get trackedChats(): number {
    return this.lastStartMs.size;
  }

  private async waitForSlot(chatId: string): Promise<void> {
    const gapMs = chatId.startsWith('-') ? this.groupGapMs : this.privateGapMs;
    const last = this.lastStartMs.get(chatId);
    if (last !== undefined) await sleep(last + gapMs - Date.now());
    const now = Date.now();
    const at = Math.max(now, this.nextGlobalMs);
    this.nextGlobalMs = at + this.globalGapMs;
    await sleep(at - now);
    const startedMs = Date.now();
    this.lastStartMs.set(chatId, startedMs);
    // Forget the chat once its gap has passed, so the map holds only active chats.
    setTimeout(() => {
      if (this.lastStartMs.get(chatId) === startedMs) this.lastStartMs.delete(chatId);
    }, gapMs).unref();
  }
}

/**
 * A grammY API transformer that paces the methods in {@link THROTTLED_METHODS} through a
 * {@link SendThrottle}; other methods pass straight through. Install it before auto-retry
 * (`bot.api.config.use(throttle, autoRetry())`) so each retry is paced too.
 */
export function throttleTransformer(throttle: SendThrottle): Transformer {
  return (prev, method, payload, signal) => {
    const chatId = (payload as { chat_id?: unknown } | undefined)?.chat_id;
    if (!THROTTLED_METHODS.has(method) || (typeof chatId !== 'number' && typeof chatId !== 'string')) {
      return prev(method, payload, signal);
    }
    // Once the chat's turn has come, the outbox records the part, then the request leaves.
    return throttle.run(String(chatId), async () => {
      await beforeDispatch();
      return prev(method, payload, signal);
    });
  };
}
