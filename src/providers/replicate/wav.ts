/**
 * Joining the WAV files of several synthesis requests into one, whatever their sample format
 * (16-bit PCM, 32-bit float as torchaudio writes it, extensible headers), as long as all pieces
 * share it; pieces of different formats are decoded to 16-bit mono first.
 *
 * Source: Microsoft RIFF/WAVE (`fmt `, `fact`, `data` chunks; a `fact` chunk holding the sample
 * count is required for non-PCM formats), http://soundfile.sapp.org/doc/WaveFormat/ and
 * https://learn.microsoft.com/en-us/windows/win32/api/mmreg/ns-mmreg-waveformatextensible.
 */
import { parseWavHeader, pcmToWav } from '../../core/audio/wav.js';
import { decodeToPcm } from '../../core/audio/decode.js';

/** The raw body of the `fmt ` chunk (copied verbatim into the joined file). */
function fmtChunk(wav: Buffer): Buffer | undefined {
  let offset = 12;
  while (offset + 8 <= wav.length) {
    const id = wav.toString('latin1', offset, offset + 4);
    const size = wav.readUInt32LE(offset + 4);
    if (id === 'fmt ') return wav.subarray(offset + 8, offset + 8 + size);
    offset += 8 + size + (size & 1);
  }
  return undefined;
}

/** A WAV file from a `fmt ` chunk body and sample data (adds `fact` for non-PCM formats). */
function buildWav(fmt: Buffer, data: Buffer, blockAlign: number): Buffer {
  const formatTag = fmt.readUInt16LE(0);
  const fact = formatTag !== 1 ? Buffer.alloc(12) : Buffer.alloc(0);
  if (fact.length > 0) {
    fact.write('fact', 0, 'latin1');
    fact.writeUInt32LE(4, 4);
    fact.writeUInt32LE(Math.floor(data.length / blockAlign), 8); // sample frames per channel
  }
  const fmtPad = fmt.length & 1;
  const dataPad = data.length & 1;
  const header = Buffer.alloc(12 + 8 + fmt.length + fmtPad);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(4 + 8 + fmt.length + fmtPad + fact.length + 8 + data.length + dataPad, 4);
  header.write('WAVE', 8, 'latin1');
  header.write('fmt ', 12, 'latin1');
  header.writeUInt32LE(fmt.length, 16);
  fmt.copy(header, 20);
  const dataHeader = Buffer.alloc(8);
  dataHeader.write('data', 0, 'latin1');
  dataHeader.writeUInt32LE(data.length, 4);
  return Buffer.concat([header, fact, dataHeader, data, Buffer.alloc(dataPad)]);
}

/**
 * Joins WAV files in order with `gapSec` of silence between them.
 * @returns one WAV file; its format is the pieces' common format, else 16-bit mono at the first
 *   piece's sample rate
 * @throws UserInputError UNSUPPORTED_FORMAT / CORRUPT_AUDIO (from decoding) when a piece is not audio
 */
export async function joinWavs(wavs: readonly Buffer[], gapSec = 0.15): Promise<Buffer> {
  if (wavs.length === 1) return wavs[0] as Buffer;
  const headers = wavs.map((w) => parseWavHeader(w));
  const first = headers[0];
  const fmt = wavs[0] ? fmtChunk(wavs[0]) : undefined;
  const same =
    first !== undefined &&
    fmt !== undefined &&
    headers.every(
      (h) => h !== undefined && h.subFormat === first.subFormat && h.channels === first.channels && h.sampleRateHz === first.sampleRateHz && h.bitsPerSample === first.bitsPerSample,
    );
  if (same) {
    const gapBytes = Math.round(gapSec * first.sampleRateHz) * first.blockAlign;
    const parts: Buffer[] = [];
    wavs.forEach((wav, i) => {
      const h = headers[i] as NonNullable<(typeof headers)[number]>;
      if (i > 0) parts.push(Buffer.alloc(gapBytes)); // zero bytes are silence in integer and float PCM
      const usable = h.dataSizeBytes - (h.dataSizeBytes % h.blockAlign);
      parts.push(wav.subarray(h.dataOffset, h.dataOffset + usable));
    });
    return buildWav(fmt, Buffer.concat(parts), first.blockAlign);
  }
  const sampleRateHz = first?.sampleRateHz ?? 24_000;
  const pcms = await Promise.all(wavs.map((w) => decodeToPcm(w, { sampleRateHz })));
  const gap = Math.round(gapSec * sampleRateHz);
  const total = pcms.reduce((n, p) => n + p.samples.length, 0) + gap * (pcms.length - 1);
  const samples = new Int16Array(total);
  let offset = 0;
  pcms.forEach((p, i) => {
    if (i > 0) offset += gap;
    samples.set(p.samples, offset);
    offset += p.samples.length;
  });
  return pcmToWav({ samples, sampleRateHz });
}
