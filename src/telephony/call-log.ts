/**
 * The call log of each person and the phone limits (per-person daily minutes, unlinked numbers).
 *
 * Records (key-value repository, sealed at rest like every `kv:` record, docs/privacy.md):
 * - `calls:<userKey>` → {@link CallRecord}[], newest last, at most {@link MAX_CALLS_KEPT};
 * - `call:<callSid>` → `{ userKey }`, 2 days: which log a status callback or media stream belongs to;
 * - `call-seconds:<yyyy-mm-dd>:<userKey>` → seconds on the phone that UTC day, 2 days;
 * - `phone-unlinked:<e164>:<hour>` → calls and wrong codes from an unlinked number that hour.
 * `/delete` removes the first three for the person ({@link deleteCallRecords}).
 */
import type { KeyValueRepository } from '../core/store/types.js';

/** Calls kept per person (oldest dropped). */
export const MAX_CALLS_KEPT = 50;
/** Transcript lines kept per call (oldest dropped). */
export const MAX_TRANSCRIPT_LINES = 400;
const TWO_DAYS_MS = 2 * 24 * 3600 * 1000;

/** One call in a person's log. */
export interface CallRecord {
  callSid: string;
  /** Caller id, E.164. */
  from: string;
  startedAtMs: number;
  endedAtMs?: number;
  /** Seconds on the call (Twilio's `CallDuration`, or measured by the media stream). */
  durationSec?: number;
  /** The conversation mode (`pipeline`, `elevenlabs-agent`). */
  mode: string;
  /** The voice the twin spoke in: the clone's label, or `default voice`. */
  voice?: string;
  /** Why the twin did not use the person's voice for part of the call, when it did not. */
  fallback?: string;
  /** Call progress from Twilio's status callbacks (`initiated`, `ringing`, `in-progress`, `completed`…). */
  statuses: Array<{ status: string; atMs: number }>;
  /** What was said, in order. */
  transcript: Array<{ role: 'caller' | 'twin'; text: string; atMs: number }>;
  /** Why the call ended, when we ended it (`max-call-length`, `daily-minutes`). */
  endReason?: string;
}

/** Reads and writes call records of one store. */
export class CallLog {
  constructor(
    private readonly kv: KeyValueRepository,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts a call record (idempotent per call sid: Twilio may retry the voice webhook). */
  async start(userKey: string, call: { callSid: string; from: string; mode: string }): Promise<void> {
    await this.kv.set(`call:${call.callSid}`, { userKey }, TWO_DAYS_MS);
    await this.kv.update<CallRecord[]>(`calls:${userKey}`, (list = []) => {
      if (list.some((c) => c.callSid === call.callSid)) return list;
      return [...list, { ...call, startedAtMs: this.now(), statuses: [], transcript: [] }].slice(-MAX_CALLS_KEPT);
    });
  }

  /** The person a call belongs to, if it was started here. */
  async ownerOf(callSid: string): Promise<string | undefined> {
    return (await this.kv.get<{ userKey: string }>(`call:${callSid}`))?.userKey;
  }

  /**
   * Changes one call record (no-op when the call is unknown).
   * @param fn gets a copy and returns the changed record; must be synchronous
   */
  async change(callSid: string, fn: (call: CallRecord) => CallRecord): Promise<CallRecord | undefined> {
    const userKey = await this.ownerOf(callSid);
    if (!userKey) return undefined;
    let changed: CallRecord | undefined;
    await this.kv.update<CallRecord[]>(`calls:${userKey}`, (list = []) =>
      list.map((c) => {
        if (c.callSid !== callSid) return c;
        changed = fn({ ...c, statuses: [...c.statuses], transcript: [...c.transcript] });
        return changed;
      }),
    );
    return changed;
  }

  /** Adds a line to the transcript. */
  async say(callSid: string, role: 'caller' | 'twin', text: string): Promise<void> {
    await this.change(callSid, (c) => ({ ...c, transcript: [...c.transcript, { role, text, atMs: this.now() }].slice(-MAX_TRANSCRIPT_LINES) }));
  }

  /**
   * Records a status callback (`CallStatus`, https://www.twilio.com/docs/voice/api/call-resource#call-status-values);
   * a final status (`completed`, `busy`, `failed`, `no-answer`, `canceled`) ends the call and, with
   * `durationSec`, counts it against the person's daily minutes once.
   */
  async status(callSid: string, status: string, durationSec?: number): Promise<CallRecord | undefined> {
    const final = ['completed', 'busy', 'failed', 'no-answer', 'canceled'].includes(status);
    let counted = 0;
    const record = await this.change(callSid, (c) => {
      const next: CallRecord = { ...c, statuses: [...c.statuses, { status, atMs: this.now() }] };
      if (final) {
        next.endedAtMs ??= this.now();
        if (durationSec !== undefined && next.durationSec === undefined) {
          next.durationSec = durationSec;
          counted = durationSec;
        }
      }
      return next;
    });
    if (record && counted > 0) await this.addSeconds(await this.ownerOf(callSid), counted, record.startedAtMs);
    return record;
  }

  /** Ends a call measured by the media stream (counted against the daily minutes once). */
  async end(callSid: string, durationSec: number, endReason?: string): Promise<void> {
    let counted = 0;
    const record = await this.change(callSid, (c) => {
      const next: CallRecord = { ...c, endedAtMs: c.endedAtMs ?? this.now(), ...(endReason ? { endReason } : {}) };
      if (next.durationSec === undefined) {
        next.durationSec = Math.round(durationSec);
        counted = next.durationSec;
      }
      return next;
    });
    if (record && counted > 0) await this.addSeconds(await this.ownerOf(callSid), counted, record.startedAtMs);
  }

  /** The person's calls, newest first. */
  async list(userKey: string): Promise<CallRecord[]> {
    return [...((await this.kv.get<CallRecord[]>(`calls:${userKey}`)) ?? [])].reverse();
  }

  /** Seconds the person was on the phone on the UTC day of `atMs`. */
  async secondsToday(userKey: string, atMs = this.now()): Promise<number> {
    return (await this.kv.get<number>(`call-seconds:${utcDay(atMs)}:${userKey}`)) ?? 0;
  }

  private async addSeconds(userKey: string | undefined, sec: number, atMs: number): Promise<void> {
    if (!userKey) return;
    await this.kv.update<number>(`call-seconds:${utcDay(atMs)}:${userKey}`, (n = 0) => n + sec, TWO_DAYS_MS);
  }

  /**
   * Counts one event (a call, a wrong code) from an unlinked number in the current hour.
   * @returns false when the number already reached `perHour` this hour
   */
  async allowUnlinked(e164: string, perHour: number): Promise<boolean> {
    const hour = Math.floor(this.now() / 3_600_000);
    const count = await this.kv.update<number>(`phone-unlinked:${e164}:${hour}`, (n = 0) => n + 1, 3_600_000);
    return count <= perHour;
  }

  /** How many more events an unlinked number may cause this hour (without counting one). */
  async unlinkedLeft(e164: string, perHour: number): Promise<number> {
    const hour = Math.floor(this.now() / 3_600_000);
    return Math.max(0, perHour - ((await this.kv.get<number>(`phone-unlinked:${e164}:${hour}`)) ?? 0));
  }
}

/**
 * Deletes a person's call log, call index entries and today's and yesterday's minutes (`/delete`).
 * @returns how many records were deleted
 */
export async function deleteCallRecords(kv: KeyValueRepository, userKey: string, nowMs = Date.now()): Promise<number> {
  const calls = (await kv.get<CallRecord[]>(`calls:${userKey}`)) ?? [];
  for (const c of calls) await kv.delete(`call:${c.callSid}`);
  await kv.delete(`calls:${userKey}`);
  for (const day of [utcDay(nowMs), utcDay(nowMs - 86_400_000)]) await kv.delete(`call-seconds:${day}:${userKey}`);
  return calls.length;
}

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
