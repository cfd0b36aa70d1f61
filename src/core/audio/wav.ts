/**
 * WAV (RIFF/WAVE) header reading and 16-bit mono PCM ⇄ WAV conversion in plain TypeScript.
 *
 * Source: Microsoft RIFF/WAVE format (`fmt ` chunk: format tag, channels, sample rate, byte
 * rate, block align, bits per sample; `data` chunk), as summarised in
 * http://soundfile.sapp.org/doc/WaveFormat/ and, for WAVE_FORMAT_EXTENSIBLE,
 * https://learn.microsoft.com/en-us/windows/win32/api/mmreg/ns-mmreg-waveformatextensible.
 */
import { UserInputError } from '../errors.js';
import type { PcmAudio } from '../providers.js';

/** What the `fmt ` and `data` chunks of a WAV file say. */
export interface WavHeader {
  /** 1 = PCM, 3 = IEEE float, 0xFFFE = extensible (then `subFormat` holds the real tag). */
  formatTag: number;
  /** Format tag from the extensible sub-format GUID, else equal to `formatTag`. */
  subFormat: number;
  channels: number;
  sampleRateHz: number;
  byteRate: number;
  blockAlign: number;
  bitsPerSample: number;
  /** Offset of the `fmt ` chunk body (the format tag's first byte). */
  fmtOffset: number;
  /** Size of the `fmt ` chunk body, bytes (16, 18 or 40; more for some encoders). */
  fmtSizeBytes: number;
  /** Offset of the first sample byte. */
  dataOffset: number;
  /** Bytes of sample data actually present (the declared size, capped at what the buffer holds). */
  dataSizeBytes: number;
  /** Size declared in the `data` chunk header (0 or 0xFFFFFFFF for streamed WAV). */
  declaredDataSizeBytes: number;
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/**
 * Reads the `fmt ` and `data` chunk headers of a RIFF/WAVE (or RF64) file.
 * @returns undefined when the bytes are not a WAV file with both chunks
 */
export function parseWavHeader(wav: Buffer): WavHeader | undefined {
  if (wav.length < 12) return undefined;
  const riff = wav.toString('latin1', 0, 4);
  if ((riff !== 'RIFF' && riff !== 'RF64') || wav.toString('latin1', 8, 12) !== 'WAVE') return undefined;
  let offset = 12;
  let fmt: Omit<WavHeader, 'dataOffset' | 'dataSizeBytes' | 'declaredDataSizeBytes'> | undefined;
  let ds64DataSize: number | undefined;
  while (offset + 8 <= wav.length) {
    const id = wav.toString('latin1', offset, offset + 4);
    const size = wav.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'ds64' && body + 16 <= wav.length) {
      ds64DataSize = Number(wav.readBigUInt64LE(body + 8));
    } else if (id === 'fmt ' && body + 16 <= wav.length) {
      const formatTag = wav.readUInt16LE(body);
      let subFormat = formatTag;
      if (formatTag === WAVE_FORMAT_EXTENSIBLE && size >= 40 && body + 26 <= wav.length) subFormat = wav.readUInt16LE(body + 24);
      fmt = {
        formatTag,
        subFormat,
        channels: wav.readUInt16LE(body + 2),
        sampleRateHz: wav.readUInt32LE(body + 4),
        byteRate: wav.readUInt32LE(body + 8),
        blockAlign: wav.readUInt16LE(body + 12),
        bitsPerSample: wav.readUInt16LE(body + 14),
        fmtOffset: body,
        fmtSizeBytes: size,
      };
    } else if (id === 'data') {
      if (!fmt) return undefined;
      const declared = size === 0xffffffff && ds64DataSize !== undefined ? ds64DataSize : size;
      const available = wav.length - body;
      // Streamed WAV writes 0 or 0xFFFFFFFF before the length is known: the data runs to the end.
      const present = declared === 0 || declared === 0xffffffff ? available : Math.min(declared, available);
      return { ...fmt, dataOffset: body, dataSizeBytes: Math.max(0, present), declaredDataSizeBytes: declared };
    }
    offset = body + size + (size & 1); // chunks are padded to an even size
  }
  return undefined;
}

/**
 * Wraps mono 16-bit PCM in a 44-byte RIFF/WAVE header (format tag 1).
 * @returns a new buffer: header + little-endian samples
 */
export function pcmToWav(pcm: PcmAudio): Buffer {
  const dataBytes = pcm.samples.length * 2;
  const wav = Buffer.alloc(44 + dataBytes);
  wav.write('RIFF', 0, 'latin1');
  wav.writeUInt32LE(36 + dataBytes, 4);
  wav.write('WAVE', 8, 'latin1');
  wav.write('fmt ', 12, 'latin1');
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(WAVE_FORMAT_PCM, 20);
  wav.writeUInt16LE(1, 22);
  wav.writeUInt32LE(pcm.sampleRateHz, 24);
  wav.writeUInt32LE(pcm.sampleRateHz * 2, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36, 'latin1');
  wav.writeUInt32LE(dataBytes, 40);
  pcmBytes(pcm.samples).copy(wav, 44);
  return wav;
}

/**
 * Reads a 16-bit mono PCM WAV file (plain or extensible header; streamed sizes accepted).
 * Other WAV layouts (stereo, float, 24-bit) go through `decodeToPcm` instead.
 *
 * @throws UserInputError UNSUPPORTED_FORMAT when the bytes are not WAV or not 16-bit mono PCM
 */
export function wavToPcm(wav: Buffer): PcmAudio {
  const header = parseWavHeader(wav);
  if (!header) {
    throw new UserInputError('UNSUPPORTED_FORMAT', 'That audio is not a WAV file.', { reason: 'no RIFF/WAVE fmt and data chunks' });
  }
  if (header.subFormat !== WAVE_FORMAT_PCM || header.bitsPerSample !== 16 || header.channels !== 1) {
    throw new UserInputError('UNSUPPORTED_FORMAT', 'That WAV file is not 16-bit mono PCM.', {
      formatTag: header.subFormat,
      bitsPerSample: header.bitsPerSample,
      channels: header.channels,
    });
  }
  const sampleCount = Math.floor(header.dataSizeBytes / 2);
  return { samples: int16FromBytes(wav, header.dataOffset, sampleCount), sampleRateHz: header.sampleRateHz };
}

/** Copies `count` little-endian int16 samples starting at `offset` into a new, aligned Int16Array. */
export function int16FromBytes(bytes: Buffer, offset: number, count: number): Int16Array {
  const samples = new Int16Array(count);
  Buffer.from(samples.buffer, samples.byteOffset, count * 2).set(bytes.subarray(offset, offset + count * 2));
  if (!LITTLE_ENDIAN) for (let i = 0; i < count; i++) samples[i] = bytes.readInt16LE(offset + i * 2);
  return samples;
}

/** The samples as little-endian bytes (a view, no copy, on little-endian machines). */
export function pcmBytes(samples: Int16Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  const out = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i]!, i * 2);
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
