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
