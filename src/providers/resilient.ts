/**
 * Fallback wrappers: each composes an ordered provider list for one capability
 * (`TTS_PROVIDERS=elevenlabs,replicate,local`) into a single implementation of the `core`
 * interface, with a timeout per attempt, bounded retries with backoff and jitter on 429/5xx that
 * honour `Retry-After`, no retry on 401/403 and other 4xx, a circuit breaker per provider with a
 * probe after the cool-down, zero-byte synthesis counted as a failure, and user errors rethrown.
 *
 * The results carry which provider answered (`provider`), so the engine can account usage per
 * provider and label a fallback voice. Cloning timeouts are the caller's: see
 * {@link ResilientVoiceCloner}.
 */
import type { Logger } from 'pino';
import type { PersonaName } from '../core/personas.js';
import { ProviderError } from '../core/errors.js';
import type {
  ChatModel,
  ChatRequest,
  ChatTurn,
  CloneSample,
  ClonedVoice,
  MemoryRecord,
  PcmAudio,
  SpeechSynthesizer,
  SpeechToText,
  SynthesizedAudio,
  Transcript,
  TranscribeOptions,
  VoiceCloner,
} from '../core/providers.js';
import { streamChatReply } from '../core/streaming.js';
import { ProviderChain, type ChainMember, type ChainOptions, type MemberStatus } from './resilient/chain.js';
import type { RetryPolicy } from './resilient/retry.js';

export { ProviderChain, type ChainEvent, type ChainMember, type ChainOptions, type MemberStatus } from './resilient/chain.js';
export { CircuitBreaker, DEFAULT_BREAKER_POLICY, type BreakerPolicy, type BreakerSnapshot, type BreakerState } from './resilient/breaker.js';
export { DEFAULT_RETRY_POLICY, backoffDelayMs, callWithRetry, retryDelayMs, type RetryPolicy } from './resilient/retry.js';
export { genericProviderError, httpProviderError, isAuthStatus, isRetryableStatus, parseRetryAfterSec } from './resilient/errors.js';

/** Token counts of one chat-model call (for usage accounting). */
export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
}

/** A transcript and who made it. */
export interface SourcedTranscript extends Transcript {
  /** Name of the provider that transcribed. */
  provider: string;
  /** That provider's {@link SpeechToText.reliable}; a fallback may be less reliable than the chain. */
  reliable: boolean;
}

/** Synthesised audio and who made it. */
export interface SourcedSynthesis extends SynthesizedAudio {
  provider: string;
  /**
   * True when the audio is in the requested voice; false when the answering provider had no
   * voice of the user's and spoke in its default (fallback) voice.
   */
  voiceMatched: boolean;
  /** The voice used, when one was. */
  voice?: ClonedVoice;
}

/** A chat reply and who made it. */
export interface SourcedReply {
  text: string;
  provider: string;
  /** Tokens, when the provider reports them. */
  usage?: TokenUsage;
}

/** Settings shared by the wrappers; per-capability retry overrides. Durations in milliseconds. */
export interface ResilienceOptions extends ChainOptions {
  logger?: Logger;
}

function sumUsage(result: unknown): TokenUsage | undefined {
  const usage = (result as { usage?: Partial<TokenUsage> } | undefined)?.usage;
  if (!usage || typeof usage.inputTokens !== 'number' || typeof usage.outputTokens !== 'number') return undefined;
  return { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens };
}

function listName(kind: string, members: readonly { name: string }[]): string {
  return `${kind}(${members.map((m) => m.name).join(',')})`;
}

/**
 * Speech-to-text over an ordered list of recognisers.
 * `reliable` is true only when every member is reliable; each transcript also says whether the
 * recogniser that made it is.
 */
export class ResilientSpeechToText implements SpeechToText {
  readonly name: string;
  readonly reliable: boolean;
  readonly chain: ProviderChain<SpeechToText & ChainMember>;

  constructor(members: readonly (SpeechToText & ChainMember)[], options: ResilienceOptions = {}) {
    this.chain = new ProviderChain('stt', members, options);
    this.name = listName('stt', members);
    this.reliable = members.every((m) => m.reliable);
    // Limited only when every member is: the union of their languages.
    if (members.every((m) => m.languages)) this.languages = [...new Set(members.flatMap((m) => m.languages ?? []))];
  }

  /** See {@link SpeechToText.languages}; each transcript names those of the member that made it. */
  readonly languages?: readonly string[];

  /**
   * @throws UserInputError from a recogniser (e.g. audio it cannot use), untouched
   * @throws ProviderError when every recogniser failed
   */
  async transcribe(audio: PcmAudio, options: TranscribeOptions = {}): Promise<SourcedTranscript> {
    const { result, provider } = await this.chain.run(
      (stt, signal) => stt.transcribe(audio, { languageHint: options.languageHint, signal, ...(options.onPartial ? { onPartial: options.onPartial } : {}) }),
      { signal: options.signal },
    );
    return { ...result, provider: provider.name, reliable: provider.reliable, ...(provider.languages ? { languages: provider.languages } : {}) };
  }

  status(): MemberStatus[] {
    return this.chain.status();
  }

  close(): void {
    this.chain.close();
  }
}

/** A chat model over an ordered list of models. */
export class ResilientChatModel implements ChatModel {
  readonly name: string;
  readonly chain: ProviderChain<ChatModel & ChainMember>;

  constructor(members: readonly (ChatModel & ChainMember)[], options: ResilienceOptions = {}) {
    this.chain = new ProviderChain('chat', members, options);
    this.name = listName('chat', members);
  }

  /** @throws ProviderError when every model failed or answered with empty text */
  async reply(request: ChatRequest): Promise<SourcedReply> {
    const { result, provider } = await this.chain.run((model, signal) => model.reply({ ...request, signal }), {
      signal: request.signal,
      validate: (r, model) => {
        if (!r.text.trim()) throw new ProviderError(model.name, 'empty reply', { retryable: true });
      },
    });
    return { text: result.text, provider: provider.name, usage: sumUsage(result) };
  }

  /**
   * The reply streamed from the first model that answers (natively where the model streams, else
   * as one piece). Retries and fallbacks happen only while nothing was handed to `onDelta`: once
   * a model has started writing, its failure ends the reply (text already shown cannot be taken
   * back).
   * @throws ProviderError when every model failed, or the writing model failed midway
   */
  async streamReply(request: ChatRequest, onDelta: (delta: string) => void): Promise<SourcedReply> {
    let started = false;
    const stop = new AbortController();
    const forward = (): void => stop.abort(request.signal?.reason);
    if (request.signal?.aborted) forward();
    else request.signal?.addEventListener('abort', forward, { once: true });
    try {
      const { result, provider } = await this.chain.run(
        async (model, signal) => {
          try {
            return await streamChatReply(model, { ...request, signal }, (delta) => {
              started = true;
              onDelta(delta);
            });
          } catch (err) {
            // Midway: stop the chain here (its caller-abort path rethrows this error untouched).
            if (started && !stop.signal.aborted) stop.abort(err);
            throw err;
          }
        },
        {
          signal: stop.signal,
          validate: (r, model) => {
            if (!r.text.trim()) throw new ProviderError(model.name, 'empty reply', { retryable: true });
          },
        },
      );
      return { text: result.text, provider: provider.name, usage: sumUsage(result) };
    } finally {
      request.signal?.removeEventListener('abort', forward);
    }
  }

  /** @throws ProviderError when every model failed */
  async extractMemories(history: ChatTurn[], known: MemoryRecord[], options: { signal?: AbortSignal } = {}): Promise<string[]> {
    const { result } = await this.chain.run((model, signal) => model.extractMemories(history, known, { signal }), { signal: options.signal });
    return result;
  }

  /** @throws ProviderError when every model failed */
  async insight(history: ChatTurn[], persona: PersonaName, options: { signal?: AbortSignal } = {}): Promise<string> {
    const { result } = await this.chain.run((model, signal) => model.insight(history, persona, { signal }), { signal: options.signal });
    return result;
  }

  status(): MemberStatus[] {
    return this.chain.status();
  }

  close(): void {
    this.chain.close();
  }
}

/** A synthesis request to the resilient wrapper: the core request plus voices of other providers. */
export interface ResilientSynthesisRequest {
  text: string;
  /** The user's voice (of any provider in the list). */
  voice?: ClonedVoice;
  /**
   * More voices of the same user made by other providers (e.g. the offline approximation),
   * used when the provider of `voice` is out.
   */
  alternateVoices?: ClonedVoice[];
  languageCode?: string;
  signal?: AbortSignal;
}

/**
 * Text-to-speech over an ordered list of synthesizers. Each member is called with the user's voice
 * of its own provider when there is one (`voice` or `alternateVoices`), else with its default
 * voice, and the result says which (`voiceMatched`). Zero-byte audio counts as a failure.
 */
export class ResilientSpeechSynthesizer implements SpeechSynthesizer {
  readonly name: string;
  readonly chain: ProviderChain<SpeechSynthesizer & ChainMember>;

  constructor(members: readonly (SpeechSynthesizer & ChainMember)[], options: ResilienceOptions = {}) {
    this.chain = new ProviderChain('tts', members, options);
    this.name = listName('tts', members);
  }

  /**
   * @throws UserInputError from a synthesizer (e.g. text too long for it), untouched
   * @throws ProviderError when every synthesizer failed or returned no audio
   */
  async synthesize(request: ResilientSynthesisRequest): Promise<SourcedSynthesis> {
    const voices = [request.voice, ...(request.alternateVoices ?? [])].filter((v): v is ClonedVoice => v !== undefined);
    const voiceFor = (name: string): ClonedVoice | undefined => voices.find((v) => v.provider === name);
    const { result, provider } = await this.chain.run(
      (tts, signal) => tts.synthesize({ text: request.text, voice: voiceFor(tts.name), languageCode: request.languageCode, signal }),
      {
        signal: request.signal,
        validate: (r, tts) => {
          if (!r.bytes || r.bytes.length === 0) throw new ProviderError(tts.name, 'synthesis returned no audio', { retryable: true });
        },
      },
    );
    const voice = voiceFor(provider.name);
    return { ...result, provider: provider.name, voiceMatched: voices.length > 0 && voice !== undefined, voice };
  }

  status(): MemberStatus[] {
    return this.chain.status();
  }

  close(): void {
    this.chain.close();
  }
}

/**
 * Voice cloning over an ordered list of cloners; `minSpeechSec` is the first (preferred) one's.
 *
 * Cloning may take long: the wrapper bounds each attempt by the `clone` retry policy (default
 * 120 s, one retry on 429/5xx, none after a timeout since the voice may have been created) but does not impose the user-facing `CLONE_TIMEOUT_S`. The caller races
 * `clone()` against that timeout, answers in the fallback voice when it fires, and lets the
 * promise finish in the background to store the voice when it arrives.
 */
export class ResilientVoiceCloner implements VoiceCloner {
  readonly name: string;
  readonly minSpeechSec: number;
  readonly chain: ProviderChain<VoiceCloner & ChainMember>;
  private readonly cloneRetry: Partial<RetryPolicy>;

  constructor(members: readonly (VoiceCloner & ChainMember)[], options: ResilienceOptions & { cloneRetry?: Partial<RetryPolicy> } = {}) {
    this.chain = new ProviderChain('cloner', members, options);
    this.name = listName('cloner', members);
    this.minSpeechSec = (members[0] as VoiceCloner).minSpeechSec;
    this.cloneRetry = { timeoutMs: 120_000, maxRetries: 1, retryOnTimeout: false, ...options.cloneRetry };
  }

  /**
   * Clones with the first cloner in rotation whose threshold the samples meet.
   * @throws UserInputError from a cloner (e.g. samples it rejects), untouched
   * @throws ProviderError when every cloner failed
   */
  async clone(request: { userId: string; displayName?: string; samples: CloneSample[]; signal?: AbortSignal }): Promise<ClonedVoice> {
    const speechSec = request.samples.reduce((sum, s) => sum + s.speechSec, 0);
    const { result } = await this.chain.run((cloner, signal) => cloner.clone({ ...request, signal }), {
      signal: request.signal,
      accept: (cloner) => speechSec >= cloner.minSpeechSec,
      retry: this.cloneRetry,
    });
    return result;
  }

  /**
   * Deletes the voice at the provider that made it (regardless of its breaker state).
   * Voices of providers not in this list, or whose cloner keeps nothing remotely, are ignored.
   * @throws ProviderError when the provider's deletion keeps failing
   */
  async deleteVoice(voice: ClonedVoice): Promise<void> {
    const member = this.chain.members.find((m) => m.name === voice.provider);
    if (!member?.deleteVoice) return;
    await this.chain.runOn(member.name, (cloner) => (cloner.deleteVoice as (v: ClonedVoice) => Promise<void>).call(cloner, voice));
  }

  status(): MemberStatus[] {
    return this.chain.status();
  }

  close(): void {
    this.chain.close();
  }
}

/** The ordered provider lists per capability, by provider name. */
export interface ProviderLists {
  stt: readonly (SpeechToText & ChainMember)[];
  chat: readonly (ChatModel & ChainMember)[];
  cloner: readonly (VoiceCloner & ChainMember)[];
  tts: readonly (SpeechSynthesizer & ChainMember)[];
}

/** Retry policies per capability (each merged over the defaults). */
export interface CapabilityPolicies {
  stt?: Partial<RetryPolicy>;
  chat?: Partial<RetryPolicy>;
  tts?: Partial<RetryPolicy>;
  /** Policy of one clone attempt (default 120 s timeout, one retry). */
  clone?: Partial<RetryPolicy>;
}

/** The resilient provider set the engine runs with. */
export interface ResilientProviders {
  stt: ResilientSpeechToText;
  chat: ResilientChatModel;
  cloner: ResilientVoiceCloner;
  tts: ResilientSpeechSynthesizer;
  /** Breaker states of every member, per capability (for `/status`). */
  status(): Record<'stt' | 'chat' | 'cloner' | 'tts', MemberStatus[]>;
  /** Stops background probes. */
  close(): void;
}

/**
 * Wraps each ordered list in its resilient implementation.
 * @throws Error when a list is empty or repeats a provider
 */
export function createResilientProviders(lists: ProviderLists, options: ResilienceOptions & { policies?: CapabilityPolicies } = {}): ResilientProviders {
  const { policies = {}, ...base } = options;
  const withRetry = (retry?: Partial<RetryPolicy>): ResilienceOptions => ({ ...base, retry: { ...base.retry, ...retry } });
  const stt = new ResilientSpeechToText(lists.stt, withRetry(policies.stt));
  const chat = new ResilientChatModel(lists.chat, withRetry(policies.chat));
  const cloner = new ResilientVoiceCloner(lists.cloner, { ...base, cloneRetry: policies.clone });
  const tts = new ResilientSpeechSynthesizer(lists.tts, withRetry(policies.tts));
  return {
    stt,
    chat,
    cloner,
    tts,
    status: () => ({ stt: stt.status(), chat: chat.status(), cloner: cloner.status(), tts: tts.status() }),
    close: () => {
      for (const wrapper of [stt, chat, cloner, tts]) wrapper.close();
    },
  };
}

/**
 * Picks providers by name in the configured order (`TTS_PROVIDERS=elevenlabs,replicate,local`).
 * @param names configured order
 * @param available providers by name
 * @throws Error naming the missing provider and what is available (a configuration mistake)
 */
export function orderProviders<T>(capability: string, names: readonly string[], available: Readonly<Record<string, T | undefined>>): T[] {
  return names.map((name) => {
    const provider = available[name];
    if (provider === undefined) {
      const have = Object.entries(available)
        .filter(([, p]) => p !== undefined)
        .map(([n]) => n);
      throw new Error(`${capability}: provider "${name}" is not configured (available: ${have.join(', ') || 'none'})`);
    }
    return provider;
  });
}
