/**
 * Audio generators for tests that must always run: speech from espeak-ng, tones, noise and
 * silence from ffmpeg's lavfi sources (https://ffmpeg.org/ffmpeg-filters.html#Audio-Sources),
 * and transcoding to the containers platforms send. Everything is made in memory through pipes,
 * except MP4 variants, which ffmpeg can only write to a seekable file.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pcmToWav, wavToPcm } from '../../src/core/audio/wav.js';
import type { PcmAudio } from '../../src/core/providers.js';

const cache = new Map<string, Buffer>();

function memo(key: string, make: () => Buffer): Buffer {
  let value = cache.get(key);
  if (!value) {
    value = make();
    cache.set(key, value);
  }
  return value;
}

/** Runs a command with `input` on stdin and returns stdout; throws with stderr on failure. */
export function run(command: string, args: string[], input?: Buffer): Buffer {
  const result = spawnSync(command, args, { input, maxBuffer: 1 << 30 });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status}): ${result.stderr.toString().slice(-2000)}`);
  return result.stdout;
}

/** Runs ffmpeg quietly: `ffmpeg -v error -y …args`. */
export function ffmpeg(args: string[], input?: Buffer): Buffer {
  return run('ffmpeg', ['-hide_banner', '-v', 'error', '-nostdin', '-y', ...args], input);
}

/** Converts any audio bytes to 16-bit mono WAV at `sampleRateHz`. */
export function toWav(bytes: Buffer, sampleRateHz = 16000): Buffer {
  return ffmpeg(['-i', 'pipe:0', '-ac', '1', '-ar', String(sampleRateHz), '-c:a', 'pcm_s16le', '-f', 'wav', 'pipe:1'], bytes);
}

/** Converts any audio bytes to 16-bit mono PCM at `sampleRateHz`, decoded by the test's own ffmpeg call. */
export function toPcm(bytes: Buffer, sampleRateHz = 16000): PcmAudio {
  return wavToPcm(toWav(bytes, sampleRateHz));
}

/**
 * Speech from espeak-ng as WAV (22.05 kHz mono, espeak-ng's native rate).
 * @param options.voice espeak-ng voice (default `en-us`), `options.pitch` 0–99, `options.speedWpm` words per minute
 */
export function makeSpeechWav(text: string, options: { voice?: string; pitch?: number; speedWpm?: number } = {}): Buffer {
  const args = ['--stdout', '-v', options.voice ?? 'en-us'];
  if (options.pitch !== undefined) args.push('-p', String(options.pitch));
  if (options.speedWpm !== undefined) args.push('-s', String(options.speedWpm));
  args.push(text);
  return memo(`speech:${JSON.stringify(options)}:${text}`, () => run('espeak-ng', args));
}

/** A few sentences of espeak-ng speech, about 8 s long. */
export const SAMPLE_SENTENCES =
  'The quick brown fox jumps over the lazy dog. I am recording a sample of my own voice today. ' +
  'It should be long enough to hear how I speak.';

function lavfi(source: string, sec: number, sampleRateHz: number, filters?: string): Buffer {
  const args = ['-f', 'lavfi', '-i', source, '-t', String(sec)];
  if (filters) args.push('-af', filters);
  args.push('-ac', '1', '-ar', String(sampleRateHz), '-c:a', 'pcm_s16le', '-f', 'wav', 'pipe:1');
  return memo(`lavfi:${source}:${sec}:${sampleRateHz}:${filters}`, () => ffmpeg(args));
}

/** A pure sine tone as 16-bit mono WAV. @param amplitude 0–1 of full scale (default 0.5) */
export function makeTone(sec: number, hz: number, options: { sampleRateHz?: number; amplitude?: number } = {}): Buffer {
  const amplitude = options.amplitude ?? 0.5;
  return lavfi(`aevalsrc=${amplitude}*sin(2*PI*${hz}*t):s=${options.sampleRateHz ?? 16000}`, sec, options.sampleRateHz ?? 16000);
}

/** A tone switched on and off `beepsPerSec` times a second (a beeping alarm). */
export function makeBeeps(sec: number, hz: number, beepsPerSec: number): Buffer {
  return lavfi(`aevalsrc=0.5*sin(2*PI*${hz}*t)*gte(sin(2*PI*${beepsPerSec}*t)\\,0):s=16000`, sec, 16000);
}

/** A melody of sine notes, `noteSec` each, cycling through a C major scale. */
export function makeMelody(sec: number, noteSec = 0.3): Buffer {
  const notes = [262, 294, 330, 349, 392, 440, 494, 523];
  let expr = '0';
  notes.forEach((hz, i) => {
    expr += `+eq(mod(floor(t/${noteSec})\\,${notes.length})\\,${i})*0.4*sin(2*PI*${hz}*t)`;
  });
  return lavfi(`aevalsrc=${expr}:s=16000`, sec, 16000);
}

/** White or pink noise as 16-bit mono WAV. @param amplitude 0–1 (default 0.3) */
export function makeNoise(sec: number, options: { color?: 'white' | 'pink' | 'brown'; amplitude?: number; seed?: number } = {}): Buffer {
  return lavfi(`anoisesrc=c=${options.color ?? 'white'}:a=${options.amplitude ?? 0.3}:r=16000:s=${options.seed ?? 7}`, sec, 16000);
}

/** Digital silence as 16-bit mono WAV. */
export function makeSilence(sec: number, sampleRateHz = 16000): Buffer {
  return lavfi(`anullsrc=r=${sampleRateHz}:cl=mono`, sec, sampleRateHz);
}

/** Applies an ffmpeg audio filter chain (e.g. `volume=-40dB`) and returns 16-bit mono WAV. */
export function filterWav(bytes: Buffer, filters: string, sampleRateHz = 16000): Buffer {
  return ffmpeg(['-i', 'pipe:0', '-af', filters, '-ac', '1', '-ar', String(sampleRateHz), '-c:a', 'pcm_s16le', '-f', 'wav', 'pipe:1'], bytes);
}

/** Mixes two clips sample by sample (the second scaled by `secondGainDb`), as 16 kHz WAV as long as the first. */
export function mixWav(first: Buffer, second: Buffer, secondGainDb = 0): Buffer {
  const a = toPcm(first);
  const b = toPcm(second);
  const gain = 10 ** (secondGainDb / 20);
  const out = new Int16Array(a.samples.length);
  for (let i = 0; i < out.length; i++) {
    const v = a.samples[i]! + gain * (b.samples[i % b.samples.length] ?? 0);
    out[i] = Math.max(-32768, Math.min(32767, Math.round(v)));
  }
  return pcmToWav({ samples: out, sampleRateHz: 16000 });
}

/** Ogg/Opus mono like a Telegram voice note (48 kHz, 32 kb/s, voip). */
export function toOggOpus(bytes: Buffer): Buffer {
  return ffmpeg(['-i', 'pipe:0', '-ac', '1', '-ar', '48000', '-c:a', 'libopus', '-b:a', '32k', '-application', 'voip', '-f', 'ogg', 'pipe:1'], bytes);
}

/** MP3 (LAME, mono, 64 kb/s) with no ID3 tag, streamed through a pipe (so its Xing header holds no frame count). */
export function toMp3(bytes: Buffer, bitrate = '64k'): Buffer {
  return ffmpeg(['-i', 'pipe:0', '-ac', '1', '-c:a', 'libmp3lame', '-b:a', bitrate, '-id3v2_version', '0', '-f', 'mp3', 'pipe:1'], bytes);
}

/**
 * MP3 with an embedded PNG cover (an ID3v2 APIC frame that ffprobe lists as a video stream), as
 * music apps and some TTS services produce. Written through a temporary file: ffmpeg's MP3 muxer
 * drops attached pictures when writing to a pipe.
 */
export function toMp3WithCoverArt(bytes: Buffer): Buffer {
  const dir = mkdtempSync(path.join(tmpdir(), 'voicetwin-test-'));
  try {
    const cover = path.join(dir, 'cover.png');
    const out = path.join(dir, 'out.mp3');
    ffmpeg(['-f', 'lavfi', '-i', 'color=c=blue:s=64x64', '-frames:v', '1', cover]);
    ffmpeg(['-i', 'pipe:0', '-i', cover, '-map', '0:a', '-map', '1:v', '-c:v', 'copy', '-disposition:v:0', 'attached_pic',
      '-c:a', 'libmp3lame', '-id3v2_version', '3', out], bytes);
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** FLAC. */
export function toFlac(bytes: Buffer): Buffer {
  return ffmpeg(['-i', 'pipe:0', '-c:a', 'flac', '-f', 'flac', 'pipe:1'], bytes);
}

/** WebM with Opus, as browsers' MediaRecorder produces (streamed: no duration in the header). */
export function toWebm(bytes: Buffer): Buffer {
  return ffmpeg(['-i', 'pipe:0', '-ac', '1', '-c:a', 'libopus', '-b:a', '32k', '-f', 'webm', 'pipe:1'], bytes);
}

/**
 * M4A (AAC). ffmpeg writes MP4 only to a seekable file; by default the `moov` box goes after
 * `mdat` (as phone voice memos often are), `faststart` moves it to the front.
 */
export function toM4a(bytes: Buffer, options: { faststart?: boolean } = {}): Buffer {
  const dir = mkdtempSync(path.join(tmpdir(), 'voicetwin-test-'));
  try {
    const file = path.join(dir, 'out.m4a');
    const args = ['-i', 'pipe:0', '-ac', '1', '-c:a', 'aac', '-b:a', '64k'];
    if (options.faststart) args.push('-movflags', '+faststart');
    ffmpeg([...args, file], bytes);
    return readFileSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A one-hour MP3 of silence (8 kHz mono, 8 kb/s ≈ 3.6 MB), streamed so it has no Xing header,
 * as a TTS provider or a careless encoder produces. Takes about 2 s to make; cached per process.
 */
export function makeHourLongMp3(): Buffer {
  return memo('hour-mp3', () =>
    ffmpeg(['-f', 'lavfi', '-i', 'anullsrc=r=8000:cl=mono', '-t', '3600', '-c:a', 'libmp3lame', '-b:a', '8k', '-id3v2_version', '0', '-f', 'mp3', 'pipe:1']),
  );
}

/** A one-hour 8 kHz 16-bit mono WAV of silence (≈ 57.6 MB): a 44-byte header plus zeros, no encoder needed. */
export function makeHourLongWav(): Buffer {
  const sampleRateHz = 8000;
  const dataBytes = 3600 * sampleRateHz * 2;
  const wav = Buffer.alloc(44 + dataBytes);
  wav.write('RIFF', 0, 'latin1');
  wav.writeUInt32LE(36 + dataBytes, 4);
  wav.write('WAVEfmt ', 8, 'latin1');
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20);
  wav.writeUInt16LE(1, 22);
  wav.writeUInt32LE(sampleRateHz, 24);
  wav.writeUInt32LE(sampleRateHz * 2, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36, 'latin1');
  wav.writeUInt32LE(dataBytes, 40);
  return wav;
}

/** Decoded duration in seconds according to ffprobe reading a file the test wrote (independent of the code under test). */
export function ffprobeDurationSec(bytes: Buffer): number {
  const dir = mkdtempSync(path.join(tmpdir(), 'voicetwin-test-'));
  try {
    const file = path.join(dir, 'in.bin');
    writeFileSync(file, bytes);
    const out = run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file]);
    return Number(out.toString().trim());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** ffprobe's JSON for the streams and format of bytes written to a file. */
export function ffprobeJson(bytes: Buffer): { streams: Record<string, unknown>[]; format: Record<string, unknown> } {
  const dir = mkdtempSync(path.join(tmpdir(), 'voicetwin-test-'));
  try {
    const file = path.join(dir, 'in.bin');
    writeFileSync(file, bytes);
    return JSON.parse(run('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', file]).toString()) as {
      streams: Record<string, unknown>[];
      format: Record<string, unknown>;
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
