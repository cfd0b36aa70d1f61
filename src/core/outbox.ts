/**
 * The outbox: every message a job sends is recorded under (inbound message id, part index) before
 * it is sent, so a job that runs again after a crash or a retry skips the parts already sent and
 * sends nothing twice (at most once per part; a part cut off mid-send by a crash is not repeated).
 *
 * The record is written as late as possible: a target that sets `reportsDispatch` calls
 * {@link beforeDispatch} right before its first platform request (after any send throttle has
 * waited), so a crash can only lose a part in the few milliseconds between that write and the
 * request; other targets get the record before `reply` is called.
 *
 * Records live in the store's key-value repository (`outbox:<message id>:<part>`), with the
 * deduplication window as TTL, so any process running the job sees them.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from './log.js';
import type { KeyValueRepository } from './store/types.js';
import type { ChatActivity, OutboundReply, ReplyTarget } from './types.js';

/** How long outbox records are kept, ms (the same 7 days as finished jobs). */
export const OUTBOX_TTL_MS = 7 * 24 * 3600 * 1000;

/** One recorded part. */
export interface OutboxRecord {
  /** `sending` is written before the platform call, `sent` after it. */
  state: 'sending' | 'sent';
  kind: OutboundReply['kind'] | 'status';
  atMs: number;
}

const dispatch = new AsyncLocalStorage<() => Promise<void>>();

/**
 * Called by a platform adapter right before the HTTP request that delivers a reply (inside the
 * send throttle): writes the outbox record of the part being sent, once. Outside an outbox send
 * it does nothing.
 */
export async function beforeDispatch(): Promise<void> {
  await dispatch.getStore()?.();
}

/**
 * A {@link ReplyTarget} that records each part in the outbox before delegating to `base`.
 * Create one per job run; parts are numbered in the order the job sends them, which is the same
 * on every run of the same job.
 */
export class OutboxTarget implements ReplyTarget {
  #part = 0;
  /** Parts skipped because an earlier run sent them (for tests and logs). */
  skipped = 0;

  constructor(
    private readonly kv: KeyValueRepository,
    private readonly messageId: string,
    private readonly base: ReplyTarget,
    private readonly log: Logger,
  ) {}

  /**
   * The base target's live stream, passed through unrecorded: streamed chunks exist only for the
   * live connection that asked for them; the answer that closes them is recorded as a part.
   */
  get stream(): ReplyTarget['stream'] {
    return this.base.stream;
  }

  async reply(reply: OutboundReply): Promise<void> {
    await this.#once(reply.kind, () => this.base.reply(reply));
  }

  async activity(kind: ChatActivity): Promise<void> {
    await this.base.activity(kind);
  }

  async status(text: string): Promise<(text: string) => Promise<void>> {
    let edit: ((text: string) => Promise<void>) | undefined;
    const sent = await this.#once('status', async () => {
      edit = await this.base.status(text);
    });
    if (sent && edit) return edit;
    // The status message was sent by an earlier run, whose edit handle is gone: later progress
    // arrives as new messages, each recorded as its own part.
    return (next: string) => this.reply({ kind: 'status', text: next });
  }

  /** Runs `send` unless this part was recorded before; true when it ran now. */
  async #once(kind: OutboxRecord['kind'], send: () => Promise<void>): Promise<boolean> {
    const key = `outbox:${this.messageId}:${this.#part++}`;
    const existing = await this.kv.get<OutboxRecord>(key);
    if (existing) {
      this.skipped++;
      this.log.info({ part: this.#part - 1, state: existing.state }, 'reply part already sent by an earlier run; skipped');
      return false;
    }
    let recorded: Promise<void> | undefined;
    const record = (): Promise<void> => (recorded ??= this.kv.set<OutboxRecord>(key, { state: 'sending', kind, atMs: Date.now() }, OUTBOX_TTL_MS));
    if (!this.base.reportsDispatch) await record();
    try {
      await dispatch.run(record, send);
    } catch (err) {
      // The platform refused it: forget the record so a retry of the job may send it.
      await this.kv.delete(key).catch(() => undefined);
      throw err;
    }
    await this.kv.set<OutboxRecord>(key, { state: 'sent', kind, atMs: Date.now() }, OUTBOX_TTL_MS);
    return true;
  }
}
