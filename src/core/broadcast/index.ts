/**
 * Operator broadcasts: a persisted, resumable, rate-limited fan-out of one announcement as a voice
 * note to every user, in each listener's own twin voice. See docs/broadcast.md.
 */
export * from './types.js';
export { parseBroadcastCommand, BROADCAST_USAGE, type BroadcastCommand } from './command.js';
export { RateLimiter, DEFAULT_CHANNEL_PACE, DEFAULT_HEADROOM, DEFAULT_WARMUP_MS, retryAfterMs, systemClock, type ChannelPace, type BroadcastClock } from './pacing.js';
export { BroadcastJournal, AUDIENCE_CHUNK, DEFAULT_RETENTION_MS } from './journal.js';
export { BroadcastRun, messagesPerReply, type BroadcastEngine, type ProgressEditor } from './runner.js';
export {
  BroadcastService,
  statusOfJob,
  broadcastQueueJobId,
  BROADCAST_JOB_KIND,
  BROADCAST_JOB_KEY,
  BROADCAST_JOB_ATTEMPTS,
  type BroadcastServiceOptions,
  type BroadcastOrigin,
  type BroadcastQueueJobData,
} from './service.js';
export { estimateText, progressText, statusText, summaryText, formatDuration, formatCount } from './format.js';
