/**
 * Test support for broadcasts: providers that speak with espeak-ng (so voice notes are real
 * Ogg/Opus made by the engine's own pipeline), a recording channel sender, a store that can
 * "crash" (every call after the crash hangs forever, as in a killed process), seeded users and
 * sliding-window checks on send timestamps.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Engine, type EngineSettings } from '../../../src/core/engine.js';
import { createStore } from '../../../src/core/store/index.js';
import type { Store, UserRecord, VoiceProfile } from '../../../src/core/store/types.js';
import type { ClonedVoice, Providers } from '../../../src/core/providers.js';
import type { Channel, ChannelSender, OutboundReply } from '../../../src/core/types.js';
import type { BroadcastEngine } from '../../../src/core/broadcast/index.js';
import { makeSpeechWav } from '../../helpers/audio.js';
import { EmbeddedQueue } from '../../../src/queue/embedded.js';
import type { JobQueue } from '../../../src/core/jobs.js';

export const DATA_KEY = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');

/** One synthesis request the test TTS received. */
export interface SynthCall {
  text: string;
  voiceId: string | undefined;
}

/**
 * Providers for broadcast tests: the TTS speaks with espeak-ng at the voice's pitch (`params.pitch`),
 * so different twin voices produce different audio. STT and chat are not used by broadcasts.
 */
export function speakingProviders(): Providers & { synthCalls: SynthCall[] } {
  const synthCalls: SynthCall[] = [];
  return {
    synthCalls,
    stt: { name: 'test-stt', reliable: true, transcribe: async (audio) => ({ text: 'hello', durationSec: audio.samples.length / audio.sampleRateHz }) },
    chat: {
      name: 'test-chat',
      reply: async () => ({ text: 'Hello there.' }),
      extractMemories: async () => [],
      insight: async () => '',
    },
    cloner: { name: 'test-espeak', minSpeechSec: 1, clone: async ({ userId }) => twinVoice(userId, 40) },
    tts: {
      name: 'test-espeak',
      synthesize: async ({ text, voice }) => {
        synthCalls.push({ text, voiceId: voice?.voiceId });
        const pitch = typeof voice?.params.pitch === 'number' ? voice.params.pitch : 50;
        return { bytes: makeSpeechWav(text, { pitch }), characters: text.length };
      },
    },
  };
}

/** A cloned voice of the test TTS. */
export function twinVoice(id: string, pitch: number, approximate = false): ClonedVoice {
  return { provider: 'test-espeak', voiceId: `v-${id}`, params: { pitch }, approximate, label: `test voice ${id}` };
}

/** A memory-backed store in a temporary folder (blobs on disk). */
export async function memoryStore(): Promise<{ store: Store; dataDir: string; close(): Promise<void> }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-broadcast-'));
  const store = await createStore({ backend: 'memory', dataDir, dataKey: DATA_KEY });
  return {
    store,
    dataDir,
    async close() {
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The real embedded job queue in `dataDir` (`jobs.sqlite`), polling every 20 ms; not started. */
export function openQueue(dataDir: string): Promise<EmbeddedQueue> {
  return EmbeddedQueue.open({ dataDir, pollMs: 20 });
}

/** A real engine over `store` with the speaking providers (and `queue`, which broadcasts run on). */
export function makeEngine(store: Store, settings: Partial<EngineSettings> = {}, queue?: JobQueue): Engine & { providers: ReturnType<typeof speakingProviders> } {
  return new Engine({ store, providers: speakingProviders(), ...(queue ? { queue } : {}), settings: { operators: ['telegram:1'], insightEvery: 0, memoryEvery: 0, ...settings } }) as Engine & {
    providers: ReturnType<typeof speakingProviders>;
  };
}

/** The engine as a broadcast sees it, over another store (e.g. one that crashes). */
export function engineOver(engine: Engine, store: Store): BroadcastEngine {
  return {
    store,
    voice: engine.voice,
    settings: engine.settings,
    providers: engine.providers,
    now: engine.now,
    senderFor: (channel) => engine.senderFor(channel),
    isOperator: (key) => engine.isOperator(key),
    queue: engine.queue,
  };
}

/** Stores `count` users of `channel` with chat ids `firstChatId`, `firstChatId + 1`, … */
export async function seedUsers(
  store: Store,
  channel: Channel,
  count: number,
  firstChatId: number,
  options: { optedOut?: (i: number) => boolean; blocked?: (i: number) => boolean; sendTextWithVoice?: boolean } = {},
): Promise<UserRecord[]> {
  const users: UserRecord[] = [];
  for (let i = 0; i < count; i++) {
    const id = String(firstChatId + i);
    const user: UserRecord = {
      key: `${channel}:${id}`,
      channel,
      address: { channel, chatId: id },
      displayName: `User ${id}`,
      persona: 'supportive',
      sendTextWithVoice: options.sendTextWithVoice ?? true,
      optedOut: options.optedOut?.(i) ?? false,
      blocked: options.blocked?.(i) ?? false,
      messageCount: 0,
      createdAtMs: Date.now(),
      updatedAtMs: Date.now(),
    };
    await store.users.put(user);
    users.push(user);
  }
  return users;
}

/** Gives `userKey` a ready twin voice. */
export async function makeReady(store: Store, userKey: string, voice: ClonedVoice): Promise<void> {
  const profile: VoiceProfile = {
    userKey,
    state: 'ready',
    consent: { phrase: 'I agree', codeWord: 'apple', grantedAtMs: Date.now(), method: 'spoken-match' },
    speechSec: 30,
    requiredSpeechSec: 30,
    voice,
    updatedAtMs: Date.now(),
  };
  await store.profiles.put(profile);
}

/** One send a {@link RecordingSender} received. */
export interface RecordedSend {
  chatId: string;
  atMs: number;
  reply: OutboundReply;
  /** What the sender did: delivered, or the error thrown. */
  outcome: 'delivered' | Error;
}

/**
 * A channel sender that records every call. `script(chatId, attempt)` may throw to fail a send
 * (attempt counts calls per chat, from 1); `latencyMs` delays each call.
 */
export class RecordingSender implements ChannelSender {
  readonly sends: RecordedSend[] = [];
  private readonly attempts = new Map<string, number>();
  script: (chatId: string, attempt: number) => void = () => undefined;

  constructor(
    readonly channel: Channel,
    public latencyMs = 2,
  ) {}

  async send(chatId: string, reply: OutboundReply): Promise<void> {
    const atMs = Date.now();
    const attempt = (this.attempts.get(chatId) ?? 0) + 1;
    this.attempts.set(chatId, attempt);
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    try {
      this.script(chatId, attempt);
    } catch (err) {
      this.sends.push({ chatId, atMs, reply, outcome: err as Error });
      throw err;
    }
    this.sends.push({ chatId, atMs, reply, outcome: 'delivered' });
  }

  delivered(): RecordedSend[] {
    return this.sends.filter((s) => s.outcome === 'delivered');
  }

  /** Delivered sends per chat id. */
  deliveredCount(): Map<string, number> {
    const out = new Map<string, number>();
    for (const s of this.delivered()) out.set(s.chatId, (out.get(s.chatId) ?? 0) + 1);
    return out;
  }
}

/** The most timestamps that fall in any half-open window `[t, t + windowMs)`. */
export function maxInWindow(timesMs: number[], windowMs: number): number {
  const t = [...timesMs].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < t.length; end++) {
    while (t[end]! - t[start]! >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

/** The smallest gap between two consecutive timestamps of the same key, or Infinity. */
export function minGapPerKey(items: Array<{ key: string; atMs: number }>): number {
  const byKey = new Map<string, number[]>();
  for (const { key, atMs } of items) (byKey.get(key) ?? byKey.set(key, []).get(key)!).push(atMs);
  let min = Infinity;
  for (const times of byKey.values()) {
    times.sort((a, b) => a - b);
    for (let i = 1; i < times.length; i++) min = Math.min(min, times[i]! - times[i - 1]!);
  }
  return min;
}

/**
 * Wraps a store so that after `crash()` every call hangs forever and nothing more is written,
 * as if the process had been killed at that instant (calls already started still complete).
 */
export function crashableStore(store: Store): { store: Store; crash(): void } {
  let crashed = false;
  const hang = new Promise<never>(() => undefined);
  const wrap = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(obj, prop) {
        const value: unknown = Reflect.get(obj, prop, obj);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => (crashed ? hang : (value as (...a: unknown[]) => unknown).apply(obj, args));
      },
    });
  const wrapped = {
    ...store,
    backend: store.backend,
    users: wrap(store.users),
    profiles: wrap(store.profiles),
    samples: wrap(store.samples),
    history: wrap(store.history),
    memories: wrap(store.memories),
    jobs: wrap(store.jobs),
    dedupe: wrap(store.dedupe),
    kv: wrap(store.kv),
    blobs: wrap(store.blobs),
    summarize: (key: string) => (crashed ? hang : store.summarize(key)),
    deleteUser: (key: string) => (crashed ? hang : store.deleteUser(key)),
    close: () => store.close(),
  } as Store;
  return {
    store: wrapped,
    crash() {
      crashed = true;
    },
  };
}

/** Polls `predicate` every 10 ms. @throws after `timeoutMs` */
export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
