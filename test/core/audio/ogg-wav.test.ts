import { describe, expect, it } from 'vitest';
import { getOggOpusInfo, scanOggPages } from '../../../src/core/audio/ogg.js';
import { parseWavHeader, pcmToWav, wavToPcm } from '../../../src/core/audio/wav.js';
import { ffmpeg, ffprobeJson, makeSpeechWav, makeTone, toOggOpus, toPcm } from '../../helpers/audio.js';
import { isUserInputError } from '../../../src/core/errors.js';

describe('getOggOpusInfo', () => {
  const tone = makeTone(2.5, 300);
  const ogg = toOggOpus(tone);

  it('reads OpusHead and measures the duration from granule positions minus pre-skip', () => {
    const info = getOggOpusInfo(ogg);
    expect(info.channels).toBe(1);
    expect(info.inputSampleRateHz).toBe(48000);
    expect(info.preSkip).toBe(312); // libopus's lookahead at 48 kHz
    expect(info.durationSec).toBeCloseTo(2.5, 2);
    expect(info.endOfStream).toBe(true);
    expect(info.truncated).toBe(false);
  });

  it('reports the input sample rate the encoder signalled', () => {
    const ogg16k = ffmpeg(['-i', 'pipe:0', '-ar', '16000', '-c:a', 'libopus', '-f', 'ogg', 'pipe:1'], tone);
    const info = getOggOpusInfo(ogg16k);
    expect(info.inputSampleRateHz).toBe(16000);
    expect(info.durationSec).toBeCloseTo(2.5, 2);
  });

  it('does not count a stream that starts at a later granule position (RFC 7845 §4.3)', () => {
    // Shift every audio granule by one second, as a stream cut from a live source would be.
    const shifted = Buffer.from(ogg);
    for (const page of scanOggPages(shifted).pages) {
      if (page.granulePosition > 0) shifted.writeBigInt64LE(BigInt(page.granulePosition + 48000), page.offset + 6);
    }
    expect(getOggOpusInfo(shifted).durationSec).toBeCloseTo(2.5, 2);
  });

  it('notices a stream cut inside a page', () => {
    const { pages } = scanOggPages(ogg);
    expect(pages.length).toBeGreaterThan(3);
    const cut = ogg.subarray(0, pages[2]!.bodyOffset + 10);
    expect(scanOggPages(cut).truncated).toBe(true);
    const info = getOggOpusInfo(cut);
    expect(info.truncated).toBe(true);
    expect(info.endOfStream).toBe(false);
  });

  it('throws CORRUPT_AUDIO for bytes without an OpusHead', () => {
    const vorbisLike = Buffer.from('OggS');
    expect(() => getOggOpusInfo(vorbisLike)).toThrow(expect.objectContaining({ code: 'CORRUPT_AUDIO' }));
    let caught: unknown;
    try {
      getOggOpusInfo(makeSpeechWav('hello'));
    } catch (err) {
      caught = err;
    }
    expect(isUserInputError(caught)).toBe(true);
  });
});

describe('pcmToWav / wavToPcm', () => {
  it('round-trips samples through a 44-byte header that ffprobe reads as 16-bit mono PCM', () => {
    const samples = Int16Array.from({ length: 8000 }, (_, i) => Math.round(10000 * Math.sin(i / 7)));
    const wav = pcmToWav({ samples, sampleRateHz: 8000 });
    expect(wav.length).toBe(44 + samples.length * 2);
    const back = wavToPcm(wav);
    expect(back.sampleRateHz).toBe(8000);
    expect(Array.from(back.samples)).toEqual(Array.from(samples));
    const probe = ffprobeJson(wav);
    expect(probe.streams[0]).toMatchObject({ codec_name: 'pcm_s16le', sample_rate: '8000', channels: 1 });
    expect(Number(probe.format.duration)).toBeCloseTo(1, 3);
  });

  it('reads WAV with extra chunks (ffmpeg LIST) and with a streamed data size (espeak-ng --stdout)', () => {
    const withList = ffmpeg(['-i', 'pipe:0', '-metadata', 'title=x', '-c:a', 'pcm_s16le', '-f', 'wav', 'pipe:1'], makeTone(0.5, 440));
    expect(withList.includes(Buffer.from('LIST'))).toBe(true);
    expect(wavToPcm(withList).samples.length).toBe(8000);
    const espeak = makeSpeechWav('Streaming header.');
    const header = parseWavHeader(espeak)!;
    expect(header.declaredDataSizeBytes).toBeGreaterThan(espeak.length); // espeak-ng writes a placeholder size
    expect(wavToPcm(espeak).samples.length).toBe((espeak.length - header.dataOffset) >> 1);
    expect(Array.from(wavToPcm(espeak).samples.subarray(0, 2000))).toEqual(Array.from(toPcm(espeak, 22050).samples.subarray(0, 2000)));
  });

  it('refuses non-WAV bytes and WAV layouts other than 16-bit mono', () => {
    expect(() => wavToPcm(Buffer.from('%PDF-1.4'))).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_FORMAT' }));
    const stereo = ffmpeg(['-i', 'pipe:0', '-ac', '2', '-c:a', 'pcm_s16le', '-f', 'wav', 'pipe:1'], makeTone(0.2, 440));
    expect(() => wavToPcm(stereo)).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_FORMAT' }));
    const float = ffmpeg(['-i', 'pipe:0', '-c:a', 'pcm_f32le', '-f', 'wav', 'pipe:1'], makeTone(0.2, 440));
    expect(() => wavToPcm(float)).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_FORMAT' }));
  });
});
