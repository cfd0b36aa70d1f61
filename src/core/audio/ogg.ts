/**
 * Minimal Ogg page reader for durations and Opus stream headers, without decoding.
 *
 * Sources: RFC 3533 (Ogg page format), RFC 7845 (Ogg encapsulation of Opus: OpusHead §5.1,
 * granule position and pre-skip §4), RFC 6716 §3.1 (Opus packet TOC byte → packet duration).
 */
import { UserInputError } from '../errors.js';

/** One Ogg page as laid out in RFC 3533 §6. */
export interface OggPage {
  /** Byte offset of the `OggS` capture pattern. */
  offset: number;
  /** Header type flags: 0x01 continued packet, 0x02 beginning of stream, 0x04 end of stream. */
  headerType: number;
  /** Granule position (codec-defined; for Opus, 48 kHz samples); -1 when no packet ends on the page. */
  granulePosition: number;
  serialNumber: number;
  sequenceNumber: number;
  /** Lacing values (segment table). */
  segments: Uint8Array;
  bodyOffset: number;
  bodySizeBytes: number;
}

/** Result of walking every page of a buffer. */
export interface OggScan {
  pages: OggPage[];
  /** True when the buffer ends inside a page (an interrupted download or recording). */
  truncated: boolean;
}

const OGG_HEADER_BYTES = 27;

/**
 * Walks the Ogg pages of `bytes`. Bytes between pages that are not a page are skipped by
 * searching for the next capture pattern, as decoders do.
 */
export function scanOggPages(bytes: Buffer): OggScan {
  const pages: OggPage[] = [];
  let offset = 0;
  let truncated = false;
  while (offset < bytes.length) {
    if (!isCapturePattern(bytes, offset)) {
      const next = bytes.indexOf('OggS', offset + 1, 'latin1');
      if (next < 0) break;
      offset = next;
    }
    if (offset + OGG_HEADER_BYTES > bytes.length) {
      truncated = true;
      break;
    }
    const segmentCount = bytes[offset + 26]!;
    const bodyOffset = offset + OGG_HEADER_BYTES + segmentCount;
    if (bodyOffset > bytes.length) {
      truncated = true;
      break;
    }
    const segments = new Uint8Array(bytes.buffer, bytes.byteOffset + offset + OGG_HEADER_BYTES, segmentCount);
    let bodySizeBytes = 0;
    for (const lacing of segments) bodySizeBytes += lacing;
    if (bodyOffset + bodySizeBytes > bytes.length) {
      truncated = true;
      break;
    }
    pages.push({
      offset,
      headerType: bytes[offset + 5]!,
      granulePosition: Number(bytes.readBigInt64LE(offset + 6)),
      serialNumber: bytes.readUInt32LE(offset + 14),
      sequenceNumber: bytes.readUInt32LE(offset + 18),
      segments,
      bodyOffset,
      bodySizeBytes,
    });
    offset = bodyOffset + bodySizeBytes;
  }
  return { pages, truncated };
}

function isCapturePattern(bytes: Buffer, offset: number): boolean {
  return bytes[offset] === 0x4f && bytes[offset + 1] === 0x67 && bytes[offset + 2] === 0x67 && bytes[offset + 3] === 0x53;
}

/** What {@link getOggOpusInfo} reads from an Ogg/Opus stream. */
export interface OggOpusInfo {
  /** Output channel count from OpusHead. */
  channels: number;
  /** Sample rate of the original input, Hz, from OpusHead (informative; Opus always decodes at 48 kHz). */
  inputSampleRateHz: number;
  /** Playable duration, seconds: (last granule − first packet's granule − pre-skip) / 48000. */
  durationSec: number;
  /** Samples at 48 kHz the decoder discards at the start (OpusHead pre-skip). */
  preSkip: number;
  /** Output gain from OpusHead, dB. */
  outputGainDb: number;
  /** True when the last page carries the end-of-stream flag. */
  endOfStream: boolean;
  /** True when the bytes end inside a page. */
  truncated: boolean;
}

/**
 * Reads channels, pre-skip and input sample rate from OpusHead and the duration from granule
 * positions (RFC 7845 §4 and §5.1). Only the first logical Opus stream is considered.
 *
 * @param bytes an Ogg/Opus file
 * @throws UserInputError CORRUPT_AUDIO when the bytes hold no Ogg page with an OpusHead packet
 */
export function getOggOpusInfo(bytes: Buffer): OggOpusInfo {
  const { pages, truncated } = scanOggPages(bytes);
  const head = pages.find((p) => p.bodySizeBytes >= 19 && bytes.toString('latin1', p.bodyOffset, p.bodyOffset + 8) === 'OpusHead');
  if (!head) {
    throw new UserInputError('CORRUPT_AUDIO', 'That voice note could not be read: it is not a complete Ogg/Opus file. Please record it again.', {
      reason: 'no OpusHead',
      pages: pages.length,
    });
  }
  const o = head.bodyOffset;
  const channels = bytes[o + 9]!;
  const preSkip = bytes.readUInt16LE(o + 10);
  const inputSampleRateHz = bytes.readUInt32LE(o + 12);
  const outputGainDb = bytes.readInt16LE(o + 16) / 256;

  const streamPages = pages.filter((p) => p.serialNumber === head.serialNumber);
  let packetIndex = 0; // 0 = OpusHead, 1 = OpusTags, ≥ 2 = audio
  let startGranule: number | undefined;
  let lastGranule = -1;
  let endOfStream = false;
  for (const page of streamPages) {
    const packetsBefore = packetIndex;
    const completed = completedPackets(page);
    packetIndex += completed.length;
    if (page.granulePosition >= 0 && packetIndex > 2) {
      if (startGranule === undefined) {
        startGranule = firstPageStartGranule(bytes, page, completed, packetsBefore);
      }
      lastGranule = page.granulePosition;
    }
    if (page.headerType & 0x04) {
      endOfStream = true;
      break; // a chained stream may follow; only the first one is measured
    }
  }
  const samples = startGranule === undefined ? 0 : lastGranule - startGranule - preSkip;
  return {
    channels,
    inputSampleRateHz,
    durationSec: Math.max(0, samples) / 48000,
    preSkip,
    outputGainDb,
    endOfStream,
    truncated,
  };
}

/**
 * Granule position of the first audio sample: the first audio page's granule minus the
 * durations of the audio packets completed on it (RFC 7845 §4.3). Zero when that page is also the
 * last page (its granule may be trimmed) or its first packet started on an earlier page.
 */
function firstPageStartGranule(bytes: Buffer, page: OggPage, completed: { start: number; end: number; continued: boolean }[], packetsBefore: number): number {
  if (page.headerType & 0x04) return 0;
  let samples = 0;
  completed.forEach((packet, i) => {
    if (packetsBefore + i < 2) return; // header packets
    if (packet.continued) samples = Number.NaN;
    else samples += opusPacketSamples48k(bytes, packet.start, packet.end);
  });
  if (!Number.isFinite(samples)) return 0;
  return Math.max(0, page.granulePosition - samples);
}

/** Packets that end on `page`, as byte ranges of the page body (a continued packet's range is partial). */
function completedPackets(page: OggPage): { start: number; end: number; continued: boolean }[] {
  const out: { start: number; end: number; continued: boolean }[] = [];
  let start = page.bodyOffset;
  let cursor = page.bodyOffset;
  let continued = (page.headerType & 0x01) !== 0;
  for (const lacing of page.segments) {
    cursor += lacing;
    if (lacing < 255) {
      out.push({ start, end: cursor, continued });
      start = cursor;
      continued = false;
    }
  }
  return out;
}

/**
 * Duration of one Opus packet (`bytes[start..end)`) in 48 kHz samples, from its TOC byte
 * (RFC 6716 §3.1); 0 for an empty packet.
 */
export function opusPacketSamples48k(bytes: Buffer, start: number, end: number): number {
  if (end <= start) return 0;
  const toc = bytes[start]!;
  const config = toc >> 3;
  let frameSamples: number;
  if (config < 12) frameSamples = [480, 960, 1920, 2880][config % 4]!; // SILK-only: 10, 20, 40, 60 ms
  else if (config < 16) frameSamples = [480, 960][config % 2]!; // hybrid: 10, 20 ms
  else frameSamples = [120, 240, 480, 960][config % 4]!; // CELT-only: 2.5, 5, 10, 20 ms
  const code = toc & 3;
  let frames: number;
  if (code === 0) frames = 1;
  else if (code === 1 || code === 2) frames = 2;
  else frames = end - start >= 2 ? bytes[start + 1]! & 0x3f : 0;
  return frames * frameSamples;
}

/**
 * Duration of the first logical stream of an Ogg file whose granule position counts PCM samples
 * (Vorbis, FLAC, Speex): last granule / sample rate. For Opus use {@link getOggOpusInfo}.
 *
 * @param sampleRateHz the codec's sample rate, Hz
 * @returns seconds, or undefined when no page carries a granule position
 */
export function oggGranuleDurationSec(bytes: Buffer, sampleRateHz: number): number | undefined {
  const { pages } = scanOggPages(bytes);
  const first = pages[0];
  if (!first || sampleRateHz <= 0) return undefined;
  let last = -1;
  for (const page of pages) {
    if (page.serialNumber !== first.serialNumber) continue;
    if (page.granulePosition >= 0) last = page.granulePosition;
    if (page.headerType & 0x04) break;
  }
  return last < 0 ? undefined : last / sampleRateHz;
}
