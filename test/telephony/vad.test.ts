import { describe, expect, it } from 'vitest';
import { DEFAULT_VAD_SETTINGS, levelDbfs, VoiceActivityDetector, type VadEvent } from '../../src/telephony/vad.js';

const frame = (amplitude: number, seed = 1): Int16Array => {
  const f = new Int16Array(160);
  let x = seed;
  for (let i = 0; i < f.length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    f[i] = Math.round(amplitude * Math.sin(i / 3) + ((x % 200) - 100) * (amplitude > 0 ? 0.01 : 0));
  }
  return f;
};

function feed(vad: VoiceActivityDetector, frames: Int16Array[], startMs = 0): VadEvent[] {
  return frames.map((f, i) => vad.push(f, startMs + (i + 1) * 20));
}

describe('levelDbfs', () => {
  it('is −120 for digital silence, about −3 dBFS for a full-scale sine', () => {
    expect(levelDbfs(new Int16Array(160))).toBe(-120);
    const sine = new Int16Array(800).map((_, i) => Math.round(32767 * Math.sin((2 * Math.PI * i) / 40)));
    expect(levelDbfs(sine)).toBeCloseTo(-3.01, 1);
  });
});

describe('VoiceActivityDetector', () => {
  it('reports an utterance once 500 ms of silence follow speech, with its audio', () => {
    const vad = new VoiceActivityDetector();
    const silence = Array.from({ length: 25 }, () => frame(0));
    const speech = Array.from({ length: 40 }, (_, i) => frame(6000, i + 1)); // 800 ms
    const events = feed(vad, [...silence, ...speech, ...silence]);
    const starts = events.filter((e) => e.type === 'start');
    const ends = events.filter((e) => e.type === 'end');
    expect(starts).toHaveLength(1);
    expect(ends).toHaveLength(1);
    const end = ends[0] as Extract<VadEvent, { type: 'end' }>;
    // Ends 500 ms after the last speech frame: frame 25 + 40 + 25 = 90 → at 65 × 20 + 500 ms.
    expect(end.endedAtMs).toBe((25 + 40) * 20 + DEFAULT_VAD_SETTINGS.endSilenceMs);
    expect(end.speechMs).toBeGreaterThanOrEqual(780);
    // The speech itself plus at most 100 ms of trailing silence (and the 200 ms pre-roll).
    expect(end.samples.length / 8).toBeGreaterThanOrEqual(800);
    expect(end.samples.length / 8).toBeLessThanOrEqual(800 + 100 + 200);
  });

  it('ignores a click shorter than the start time and a cough shorter than the minimum speech', () => {
    const vad = new VoiceActivityDetector();
    const silence = Array.from({ length: 30 }, () => frame(0));
    expect(feed(vad, [...silence, frame(8000), frame(8000), ...silence]).some((e) => e.type !== 'none')).toBe(false);
    const cough = Array.from({ length: 8 }, () => frame(8000)); // 160 ms < 250 ms
    expect(feed(vad, [...cough, ...silence]).some((e) => e.type === 'end')).toBe(false);
  });

  it('follows the noise floor: steady line noise at −40 dBFS is not speech, speech 20 dB above it is', () => {
    const vad = new VoiceActivityDetector();
    const noise = Array.from({ length: 150 }, () => frame(330)); // ≈ −40 dBFS
    expect(levelDbfs(noise[0]!)).toBeGreaterThan(-44);
    // The first frames may count as speech until the floor has adapted; after 3 s none does.
    const adapt = feed(vad, noise);
    vad.reset();
    expect(feed(vad, noise.slice(0, 50)).every((e) => e.type === 'none' && !e.speech)).toBe(true);
    const loud = Array.from({ length: 30 }, () => frame(4000));
    const events = feed(vad, [...loud, ...noise.slice(0, 30)]);
    expect(events.some((e) => e.type === 'end')).toBe(true);
    expect(adapt.length).toBe(150);
  });

  it('cuts an utterance at maxUtteranceSec', () => {
    const vad = new VoiceActivityDetector({ maxUtteranceSec: 1 });
    const events = feed(vad, Array.from({ length: 60 }, () => frame(6000)));
    expect(events.filter((e) => e.type === 'end')).toHaveLength(1);
  });

  it('measures the unbroken speech run used for barge-in', () => {
    const vad = new VoiceActivityDetector();
    feed(vad, Array.from({ length: 12 }, () => frame(6000)));
    expect(vad.speechRunMs).toBe(240);
    vad.push(frame(0), 0);
    expect(vad.speechRunMs).toBe(0);
  });
});
