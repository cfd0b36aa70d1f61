/**
 * Failover through the real SDKs against the local vendor fakes: ElevenLabs → Replicate → local
 * for TTS, ElevenLabs → Gemini for STT, Gemini → local for chat, with usage accounting and
 * budgets as the engine drives them, and no secret in the logs.
 *
 * `local` here is a stand-in implementing the core interfaces with espeak-ng (real audio), used
 * as the last resort; the project's offline providers live in src/providers/local.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { ProviderError, isUserInputError } from '../../../src/core/errors.js';
import { createLogger } from '../../../src/core/log.js';
import { UsageMeter, type UsageKeyValueStore } from '../../../src/core/usage.js';
import type { ChatModel, ChatRequest, ClonedVoice, CloneSample, PcmAudio, SpeechSynthesizer, SpeechToText, SynthesizedAudio, Transcript } from '../../../src/core/providers.js';
import { sniffContainer } from '../../../src/core/audio/sniff.js';
import { DEFAULT_UNIT_PRICES, createCloudProviders, type CloudProviders } from '../../../src/providers/cloud.js';
import { createResilientProviders, orderProviders, type ChainEvent, type ResilientProviders } from '../../../src/providers/resilient.js';
import { ElevenLabsFake } from '../../fakes/elevenlabs/server.js';
import { ReplicateFake } from '../../fakes/replicate/server.js';
import { GeminiFake } from '../../fakes/gemini/server.js';
import { espeakWav, speechPcm16k } from '../../fakes/elevenlabs/audio.js';

const KEYS = {
  elevenlabs: 'sk_eleven_3b7c1d9e5f2a4c6e8b0d',
  replicate: 'r8_replicate_6e1f0a2b3c4d5e6f7a8b',
  gemini: 'AIzaSyGemini_Fa9c8b7a6d5e4f3a2b1c',
};

/** Last-resort stand-ins for the offline stack. */
class LocalTts implements SpeechSynthesizer {
  readonly name = 'local';
  calls = 0;
  async synthesize(request: { text: string }): Promise<SynthesizedAudio> {
    this.calls++;
    return { bytes: await espeakWav(request.text), characters: request.text.length };
  }
}
class LocalChat implements ChatModel {
  readonly name = 'local';
  async reply(request: ChatRequest): Promise<{ text: string }> {
    return { text: `You said: ${request.userText}` };
  }
  async extractMemories(): Promise<string[]> {
    return [];
  }
  async insight(): Promise<string> {
    return 'You are doing fine.';
  }
}
class LocalStt implements SpeechToText {
  readonly name = 'local';
  readonly reliable = false;
  async transcribe(audio: PcmAudio): Promise<Transcript> {
    return { text: 'offline transcript', durationSec: audio.samples.length / audio.sampleRateHz };
  }
}

class MapStore implements UsageKeyValueStore {
  private readonly m = new Map<string, unknown>();
  async get<T>(k: string): Promise<T | undefined> {
    return structuredClone(this.m.get(k)) as T | undefined;
  }
  async set<T>(k: string, v: T): Promise<void> {
    this.m.set(k, structuredClone(v));
  }
  async update<T>(k: string, fn: (current: T | undefined) => T): Promise<T> {
    const next = fn(await this.get<T>(k));
    await this.set(k, next);
    return next;
  }
}

let eleven: ElevenLabsFake;
let replicate: ReplicateFake;
let gemini: GeminiFake;
let logText: string[];
let cloud: CloudProviders;
let providers: ResilientProviders;
let events: ChainEvent[];
let localTts: LocalTts;
let appLogger: ReturnType<typeof createLogger>;
const references = new Map<string, Buffer>();
let samples: CloneSample[];

function build(options: { coolDownMs?: number } = {}): void {
  providers?.close();
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logText.push(chunk.toString('utf8'));
      cb();
    },
  });
  const logger = createLogger({ level: 'trace', destination });
  appLogger = logger;
  cloud = createCloudProviders(
    {
      elevenlabs: { apiKey: KEYS.elevenlabs, baseUrl: eleven.baseUrl, minSpeechSec: 8 },
      replicate: { apiToken: KEYS.replicate, baseUrl: replicate.apiUrl },
      gemini: { apiKey: KEYS.gemini, baseUrl: gemini.baseUrl },
    },
    {
      logger,
      saveReference: async (owner, wav) => {
        const key = `${owner}/reference/${references.size + 1}`;
        references.set(key, wav);
        return key;
      },
      loadReference: async (key) => references.get(key) as Buffer,
    },
  );
  localTts = new LocalTts();
  events = [];
  const names = { stt: ['elevenlabs', 'gemini', 'local'], chat: ['gemini', 'local'], tts: ['elevenlabs', 'replicate', 'local'], clone: ['elevenlabs', 'replicate'] };
  providers = createResilientProviders(
    {
      stt: orderProviders('stt', names.stt, { ...cloud.stt, local: new LocalStt() }),
      chat: orderProviders('chat', names.chat, { ...cloud.chat, local: new LocalChat() }),
      tts: orderProviders('tts', names.tts, { ...cloud.tts, local: localTts }),
      cloner: orderProviders('clone', names.clone, cloud.cloner),
    },
    {
      logger,
      retry: { baseDelayMs: 20, maxDelayMs: 50, maxRetryAfterSec: 2 },
      breaker: { coolDownMs: options.coolDownMs ?? 60_000 },
      probeTimeoutMs: 2_000,
      onEvent: (e) => events.push(e),
    },
  );
}

beforeAll(async () => {
  [eleven, replicate, gemini] = await Promise.all([
    ElevenLabsFake.start({ apiKey: KEYS.elevenlabs }),
    ReplicateFake.start({ token: KEYS.replicate }),
    GeminiFake.start({ apiKey: KEYS.gemini }),
  ]);
  logText = [];
  samples = await Promise.all(
    ['I grew up in a small town by the sea, where the winters were long.', 'Most evenings I cook dinner and listen to the radio for a while.'].map(async (text, i) => {
      const pcm = await speechPcm16k(text, { wordsPerMinute: 130 });
      return { id: `s${i}`, pcm, speechSec: pcm.samples.length / pcm.sampleRateHz };
    }),
  );
});

afterEach(() => {
  providers?.close();
});

afterAll(async () => {
  await Promise.all([eleven.close(), replicate.close(), gemini.close()]);
  // No secret reached the logs in any of these scenarios (SDK errors, retries, fallbacks, breaker).
  const all = logText.join('');
  expect(all.length).toBeGreaterThan(1000);
  for (const key of Object.values(KEYS)) expect(all).not.toContain(key);
});

describe('TTS failover elevenlabs → replicate → local', () => {
  it('ElevenLabs 401 → Replicate answers in the user’s Chatterbox voice', async () => {
    build();
    const chatterbox = await cloud.cloner.replicate?.clone({ userId: 'telegram:1', samples });
    const elevenVoice: ClonedVoice = { provider: 'elevenlabs', voiceId: 'gone', params: {}, approximate: false, label: '' };
    eleven.inject('tts', { status: 401, detailStatus: 'invalid_api_key' });
    const before = eleven.on('tts').length;
    const out = await providers.tts.synthesize({ text: 'Good morning. I slept well.', voice: elevenVoice, alternateVoices: chatterbox ? [chatterbox] : [] });
    expect(out).toMatchObject({ provider: 'replicate', voiceMatched: true });
    expect(sniffContainer(out.bytes)).toBe('wav');
    expect(eleven.on('tts').length - before).toBe(1); // no retry on 401
    expect(providers.status().tts[0]?.state).toBe('open');
    const input = replicate.on('create').at(-1)?.json?.input as Record<string, unknown>;
    expect(String(input.audio_prompt)).toMatch(/^(data:audio\/wav|http)/);
  });

  it('ElevenLabs 429 with Retry-After → retried once after the wait, then answered by ElevenLabs', async () => {
    build();
    eleven.inject('tts', { status: 429, detailStatus: 'system_busy', retryAfterSec: 1 });
    const before = eleven.on('tts').length;
    const started = Date.now();
    const voice: ClonedVoice = { provider: 'elevenlabs', voiceId: 'JBFqnCBsd6RMkjVDRZzb', params: {}, approximate: false, label: '' };
    const out = await providers.tts.synthesize({ text: 'Hello again.', voice });
    expect(out).toMatchObject({ provider: 'elevenlabs', voiceMatched: true });
    expect(sniffContainer(out.bytes)).toBe('ogg');
    expect(eleven.on('tts').length - before).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
    expect(events.find((e) => e.type === 'attempt-failed')).toMatchObject({ provider: 'elevenlabs', status: 429, retryAfterSec: 1, nextDelayMs: 1000 });
  });

  it('Replicate prediction failed → local answers', async () => {
    build();
    const voice: ClonedVoice = { provider: 'elevenlabs', voiceId: 'JBFqnCBsd6RMkjVDRZzb', params: {}, approximate: false, label: '' };
    eleven.inject('tts', { status: 503 }, 3);
    replicate.failNextPredictions = 3;
    const out = await providers.tts.synthesize({ text: 'Still here.', voice });
    expect(out.provider).toBe('local');
    expect(out.voiceMatched).toBe(false);
    expect(localTts.calls).toBe(1);
    expect(providers.status().tts.map((s) => s.state)).toEqual(['open', 'open', 'closed']);
  });

  it('all down → one clear ProviderError naming each failure; a recovered provider is probed back and used again', async () => {
    build({ coolDownMs: 300 });
    const voice: ClonedVoice = { provider: 'elevenlabs', voiceId: 'JBFqnCBsd6RMkjVDRZzb', params: {}, approximate: false, label: '' };
    eleven.inject('tts', { status: 500 }, 3);
    replicate.inject('create', { status: 503 }, 3);
    localTts.synthesize = async () => {
      throw new ProviderError('local', 'espeak-ng crashed', { retryable: false });
    };
    let error: unknown;
    try {
      await providers.tts.synthesize({ text: 'Anyone?', voice });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ProviderError);
    expect(isUserInputError(error)).toBe(false);
    expect((error as ProviderError).message).toMatch(/all providers failed.*elevenlabs: HTTP 500.*replicate: HTTP 503.*local: espeak-ng crashed/);
    expect((error as ProviderError).retryable).toBe(true);
    // The engine logs such errors whole, with their causes (the SDK errors, requests included).
    appLogger.warn({ err: error }, 'reply failed');
    expect(logText.at(-1)).toContain('espeak-ng crashed');

    // ElevenLabs is healthy again: its background probe (GET /v1/models) closes the breaker.
    const probesBefore = eleven.on('models').length;
    await new Promise((r) => setTimeout(r, 800));
    expect(eleven.on('models').length).toBeGreaterThan(probesBefore);
    expect(providers.status().tts[0]?.state).toBe('closed');
    const again = await providers.tts.synthesize({ text: 'Back online.', voice });
    expect(again.provider).toBe('elevenlabs');
  });
});

describe('STT and chat failover', () => {
  it('ElevenLabs STT 503 (after retries) → Gemini transcribes; the transcript says who and how reliable', async () => {
    build();
    eleven.inject('stt', { status: 503 }, 3);
    gemini.sttText = 'I grew up in a small town by the sea';
    const pcm = samples[0]?.pcm as PcmAudio;
    const transcript = await providers.stt.transcribe(pcm);
    expect(transcript).toMatchObject({ provider: 'gemini', reliable: true, text: 'I grew up in a small town by the sea' });
    expect(providers.stt.reliable).toBe(false); // the chain ends with the offline recogniser
  });

  it('Gemini 429 asking for a long wait → local answers at once; the breaker keeps Gemini out for that long', async () => {
    build();
    gemini.inject('generate', { status: 429, retryDelaySec: 30 });
    const started = Date.now();
    const reply = await providers.chat.reply({ persona: 'supportive', systemPrompt: 'Be kind.', history: [], memories: [], userText: 'Hi', maxChars: 200 });
    expect(reply).toMatchObject({ provider: 'local', text: 'You said: Hi' });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(providers.status().chat[0]?.openUntilMs).toBeGreaterThanOrEqual(started + 30_000);
  });

  it('a Gemini reply carries token usage for accounting', async () => {
    build();
    const reply = await providers.chat.reply({ persona: 'supportive', systemPrompt: 'Be kind.', history: [], memories: [], userText: 'Hello there', maxChars: 200 });
    expect(reply.provider).toBe('gemini');
    expect(reply.usage?.inputTokens).toBeGreaterThan(0);
    expect(reply.usage?.outputTokens).toBeGreaterThan(0);
  });
});

describe('usage, budgets and slow clones, as the engine drives them', () => {
  it('accounts per answering provider and refuses once the daily character budget is reached', async () => {
    build();
    const meter = new UsageMeter(new MapStore(), { prices: DEFAULT_UNIT_PRICES, limits: { dailyTtsChars: 40 } });
    const voice: ClonedVoice = { provider: 'elevenlabs', voiceId: 'JBFqnCBsd6RMkjVDRZzb', params: {}, approximate: false, label: '' };
    const user = 'whatsapp:4477';
    const speak = async (text: string): Promise<void> => {
      await meter.checkBudget(user, ['tts']);
      const out = await providers.tts.synthesize({ text, voice });
      await meter.record(user, { provider: out.provider, ttsChars: out.characters });
    };
    const first = 'Here is a first, longer reply.';
    const second = 'Second one.';
    await speak(first);
    eleven.inject('tts', { status: 401, detailStatus: 'quota_exceeded' });
    await speak(second);
    const usage = await meter.today(user);
    expect(usage.byProvider.elevenlabs?.ttsChars).toBe(first.length);
    expect(usage.byProvider.replicate?.ttsChars).toBe(second.length);
    expect(usage.total.costUsd).toBeCloseTo((first.length / 1000) * 0.05 + (second.length / 1000) * 0.03, 8);
    let refused: unknown;
    try {
      await speak('Third.');
    } catch (err) {
      refused = err;
    }
    expect(isUserInputError(refused) && refused.code).toBe('BUDGET_EXCEEDED');
  });

  it('a clone slower than the caller’s timeout: the caller answers in the fallback voice and the clone finishes in the background', async () => {
    build();
    eleven.inject('clone', { status: 200, delayMs: 700, passThrough: true });
    const pending = providers.cloner.clone({ userId: 'telegram:9', displayName: 'Sam', samples });
    const cloneTimeoutMs = 200; // CLONE_TIMEOUT_S in the engine (35 s by default)
    const raced = await Promise.race([
      pending.then((voice) => ({ kind: 'voice' as const, voice })),
      new Promise<{ kind: 'timeout' }>((r) => setTimeout(() => r({ kind: 'timeout' }), cloneTimeoutMs)),
    ]);
    expect(raced.kind).toBe('timeout');
    // The engine answers now in the fallback voice and says so; the clone goes on.
    const voice = await pending;
    expect(voice).toMatchObject({ provider: 'elevenlabs', approximate: false });
    expect(eleven.voices.has(voice.voiceId)).toBe(true);
    expect(eleven.on('clone').at(-1)?.files?.filter((f) => f.field === 'files')).toHaveLength(2);
  });
});
