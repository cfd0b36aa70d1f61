/**
 * VOICETWIN_DATA_KEY parsing and the key file fallback.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/core/log.js';
import { DataKeyLocationError, isInsideDir, loadDataKey, parseDataKey } from '../../../src/core/store/data-key.js';

let dataDir: string;
beforeEach(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'voicetwin-datakey-'));
});
afterEach(async () => {
  await fs.rm(dataDir, { recursive: true, force: true });
});

/** A logger whose JSON lines are collected. */
function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: () => { level: number; msg: string }[]; raw: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  const logger = createLogger({ level: 'debug', destination: stream });
  return {
    logger,
    raw: () => text,
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { level: number; msg: string }),
  };
}

describe('parseDataKey', () => {
  const key = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');

  it('accepts 64 hex characters in either case, with surrounding whitespace', () => {
    expect(parseDataKey(key.toString('hex'))).toEqual(key);
    expect(parseDataKey(`  ${key.toString('hex').toUpperCase()}\n`)).toEqual(key);
  });

  it('accepts base64 of 32 bytes: standard, unpadded and URL-safe', () => {
    const odd = Buffer.from(Array.from({ length: 32 }, (_, i) => 250 - i * 3));
    expect(parseDataKey(odd.toString('base64'))).toEqual(odd);
    expect(parseDataKey(odd.toString('base64').replace(/=+$/, ''))).toEqual(odd);
    expect(parseDataKey(odd.toString('base64url'))).toEqual(odd);
  });

  it.each([
    ['empty', ''],
    ['63 hex characters', 'a'.repeat(63)],
    ['65 hex characters', 'a'.repeat(65)],
    ['non-hex characters', 'g'.repeat(64)],
    ['base64 of 16 bytes', Buffer.alloc(16, 7).toString('base64')],
    ['base64 of 33 bytes', Buffer.alloc(33, 7).toString('base64')],
    ['a passphrase', 'correct horse battery staple'],
  ])('rejects %s, naming the variable and the expected form without echoing the value', (_what, value) => {
    let message = '';
    try {
      parseDataKey(value);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^VOICETWIN_DATA_KEY must be a 32-byte key written as 64 hexadecimal characters or as base64/);
    if (value.length >= 8) expect(message).not.toContain(value);
  });
});

describe('loadDataKey', () => {
  it('uses VOICETWIN_DATA_KEY when set, and writes no file', async () => {
    const key = randomBytes(32);
    expect(await loadDataKey({ dataDir, envValue: key.toString('base64') })).toEqual({ key, source: 'env' });
    await expect(fs.stat(path.join(dataDir, 'data.key'))).rejects.toThrow(/ENOENT/);
  });

  it('throws on a bad VOICETWIN_DATA_KEY instead of falling back to the file', async () => {
    await loadDataKey({ dataDir });
    await expect(loadDataKey({ dataDir, envValue: 'not-a-key' })).rejects.toThrow(/VOICETWIN_DATA_KEY must be/);
  });

  it('generates a key once (mode 0600), warns at this and every later start without logging it, and reuses it', async () => {
    const log = capturingLogger();
    const first = await loadDataKey({ dataDir: path.join(dataDir, 'nested'), logger: log.logger });
    expect(first.source).toBe('generated');
    expect(first.key).toHaveLength(32);
    const keyPath = path.join(dataDir, 'nested', 'data.key');
    expect((await fs.readFile(keyPath, 'utf8')).trim()).toBe(first.key.toString('hex'));
    expect((await fs.stat(keyPath)).mode & 0o777).toBe(0o600);
    const warnings = log.lines().filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/^Generated a new data key/);
    expect(warnings[0]!.msg).toMatch(/Back the key up/);
    expect(warnings[0]!.msg).toMatch(/VOICETWIN_DATA_KEY\b/);
    expect(warnings[0]!.msg).toMatch(/VOICETWIN_DATA_KEY_FILE/);
    expect(log.raw()).not.toContain(first.key.toString('hex'));

    const second = await loadDataKey({ dataDir: path.join(dataDir, 'nested'), logger: log.logger });
    expect(second).toEqual({ key: first.key, source: 'data-dir' });
    const later = log.lines().filter((l) => l.level === 40);
    expect(later).toHaveLength(2);
    expect(later[1]!.msg).toMatch(/^The data key is read from .*inside the data directory.*VOICETWIN_DATA_KEY_FILE/);
    expect(log.raw()).not.toContain(first.key.toString('hex'));
  });

  it('treats an empty VOICETWIN_DATA_KEY as unset', async () => {
    const generated = await loadDataKey({ dataDir, envValue: '  ' });
    expect(generated.source).toBe('generated');
    expect(await loadDataKey({ dataDir, envValue: '' })).toEqual({ key: generated.key, source: 'data-dir' });
  });

  it('gives every concurrent caller the same generated key', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => loadDataKey({ dataDir })));
    const hexes = new Set(results.map((r) => r.key.toString('hex')));
    expect(hexes.size).toBe(1);
    expect(results.filter((r) => r.source === 'generated')).toHaveLength(1);
    expect((await fs.readdir(dataDir)).sort()).toEqual(['data.key']);
  });

  it('names the key file when its content is malformed', async () => {
    await fs.writeFile(path.join(dataDir, 'data.key'), 'garbage\n', { mode: 0o600 });
    await expect(loadDataKey({ dataDir })).rejects.toThrow(`The data key file ${path.join(dataDir, 'data.key')} must be a 32-byte key`);
  });

  it('makes a key file readable by others 0600 with a warning, and warns when it differs from the environment key', async () => {
    const log = capturingLogger();
    const fileKey = randomBytes(32);
    const keyPath = path.join(dataDir, 'data.key');
    await fs.writeFile(keyPath, fileKey.toString('hex'), { mode: 0o644 });
    await fs.chmod(keyPath, 0o644);
    expect(await loadDataKey({ dataDir, logger: log.logger })).toEqual({ key: fileKey, source: 'data-dir' });
    expect((await fs.stat(keyPath)).mode & 0o777).toBe(0o600);
    expect(log.lines().some((l) => l.level === 40 && /readable by other users; made it 0600/.test(l.msg))).toBe(true);

    const envKey = randomBytes(32);
    expect(await loadDataKey({ dataDir, envValue: envKey.toString('hex'), logger: log.logger })).toEqual({ key: envKey, source: 'env' });
    expect(log.lines().some((l) => l.level === 40 && /differs from the key in/.test(l.msg))).toBe(true);
    expect(log.raw()).not.toContain(envKey.toString('hex'));
    expect(log.raw()).not.toContain(fileKey.toString('hex'));
  });

  it('uses VOICETWIN_DATA_KEY_FILE outside the data dir, with no warning and no file in the data dir', async () => {
    const secrets = await fs.mkdtemp(path.join(os.tmpdir(), 'voicetwin-secrets-'));
    try {
      const key = randomBytes(32);
      const keyFile = path.join(secrets, 'data-key');
      await fs.writeFile(keyFile, `${key.toString('base64')}\n`, { mode: 0o600 });
      const log = capturingLogger();
      expect(await loadDataKey({ dataDir, keyFile, allowDataDirKey: false, logger: log.logger })).toEqual({ key, source: 'key-file' });
      expect(log.lines().filter((l) => l.level >= 40)).toEqual([]);
      await expect(fs.stat(path.join(dataDir, 'data.key'))).rejects.toThrow(/ENOENT/);

      // A key file of ours that others can read is made 0600, with a warning.
      await fs.chmod(keyFile, 0o644);
      expect((await loadDataKey({ dataDir, keyFile, logger: log.logger })).key).toEqual(key);
      expect((await fs.stat(keyFile)).mode & 0o777).toBe(0o600);
      expect(log.lines().some((l) => l.level === 40 && /made it 0600/.test(l.msg))).toBe(true);
      expect(log.raw()).not.toContain(key.toString('base64'));

      await fs.writeFile(keyFile, 'nope');
      await expect(loadDataKey({ dataDir, keyFile })).rejects.toThrow(`The data key file ${keyFile} (VOICETWIN_DATA_KEY_FILE) must be a 32-byte key`);
      await expect(loadDataKey({ dataDir, keyFile: path.join(secrets, 'missing') })).rejects.toThrow(/Cannot read the data key file .*missing named by VOICETWIN_DATA_KEY_FILE \(no such file\)/);
    } finally {
      await fs.rm(secrets, { recursive: true, force: true });
    }
  });

  it('refuses a VOICETWIN_DATA_KEY_FILE inside the data dir, also through a symbolic link', async () => {
    const key = randomBytes(32).toString('hex');
    const inside = path.join(dataDir, 'keys', 'data-key');
    await fs.mkdir(path.dirname(inside), { recursive: true });
    await fs.writeFile(inside, key, { mode: 0o600 });
    await expect(loadDataKey({ dataDir, keyFile: inside })).rejects.toThrow(/VOICETWIN_DATA_KEY_FILE \(.*\) lies inside the data directory/);
    await expect(loadDataKey({ dataDir, keyFile: path.join(dataDir, 'data.key') })).rejects.toThrow(DataKeyLocationError);

    const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'voicetwin-link-'));
    try {
      const link = path.join(outside, 'data-key');
      await fs.symlink(inside, link);
      await expect(loadDataKey({ dataDir, keyFile: link })).rejects.toThrow(DataKeyLocationError);
    } finally {
      await fs.rm(outside, { recursive: true, force: true });
    }
  });

  it('refuses to use or generate a key in the data dir when that is not allowed (Redis)', async () => {
    await expect(loadDataKey({ dataDir, allowDataDirKey: false })).rejects.toThrow(/No data key is configured.*VOICETWIN_DATA_KEY .*VOICETWIN_DATA_KEY_FILE/s);
    await expect(fs.stat(path.join(dataDir, 'data.key'))).rejects.toThrow(/ENOENT/);
    await loadDataKey({ dataDir });
    await expect(loadDataKey({ dataDir, allowDataDirKey: false })).rejects.toThrow(/move that file out of the data directory/);
  });
});

describe('isInsideDir', () => {
  it('compares whole path components', () => {
    expect(isInsideDir('/srv/data/key', '/srv/data')).toBe(true);
    expect(isInsideDir('/srv/data', '/srv/data/')).toBe(true);
    expect(isInsideDir('/srv/data/../key', '/srv/data')).toBe(false);
    expect(isInsideDir('/srv/data-key', '/srv/data')).toBe(false);
    expect(isInsideDir('/srv/..data/key', '/srv')).toBe(true);
  });
});
