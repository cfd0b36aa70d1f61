/**
 * In-process Ogg/Opus decoding and encoding with libopus through the `@discordjs/opus` N-API
 * binding (https://github.com/discordjs/opus), muxed and demuxed by `ogg-opus.ts`. Everything
 * here is a fast path: when the binding is not installed or a stream is outside what it handles,
 * the callers fall back to ffmpeg.
 *
 * libopus facts used: decoders and encoders run at 8, 12, 16, 24 or 48 kHz and a mono decoder
 * down-mixes a stereo stream (https://opus-codec.org/docs/opus_api-1.3.1/group__opus__decoder.html);
 * CTL request numbers and values from `opus_defines.h` (OPUS_SET_APPLICATION 4000 with
 * OPUS_APPLICATION_VOIP 2048, OPUS_SET_VBR 4006); encoder lookahead for the VoIP and audio
 * applications is 2.5 ms + 4 ms delay compensation = 312 samples at 48 kHz (`OPUS_GET_LOOKAHEAD`
 * in libopus `opus_encoder.c`), which is the pre-skip written to OpusHead (RFC 7845 §4.2).
 */
import { createRequire } from 'node:module';
import type { PcmAudio } from '../providers.js';
import { demuxOggOpus, muxOggOpus } from './ogg-opus.js';
import { resamplePcm } from './resample.js';

/** Rates libopus encodes and decodes natively, Hz. */
export const OPUS_NATIVE_RATES_HZ: readonly number[] = [8000, 12000, 16000, 24000, 48000];
/** Encoder lookahead = OpusHead pre-skip, 48 kHz samples. */
export const OPUS_ENCODER_PRE_SKIP = 312;

const OPUS_SET_APPLICATION = 4000;
const OPUS_APPLICATION_VOIP = 2048;
const OPUS_SET_VBR = 4006;
/** OPUS_SET_COMPLEXITY_REQUEST (opus_defines.h). */
const OPUS_SET_COMPLEXITY = 4010;
/**
 * Encoder complexity 0–10. 6 keeps every speech tool of the VoIP mode at about half the CPU of 10
 * (measured here: a 7.5 s reply in ~60–85 ms instead of ~110 ms), a negligible loss for 32 kb/s speech.
 */
export const OPUS_ENCODER_COMPLEXITY = 6;

/** The parts of `@discordjs/opus`'s `OpusEncoder` used here (it holds one encoder and one decoder). */
interface OpusCodec {
  encode(pcm: Buffer): Buffer;
  decode(packet: Buffer): Buffer;
  applyEncoderCTL(ctl: number, value: number): void;
  setBitrate(bitrateBps: number): void;
}
type OpusCodecClass = new (sampleRateHz: number, channels: number) => OpusCodec;

let codecClass: OpusCodecClass | null | undefined;

/** The binding's codec class, or null when it is not installed or cannot load (then ffmpeg is used). */
function loadCodec(): OpusCodecClass | null {
  if (codecClass !== undefined) return codecClass;
  try {
    const mod = createRequire(import.meta.url)('@discordjs/opus') as { OpusEncoder?: OpusCodecClass };
    codecClass = typeof mod.OpusEncoder === 'function' ? mod.OpusEncoder : null;
  } catch {
    codecClass = null;
  }
  return codecClass;
}

/** True when the in-process Opus codec is available. */
export function inProcessOpusAvailable(): boolean {
  return loadCodec() !== null;
}

/**
 * Decodes an Ogg/Opus file in-process to mono 16-bit PCM at `sampleRateHz`: stereo is down-mixed
 * by the decoder, OpusHead pre-skip and output gain are applied, the end is trimmed to the last
 * granule position, and at most `maxDurationSec` seconds are kept.
 *
 * @param sampleRateHz one of {@link OPUS_NATIVE_RATES_HZ}
 * @returns the samples, or undefined when the fast path does not apply (no binding, a rate libopus
 *   does not decode at, not an Opus stream, more than two channels or a mapping family other than
 *   0, a truncated or malformed stream, a packet the decoder rejects, or no samples) — the caller
 *   then uses ffmpeg, which also produces the user-facing error for a corrupt file
 */
export function decodeOggOpusInProcess(bytes: Buffer, sampleRateHz: number, maxDurationSec?: number): PcmAudio | undefined {
  const Codec = loadCodec();
  if (!Codec || !OPUS_NATIVE_RATES_HZ.includes(sampleRateHz)) return undefined;
  try {
    const stream = demuxOggOpus(bytes);
    const { head } = stream;
    if (head.mappingFamily !== 0 || head.channels < 1 || head.channels > 2 || stream.packets.length === 0) return undefined;
    const decoder = new Codec(sampleRateHz, 1);
    const perSample48k = 48000 / sampleRateHz;
    const skip = Math.round(head.preSkip / perSample48k);
    let wanted = stream.playableSamples48k === undefined ? Infinity : Math.round(stream.playableSamples48k / perSample48k);
    if (maxDurationSec !== undefined) wanted = Math.min(wanted, Math.floor(maxDurationSec * sampleRateHz));
    const chunks: Buffer[] = [];
    let decoded = 0;
    for (const packet of stream.packets) {
      const pcm = decoder.decode(packet);
      chunks.push(pcm);
      decoded += pcm.length / 2;
      if (decoded - skip >= wanted) break;
    }
    const all = Buffer.concat(chunks);
    const available = Math.max(0, all.length / 2 - skip);
    const count = Math.min(available, wanted);
    if (count <= 0) return undefined;
    const samples = new Int16Array(count);
    for (let i = 0; i < count; i++) samples[i] = all.readInt16LE((skip + i) * 2);
    if (head.outputGainDb !== 0) {
      const gain = 10 ** (head.outputGainDb / 20);
      for (let i = 0; i < count; i++) samples[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i]! * gain)));
    }
    return { samples, sampleRateHz };
  } catch {
    return undefined;
  }
}

/**
 * One piece of a voice note for its own libopus encoder. Pieces split at 20 ms frame boundaries
 * and encoded separately concatenate into one valid stream (see `opus-chunks.ts`).
 */
export interface OpusChunkJob {
  /** Mono 16-bit PCM at `sourceRateHz`. */
  samples: Int16Array;
  /** Rate of `samples`, Hz. */
  sourceRateHz: number;
  /** Encoder rate, Hz, one of {@link OPUS_NATIVE_RATES_HZ}. */
  encoderRateHz: number;
  /** Target bitrate, bits per second (variable bitrate). */
  bitrateBps: number;
  /**
   * True for the last piece: it is padded to whole frames and the encoder's lookahead is flushed.
   * Earlier pieces must hold a whole number of 20 ms frames and are encoded as exactly that many
   * packets (their last 312 / 48000 s stay in the encoder's lookahead and are not output).
   */
  final: boolean;
}

/**
 * Encodes one {@link OpusChunkJob} with a fresh libopus encoder: VoIP application, variable
 * bitrate, complexity {@link OPUS_ENCODER_COMPLEXITY}, 20 ms frames; PCM at another rate is first
 * converted by {@link resamplePcm}.
 *
 * @returns one Opus packet per 20 ms frame, or undefined when the binding is missing, the rate is
 *   not native, or the input rate cannot be converted in-process (the caller then uses ffmpeg)
 * @throws RangeError when a non-final piece is not a whole number of 20 ms frames
 * @throws Error when libopus rejects a frame
 */
export function encodeOpusChunk(job: OpusChunkJob): Buffer[] | undefined {
  const Codec = loadCodec();
  const { encoderRateHz } = job;
  if (!Codec || !OPUS_NATIVE_RATES_HZ.includes(encoderRateHz) || job.samples.length === 0) return undefined;
  const input = resamplePcm({ samples: job.samples, sampleRateHz: job.sourceRateHz }, encoderRateHz);
  if (!input) return undefined;
  const frame = encoderRateHz / 50; // 20 ms
  const n = input.samples.length;
  let frames: number;
  if (job.final) {
    // Enough frames to cover the input plus the encoder's lookahead.
    frames = Math.ceil((n + Math.ceil(OPUS_ENCODER_PRE_SKIP / (48000 / encoderRateHz))) / frame);
  } else {
    if (n % frame !== 0) throw new RangeError(`a non-final Opus piece must hold whole 20 ms frames, got ${n} samples at ${encoderRateHz} Hz`);
    frames = n / frame;
  }
  const encoder = new Codec(encoderRateHz, 1);
  encoder.applyEncoderCTL(OPUS_SET_APPLICATION, OPUS_APPLICATION_VOIP);
  encoder.applyEncoderCTL(OPUS_SET_VBR, 1);
  encoder.applyEncoderCTL(OPUS_SET_COMPLEXITY, OPUS_ENCODER_COMPLEXITY);
  encoder.setBitrate(Math.round(job.bitrateBps));
  const padded = Buffer.alloc(frames * frame * 2);
  Buffer.from(input.samples.buffer, input.samples.byteOffset, n * 2).copy(padded);
  const packets = new Array<Buffer>(frames);
  for (let f = 0; f < frames; f++) packets[f] = encoder.encode(padded.subarray(f * frame * 2, (f + 1) * frame * 2));
  return packets;
}

/**
 * Encodes mono PCM in-process as an Ogg/Opus voice note with one encoder (see
 * {@link encodeOpusChunk}). The last frame is padded with silence and the lookahead is flushed;
 * the stream's last granule trims playback to exactly the input's length.
 *
 * @param sampleRateHz encoder rate, one of {@link OPUS_NATIVE_RATES_HZ}
 * @returns the Ogg/Opus bytes, or undefined when the binding is missing, the rate is not native,
 *   or the input rate cannot be converted in-process (the caller then uses ffmpeg)
 * @throws Error when libopus rejects a frame
 */
export function encodeOggOpusInProcess(pcm: PcmAudio, sampleRateHz: number, bitrateBps: number): Buffer | undefined {
  const packets = encodeOpusChunk({ samples: pcm.samples, sourceRateHz: pcm.sampleRateHz, encoderRateHz: sampleRateHz, bitrateBps, final: true });
  return packets && muxVoiceNote(packets, pcm, sampleRateHz);
}

/**
 * Wraps the packets encoded from `pcm` at `encoderRateHz` in a mono Ogg/Opus stream: pre-skip =
 * the encoder's lookahead, and the last granule trims playback to exactly `pcm`'s length.
 * @throws RangeError when the packets are shorter than `pcm` (see `muxOggOpus`)
 */
export function muxVoiceNote(packets: Buffer[], pcm: PcmAudio, encoderRateHz: number): Buffer {
  const converted = pcm.sampleRateHz === encoderRateHz ? pcm.samples.length : Math.round((pcm.samples.length * encoderRateHz) / pcm.sampleRateHz);
  return muxOggOpus(packets, {
    channels: 1,
    preSkip: OPUS_ENCODER_PRE_SKIP,
    inputSampleRateHz: encoderRateHz,
    playableSamples48k: Math.round(converted * (48000 / encoderRateHz)),
  });
}
