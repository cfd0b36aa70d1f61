/**
 * Reads a ZIP archive for tests with fflate's `unzipSync`, and runs Info-ZIP's `unzip -t` on it
 * when installed, as an independent check of the format (it verifies every entry's CRC-32).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';

/** Entries of `zip` by name. @throws Error on a malformed archive */
export function readZip(zip: Buffer): Map<string, Buffer> {
  const files = unzipSync(new Uint8Array(zip.buffer, zip.byteOffset, zip.byteLength));
  return new Map(Object.entries(files).map(([name, bytes]) => [name, Buffer.from(bytes)]));
}

/** `unzip -t` on the archive: true when it passes, undefined when `unzip` is not installed. */
export function infoZipTest(zip: Buffer): boolean | undefined {
  const dir = mkdtempSync(path.join(tmpdir(), 'vt-zip-'));
  try {
    const file = path.join(dir, 'a.zip');
    writeFileSync(file, zip);
    const r = spawnSync('unzip', ['-t', file], { encoding: 'utf8' });
    if (r.error) return undefined;
    return r.status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
