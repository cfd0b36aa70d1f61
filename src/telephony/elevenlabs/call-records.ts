/**
 * Call records: which person and voice an agent conversation belongs to, found again by the
 * `voicetwin_call_ref` dynamic variable that ElevenLabs returns in the post-call webhook.
 * Stored in the key-value repository for {@link CALL_RECORD_TTL_MS}.
 */
import { randomBytes } from 'node:crypto';
import type { VoiceUse } from './overrides.js';

/** How long a call record (person ↔ call) is kept for the post-call webhook, ms (7 days). */
export const CALL_RECORD_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/** Per-call record: lets the post-call webhook find the person from `voicetwin_call_ref`. */
export interface CallRecord {
  userKey?: string;
  callSid?: string;
  voiceUse: VoiceUse;
  voiceId?: string;
  startedAtMs: number;
}

/** Key of a call record in the key-value repository. */
export function callRecordKey(callRef: string): string {
  return `telephony:elevenlabs:call:${callRef}`;
}

/** A new opaque call reference (128 random bits, base64url). */
export function newCallRef(): string {
  return randomBytes(16).toString('base64url');
}
