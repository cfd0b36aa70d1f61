import { describe, expect, it } from 'vitest';
import { decodeMulaw, decodeMulawSample, encodeMulaw, encodeMulawSample, FRAME_BYTES, MULAW_SILENCE, mulawFrames } from '../../src/telephony/mulaw.js';

describe('G.711 μ-law codec', () => {
  it('matches reference code points of ITU-T G.711 (Table 2a, inverted bits as transmitted)', () => {
    // 0 → 0xFF, full positive scale → 0x80, full negative scale → 0x00, −1 → 0x7F.
    expect(encodeMulawSample(0)).toBe(0xff);
    expect(encodeMulawSample(32767)).toBe(0x80);
    expect(encodeMulawSample(-32768)).toBe(0x00);
    expect(encodeMulawSample(-1)).toBe(0x7f);
    expect(decodeMulawSample(0xff)).toBe(0);
    expect(decodeMulawSample(0x80)).toBe(32124);
    expect(decodeMulawSample(0x00)).toBe(-32124);
    expect(MULAW_SILENCE).toBe(0xff);
  });

  it('round-trips every code word, and every sample within half a quantisation step', () => {
    for (let b = 0; b < 256; b++) {
      // 0x7F and 0xFF are both zero; all other code words are stable.
      const again = encodeMulawSample(decodeMulawSample(b));
      if (b === 0x7f) expect(again).toBe(0xff);
      else expect(again).toBe(b);
    }
    let worst = 0;
    for (let s = -32000; s <= 32000; s += 7) {
      const back = decodeMulawSample(encodeMulawSample(s));
      // Segment step is 2^(exponent+3) on the biased 14-bit scale: relative error stays under ~3.2 %.
      const err = Math.abs(back - s);
      worst = Math.max(worst, err / Math.max(Math.abs(s), 64));
    }
    expect(worst).toBeLessThan(0.07);
  });

  it('keeps a 440 Hz sine at telephone quality (SNR over 30 dB)', () => {
    const n = 8000;
    const pcm = new Int16Array(n);
    for (let i = 0; i < n; i++) pcm[i] = Math.round(12000 * Math.sin((2 * Math.PI * 440 * i) / 8000));
    const back = decodeMulaw(encodeMulaw(pcm));
    let signal = 0;
    let noise = 0;
    for (let i = 0; i < n; i++) {
      signal += pcm[i]! ** 2;
      noise += (pcm[i]! - back[i]!) ** 2;
    }
    expect(10 * Math.log10(signal / noise)).toBeGreaterThan(30);
  });

  it('cuts 20 ms frames of 160 bytes, padding the last with silence', () => {
    const frames = mulawFrames(Buffer.alloc(FRAME_BYTES * 2 + 10, 0x12));
    expect(frames.map((f) => f.length)).toEqual([160, 160, 160]);
    expect(frames[2]!.subarray(0, 10).every((b) => b === 0x12)).toBe(true);
    expect(frames[2]!.subarray(10).every((b) => b === 0xff)).toBe(true);
  });
});
