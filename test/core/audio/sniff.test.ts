import { describe, expect, it } from 'vitest';
import { sniffContainer } from '../../../src/core/audio/sniff.js';
import { mp3DurationSec } from '../../../src/core/audio/mpeg.js';
import { ffmpeg, makeSpeechWav, makeTone, toFlac, toM4a, toMp3, toOggOpus, toWebm } from '../../helpers/audio.js';

/** Deterministic pseudo-random bytes (xorshift32), so a failure can be reproduced. */
function pseudoRandomBytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

describe('sniffContainer', () => {
  const wav = makeSpeechWav('Testing one two three.');

  it('recognises every container ffmpeg produces for a voice clip', () => {
    expect(sniffContainer(wav)).toBe('wav');
    expect(sniffContainer(toOggOpus(wav))).toBe('ogg');
    expect(sniffContainer(toWebm(wav))).toBe('webm');
    expect(sniffContainer(toFlac(wav))).toBe('flac');
    expect(sniffContainer(toM4a(wav))).toBe('m4a');
    expect(sniffContainer(toMp3(wav))).toBe('mp3');
  });

  it('recognises an MP3 that starts with an ID3v2 tag, and one that starts with a frame', () => {
    const tagged = ffmpeg(['-i', 'pipe:0', '-c:a', 'libmp3lame', '-b:a', '48k', '-metadata', 'title=Voice memo', '-id3v2_version', '3', '-f', 'mp3', 'pipe:1'], wav);
    expect(tagged.toString('latin1', 0, 3)).toBe('ID3');
    expect(sniffContainer(tagged)).toBe('mp3');
    const bare = toMp3(wav);
    expect(bare[0]).toBe(0xff);
    expect(sniffContainer(bare)).toBe('mp3');
  });

  it('goes by the bytes, not the name: MP3 bytes a platform labelled .ogg are MP3', () => {
    const labelledOgg = { fileName: 'voice.ogg', bytes: toMp3(wav) };
    expect(sniffContainer(labelledOgg.bytes)).toBe('mp3');
  });

  it('recognises FLAC behind an ID3v2 tag', () => {
    const id3 = Buffer.from([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
    expect(sniffContainer(Buffer.concat([id3, toFlac(wav)]))).toBe('flac');
  });

  it('rejects documents, images and random bytes', () => {
    expect(sniffContainer(Buffer.from('%PDF-1.7\n%âãÏÓ\n1 0 obj\n<< /Type /Catalog >>\n', 'latin1'))).toBeUndefined();
    expect(sniffContainer(Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'))).toBeUndefined(); // PNG
    expect(sniffContainer(Buffer.from('RIFF\x24\x00\x00\x00AVI LIST', 'latin1'))).toBeUndefined();
    expect(sniffContainer(Buffer.from('\x00\x00\x00\x18ftypheic\x00\x00\x00\x00heicmif1', 'latin1'))).toBeUndefined();
    expect(sniffContainer(Buffer.alloc(0))).toBeUndefined();
    expect(sniffContainer(Buffer.from('Og'))).toBeUndefined();
    for (let seed = 1; seed <= 300; seed++) expect(sniffContainer(pseudoRandomBytes(4096, seed))).toBeUndefined();
  });

  it('checks MPEG header fields, not just the sync bits', () => {
    // ADTS AAC shares the 12 sync bits but uses layer 00, reserved for MPEG audio.
    expect(sniffContainer(Buffer.from('fff15080 2bfffc21 00000000', 'hex'))).toBeUndefined();
    // Sync bits with a bad bitrate index (1111) or sample-rate index (11).
    expect(sniffContainer(Buffer.from('fffbf000 00000000', 'hex'))).toBeUndefined();
    expect(sniffContainer(Buffer.from('fffb9c00 00000000', 'hex'))).toBeUndefined();
    // A valid MPEG-1 layer III header (128 kb/s, 44.1 kHz) followed by garbage where the next frame should be.
    const frame = Buffer.concat([Buffer.from('fffb9000', 'hex'), Buffer.alloc(413)]);
    expect(sniffContainer(Buffer.concat([frame, Buffer.from('not a frame')]))).toBeUndefined();
    expect(sniffContainer(Buffer.concat([frame, frame]))).toBe('mp3');
  });

  it('counts MP3 frames to the duration ffmpeg encoded', () => {
    const tone = makeTone(3, 440);
    const mp3 = toMp3(tone);
    // 3 s at 16 kHz in 576-sample MPEG-2 frames, plus the encoder's delay/padding frames.
    expect(mp3DurationSec(mp3)).toBeGreaterThan(2.99);
    expect(mp3DurationSec(mp3)).toBeLessThan(3.15);
    expect(mp3DurationSec(pseudoRandomBytes(10_000, 5))).toBeUndefined();
  });
});
