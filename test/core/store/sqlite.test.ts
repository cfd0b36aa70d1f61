import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { storeContract } from './contract.js';
import { makeHarness } from './harness.js';
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
});
