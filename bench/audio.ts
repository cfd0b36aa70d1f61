/**
 * Audio pipeline benchmark on a 10 s voice note (espeak-ng speech, Ogg/Opus 48 kHz like a
 * Telegram voice note): probe, decode to 16 kHz PCM, enrollment analysis, Opus encode, plus the
 * refusal of one-hour files (MP3 without a duration header, 8 kHz WAV) by `checkAudio`.
 *
 * Run alone with `npx tsx bench/audio.ts`; the main bench runner imports {@link benchAudio}.
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { analyseSample, checkAudio, decodeToPcm, DEFAULT_AUDIO_LIMITS, encodeVoiceNote, MIB, probeAudio } from '../src/core/audio/index.js';
import { pcmToWav } from '../src/core/audio/wav.js';

/** Latency of one operation, in milliseconds. */
export interface OpLatency {
  p50Ms: number;
  p95Ms: number;
}

const ITERATIONS = Number(process.env.BENCH_AUDIO_ITERATIONS ?? 20);
const WARMUP = 3;

function ffmpeg(args: string[], input?: Buffer): Buffer {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-v', 'error', '-nostdin', ...args], { input, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr.toString()}`);
  return r.stdout;
}

function percentile(sorted: number[], p: number): number {
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round((sorted[idx] ?? 0) * 100) / 100;
}

async function measure(iterations: number, op: () => unknown): Promise<OpLatency> {
  for (let i = 0; i < WARMUP; i++) await op();
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const started = performance.now();
    await op();
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return { p50Ms: percentile(samples, 50), p95Ms: percentile(samples, 95) };
}

async function expectTooLong(bytes: Buffer, maxBytes: number): Promise<void> {
  try {
    await checkAudio(bytes, { ...DEFAULT_AUDIO_LIMITS, maxBytes });
  } catch (err) {
    if ((err as { code?: string }).code === 'AUDIO_TOO_LONG') return;
    throw err;
  }
  throw new Error('a one-hour file was accepted');
}

/** Measures each stage; keys name the operation, values are p50/p95 in ms. */
export async function benchAudio(): Promise<Record<string, OpLatency>> {
  const espeak = spawnSync('espeak-ng', ['--stdout', '-v', 'en-us', '-s', '150', '--',
    'I had a long day at work today and I would like to plan my weekend. Maybe a walk by the river, then dinner with friends, and some quiet time to read.'], { maxBuffer: 1 << 26 });
  if (espeak.status !== 0) throw new Error(`espeak-ng failed: ${espeak.stderr.toString()}`);
  const voiceNote = ffmpeg(['-i', 'pipe:0', '-af', 'apad=whole_dur=10', '-t', '10', '-ac', '1', '-ar', '48000', '-c:a', 'libopus', '-b:a', '32k', '-f', 'ogg', 'pipe:1'], espeak.stdout);
  const pcm = await decodeToPcm(voiceNote);
  const hourMp3 = ffmpeg(['-f', 'lavfi', '-i', 'anullsrc=r=8000:cl=mono', '-t', '3600', '-c:a', 'libmp3lame', '-b:a', '8k', '-id3v2_version', '0', '-f', 'mp3', 'pipe:1']);
  const hourWav = pcmToWav({ samples: new Int16Array(3600 * 8000), sampleRateHz: 8000 });

  return {
    probe10s: await measure(ITERATIONS, () => probeAudio(voiceNote)),
    decode10s: await measure(ITERATIONS, () => decodeToPcm(voiceNote)),
    analyse10s: await measure(ITERATIONS * 3, () => analyseSample(pcm)),
    encode10s: await measure(ITERATIONS, () => encodeVoiceNote(pcm)),
    rejectHourMp3: await measure(ITERATIONS, () => expectTooLong(hourMp3, DEFAULT_AUDIO_LIMITS.maxBytes)),
    rejectHourWav: await measure(ITERATIONS, () => expectTooLong(hourWav, 100 * MIB)),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(JSON.stringify(await benchAudio(), null, 2));
}
