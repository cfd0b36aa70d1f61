/**
 * Decoding any supported container to the engine's PCM form (mono, signed 16-bit). Ogg/Opus at a
 * rate libopus decodes at (8/12/16/24/48 kHz) is decoded in-process (`opus.ts`); everything else,
 * and any Ogg/Opus stream the in-process path declines, goes through ffmpeg over pipes.
 * ffmpeg options: https://ffmpeg.org/ffmpeg.html (`-map`, `-ac`, `-ar`, `-t`, `-f s16le`).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PcmAudio } from '../providers.js';
import { decodeOggOpusOffThread } from './workers.js';
import { corruptAudioError, emptyAudioError, unsupportedFormatError } from './probe.js';
import { audioToolPaths, runTool } from './process.js';
import { DEMUXER, sniffContainer } from './sniff.js';
import type { AudioContainer } from './types.js';
import { int16FromBytes, parseWavHeader, wavToPcm } from './wav.js';

/** Default time allowed for one decode, ms. */
export const DECODE_TIMEOUT_MS = 60_000;

/** Options of {@link decodeToPcm}. */
export interface DecodeOptions {
  /** Output sample rate, Hz (default 16000, what STT and analysis expect). */
  sampleRateHz?: number;
  /** Keep at most this many seconds from the start (ffmpeg `-t`). */
  maxDurationSec?: number;
  signal?: AbortSignal;
  /** Default {@link DECODE_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/**
 * Decodes the first audio stream of `bytes` (any supported container) to mono signed 16-bit PCM,
 * down-mixing channels and resampling to `sampleRateHz`.
 *
 * Ogg/Opus is decoded in-process when `sampleRateHz` is 8000, 12000, 16000, 24000 or 48000 Hz
 * (pre-skip, end trimming and output gain honoured); other input goes to ffmpeg through stdin, except an M4A whose `moov` box follows its `mdat` box: ffmpeg needs
 * to seek for that, so it is written to a private temporary file (mode 0600) that is removed
 * right after.
 *
 * @returns samples at `sampleRateHz` (Hz), at most `maxDurationSec` seconds long
 * @throws UserInputError EMPTY_AUDIO (0 bytes), UNSUPPORTED_FORMAT (unknown magic bytes),
 *   CORRUPT_AUDIO (ffmpeg fails or yields no samples)
 * @throws DependencyError when ffmpeg is missing; AudioToolError on timeout; the abort reason when aborted
 * @throws RangeError for a sample rate outside 1000–192000 Hz or a non-positive `maxDurationSec`
 */
export async function decodeToPcm(bytes: Buffer, options: DecodeOptions = {}): Promise<PcmAudio> {
  if (bytes.length === 0) throw emptyAudioError({ sizeBytes: 0 });
  const container = sniffContainer(bytes);
  if (!container) throw unsupportedFormatError({ sizeBytes: bytes.length, magic: bytes.subarray(0, 8).toString('hex') });
  const sampleRateHz = options.sampleRateHz ?? 16000;
  if (!Number.isInteger(sampleRateHz) || sampleRateHz < 1000 || sampleRateHz > 192000) {
    throw new RangeError(`sampleRateHz must be an integer between 1000 and 192000, got ${sampleRateHz}`);
  }
  const limitSec = options.maxDurationSec;
  if (limitSec !== undefined && !(limitSec > 0)) throw new RangeError(`maxDurationSec must be positive, got ${limitSec}`);
  // 16-bit mono WAV already at the wanted rate needs no decoder.
  if (container === 'wav') {
    const h = parseWavHeader(bytes);
    if (h && h.subFormat === 1 && h.bitsPerSample === 16 && h.channels === 1 && h.sampleRateHz === sampleRateHz && h.dataSizeBytes >= 2) {
      const pcm = wavToPcm(bytes);
      if (limitSec !== undefined && pcm.samples.length > limitSec * sampleRateHz) {
        return { samples: pcm.samples.slice(0, Math.floor(limitSec * sampleRateHz)), sampleRateHz };
      }
      return pcm;
    }
  }
  if (container === 'ogg') {
    options.signal?.throwIfAborted();
    const pcm = await decodeOggOpusOffThread(bytes, sampleRateHz, limitSec);
    if (pcm) return pcm;
  }
  const output = ['-map', '0:a:0', '-vn', '-sn', '-dn', '-ac', '1', '-ar', String(sampleRateHz)];
  if (limitSec !== undefined) output.push('-t', String(limitSec));
  output.push('-c:a', 'pcm_s16le', '-f', 's16le', 'pipe:1');
  // Longest output accepted: the cap plus a second, or three hours.
  const maxStdoutBytes = Math.ceil(((limitSec ?? 3 * 3600) + 1) * sampleRateHz * 2);

  const result = await withFfmpegInput(bytes, container, (input, stdin) =>
    runTool(audioToolPaths().ffmpeg, ['-hide_banner', '-v', 'error', ...input, ...output], {
      input: stdin,
      timeoutMs: options.timeoutMs ?? DECODE_TIMEOUT_MS,
      signal: options.signal,
      label: 'ffmpeg',
      maxStdoutBytes,
    }),
  );
  if (result.exitCode !== 0) throw corruptAudioError({ container, tool: 'ffmpeg', exitCode: result.exitCode, stderr: result.stderr });
  const sampleCount = Math.floor(result.stdout.length / 2);
  if (sampleCount === 0) throw corruptAudioError({ container, reason: 'no samples decoded', stderr: result.stderr });
  return { samples: int16FromBytes(result.stdout, 0, sampleCount), sampleRateHz };
}

/**
 * Runs `run` with ffmpeg input arguments for `bytes`: stdin (`pipe:0`) normally, or a private
 * temporary file when the container cannot be read without seeking.
 */
export async function withFfmpegInput<T>(
  bytes: Buffer,
  container: AudioContainer,
  run: (inputArgs: string[], stdin: Buffer | undefined) => Promise<T>,
): Promise<T> {
  if (!needsSeekableInput(bytes, container)) {
    return run(['-protocol_whitelist', 'pipe', '-f', DEMUXER[container], '-i', 'pipe:0'], bytes);
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'voicetwin-audio-'));
  try {
    const file = path.join(dir, `input.${container}`);
    await writeFile(file, bytes, { mode: 0o600 });
    return await run(['-nostdin', '-protocol_whitelist', 'file', '-f', DEMUXER[container], '-i', file], undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * True for an MP4/M4A whose `moov` box comes after `mdat` (ISO/IEC 14496-12 top-level boxes:
 * 32-bit size, type; size 1 = 64-bit size follows; size 0 = to the end). ffmpeg cannot decode
 * such a file from a pipe.
 */
export function needsSeekableInput(bytes: Buffer, container: AudioContainer): boolean {
  if (container !== 'm4a') return false;
  let offset = 0;
  while (offset + 8 <= bytes.length) {
    let size = bytes.readUInt32BE(offset);
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    if (type === 'moov') return false;
    if (type === 'mdat') return true;
    if (size === 1) {
      if (offset + 16 > bytes.length) return false;
      size = Number(bytes.readBigUInt64BE(offset + 8));
    } else if (size === 0) {
      return false;
    }
    if (size < 8) return false;
    offset += size;
  }
  return false;
}
