import { describe, expect, it } from 'vitest';
import { demuxOggOpus, muxOggOpus, oggCrc32 } from '../../../src/core/audio/ogg-opus.js';
import { getOggOpusInfo, scanOggPages } from '../../../src/core/audio/ogg.js';
import { decodeOggOpusInProcess, encodeOggOpusInProcess, inProcessOpusAvailable, OPUS_ENCODER_PRE_SKIP } from '../../../src/core/audio/opus.js';
import { resamplePcm } from '../../../src/core/audio/resample.js';
import { ffmpeg, ffprobeDurationSec, ffprobeJson, makeSpeechWav, SAMPLE_SENTENCES, toOggOpus, toPcm, toWav } from '../../helpers/audio.js';
import { describeIfSpeech, readSpeech } from '../../helpers/speech.js';

const speech = makeSpeechWav(SAMPLE_SENTENCES);
const pcm16k = toPcm(speech, 16000);
const speechSec = pcm16k.samples.length / 16000;

/**
 * ffmpeg's own decode of `bytes` to 16-bit mono PCM at `rateHz`, failing on any decoder error;
 * `decoder` picks ffmpeg's native Opus decoder (default) or its libopus wrapper.
 */
function ffmpegDecode(bytes: Buffer, rateHz: number, decoder: 'opus' | 'libopus' = 'opus'): Int16Array {
  const out = ffmpeg(['-xerror', '-c:a', decoder, '-i', 'pipe:0', '-ac', '1', '-ar', String(rateHz), '-f', 's16le', 'pipe:1'], bytes);
  return new Int16Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.length - (out.length % 2)));
}

function rms(samples: Int16Array): number {
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / Math.max(1, samples.length));
}

describe('oggCrc32', () => {
  it('matches the CRC that ffmpeg wrote into its own Ogg pages', () => {
    const bytes = toOggOpus(speech);
    const { pages } = scanOggPages(bytes);
    expect(pages.length).toBeGreaterThan(2);
    for (const page of pages) {
      const copy = Buffer.from(bytes.subarray(page.offset, page.bodyOffset + page.bodySizeBytes));
      const stored = copy.readUInt32LE(22);
      copy.writeUInt32LE(0, 22);
      expect(oggCrc32(copy)).toBe(stored);
    }
  });
});

describe('demuxOggOpus', () => {
  it('reads the headers and packets of an ffmpeg-made voice note', () => {
    const bytes = toOggOpus(speech);
    const stream = demuxOggOpus(bytes);
    expect(stream.head.channels).toBe(1);
    expect(stream.head.mappingFamily).toBe(0);
    expect(stream.head.preSkip).toBe(getOggOpusInfo(bytes).preSkip);
    // 20 ms packets covering the audio plus the encoder's pre-skip.
    expect(stream.packets.length).toBe(Math.ceil((stream.playableSamples48k! + stream.head.preSkip) / 960));
    expect(Math.abs(stream.playableSamples48k! / 48000 - speechSec)).toBeLessThan(0.05);
  });

  it('round-trips packets, laces long packets and joins a packet that spans pages', () => {
    const bytes = toOggOpus(speech);
    const stream = demuxOggOpus(bytes);
    const big = Buffer.alloc(700, 0xaa);
    const muxed = muxOggOpus([stream.packets[0]!], { channels: 1, preSkip: 312, inputSampleRateHz: 48000, playableSamples48k: 100 });
    expect(demuxOggOpus(muxed).packets).toEqual([stream.packets[0]]);
    // A packet longer than 255 bytes is laced as 255, 255, …, remainder.
    const laced = muxOggOpus([big], { channels: 1, preSkip: 0, inputSampleRateHz: 48000, playableSamples48k: 0 });
    expect(Array.from(scanOggPages(laced).pages[2]!.segments)).toEqual([255, 255, 190]);
    expect(demuxOggOpus(laced).packets[0]).toEqual(big);
    // Split that packet across two pages by hand: the demuxer must join it back.
    const first = scanOggPages(laced).pages[2]!;
    const head = laced.subarray(0, first.offset);
    const page = (flags: number, seq: number, granule: number, lacing: number[], body: Buffer): Buffer => {
      const p = Buffer.alloc(27 + lacing.length + body.length);
      p.write('OggS', 0, 'latin1');
      p[5] = flags;
      p.writeBigInt64LE(BigInt(granule), 6);
      p.writeUInt32LE(first.serialNumber, 14);
      p.writeUInt32LE(seq, 18);
      p[26] = lacing.length;
      lacing.forEach((l, i) => (p[27 + i] = l));
      body.copy(p, 27 + lacing.length);
      p.writeUInt32LE(oggCrc32(p), 22);
      return p;
    };
    const split = Buffer.concat([head, page(0, 2, -1, [255], big.subarray(0, 255)), page(0x05, 3, 960, [255, 190], big.subarray(255))]);
    expect(demuxOggOpus(split).packets).toEqual([big]);
    expect(() => demuxOggOpus(split.subarray(0, split.length - 10))).toThrow(/truncated/);
  });

  it('refuses Ogg that is not Opus', () => {
    const vorbis = ffmpeg(['-i', 'pipe:0', '-c:a', 'libvorbis', '-f', 'ogg', 'pipe:1'], speech);
    expect(() => demuxOggOpus(vorbis)).toThrow(/OpusHead/);
  });
});

describe.runIf(inProcessOpusAvailable())('in-process Opus', () => {
  it('encodes a voice note that ffprobe reads as mono Ogg/Opus with the right duration and ffmpeg decodes cleanly', () => {
    for (const rateHz of [48000, 24000, 16000]) {
      const bytes = encodeOggOpusInProcess(pcm16k, rateHz, 32000)!;
      expect(bytes).toBeDefined();
      const probe = ffprobeJson(bytes);
      expect(probe.format.format_name).toBe('ogg');
      expect(probe.streams).toHaveLength(1);
      expect(probe.streams[0]).toMatchObject({ codec_type: 'audio', codec_name: 'opus', channels: 1 });
      expect(Math.abs(ffprobeDurationSec(bytes) - speechSec)).toBeLessThan(0.05);
      const info = getOggOpusInfo(bytes);
      expect(info).toMatchObject({ channels: 1, preSkip: OPUS_ENCODER_PRE_SKIP, inputSampleRateHz: rateHz, endOfStream: true, truncated: false });
      expect(Math.abs(info.durationSec - speechSec)).toBeLessThan(1 / 16000 + 1e-9);
      // ffmpeg decodes it without an error, to the same length, and the speech survives.
      const decoded = ffmpegDecode(bytes, 16000);
      expect(Math.abs(decoded.length - pcm16k.samples.length)).toBeLessThan(16000 * 0.05);
      expect(rms(decoded)).toBeGreaterThan(0.5 * rms(pcm16k.samples));
      expect(rms(decoded)).toBeLessThan(1.5 * rms(pcm16k.samples));
    }
  });

  it('writes OpusTags with only a vendor string and pages with valid CRCs', () => {
    const bytes = encodeOggOpusInProcess(pcm16k, 48000, 32000)!;
    const { pages } = scanOggPages(bytes);
    expect(bytes.toString('latin1', pages[1]!.bodyOffset, pages[1]!.bodyOffset + 8)).toBe('OpusTags');
    expect(pages[1]!.bodySizeBytes).toBe(8 + 4 + 'libopus'.length + 4);
    expect(pages[0]!.headerType).toBe(0x02);
    expect(pages.at(-1)!.headerType).toBe(0x04);
    // ffmpeg checks every page CRC and fails on a mismatch with -xerror.
    expect(() => ffmpeg(['-xerror', '-err_detect', 'crccheck', '-i', 'pipe:0', '-f', 'null', '-'], bytes)).not.toThrow();
  });

  it('decodes ffmpeg-made Ogg/Opus to the same audio ffmpeg gets', () => {
    const bytes = toOggOpus(speech);
    for (const rateHz of [16000, 48000]) {
      const ours = decodeOggOpusInProcess(bytes, rateHz)!;
      const theirs = ffmpegDecode(bytes, rateHz, 'libopus');
      expect(ours.sampleRateHz).toBe(rateHz);
      expect(Math.abs(ours.samples.length - theirs.length)).toBeLessThan(rateHz * 0.05);
      if (rateHz === 48000) {
        // Both run libopus at 48 kHz and drop the same pre-skip: the waveforms match sample for sample.
        let diff = 0;
        const n = Math.min(ours.samples.length, theirs.length);
        for (let i = 0; i < n; i++) diff += (ours.samples[i]! - theirs[i]!) ** 2;
        expect(ours.samples.length).toBe(theirs.length);
        expect(Math.sqrt(diff / n)).toBeLessThan(0.001 * rms(theirs));
      }
    }
  });

  it('down-mixes stereo, honours maxDurationSec and declines streams it does not handle', () => {
    const stereo = ffmpeg(['-i', 'pipe:0', '-ac', '2', '-c:a', 'libopus', '-f', 'ogg', 'pipe:1'], speech);
    const mono = decodeOggOpusInProcess(stereo, 16000)!;
    expect(Math.abs(mono.samples.length / 16000 - speechSec)).toBeLessThan(0.05);
    expect(decodeOggOpusInProcess(stereo, 16000, 1.5)!.samples.length).toBe(24000);
    expect(decodeOggOpusInProcess(stereo, 22050)).toBeUndefined();
    const surround = ffmpeg(['-i', 'pipe:0', '-af', 'pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0', '-c:a', 'libopus', '-f', 'ogg', 'pipe:1'], speech);
    expect(decodeOggOpusInProcess(surround, 16000)).toBeUndefined();
    const corrupt = Buffer.from(stereo);
    corrupt.fill(0xff, 200, 260);
    expect(decodeOggOpusInProcess(corrupt.subarray(0, corrupt.length - 7), 16000)).toBeUndefined();
  });

  it('round-trips its own output', () => {
    const bytes = encodeOggOpusInProcess(pcm16k, 48000, 32000)!;
    const back = decodeOggOpusInProcess(bytes, 16000)!;
    expect(back.samples.length).toBe(pcm16k.samples.length);
  });
});

describeIfSpeech('in-process Opus on a real voice note', () => {
  it.runIf(inProcessOpusAvailable())('decodes the Telegram-style JFK clip to its full duration', () => {
    const bytes = readSpeech('derived-telegram-oga/jfk_telegram_style.oga');
    const ours = decodeOggOpusInProcess(bytes, 16000)!;
    expect(ours).toBeDefined();
    expect(Math.abs(ours.samples.length / 16000 - ffprobeDurationSec(bytes))).toBeLessThan(0.05);
    expect(Math.abs(ours.samples.length - ffmpegDecode(bytes, 16000).length)).toBeLessThan(16000 * 0.05);
  });
});

describe('resamplePcm', () => {
  it('keeps a tone in band, removes nothing audible and keeps the duration (22.05 → 48 and 16 kHz)', () => {
    const inRate = 22050;
    const n = inRate * 2;
    const tone = new Int16Array(n);
    for (let i = 0; i < n; i++) tone[i] = Math.round(10000 * Math.sin((2 * Math.PI * 1000 * i) / inRate));
    for (const outRate of [48000, 16000, 24000]) {
      const out = resamplePcm({ samples: tone, sampleRateHz: inRate }, outRate)!;
      expect(out.sampleRateHz).toBe(outRate);
      expect(out.samples.length).toBe(Math.round((n * outRate) / inRate));
      // Away from the edges the output is the ideal 1 kHz sine at the new rate.
      let err = 0;
      let count = 0;
      for (let j = outRate / 10; j < out.samples.length - outRate / 10; j++) {
        err += (out.samples[j]! - 10000 * Math.sin((2 * Math.PI * 1000 * j) / outRate)) ** 2;
        count++;
      }
      expect(20 * Math.log10(Math.sqrt(err / count) / 7071)).toBeLessThan(-60);
    }
  });

  it('attenuates content above the new Nyquist frequency when downsampling', () => {
    const inRate = 22050;
    const n = inRate;
    const tone = new Int16Array(n);
    for (let i = 0; i < n; i++) tone[i] = Math.round(10000 * Math.sin((2 * Math.PI * 10000 * i) / inRate));
    const out = resamplePcm({ samples: tone, sampleRateHz: inRate }, 16000)!;
    expect(20 * Math.log10(rms(out.samples.subarray(1600, -1600)) / 7071)).toBeLessThan(-60);
  });

  it('matches ffmpeg-resampled speech and declines rate pairs with too many phases', () => {
    const wav22k = toWav(speech, 22050);
    const ours = resamplePcm(toPcm(wav22k, 22050), 48000)!;
    const theirs = toPcm(wav22k, 48000);
    expect(Math.abs(ours.samples.length - theirs.samples.length)).toBeLessThanOrEqual(2);
    let diff = 0;
    for (let i = 0; i < theirs.samples.length && i < ours.samples.length; i++) diff += (ours.samples[i]! - theirs.samples[i]!) ** 2;
    expect(Math.sqrt(diff / theirs.samples.length)).toBeLessThan(0.02 * rms(theirs.samples));
    expect(resamplePcm({ samples: new Int16Array(10), sampleRateHz: 22051 }, 48000)).toBeUndefined();
  });
});
