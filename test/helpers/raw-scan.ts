/**
 * Raw-byte scans of what the store leaves on disk and in Redis, for tests that prove a string is
 * not stored in plaintext: every SQLite file of a data directory (the database, its `-wal` and
 * `-shm`) and every value under a Redis namespace.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createClient } from '@keyv/redis';

/**
 * The SQLite files (`*.sqlite`, `*.sqlite-wal`, `*.sqlite-shm`) directly in `dir` whose bytes
 * contain `marker` as UTF-8.
 * @returns names of the files containing the marker (empty when none does)
 */
export async function sqliteFilesContaining(dir: string, marker: string): Promise<string[]> {
  const needle = Buffer.from(marker, 'utf8');
  const names = (await fs.readdir(dir)).filter((n) => /\.sqlite(-wal|-shm)?$/.test(n));
  const found: string[] = [];
  for (const name of names) {
    const bytes = await fs.readFile(path.join(dir, name));
    if (bytes.includes(needle)) found.push(name);
  }
  return found;
}

/** Names of the SQLite files scanned by {@link sqliteFilesContaining}, with their sizes in bytes. */
export async function sqliteFileSizes(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of (await fs.readdir(dir)).filter((n) => /\.sqlite(-wal|-shm)?$/.test(n))) {
    out[name] = (await fs.stat(path.join(dir, name))).size;
  }
  return out;
}

/**
 * Keys under `<namespace>:` whose name or value (strings: GET; hashes: every field and value;
 * lists, sets, sorted sets, streams: DUMP) contains `marker`.
 */
export async function redisKeysContaining(url: string, namespace: string, marker: string): Promise<string[]> {
  const client = createClient({ url });
  await client.connect();
  const found: string[] = [];
  try {
    for await (const keys of client.scanIterator({ MATCH: `${namespace}:*`, COUNT: 500 })) {
      for (const key of keys) {
        if (key.includes(marker)) {
          found.push(key);
          continue;
        }
        const type = await client.type(key);
        let text = '';
        if (type === 'string') text = (await client.get(key)) ?? '';
        else if (type === 'hash') text = JSON.stringify(await client.hGetAll(key));
        else {
          const dumped = await client.sendCommand(['DUMP', key], { typeMapping: { 36: Buffer } } as never);
          text = Buffer.isBuffer(dumped) ? dumped.toString('latin1') : String(dumped);
        }
        if (text.includes(marker)) found.push(key);
      }
    }
  } finally {
    await client.quit().catch(() => undefined);
  }
  return found;
}

/** Deletes every key under `<namespace>:`. */
export async function deleteRedisNamespace(url: string, namespace: string): Promise<void> {
  const client = createClient({ url });
  await client.connect();
  try {
    for await (const keys of client.scanIterator({ MATCH: `${namespace}:*`, COUNT: 500 })) {
      if (keys.length > 0) await client.unlink(keys);
    }
  } finally {
    await client.quit().catch(() => undefined);
  }
}
