/**
 * Choosing the reference clip for a zero-shot cloner such as Chatterbox: the best 10–15 s of
 * clean speech among the enrollment samples.
 *
 * Chatterbox conditions on the start of its reference (the released model keeps at most the
 * first 6 s for speech tokens and 10 s for the speaker embedding; Replicate's page asks for more
 * than 5 s), so a clip that is continuous speech from its first frame, from the cleanest samples,
 * is worth more than a longer one. Source: https://github.com/resemble-ai/chatterbox
 * (`ENC_COND_LEN`, `DEC_COND_LEN` in `tts.py`) and https://replicate.com/resemble-ai/chatterbox.
 */
import { UserInputError } from '../../core/errors.js';
import type { CloneSample, PcmAudio } from '../../core/providers.js';
import { analyseSampleFrames } from '../../core/audio/analysis.js';
import { concatPcm } from '../../core/audio/pcm.js';

/** Bounds of the reference, seconds. */
export interface ReferenceBounds {
  /** Shortest acceptable speech (default 5, Chatterbox's minimum). */
  minSpeechSec: number;
  /** Speech wanted (default 12). */
  targetSec: number;
  /** Longest reference (default 15). */
  maxSec: number;
}

export const DEFAULT_REFERENCE_BOUNDS: ReferenceBounds = { minSpeechSec: 5, targetSec: 12, maxSec: 15 };

/** The chosen reference and where it came from. */
export interface ReferenceClip {
  pcm: PcmAudio;
  durationSec: number;
  /** Seconds of detected speech in the clip. */
  speechSec: number;
  /** Pieces taken, in order: sample id, start and end within the sample (seconds). */
  segments: { sampleId: string; startSec: number; endSec: number }[];
}

interface Window {
  sampleId: string;
  pcm: PcmAudio;
  startFrame: number;
  endFrame: number;
  speechFrames: number;
  snrDb: number;
  clippingRatio: number;
}

/** Silence kept before the first and after the last speech frame of a piece, seconds. */
const PAD_SEC = 0.15;
/** Silence inserted between pieces from different samples, seconds. */
const JOIN_GAP_SEC = 0.3;

/**
 * The window of at most `maxFrames` frames with the most speech frames in one sample, trimmed to
 * start and end on speech (with a little padding).
 */
function bestWindow(sample: CloneSample, maxFrames: number): Window | undefined {
  const { analysis, frames } = analyseSampleFrames(sample.pcm);
  const speech = frames.speech;
  const n = speech.length;
  if (n === 0) return undefined;
  const span = Math.min(maxFrames, n);
  let count = 0;
  for (let i = 0; i < span; i++) count += speech[i] ?? 0;
  let best = count;
  let bestStart = 0;
  for (let start = 1; start + span <= n; start++) {
    count += (speech[start + span - 1] ?? 0) - (speech[start - 1] ?? 0);
    if (count > best) {
      best = count;
      bestStart = start;
    }
  }
  if (best === 0) return undefined;
  let first = bestStart;
  let last = bestStart + span - 1;
  while (first < last && !speech[first]) first++;
  while (last > first && !speech[last]) last--;
  const pad = Math.round(PAD_SEC / frames.frameSec);
  const startFrame = Math.max(0, first - pad);
  return {
    sampleId: sample.id,
    pcm: sample.pcm,
    startFrame,
    endFrame: Math.min(n, last + 1 + pad, startFrame + maxFrames),
    speechFrames: best,
    snrDb: analysis.snrDb,
    clippingRatio: analysis.clippingRatio,
  };
}

/**
 * Picks the reference clip: the best single window when it holds `targetSec` of speech (up to
 * `maxSec` long), else the best windows of several samples — cleanest first (higher SNR, less
 * clipping) — joined with short pauses until `targetSec` of speech or `maxSec` of audio.
 * All samples must share one sample rate (the engine normalises them to 16 kHz).
 *
 * @throws UserInputError AUDIO_TOO_SHORT when the samples hold less than `minSpeechSec` of speech
 */
export function selectReference(samples: readonly CloneSample[], bounds: Partial<ReferenceBounds> = {}): ReferenceClip {
  const { minSpeechSec, targetSec, maxSec } = { ...DEFAULT_REFERENCE_BOUNDS, ...bounds };
  const rate = samples[0]?.pcm.sampleRateHz ?? 16_000;
  const frameSec = 0.01;
  const maxFrames = Math.round(maxSec / frameSec);
  const windows = samples
    .filter((s) => s.pcm.sampleRateHz === rate && s.pcm.samples.length > 0)
    .map((s) => bestWindow(s, maxFrames))
    .filter((w): w is Window => w !== undefined);
  const totalSpeechSec = windows.reduce((sum, w) => sum + w.speechFrames * frameSec, 0);
  if (totalSpeechSec < minSpeechSec) {
    throw new UserInputError('AUDIO_TOO_SHORT', `I need at least ${minSpeechSec} seconds of clear speech to copy your voice. Please send a longer voice note, speaking continuously.`, {
      speechSec: totalSpeechSec,
      minSpeechSec,
    });
  }
  // Cleanest first; among equally clean ones, the most speech.
  const quality = (w: Window): number => w.snrDb - 200 * w.clippingRatio;
  windows.sort((a, b) => quality(b) - quality(a) || b.speechFrames - a.speechFrames);
  const targetFrames = Math.round(targetSec / frameSec);
  const single = windows.filter((w) => w.speechFrames >= targetFrames).sort((a, b) => quality(b) - quality(a))[0];
  const chosen: Window[] = [];
  if (single) {
    chosen.push(single);
  } else {
    // Longest windows of the clean half first, so few joins are needed.
    let speechFrames = 0;
    let durationFrames = 0;
    for (const w of windows) {
      if (speechFrames >= targetFrames || durationFrames >= maxFrames) break;
      const gapFrames = chosen.length > 0 ? Math.round(JOIN_GAP_SEC / frameSec) : 0;
      const room = maxFrames - durationFrames - gapFrames;
      if (room <= Math.round(1 / frameSec)) break;
      const length = Math.min(w.endFrame - w.startFrame, room);
      chosen.push({ ...w, endFrame: w.startFrame + length });
      speechFrames += Math.min(w.speechFrames, length);
      durationFrames += gapFrames + length;
    }
  }
  const hop = Math.round(rate * frameSec);
  const pieces = chosen.map((w) => ({ samples: w.pcm.samples.subarray(w.startFrame * hop, Math.min(w.pcm.samples.length, w.endFrame * hop)), sampleRateHz: rate }));
  const joined = pieces.length > 0 ? concatPcm(pieces, JOIN_GAP_SEC).samples : new Int16Array(0);
  const maxSamples = Math.round(maxSec * rate);
  const out = joined.length > maxSamples ? joined.slice(0, maxSamples) : joined;
  const pcm = { samples: out, sampleRateHz: rate };
  const speechSec = analyseSampleFrames(pcm).analysis.speechSec;
  return {
    pcm,
    durationSec: out.length / rate,
    speechSec,
    segments: chosen.map((w) => ({ sampleId: w.sampleId, startSec: w.startFrame * frameSec, endSec: w.endFrame * frameSec })),
  };
}
