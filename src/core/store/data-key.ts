/**
 * The 32-byte data key that encrypts voice data at rest (AES-256-GCM, see `blob-store.ts`).
 *
 * Sources, in order:
 * 1. the `VOICETWIN_DATA_KEY` environment variable (production);
 * 2. the file named by `VOICETWIN_DATA_KEY_FILE` (production: a secret mounted outside the data
 *    directory; a path inside the data directory is refused, since a key stored next to the data
 *    it encrypts protects nothing when the directory is copied or backed up);
 * 3. only for the local default (the embedded SQLite store): `<dataDir>/data.key`, generated on
 *    first start (mode 0600). Every start that uses it logs a warning saying how to move the key
 *    out. With Redis this fallback is refused: the key must come from 1 or 2.
 *
 * The key itself never reaches a log or an error message.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import { ensurePrivateFile, fileModesApply } from './file-modes.js';

/** Length of the data key in bytes (AES-256). */
export const DATA_KEY_BYTES = 32;

/** Name of the key file inside the data directory. */
export const DATA_KEY_FILE = 'data.key';

/** Name of the environment variable holding the data key. */
export const DATA_KEY_ENV = 'VOICETWIN_DATA_KEY';

/** Name of the environment variable holding the path of a file with the data key. */
export const DATA_KEY_FILE_ENV = 'VOICETWIN_DATA_KEY_FILE';

/**
 * The public id of a data key: the first 4 bytes of HMAC-SHA256(key, "voicetwin key id v1") as 8
 * lowercase hexadecimal characters. Sealed records and blobs carry it, so a key rotation can tell
 * what is already under the new key; it reveals nothing usable about the key itself.
 * @throws Error when `key` is not 32 bytes
 */
export function dataKeyId(key: Buffer): string {
  if (!Buffer.isBuffer(key) || key.length !== DATA_KEY_BYTES) throw new Error(`The data key must be ${DATA_KEY_BYTES} bytes`);
  return createHmac('sha256', key).update('voicetwin key id v1').digest().subarray(0, 4).toString('hex');
}

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

/**
 * Where the data key came from: the environment, the file named by `VOICETWIN_DATA_KEY_FILE`,
 * the key file in the data directory, or generated into the data directory just now.
 */
export type DataKeySource = 'env' | 'key-file' | 'data-dir' | 'generated';

/**
 * The data key would come from inside the data directory where that is refused: a
 * `VOICETWIN_DATA_KEY_FILE` inside it, or the data directory's key file with Redis.
 */
export class DataKeyLocationError extends Error {
  override readonly name = 'DataKeyLocationError';
}

/**
 * True when `target` is `dir` or lies below it, comparing absolute paths as written (callers that
 * can touch the disk should compare real paths too, see {@link loadDataKey}).
 */
export function isInsideDir(target: string, dir: string): boolean {
  const relative = path.relative(path.resolve(dir), path.resolve(target));
  return relative === '' || (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative));
}

/** The message of a `VOICETWIN_DATA_KEY_FILE` inside the data directory. */
export function keyFileInsideDataDirMessage(keyFile: string, dataDir: string): string {
  return (
    `${DATA_KEY_FILE_ENV} (${keyFile}) lies inside the data directory ${dataDir}; a key stored with the data it encrypts ` +
    `does not protect a copy or backup of that directory. Keep the key file elsewhere (e.g. /run/secrets/voicetwin-data-key, ` +
    `mode 0600 or 0400) or put the key in ${DATA_KEY_ENV}.`
  );
}

/**
 * Loads the data key (see the module comment for the order of sources).
 *
 * @param options.dataDir the data directory; with `allowDataDirKey`, `data.key` is read from or
 *   written to it (created with mode 0700 when missing)
 * @param options.envValue the value of `VOICETWIN_DATA_KEY`; empty or whitespace counts as unset
 * @param options.keyFile the value of `VOICETWIN_DATA_KEY_FILE` (absolute, or relative to the
 *   working directory); empty counts as unset; ignored when `envValue` is set
 * @param options.allowDataDirKey whether a key in (or generated into) the data directory may be
 *   used: true for the local SQLite default, false for Redis; default true
 * @param options.logger receives a warning at every start that uses the data directory's key,
 *   when the key file's mode was fixed or is readable by others, and when the key file in the
 *   data directory differs from the configured key
 * @returns the key (32 bytes) and its source
 * @throws Error naming `VOICETWIN_DATA_KEY` (or the key file's path) and the expected form when
 *   the value is malformed; DataKeyLocationError when `keyFile` lies inside the data directory,
 *   or when no key is configured and `allowDataDirKey` is false; FileModeError when the data
 *   directory's key file is readable by others and not ours to fix; Error when a key file cannot
 *   be read or written
 */
export async function loadDataKey(options: {
  dataDir: string;
  envValue?: string;
  keyFile?: string;
  allowDataDirKey?: boolean;
  logger?: Logger;
}): Promise<{ key: Buffer; source: DataKeySource }> {
  const keyPath = path.join(options.dataDir, DATA_KEY_FILE);
  const envValue = options.envValue?.trim();
  const keyFile = options.keyFile?.trim();

  if (envValue || keyFile) {
    let key: Buffer;
    let source: DataKeySource;
    if (envValue) {
      key = parseDataKey(envValue, DATA_KEY_ENV);
      source = 'env';
    } else {
      key = await readConfiguredKeyFile(path.resolve(keyFile!), options.dataDir, options.logger);
      source = 'key-file';
    }
    const fileKey = await readKeyFile(keyPath).catch(() => undefined);
    if (fileKey && !fileKey.equals(key)) {
      options.logger?.warn(
        { keyPath },
        `The configured data key differs from the key in ${keyPath}; data encrypted with the file's key cannot be read with it`,
      );
    }
    return { key, source };
  }

  if (options.allowDataDirKey === false) {
    throw new DataKeyLocationError(
      `No data key is configured. With REDIS_URL the records live outside this machine, and a key kept in ${keyPath} ` +
        `is not allowed: set ${DATA_KEY_ENV} (generate one with: openssl rand -hex 32) or ${DATA_KEY_FILE_ENV} ` +
        `(a file outside the data directory, mode 0600). If ${keyPath} already holds the key your data was written with, ` +
        `move that file out of the data directory and point ${DATA_KEY_FILE_ENV} at it.`,
    );
  }

  const existing = await readKeyFile(keyPath, options.logger);
  if (existing) {
    warnDataDirKey(options.logger, keyPath, false);
    return { key: existing, source: 'data-dir' };
  }

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
    if (winner) {
      warnDataDirKey(options.logger, keyPath, false);
      return { key: winner, source: 'data-dir' };
    }
    throw err;
  } finally {
    await fs.rm(tmpPath, { force: true });
  }
  warnDataDirKey(options.logger, keyPath, true);
  return { key: generated, source: 'generated' };
}

/** The warning of every start that uses the key in the data directory. */
function warnDataDirKey(logger: Logger | undefined, keyPath: string, generated: boolean): void {
  logger?.warn(
    { keyPath, keySource: generated ? 'generated' : 'data-dir' },
    `${generated ? `Generated a new data key in ${keyPath}` : `The data key is read from ${keyPath}`}, inside the data directory: ` +
      `anyone with a copy of the directory (a backup, a snapshot) can decrypt the voice data. Back the key up, then move it out: ` +
      `put the file's content in ${DATA_KEY_ENV}, or move the file outside the data directory and set ${DATA_KEY_FILE_ENV} to its path. ` +
      `Without the key the stored voice data cannot be decrypted.`,
  );
}

/** Reads `VOICETWIN_DATA_KEY_FILE`, refusing a path inside the data directory. */
async function readConfiguredKeyFile(keyFile: string, dataDir: string, logger?: Logger): Promise<Buffer> {
  if (isInsideDir(keyFile, dataDir)) throw new DataKeyLocationError(keyFileInsideDataDirMessage(keyFile, dataDir));
  const [realKeyFile, realDataDir] = await Promise.all([fs.realpath(keyFile).catch(() => keyFile), fs.realpath(dataDir).catch(() => dataDir)]);
  if (isInsideDir(realKeyFile, realDataDir)) throw new DataKeyLocationError(keyFileInsideDataDirMessage(keyFile, dataDir));
  let text: string;
  try {
    text = await fs.readFile(keyFile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? ' (no such file)' : code === 'EACCES' ? ' (permission denied for this user)' : '';
    throw new Error(`Cannot read the data key file ${keyFile} named by ${DATA_KEY_FILE_ENV}${hint}: ${(err as Error).message}`, { cause: err });
  }
  const key = parseDataKey(text, `The data key file ${keyFile} (${DATA_KEY_FILE_ENV})`);
  if (fileModesApply()) {
    const stats = await fs.stat(keyFile);
    if ((stats.mode & 0o077) !== 0) {
      // A mounted secret may belong to root and be world-readable by design of the platform; fix
      // the mode when the file is ours, otherwise say so.
      const fixed = stats.uid === process.getuid?.() && (await fs.chmod(keyFile, 0o600).then(() => true, () => false));
      logger?.warn(
        { keyPath: keyFile, mode: (stats.mode & 0o777).toString(8), fixed },
        fixed
          ? `${keyFile} was readable by other users; made it 0600`
          : `${keyFile} is readable by other users and does not belong to this process; make it readable by the VoiceTwin user only (chmod 600 or 400)`,
      );
    }
  }
  return key;
}

/**
 * Reads and parses the data directory's key file, making it 0600 when it is readable by others
 * (it is ours) or refusing (it is not); undefined when it does not exist.
 */
async function readKeyFile(keyPath: string, logger?: Logger): Promise<Buffer | undefined> {
  let text: string;
  try {
    text = await fs.readFile(keyPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`Cannot read the data key file ${keyPath}: ${(err as Error).message}`, { cause: err });
  }
  const key = parseDataKey(text, `The data key file ${keyPath}`);
  if (await ensurePrivateFile(keyPath)) {
    logger?.warn({ keyPath }, `${keyPath} was readable by other users; made it 0600 (chmod 600)`);
  }
  return key;
}
