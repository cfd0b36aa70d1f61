/** The chat history repository: `history:<userKey>`, oldest turn first, capped. */
import type { ChatTurn } from '../providers.js';
import type { Lock } from './keyed-lock.js';
import type { Records } from './records.js';
import { UserList } from './user-list.js';
import type { HistoryRepository, UserKey } from './types.js';

export class KeyvHistoryRepository implements HistoryRepository {
  readonly #list: UserList<ChatTurn>;
  constructor(
    records: Records,
    lock: Lock,
    private readonly maxTurns: number,
  ) {
    this.#list = new UserList(records, lock, 'history');
  }

  /**
   * The last `limit` turns, oldest first.
   * @throws RangeError when `limit` is not a non-negative integer
   */
  async recent(key: UserKey, limit: number): Promise<ChatTurn[]> {
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer (got ${String(limit)})`);
    if (limit === 0) return [];
    const turns = await this.#list.read(key);
    return turns.slice(-limit);
  }

  /** Appends turns in order, keeping only the newest `maxTurns`. */
  async append(key: UserKey, ...turns: ChatTurn[]): Promise<void> {
    if (turns.length === 0) return;
    await this.#list.update(key, (list) => ({ next: list.concat(turns).slice(-this.maxTurns), result: undefined }));
  }

  /**
   * Deletes the turns whose `atMs` is before `beforeMs` (retention); the key goes when none is left.
   * @returns how many turns were deleted
   */
  pruneBefore(key: UserKey, beforeMs: number): Promise<number> {
    return this.#list.update(key, (list) => {
      const next = list.filter((t) => !(t.atMs < beforeMs));
      const removed = list.length - next.length;
      return { next, result: removed, changed: removed > 0 };
    });
  }

  /**
   * Moves `source`'s turns into `target`'s history in time order (see
   * {@link HistoryRepository.moveInto}); turns already in the target are not added twice.
   * @returns how many turns were added
   */
  moveInto(source: UserKey, target: UserKey): Promise<number> {
    return this.#list.move(source, target, (into, from) => {
      const seen = new Set(into.map(turnIdentity));
      const added = from.filter((t) => !seen.has(turnIdentity(t)));
      // Array.prototype.sort is stable: equal times keep target-then-source order.
      const next = into.concat(added).sort((a, b) => a.atMs - b.atMs).slice(-this.maxTurns);
      return { next, result: added.length };
    });
  }

  deleteAll(key: UserKey): Promise<void> {
    return this.#list.clear(key);
  }
}

/** What makes two stored turns the same turn (a turn has no id of its own). */
function turnIdentity(turn: ChatTurn): string {
  return JSON.stringify([turn.role, turn.atMs, turn.messageId ?? null, turn.text]);
}
