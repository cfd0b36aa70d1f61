import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeUser, storeContract } from './contract.js';
import { makeHarness } from './harness.js';
import { Keyv } from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import { SQLITE_FILE } from '../../../src/core/store/keyv-store.js';

storeContract('sqlite', { persistent: true }, () => makeHarness('sqlite'));

describe('sqlite store specifics', () => {
  it('is the default backend and writes <dataDir>/voicetwin.sqlite', async () => {
    const harness = await makeHarness(undefined);
    try {
      const store = await harness.open();
      expect(store.backend).toBe('sqlite');
      await store.users.put({
        key: 'telegram:1',
        channel: 'telegram',
        address: { channel: 'telegram', chatId: '1' },
        persona: 'supportive',
        sendTextWithVoice: false,
        optedOut: false,
        blocked: false,
        messageCount: 0,
        createdAtMs: 1,
        updatedAtMs: 1,
      });
      const stat = await fs.stat(path.join(harness.dataDir, SQLITE_FILE));
      expect(stat.isFile()).toBe(true);
    } finally {
      await harness.cleanup();
    }
  });

  it('sweeps expired rows when it opens (SQLite has no native TTL)', async () => {
    const harness = await makeHarness('sqlite');
    try {
      const store = await harness.open();
      for (let i = 0; i < 5; i++) await store.dedupe.claim(`old-${i}`, 30);
      await store.dedupe.claim('fresh', 60_000);
      await store.kv.set('keep', 1);
      await store.close();
      await new Promise((resolve) => setTimeout(resolve, 80));
      await harness.open();
      const sqlite3 = (await import('sqlite3')).default;
      const db = new sqlite3.Database(path.join(harness.dataDir, SQLITE_FILE));
      const rows = await new Promise<{ key: string }[]>((resolve, reject) =>
        db.all('SELECT key FROM keyv ORDER BY key', (err, r) => (err ? reject(err) : resolve(r as { key: string }[]))),
      );
      await new Promise<void>((resolve) => db.close(() => resolve()));
      const keys = rows.map((r) => r.key);
      expect(keys.filter((k) => k.includes(':dedupe:old-'))).toEqual([]);
      expect(keys).toContain('voicetwin:dedupe:fresh');
      expect(keys).toContain('voicetwin:kv:keep');
    } finally {
      await harness.cleanup();
    }
  });

  it('splits a users index written as one list (the layout before chunking) into chunks on first use', async () => {
    const harness = await makeHarness('sqlite');
    try {
      const first = await harness.open();
      await first.close();
      // The old layout: one `users` list of every key.
      const sqlite = new KeyvSqlite({ uri: `sqlite://${path.join(harness.dataDir, SQLITE_FILE)}`, table: 'keyv' });
      const keyv = new Keyv({ store: sqlite, namespace: undefined, useKeyPrefix: false });
      sqlite.namespace = undefined;
      const keys = ['telegram:3', 'discord:1', 'whatsapp:2@c.us'];
      for (const key of keys) await keyv.set(`voicetwin:user:${key}`, makeUser(key));
      await keyv.set('voicetwin:users', keys);
      await keyv.disconnect();

      const store = await harness.open();
      expect((await store.users.list()).map((u) => u.key)).toEqual(keys);
      await store.users.put(makeUser('telegram:9'));
      await store.users.put(makeUser('discord:1')); // already indexed
      expect((await store.users.list()).map((u) => u.key)).toEqual([...keys, 'telegram:9']);
      await store.close();
      const check = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${path.join(harness.dataDir, SQLITE_FILE)}`, table: 'keyv' }), namespace: undefined, useKeyPrefix: false });
      (check.store as { namespace?: string }).namespace = undefined;
      expect(await check.get('voicetwin:users')).toBeUndefined();
      expect(await check.get('voicetwin:users:chunks')).toBe(1);
      expect(await check.get('voicetwin:users:chunk:0')).toEqual([...keys, 'telegram:9']);
      await check.disconnect();
    } finally {
      await harness.cleanup();
    }
  });
});
