/**
 * Shapes of the voice-note audio pipeline (implemented in this folder over the system
 * ffmpeg/ffprobe, driven through pipes).
 */

/** Containers recognised by their magic bytes (never by file name). */
export type AudioContainer = 'ogg' | 'webm' | 'wav' | 'mp3' | 'flac' | 'm4a';

/** What ffprobe reports about an audio input. */
export interface AudioProbe {
  container: AudioContainer;
  /** Codec of the first audio stream, as ffprobe names it (`opus`, `mp3`, `pcm_s16le`, `flac`, `aac`…). */
  codec: string;
  durationSec: number;
  sampleRateHz: number;
  channels: number;
  sizeBytes: number;
}

/** Limits checked before anything is decoded. */
export interface AudioLimits {
  /** Largest accepted input, bytes (default 20 MB). */
  maxBytes: number;
  /** Longest accepted input, seconds (default 600 for a chat turn, 180 per enrollment sample). */
  maxDurationSec: number;
}

/** Measurements of an enrollment sample (16 kHz mono PCM). */
export interface SampleAnalysis {
  durationSec: number;
  /** Seconds classified as speech by the voice-activity detector. */
  speechSec: number;
  /** Integrated loudness, LUFS (EBU R128) or RMS dBFS where LUFS cannot be measured. */
  loudnessDb: number;
  /** Fraction of samples at or near full scale, 0–1. */
  clippingRatio: number;
  /** Estimated signal-to-noise ratio, dB (speech frames vs. quietest frames). */
  snrDb: number;
  /** Fraction of frames with a detected pitch (voicing), 0–1; helps tell speech from tones and music. */
  voicedRatio: number;
  /** Median fundamental frequency of voiced frames, Hz; undefined when nothing is voiced. */
  medianF0Hz?: number;
  /**
   * Syllable nuclei per second of speech: peaks of the smoothed 250–2500 Hz band energy that
   * stand out from their neighbours and fall on voiced frames. Read speech is about 3–6 per second;
   * a steady tone has none. Used to match the offline voice's speaking rate.
   */
  syllableRatePerSec: number;
  /**
   * Fraction (0–1) of successive pitch estimates (20 ms apart, both voiced) that differ by less
   * than 0.1 semitone. Speech glides continuously (0.05–0.4 on real recordings); a pure tone or
   * held musical notes stay put (above 0.8).
   */
  pitchStability: number;
  /** Level of the quietest 10% of 10 ms frames, dBFS (−100 for digital silence). */
  noiseFloorDb: number;
  /** Highest absolute sample, dBFS (−100 for digital silence). */
  peakDb: number;
}
