/**
 * Sentences the user reads about the voice that answers them, in plain words. Engine names,
 * pitch in Hz and model names stay in `/status details` and the logs.
 */
import type { ClonedVoice } from './providers.js';

/** Label of replies spoken by the offline preview voice (an approximation of the speaker). */
export const APPROXIMATION_NOTE = 'This is an offline preview voice: a computer voice tuned to your pitch and pace, not a copy of your own voice.';

/** Label of replies spoken before the person has a voice of their own. */
export const DEFAULT_VOICE_NOTE = 'Default voice: send /enroll to hear your twin in your own voice.';

/**
 * Told once per outage when a reply that should have been in the person's cloned voice was
 * spoken by the fallback voice (the voice service failed and the offline voice answered).
 */
export const FALLBACK_VOICE_NOTE = "Your own voice isn't available right now, so this reply is in a standby voice. I'll switch back as soon as it works again.";

/** What the person's voice is, in words: "a clone of your voice" or "an offline preview voice". */
export function describeVoice(voice: Pick<ClonedVoice, 'approximate'>): string {
  return voice.approximate ? 'an offline preview voice tuned to your pitch and pace' : 'a clone of your voice';
}
