/**
 * Opening failures: each error names the backend and where it is, with credentials masked.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createStore, maskUrl, SQLITE_FILE } from '../../../src/core/store/keyv-store.js';

let dataDir: string;
beforeEach(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'voicetwin-store-errors-'));
});
afterEach(async () => {
  await fs.rm(dataDir, { recursive: true, force: true });
});

/** A local TCP port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The error createStore rejects with; fails the test when it opens instead. */
async function openError(options: Parameters<typeof createStore>[0]): Promise<Error> {
  const store = await createStore(options).catch((e: unknown) => e as Error);
  if (!(store instanceof Error)) {
    await store.close();
    throw new Error('createStore opened a store; expected it to fail');
  }
  return store;
}

describe('maskUrl', () => {
  it('masks passwords, and a lone user name', () => {
    expect(maskUrl('redis://alice:hunter2@cache.internal:6380/2')).toBe('redis://alice:***@cache.internal:6380/2');
    expect(maskUrl('rediss://:hunter2@cache.internal:6380')).toBe('rediss://:***@cache.internal:6380');
    expect(maskUrl('redis://tokenonly@cache.internal')).toBe('redis://***@cache.internal');
    expect(maskUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(maskUrl('not a url hunter2')).toBe('<invalid URL>');
  });
});

describe('createStore failures', () => {
  it('names the sqlite file it cannot open', async () => {
    await fs.mkdir(path.join(dataDir, SQLITE_FILE));
    const err = await openError({ backend: 'sqlite', dataDir, dataKey: randomBytes(32) });
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain(`Cannot open the sqlite store at ${path.join(dataDir, SQLITE_FILE)}`);
    expect(err.message).toMatch(/SQLITE_CANTOPEN|unable to open/);
  });

  it('names the redis URL with the password masked when nothing listens', async () => {
    const port = await closedPort();
    const started = Date.now();
    const err = await openError({
      backend: 'redis',
      dataDir,
      dataKey: randomBytes(32),
      redisUrl: `redis://alice:hunter2@127.0.0.1:${port}`,
      redisConnectTimeoutMs: 700,
    });
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain(`Cannot connect to the redis store at redis://alice:***@127.0.0.1:${port}`);
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(err.message).not.toContain('hunter2');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('refuses a redis backend without a URL, or with a URL of another scheme', async () => {
    await expect(createStore({ backend: 'redis', dataDir, dataKey: randomBytes(32) })).rejects.toThrow(/redis store needs a URL/);
    await expect(createStore({ backend: 'redis', dataDir, dataKey: randomBytes(32), redisUrl: 'http://u:hunter2@127.0.0.1:6379' })).rejects.toThrow(
      /http:\/\/u:\*\*\*@127\.0\.0\.1:6379\/: the URL must start with redis:\/\//,
    );
    const err = await openError({ backend: 'redis', dataDir, dataKey: randomBytes(32), redisUrl: '::hunter2::' });
    expect(err.message).toMatch(/REDIS_URL is not a valid URL/);
    expect(err.message).not.toContain('hunter2');
  });

  it('picks redis when a URL is given and sqlite otherwise', async () => {
    const port = await closedPort();
    await expect(createStore({ dataDir, dataKey: randomBytes(32), redisUrl: `redis://127.0.0.1:${port}`, redisConnectTimeoutMs: 300 })).rejects.toThrow(
      /redis store/,
    );
    const store = await createStore({ dataDir, dataKey: randomBytes(32) });
    expect(store.backend).toBe('sqlite');
    await store.close();
  });

  it('refuses a data key that is not 32 bytes, and bad options', async () => {
    await expect(createStore({ backend: 'memory', dataDir, dataKey: randomBytes(16) })).rejects.toThrow(/32 bytes/);
    await expect(createStore({ backend: 'memory', dataDir, dataKey: randomBytes(32), historyMaxTurns: 0 })).rejects.toThrow(/historyMaxTurns/);
    await expect(createStore({ backend: 'nosuch' as 'memory', dataDir, dataKey: randomBytes(32) })).rejects.toThrow(/Unknown store backend "nosuch"/);
  });
});
