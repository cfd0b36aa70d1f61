/**
 * Measures the offline recogniser on every English clip of the shared speech folder that has a
 * transcript (MANIFEST.tsv; the two-speaker stereo clip and the non-English clips are left out):
 * word error rate per clip and overall, and the real-time factor (wall-clock seconds of
 * `transcribe`, model loading included, per second of audio). Clips are decoded to 16 kHz mono
 * with ffmpeg first (not timed).
 *
 * Run: `npx tsx test/providers/local/measure-stt.ts [variant…]`, variants:
 * `default` (the provider as shipped), `decoder-defaults` (no speed options), `normalise-20`
 * (input normalised to −20 dBFS speech level first).
 * Timings depend on the machine's load; compare variants in one run.
 */
import { PocketsphinxSpeechToText, type PocketsphinxOptions } from '../../../src/providers/local/pocketsphinx.js';
import { toPcm } from '../../helpers/audio.js';
import { clipRows, clipsAvailable, clipsDir, readClip } from './clips.js';
import { wordErrorRate } from './wer.js';

const VARIANTS: Record<string, PocketsphinxOptions> = {
  default: {},
  'decoder-defaults': { decoderArgs: [] },
  'normalise-20': { inputLevelDb: -20 },
};

async function main(): Promise<void> {
  if (!clipsAvailable()) {
    console.error(`no speech clips at ${clipsDir()}; set VOICETWIN_SPEECH_DIR`);
    process.exitCode = 1;
    return;
  }
  const clips = clipRows().filter(
    (c) => c.transcript && !/[^\p{Script=Latin}\p{P}\s\d]/u.test(c.transcript) && !c.transcript.startsWith('L:') && !c.path.startsWith('wenet/aishell'),
  );
  const audio = clips.map((c) => ({ clip: c, pcm: toPcm(readClip(c.path)) }));
  const names = process.argv.slice(2).length ? process.argv.slice(2) : ['default'];
  for (const name of names) {
    const stt = new PocketsphinxSpeechToText({ ...VARIANTS[name], maxConcurrent: 1 });
    let edits = 0;
    let words = 0;
    let audioSec = 0;
    let elapsedSec = 0;
    console.log(`\n== ${name}`);
    for (const { clip, pcm } of audio) {
      const started = performance.now();
      const transcript = await stt.transcribe(pcm);
      const sec = (performance.now() - started) / 1000;
      const score = wordErrorRate(clip.transcript, transcript.text);
      edits += score.edits;
      words += score.words;
      audioSec += transcript.durationSec;
      elapsedSec += sec;
      console.log(`${clip.path.padEnd(46)} WER ${(score.wer * 100).toFixed(0).padStart(3)}%  RTF ${(sec / transcript.durationSec).toFixed(2)}  "${transcript.text}"`);
    }
    console.log(`${name}: ${audio.length} clips, ${audioSec.toFixed(1)} s of audio, ${words} words: WER ${((edits / words) * 100).toFixed(1)}%, RTF ${(elapsedSec / audioSec).toFixed(3)}`);
  }
}

await main();
