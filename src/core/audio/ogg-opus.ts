/**
 * Ogg/Opus muxing and demuxing without a child process: Opus packets in, Ogg pages out, and back.
 *
 * Sources: RFC 3533 (Ogg page layout §6, lacing values, CRC-32 with generator polynomial
 * 0x04C11DB7, initial value 0, no reflection, computed over the page with its CRC field zeroed),
 * RFC 7845 (Ogg encapsulation of Opus: ID header "OpusHead" §5.1, comment header "OpusTags" §5.2,
 * granule positions at 48 kHz, pre-skip and end trimming §4), RFC 6716 §3.1 (TOC byte → packet
 * duration).
 */
import { getOggOpusInfo, opusPacketSamples48k, scanOggPages } from './ogg.js';

/** The fields of an OpusHead packet (RFC 7845 §5.1). */
export interface OpusHead {
  /** Output channel count, 1–255. */
  channels: number;
  /** Samples at 48 kHz to discard from the start of the decoded stream. */
  preSkip: number;
  /** Sample rate of the original input, Hz (informative only). */
  inputSampleRateHz: number;
  /** Gain to apply to the decoded output, dB (Q7.8 in the header). */
  outputGainDb: number;
  /** Channel mapping family: 0 = mono/stereo, 1 = Vorbis order surround, 255 = unspecified. */
  mappingFamily: number;
}

/** A demuxed Ogg/Opus logical stream. */
export interface OggOpusStream {
  head: OpusHead;
  /** Audio packets in order (header packets removed). */
  packets: Buffer[];
  /**
   * Playable length in 48 kHz samples from the granule positions (after pre-skip and end
   * trimming), or undefined when no audio page carries a granule position.
   */
  playableSamples48k: number | undefined;
}

/**
 * Splits the first Opus logical stream of an Ogg file into its header and audio packets,
 * joining packets that span pages.
 *
 * @throws Error when the bytes are truncated, hold no OpusHead page first in the stream, have an
 *   unknown OpusHead version, or a packet is left unfinished at the end of the stream
 */
export function demuxOggOpus(bytes: Buffer): OggOpusStream {
  const { pages, truncated } = scanOggPages(bytes);
  if (truncated) throw new Error('Ogg stream is truncated');
  const first = pages[0];
  if (!first || first.bodySizeBytes < 19 || bytes.toString('latin1', first.bodyOffset, first.bodyOffset + 8) !== 'OpusHead') {
    throw new Error('first Ogg page is not an OpusHead');
  }
  const o = first.bodyOffset;
  const version = bytes[o + 8]!;
  if (version >> 4 !== 0) throw new Error(`unsupported OpusHead version ${version}`);
  const head: OpusHead = {
    channels: bytes[o + 9]!,
    preSkip: bytes.readUInt16LE(o + 10),
    inputSampleRateHz: bytes.readUInt32LE(o + 12),
    outputGainDb: bytes.readInt16LE(o + 16) / 256,
    mappingFamily: bytes[o + 18]!,
  };

  const packets: Buffer[] = [];
  let pending: Buffer[] = [];
  let packetIndex = 0; // 0 = OpusHead, 1 = OpusTags, ≥ 2 = audio
  for (const page of pages) {
    if (page.serialNumber !== first.serialNumber) continue;
    if (!(page.headerType & 0x01) && pending.length > 0) throw new Error('Ogg packet continues onto a page not flagged as continued');
    let start = page.bodyOffset;
    let cursor = page.bodyOffset;
    for (const lacing of page.segments) {
      cursor += lacing;
      if (lacing < 255) {
        pending.push(bytes.subarray(start, cursor));
        if (packetIndex >= 2) packets.push(pending.length === 1 ? pending[0]! : Buffer.concat(pending));
        packetIndex++;
        pending = [];
        start = cursor;
      }
    }
    if (cursor > start) pending.push(bytes.subarray(start, cursor));
    if (page.headerType & 0x04) break; // end of stream; a chained stream may follow
  }
  if (pending.length > 0) throw new Error('Ogg stream ends inside a packet');
  const info = getOggOpusInfo(bytes);
  const hasGranule = pages.some((p, i) => i > 0 && p.serialNumber === first.serialNumber && p.granulePosition > 0);
  return { head, packets, playableSamples48k: hasGranule ? Math.round(info.durationSec * 48000) : undefined };
}

/** Parameters of {@link muxOggOpus}. */
export interface OggOpusMuxOptions {
  /** Channel count written to OpusHead (1 or 2, mapping family 0). */
  channels: 1 | 2;
  /** Encoder lookahead in 48 kHz samples (OpusHead pre-skip). */
  preSkip: number;
  /** Rate of the original input, Hz (OpusHead, informative). */
  inputSampleRateHz: number;
  /** Playable length in 48 kHz samples; the last page's granule is pre-skip + this (end trimming). */
  playableSamples48k: number;
  /** OpusTags vendor string (default `libopus`); no user comments are written. */
  vendor?: string;
  /** Ogg bitstream serial number (default: derived from the packets, so output is deterministic). */
  serialNumber?: number;
  /** Most 48 kHz samples of audio per page (default 48000, one second). */
  maxPageSamples48k?: number;
}

/**
 * Wraps Opus packets in an Ogg stream: a page with OpusHead (beginning-of-stream flag), a page
 * with OpusTags, then audio pages of up to `maxPageSamples48k` and 255 lacing values each. Each
 * audio page's granule position is the 48 kHz sample count at its last packet's end, counted
 * from the start of the stream including pre-skip; the last page has the end-of-stream flag and
 * granule pre-skip + `playableSamples48k` (RFC 7845 §4 end trimming).
 *
 * @param packets Opus packets, each holding whole frames of one channel count
 * @returns the Ogg/Opus file bytes
 * @throws RangeError when there are no packets, the playable length exceeds the packets' total
 *   duration, or a packet is larger than one page can hold
 */
export function muxOggOpus(packets: Buffer[], options: OggOpusMuxOptions): Buffer {
  if (packets.length === 0) throw new RangeError('no Opus packets to mux');
  const { channels, preSkip, inputSampleRateHz, playableSamples48k } = options;
  const maxPageSamples = options.maxPageSamples48k ?? 48000;
  const serial = options.serialNumber ?? (oggCrc32(Buffer.concat(packets.slice(0, 8))) >>> 0);
  const endGranule = preSkip + playableSamples48k;

  const headBytes = Buffer.alloc(19);
  headBytes.write('OpusHead', 0, 'latin1');
  headBytes[8] = 1; // version
  headBytes[9] = channels;
  headBytes.writeUInt16LE(preSkip, 10);
  headBytes.writeUInt32LE(inputSampleRateHz, 12);
  headBytes.writeInt16LE(0, 16); // output gain
  headBytes[18] = 0; // mapping family 0: mono or stereo
  const vendor = Buffer.from(options.vendor ?? 'libopus', 'utf8');
  const tagsBytes = Buffer.alloc(8 + 4 + vendor.length + 4);
  tagsBytes.write('OpusTags', 0, 'latin1');
  tagsBytes.writeUInt32LE(vendor.length, 8);
  vendor.copy(tagsBytes, 12);
  tagsBytes.writeUInt32LE(0, 12 + vendor.length); // no user comments

  const out: Buffer[] = [];
  let sequence = 0;
  out.push(oggPage([headBytes], 0x02, 0, serial, sequence++));
  out.push(oggPage([tagsBytes], 0x00, 0, serial, sequence++));

  let granule = 0;
  let page: Buffer[] = [];
  let pageSegments = 0;
  let pageSamples = 0;
  for (let i = 0; i < packets.length; i++) {
    const packet = packets[i]!;
    const segments = Math.floor(packet.length / 255) + 1;
    if (segments > 255) throw new RangeError(`Opus packet of ${packet.length} bytes does not fit one Ogg page`);
    const samples = opusPacketSamples48k(packet, 0, packet.length);
    if (page.length > 0 && (pageSegments + segments > 255 || pageSamples + samples > maxPageSamples)) {
      out.push(oggPage(page, 0x00, granule, serial, sequence++));
      page = [];
      pageSegments = 0;
      pageSamples = 0;
    }
    page.push(packet);
    pageSegments += segments;
    pageSamples += samples;
    granule += samples;
  }
  if (endGranule > granule) throw new RangeError(`playable length ${playableSamples48k} exceeds the packets' ${granule - preSkip} samples after pre-skip`);
  out.push(oggPage(page, 0x04, endGranule, serial, sequence));
  return Buffer.concat(out);
}

/** One Ogg page holding whole `packets` (RFC 3533 §6), CRC filled in. */
function oggPage(packets: Buffer[], headerType: number, granulePosition: number, serialNumber: number, sequenceNumber: number): Buffer {
  const lacing: number[] = [];
  let bodySize = 0;
  for (const packet of packets) {
    let left = packet.length;
    while (left >= 255) {
      lacing.push(255);
      left -= 255;
    }
    lacing.push(left);
    bodySize += packet.length;
  }
  const page = Buffer.alloc(27 + lacing.length + bodySize);
  page.write('OggS', 0, 'latin1');
  page[4] = 0; // stream structure version
  page[5] = headerType;
  page.writeBigInt64LE(BigInt(granulePosition), 6);
  page.writeUInt32LE(serialNumber, 14);
  page.writeUInt32LE(sequenceNumber, 18);
  page[26] = lacing.length;
  for (let i = 0; i < lacing.length; i++) page[27 + i] = lacing[i]!;
  let offset = 27 + lacing.length;
  for (const packet of packets) offset += packet.copy(page, offset);
  page.writeUInt32LE(oggCrc32(page), 22);
  return page;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let b = 0; b < 8; b++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

/**
 * Ogg's CRC-32 (RFC 3533 §6: generator 0x04C11DB7, initial value 0, MSB first, no final XOR).
 * @returns the checksum as an unsigned 32-bit integer
 */
export function oggCrc32(bytes: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ bytes[i]!) & 0xff]!) >>> 0;
  return crc;
}
