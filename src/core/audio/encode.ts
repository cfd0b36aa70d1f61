/**
 * Encoding replies as voice notes: mono Ogg/Opus that Telegram (`sendVoice`), WhatsApp (`ptt`,
 * `audio/ogg; codecs=opus`) and Discord voice messages play as voice bubbles.
 *
 * The encoder runs in-process (`opus.ts`, libopus and our own Ogg muxer) when available; ffmpeg's
 * libopus is the fallback. ffmpeg libopus options: https://ffmpeg.org/ffmpeg-codecs.html#libopus-1 (`-application voip`,
 * `-vbr`, `-frame_duration`); Discord waveform: https://discord.com/developers/docs/resources/message#voice-messages.
 */
import type { PcmAudio } from '../providers.js';
import type { VoiceNote } from '../types.js';
import { decodeToPcm } from './decode.js';
import { getOggOpusInfo } from './ogg.js';
import { encodeOggOpusPieces, planOpusPieces } from './opus-chunks.js';
import { encodeOggOpusInProcess } from './opus.js';
import { audioWorkerThreads, encodeChunksInWorkers, onAudioWorkers } from './workers.js';
import { corruptAudioError, emptyAudioError } from './probe.js';
import { AudioToolError, audioToolPaths, runTool } from './process.js';
import { pcmBytes } from './wav.js';

/** Default time allowed for one encode, ms. */
export const ENCODE_TIMEOUT_MS = 60_000;
/** Number of points in {@link VoiceNote.waveform}. */
export const WAVEFORM_POINTS = 256;

/** Options of {@link encodeVoiceNote}. */
export interface EncodeOptions {
  /**
   * Rate of the Opus encoder and of OpusHead's input rate, Hz (default 48000; WhatsApp mobile is
   * said to prefer 16000). PCM at another rate is resampled to it first, so pass the speech's own
   * rate when libopus accepts it (`voiceEncoderRate` in `core/voice.ts` chooses; Discord keeps
   * 48 kHz: its player is reported to play a voice message whose OpusHead says 24 kHz at half
   * speed, https://github.com/openclaw/openclaw/pull/32298).
   */
  sampleRateHz?: 48000 | 24000 | 16000;
  /** Target bitrate, bits per second (default 32000, variable bitrate). */
  bitrateBps?: number;
  signal?: AbortSignal;
  /** Per ffmpeg run, ms (default {@link ENCODE_TIMEOUT_MS}). */
  timeoutMs?: number;
}

/**
 * Encodes speech as a voice note: Ogg container, Opus codec (libopus, VoIP application, 20 ms
 * frames, VBR), one channel, no metadata tags, at `sampleRateHz`. In-process when the
 * `@discordjs/opus` binding is installed (OpusTags holds only the vendor `libopus`; PCM at a rate
 * other than the encoder's is converted in-process when the ratio allows): on the audio worker
 * threads (`workers.ts`), a reply of several seconds split at quiet 20 ms boundaries into pieces
 * encoded in parallel (`opus-chunks.ts`), or in this thread when the workers are off or fail.
 * Otherwise ffmpeg (`-application voip`, `-map_metadata -1`; with bit-exact flags OpusTags keeps
 * only vendor `ffmpeg` and `encoder=Lavc libopus`, no version numbers).
 *
 * @param input PCM, or bytes in any supported container (e.g. MP3 or WAV from a TTS provider),
 *   which are decoded first
 * @returns the voice note; `durationSec` is read back from the Ogg granule positions (seconds),
 *   `waveform` has 256 points 0–255 (RMS per bucket, loudest bucket = 255)
 * @throws UserInputError EMPTY_AUDIO when there are no samples; EMPTY_AUDIO, UNSUPPORTED_FORMAT or
 *   CORRUPT_AUDIO when input bytes cannot be decoded
 * @throws DependencyError when ffmpeg is missing; AudioToolError when ffmpeg's encoder fails or
 *   times out; AudioTaskError (from `workers.ts`) when libopus fails on a worker thread
 */
export async function encodeVoiceNote(input: PcmAudio | Buffer, options: EncodeOptions = {}): Promise<VoiceNote> {
  const sampleRateHz = options.sampleRateHz ?? 48000;
  const bitrateBps = options.bitrateBps ?? 32000;
  if (!Number.isFinite(bitrateBps) || bitrateBps < 6000 || bitrateBps > 510000) {
    throw new RangeError(`bitrateBps must be between 6000 and 510000 (Opus limits), got ${bitrateBps}`);
  }
  const timeoutMs = options.timeoutMs ?? ENCODE_TIMEOUT_MS;
  const pcm = Buffer.isBuffer(input) ? await decodeToPcm(input, { sampleRateHz, signal: options.signal, timeoutMs }) : input;
  if (pcm.samples.length === 0) throw emptyAudioError({ reason: 'no samples to encode' });

  options.signal?.throwIfAborted();
  const oggOpus = (await encodeInProcess(pcm, sampleRateHz, bitrateBps)) ?? (await encodeWithFfmpeg(pcm, sampleRateHz, bitrateBps, timeoutMs, options.signal));
  const info = getOggOpusInfo(oggOpus);
  if (info.truncated || info.channels !== 1) throw corruptAudioError({ reason: 'encoder output is not a complete mono Ogg/Opus stream', info });
  return {
    oggOpus,
    durationSec: info.durationSec,
    sampleRateHz,
    waveform: voiceNoteWaveform(pcm),
    mimeType: 'audio/ogg; codecs=opus',
  };
}

/** libopus in worker threads (pieces in parallel), else in this thread; undefined when libopus cannot do it. */
function encodeInProcess(pcm: PcmAudio, sampleRateHz: number, bitrateBps: number): Promise<Buffer | undefined> {
  return onAudioWorkers(
    () => encodeOggOpusPieces(pcm, sampleRateHz, bitrateBps, planOpusPieces(pcm, audioWorkerThreads()), encodeChunksInWorkers),
    () => encodeOggOpusInProcess(pcm, sampleRateHz, bitrateBps),
  );
}

/** ffmpeg's libopus encoder and Ogg muxer over pipes. */
async function encodeWithFfmpeg(pcm: PcmAudio, sampleRateHz: number, bitrateBps: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<Buffer> {
  const args = [
    '-hide_banner', '-v', 'error',
    '-f', 's16le', '-ar', String(pcm.sampleRateHz), '-ac', '1', '-i', 'pipe:0',
    '-map_metadata', '-1', '-ac', '1', '-ar', String(sampleRateHz),
    '-c:a', 'libopus', '-b:a', String(Math.round(bitrateBps)), '-vbr', 'on', '-application', 'voip', '-frame_duration', '20',
    '-fflags', '+bitexact', '-flags:a', '+bitexact',
    '-f', 'ogg', 'pipe:1',
  ];
  const result = await runTool(audioToolPaths().ffmpeg, args, {
    input: pcmBytes(pcm.samples),
    timeoutMs,
    signal,
    label: 'ffmpeg',
  });
  if (result.exitCode !== 0 || result.stdout.length === 0) {
    throw new AudioToolError(`ffmpeg could not encode the voice note (exit ${result.exitCode})`, 'ffmpeg', result.stderr, result.exitCode);
  }
  return result.stdout;
}

/**
 * A waveform preview: the samples split into `points` equal buckets, the RMS of each, scaled
 * linearly so the loudest bucket is 255 (all zeros for silence). Buckets past the end of very
 * short audio are 0.
 *
 * @param points number of values (default 256, what Discord voice messages use)
 */
export function voiceNoteWaveform(pcm: PcmAudio, points: number = WAVEFORM_POINTS): Uint8Array {
  const n = pcm.samples.length;
  const rms = new Float64Array(points);
  let max = 0;
  for (let b = 0; b < points; b++) {
    const start = Math.floor((b * n) / points);
    const end = Math.floor(((b + 1) * n) / points);
    if (end <= start) continue;
    let sum = 0;
    for (let i = start; i < end; i++) sum += pcm.samples[i]! * pcm.samples[i]!;
    rms[b] = Math.sqrt(sum / (end - start));
    if (rms[b]! > max) max = rms[b]!;
  }
  const waveform = new Uint8Array(points);
  if (max > 0) for (let b = 0; b < points; b++) waveform[b] = Math.round((255 * rms[b]!) / max);
  return waveform;
}
