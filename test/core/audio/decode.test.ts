import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { decodeToPcm, needsSeekableInput } from '../../../src/core/audio/decode.js';
import { ffmpeg, ffprobeDurationSec, makeSpeechWav, makeTone, toFlac, toM4a, toMp3, toOggOpus, toPcm, toWebm } from '../../helpers/audio.js';

const wav = makeSpeechWav('Decoding turns every container into the same mono samples.');
const wavSec = ffprobeDurationSec(wav);

/** Correlation of two sample arrays over their common length. */
function correlation(a: Int16Array, b: Int16Array): number {
  const n = Math.min(a.length, b.length);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < n; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

describe('decodeToPcm', () => {
  it.each([
    ['ogg', toOggOpus],
    ['webm', toWebm],
    ['mp3', toMp3],
    ['flac', toFlac],
    ['m4a (moov first)', (b: Buffer) => toM4a(b, { faststart: true })],
    ['m4a (moov last)', (b: Buffer) => toM4a(b)],
    ['wav', (b: Buffer) => b],
  ] as const)('decodes %s to 16 kHz mono of the original length', async (_name, convert) => {
    const pcm = await decodeToPcm(convert(wav));
    expect(pcm.sampleRateHz).toBe(16000);
    expect(Math.abs(pcm.samples.length / 16000 - wavSec)).toBeLessThan(0.1);
  });

  it('decodes a WAV to the same samples an independent ffmpeg run gives', async () => {
    const ours = await decodeToPcm(wav);
    const reference = toPcm(wav, 16000);
    expect(ours.samples.length).toBe(reference.samples.length);
    expect(correlation(ours.samples, reference.samples)).toBeGreaterThan(0.999);
  });

  it('down-mixes a 44.1 kHz stereo FLAC and resamples it to the requested rate', async () => {
    const stereo = ffmpeg(['-i', 'pipe:0', '-ac', '2', '-ar', '44100', '-c:a', 'flac', '-f', 'flac', 'pipe:1'], makeTone(2, 440));
    const pcm = await decodeToPcm(stereo, { sampleRateHz: 8000 });
    expect(pcm.sampleRateHz).toBe(8000);
    expect(pcm.samples.length).toBeGreaterThan(15_900);
    expect(pcm.samples.length).toBeLessThan(16_100);
  });

  it('caps the output at maxDurationSec', async () => {
    const pcm = await decodeToPcm(toOggOpus(wav), { maxDurationSec: 1.5 });
    expect(pcm.samples.length).toBe(24_000);
  });

  it('needs a seekable input only for MP4 with moov after mdat, and leaves no temporary file behind', async () => {
    expect(needsSeekableInput(toM4a(wav), 'm4a')).toBe(true);
    expect(needsSeekableInput(toM4a(wav, { faststart: true }), 'm4a')).toBe(false);
    expect(needsSeekableInput(toMp3(wav), 'mp3')).toBe(false);
    const leftovers = (): string[] => readdirSync(tmpdir()).filter((name) => name.startsWith('voicetwin-audio-'));
    const before = leftovers();
    await decodeToPcm(toM4a(wav));
    expect(leftovers().filter((name) => !before.includes(name))).toEqual([]);
  });

  it('throws EMPTY_AUDIO, UNSUPPORTED_FORMAT and CORRUPT_AUDIO for bad input', async () => {
    await expect(decodeToPcm(Buffer.alloc(0))).rejects.toMatchObject({ code: 'EMPTY_AUDIO' });
    await expect(decodeToPcm(Buffer.from('%PDF-1.4 hello'))).rejects.toMatchObject({ code: 'UNSUPPORTED_FORMAT' });
    await expect(decodeToPcm(Buffer.concat([Buffer.from('OggS'), Buffer.alloc(2000, 7)]))).rejects.toMatchObject({ code: 'CORRUPT_AUDIO' });
    await expect(decodeToPcm(Buffer.concat([Buffer.from('fLaC'), Buffer.alloc(2000, 7)]))).rejects.toMatchObject({ code: 'CORRUPT_AUDIO' });
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    const run = decodeToPcm(toFlac(wav), { signal: controller.signal });
    controller.abort();
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
  });
});
