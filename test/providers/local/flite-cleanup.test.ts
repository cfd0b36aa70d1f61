/**
 * flite's per-call temporary folder is removed on every path: success, flite failing, flite
 * writing nothing, a timeout, an abort, and a child that outlives the kill and keeps writing into
 * the folder. Failing flites are small shell scripts standing in for the binary (`binaryPath`),
 * called with the same arguments (`-voice … -f text -o wav`); the success path runs the real flite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ProviderError } from '../../../src/core/errors.js';
import { FLITE_TEMP_PREFIX, runFlite, sweepStaleFliteDirs } from '../../../src/providers/local/flite.js';
import { LocalSpeechSynthesizer } from '../../../src/providers/local/synthesizer.js';
import { parseWavHeader } from '../../../src/core/audio/wav.js';

let work: string;
const scripts: Record<string, string> = {};

/** Shell prologue of every fake: `$out` is the `-o` file, `$dir` its folder. */
const PROLOGUE = `#!/bin/sh
out=""
while [ $# -gt 0 ]; do [ "$1" = "-o" ] && out="$2"; shift; done
dir=$(dirname "$out")
printf 'RIFF partial' > "$out"
`;

const FAKES: Record<string, string> = {
  // flite failing after writing half a file.
  fail: `echo "flite: voice not found" >&2\nexit 3\n`,
  // flite exiting cleanly without a file.
  silent: `rm -f "$out"\nexit 0\n`,
  // flite hanging until killed.
  hang: `exec sleep 30\n`,
  // A child that survives the kill of its parent and keeps writing into the folder for about 1 s.
  straggler: `( i=0; while [ $i -lt 20 ]; do echo x >> "$dir/late-$i.txt" 2>/dev/null; i=$((i+1)); sleep 0.05; done ) </dev/null >/dev/null 2>&1 &\nexec sleep 30\n`,
};

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'voicetwin-flite-cleanup-'));
  for (const [name, body] of Object.entries(FAKES)) {
    const file = path.join(work, `flite-${name}`);
    await writeFile(file, PROLOGUE + body);
    await chmod(file, 0o755);
    scripts[name] = file;
  }
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A fresh folder to hold the per-call folders, and what is left in it. */
async function freshRoot(): Promise<{ root: string; left: () => Promise<string[]> }> {
  const root = await mkdtemp(path.join(work, 'root-'));
  return { root, left: async () => (await readdir(root)).filter((n) => n.startsWith(FLITE_TEMP_PREFIX)) };
}

const params = { fliteVoice: 'slt' as const };

describe('runFlite temporary folder', () => {
  it('is gone after a successful call with the real flite', async () => {
    const { root, left } = await freshRoot();
    const wav = await runFlite('Hello there.', params, { timeoutMs: 20_000, tmpRoot: root });
    expect(parseWavHeader(wav)?.sampleRateHz).toBe(16000);
    expect(await left()).toEqual([]);
  });

  it('is gone when flite fails, and the error is flite’s own', async () => {
    const { root, left } = await freshRoot();
    const err = await runFlite('Hello.', params, { binaryPath: scripts.fail!, timeoutMs: 10_000, tmpRoot: root }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).message).toMatch(/flite exited with 3: flite: voice not found/);
    expect(await left()).toEqual([]);
  });

  it('is gone when flite writes no file', async () => {
    const { root, left } = await freshRoot();
    await expect(runFlite('Hello.', params, { binaryPath: scripts.silent!, timeoutMs: 10_000, tmpRoot: root })).rejects.toThrow(/flite wrote no audio file/);
    expect(await left()).toEqual([]);
  });

  it('is gone after a timeout (the child killed) and after an abort', async () => {
    const { root, left } = await freshRoot();
    const timedOut = await runFlite('Hello.', params, { binaryPath: scripts.hang!, timeoutMs: 300, tmpRoot: root }).catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(ProviderError);
    expect((timedOut as ProviderError).retryable).toBe(true);
    expect((timedOut as Error).message).toMatch(/timed out after 300 ms/);
    expect(await left()).toEqual([]);

    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('user went away')), 200);
    await expect(runFlite('Hello.', params, { binaryPath: scripts.hang!, timeoutMs: 10_000, tmpRoot: root, signal: controller.signal })).rejects.toThrow('user went away');
    expect(await left()).toEqual([]);
  });

  it('is gone even when a child outlives the kill and keeps writing into it', async () => {
    const { root, left } = await freshRoot();
    const cleanupErrors: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      await expect(
        runFlite('Hello.', params, { binaryPath: scripts.straggler!, timeoutMs: 300, tmpRoot: root, onCleanupError: (_dir, err) => cleanupErrors.push(err) }),
      ).rejects.toThrow(/timed out/);
      expect(await left()).toEqual([]);
    }
    // The stragglers cannot bring the folder back once it is removed.
    await new Promise((r) => setTimeout(r, 1200));
    expect(await left()).toEqual([]);
    expect(cleanupErrors).toEqual([]);
  });

  it('leaves nothing through the synthesizer either, on failure and on timeout', async () => {
    const { root, left } = await freshRoot();
    const failing = new LocalSpeechSynthesizer({ engine: 'flite', fliteBinaryPath: scripts.fail!, tmpRoot: root });
    await expect(failing.synthesize({ text: 'Hello there.' })).rejects.toThrow(/flite exited with 3/);
    const hanging = new LocalSpeechSynthesizer({ engine: 'flite', fliteBinaryPath: scripts.hang!, tmpRoot: root, timeoutMs: () => 300 });
    await expect(hanging.synthesize({ text: 'Hello there.' })).rejects.toThrow(/timed out/);
    expect(await left()).toEqual([]);
  });
});

describe('sweepStaleFliteDirs', () => {
  it('removes the folders a killed process left, older than the limit, and keeps fresh and unrelated ones', async () => {
    const { root, left } = await freshRoot();
    const stale = path.join(root, `${FLITE_TEMP_PREFIX}stale1`);
    const fresh = path.join(root, `${FLITE_TEMP_PREFIX}fresh1`);
    const other = path.join(root, 'someone-else');
    for (const dir of [stale, fresh, other]) {
      await mkdir(dir);
      await writeFile(path.join(dir, 'speech.wav'), 'x');
    }
    const hourAgo = new Date(Date.now() - 3600_000);
    await utimes(stale, hourAgo, hourAgo);
    await utimes(other, hourAgo, hourAgo);
    expect(await sweepStaleFliteDirs({ tmpRoot: root })).toBe(1);
    expect(await left()).toEqual([`${FLITE_TEMP_PREFIX}fresh1`]);
    expect(await readdir(root)).toContain('someone-else');
    expect(await sweepStaleFliteDirs({ tmpRoot: path.join(root, 'missing') })).toBe(0);
  });

  it('runs before the synthesizer’s first flite call', async () => {
    const { root, left } = await freshRoot();
    const stale = path.join(root, `${FLITE_TEMP_PREFIX}old`);
    await mkdir(stale);
    const longAgo = new Date(Date.now() - 24 * 3600_000);
    await utimes(stale, longAgo, longAgo);
    const tts = new LocalSpeechSynthesizer({ engine: 'flite', tmpRoot: root });
    await tts.synthesize({ text: 'Hello there.' });
    expect(await left()).toEqual([]);
  });
});

describe('language routing of the offline voice', () => {
  it('reads Devanagari with espeak-ng’s Hindi voice and romanised Hinglish with the English flite voice', async () => {
    const tts = new LocalSpeechSynthesizer({ engine: 'flite' });
    const hindi = await tts.synthesize({ text: 'नमस्ते, आप कैसे हैं?', languageCode: 'hi' });
    expect(parseWavHeader(hindi.bytes)?.sampleRateHz).toBe(22050);
    const hinglish = await tts.synthesize({ text: 'Kya haal hai yaar, sab theek?', languageCode: 'hi' });
    expect(parseWavHeader(hinglish.bytes)?.sampleRateHz).toBe(16000);
  });
});
