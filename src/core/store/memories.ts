/** The memories repository: `memories:<userKey>`. */
import { randomBytes } from 'node:crypto';
import type { MemoryRecord } from '../providers.js';
import type { Lock } from './keyed-lock.js';
import type { Records } from './records.js';
import { UserList } from './user-list.js';
import type { MemoryRepository, UserKey } from './types.js';

export class KeyvMemoryRepository implements MemoryRepository {
  readonly #list: UserList<MemoryRecord>;
  constructor(records: Records, lock: Lock) {
    this.#list = new UserList(records, lock, 'memories');
  }

  /** The user's memories in the order they were added. */
  list(key: UserKey): Promise<MemoryRecord[]> {
    return this.#list.read(key);
  }

  /** Appends the memory; a memory with the same id replaces the earlier one in place. */
  async add(key: UserKey, memory: MemoryRecord): Promise<void> {
    await this.#list.update(key, (list) => {
      const at = list.findIndex((m) => m.id === memory.id);
      if (at >= 0) list[at] = memory;
      else list.push(memory);
      return { next: list, result: undefined };
    });
  }

  /** See {@link MemoryRepository.addFromMessage}: one atomic update of the user's list. */
  addFromMessage(key: UserKey, messageId: string, memories: readonly MemoryRecord[]): Promise<MemoryRecord[]> {
    return this.#list.update(key, (list) => {
      if (memories.length === 0 || list.some((m) => m.sourceMessageId === messageId)) return { next: list, result: [], changed: false };
      const ids = new Set(list.map((m) => m.id));
      const stored: MemoryRecord[] = [];
      for (const memory of memories) {
        let id = memory.id;
        while (ids.has(id)) id = randomBytes(2).toString('hex');
        ids.add(id);
        stored.push({ ...memory, id, sourceMessageId: messageId });
      }
      return { next: [...list, ...stored], result: stored };
    });
  }

  remove(key: UserKey, id: string): Promise<boolean> {
    return this.#list.update(key, (list) => {
      const next = list.filter((m) => m.id !== id);
      const removed = next.length !== list.length;
      return { next, result: removed, changed: removed };
    });
  }

  setVectors(key: UserKey, vectors: ReadonlyMap<string, { vector: string; model: string }>): Promise<number> {
    return this.#list.update(key, (list) => {
      let updated = 0;
      for (const m of list) {
        const v = vectors.get(m.id);
        if (!v) continue;
        m.vector = v.vector;
        m.vectorModel = v.model;
        updated++;
      }
      return { next: list, result: updated, changed: updated > 0 };
    });
  }

  /**
   * Moves `source`'s memories into `target`'s list (see {@link MemoryRepository.moveInto}).
   * @returns how many memories were added
   */
  moveInto(source: UserKey, target: UserKey): Promise<number> {
    return this.#list.move(source, target, (into, from) => {
      const same = new Set(into.map((m) => `${m.createdAtMs}|${m.text}`));
      const ids = new Set(into.map((m) => m.id));
      const next = [...into];
      let added = 0;
      for (const memory of from) {
        if (same.has(`${memory.createdAtMs}|${memory.text}`)) continue;
        let id = memory.id;
        while (ids.has(id)) id = randomBytes(2).toString('hex');
        ids.add(id);
        next.push({ ...memory, id });
        added++;
      }
      next.sort((a, b) => a.createdAtMs - b.createdAtMs);
      return { next, result: added };
    });
  }

  deleteAll(key: UserKey): Promise<void> {
    return this.#list.clear(key);
  }
}
