/**
 * Access to the shared folder of real speech clips (never copied into the repository).
 * The folder is `VOICETWIN_SPEECH_DIR`, else `../shared/data/speech` next to the repository;
 * suites that need it use {@link describeIfSpeech} and are skipped with a clear message when it
 * is absent.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Absolute path of the speech folder. */
export function speechDir(): string {
  return process.env.VOICETWIN_SPEECH_DIR ?? path.resolve(repoRoot, '../shared/data/speech');
}

/** True when the speech folder and its MANIFEST.tsv exist. */
export function speechAvailable(): boolean {
  return existsSync(path.join(speechDir(), 'MANIFEST.tsv'));
}

/** One row of MANIFEST.tsv, typed. */
export interface SpeechClip {
  /** Path relative to the speech folder, e.g. `whisper.cpp/jfk.wav`. */
  path: string;
  /** Absolute path. */
  absPath: string;
  sourceRepo: string;
  speaker: string;
  /** As written in the manifest: `M`, `F`, `F?`-style estimates, or empty. */
  gender: string;
  durationSec: number;
  sampleRateHz: number;
  /** Transcript, empty when unknown. */
  transcript: string;
  channels: number;
  codec: string;
  sizeBytes: number;
  sha256: string;
  notes: string;
}

/**
 * Reads MANIFEST.tsv (tab-separated, header row first).
 * @throws Error when the folder is absent (guard with {@link speechAvailable})
 */
export function readManifest(): SpeechClip[] {
  const text = readFileSync(path.join(speechDir(), 'MANIFEST.tsv'), 'utf8');
  const [headerLine, ...lines] = text.split('\n').filter((line) => line.trim() !== '');
  const columns = headerLine!.split('\t');
  return lines.map((line) => {
    const cells = line.split('\t');
    const get = (name: string): string => cells[columns.indexOf(name)] ?? '';
    return {
      path: get('path'),
      absPath: path.join(speechDir(), get('path')),
      sourceRepo: get('source_repo'),
      speaker: get('speaker'),
      gender: get('gender'),
      durationSec: Number(get('duration_s')),
      sampleRateHz: Number(get('sample_rate')),
      transcript: get('transcript'),
      channels: Number(get('channels')),
      codec: get('codec'),
      sizeBytes: Number(get('bytes')),
      sha256: get('sha256'),
      notes: get('notes'),
    };
  });
}

/** The manifest row for `relPath`. @throws Error when it is not listed */
export function speechClip(relPath: string): SpeechClip {
  const clip = readManifest().find((c) => c.path === relPath);
  if (!clip) throw new Error(`${relPath} is not in ${path.join(speechDir(), 'MANIFEST.tsv')}`);
  return clip;
}

/** The bytes of a clip. */
export function readSpeech(relPath: string): Buffer {
  return readFileSync(path.join(speechDir(), relPath));
}

/**
 * `describe` when the speech folder exists; otherwise a skipped suite whose name says why and
 * how to provide the clips.
 */
export const describeIfSpeech = (name: string, fn: () => void): void => {
  if (speechAvailable()) describe(name, fn);
  else {
    const reason = `no speech clips at ${speechDir()}; set VOICETWIN_SPEECH_DIR`;
    console.warn(`Skipping "${name}": ${reason}`);
    // A skipped suite would still have its body run by vitest to collect it, and the body reads
    // the clips: so one skipped placeholder test stands for the suite, with the reason.
    describe(name, () => it.skip(`skipped: ${reason}`, () => undefined));
  }
};
