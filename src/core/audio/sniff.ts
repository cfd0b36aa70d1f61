/**
 * Container detection from magic bytes only (never from file names or declared MIME types:
 * platforms and providers mislabel audio, e.g. MP3 bytes named `.ogg`).
 */
import { id3v2End, mpegAudioFrameLength } from './mpeg.js';
import type { AudioContainer } from './types.js';

/** Human list of what {@link sniffContainer} recognises, for error messages. */
export const SUPPORTED_FORMATS_TEXT = 'OGG/Opus voice notes, MP3, WAV, FLAC, M4A/AAC and WebM';

/** ffmpeg demuxer to force for each container (stops ffmpeg guessing, e.g. playlists). */
export const DEMUXER: Record<AudioContainer, string> = {
  ogg: 'ogg',
  webm: 'matroska',
  wav: 'wav',
  mp3: 'mp3',
  flac: 'flac',
  m4a: 'mov',
};

/** ISO BMFF major/compatible brands accepted as M4A (audio in an MP4 container). */
const MP4_BRANDS = new Set([
  'M4A ', 'M4B ', 'M4P ', 'F4A ', 'mp41', 'mp42', 'mp71', 'isom', 'iso2', 'iso3', 'iso4', 'iso5', 'iso6',
  'dash', 'avc1', 'MSNV', '3gp4', '3gp5', '3gp6', '3gp7', '3g2a', '3g2b', '3g2c', 'qt  ',
]);

/**
 * Recognises an audio container from its first bytes.
 *
 * - Ogg: `OggS` (RFC 3533 §6)
 * - WebM/Matroska: EBML magic `1A 45 DF A3` (RFC 9559 §8)
 * - WAV: `RIFF` or `RF64`, size, `WAVE`
 * - FLAC: `fLaC` (RFC 9639 §6), also after an ID3v2 tag
 * - M4A: `ftyp` box at offset 4 with an MP4/M4A brand (ISO/IEC 14496-12 §4.3)
 * - MP3: an ID3v2 tag (https://id3.org/id3v2.4.0-structure) or an MPEG audio frame header
 *   (sync 11 bits set, valid version, layer, bitrate and sample-rate fields; a second header is
 *   required where the first frame ends, when the bytes reach that far)
 *
 * @param bytes the start of the file (a few kilobytes are enough; the whole file is fine)
 * @returns the container, or undefined when the bytes match none of them
 */
export function sniffContainer(bytes: Buffer): AudioContainer | undefined {
  if (bytes.length < 4) return undefined;
  const ascii4 = bytes.toString('latin1', 0, 4);
  if (ascii4 === 'OggS') return 'ogg';
  if (ascii4 === 'fLaC') return 'flac';
  if (bytes[0] === 0x1a && bytes[1] === 0x45 && bytes[2] === 0xdf && bytes[3] === 0xa3) return 'webm';
  if ((ascii4 === 'RIFF' || ascii4 === 'RF64') && bytes.length >= 12 && bytes.toString('latin1', 8, 12) === 'WAVE') return 'wav';
  if (bytes.length >= 12 && bytes.toString('latin1', 4, 8) === 'ftyp' && isMp4Audio(bytes)) return 'm4a';
  if (bytes.toString('latin1', 0, 3) === 'ID3') {
    const after = id3v2End(bytes);
    if (after === undefined) return undefined;
    if (bytes.length >= after + 4 && bytes.toString('latin1', after, after + 4) === 'fLaC') return 'flac';
    // An ID3v2 tag is an MP3 convention; the frames may lie beyond the bytes given.
    return 'mp3';
  }
  if (isMpegAudioFrameAt(bytes, 0)) return 'mp3';
  return undefined;
}

function isMp4Audio(bytes: Buffer): boolean {
  const boxSize = bytes.readUInt32BE(0);
  if (MP4_BRANDS.has(bytes.toString('latin1', 8, 12))) return true;
  const end = Math.min(bytes.length, boxSize);
  for (let offset = 16; offset + 4 <= end; offset += 4) {
    if (MP4_BRANDS.has(bytes.toString('latin1', offset, offset + 4))) return true;
  }
  return false;
}

function isMpegAudioFrameAt(bytes: Buffer, offset: number): boolean {
  const length = mpegAudioFrameLength(bytes, offset);
  if (length === undefined) return false;
  const next = offset + length;
  if (next + 4 > bytes.length) return true; // cannot confirm with a second header; the first is valid
  return mpegAudioFrameLength(bytes, next) !== undefined;
}
