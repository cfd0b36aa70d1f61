/**
 * Backend-level access to the store's rows as keyv wrote them (the serialized `{"value":…,
 * "expires":…}` string under the full, namespaced key), for the few operations keyv has no call
 * for: walking every key with a prefix (migration to sealed values, deleting a person's keys whose
 * names are not indexed) and replacing a row only when it still holds what was read.
 *
 * - SQLite: key-range queries on the `keyv` table (no `LIKE`: `_` and `%` in keys are not wildcards).
 * - Redis: `SCAN MATCH <escaped prefix>*` (https://redis.io/docs/latest/commands/scan/; a key may
 *   be returned twice, callers are idempotent) and a compare-and-set script with `KEEPTTL`.
 * - Memory: the Map keyv writes into.
 */
import type KeyvSqlite from '@keyv/sqlite';
import type KeyvRedis from '@keyv/redis';
import type { RedisClientType } from '@keyv/redis';

/** One stored row: the full key and keyv's serialized value. */
export interface RawRow {
  key: string;
  raw: string;
}

/** Raw row access over one backend. */
export interface RawRecords {
  /**
   * Rows whose full key starts with `prefix`, in batches of at most `batchSize` (default 500).
   * Rows written or deleted during the walk may or may not be seen; a row may be seen twice on Redis.
   */
  scan(prefix: string, batchSize?: number): AsyncGenerator<RawRow[]>;
  /** Writes `next` under `key` only if the row still holds `expected` (keeping its TTL); true when written. */
  replaceIf(key: string, expected: string, next: string): Promise<boolean>;
}

const SQLITE_TABLE = 'keyv';

/** Raw access to the `keyv` table of a @keyv/sqlite store. */
export function sqliteRawRecords(sqlite: KeyvSqlite): RawRecords {
  return {
    async *scan(prefix, batchSize = 500) {
      const upper = prefixUpperBound(prefix);
      let after = '';
      for (;;) {
        const rows = (await sqlite.query(
          `SELECT key, value FROM ${SQLITE_TABLE} WHERE key >= ? AND key < ? AND key > ? ORDER BY key LIMIT ?`,
          prefix,
          upper,
          after,
          batchSize,
        )) as { key: string; value: string }[];
        if (rows.length === 0) return;
        yield rows.map((r) => ({ key: r.key, raw: r.value }));
        after = rows[rows.length - 1]!.key;
        if (rows.length < batchSize) return;
      }
    },
    async replaceIf(key, expected, next) {
      await sqlite.query(`UPDATE ${SQLITE_TABLE} SET value = ? WHERE key = ? AND value = ?`, next, key, expected);
      const rows = (await sqlite.query(`SELECT value FROM ${SQLITE_TABLE} WHERE key = ?`, key)) as { value: string }[];
      return rows[0]?.value === next;
    },
  };
}

const REPLACE_IF_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') return 1 else return 0 end`;

/** Raw access to the keys of a @keyv/redis store. */
export function redisRawRecords(redis: KeyvRedis<string>): RawRecords {
  const client = async (): Promise<RedisClientType> => (await redis.getClient()) as RedisClientType;
  return {
    async *scan(prefix, batchSize = 500) {
      const c = await client();
      for await (const found of c.scanIterator({ MATCH: `${escapeGlob(prefix)}*`, COUNT: batchSize })) {
        const keys = (Array.isArray(found) ? found : [found]).map(String);
        if (keys.length === 0) continue;
        const values = await c.mGet(keys);
        const rows: RawRow[] = [];
        keys.forEach((key, i) => {
          const raw = values[i];
          if (typeof raw === 'string') rows.push({ key, raw });
        });
        if (rows.length > 0) yield rows;
      }
    },
    async replaceIf(key, expected, next) {
      const c = await client();
      const reply = await c.eval(REPLACE_IF_SCRIPT, { keys: [key], arguments: [expected, next] });
      return Number(reply) === 1;
    },
  };
}

/** Raw access to the Map of keyv's in-memory store. */
export function mapRawRecords(map: Map<string, unknown>): RawRecords {
  return {
    async *scan(prefix, batchSize = 500) {
      const keys = [...map.keys()].filter((k) => k.startsWith(prefix)).sort();
      for (let i = 0; i < keys.length; i += batchSize) {
        const rows: RawRow[] = [];
        for (const key of keys.slice(i, i + batchSize)) {
          const raw = map.get(key);
          if (typeof raw === 'string') rows.push({ key, raw });
        }
        if (rows.length > 0) yield rows;
      }
    },
    async replaceIf(key, expected, next) {
      if (map.get(key) !== expected) return false;
      map.set(key, next);
      return true;
    },
  };
}

/** The smallest string greater than every string that starts with `prefix` (non-empty prefix). */
export function prefixUpperBound(prefix: string): string {
  const last = prefix.charCodeAt(prefix.length - 1);
  return prefix.slice(0, -1) + String.fromCharCode(last + 1);
}

/** Escapes Redis glob characters (`* ? [ ] \`) so `text` matches itself. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\^]/g, (c) => `\\${c}`);
}
