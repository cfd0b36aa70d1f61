/**
 * The 32-byte data key that encrypts voice data at rest (AES-256-GCM, see `blob-store.ts`).
 *
 * Sources, in order: the `VOICETWIN_DATA_KEY` environment variable; the file `<dataDir>/data.key`;
 * otherwise a new random key is generated once, written to `<dataDir>/data.key` (mode 0600) and a
 * warning asks the operator to back it up and move it into the environment. The key itself never
 * reaches a log or an error message.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';

/** Length of the data key in bytes (AES-256). */
export const DATA_KEY_BYTES = 32;

/** Name of the key file inside the data directory. */
export const DATA_KEY_FILE = 'data.key';

/** Name of the environment variable holding the data key. */
export const DATA_KEY_ENV = 'VOICETWIN_DATA_KEY';

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
/** 32 bytes in base64 (standard or URL-safe alphabet), padded (44 chars) or not (43 chars). */
const BASE64_KEY = /^[A-Za-z0-9+/_-]{43}=?$/;

/**
 * Parses a data key written as 64 hexadecimal characters or as base64 (standard or URL-safe,
 * with or without `=` padding) of exactly 32 bytes. Surrounding whitespace is ignored.
 *
 * @param value the text to parse
 * @param source what the text came from, named in the error (`VOICETWIN_DATA_KEY`, a file path)
 * @returns the 32-byte key
 * @throws Error naming `source` and the expected form when `value` is anything else; the message
 *   never contains the value itself
 */
export function parseDataKey(value: string, source: string = DATA_KEY_ENV): Buffer {
  const text = value.trim();
  if (HEX_KEY.test(text)) return Buffer.from(text, 'hex');
  if (BASE64_KEY.test(text)) {
    const key = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (key.length === DATA_KEY_BYTES) return key;
  }
  throw new Error(
    `${source} must be a 32-byte key written as 64 hexadecimal characters or as base64 (44 characters); ` +
      `got ${text.length} characters that are neither. Generate one with: openssl rand -hex 32`,
  );
}

/** Where the data key came from. */
export type DataKeySource = 'env' | 'file' | 'generated';

/**
 * Loads the data key.
 *
 * @param options.dataDir the data directory; `data.key` is read from or written to it (created
 *   with mode 0700 when missing)
 * @param options.envValue the value of `VOICETWIN_DATA_KEY`; empty or whitespace counts as unset
 * @param options.logger receives a warning when a key is generated, when the key file is readable
 *   by others, or when the key file differs from the environment's key
 * @returns the key (32 bytes) and its source
 * @throws Error naming `VOICETWIN_DATA_KEY` (or the key file's path) and the expected form when
 *   the value is malformed; Error when the key file cannot be read or written
 */
export async function loadDataKey(options: {
  dataDir: string;
  envValue?: string;
  logger?: Logger;
}): Promise<{ key: Buffer; source: DataKeySource }> {
  const keyPath = path.join(options.dataDir, DATA_KEY_FILE);
  const envValue = options.envValue?.trim();

  if (envValue) {
    const key = parseDataKey(envValue, DATA_KEY_ENV);
    const fileKey = await readKeyFile(keyPath).catch(() => undefined);
    if (fileKey && !fileKey.equals(key)) {
      options.logger?.warn(
        { keyPath },
        `${DATA_KEY_ENV} differs from the key in ${keyPath}; data encrypted with the file's key cannot be read with ${DATA_KEY_ENV}`,
      );
    }
    return { key, source: 'env' };
  }

  const existing = await readKeyFile(keyPath, options.logger);
  if (existing) return { key: existing, source: 'file' };

  await fs.mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const generated = randomBytes(DATA_KEY_BYTES);
  // Write a temporary file, then hard-link it into place: link() fails when data.key already
  // exists, so two processes starting together never overwrite each other's key.
  const tmpPath = `${keyPath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(tmpPath, `${generated.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await fs.link(tmpPath, keyPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const winner = await readKeyFile(keyPath, options.logger);
    if (winner) return { key: winner, source: 'file' };
    throw err;
  } finally {
    await fs.rm(tmpPath, { force: true });
  }
  options.logger?.warn(
    { keyPath },
    `Generated a new data key in ${keyPath}. Back it up: without it the stored voice data cannot be decrypted. ` +
      `Set ${DATA_KEY_ENV} in the environment to the file's content so the key does not live next to the data.`,
  );
  return { key: generated, source: 'generated' };
}

/** Reads and parses the key file; undefined when it does not exist. */
async function readKeyFile(keyPath: string, logger?: Logger): Promise<Buffer | undefined> {
  let text: string;
  try {
    text = await fs.readFile(keyPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`Cannot read the data key file ${keyPath}: ${(err as Error).message}`, { cause: err });
  }
  const key = parseDataKey(text, `The data key file ${keyPath}`);
  if (logger && process.platform !== 'win32') {
    const { mode } = await fs.stat(keyPath);
    if ((mode & 0o077) !== 0) {
      logger.warn({ keyPath, mode: (mode & 0o777).toString(8) }, `${keyPath} is readable by other users; run: chmod 600 ${keyPath}`);
    }
  }
  return key;
}
