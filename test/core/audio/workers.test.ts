import { afterAll, describe, expect, it } from 'vitest';
import { analyseSample } from '../../../src/core/audio/analysis.js';
import { decodeToPcm } from '../../../src/core/audio/decode.js';
import { decodeOggOpusInProcess, inProcessOpusAvailable } from '../../../src/core/audio/opus.js';
import { encodeOggOpusPieces } from '../../../src/core/audio/opus-chunks.js';
import {
  analyseSampleOffThread,
  AudioTaskError,
  encodeChunksInWorkers,
  audioWorkersError,
  audioWorkerThreads,
  closeAudioWorkers,
  decodeOggOpusOffThread,
  defaultAudioWorkerThreads,
  setAudioWorkerThreads,
  warmAudioWorkers,
} from '../../../src/core/audio/workers.js';
import { makeSpeechWav, SAMPLE_SENTENCES, toOggOpus, toPcm } from '../../helpers/audio.js';

const speech = makeSpeechWav(SAMPLE_SENTENCES);
const note = toOggOpus(speech);

describe('audio worker threads', () => {
  afterAll(async () => {
    setAudioWorkerThreads(defaultAudioWorkerThreads());
    await closeAudioWorkers();
  });

  it('start, and measure an enrollment sample exactly as this thread does', async () => {
    await warmAudioWorkers();
    expect(audioWorkerThreads()).toBe(defaultAudioWorkerThreads());
    const pcm = toPcm(speech);
    const copy = pcm.samples.slice();
    expect(await analyseSampleOffThread(pcm)).toEqual(analyseSample(pcm));
    // The caller's samples are untouched (they were copied, not moved).
    expect(pcm.samples).toEqual(copy);
    // It ran on the pool: a failed pool would have been recorded and turned off.
    expect(audioWorkersError()).toBeUndefined();
  });

  it.runIf(inProcessOpusAvailable())('decode an Ogg/Opus voice note to the same samples as this thread, with the same limits', async () => {
    for (const [rateHz, maxSec] of [[16000, undefined], [48000, undefined], [16000, 1.5]] as const) {
      const off = await decodeOggOpusOffThread(note, rateHz, maxSec);
      const here = decodeOggOpusInProcess(note, rateHz, maxSec)!;
      expect(off).toBeDefined();
      expect(off!.sampleRateHz).toBe(rateHz);
      expect(off!.samples).toEqual(here.samples);
    }
    // A rate libopus does not decode at is declined off-thread too (the caller then uses ffmpeg).
    expect(await decodeOggOpusOffThread(note, 22050)).toBeUndefined();
    // The caller's bytes are still readable afterwards (a copy went to the worker).
    expect(note.toString('latin1', 0, 4)).toBe('OggS');
    expect((await decodeToPcm(note, { sampleRateHz: 16000 })).samples.length).toBeGreaterThan(16000);
    expect(audioWorkersError()).toBeUndefined();
  });

  it.runIf(inProcessOpusAvailable())('report an error thrown by a task without turning the pool off', async () => {
    const pcm = toPcm(speech, 22050);
    // A first piece that is not whole 20 ms frames: libopus's wrapper refuses it on the worker.
    const failing = encodeOggOpusPieces(pcm, 48000, 32000, [22050 + 1, pcm.samples.length], encodeChunksInWorkers);
    await expect(failing).rejects.toThrow(AudioTaskError);
    await expect(encodeOggOpusPieces(pcm, 48000, 32000, [22050 + 1, pcm.samples.length], encodeChunksInWorkers)).rejects.toThrow(/whole 20 ms frames/);
    expect(audioWorkersError()).toBeUndefined();
    expect(audioWorkerThreads()).toBe(defaultAudioWorkerThreads());
  });

  it('give the same results with the pool off, and refuse a bad thread count', async () => {
    const pcm = toPcm(speech);
    const withPool = await analyseSampleOffThread(pcm);
    setAudioWorkerThreads(0);
    expect(audioWorkerThreads()).toBe(0);
    expect(await analyseSampleOffThread(pcm)).toEqual(withPool);
    if (inProcessOpusAvailable()) expect((await decodeOggOpusOffThread(note, 16000))!.samples).toEqual(decodeOggOpusInProcess(note, 16000)!.samples);
    expect(() => setAudioWorkerThreads(-1)).toThrow(RangeError);
    expect(() => setAudioWorkerThreads(1.5)).toThrow(RangeError);
    setAudioWorkerThreads(defaultAudioWorkerThreads());
  });
});
