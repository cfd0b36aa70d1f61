/** The enrollment samples repository: `samples:<userKey>` (metadata; the audio is in the blob store). */
import type { Lock } from './keyed-lock.js';
import { checkUserKey, type Records } from './records.js';
import { UserList } from './user-list.js';
import type { SampleRecord, SampleRepository, UserKey } from './types.js';

export class KeyvSampleRepository implements SampleRepository {
  readonly #list: UserList<SampleRecord>;
  constructor(records: Records, lock: Lock) {
    this.#list = new UserList(records, lock, 'samples');
  }

  /** The user's samples in the order they were added. */
  list(key: UserKey): Promise<SampleRecord[]> {
    return this.#list.read(key);
  }

  /** Appends the sample; a sample with the same id replaces the earlier one in place. */
  async add(sample: SampleRecord): Promise<void> {
    checkUserKey(sample?.userKey);
    await this.#list.update(sample.userKey, (list) => {
      const at = list.findIndex((s) => s.id === sample.id);
      if (at >= 0) list[at] = sample;
      else list.push(sample);
      return { next: list, result: undefined };
    });
  }

  /**
   * Moves `source`'s samples into `target`'s list, each re-owned by `target` (see
   * {@link SampleRepository.moveInto}). Their audio stays where their `blobKey` says.
   * @returns how many samples were added
   */
  moveInto(source: UserKey, target: UserKey): Promise<number> {
    return this.#list.move(source, target, (into, from) => {
      const ids = new Set(into.map((s) => s.id));
      const added = from.filter((s) => !ids.has(s.id)).map((s) => ({ ...s, userKey: target }));
      return { next: [...into, ...added].sort((a, b) => a.createdAtMs - b.createdAtMs), result: added.length };
    });
  }

  deleteAll(key: UserKey): Promise<void> {
    return this.#list.clear(key);
  }
}
