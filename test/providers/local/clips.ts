/**
 * Reading the shared speech folder from the stand-alone measurement scripts in this folder, which
 * run outside vitest (test/helpers/speech.ts imports vitest, so they cannot use it). Same folder
 * rule: `VOICETWIN_SPEECH_DIR`, else `../shared/data/speech` next to the repository.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Absolute path of the speech folder. */
export function clipsDir(): string {
  return process.env.VOICETWIN_SPEECH_DIR ?? path.resolve(repoRoot, '../shared/data/speech');
}

/** True when the folder and its MANIFEST.tsv exist. */
export function clipsAvailable(): boolean {
  return existsSync(path.join(clipsDir(), 'MANIFEST.tsv'));
}

/** `path` and `transcript` of every MANIFEST.tsv row. */
export function clipRows(): Array<{ path: string; transcript: string }> {
  const [header, ...lines] = readFileSync(path.join(clipsDir(), 'MANIFEST.tsv'), 'utf8').split('\n').filter((l) => l.trim());
  const columns = header!.split('\t');
  return lines.map((line) => {
    const cells = line.split('\t');
    return { path: cells[columns.indexOf('path')] ?? '', transcript: cells[columns.indexOf('transcript')] ?? '' };
  });
}

/** The bytes of a clip. */
export function readClip(relPath: string): Buffer {
  return readFileSync(path.join(clipsDir(), relPath));
}
