/**
 * Ordering and concurrency for turns: one user's messages run strictly in order, different users
 * run concurrently up to a bound.
 */
import pLimit, { type LimitFunction } from 'p-limit';

/** Runs tasks in order per key, with at most `concurrency` keys active at once. */
export class KeyedSerialQueue {
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly limit: LimitFunction;

  constructor(concurrency: number) {
    this.limit = pLimit(concurrency);
  }

  /** Queues `task` after every earlier task of `key`; resolves or rejects with the task's outcome. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous.then(
      () => this.limit(task),
      () => this.limit(task),
    );
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }

  /** Keys with queued or running work. */
  get activeKeys(): number {
    return this.tails.size;
  }
}
