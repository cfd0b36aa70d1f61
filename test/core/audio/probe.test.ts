import { afterEach, describe, expect, it } from 'vitest';
import { checkAudio, probeAudio } from '../../../src/core/audio/probe.js';
import { checkDeclared, DEFAULT_AUDIO_LIMITS, MIB } from '../../../src/core/audio/limits.js';
import { scanOggPages } from '../../../src/core/audio/ogg.js';
import {
  ffprobeJson,
  ffprobeDurationSec,
  makeHourLongMp3,
  makeHourLongWav,
  makeSpeechWav,
  makeTone,
  toFlac,
  toM4a,
  toMp3,
  toMp3WithCoverArt,
  toOggOpus,
  toWebm,
} from '../../helpers/audio.js';

const wav = makeSpeechWav('Please check this voice note before decoding it.');
const wavSec = ffprobeDurationSec(wav);

describe('probeAudio', () => {
  it.each([
    ['ogg', 'opus', toOggOpus],
    ['webm', 'opus', toWebm],
    ['mp3', 'mp3', toMp3],
    ['flac', 'flac', toFlac],
    ['m4a', 'aac', (b: Buffer) => toM4a(b, { faststart: true })],
    ['m4a', 'aac', (b: Buffer) => toM4a(b)],
    ['wav', 'pcm_s16le', (b: Buffer) => b],
  ] as const)('reads %s (%s) from a pipe with the right duration', async (container, codec, convert) => {
    const bytes = convert(wav);
    const probe = await probeAudio(bytes);
    expect(probe).toMatchObject({ container, codec, channels: 1, sizeBytes: bytes.length });
    expect(probe.sampleRateHz).toBeGreaterThan(0);
    // Piped streams of Ogg, WebM, MP3 and streamed FLAC carry no duration header; the probe still measures one.
    expect(Math.abs(probe.durationSec - wavSec)).toBeLessThan(0.2);
  });

  it('accepts MP3 bytes whatever the file was called', async () => {
    const mp3NamedOgg = toMp3(wav);
    expect((await probeAudio(mp3NamedOgg)).container).toBe('mp3');
  });

  it('takes the audio stream of an MP3 with cover art', async () => {
    const withArt = toMp3WithCoverArt(wav);
    expect(ffprobeJson(withArt).streams.map((s) => s.codec_type)).toEqual(['audio', 'video']);
    const probe = await probeAudio(withArt);
    expect(probe).toMatchObject({ container: 'mp3', codec: 'mp3', channels: 1 });
    expect(Math.abs(probe.durationSec - wavSec)).toBeLessThan(0.2);
  });

  it('throws EMPTY_AUDIO for zero bytes', async () => {
    await expect(probeAudio(Buffer.alloc(0))).rejects.toMatchObject({ code: 'EMPTY_AUDIO' });
  });

  it('throws UNSUPPORTED_FORMAT naming the formats it accepts, for a PDF or random bytes', async () => {
    const pdf = probeAudio(Buffer.from('%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n'));
    await expect(pdf).rejects.toMatchObject({ code: 'UNSUPPORTED_FORMAT' });
    await expect(pdf).rejects.toMatchObject({ userMessage: expect.stringMatching(/OGG\/Opus.*MP3.*WAV.*FLAC.*M4A/) });
    await expect(probeAudio(Buffer.from('0123456789abcdef'.repeat(256)))).rejects.toMatchObject({ code: 'UNSUPPORTED_FORMAT' });
  });

  it('throws CORRUPT_AUDIO for a truncated Ogg, an Ogg header on garbage, and a broken MP4', async () => {
    const ogg = toOggOpus(wav);
    const pages = scanOggPages(ogg).pages;
    await expect(probeAudio(ogg.subarray(0, pages[3]!.bodyOffset + 20))).rejects.toMatchObject({ code: 'CORRUPT_AUDIO' });
    await expect(probeAudio(ogg.subarray(0, 60))).rejects.toMatchObject({ code: 'CORRUPT_AUDIO' });
    await expect(probeAudio(Buffer.concat([Buffer.from('OggS'), Buffer.alloc(500, 0x41)]))).rejects.toMatchObject({ code: 'CORRUPT_AUDIO' });
    const m4a = toM4a(wav, { faststart: true });
    await expect(probeAudio(m4a.subarray(0, 200))).rejects.toMatchObject({ code: 'CORRUPT_AUDIO' });
  });

  it('accepts an Ogg stream cut cleanly at a page boundary, measuring what is there', async () => {
    const ogg = toOggOpus(makeTone(4, 200));
    const pages = scanOggPages(ogg).pages;
    const half = pages[Math.floor(pages.length / 2)]!;
    const cut = ogg.subarray(0, half.bodyOffset + half.bodySizeBytes);
    const probe = await probeAudio(cut);
    expect(probe.durationSec).toBeGreaterThan(1);
    expect(probe.durationSec).toBeLessThan(3.5);
  });
});

describe('checkDeclared', () => {
  it('names the size limit in megabytes', () => {
    expect(() => checkDeclared({ sizeBytes: 25 * MIB }, DEFAULT_AUDIO_LIMITS)).toThrow(
      expect.objectContaining({ code: 'FILE_TOO_LARGE', userMessage: expect.stringContaining('That file is 25.0 MB; the limit is 20 MB.') }),
    );
  });

  it('names the duration limit', () => {
    expect(() => checkDeclared({ durationSec: 3600 }, DEFAULT_AUDIO_LIMITS)).toThrow(
      expect.objectContaining({ code: 'AUDIO_TOO_LONG', userMessage: expect.stringContaining('60.0 minutes long; the limit is 10 minutes') }),
    );
    expect(() => checkDeclared({ durationSec: 95 }, { maxBytes: MIB, maxDurationSec: 60 })).toThrow(/95.0 seconds long; the limit is 60 seconds/);
  });

  it('accepts values within the limits, a rounding margin, and missing or nonsense declarations', () => {
    expect(() => checkDeclared({ sizeBytes: 20 * MIB, durationSec: 600.4 }, DEFAULT_AUDIO_LIMITS)).not.toThrow();
    expect(() => checkDeclared({}, DEFAULT_AUDIO_LIMITS)).not.toThrow();
    expect(() => checkDeclared({ sizeBytes: Number.NaN, durationSec: -1 }, DEFAULT_AUDIO_LIMITS)).not.toThrow();
  });
});

describe('checkAudio', () => {
  const savedProbePath = process.env.FFPROBE_PATH;
  afterEach(() => {
    if (savedProbePath === undefined) delete process.env.FFPROBE_PATH;
    else process.env.FFPROBE_PATH = savedProbePath;
  });

  it('refuses a 25 MB file before running any tool', async () => {
    process.env.FFPROBE_PATH = '/nonexistent/ffprobe'; // a spawn would fail with DependencyError instead
    const big = Buffer.concat([toMp3(wav), Buffer.alloc(25 * MIB)]);
    await expect(checkAudio(big, DEFAULT_AUDIO_LIMITS)).rejects.toMatchObject({ code: 'FILE_TOO_LARGE' });
    await expect(checkAudio(Buffer.alloc(0), DEFAULT_AUDIO_LIMITS)).rejects.toMatchObject({ code: 'EMPTY_AUDIO' });
  });

  it('refuses a one-hour MP3 (no duration header) and a one-hour WAV as too long', async () => {
    await expect(checkAudio(makeHourLongMp3(), DEFAULT_AUDIO_LIMITS)).rejects.toMatchObject({
      code: 'AUDIO_TOO_LONG',
      details: { durationSec: expect.closeTo(3600, 0) },
    });
    await expect(checkAudio(makeHourLongWav(), { maxBytes: 100 * MIB, maxDurationSec: 600 })).rejects.toMatchObject({
      code: 'AUDIO_TOO_LONG',
      details: { durationSec: 3600 },
    });
  });

  it('returns the probe of an acceptable voice note', async () => {
    const probe = await checkAudio(toOggOpus(wav), DEFAULT_AUDIO_LIMITS);
    expect(probe.codec).toBe('opus');
  });
});
