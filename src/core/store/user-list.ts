/** A per-user JSON list (`<name>:<userKey>`) with serialised read-modify-write, shared by samples, history and memories. */
import type { Lock } from './keyed-lock.js';
import { checkUserKey, type Records } from './records.js';
import type { UserKey } from './types.js';

/** A per-user JSON list with serialised read-modify-write. */
export class UserList<T> {
  constructor(
    private readonly records: Records,
    private readonly lock: Lock,
    private readonly name: string,
  ) {}

  read(key: UserKey): Promise<T[]> {
    return this.records.get<T[]>(`${this.name}:${key}`).then((list) => list ?? []);
  }

  /** Applies `change` to the current list under the lock; an empty result deletes the key. */
  update<R>(key: UserKey, change: (list: T[]) => { next: T[]; result: R; changed?: boolean }): Promise<R> {
    checkUserKey(key);
    const recordKey = `${this.name}:${key}`;
    return this.lock.run(recordKey, async () => {
      const current = (await this.records.get<T[]>(recordKey)) ?? [];
      const { next, result, changed = true } = change(current);
      if (!changed) return result;
      if (next.length === 0) await this.records.delete(recordKey);
      else await this.records.set(recordKey, next);
      return result;
    });
  }

  clear(key: UserKey): Promise<void> {
    const recordKey = `${this.name}:${key}`;
    return this.lock.run(recordKey, () => this.records.delete(recordKey));
  }
}
