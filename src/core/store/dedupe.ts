/** The dedupe repository: `dedupe:<messageId>` claims with a TTL (one atomic `SET NX PX` on Redis). */
import type KeyvRedis from '@keyv/redis';
import type { RedisClientType } from '@keyv/redis';
import type { Lock } from './keyed-lock.js';
import type { Records } from './records.js';
import type { DedupeRepository } from './types.js';

/** Default time a dedupe claim is remembered: 7 days, in ms. */
export const DEFAULT_DEDUPE_TTL_MS = 7 * 24 * 60 * 60 * 1000;

export class KeyvDedupeRepository implements DedupeRepository {
  constructor(
    private readonly records: Records,
    private readonly lock: Lock,
    private readonly redis: KeyvRedis<string> | undefined,
  ) {}

  /**
   * Claims an inbound message id.
   * @param ttlMs how long the claim is remembered, in ms (default 7 days)
   * @returns true the first time an id is claimed within its TTL, false afterwards
   * @throws RangeError when `ttlMs` is not a positive number
   */
  async claim(messageId: string, ttlMs: number = DEFAULT_DEDUPE_TTL_MS): Promise<boolean> {
    if (typeof messageId !== 'string' || messageId.length === 0) throw new TypeError('A message id must be a non-empty string');
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`ttlMs must be a positive number of milliseconds (got ${String(ttlMs)})`);
    const key = `dedupe:${messageId}`;
    const ttl = Math.ceil(ttlMs);
    const redis = this.redis;
    if (redis) {
      // One atomic SET NX PX; the value is in keyv's stored form so keyv reads it too.
      const value = JSON.stringify({ value: true, expires: Date.now() + ttl });
      const client = (await redis.getClient()) as RedisClientType;
      const reply = await client.set(this.records.key(key), value, { NX: true, PX: ttl });
      return reply === 'OK';
    }
    return this.lock.run(key, async () => {
      if ((await this.records.get<boolean>(key)) !== undefined) return false;
      await this.records.set(key, true, ttl);
      return true;
    });
  }
}
