/**
 * Size and duration limits, checked before anything is downloaded or decoded, with messages
 * that name the limit.
 */
import { UserInputError } from '../errors.js';
import type { AudioLimits } from './types.js';

/** One mebibyte; sizes are shown in these units as "MB", as Telegram and Discord do. */
export const MIB = 1024 * 1024;

/**
 * Limits for a chat-turn voice note: 20 MB (the Telegram Bot API download cap,
 * https://core.telegram.org/bots/api#getfile) and 10 minutes.
 */
export const DEFAULT_AUDIO_LIMITS: Readonly<AudioLimits> = Object.freeze({ maxBytes: 20 * MIB, maxDurationSec: 600 });

/** Limits for one enrollment sample: 20 MB and 3 minutes. */
export const ENROLLMENT_SAMPLE_LIMITS: Readonly<AudioLimits> = Object.freeze({ maxBytes: 20 * MIB, maxDurationSec: 180 });

/**
 * Measured durations may exceed a declared or limit value by this much (seconds) before they
 * count as too long: encoders pad the last frame and platforms round durations to whole seconds.
 */
export const DURATION_TOLERANCE_SEC = 0.5;

/**
 * Rejects audio whose declared size or duration exceeds the limits, before it is downloaded.
 * Missing, negative or non-finite declared values are not checked.
 *
 * @param declared.sizeBytes size in bytes as declared by the platform (or the real size)
 * @param declared.durationSec duration in seconds as declared by the platform (or measured)
 * @throws UserInputError FILE_TOO_LARGE, e.g. "That file is 25.0 MB; the limit is 20 MB."
 * @throws UserInputError AUDIO_TOO_LONG, e.g. "That recording is 61.0 minutes long; the limit is 10 minutes."
 */
export function checkDeclared(declared: { sizeBytes?: number; durationSec?: number }, limits: AudioLimits): void {
  const { sizeBytes, durationSec } = declared;
  if (sizeBytes !== undefined && Number.isFinite(sizeBytes) && sizeBytes > limits.maxBytes) {
    throw new UserInputError(
      'FILE_TOO_LARGE',
      `That file is ${formatMegabytes(sizeBytes, 1)}; the limit is ${formatMegabytes(limits.maxBytes)}. Please send a shorter recording.`,
      { sizeBytes, maxBytes: limits.maxBytes },
    );
  }
  if (durationSec !== undefined && Number.isFinite(durationSec) && durationSec > limits.maxDurationSec + DURATION_TOLERANCE_SEC) {
    throw new UserInputError(
      'AUDIO_TOO_LONG',
      `That recording is ${formatDuration(durationSec, 1)} long; the limit is ${formatDuration(limits.maxDurationSec)}. Please send a shorter one.`,
      { durationSec, maxDurationSec: limits.maxDurationSec },
    );
  }
}

/** "25.0 MB" (with `decimals`), or "20 MB" for a whole number when `decimals` is omitted. */
export function formatMegabytes(bytes: number, decimals?: number): string {
  const mb = bytes / MIB;
  return `${decimals === undefined && Number.isInteger(mb) ? String(mb) : mb.toFixed(decimals ?? 1)} MB`;
}

/** "45 seconds", "10 minutes", "61.0 minutes" (with `decimals`); minutes from 120 s up. */
export function formatDuration(sec: number, decimals?: number): string {
  const [value, unit] = sec < 120 ? [sec, 'seconds'] : [sec / 60, 'minutes'];
  const text = decimals === undefined && Number.isInteger(value) ? String(value) : value.toFixed(decimals ?? 1);
  return `${text} ${unit}`;
}
