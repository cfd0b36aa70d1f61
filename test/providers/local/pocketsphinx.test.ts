import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DependencyError, ProviderError } from '../../../src/core/errors.js';
import type { PcmAudio } from '../../../src/core/providers.js';
import { parseHypotheses, PocketsphinxSpeechToText } from '../../../src/providers/local/pocketsphinx.js';
import { concatPcm } from '../../../src/core/audio/pcm.js';
import { makeSpeechWav, toPcm } from '../../helpers/audio.js';
import { describeIfSpeech, readManifest, readSpeech, speechClip } from '../../helpers/speech.js';
import { normaliseWords, wordErrorRate } from './wer.js';

const stt = new PocketsphinxSpeechToText();

describe('parseHypotheses', () => {
  it('joins utterance lines and drops filler tokens and alternate-pronunciation marks', () => {
    expect(parseHypotheses('and so my fellow americans\n\nask not <sil> [NOISE]\n  what your(2) country ++UH++ \n')).toBe('and so my fellow americans ask not what your country');
    expect(parseHypotheses('\n\n')).toBe('');
  });
});

describe('PocketsphinxSpeechToText on generated speech', () => {
  it('is marked unreliable and returns an empty transcript for empty audio without running the decoder', async () => {
    expect(stt.reliable).toBe(false);
    const broken = new PocketsphinxSpeechToText({ binaryPath: '/nonexistent/pocketsphinx_continuous' });
    await expect(broken.transcribe({ samples: new Int16Array(0), sampleRateHz: 16000 })).resolves.toEqual({ text: '', languageCode: 'en-US', durationSec: 0 });
  });

  it('recognises most words of clear espeak-ng speech', async () => {
    // en-us+m1 at 140 wpm is the espeak-ng voice pocketsphinx's US model copes with best (others: 10–30% of words).
    const text = 'I would like to read a book about the history of music.';
    const pcm = toPcm(makeSpeechWav(text, { voice: 'en-us+m1', speedWpm: 140 }), 16000);
    const transcript = await stt.transcribe(pcm);
    expect(transcript.durationSec).toBeCloseTo(pcm.samples.length / 16000, 3);
    const heard = new Set(normaliseWords(transcript.text));
    const hits = ['would', 'like', 'read', 'book', 'about'].filter((w) => heard.has(w));
    expect(hits.length, `heard "${transcript.text}"`).toBeGreaterThanOrEqual(3);
  });

  it('resamples other rates to 16 kHz first', async () => {
    // 8 kHz telephone-band audio: resampled and decoded, though the 16 kHz model hears little of it.
    const pcm = toPcm(makeSpeechWav('I would like to read a book about the history of music.', { voice: 'en-us+m1', speedWpm: 140 }), 8000);
    const transcript = await stt.transcribe(pcm);
    expect(transcript.durationSec).toBeCloseTo(pcm.samples.length / 8000, 3);
    expect(transcript.text).not.toBe('');
  });

  it('hears nothing in silence', async () => {
    const transcript = await stt.transcribe({ samples: new Int16Array(16000 * 2), sampleRateHz: 16000 });
    expect(transcript.text).toBe('');
    expect(transcript.durationSec).toBe(2);
  });

  it('throws DependencyError with the apt-get hint when the binary or the model is missing', async () => {
    const pcm = toPcm(makeSpeechWav('hello there'));
    const noBinary = new PocketsphinxSpeechToText({ binaryPath: '/nonexistent/pocketsphinx_continuous' });
    const err = await noBinary.transcribe(pcm).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DependencyError);
    expect((err as DependencyError).installHint).toMatch(/apt-get install pocketsphinx pocketsphinx-en-us/);
    const noModel = new PocketsphinxSpeechToText({ modelDir: '/nonexistent/model' });
    await expect(noModel.transcribe(pcm)).rejects.toThrow(/pocketsphinx model \(\/nonexistent\/model\/en-us\/mdef\) is not available: install pocketsphinx/);
  });

  it('reports a decoder failure as a ProviderError', async () => {
    // A language model file that is not one: the decoder exits with an error.
    const bad = new PocketsphinxSpeechToText({ languageModelPath: '/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict' });
    const err = await bad.transcribe(toPcm(makeSpeechWav('hello there'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).retryable).toBe(false);
    // The decoder's own error line is in the message.
    expect((err as ProviderError).message).toMatch(/exited with 1: (FATAL|ERROR): /);
  });

  it('kills the decoder on timeout (retryable) and on abort (the abort reason)', async () => {
    const pcm: PcmAudio = toPcm(makeSpeechWav('This sentence is long enough to keep the decoder busy for a while, longer than the limit.'));
    // The decoder under a name of its own, to find its processes afterwards.
    const dir = mkdtempSync(path.join(tmpdir(), 'stt-test-'));
    const binary = path.join(dir, `pocketsphinx-timeout-${process.pid}`);
    symlinkSync(execFileSync('sh', ['-c', 'command -v pocketsphinx_continuous']).toString().trim(), binary);
    try {
      // About 25 s of speech: a decoder left running would take seconds to finish it.
      const long: PcmAudio = concatPcm([pcm, pcm, pcm, pcm], 0.5);
      const slow = new PocketsphinxSpeechToText({ binaryPath: binary, timeoutMs: () => 30 });
      const timeout = await slow.transcribe(long).catch((e: unknown) => e);
      expect(timeout).toBeInstanceOf(ProviderError);
      expect((timeout as ProviderError).retryable).toBe(true);
      expect(String(timeout)).toMatch(/timed out after 30 ms/);
      // The whole pipeline (shell, cat, decoder) was killed, not just the shell.
      await expect.poll(() => spawnSync('pgrep', ['-f', binary]).status, { timeout: 1000 }).toBe(1);

      const controller = new AbortController();
      const pending = stt.transcribe(pcm, { signal: controller.signal });
      setTimeout(() => controller.abort(new Error('user left')), 30);
      await expect(pending).rejects.toThrow('user left');
      await expect(stt.transcribe(pcm, { signal: AbortSignal.abort(new Error('already gone')) })).rejects.toThrow('already gone');
      expect((await stt.transcribe(pcm)).text).not.toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never writes the audio to disk: it works with no usable temporary folder', async () => {
    const pcm = toPcm(makeSpeechWav('I would like to read a book about the history of music.'));
    const savedTmp = process.env.TMPDIR;
    process.env.TMPDIR = '/nonexistent/voicetwin-no-tmp';
    try {
      expect(tmpdir()).toBe('/nonexistent/voicetwin-no-tmp');
      const transcript = await stt.transcribe(pcm);
      expect(transcript.text).not.toBe('');
    } finally {
      if (savedTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmp;
    }
  });
});

describeIfSpeech('PocketsphinxSpeechToText on real speech', () => {
  it('hears key words of the JFK clip (44.1 kHz stereo FLAC decoded to 16 kHz mono)', async () => {
    const transcript = await stt.transcribe(toPcm(readSpeech('openai-whisper/jfk.flac')));
    const words = new Set(normaliseWords(transcript.text));
    // "And so, my fellow Americans, ask not what your country can do for you, ask what you can do
    // for your country" is heard as "and i are my arm arrow and not like your brain and you are you
    // and when you can you buy your country": "americans" and "ask" are never recognised, with any
    // decoder setting tried (-lw, -wip, -beam, noise removal, band limits, input level).
    for (const expected of ['country', 'not', 'your', 'can']) expect(words, `heard "${transcript.text}"`).toContain(expected);
    expect(wordErrorRate(speechClip('openai-whisper/jfk.flac').transcript, transcript.text).wer).toBeLessThan(0.8);
    expect(transcript.durationSec).toBeCloseTo(11, 1);
  });

  it('keeps the word error rate on transcribed English clips below 50%', async () => {
    const clips = readManifest().filter((c) => ['wenet/librispeech-1995-1837-0001.wav', 'coqui-tts-ljspeech/LJ001-0001.wav', 'speechbrain/example2.flac'].includes(c.path));
    expect(clips).toHaveLength(3);
    let edits = 0;
    let words = 0;
    for (const clip of clips) {
      const transcript = await stt.transcribe(toPcm(readSpeech(clip.path)));
      const score = wordErrorRate(clip.transcript, transcript.text);
      edits += score.edits;
      words += score.words;
    }
    // Measured on these three: 14% (see measure-stt.ts for all transcribed clips: 46%).
    expect(edits / words).toBeLessThan(0.5);
  });
});
