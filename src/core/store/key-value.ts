/** The generic key-value repository: `kv:<key>`, any JSON value with an optional TTL, an atomic `update` and `take`. */
import type { Lock } from './keyed-lock.js';
import type { Records } from './records.js';
import type { KeyValueRepository } from './types.js';

export class KeyvKeyValueRepository implements KeyValueRepository {
  constructor(
    private readonly records: Records,
    private readonly lock: Lock,
  ) {}

  /**
   * Atomic read-modify-write: `fn` gets the current value (or undefined) and returns the new one,
   * under the key's lock (across processes on Redis).
   * @returns the value stored
   */
  update<T>(key: string, fn: (current: T | undefined) => T, ttlMs?: number): Promise<T> {
    return this.lock.run(`kv:${key}`, async () => {
      const next = fn(await this.get<T>(key));
      await this.set(key, next, ttlMs);
      return next;
    });
  }

  /** Atomic get-and-delete under the key's lock; see {@link KeyValueRepository.take}. */
  take<T>(key: string): Promise<T | undefined> {
    return this.lock.run(`kv:${key}`, async () => {
      const value = await this.get<T>(key);
      if (value !== undefined) await this.delete(key);
      return value;
    });
  }

  /**
   * Atomic read-modify-write of several keys (see {@link KeyValueRepository.updateMany}).
   * @throws TypeError when a key is repeated
   */
  updateMany<T>(keys: readonly string[], fn: (current: (T | undefined)[]) => (T | undefined)[], ttlMs?: number): Promise<(T | undefined)[]> {
    if (new Set(keys).size !== keys.length) throw new TypeError('updateMany needs distinct keys');
    const sorted = [...keys].sort();
    const run = async (i: number): Promise<(T | undefined)[]> => {
      if (i < sorted.length) return this.lock.run(`kv:${sorted[i]!}`, () => run(i + 1));
      const current = await Promise.all(keys.map((k) => this.get<T>(k)));
      const next = fn(current);
      if (next.length !== keys.length) throw new TypeError('updateMany: fn must return one value per key');
      for (const [j, key] of keys.entries()) {
        const value = next[j];
        if (value === undefined) {
          if (current[j] !== undefined) await this.delete(key);
        } else await this.set(key, value, ttlMs);
      }
      return next;
    };
    return run(0);
  }

  get<T>(key: string): Promise<T | undefined> {
    return this.records.get<T>(`kv:${key}`);
  }

  /**
   * Stores a JSON-serialisable value.
   * @param ttlMs expiry in ms; omitted means no expiry
   * @throws TypeError for `undefined` or binary values (audio belongs in the blob store);
   *   RangeError when `ttlMs` is not a positive number
   */
  async set<T>(key: string, value: T, ttlMs?: number): Promise<void> {
    if (value === undefined) throw new TypeError(`kv value for "${key}" is undefined; use delete() instead`);
    if (Buffer.isBuffer(value) || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
      throw new TypeError(`kv value for "${key}" is binary; store audio in the blob store and keep its blob key here`);
    }
    if (ttlMs !== undefined && (!Number.isFinite(ttlMs) || ttlMs <= 0)) {
      throw new RangeError(`ttlMs must be a positive number of milliseconds (got ${String(ttlMs)})`);
    }
    await this.records.set(`kv:${key}`, value, ttlMs === undefined ? undefined : Math.ceil(ttlMs));
  }

  delete(key: string): Promise<void> {
    return this.records.delete(`kv:${key}`);
  }
}
