/**
 * Owner-only file modes for everything VoiceTwin keeps on disk: the data directory and every
 * directory below it are 0700, every file 0600 (the SQLite file and its `-wal`/`-shm`, encrypted
 * blobs, the data key, the WhatsApp session and QR code).
 *
 * At start-up {@link securePrivateTree} walks a directory: an entry that group or others can reach
 * is fixed with chmod when this process owns it (or runs as root), and start-up is refused with a
 * {@link FileModeError} naming the path and the command to run otherwise. Symbolic links are not
 * followed. On Windows, where POSIX modes do not apply, nothing is checked.
 */
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import type { Logger } from '../log.js';

/** Mode of private directories. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of private files. */
export const PRIVATE_FILE_MODE = 0o600;

const GROUP_OTHER_BITS = 0o077;
const WALK_CONCURRENCY = 16;
const EXAMPLES_LOGGED = 5;

/** A file or directory that group or others can reach and that VoiceTwin may not fix. */
export class FileModeError extends Error {
  override readonly name = 'FileModeError';
  constructor(
    readonly filePath: string,
    readonly mode: number,
    readonly ownerUid: number,
    readonly expectedMode: number,
  ) {
    super(
      `${filePath} has mode ${octal(mode)} (group or others can reach it) and belongs to user id ${ownerUid}, not to this process ` +
        `(user id ${String(process.getuid?.())}), so VoiceTwin cannot fix it. Personal data must be private: run ` +
        `"chmod ${octal(expectedMode)} ${filePath}" as its owner (or chown it to the user running VoiceTwin), then start again.`,
    );
  }
}

/** What {@link securePrivateTree} found. */
export interface SecureResult {
  /** Entries whose mode was too open and was fixed with chmod. */
  fixed: string[];
  /** Entries checked (directories and files). */
  checked: number;
}

/** True where POSIX modes apply. */
export function fileModesApply(): boolean {
  return process.platform !== 'win32';
}

/**
 * Creates `dir` (and missing parents) when needed and makes the directory itself 0700. Parents
 * that already existed are left alone; parents it creates are 0700.
 * @returns true when the directory's mode was fixed
 * @throws FileModeError when `dir` is reachable by others and not ours to fix
 */
export async function ensurePrivateDir(dir: string): Promise<boolean> {
  await fs.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (!fileModesApply()) return false;
  return fixMode(dir, await fs.lstat(dir), PRIVATE_DIR_MODE);
}

/**
 * Makes `file` 0600 when it exists (nothing when it does not).
 * @returns true when the mode was fixed
 * @throws FileModeError when the file is reachable by others and not ours to fix
 */
export async function ensurePrivateFile(file: string): Promise<boolean> {
  if (!fileModesApply()) return false;
  let stats: Stats;
  try {
    stats = await fs.lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  if (!stats.isFile()) return false;
  return fixMode(file, stats, PRIVATE_FILE_MODE);
}

/**
 * Creates `file` empty with mode 0600 if it does not exist, so that whatever opens it later (SQLite,
 * which also gives its `-wal` and `-shm` files the database file's mode) finds a private file.
 * An existing file is made 0600; a directory in its place is left alone.
 * @throws FileModeError when an existing file is reachable by others and not ours to fix
 */
export async function createPrivateFile(file: string): Promise<void> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'a', PRIVATE_FILE_MODE);
  } catch (err) {
    // Not a file (a directory in its place): left to whatever opens it, which names the problem.
    if ((err as NodeJS.ErrnoException).code === 'EISDIR') return;
    throw err;
  }
  await handle.close();
  await ensurePrivateFile(file);
}

/**
 * Makes `root` (created when missing) and every directory below it 0700 and every regular file
 * 0600. Symbolic links are neither followed nor changed. Fixes are logged once, as a warning with
 * their count and a few examples.
 * @param root the directory to secure (normally the data directory)
 * @param logger receives the warning when something was fixed
 * @throws FileModeError on the first entry reachable by others that this process may not fix
 */
export async function securePrivateTree(root: string, logger?: Logger): Promise<SecureResult> {
  const result: SecureResult = { fixed: [], checked: 0 };
  if (await ensurePrivateDir(root)) result.fixed.push(root);
  result.checked += 1;
  if (!fileModesApply()) return result;

  const pending: string[] = [root];
  while (pending.length > 0) {
    const dirs = pending.splice(0, WALK_CONCURRENCY);
    await Promise.all(
      dirs.map(async (dir) => {
        let names: string[];
        try {
          names = await fs.readdir(dir);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw err;
        }
        for (let i = 0; i < names.length; i += WALK_CONCURRENCY) {
          await Promise.all(
            names.slice(i, i + WALK_CONCURRENCY).map(async (name) => {
              const entry = path.join(dir, name);
              let stats: Stats;
              try {
                stats = await fs.lstat(entry);
              } catch (err) {
                // Removed while walking (a temporary file renamed into place, SQLite's -shm).
                if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
                throw err;
              }
              if (stats.isSymbolicLink()) return;
              result.checked += 1;
              if (stats.isDirectory()) {
                if (await fixMode(entry, stats, PRIVATE_DIR_MODE)) result.fixed.push(entry);
                pending.push(entry);
              } else if (await fixMode(entry, stats, PRIVATE_FILE_MODE)) {
                result.fixed.push(entry);
              }
            }),
          );
        }
      }),
    );
  }
  if (result.fixed.length > 0) {
    logger?.warn(
      { dir: root, fixedCount: result.fixed.length, examples: result.fixed.slice(0, EXAMPLES_LOGGED) },
      `${result.fixed.length} file(s) or folder(s) under ${root} were readable by other users; made them owner-only (folders 0700, files 0600)`,
    );
  }
  return result;
}

/**
 * Sets the process umask to 077, so that files created from now on by this process and by the
 * programs it starts (Chromium writes some profile files with the umask's mode) are owner-only.
 * Only the main thread may change it; elsewhere, and on Windows, this does nothing.
 * @returns the previous umask, or undefined when it was not changed
 */
export function restrictUmask(): number | undefined {
  if (!fileModesApply() || !isMainThread) return undefined;
  return process.umask(GROUP_OTHER_BITS);
}

/** chmods `target` to `mode` when group/other bits are set; true when it did. */
async function fixMode(target: string, stats: Stats, mode: number): Promise<boolean> {
  const current = stats.mode & 0o777;
  if ((current & GROUP_OTHER_BITS) === 0) return false;
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0 && stats.uid !== uid) throw new FileModeError(target, current, stats.uid, mode);
  try {
    await fs.chmod(target, mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPERM' || code === 'EACCES') throw new FileModeError(target, current, stats.uid, mode);
    throw err;
  }
  return true;
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}
