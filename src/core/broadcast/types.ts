/**
 * Shapes of an operator broadcast: the request, the persisted job, each recipient's state and the
 * figures reported while it runs. Platform-neutral; see docs/broadcast.md for the whole design.
 */
import type { Channel, ChatAddress } from '../types.js';
import type { UserKey } from '../store/types.js';

/** Channels a broadcast reaches (the console is a local test channel, never an audience). */
export const BROADCAST_CHANNELS = ['telegram', 'discord', 'whatsapp'] as const;
export type BroadcastChannel = (typeof BROADCAST_CHANNELS)[number];

/** Who receives it: everyone, one platform, or only users whose twin voice is ready. */
export const BROADCAST_AUDIENCES = ['all', 'telegram', 'discord', 'whatsapp', 'ready'] as const;
export type BroadcastAudience = (typeof BROADCAST_AUDIENCES)[number];

/**
 * Whose voice speaks it: each recipient's own twin (default voice for those without a ready
 * profile), the operator's twin, or the synthesizer's neutral default voice.
 */
export const BROADCAST_VOICES = ['own', 'operator', 'default'] as const;
export type BroadcastVoiceMode = (typeof BROADCAST_VOICES)[number];

/** The voice a recipient actually heard. */
export type SpokenVoice = 'own' | 'operator' | 'default';

/** What an operator asks for. */
export interface BroadcastRequest {
  /** The announcement; spoken and sent as the voice note's caption. */
  text: string;
  audience: BroadcastAudience;
  voice: BroadcastVoiceMode;
  /** Count and estimate only; nothing is stored or sent. */
  dryRun: boolean;
  /**
   * Reach a person on every channel they linked (`--each-channel`); by default a person is reached
   * once, on the channel they used last (see docs/identity.md).
   */
  eachChannel?: boolean;
}

/** Why a recipient was not sent to. */
export type SkipReason = 'opted out' | 'blocked' | 'deleted' | 'duplicate address';

/**
 * Failure categories (the recipient record keeps the detail after a colon):
 * - `unreachable`: the platform says the user blocked the bot or the chat is gone (Telegram 403);
 *   the user is marked `blocked` and skipped by later broadcasts;
 * - `in flight at crash`: marked `sending` when the process died; delivery unknown, never re-sent;
 * - `rate limited`: still refused after the retries allowed by `retry_after`;
 * - `no bot running`: no sender was registered for the channel;
 * - `send error`: any other error from the platform (not retried: it may have been delivered).
 */
export type FailureCategory = 'unreachable' | 'in flight at crash' | 'rate limited' | 'no bot running' | 'send error';

/**
 * One recipient's persisted state. No record means `pending`. `sending` is written before the
 * platform call and replaced by a final state after it.
 */
export type RecipientRecord =
  | { state: 'sending'; atMs: number; attempt: number }
  | { state: 'sent'; atMs: number; voice: SpokenVoice }
  | { state: 'failed'; atMs: number; category: FailureCategory; reason: string }
  | { state: 'skipped'; atMs: number; reason: SkipReason };

/** A recipient as snapshotted when the broadcast starts. */
export interface AudienceEntry {
  userKey: UserKey;
  /** Platform chat id the voice note goes to (the user's stored address). */
  chatId: string;
  /** Set when the recipient is already settled at snapshot time (opted out, blocked, duplicate). */
  skip?: SkipReason;
}

/** Counts of settled recipients. */
export interface BroadcastCounts {
  /** Recipients in the snapshot (including the skipped). */
  total: number;
  sent: number;
  failed: number;
  skipped: number;
  failedBy: Partial<Record<FailureCategory, number>>;
  skippedBy: Partial<Record<SkipReason, number>>;
  sentBy: Record<SpokenVoice, number>;
}

/**
 * The checkpoint of one channel's lane, in the job record. Recipients of a lane are numbered
 * 0…count-1 and dispatched in that order. Every index below `dispatched` has a recipient record
 * (or was settled in the snapshot); none at or above it has one. `counts` covers every settled
 * recipient except those in `open` (in flight when the checkpoint was written).
 */
export interface LaneCheckpoint {
  count: number;
  /** Number of audience chunks in the kv store. */
  chunks: number;
  dispatched: number;
  open: number[];
  counts: BroadcastCounts;
}

/** `JobRecord.data` of a broadcast job (`kind: 'broadcast'`). */
export interface BroadcastJobData {
  [key: string]: unknown;
  version: 1;
  text: string;
  audience: BroadcastAudience;
  voice: BroadcastVoiceMode;
  /** Sent on every linked channel of each person (`--each-channel`). */
  eachChannel?: boolean;
  /** User key of the operator who asked (`cli` for the command line). */
  requestedBy: string;
  /** Whose twin voice `--voice operator` uses and whose budget synthesis counts against. */
  operatorKey?: UserKey;
  /** Where the progress message and the summary go; absent for the command line. */
  progressAddress?: ChatAddress;
  lanes: Partial<Record<BroadcastChannel, LaneCheckpoint>>;
  estimate: BroadcastEstimate;
  startedAtMs?: number;
  finishedAtMs?: number;
  /** Total recipients found `sending` after restarts (reported, never re-sent). */
  inFlightAtCrash: number;
  /** Number of times the job was resumed after the process stopped. */
  resumes: number;
  /** Synthesis stopped counting own voices because the operator's budget ran out. */
  budgetExhausted?: boolean;
}

/** The figures of a dry run (and of every broadcast as it starts). */
export interface BroadcastEstimate {
  /** Recipients that will be sent to. */
  recipients: number;
  /** Recipients settled at snapshot (opted out, blocked, duplicate address). */
  skipped: number;
  skippedBy: Partial<Record<SkipReason, number>>;
  byChannel: Partial<Record<BroadcastChannel, { recipients: number; skipped: number; ownVoices: number; senderRegistered: boolean }>>;
  /** Recipients who will hear their own twin voice (`--voice own`). */
  ownVoices: number;
  /** Seconds until the last send at the configured pace (and synthesis), an estimate. */
  durationSec: number;
  /** Characters sent to the synthesizer (cache misses not known in advance: an upper bound). */
  ttsChars: number;
  /** Estimated synthesis cost, US dollars, when a price is configured for the synthesizer. */
  costUsd?: number;
  /** Synthesizer the characters go to. */
  ttsProvider: string;
}

/** What `/broadcast status` reports. */
export interface BroadcastStatus {
  id: string;
  state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  text: string;
  audience: BroadcastAudience;
  voice: BroadcastVoiceMode;
  counts: BroadcastCounts;
  /** Sends started and not yet settled. */
  inFlight: number;
  /** Recipients not yet dispatched. */
  remaining: number;
  /** Estimated seconds to completion while running. */
  etaSec?: number;
  createdAtMs: number;
  startedAtMs?: number;
  finishedAtMs?: number;
  inFlightAtCrash: number;
  budgetExhausted: boolean;
  /** A cancel was asked for and the process running the job has not acted on it yet. */
  cancelRequested?: boolean;
  error?: string;
}

/** Zero counts for `total` recipients. */
export function emptyCounts(total = 0): BroadcastCounts {
  return { total, sent: 0, failed: 0, skipped: 0, failedBy: {}, skippedBy: {}, sentBy: { own: 0, operator: 0, default: 0 } };
}

/** Adds a settled recipient to `counts` (pending and sending records are ignored). */
export function countRecord(counts: BroadcastCounts, record: RecipientRecord): void {
  switch (record.state) {
    case 'sent':
      counts.sent++;
      counts.sentBy[record.voice]++;
      break;
    case 'failed':
      counts.failed++;
      counts.failedBy[record.category] = (counts.failedBy[record.category] ?? 0) + 1;
      break;
    case 'skipped':
      counts.skipped++;
      counts.skippedBy[record.reason] = (counts.skippedBy[record.reason] ?? 0) + 1;
      break;
    case 'sending':
      break;
  }
}

/** The sum of several lanes' counts. */
export function sumCounts(all: BroadcastCounts[]): BroadcastCounts {
  const out = emptyCounts();
  for (const c of all) {
    out.total += c.total;
    out.sent += c.sent;
    out.failed += c.failed;
    out.skipped += c.skipped;
    for (const [k, v] of Object.entries(c.failedBy)) out.failedBy[k as FailureCategory] = (out.failedBy[k as FailureCategory] ?? 0) + (v ?? 0);
    for (const [k, v] of Object.entries(c.skippedBy)) out.skippedBy[k as SkipReason] = (out.skippedBy[k as SkipReason] ?? 0) + (v ?? 0);
    for (const k of ['own', 'operator', 'default'] as const) out.sentBy[k] += c.sentBy[k];
  }
  return out;
}

/** True for a channel a broadcast can reach. */
export function isBroadcastChannel(channel: Channel): channel is BroadcastChannel {
  return (BROADCAST_CHANNELS as readonly string[]).includes(channel);
}
