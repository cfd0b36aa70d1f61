/**
 * Energy-based voice activity detection on a live call: each 20 ms frame's RMS level in dBFS is
 * compared with a threshold that follows the line's noise floor, and a small state machine turns
 * frames into utterances (start after a little speech, end after enough silence).
 *
 * Thresholds (defaults in {@link DEFAULT_VAD_SETTINGS}), chosen for 8 kHz telephone audio:
 * - a frame is speech when its level is above max(`minSpeechDb` −45 dBFS, noise floor + `marginDb`
 *   12 dB); the noise floor follows the frame level, falling fast and rising slowly (a 2 s time constant;
 *   starting at −70 dBFS), so steady line noise stops counting as speech;
 * - an utterance starts after `startMs` (100 ms) of speech frames within the last 200 ms, so a
 *   click is ignored; it ends after `endSilenceMs` (500 ms) of non-speech frames — the end-of-turn
 *   delay every reply waits for;
 * - utterances with less than `minSpeechMs` (250 ms) of speech are dropped (a cough, a breath);
 *   one longer than `maxUtteranceSec` (30 s) is cut and handled as a turn.
 * Barge-in uses the same speech decision with `bargeInMs` (200 ms) of speech while the twin talks.
 */

/** Settings of {@link VoiceActivityDetector}; levels in dBFS, times in ms unless named in seconds. */
export interface VadSettings {
  minSpeechDb: number;
  marginDb: number;
  startMs: number;
  endSilenceMs: number;
  minSpeechMs: number;
  maxUtteranceSec: number;
  bargeInMs: number;
}

/** The documented defaults (see the module comment). */
export const DEFAULT_VAD_SETTINGS: VadSettings = {
  minSpeechDb: -45,
  marginDb: 12,
  startMs: 100,
  endSilenceMs: 500,
  minSpeechMs: 250,
  maxUtteranceSec: 30,
  bargeInMs: 200,
};

/** RMS level of signed 16-bit samples in dBFS (full scale = 32768); −120 for digital silence. */
export function levelDbfs(samples: Int16Array): number {
  if (samples.length === 0) return -120;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i]! * samples[i]!;
  const rms = Math.sqrt(sum / samples.length);
  return rms <= 0 ? -120 : Math.max(-120, 20 * Math.log10(rms / 32768));
}

/** What one frame changed. */
export type VadEvent =
  | { type: 'none'; speech: boolean }
  /** Speech has begun (after `startMs`); the frames since its first speech frame are kept. */
  | { type: 'start'; speech: true }
  /** The utterance ended: its audio (leading speech included, trailing silence trimmed to 100 ms). */
  | { type: 'end'; samples: Int16Array; speechMs: number; endedAtMs: number };

/**
 * Feeds 20 ms frames, reports utterances. One instance per call; not thread-safe (one call's
 * frames arrive in order on one socket).
 */
export class VoiceActivityDetector {
  readonly settings: VadSettings;
  private noiseDb = -70;
  private recent: boolean[] = [];
  private pre: Int16Array[] = [];
  private frames: Int16Array[] = [];
  private inUtterance = false;
  private silentMs = 0;
  private speechMs = 0;
  private consecutiveSpeechMs = 0;
  private lastSpeechIndex = 0;

  constructor(
    settings: Partial<VadSettings> = {},
    private readonly frameMs = 20,
  ) {
    this.settings = { ...DEFAULT_VAD_SETTINGS, ...settings };
  }

  /** True while an utterance is being collected. */
  get active(): boolean {
    return this.inUtterance;
  }

  /** Speech milliseconds in an unbroken run up to the last frame (barge-in decisions). */
  get speechRunMs(): number {
    return this.consecutiveSpeechMs;
  }

  /** Drops what was collected (after a barge-in was handled, or a turn was refused). */
  reset(): void {
    this.recent = [];
    this.pre = [];
    this.frames = [];
    this.inUtterance = false;
    this.silentMs = 0;
    this.speechMs = 0;
    this.consecutiveSpeechMs = 0;
  }

  /**
   * Feeds one frame of signed 16-bit PCM.
   * @param nowMs the frame's time (end of utterance timestamps)
   */
  push(frame: Int16Array, nowMs: number): VadEvent {
    const s = this.settings;
    const db = levelDbfs(frame);
    const speech = db > Math.max(s.minSpeechDb, this.noiseDb + s.marginDb);
    // The floor falls fast and rises slowly (≈ 2 s time constant), so steady line noise stops
    // counting as speech within about two seconds while speech pauses keep pulling it down.
    this.noiseDb += (db - this.noiseDb) * (db < this.noiseDb ? 0.3 : 0.01);
    this.consecutiveSpeechMs = speech ? this.consecutiveSpeechMs + this.frameMs : 0;
    const windowFrames = Math.max(1, Math.round(200 / this.frameMs));
    this.recent.push(speech);
    if (this.recent.length > windowFrames) this.recent.shift();
    if (!this.inUtterance) {
      this.pre.push(frame);
      if (this.pre.length > windowFrames) this.pre.shift();
      const speechInWindow = this.recent.filter(Boolean).length * this.frameMs;
      if (speechInWindow >= s.startMs) {
        this.inUtterance = true;
        this.frames = [...this.pre];
        this.pre = [];
        this.speechMs = speechInWindow;
        this.silentMs = 0;
        this.lastSpeechIndex = this.frames.length;
        return { type: 'start', speech: true };
      }
      return { type: 'none', speech };
    }
    this.frames.push(frame);
    if (speech) {
      this.speechMs += this.frameMs;
      this.silentMs = 0;
      this.lastSpeechIndex = this.frames.length;
    } else {
      this.silentMs += this.frameMs;
    }
    const tooLong = this.frames.length * this.frameMs >= s.maxUtteranceSec * 1000;
    if (this.silentMs >= s.endSilenceMs || tooLong) {
      const keep = Math.min(this.frames.length, this.lastSpeechIndex + Math.round(100 / this.frameMs));
      const kept = this.frames.slice(0, keep);
      const speechMs = this.speechMs;
      this.reset();
      if (speechMs < s.minSpeechMs) return { type: 'none', speech };
      const total = kept.reduce((n, f) => n + f.length, 0);
      const samples = new Int16Array(total);
      let at = 0;
      for (const f of kept) {
        samples.set(f, at);
        at += f.length;
      }
      return { type: 'end', samples, speechMs, endedAtMs: nowMs };
    }
    return { type: 'none', speech };
  }
}
