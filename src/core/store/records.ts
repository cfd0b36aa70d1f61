/**
 * The store's record layer: keyv access under the namespace prefix with sealed personal values,
 * the gate that `close()` waits on, and the small helpers the repositories share.
 */
import type { Keyv } from 'keyv';
import { isSealed, type RecordCipher } from './record-cipher.js';
import type { UserKey } from './types.js';

const GET_MANY_BATCH = 256;

/**
 * Key families whose values are personal and stored sealed (see `record-cipher.ts`). Indexes
 * (`users:chunk:*`, `jobs:open`, `jobs:user:*`), dedupe claims and `meta:` stay in the clear: they
 * hold ids and are read or written atomically by the backend.
 */
export const SEALED_FAMILIES: readonly string[] = ['user:', 'profile:', 'samples:', 'history:', 'memories:', 'job:', 'kv:'];

/** True when values under `key` (without the namespace) are stored sealed. */
export function isSealedFamily(key: string): boolean {
  return SEALED_FAMILIES.some((family) => key.startsWith(family));
}

/**
 * Keyv access under the namespace prefix. Values of the {@link SEALED_FAMILIES} are sealed with
 * the data key on write and opened on read; a value found in plaintext (written before sealing
 * existed, and not yet migrated) is read as it is.
 */
export class Records {
  constructor(
    readonly keyv: Keyv,
    readonly prefix: string,
    readonly cipher: RecordCipher,
  ) {}

  key(key: string): string {
    return `${this.prefix}${key}`;
  }

  /** @throws RecordIntegrityError when a sealed value fails authentication */
  async get<T>(key: string): Promise<T | undefined> {
    return this.open<T>(key, await this.keyv.get<unknown>(this.key(key)));
  }

  /**
   * Reads many keys, in batches: @keyv/sqlite matches rows to keys with a linear search per key,
   * so one call with thousands of keys would be quadratic.
   */
  async getMany<T>(keys: string[]): Promise<(T | undefined)[]> {
    const out: (T | undefined)[] = [];
    for (let i = 0; i < keys.length; i += GET_MANY_BATCH) {
      const slice = keys.slice(i, i + GET_MANY_BATCH);
      const values = await this.keyv.getMany<unknown>(slice.map((k) => this.key(k)));
      values.forEach((value, j) => out.push(this.open<T>(slice[j]!, value)));
    }
    return out;
  }

  async set(key: string, value: unknown, ttlMs?: number): Promise<void> {
    await this.keyv.set(this.key(key), isSealedFamily(key) ? this.cipher.seal(key, value) : value, ttlMs);
  }

  async delete(key: string): Promise<void> {
    await this.keyv.delete(this.key(key));
  }

  private open<T>(key: string, value: unknown): T | undefined {
    if (value === undefined) return undefined;
    return isSealed(value) ? this.cipher.open<T>(key, value) : (value as T);
  }
}

/**
 * Admits public operations until the store closes, and lets `close()` wait for those already
 * admitted (including work still queued behind a per-key lock).
 */
export class Gate {
  readonly #running = new Set<Promise<unknown>>();
  #closed = false;

  run<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('The store is closed'));
    let promise: Promise<T>;
    try {
      promise = operation();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.#running.add(promise);
    const done = (): void => void this.#running.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /** Stops admitting operations and waits for the admitted ones to settle. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }
}

/** Adds `item` to the list under `key` unless present. Call under the key's lock. */
export async function addToIndex(records: Records, key: string, item: string): Promise<void> {
  const list = (await records.get<string[]>(key)) ?? [];
  if (list.includes(item)) return;
  list.push(item);
  await records.set(key, list);
}

/** Removes `item` from the list under `key`; deletes the key when the list empties. Call under the key's lock. */
export async function removeFromIndex(records: Records, key: string, item: string): Promise<void> {
  const list = await records.get<string[]>(key);
  if (!list?.includes(item)) return;
  const next = list.filter((x) => x !== item);
  if (next.length === 0) await records.delete(key);
  else await records.set(key, next);
}

export function checkUserKey(key: unknown, what = 'user key'): asserts key is UserKey {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError(`A ${what} must be a non-empty string`);
}

/** Wraps every method of `target` so it runs through the gate (refused after close, awaited by close). */
export function gated<T extends object>(target: T, gate: Gate): T {
  return new Proxy(target, {
    get(obj, prop) {
      const value: unknown = Reflect.get(obj, prop, obj);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => gate.run(() => (value as (...a: unknown[]) => Promise<unknown>).apply(obj, args));
    },
  });
}
