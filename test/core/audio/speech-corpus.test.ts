/**
 * The pipeline on real recordings from the shared speech folder (see test/helpers/speech.ts).
 */
import { expect, it } from 'vitest';
import { analyseSample, assessEnrollmentSample } from '../../../src/core/audio/analysis.js';
import { decodeToPcm } from '../../../src/core/audio/decode.js';
import { encodeVoiceNote } from '../../../src/core/audio/encode.js';
import { DEFAULT_AUDIO_LIMITS } from '../../../src/core/audio/limits.js';
import { checkAudio, probeAudio } from '../../../src/core/audio/probe.js';
import type { SampleAnalysis } from '../../../src/core/audio/types.js';
import { ffprobeJson } from '../../helpers/audio.js';
import { describeIfSpeech, readSpeech, speechClip } from '../../helpers/speech.js';

const analyses = new Map<string, SampleAnalysis>();
async function analyse(relPath: string): Promise<SampleAnalysis> {
  let analysis = analyses.get(relPath);
  if (!analysis) {
    analysis = analyseSample(await decodeToPcm(readSpeech(relPath)));
    analyses.set(relPath, analysis);
  }
  return analysis;
}

describeIfSpeech('real speech clips', () => {
  it.each([
    ['openai-whisper/jfk.flac', 'flac', 'flac', 2, 44100],
    ['coqui-tts-ljspeech/LJ001-0001.wav', 'wav', 'pcm_s16le', 1, 22050],
    ['resemblyzer-librispeech/1998-15444-0001.flac', 'flac', 'flac', 1, 16000],
    ['resemblyzer-librispeech/2033-164914-0001.flac', 'flac', 'flac', 1, 16000],
    ['derived-telegram-oga/jfk_telegram_style.oga', 'ogg', 'opus', 1, 48000],
    ['silero-vad/test.mp3', 'mp3', 'mp3', 2, 44100], // carries a PNG cover-art stream
    ['silero-vad/test.wav', 'wav', 'pcm_s16le', 1, 16000],
    ['whisper.cpp/jfk.mp3', 'mp3', 'mp3', 1, 16000],
  ] as const)('%s: probed, decoded and accepted as an enrollment sample', async (relPath, container, codec, channels, sampleRateHz) => {
    const clip = speechClip(relPath);
    const bytes = readSpeech(relPath);
    const probe = await checkAudio(bytes, DEFAULT_AUDIO_LIMITS);
    expect(probe).toMatchObject({ container, codec, channels, sampleRateHz });
    expect(Math.abs(probe.durationSec - clip.durationSec)).toBeLessThan(0.1);

    const pcm = await decodeToPcm(bytes);
    expect(pcm.sampleRateHz).toBe(16000);
    expect(Math.abs(pcm.samples.length / 16000 - clip.durationSec)).toBeLessThan(0.1);

    const analysis = await analyse(relPath);
    // Read speech is mostly speech, with pauses between phrases.
    expect(analysis.speechSec).toBeGreaterThan(0.55 * clip.durationSec);
    expect(analysis.speechSec).toBeLessThanOrEqual(clip.durationSec);
    expect(analysis.syllableRatePerSec).toBeGreaterThan(2);
    expect(analysis.syllableRatePerSec).toBeLessThan(7);
    expect(() => assessEnrollmentSample(analysis)).not.toThrow();
  });

  it('accepts the other clips too: other speakers, languages, a quiet Opus file, a stereo two-speaker WAV', async () => {
    const clips = ['coqui-tts-ljspeech/LJ001-0004.wav', 'lhotse/2412-153948-0000.flac', 'wenet/librispeech-1995-1837-0001.wav',
      'speechbrain/example1.wav', 'speechbrain/example5.wav', 'speechbrain/example2.flac', 'wenet/aishell-BAC009S0724W0121.wav',
      'indicwav2vec-hindi/valid_2131_003.wav', 'silero-vad/test.opus', 'faster-whisper/stereo_diarization.wav'];
    for (const relPath of clips) {
      const analysis = await analyse(relPath);
      expect(analysis.speechSec, relPath).toBeGreaterThan(0.5 * speechClip(relPath).durationSec);
      expect(() => assessEnrollmentSample(analysis), relPath).not.toThrow();
    }
  });

  it('tells a male from a female speaker by median pitch (LibriSpeech 2033 M vs 1998 F; speechbrain example5 M vs example1 F)', async () => {
    for (const n of ['0001', '0003', '0009']) {
      const male = await analyse(`resemblyzer-librispeech/2033-164914-${n}.flac`);
      const female = await analyse(`resemblyzer-librispeech/1998-15444-${n}.flac`);
      expect(male.medianF0Hz!).toBeLessThan(female.medianF0Hz! - 25);
    }
    const male = await analyse('speechbrain/example5.wav');
    const female = await analyse('speechbrain/example1.wav');
    // The manifest's independent estimates: about 106 Hz and 190 Hz.
    expect(male.medianF0Hz!).toBeGreaterThan(95);
    expect(male.medianF0Hz!).toBeLessThan(118);
    expect(female.medianF0Hz!).toBeGreaterThan(175);
    expect(female.medianF0Hz!).toBeLessThan(205);
  });

  it('measures JFK at the raised pitch of an open-air address, above LJ Speech', async () => {
    // The inaugural address is shouted to a crowd: the spectrum's harmonic spacing in its vowels
    // is 250–310 Hz, so a male voice here is not lower than LJ's reading voice (~220 Hz).
    const jfk = await analyse('whisper.cpp/jfk.wav');
    const lj = await analyse('coqui-tts-ljspeech/LJ001-0001.wav');
    expect(jfk.medianF0Hz!).toBeGreaterThan(200);
    expect(jfk.medianF0Hz!).toBeLessThan(300);
    expect(lj.medianF0Hz!).toBeGreaterThan(190);
    expect(lj.medianF0Hz!).toBeLessThan(250);
  });

  it('gives the same measurements for one recording in three containers (WAV, MP3, 44.1 kHz stereo FLAC)', async () => {
    const wav = await analyse('whisper.cpp/jfk.wav');
    for (const other of [await analyse('whisper.cpp/jfk.mp3'), await analyse('openai-whisper/jfk.flac')]) {
      expect(Math.abs(other.speechSec - wav.speechSec)).toBeLessThan(0.8);
      expect(Math.abs(other.medianF0Hz! - wav.medianF0Hz!)).toBeLessThan(5);
      expect(Math.abs(other.loudnessDb - wav.loudnessDb)).toBeLessThan(1);
    }
  });

  it('re-encodes the Telegram-style voice note and the cover-art MP3 as voice notes of the same length', async () => {
    for (const relPath of ['derived-telegram-oga/jfk_telegram_style.oga', 'silero-vad/test.mp3']) {
      const bytes = readSpeech(relPath);
      const note = await encodeVoiceNote(bytes);
      const reprobe = ffprobeJson(note.oggOpus);
      expect(reprobe.streams).toHaveLength(1);
      expect(reprobe.streams[0]).toMatchObject({ codec_name: 'opus', channels: 1 });
      expect(Math.abs(note.durationSec - (await probeAudio(bytes)).durationSec)).toBeLessThan(0.1);
      expect(note.waveform).toHaveLength(256);
    }
  });
});
