/**
 * Real audio for the vendor fakes and provider tests: speech made with espeak-ng, encoded with
 * ffmpeg (Ogg/Opus, MP3, WAV at any rate and sample format). Nothing is read from the network
 * or from the shared speech corpus, so tests using it always run.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function inTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'voicetwin-fake-audio-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** espeak-ng speech as a WAV file (22 050 Hz mono 16-bit, espeak-ng's native output). */
export async function espeakWav(text: string, options: { voice?: string; wordsPerMinute?: number; pitch?: number } = {}): Promise<Buffer> {
  return inTempDir(async (dir) => {
    const out = path.join(dir, 'speech.wav');
    await run('espeak-ng', ['-v', options.voice ?? 'en-us', '-s', String(options.wordsPerMinute ?? 160), '-p', String(options.pitch ?? 50), '-w', out, text]);
    return readFile(out);
  });
}

/**
 * Transcodes audio bytes with ffmpeg.
 * @param outputArgs ffmpeg output options, e.g. `['-c:a', 'libopus', '-f', 'ogg']`
 */
export async function ffmpegTranscode(input: Buffer, outputArgs: readonly string[], extension: string): Promise<Buffer> {
  return inTempDir(async (dir) => {
    const src = path.join(dir, 'in.bin');
    const out = path.join(dir, `out.${extension}`);
    await writeFile(src, input);
    await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-i', src, ...outputArgs, out]);
    return readFile(out);
  });
}

/** Ogg/Opus mono at 48 kHz and the given bitrate, as ElevenLabs' `opus_48000_<kbps>` output. */
export function toOggOpus(wav: Buffer, kbps = 64): Promise<Buffer> {
  return ffmpegTranscode(wav, ['-ac', '1', '-ar', '48000', '-c:a', 'libopus', '-b:a', `${kbps}k`, '-f', 'ogg'], 'ogg');
}

/** MP3 at 44.1 kHz and the given bitrate, as ElevenLabs' `mp3_44100_<kbps>` output. */
export function toMp3(wav: Buffer, kbps = 128): Promise<Buffer> {
  return ffmpegTranscode(wav, ['-ac', '1', '-ar', '44100', '-c:a', 'libmp3lame', '-b:a', `${kbps}k`, '-f', 'mp3'], 'mp3');
}

/**
 * WAV at a given rate and sample format.
 * @param codec `pcm_s16le` (default) or `pcm_f32le` (what torchaudio writes for float tensors)
 */
export function toWav(input: Buffer, sampleRateHz: number, codec: 'pcm_s16le' | 'pcm_f32le' = 'pcm_s16le'): Promise<Buffer> {
  return ffmpegTranscode(input, ['-ac', '1', '-ar', String(sampleRateHz), '-c:a', codec, '-f', 'wav'], 'wav');
}

/** Reads 16-bit mono PCM out of a canonical WAV (any header length). */
export function wavSamples(wav: Buffer): { samples: Int16Array; sampleRateHz: number } {
  let offset = 12;
  let sampleRateHz = 0;
  while (offset + 8 <= wav.length) {
    const id = wav.toString('latin1', offset, offset + 4);
    const size = wav.readUInt32LE(offset + 4);
    if (id === 'fmt ') sampleRateHz = wav.readUInt32LE(offset + 12);
    if (id === 'data') {
      const count = Math.floor(Math.min(size, wav.length - offset - 8) / 2);
      const samples = new Int16Array(count);
      for (let i = 0; i < count; i++) samples[i] = wav.readInt16LE(offset + 8 + i * 2);
      return { samples, sampleRateHz };
    }
    offset += 8 + size + (size & 1);
  }
  throw new Error('not a WAV file');
}

/** espeak-ng speech resampled to 16 kHz mono PCM, the engine's internal form. */
export async function speechPcm16k(text: string, options: { wordsPerMinute?: number; pitch?: number } = {}): Promise<{ samples: Int16Array; sampleRateHz: number }> {
  return wavSamples(await toWav(await espeakWav(text, options), 16_000));
}

/** Seconds of audio in a WAV file (any sample format), from its fmt and data chunks. */
export function wavDurationSec(wav: Buffer): number {
  let offset = 12;
  let byteRate = 0;
  while (offset + 8 <= wav.length) {
    const id = wav.toString('latin1', offset, offset + 4);
    const size = wav.readUInt32LE(offset + 4);
    if (id === 'fmt ') byteRate = wav.readUInt32LE(offset + 16);
    if (id === 'data') return Math.min(size, wav.length - offset - 8) / byteRate;
    offset += 8 + size + (size & 1);
  }
  throw new Error('not a WAV file');
}
