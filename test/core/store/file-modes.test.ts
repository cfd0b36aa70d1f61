/**
 * Owner-only modes on disk: the data dir and its folders 0700, every file 0600 (SQLite and its
 * -wal/-shm, encrypted blobs), checked with fs.stat after opening a store and after writes, with
 * the process umask at the usual 022. Too-open modes left by an older version or a careless copy
 * are fixed at start-up; entries of another user are refused.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/core/log.js';
import { createStore, SQLITE_FILE } from '../../../src/core/store/keyv-store.js';
import { createPrivateFile, FileModeError, securePrivateTree } from '../../../src/core/store/file-modes.js';
import type { Store } from '../../../src/core/store/types.js';

const run = promisify(execFile);
const DATA_KEY = randomBytes(32);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/13';

let dataDir: string;
let store: Store | undefined;
let savedUmask: number;

beforeEach(async () => {
  savedUmask = process.umask(0o022);
  dataDir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'voicetwin-modes-')), 'data');
});
afterEach(async () => {
  await store?.close();
  store = undefined;
  process.umask(savedUmask);
  await fs.rm(path.dirname(dataDir), { recursive: true, force: true });
});

async function mode(target: string): Promise<number> {
  return (await fs.stat(target)).mode & 0o777;
}

/** Every entry under `root` (root included) with its mode. */
async function modes(root: string): Promise<Map<string, number>> {
  const out = new Map<string, number>([[root, await mode(root)]]);
  for (const entry of await fs.readdir(root, { recursive: true })) {
    const full = path.join(root, entry);
    const stats = await fs.lstat(full);
    if (!stats.isSymbolicLink()) out.set(full, stats.mode & 0o777);
  }
  return out;
}

/** Folders 0700, files 0600. */
async function expectPrivate(all: Map<string, number>): Promise<void> {
  for (const [entry, m] of all) {
    const expected = (await fs.lstat(entry)).isDirectory() ? 0o700 : 0o600;
    expect({ entry, mode: m.toString(8) }).toEqual({ entry, mode: expected.toString(8) });
  }
}

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => { level: number; msg: string; fixedCount?: number }[] } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  return {
    logger: createLogger({ level: 'debug', destination: stream }),
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { level: number; msg: string; fixedCount?: number }),
  };
}

describe('a new SQLite store', () => {
  it('creates the data dir 0700, the database, its -wal and -shm and every blob 0600', async () => {
    store = await createStore({ backend: 'sqlite', dataDir, dataKey: DATA_KEY });
    expect(await mode(dataDir)).toBe(0o700);
    const db = path.join(dataDir, SQLITE_FILE);
    expect(await mode(db)).toBe(0o600);

    for (let i = 0; i < 20; i++) await store.kv.set(`k${i}`, { value: i, pad: 'x'.repeat(2000) });
    await store.history.append('telegram:1', { role: 'user', text: 'hello', atMs: 1 });
    const blobKey = await store.blobs.put('telegram:1', randomBytes(4096), 'sample');
    await store.blobs.put('discord:2', randomBytes(100), 'tts');

    expect(await mode(`${db}-wal`)).toBe(0o600);
    expect(await mode(`${db}-shm`)).toBe(0o600);
    const all = await modes(dataDir);
    const blobFiles = [...all.keys()].filter((f) => f.endsWith('.vtb'));
    expect(blobFiles).toHaveLength(2);
    for (const dir of [path.join(dataDir, 'blobs'), ...blobFiles.map((f) => path.dirname(f))]) expect(await mode(dir)).toBe(0o700);
    await expectPrivate(all);
    expect(await store.blobs.get(blobKey)).toHaveLength(4096);
  });

  it('keeps -wal and -shm private when SQLite recreates them after a restart', async () => {
    store = await createStore({ backend: 'sqlite', dataDir, dataKey: DATA_KEY });
    await store.kv.set('a', 1);
    await store.close();
    store = await createStore({ backend: 'sqlite', dataDir, dataKey: DATA_KEY });
    await store.kv.set('b', 2);
    const db = path.join(dataDir, SQLITE_FILE);
    for (const file of [db, `${db}-wal`, `${db}-shm`]) expect({ file, mode: await mode(file) }).toEqual({ file, mode: 0o600 });
  });
});

describe('start-up on a data dir with open modes', () => {
  it('makes every folder 0700 and every file 0600, logging one warning with the count', async () => {
    await fs.mkdir(path.join(dataDir, 'blobs', 'abc'), { recursive: true, mode: 0o755 });
    await fs.chmod(dataDir, 0o755);
    await fs.mkdir(path.join(dataDir, 'whatsapp-session', 'Default'), { recursive: true, mode: 0o777 });
    await fs.chmod(path.join(dataDir, 'whatsapp-session'), 0o777);
    await fs.writeFile(path.join(dataDir, 'blobs', 'abc', 'sample.0.vtb'), 'x', { mode: 0o644 });
    await fs.writeFile(path.join(dataDir, 'whatsapp-session', 'Default', 'Cookies'), 'x', { mode: 0o666 });
    await fs.writeFile(path.join(dataDir, 'whatsapp-qr.png'), 'x', { mode: 0o644 });
    await fs.writeFile(path.join(dataDir, SQLITE_FILE), '', { mode: 0o644 });
    await fs.symlink('/etc/hostname', path.join(dataDir, 'whatsapp-session', 'SingletonLock'));
    const log = capture();

    store = await createStore({ backend: 'sqlite', dataDir, dataKey: DATA_KEY, logger: log.logger });
    await store.kv.set('k', 'v');

    const all = await modes(dataDir);
    await expectPrivate(all);
    expect((await fs.lstat(path.join(dataDir, 'whatsapp-session', 'SingletonLock'))).isSymbolicLink()).toBe(true);
    expect(await mode('/etc/hostname')).not.toBe(0o600);
    const warnings = log.lines().filter((l) => l.level === 40 && /readable by other users/.test(l.msg));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.fixedCount).toBe(9);
  });

  it('secures the blob folders of a Redis store too', async () => {
    await fs.mkdir(path.join(dataDir, 'blobs'), { recursive: true, mode: 0o755 });
    await fs.chmod(path.join(dataDir, 'blobs'), 0o755);
    store = await createStore({ backend: 'redis', redisUrl: REDIS_URL, namespace: `modes-${randomBytes(4).toString('hex')}`, dataDir, dataKey: DATA_KEY });
    await store.blobs.put('whatsapp:3', randomBytes(64), 'consent');
    await expectPrivate(await modes(dataDir));
    expect(await mode(path.join(dataDir, 'blobs'))).toBe(0o700);
  });

  it('changes nothing and logs nothing when the modes are already private', async () => {
    store = await createStore({ backend: 'sqlite', dataDir, dataKey: DATA_KEY });
    await store.blobs.put('telegram:1', randomBytes(10), 'sample');
    await store.close();
    const log = capture();
    const result = await securePrivateTree(dataDir, log.logger);
    expect(result.fixed).toEqual([]);
    expect(result.checked).toBeGreaterThanOrEqual(4);
    expect(log.lines()).toEqual([]);
    store = undefined;
  });

  it('creates a missing private file 0600 and fixes an existing one', async () => {
    await fs.mkdir(dataDir, { recursive: true });
    const file = path.join(dataDir, 'x.sqlite');
    await createPrivateFile(file);
    expect(await mode(file)).toBe(0o600);
    await fs.chmod(file, 0o664);
    await createPrivateFile(file);
    expect(await mode(file)).toBe(0o600);
  });
});

describe('FileModeError', () => {
  it('names the file in the error (unit)', () => {
    const err = new FileModeError('/srv/data/x.vtb', 0o644, 1000, 0o600);
    expect(err.message).toMatch(/^\/srv\/data\/x\.vtb has mode 0644 .* belongs to user id 1000.*chmod 0600 \/srv\/data\/x\.vtb/);
  });
});

describe.runIf(process.platform !== 'win32' && process.getuid?.() === 0)('entries of another user', () => {
  it('refuses with the path, the mode and the command to run, instead of starting with them open', async () => {
    // The data dir belongs to root; the check runs as "nobody", who may not chmod it.
    await fs.mkdir(path.join(dataDir, 'blobs'), { recursive: true });
    await fs.chmod(dataDir, 0o755);
    await fs.chmod(path.dirname(dataDir), 0o755);
    const script = `
      import { securePrivateTree } from ${JSON.stringify(path.resolve('src/core/store/file-modes.ts'))};
      try { await securePrivateTree(${JSON.stringify(dataDir)}); console.log('no error'); }
      catch (err) { console.log(JSON.stringify({ name: err.name, message: err.message })); }
    `;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { uid: 65534, gid: 65534, cwd: process.cwd() });
    const result = JSON.parse(stdout.trim()) as { name: string; message: string };
    expect(result.name).toBe('FileModeError');
    expect(result.message).toContain(`${dataDir} has mode 0755`);
    expect(result.message).toContain('belongs to user id 0, not to this process (user id 65534)');
    expect(result.message).toContain(`chmod 0700 ${dataDir}`);
    expect(await mode(dataDir)).toBe(0o755);
  });
});
