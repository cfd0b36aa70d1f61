import { afterAll, describe, expect, it } from 'vitest';
import type { PcmAudio } from '../../../src/core/providers.js';
import { encodeChunksInThread, encodeOggOpusPieces, MIN_PIECE_SEC, planOpusPieces, QUIET_CUT_DB } from '../../../src/core/audio/opus-chunks.js';
import { encodeOggOpusInProcess, inProcessOpusAvailable, OPUS_ENCODER_PRE_SKIP } from '../../../src/core/audio/opus.js';
import { getOggOpusInfo } from '../../../src/core/audio/ogg.js';
import { closeAudioWorkers, encodeChunksInWorkers } from '../../../src/core/audio/workers.js';
import { concatPcm } from '../../../src/core/audio/pcm.js';
import { ffmpeg, ffprobeDurationSec, makeSpeechWav, makeTone, toPcm } from '../../helpers/audio.js';

const RATE = 22050; // espeak-ng's own rate, what the offline voice gives the encoder
const first = toPcm(makeSpeechWav('Planning ahead sounds good, and a walk by the river is a lovely idea.'), RATE);
const second = toPcm(makeSpeechWav('What matters most to you this weekend, the rest or the company?'), RATE);
/** Two sentences joined with a 0.12 s pause, as the voice renderer joins synthesised pieces. */
const reply = concatPcm([first, second], 0.12);

function power(samples: Int16Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum += samples[i]! * samples[i]!;
  return sum / Math.max(1, end - start);
}

/** ffmpeg's own decode of an Ogg/Opus file to mono PCM at `rateHz`, failing on any decoder error. */
function decode(bytes: Buffer, rateHz: number): Int16Array {
  const out = ffmpeg(['-xerror', '-c:a', 'libopus', '-i', 'pipe:0', '-ac', '1', '-ar', String(rateHz), '-f', 's16le', 'pipe:1'], bytes);
  return new Int16Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.length - (out.length % 2)));
}

/** Signal-to-error ratio of `decoded` against `reference`, dB, over [start, end). */
function snrDb(reference: Int16Array, decoded: Int16Array, start = 0, end = Math.min(reference.length, decoded.length)): number {
  let signal = 0;
  let error = 0;
  for (let i = start; i < end; i++) {
    signal += reference[i]! ** 2;
    error += (reference[i]! - decoded[i]!) ** 2;
  }
  return 10 * Math.log10(signal / Math.max(1, error));
}

describe('planOpusPieces', () => {
  it('cuts speech in a pause, on a 20 ms frame boundary, into pieces of similar length', () => {
    const ends = planOpusPieces(reply, 2);
    expect(ends).toHaveLength(2);
    const cut = ends[0]!;
    expect(ends[1]).toBe(reply.samples.length);
    expect(cut % (RATE / 50)).toBe(0);
    // The cut lies in the pause between the sentences (or in a quieter gap between words nearby).
    const frame = RATE / 50;
    const mean = power(reply.samples, 0, reply.samples.length);
    expect(power(reply.samples, cut - frame, cut + frame)).toBeLessThanOrEqual(mean * 10 ** (QUIET_CUT_DB / 10));
    expect(cut).toBeGreaterThan(reply.samples.length / 3);
    expect(cut).toBeLessThan((2 * reply.samples.length) / 3);
  });

  it('makes as many pieces as asked when there are pauses enough, each at least MIN_PIECE_SEC long', () => {
    const long = concatPcm([first, second, first, second], 0.12);
    const ends = planOpusPieces(long, 4);
    expect(ends.length).toBeGreaterThanOrEqual(3);
    let start = 0;
    for (const end of ends) {
      expect(end - start).toBeGreaterThanOrEqual(MIN_PIECE_SEC * RATE);
      start = end;
    }
  });

  it('does not cut sound without pauses, short audio, one part, or a rate without whole 20 ms frames', () => {
    const tone = toPcm(makeTone(6, 440), 24000);
    expect(planOpusPieces(tone, 2)).toEqual([tone.samples.length]);
    const short: PcmAudio = { samples: reply.samples.slice(0, Math.floor(2 * MIN_PIECE_SEC * RATE) - 1), sampleRateHz: RATE };
    expect(planOpusPieces(short, 2)).toEqual([short.samples.length]);
    expect(planOpusPieces(reply, 1)).toEqual([reply.samples.length]);
    const odd: PcmAudio = { samples: reply.samples, sampleRateHz: 11025 }; // 220.5 samples per 20 ms
    expect(planOpusPieces(odd, 2)).toEqual([reply.samples.length]);
  });
});

describe.runIf(inProcessOpusAvailable())('encodeOggOpusPieces', () => {
  afterAll(() => closeAudioWorkers());

  it('joins separately encoded pieces into one stream as long and as faithful as a single encoder’s', async () => {
    const ends = planOpusPieces(reply, 2);
    expect(ends).toHaveLength(2);
    const pieces = (await encodeOggOpusPieces(reply, 24000, 32000, ends))!;
    const single = encodeOggOpusInProcess(reply, 24000, 32000)!;
    const seconds = reply.samples.length / RATE;

    const info = getOggOpusInfo(pieces);
    expect(info).toMatchObject({ channels: 1, preSkip: OPUS_ENCODER_PRE_SKIP, endOfStream: true, truncated: false });
    expect(info.durationSec).toBeCloseTo(getOggOpusInfo(single).durationSec, 6);
    expect(Math.abs(ffprobeDurationSec(pieces) - seconds)).toBeLessThan(0.02);

    // Against the source (at the encoder's rate), the joined stream is as close as one encoder's:
    // a piece shifted by even a few samples would lose most of its waveform match.
    const source = toPcm(ffmpeg(['-f', 's16le', '-ar', String(RATE), '-ac', '1', '-i', 'pipe:0', '-f', 'wav', 'pipe:1'], Buffer.from(reply.samples.buffer)), 24000).samples;
    const fromPieces = decode(pieces, 24000);
    const fromSingle = decode(single, 24000);
    expect(fromPieces.length).toBe(fromSingle.length);
    const cut = Math.round((ends[0]! * 24000) / RATE);
    const after = [cut + 2400, Math.min(source.length, fromPieces.length)] as const; // the second piece, past the seam
    expect(snrDb(source, fromSingle)).toBeGreaterThan(3);
    // (What a piece late by the encoder's lookahead, 156 samples at 24 kHz, would score.)
    expect(snrDb(source, new Int16Array([...new Int16Array(156), ...fromSingle]))).toBeLessThan(1);
    expect(snrDb(source, fromPieces)).toBeGreaterThan(snrDb(source, fromSingle) - 1);
    expect(snrDb(source, fromPieces, ...after)).toBeGreaterThan(snrDb(source, fromSingle, ...after) - 1.5);

    // No click at the seam: within ±30 ms of the cut the joined stream is no louder than the source there.
    const w = 720;
    const seamPeak = Math.max(...Array.from(fromPieces.subarray(cut - w, cut + w), Math.abs));
    const sourcePeak = Math.max(...Array.from(source.subarray(cut - w, cut + w), Math.abs));
    expect(seamPeak).toBeLessThanOrEqual(Math.max(2 * sourcePeak, 200));
  });

  it('gives the same bytes on the worker threads as in this thread', async () => {
    const ends = planOpusPieces(reply, 2);
    const inThread = (await encodeOggOpusPieces(reply, 24000, 32000, ends, encodeChunksInThread))!;
    const inWorkers = (await encodeOggOpusPieces(reply, 24000, 32000, ends, encodeChunksInWorkers))!;
    expect(inWorkers.equals(inThread)).toBe(true);
    // And the caller's samples are still intact (the pieces sent to the workers are copies).
    expect(reply.samples.length).toBeGreaterThan(0);
    expect(power(reply.samples, 0, reply.samples.length)).toBeGreaterThan(0);
  });

  it('refuses a non-final piece that is not whole 20 ms frames', async () => {
    await expect(encodeOggOpusPieces(reply, 24000, 32000, [RATE + 1, reply.samples.length])).rejects.toThrow(/whole 20 ms frames/);
  });
});
