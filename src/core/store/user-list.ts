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

  /**
   * Moves `source`'s list into `target`'s while holding both lists' locks (taken in sorted key
   * order, so two opposite moves never deadlock): `merge` gets the target's and the source's items
   * and returns the target's new list; the target is written first, then the source deleted. A
   * crash between the two leaves both, and a re-run must not add the items twice: `merge` skips
   * items already in the target.
   * @returns what `merge` reports (e.g. how many items were added)
   * @throws TypeError when source and target are the same key
   */
  move<R>(source: UserKey, target: UserKey, merge: (target: T[], source: T[]) => { next: T[]; result: R }): Promise<R> {
    checkUserKey(source);
    checkUserKey(target);
    if (source === target) throw new TypeError('Cannot move a list into itself');
    const sourceKey = `${this.name}:${source}`;
    const targetKey = `${this.name}:${target}`;
    const [first, second] = [sourceKey, targetKey].sort() as [string, string];
    return this.lock.run(first, () =>
      this.lock.run(second, async () => {
        const from = await this.records.get<T[]>(sourceKey);
        if (!from || from.length === 0) return merge((await this.records.get<T[]>(targetKey)) ?? [], []).result;
        const { next, result } = merge((await this.records.get<T[]>(targetKey)) ?? [], from);
        if (next.length === 0) await this.records.delete(targetKey);
        else await this.records.set(targetKey, next);
        await this.records.delete(sourceKey);
        return result;
      }),
    );
  }

  clear(key: UserKey): Promise<void> {
    const recordKey = `${this.name}:${key}`;
    return this.lock.run(recordKey, () => this.records.delete(recordKey));
  }
}
