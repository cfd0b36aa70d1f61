/**
 * Where a broadcast keeps its recipients and their states, in the store's key-value repository
 * (keys below are under the store's `kv:` prefix):
 *
 * | key                                      | value                                          |
 * |------------------------------------------|------------------------------------------------|
 * | `broadcast:<id>:<channel>:a:<chunk>`     | {@link AudienceEntry}[], ≤ {@link AUDIENCE_CHUNK} recipients, written once |
 * | `broadcast:<id>:<channel>:r:<index>`     | {@link RecipientRecord} of one recipient (none = pending) |
 * | `broadcast:<id>:cancel`                  | `true` once a cancel was asked (by any process) |
 * | `broadcast:recent`                       | ids of recent broadcasts, newest last          |
 *
 * The job record (`job:<id>`) holds the request and each lane's {@link LaneCheckpoint}.
 *
 * Why this layout: a send changes one recipient, so it writes one record of about 80 bytes (twice:
 * `sending` before the call, the outcome after), whatever the audience size; nothing rewrites a
 * 10,000-entry document per send. The audience snapshot is immutable, written once in chunks. The
 * checkpoint (written about once a second, not per send) bounds what a restart has to read: the
 * few recipients in flight at the checkpoint and those dispatched after it — a few hundred keys,
 * not the whole audience. Every backend (SQLite, Redis, memory) stores these keys the same way.
 */
import type { KeyValueRepository } from '../store/types.js';
import type { AudienceEntry, BroadcastChannel, RecipientRecord } from './types.js';

/** Recipients per audience chunk. */
export const AUDIENCE_CHUNK = 500;
/** How long a broadcast's recipient records are kept after they are written: 30 days, ms. */
export const DEFAULT_RETENTION_MS = 30 * 24 * 3600 * 1000;
/** Broadcast ids kept in `broadcast:recent`. */
const RECENT_IDS = 50;

/** Reads and writes one broadcast's audience and recipient records. */
export class BroadcastJournal {
  private readonly chunkCache = new Map<string, Promise<AudienceEntry[]>>();

  constructor(
    private readonly kv: KeyValueRepository,
    readonly jobId: string,
    private readonly retentionMs: number = DEFAULT_RETENTION_MS,
  ) {}

  private audienceKey(channel: BroadcastChannel, chunk: number): string {
    return `broadcast:${this.jobId}:${channel}:a:${chunk}`;
  }

  private recordKey(channel: BroadcastChannel, index: number): string {
    return `broadcast:${this.jobId}:${channel}:r:${index}`;
  }

  /**
   * Writes a lane's snapshot in chunks.
   * @returns the number of chunks written
   */
  async writeAudience(channel: BroadcastChannel, entries: readonly AudienceEntry[]): Promise<number> {
    let chunks = 0;
    for (let i = 0; i < entries.length; i += AUDIENCE_CHUNK) {
      await this.kv.set(this.audienceKey(channel, chunks++), entries.slice(i, i + AUDIENCE_CHUNK), this.retentionMs);
    }
    return chunks;
  }

  /**
   * The snapshot entry at `index` of a lane. Chunks are read once and the two most recent kept.
   * @throws Error when the chunk is missing (expired or deleted)
   */
  async entry(channel: BroadcastChannel, index: number): Promise<AudienceEntry> {
    const chunk = Math.floor(index / AUDIENCE_CHUNK);
    const key = this.audienceKey(channel, chunk);
    let pending = this.chunkCache.get(key);
    if (!pending) {
      pending = this.kv.get<AudienceEntry[]>(key).then((list) => {
        if (!list) throw new Error(`broadcast ${this.jobId}: audience chunk ${channel}:${chunk} is missing`);
        return list;
      });
      pending.catch(() => this.chunkCache.delete(key));
      this.chunkCache.set(key, pending);
      while (this.chunkCache.size > 2) this.chunkCache.delete(this.chunkCache.keys().next().value!);
    }
    const list = await pending;
    const entry = list[index - chunk * AUDIENCE_CHUNK];
    if (!entry) throw new Error(`broadcast ${this.jobId}: no recipient ${channel}:${index}`);
    return entry;
  }

  /** The recipient's record, or undefined while pending. */
  record(channel: BroadcastChannel, index: number): Promise<RecipientRecord | undefined> {
    return this.kv.get<RecipientRecord>(this.recordKey(channel, index));
  }

  async writeRecord(channel: BroadcastChannel, index: number, record: RecipientRecord): Promise<void> {
    await this.kv.set(this.recordKey(channel, index), record, this.retentionMs);
  }

  /** Takes back a `sending` record whose send never started (the recipient is pending again). */
  async deleteRecord(channel: BroadcastChannel, index: number): Promise<void> {
    await this.kv.delete(this.recordKey(channel, index));
  }

  /** Marks the broadcast as cancelled for whichever process runs it. */
  async requestCancel(): Promise<void> {
    await this.kv.set(`broadcast:${this.jobId}:cancel`, true, this.retentionMs);
  }

  async cancelRequested(): Promise<boolean> {
    return (await this.kv.get<boolean>(`broadcast:${this.jobId}:cancel`)) === true;
  }

  /** Adds a broadcast id to the list of recent ones (newest last). */
  static async remember(kv: KeyValueRepository, jobId: string): Promise<void> {
    const ids = (await kv.get<string[]>('broadcast:recent')) ?? [];
    await kv.set('broadcast:recent', [...ids.filter((id) => id !== jobId), jobId].slice(-RECENT_IDS));
  }

  /** Ids of recent broadcasts, newest last. */
  static async recent(kv: KeyValueRepository): Promise<string[]> {
    return (await kv.get<string[]>('broadcast:recent')) ?? [];
  }
}
