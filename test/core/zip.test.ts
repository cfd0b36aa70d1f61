import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crc32, createZip } from '../../src/core/zip.js';
import { infoZipTest, readZip } from '../helpers/unzip.js';

describe('createZip', () => {
  it('computes the CRC-32 ZIP uses (check value of "123456789")', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('writes an archive that Info-ZIP tests clean and that reads back byte for byte', () => {
    const noise = randomBytes(50_000); // incompressible: stored
    const text = Buffer.from('{"hello":"wörld"}\n'.repeat(500)); // deflated
    const zip = createZip([
      { name: 'data.json', bytes: text },
      { name: 'audio/noise.bin', bytes: noise },
      { name: 'empty.txt', bytes: Buffer.alloc(0) },
      { name: 'ünïcode.txt', bytes: Buffer.from('x') },
    ]);
    expect(zip.length).toBeLessThan(noise.length + text.length);
    const entries = readZip(zip);
    expect(entries.get('data.json')).toEqual(text);
    expect(entries.get('audio/noise.bin')).toEqual(noise);
    expect(entries.get('empty.txt')).toEqual(Buffer.alloc(0));
    expect(entries.get('ünïcode.txt')?.toString()).toBe('x');
    const tested = infoZipTest(zip);
    if (tested !== undefined) expect(tested).toBe(true);
  });

  it('refuses names that would escape the extraction folder, and duplicates', () => {
    expect(() => createZip([{ name: '../x', bytes: Buffer.alloc(1) }])).toThrow(/Invalid/);
    expect(() => createZip([{ name: '/etc/x', bytes: Buffer.alloc(1) }])).toThrow(/Invalid/);
    expect(() => createZip([{ name: 'a', bytes: Buffer.alloc(1) }, { name: 'a', bytes: Buffer.alloc(1) }])).toThrow(/Duplicate/);
  });
});
