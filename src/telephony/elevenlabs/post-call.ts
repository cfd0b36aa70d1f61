/**
 * What happens after an agent call: the `post_call_transcription` webhook
 * (https://elevenlabs.io/docs/agents-platform/workflows/post-call-webhooks) carries
 * `{ type, event_timestamp, data: { agent_id, conversation_id, status, transcript: [{ role:
 * "user" | "agent", message, time_in_call_secs }], metadata: { start_time_unix_secs,
 * call_duration_secs, phone_call? }, conversation_initiation_client_data: { dynamic_variables } } }`.
 *
 * The transcript goes into the person's history (a user turn per caller line, a twin turn per agent
 * line), memories are extracted from it, and temporary voice clones are deleted (expired ones, and
 * this person's when clones are deleted after each call); the person's kept voice stays.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from 'pino';
import type { ChatModel, ChatTurn, MemoryRecord } from '../../core/providers.js';
import type { Store } from '../../core/store/types.js';
import { isDuplicateMemory } from '../../core/memory.js';
import type { AgentVoices } from './voices.js';
import { callRecordKey, type CallRecord } from './call-records.js';

/** The part of a post-call transcription event we read; everything else is ignored. */
export const postCallSchema = z.object({
  type: z.string(),
  data: z
    .object({
      conversation_id: z.string().min(1).max(200),
      agent_id: z.string().optional(),
      transcript: z
        .array(
          z.object({
            role: z.string(),
            message: z.string().nullish(),
            time_in_call_secs: z.number().nullish(),
          }),
        )
        .max(5000)
        .default([]),
      metadata: z
        .object({
          start_time_unix_secs: z.number().nullish(),
          phone_call: z.object({ external_number: z.string().nullish() }).passthrough().nullish(),
        })
        .passthrough()
        .nullish(),
      conversation_initiation_client_data: z.object({ dynamic_variables: z.record(z.string(), z.unknown()).nullish() }).passthrough().nullish(),
    })
    .passthrough()
    .optional(),
});

/** A post-call event as parsed. */
export type PostCallEvent = z.infer<typeof postCallSchema>;

/** What became of one event. */
export type PostCallOutcome =
  | { status: 'stored'; userKey: string; turns: number }
  | { status: 'duplicate' | 'unknown-caller' | 'ignored'; reason?: string };

/** Dependencies of {@link PostCallProcessor}. */
export interface PostCallDeps {
  store: Store;
  voices: AgentVoices;
  /** Finds the person of a caller id (E.164), for calls without our call reference. */
  lookupCaller: (e164: string) => Promise<string | undefined>;
  /** Chat model whose `extractMemories` runs over the call (the engine's); none → no extraction. */
  chat?: ChatModel;
  /** Delete this person's temporary clone right after the call too (default false: kept for the cache lifetime). */
  deleteCloneAfterCall?: boolean;
  logger: Logger;
  now: () => number;
}

/** Most facts stored from one call. */
const MAX_FACTS_PER_CALL = 5;
/** Transcript lines handed to memory extraction (the end of the call). */
const EXTRACTION_TURNS = 40;

/** Handles verified post-call events. */
export class PostCallProcessor {
  private readonly background = new Set<Promise<void>>();

  constructor(private readonly deps: PostCallDeps) {}

  /**
   * Stores the transcript (once per conversation id), then extracts memories and deletes temporary
   * clones in the background (see {@link whenIdle}).
   */
  async handle(event: PostCallEvent): Promise<PostCallOutcome> {
    const { store, logger } = this.deps;
    if (event.type !== 'post_call_transcription' || !event.data) return { status: 'ignored', reason: event.type };
    const data = event.data;
    const log = logger.child({ conversationId: data.conversation_id });
    const userKey = await this.personOf(data);
    if (!userKey) {
      log.info('post-call webhook for a caller linked to no person; nothing stored');
      this.track(this.cleanUp(undefined, log));
      return { status: 'unknown-caller' };
    }
    if (!(await store.dedupe.claim(`elevenlabs-post-call:${data.conversation_id}`))) return { status: 'duplicate' };
    const startMs = (data.metadata?.start_time_unix_secs ?? this.deps.now() / 1000) * 1000;
    const turns: ChatTurn[] = [];
    data.transcript.forEach((line, i) => {
      const text = line.message?.trim();
      if (!text) return;
      const role = line.role === 'user' ? 'user' : line.role === 'agent' ? 'twin' : undefined;
      if (!role) return;
      turns.push({ role, text: text.slice(0, 4000), atMs: Math.round(startMs + (line.time_in_call_secs ?? 0) * 1000), messageId: `elevenlabs-call:${data.conversation_id}:${i}` });
    });
    await store.history.append(userKey, ...turns);
    log.child({ personId: userKey }).info({ turns: turns.length }, 'call transcript stored');
    this.track(this.afterCall(userKey, turns, log.child({ personId: userKey })));
    return { status: 'stored', userKey, turns: turns.length };
  }

  /** Resolves when background work (memory extraction, clone deletion) is done. */
  async whenIdle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  private async personOf(data: NonNullable<PostCallEvent['data']>): Promise<string | undefined> {
    const ref = data.conversation_initiation_client_data?.dynamic_variables?.voicetwin_call_ref;
    if (typeof ref === 'string' && /^[\w-]{1,64}$/.test(ref)) {
      const record = await this.deps.store.kv.get<CallRecord>(callRecordKey(ref));
      // A person deleted since the call (`/delete`) gets nothing stored.
      if (record?.userKey) return (await this.deps.store.users.get(record.userKey)) ? record.userKey : undefined;
    }
    const caller = data.metadata?.phone_call?.external_number;
    const userKey = caller ? await this.deps.lookupCaller(caller) : undefined;
    return userKey && (await this.deps.store.users.get(userKey)) ? userKey : undefined;
  }

  private async afterCall(userKey: string, turns: ChatTurn[], log: Logger): Promise<void> {
    const { chat, store } = this.deps;
    if (chat && turns.some((t) => t.role === 'user')) {
      try {
        const known = await store.memories.list(userKey);
        const facts = await chat.extractMemories(turns.slice(-EXTRACTION_TURNS), known);
        let added = 0;
        for (const fact of facts.slice(0, MAX_FACTS_PER_CALL)) {
          const current = await store.memories.list(userKey);
          const text = fact.trim();
          if (!text || isDuplicateMemory(text, current)) continue;
          await store.memories.add(userKey, { id: newMemoryId(current), text: text.slice(0, 500), createdAtMs: this.deps.now(), source: 'extracted' });
          added++;
        }
        log.info({ count: added }, 'memories extracted from a call');
      } catch (err) {
        log.warn({ err }, 'memory extraction after a call failed');
      }
    }
    await this.cleanUp(userKey, log);
  }

  private async cleanUp(userKey: string | undefined, log: Logger): Promise<void> {
    try {
      await this.deps.voices.deleteTemporary(this.deps.deleteCloneAfterCall ? userKey : undefined);
    } catch (err) {
      log.warn({ err }, 'temporary clone clean-up failed');
    }
  }

  private track(task: Promise<void>): void {
    this.background.add(task);
    void task.finally(() => this.background.delete(task));
  }
}

function newMemoryId(existing: MemoryRecord[]): string {
  for (;;) {
    const id = randomBytes(2).toString('hex');
    if (!existing.some((m) => m.id === id)) return id;
  }
}
