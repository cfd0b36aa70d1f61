/** The users repository: `user:<userKey>` records and the chunked users index (`users:chunks`, `users:chunk:<i>`). */
import type { Lock } from './keyed-lock.js';
import { checkUserKey, type Records } from './records.js';
import type { UserKey, UserRecord, UserRepository } from './types.js';

/** User keys per users-index chunk: adding a user rewrites one chunk of at most this many keys. */
export const USERS_INDEX_CHUNK_KEYS = 1000;

export class KeyvUserRepository implements UserRepository {
  /** User keys known to be in the index (saves a read on every put). */
  readonly #indexed = new Set<UserKey>();
  #migrated: Promise<void> | undefined;

  constructor(
    private readonly records: Records,
    private readonly lock: Lock,
  ) {}

  get(key: UserKey): Promise<UserRecord | undefined> {
    return this.records.get<UserRecord>(`user:${key}`);
  }

  /**
   * Creates or replaces the user; a new user's key is appended to the users index first (so a
   * crash in between leaves an index entry without a record, which `list` skips, never a user
   * missing from broadcasts).
   */
  put(user: UserRecord): Promise<void> {
    checkUserKey(user?.key);
    return this.lock.run(`user:${user.key}`, async () => {
      if (!this.#indexed.has(user.key)) {
        // A stored record means the key was indexed before it was written.
        if ((await this.records.get(`user:${user.key}`)) === undefined) await this.indexAdd(user.key);
        this.#indexed.add(user.key);
      }
      await this.records.set(`user:${user.key}`, user);
    });
  }

  /** Deletes the user and its index entry; deleting a missing user does nothing. */
  delete(key: UserKey): Promise<void> {
    return this.lock.run(`user:${key}`, async () => {
      await this.records.delete(`user:${key}`);
      this.#indexed.delete(key);
      await this.indexRemove(key);
    });
  }

  /** Every user, in the order they were first stored. */
  async list(): Promise<UserRecord[]> {
    await this.migrate();
    const count = (await this.records.get<number>('users:chunks')) ?? 0;
    const chunks = await this.records.getMany<string[]>(Array.from({ length: count }, (_, i) => `users:chunk:${i}`));
    const keys = [...new Set(chunks.flatMap((c) => c ?? []))];
    const users = await this.records.getMany<UserRecord>(keys.map((k) => `user:${k}`));
    return users.filter((u): u is UserRecord => u !== undefined);
  }

  /**
   * The users index is `users:chunks` (how many chunks) and `users:chunk:<i>` (up to
   * {@link USERS_INDEX_CHUNK_KEYS} keys each, first-seen order), so adding a user costs one
   * bounded write however many users there are. Stores written before kept one `users` list; it
   * is split into chunks once, on first use (idempotent if interrupted: the list is deleted last).
   */
  private migrate(): Promise<void> {
    this.#migrated ??= this.lock.run('users', async () => {
      const legacy = await this.records.get<string[]>('users');
      if (!legacy) return;
      const count = Math.ceil(legacy.length / USERS_INDEX_CHUNK_KEYS);
      for (let i = 0; i < count; i++) {
        await this.records.set(`users:chunk:${i}`, legacy.slice(i * USERS_INDEX_CHUNK_KEYS, (i + 1) * USERS_INDEX_CHUNK_KEYS));
      }
      await this.records.set('users:chunks', count);
      await this.records.delete('users');
    });
    return this.#migrated;
  }

  private async indexAdd(key: UserKey): Promise<void> {
    await this.migrate();
    await this.lock.run('users', async () => {
      const count = (await this.records.get<number>('users:chunks')) ?? 0;
      const last = count > 0 ? ((await this.records.get<string[]>(`users:chunk:${count - 1}`)) ?? []) : undefined;
      if (last && last.length < USERS_INDEX_CHUNK_KEYS) {
        last.push(key);
        await this.records.set(`users:chunk:${count - 1}`, last);
      } else {
        await this.records.set(`users:chunk:${count}`, [key]);
        await this.records.set('users:chunks', count + 1);
      }
    });
  }

  /** Removes every entry of `key` (reads each chunk: deletions are rare). */
  private async indexRemove(key: UserKey): Promise<void> {
    await this.migrate();
    await this.lock.run('users', async () => {
      const count = (await this.records.get<number>('users:chunks')) ?? 0;
      const chunkKeys = Array.from({ length: count }, (_, i) => `users:chunk:${i}`);
      const chunks = await this.records.getMany<string[]>(chunkKeys);
      for (let i = 0; i < count; i++) {
        const chunk = chunks[i];
        if (chunk?.includes(key)) await this.records.set(chunkKeys[i]!, chunk.filter((k) => k !== key));
      }
    });
  }
}
