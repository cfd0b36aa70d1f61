/**
 * Reads a ZIP archive (central directory, stored or deflated entries, CRC-32 checked) for tests, and
 * runs Info-ZIP's `unzip -t` on it when installed, as an independent check of the format.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { crc32 } from '../../src/core/zip.js';

/** Entries of `zip` by name. @throws Error on a malformed archive or a CRC mismatch */
export function readZip(zip: Buffer): Map<string, Buffer> {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error('no end of central directory record');
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const out = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error('bad central directory header');
    const method = zip.readUInt16LE(at + 10);
    const crc = zip.readUInt32LE(at + 16);
    const compressed = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extra = zip.readUInt16LE(at + 30);
    const comment = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    if (zip.readUInt32LE(local) !== 0x04034b50) throw new Error('bad local header');
    const dataAt = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(dataAt, dataAt + compressed);
    const bytes = method === 8 ? inflateRawSync(raw) : method === 0 ? Buffer.from(raw) : undefined;
    if (!bytes) throw new Error(`unsupported method ${method}`);
    if (crc32(bytes) !== crc) throw new Error(`CRC mismatch in ${name}`);
    out.set(name, bytes);
    at += 46 + nameLength + extra + comment;
  }
  return out;
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
