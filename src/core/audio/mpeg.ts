/**
 * MPEG audio (MP3) frame headers and ID3v2 tags, read without decoding: enough to recognise an
 * MP3 file and to count its samples when a piped stream carries no duration.
 *
 * Sources: ISO/IEC 11172-3 and 13818-3 frame header layout and tables, as summarised in
 * http://www.mp3-tech.org/programmer/frame_header.html; ID3v2 header: https://id3.org/id3v2.4.0-structure;
 * Xing/Info and VBRI headers: http://gabriel.mp3-tech.org/mp3infotag.html.
 */

/** A parsed MPEG audio frame header. */
export interface MpegFrameHeader {
  /** Whole frame length in bytes, header included. */
  frameBytes: number;
  /** PCM samples per channel the frame decodes to. */
  samples: number;
  sampleRateHz: number;
  /** 1, 2 or 3. */
  layer: number;
  /** Raw version bits: 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5. */
  versionBits: number;
}

// Bitrates in kbit/s by [version group][layer − 1][index]; version group 0 = MPEG-1, 1 = MPEG-2/2.5.
const BITRATES_KBPS: readonly (readonly (readonly number[])[])[] = [
  [
    [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
    [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  ],
  [
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
  ],
];
const SAMPLE_RATES_HZ: Record<number, readonly number[]> = {
  3: [44100, 48000, 32000],
  2: [22050, 24000, 16000],
  0: [11025, 12000, 8000],
};

/**
 * Parses the 4-byte frame header at `offset`: 11 sync bits, a valid version, layer, bitrate
 * (free format is not accepted) and sample-rate index, and a valid emphasis value.
 * @returns undefined when the bytes there are not a valid header
 */
export function parseMpegFrameHeader(bytes: Buffer, offset: number): MpegFrameHeader | undefined {
  if (offset < 0 || offset + 4 > bytes.length) return undefined;
  const b1 = bytes[offset + 1]!;
  const b2 = bytes[offset + 2]!;
  if (bytes[offset] !== 0xff || (b1 & 0xe0) !== 0xe0) return undefined;
  const versionBits = (b1 >> 3) & 3; // 0 = 2.5, 1 = reserved, 2 = MPEG-2, 3 = MPEG-1
  const layerBits = (b1 >> 1) & 3; // 0 = reserved (ADTS AAC uses it), 1 = III, 2 = II, 3 = I
  const bitrateIndex = b2 >> 4;
  const rateIndex = (b2 >> 2) & 3;
  if (versionBits === 1 || layerBits === 0 || bitrateIndex === 15 || bitrateIndex === 0 || rateIndex === 3) return undefined;
  if ((bytes[offset + 3]! & 3) === 2) return undefined; // reserved emphasis value
  const layer = 4 - layerBits;
  const group = versionBits === 3 ? 0 : 1;
  const bitrateBps = BITRATES_KBPS[group]![layer - 1]![bitrateIndex]! * 1000;
  const sampleRateHz = SAMPLE_RATES_HZ[versionBits]![rateIndex]!;
  const padding = (b2 >> 1) & 1;
  let frameBytes: number;
  let samples: number;
  if (layer === 1) {
    frameBytes = (Math.floor((12 * bitrateBps) / sampleRateHz) + padding) * 4;
    samples = 384;
  } else if (layer === 2 || group === 0) {
    frameBytes = Math.floor((144 * bitrateBps) / sampleRateHz) + padding;
    samples = 1152;
  } else {
    frameBytes = Math.floor((72 * bitrateBps) / sampleRateHz) + padding;
    samples = 576;
  }
  return { frameBytes, samples, sampleRateHz, layer, versionBits };
}

/** Length in bytes of the frame whose header starts at `offset`, or undefined if the header is invalid. */
export function mpegAudioFrameLength(bytes: Buffer, offset: number): number | undefined {
  return parseMpegFrameHeader(bytes, offset)?.frameBytes;
}

/** Offset just past an ID3v2 tag at `offset` (header + syncsafe size + optional footer), or undefined if there is none or it is malformed. */
export function id3v2End(bytes: Buffer, offset = 0): number | undefined {
  if (bytes.length < offset + 10 || bytes.toString('latin1', offset, offset + 3) !== 'ID3') return undefined;
  if (bytes[offset + 3] === 0xff || bytes[offset + 4] === 0xff) return undefined;
  let size = 0;
  for (let i = offset + 6; i < offset + 10; i++) {
    const b = bytes[i]!;
    if (b & 0x80) return undefined; // syncsafe integers keep the top bit clear
    size = (size << 7) | b;
  }
  const hasFooter = (bytes[offset + 5]! & 0x10) !== 0;
  return offset + 10 + size + (hasFooter ? 10 : 0);
}

/**
 * Duration of an MP3 by walking its frames and adding up their samples (a Xing/Info/VBRI header
 * frame counts for nothing). Skips leading ID3v2 tags; stops at an ID3v1/APE tag or when sync is
 * lost for more than 64 KiB.
 *
 * @returns seconds, or undefined when frames cover less than half of the bytes (not a plain MP3)
 */
export function mp3DurationSec(bytes: Buffer): number | undefined {
  let offset = 0;
  for (let end = id3v2End(bytes, offset); end !== undefined; end = id3v2End(bytes, offset)) offset = end;
  let samples = 0;
  let frameBytes = 0;
  let first: MpegFrameHeader | undefined;
  while (offset + 4 <= bytes.length) {
    const header = parseMpegFrameHeader(bytes, offset);
    const consistent = header && (!first || (header.sampleRateHz === first.sampleRateHz && header.layer === first.layer));
    if (!header || !consistent || offset + header.frameBytes > bytes.length) {
      const tag = bytes.toString('latin1', offset, offset + 3);
      if (tag === 'TAG' || tag === 'APE' || tag === 'LYR') break;
      if (header && consistent) break; // last frame cut short
      const next = resync(bytes, offset + 1, first);
      if (next === undefined) break;
      offset = next;
      continue;
    }
    if (!first) {
      first = header;
      if (isInfoFrame(bytes, offset, header.frameBytes)) {
        offset += header.frameBytes;
        frameBytes += header.frameBytes;
        continue;
      }
    }
    samples += header.samples;
    frameBytes += header.frameBytes;
    offset += header.frameBytes;
  }
  if (!first || frameBytes < bytes.length / 2) return undefined;
  return samples / first.sampleRateHz;
}

function resync(bytes: Buffer, from: number, first: MpegFrameHeader | undefined): number | undefined {
  const limit = Math.min(bytes.length - 4, from + 64 * 1024);
  for (let i = from; i <= limit; i++) {
    if (bytes[i] !== 0xff) continue;
    const header = parseMpegFrameHeader(bytes, i);
    if (!header || (first && header.sampleRateHz !== first.sampleRateHz)) continue;
    // Require a second header where this frame ends, as random data rarely provides one.
    if (parseMpegFrameHeader(bytes, i + header.frameBytes)) return i;
  }
  return undefined;
}

function isInfoFrame(bytes: Buffer, offset: number, frameBytes: number): boolean {
  const text = bytes.toString('latin1', offset + 4, Math.min(bytes.length, offset + Math.min(frameBytes, 64)));
  return text.includes('Xing') || text.includes('Info') || text.includes('VBRI');
}
