/**
 * G.711 μ-law (ITU-T Recommendation G.711, https://www.itu.int/rec/T-REC-G.711), the audio of
 * Twilio Media Streams: `audio/x-mulaw`, 8000 Hz, mono, one byte per sample, 20 ms = 160 bytes per
 * frame (https://www.twilio.com/docs/voice/media-streams/websocket-messages).
 *
 * Encoding: the 16-bit sample is reduced to 14 bits of magnitude, biased by 0x84 (132), its
 * segment (exponent 0–7) is the position of the highest set bit above bit 7, the mantissa the 4
 * bits below it; the byte is the complement of sign | exponent | mantissa. Decoding inverts it;
 * a decoded value is within half a quantisation step of the original.
 */

/** Sample rate of Twilio's μ-law audio, Hz. */
export const MULAW_SAMPLE_RATE_HZ = 8000;
/** Duration of one Media Streams frame as we send it, ms. */
export const FRAME_MS = 20;
/** Bytes (= samples) in one 20 ms frame at 8 kHz. */
export const FRAME_BYTES = (MULAW_SAMPLE_RATE_HZ * FRAME_MS) / 1000;
/** The μ-law byte of silence (decodes to 0). */
export const MULAW_SILENCE = 0xff;

const BIAS = 0x84;
const CLIP = 32635;

const DECODE_TABLE = new Int16Array(256);
for (let i = 0; i < 256; i++) {
  const u = ~i & 0xff;
  const sign = u & 0x80;
  const exponent = (u >> 4) & 0x07;
  const mantissa = u & 0x0f;
  const magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
  DECODE_TABLE[i] = sign ? -magnitude : magnitude;
}

/** Encodes one signed 16-bit sample as a μ-law byte. */
export function encodeMulawSample(sample: number): number {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  if (s > CLIP) s = CLIP;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** Decodes one μ-law byte to a signed 16-bit sample. */
export function decodeMulawSample(byte: number): number {
  return DECODE_TABLE[byte & 0xff]!;
}

/** Encodes signed 16-bit PCM (any rate; Twilio wants 8 kHz) to μ-law bytes, one per sample. */
export function encodeMulaw(samples: Int16Array): Buffer {
  const out = Buffer.allocUnsafe(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = encodeMulawSample(samples[i]!);
  return out;
}

/** Decodes μ-law bytes to signed 16-bit PCM, one sample per byte. */
export function decodeMulaw(bytes: Uint8Array): Int16Array {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = DECODE_TABLE[bytes[i]!]!;
  return out;
}

/**
 * Cuts μ-law audio into 20 ms frames of {@link FRAME_BYTES} bytes; the last frame is padded with
 * silence so every frame Twilio plays has the same length.
 */
export function mulawFrames(bytes: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += FRAME_BYTES) {
    const frame = bytes.subarray(i, i + FRAME_BYTES);
    frames.push(frame.length === FRAME_BYTES ? frame : Buffer.concat([frame, Buffer.alloc(FRAME_BYTES - frame.length, MULAW_SILENCE)]));
  }
  return frames;
}
