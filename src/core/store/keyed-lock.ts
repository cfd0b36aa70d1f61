/**
 * Serialises async work per key inside one process: tasks given the same key run one after the
 * other, in call order; tasks with different keys run concurrently. Used for read-modify-write
 * operations on keyv values (history appends, memory and sample lists, indexes) so concurrent
 * calls for the same user never lose a write.
 */
export class KeyedLock {
  /** Tail of the queue per key; removed when the queue drains so idle keys cost nothing. */
  readonly #tails = new Map<string, Promise<unknown>>();

  /**
   * Runs `task` after every earlier task with the same `key` has settled.
   * A failing task rejects its own promise only; later tasks still run.
   * @returns what `task` returns
   */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Number of keys with queued or running work (for tests and diagnostics). */
  get activeKeys(): number {
    return this.#tails.size;
  }
}

/** Mutual exclusion per key: what the repositories need for a read-modify-write. */
export interface Lock {
  /** Runs `task` while holding `key`; tasks with the same key never overlap. */
  run<T>(key: string, task: () => Promise<T>): Promise<T>;
}

/** The two Redis calls {@link RedisLeaseLock} needs (node-redis's client has them). */
export interface LeaseClient {
  set(key: string, value: string, options: { NX: true; PX: number }): Promise<string | null>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

/** Deletes the lock only if it still holds our token (https://redis.io/docs/latest/develop/use/patterns/distributed-locks/). */
const RELEASE_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/**
 * A lock that also excludes other processes on the same Redis: inside this process a
 * {@link KeyedLock} orders the tasks; across processes each task holds a lease, one
 * `SET <prefix>lock:<key> <token> NX PX <leaseMs>`, released with a compare-and-delete script.
 * A lease outlives a crashed holder by at most `leaseMs` (default 10 s; the read-modify-writes it
 * guards take milliseconds). Waiting retries every 2 ms, backing off to 50 ms.
 */
export class RedisLeaseLock implements Lock {
  readonly #local = new KeyedLock();

  constructor(
    private readonly client: () => Promise<LeaseClient>,
    private readonly prefix: string,
    private readonly leaseMs = 10_000,
  ) {}

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    return this.#local.run(key, async () => {
      const client = await this.client();
      const lockKey = `${this.prefix}lock:${key}`;
      const token = `${process.pid}:${Math.random().toString(36).slice(2)}`;
      let waitMs = 2;
      while ((await client.set(lockKey, token, { NX: true, PX: this.leaseMs })) !== 'OK') {
        await new Promise((r) => setTimeout(r, waitMs));
        waitMs = Math.min(50, waitMs * 2);
      }
      try {
        return await task();
      } finally {
        await client.eval(RELEASE_SCRIPT, { keys: [lockKey], arguments: [token] }).catch(() => undefined);
      }
    });
  }
}
