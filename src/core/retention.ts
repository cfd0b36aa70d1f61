/**
 * Retention: a sweep, run at start and then every hour, that deletes
 * - conversation turns older than `historyDays` (`HISTORY_RETENTION_DAYS`; 0 keeps them, within the
 *   per-person cap of turns);
 * - synthesis cache audio and turn audio (blob kinds `tts` and `inbox`) older than `audioDays`
 *   (`AUDIO_RETENTION_DAYS`; 0 keeps them), for every person and for the shared default voice.
 *
 * Enrollment samples, reference audio and the consent recording are not swept: they are kept as
 * long as the voice exists, and go with `/delete`. A blob's age comes from its id (the first 12 hex
 * characters are its creation time in ms, see `blob-store.ts`). Every process may run the sweep;
 * it is idempotent.
 */
import type { Logger } from './log.js';
import { silentLogger } from './log.js';
import { parseBlobKey } from './store/blob-store.js';
import type { Store } from './store/types.js';

/** Owner of synthesis cache audio made with the shared default voice (see `voice.ts`). */
export const SHARED_TTS_OWNER = 'shared:tts';
/** How often the sweep runs, ms. */
export const RETENTION_SWEEP_INTERVAL_MS = 60 * 60 * 1000;

const DAY_MS = 86_400_000;
const SWEPT_AUDIO_KINDS = new Set(['tts', 'inbox']);

/** Retention settings, in days; 0 keeps forever. */
export interface RetentionSettings {
  historyDays: number;
  audioDays: number;
}

/** What one sweep deleted. */
export interface RetentionResult {
  /** Conversation turns deleted. */
  turns: number;
  /** Audio blobs deleted. */
  audioBlobs: number;
  /** People whose data was looked at. */
  people: number;
}

/**
 * Runs one retention sweep over every person in the store.
 * @param now clock, ms since the epoch
 * @returns counts of what was deleted
 * @throws Error only when the users cannot be listed; a failure on one person is logged and the sweep goes on
 */
export async function sweepRetention(store: Store, settings: RetentionSettings, now: number, logger: Logger = silentLogger): Promise<RetentionResult> {
  const result: RetentionResult = { turns: 0, audioBlobs: 0, people: 0 };
  if (settings.historyDays <= 0 && settings.audioDays <= 0) return result;
  const users = await store.users.list();
  const historyCutoff = now - settings.historyDays * DAY_MS;
  const audioCutoff = now - settings.audioDays * DAY_MS;
  const owners = users.map((u) => u.key);
  for (const key of owners) {
    result.people++;
    try {
      if (settings.historyDays > 0) result.turns += await store.history.pruneBefore(key, historyCutoff);
    } catch (err) {
      logger.warn({ err, userKey: key }, 'retention: could not prune history');
    }
  }
  if (settings.audioDays > 0) {
    for (const owner of [...owners, SHARED_TTS_OWNER]) {
      try {
        for (const blobKey of await store.blobs.list(owner)) {
          const { kind, id } = parseBlobKey(blobKey);
          if (!SWEPT_AUDIO_KINDS.has(kind)) continue;
          const createdMs = Number.parseInt(id.slice(0, 12), 16);
          if (createdMs < audioCutoff) {
            await store.blobs.delete(blobKey);
            result.audioBlobs++;
          }
        }
      } catch (err) {
        logger.warn({ err, userKey: owner }, 'retention: could not sweep audio');
      }
    }
  }
  if (result.turns > 0 || result.audioBlobs > 0) logger.info({ ...result }, 'retention sweep deleted old data');
  return result;
}

/**
 * Runs {@link sweepRetention} now and every {@link RETENTION_SWEEP_INTERVAL_MS} (an unref'd timer:
 * it never keeps the process alive).
 * @returns a function that stops the schedule and waits for a sweep in progress
 */
export function scheduleRetention(store: Store, settings: RetentionSettings, logger: Logger = silentLogger, now: () => number = Date.now): () => Promise<void> {
  if (settings.historyDays <= 0 && settings.audioDays <= 0) return async () => undefined;
  let running: Promise<unknown> = Promise.resolve();
  const run = (): void => {
    running = running
      .then(() => sweepRetention(store, settings, now(), logger))
      .catch((err: unknown) => logger.warn({ err }, 'retention sweep failed'));
  };
  run();
  const timer = setInterval(run, RETENTION_SWEEP_INTERVAL_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
