/**
 * Which ElevenLabs voice the agent speaks in for a person, and the temporary instant voice clones
 * made for calls.
 *
 * - A person whose voice profile is `ready` with an ElevenLabs voice has a **kept voice**: used as
 *   is, never deleted here.
 * - A person enrolled with another cloner (Replicate, the offline voice) has enrollment samples but
 *   no ElevenLabs voice: a **temporary clone** is made from those samples (instant voice clone,
 *   `POST /v1/voices/add`, https://elevenlabs.io/docs/api-reference/voices/ivc/create) and cached
 *   for `cacheSec` (default 24 h). Past that it is expired: the next call clones again, and expired
 *   clones are deleted (`DELETE /v1/voices/{voice_id}`,
 *   https://elevenlabs.io/docs/api-reference/voices/delete) when a post-call webhook arrives.
 * - Anyone else speaks in the agent's default voice.
 *
 * The registry of temporary clones is one key-value record (`telephony:elevenlabs:temporary-clones`),
 * updated atomically, so several processes share it.
 */
import type { Logger } from 'pino';
import type { CloneSample, VoiceCloner } from '../../core/providers.js';
import type { SampleRecord, Store } from '../../core/store/types.js';
import { wavToPcm } from '../../core/audio/wav.js';

/** Provider name of ElevenLabs voices in voice profiles. */
const ELEVENLABS = 'elevenlabs';
/** Key of the registry in the key-value repository. */
export const TEMPORARY_CLONES_KEY = 'telephony:elevenlabs:temporary-clones';
/** Default lifetime of a temporary clone, seconds (24 h). */
export const DEFAULT_CLONE_CACHE_SEC = 24 * 60 * 60;

/** A temporary clone made for calls. Times in ms since the epoch. */
export interface TemporaryClone {
  userKey: string;
  voiceId: string;
  createdAtMs: number;
  expiresAtMs: number;
}

/** The voice a person's call can use right now. */
export type AgentVoice =
  | { kind: 'kept'; voiceId: string }
  | { kind: 'cached'; voiceId: string; expiresAtMs: number }
  | { kind: 'needs-clone'; samples: SampleRecord[] }
  | { kind: 'default' };

/** Options of {@link AgentVoices}. */
export interface AgentVoicesOptions {
  store: Store;
  /** An ElevenLabs cloner (`ElevenLabsVoiceCloner`); its voices must live in the agent's account. */
  cloner: VoiceCloner;
  /** Lifetime of a temporary clone, seconds (default 24 h). */
  cacheSec?: number;
  logger: Logger;
  now: () => number;
}

/** Resolves, makes and deletes the voices calls use. */
export class AgentVoices {
  private readonly cacheSec: number;
  /** Clones under way in this process, by person (two calls at once share one clone). */
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(private readonly options: AgentVoicesOptions) {
    this.cacheSec = options.cacheSec ?? DEFAULT_CLONE_CACHE_SEC;
  }

  /** The voice `userKey`'s call can use now, or what must happen first. */
  async resolve(userKey: string): Promise<AgentVoice> {
    const { store, now } = this.options;
    const profile = await store.profiles.get(userKey);
    if (profile?.state === 'ready' && profile.voice?.provider === ELEVENLABS) return { kind: 'kept', voiceId: profile.voice.voiceId };
    const cached = (await this.registry()).filter((c) => c.userKey === userKey && c.expiresAtMs > now()).sort((a, b) => b.expiresAtMs - a.expiresAtMs)[0];
    if (cached) return { kind: 'cached', voiceId: cached.voiceId, expiresAtMs: cached.expiresAtMs };
    const samples = await store.samples.list(userKey);
    if (samples.length > 0) return { kind: 'needs-clone', samples };
    return { kind: 'default' };
  }

  /**
   * Makes a temporary clone from the person's stored enrollment samples and registers it. Runs
   * once per person at a time in this process; an abandoned wait does not cancel the clone (the
   * next call within the cache lifetime uses it).
   * @returns the new voice id
   * @throws ProviderError / UserInputError from the cloner; Error when a sample blob is missing
   */
  clone(userKey: string, displayName?: string): Promise<string> {
    const running = this.inFlight.get(userKey);
    if (running) return running;
    const task = this.cloneNow(userKey, displayName).finally(() => this.inFlight.delete(userKey));
    this.inFlight.set(userKey, task);
    return task;
  }

  private async cloneNow(userKey: string, displayName?: string): Promise<string> {
    const { store, cloner, now, logger } = this.options;
    const records = await store.samples.list(userKey);
    const samples: CloneSample[] = [];
    for (const record of records) samples.push({ id: record.id, pcm: wavToPcm(await store.blobs.get(record.blobKey)), speechSec: record.speechSec });
    const startedMs = now();
    const voice = await cloner.clone({ userId: userKey, ...(displayName ? { displayName } : {}), samples });
    const clone: TemporaryClone = { userKey, voiceId: voice.voiceId, createdAtMs: now(), expiresAtMs: now() + this.cacheSec * 1000 };
    await store.kv.update<TemporaryClone[]>(TEMPORARY_CLONES_KEY, (list) => [...(list ?? []), clone]);
    logger.info({ personId: userKey, voiceId: voice.voiceId, samples: samples.length, ms: now() - startedMs }, 'temporary voice clone made for a call');
    return voice.voiceId;
  }

  /**
   * Deletes temporary clones at ElevenLabs and from the registry: every expired one, and every one
   * of `alsoOf` (a person whose call just ended, when clones are deleted after each call). Kept
   * voices are never touched. A clone whose deletion fails stays registered and is retried next time.
   * @returns the voice ids deleted
   */
  async deleteTemporary(alsoOf?: string): Promise<string[]> {
    const { store, cloner, now, logger } = this.options;
    const due = (await this.registry()).filter((c) => c.expiresAtMs <= now() || c.userKey === alsoOf);
    const deleted: string[] = [];
    for (const clone of due) {
      try {
        await cloner.deleteVoice?.({ provider: ELEVENLABS, voiceId: clone.voiceId, params: {}, approximate: false, label: 'temporary call clone' });
        deleted.push(clone.voiceId);
      } catch (err) {
        logger.warn({ err, personId: clone.userKey, voiceId: clone.voiceId }, 'could not delete a temporary voice clone; retried after the next call');
      }
    }
    if (deleted.length > 0) {
      await store.kv.update<TemporaryClone[]>(TEMPORARY_CLONES_KEY, (list) => (list ?? []).filter((c) => !deleted.includes(c.voiceId)));
      logger.info({ count: deleted.length }, 'temporary voice clones deleted');
    }
    return deleted;
  }

  /** Every registered temporary clone. */
  async registry(): Promise<TemporaryClone[]> {
    return (await this.options.store.kv.get<TemporaryClone[]>(TEMPORARY_CLONES_KEY)) ?? [];
  }
}
