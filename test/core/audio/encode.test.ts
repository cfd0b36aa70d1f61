import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeVoiceNote, voiceNoteWaveform } from '../../../src/core/audio/encode.js';
import { closeAudioWorkers, defaultAudioWorkerThreads, setAudioWorkerThreads } from '../../../src/core/audio/workers.js';
import { getOggOpusInfo } from '../../../src/core/audio/ogg.js';
import { checkAudioTools } from '../../../src/core/audio/tools.js';
import { DependencyError } from '../../../src/core/errors.js';
import { ffprobeDurationSec, ffprobeJson, makeSilence, makeSpeechWav, SAMPLE_SENTENCES, toMp3, toPcm } from '../../helpers/audio.js';

const speech = makeSpeechWav(SAMPLE_SENTENCES);
const pcm = toPcm(speech);
const pcmSec = pcm.samples.length / pcm.sampleRateHz;

describe('encodeVoiceNote', () => {
  afterAll(() => closeAudioWorkers());

  it('makes mono Ogg/Opus that ffprobe reads back with the input duration', async () => {
    const note = await encodeVoiceNote(pcm);
    expect(note.mimeType).toBe('audio/ogg; codecs=opus');
    expect(note.oggOpus.toString('latin1', 0, 4)).toBe('OggS');
    const probe = ffprobeJson(note.oggOpus);
    expect(probe.format.format_name).toBe('ogg');
    expect(probe.streams).toHaveLength(1);
    expect(probe.streams[0]).toMatchObject({ codec_type: 'audio', codec_name: 'opus', channels: 1, sample_rate: '48000' });
    expect(Math.abs(note.durationSec - pcmSec)).toBeLessThan(0.1);
    // ffprobe reads the file's duration from the last granule position.
    expect(Math.abs(ffprobeDurationSec(note.oggOpus) - pcmSec)).toBeLessThan(0.1);
    expect(note.sampleRateHz).toBe(48000);
  });

  it('encodes the same with the audio worker threads off', async () => {
    const source = toPcm(speech, 22050);
    setAudioWorkerThreads(0);
    try {
      const note = await encodeVoiceNote(source);
      expect(note.sampleRateHz).toBe(48000);
      expect(getOggOpusInfo(note.oggOpus).inputSampleRateHz).toBe(48000);
      expect(Math.abs(note.durationSec - source.samples.length / 22050)).toBeLessThan(0.01);
    } finally {
      setAudioWorkerThreads(defaultAudioWorkerThreads());
    }
  });

  it('writes no metadata tags beyond the encoder name', async () => {
    const note = await encodeVoiceNote(pcm);
    const probe = ffprobeJson(note.oggOpus);
    const tags = { ...(probe.format.tags as object | undefined), ...(probe.streams[0]!.tags as object | undefined) };
    expect(Object.keys(tags).filter((k) => k.toLowerCase() !== 'encoder')).toEqual([]);
  });

  it('signals the requested input rate in OpusHead', async () => {
    const note = await encodeVoiceNote(pcm, { sampleRateHz: 16000, bitrateBps: 24000 });
    expect(getOggOpusInfo(note.oggOpus).inputSampleRateHz).toBe(16000);
    expect(note.sampleRateHz).toBe(16000);
    expect(Math.abs(note.durationSec - pcmSec)).toBeLessThan(0.1);
  });

  it('transcodes container bytes from a TTS provider (MP3, WAV)', async () => {
    for (const bytes of [toMp3(speech), speech]) {
      const note = await encodeVoiceNote(bytes);
      expect(ffprobeJson(note.oggOpus).streams[0]).toMatchObject({ codec_name: 'opus', channels: 1 });
      expect(Math.abs(note.durationSec - ffprobeDurationSec(bytes))).toBeLessThan(0.1);
    }
  });

  it('draws a 256-point waveform scaled to 0–255', async () => {
    const note = await encodeVoiceNote(pcm);
    expect(note.waveform).toBeInstanceOf(Uint8Array);
    expect(note.waveform).toHaveLength(256);
    expect(Math.max(...note.waveform)).toBe(255);
    // espeak-ng leaves short pauses between words: some buckets are much quieter than the loudest.
    expect(Math.min(...note.waveform)).toBeLessThan(60);
    expect(Array.from(voiceNoteWaveform(toPcm(makeSilence(1))))).toEqual(new Array(256).fill(0));
    expect(voiceNoteWaveform({ samples: Int16Array.from([1000, -2000, 500]), sampleRateHz: 16000 })).toHaveLength(256);
  });

  it('refuses empty input', async () => {
    await expect(encodeVoiceNote({ samples: new Int16Array(0), sampleRateHz: 16000 })).rejects.toMatchObject({ code: 'EMPTY_AUDIO' });
    await expect(encodeVoiceNote(Buffer.alloc(0))).rejects.toMatchObject({ code: 'EMPTY_AUDIO' });
  });
});

describe('checkAudioTools', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'voicetwin-tools-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports the installed versions and libopus', async () => {
    const info = await checkAudioTools();
    expect(info.ffmpegVersion).toMatch(/^\d+\.\d+/);
    expect(info.ffprobeVersion).toMatch(/^\d+\.\d+/);
    expect(info.opus).toBe(true);
  });

  it('names the missing tool and how to install it', async () => {
    const missing = checkAudioTools({ ffmpegPath: path.join(dir, 'no-ffmpeg') });
    await expect(missing).rejects.toThrow(DependencyError);
    await expect(missing).rejects.toMatchObject({ tool: 'ffmpeg', installHint: expect.stringContaining('apt-get install ffmpeg') });
    await expect(checkAudioTools({ ffprobePath: path.join(dir, 'no-ffprobe') })).rejects.toMatchObject({ tool: 'ffprobe' });
  });

  it('refuses an ffmpeg built without libopus', async () => {
    const fake = path.join(dir, 'ffmpeg-without-opus');
    writeFileSync(
      fake,
      '#!/bin/sh\ncase "$*" in\n  *-encoders*) printf " A....D aac                  AAC (Advanced Audio Coding)\\n A....D libmp3lame           MP3\\n";;\n  *) echo "ffmpeg version 9.9-test";;\nesac\n',
    );
    chmodSync(fake, 0o755);
    await expect(checkAudioTools({ ffmpegPath: fake })).rejects.toMatchObject({ tool: 'ffmpeg (libopus encoder)', installHint: expect.stringContaining('libopus') });
  });
});
