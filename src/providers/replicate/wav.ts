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
import { concatPcm } from '../../core/audio/pcm.js';
import { decodeToPcm } from '../../core/audio/decode.js';

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
 * @throws RangeError when `wavs` is empty or `gapSec` is negative
 */
export async function joinWavs(wavs: readonly Buffer[], gapSec = 0.15): Promise<Buffer> {
  if (wavs.length === 1) return wavs[0] as Buffer;
  const headers = wavs.map((w) => parseWavHeader(w));
  const first = headers[0];
  const same =
    first !== undefined &&
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
    const fmt = (wavs[0] as Buffer).subarray(first.fmtOffset, first.fmtOffset + first.fmtSizeBytes);
    return buildWav(fmt, Buffer.concat(parts), first.blockAlign);
  }
  const sampleRateHz = first?.sampleRateHz ?? 24_000;
  const pcms = await Promise.all(wavs.map((w) => decodeToPcm(w, { sampleRateHz })));
  return pcmToWav(concatPcm(pcms, gapSec));
}
