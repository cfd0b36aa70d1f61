/**
 * Gemini over `@google/genai`: the chat model (persona as system instruction, history as
 * contents, memories in the instruction), memory extraction and insights as structured JSON
 * output (`responseMimeType: application/json` + `responseSchema`), transcription of voice notes
 * (inline WAV audio with a transcription instruction), and `gemini-embedding-001` embeddings.
 *
 * API reference: https://ai.google.dev/api (generateContent, embedContent/batchEmbedContents);
 * structured output: https://ai.google.dev/gemini-api/docs/structured-output;
 * audio understanding: https://ai.google.dev/gemini-api/docs/audio.
 */
import { Type, type Content, type GenerateContentResponse, type GoogleGenAI, type Schema } from '@google/genai';
import { z } from 'zod';
import { ProviderError, UserInputError } from '../../core/errors.js';
import type { ChatModel, ChatRequest, ChatTurn, EmbeddingTaskType, MemoryRecord, PcmAudio, SpeechToText, TextEmbedder, Transcript } from '../../core/providers.js';
import { PERSONAS, type PersonaName } from '../../core/personas.js';
import { pcmToWav } from '../../core/audio/wav.js';
import { languageInstruction } from '../../core/language.js';
import { GEMINI, createGeminiClient, mapGeminiError, type GeminiConnection } from './client.js';

export { GEMINI, createGeminiClient, mapGeminiError, type GeminiConnection } from './client.js';

/** Token counts of one call, from `usageMetadata` (thinking tokens count as output). */
export interface GeminiUsage {
  inputTokens: number;
  outputTokens: number;
}

function usageOf(response: GenerateContentResponse): GeminiUsage {
  const u = response.usageMetadata;
  return { inputTokens: u?.promptTokenCount ?? 0, outputTokens: (u?.candidatesTokenCount ?? 0) + (u?.thoughtsTokenCount ?? 0) };
}

/** The text of the first candidate, or a ProviderError saying why there is none. */
function textOf(response: GenerateContentResponse): string {
  const block = response.promptFeedback?.blockReason;
  if (block) throw new ProviderError(GEMINI, `prompt blocked (${block})`, { retryable: false });
  const candidate = response.candidates?.[0];
  const text = (candidate?.content?.parts ?? []).filter((p) => typeof p.text === 'string' && !p.thought).map((p) => p.text).join('');
  if (!text && candidate?.finishReason && candidate.finishReason !== 'STOP') {
    throw new ProviderError(GEMINI, `no text (finish reason ${candidate.finishReason})`, { retryable: candidate.finishReason === 'MAX_TOKENS' });
  }
  return text;
}

/** Parses structured JSON output against a zod schema. */
function parseJson<T>(text: string, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProviderError(GEMINI, 'structured output is not JSON', { retryable: true });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ProviderError(GEMINI, `structured output does not match the schema: ${parsed.error.issues[0]?.message ?? ''}`, { retryable: true });
  return parsed.data;
}

/** Settings shared by the Gemini classes. */
export interface GeminiOptions extends GeminiConnection {
  /** Model id (default `gemini-2.5-flash`). */
  model?: string;
  /**
   * Thinking budget in tokens (`thinkingConfig.thinkingBudget`); 0 turns thinking off on Flash
   * models for latency. Default 0 for Flash models, the model's own default otherwise (Pro models
   * cannot turn it off). https://ai.google.dev/gemini-api/docs/thinking
   */
  thinkingBudget?: number;
}

function thinkingConfig(model: string, budget: number | undefined): { thinkingConfig?: { thinkingBudget: number } } {
  const value = budget ?? (model.includes('flash') ? 0 : undefined);
  return value === undefined ? {} : { thinkingConfig: { thinkingBudget: value } };
}

/** A cheap authenticated request used to bring Gemini back into rotation (`GET /v1beta/models/{model}`). */
async function probe(client: GoogleGenAI, model: string, apiKey: string, signal: AbortSignal): Promise<void> {
  try {
    await client.models.get({ model, config: { abortSignal: signal } });
  } catch (err) {
    throw mapGeminiError(err, apiKey);
  }
}

/** Turns into Gemini contents: `twin` → `model`, consecutive turns of one role merged. */
export function toContents(history: readonly ChatTurn[], userText: string): Content[] {
  const contents: Content[] = [];
  for (const turn of [...history, { role: 'user' as const, text: userText, atMs: 0 }]) {
    const role = turn.role === 'twin' ? 'model' : 'user';
    const text = turn.text.trim();
    if (!text) continue;
    const last = contents.at(-1);
    if (last?.role === role) last.parts?.push({ text });
    else contents.push({ role, parts: [{ text }] });
  }
  return contents;
}

/** Cuts `text` to at most `maxChars`: at the last sentence end that fits (a whole sentence sounds better than a cut one), else at a word boundary with an ellipsis. */
export function fitToLength(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const slice = text.slice(0, maxChars);
  const sentenceEnd = Math.max(slice.lastIndexOf('. '), slice.lastIndexOf('! '), slice.lastIndexOf('? '), slice.lastIndexOf('।'));
  if (sentenceEnd > 0) return slice.slice(0, sentenceEnd + 1).trim();
  const space = slice.lastIndexOf(' ');
  return `${(space > 0 ? slice.slice(0, space) : slice).trim()}…`;
}

/** Removes markdown a spoken reply should not carry (emphasis, headings, bullets, code ticks). */
function forSpeech(text: string): string {
  return text
    .replace(/`+/g, '')
    .replace(/\*\*?|__/g, '')
    .replace(/^\s{0,3}#{1,6}\s+/gm, '')
    .replace(/^\s*[-*•]\s+/gm, '')
    .replace(/\s+\n/g, '\n')
    .trim();
}

function transcriptOf(history: readonly ChatTurn[]): string {
  return history.map((t) => `${t.role === 'twin' ? 'Twin' : 'User'}: ${t.text.trim()}`).join('\n');
}

const MEMORY_SCHEMA: Schema = {
  type: Type.OBJECT,
  properties: {
    memories: {
      type: Type.ARRAY,
      description: 'New durable facts about the user, each one short sentence in the third person.',
      items: { type: Type.STRING },
    },
  },
  required: ['memories'],
};
const INSIGHT_SCHEMA: Schema = {
  type: Type.OBJECT,
  properties: { insight: { type: Type.STRING, description: 'One to three spoken sentences addressed to the user.' } },
  required: ['insight'],
};

/** Settings of {@link GeminiChatModel}. */
export interface GeminiChatOptions extends GeminiOptions {
  /** Sampling temperature (default 0.8). */
  temperature?: number;
  /** Most memories extracted from one pass (default 5). */
  maxMemories?: number;
}

/** A reply with token usage (the resilient wrapper passes `usage` on for accounting). */
export interface GeminiReply {
  text: string;
  usage: GeminiUsage;
}

/** The chat model. */
export class GeminiChatModel implements ChatModel {
  readonly name = GEMINI;
  readonly model: string;
  private readonly client: GoogleGenAI;

  constructor(private readonly options: GeminiChatOptions) {
    this.client = createGeminiClient(options);
    this.model = options.model ?? 'gemini-2.5-flash';
  }

  /**
   * The persona's system prompt plus the user's memories and the length bound as system
   * instruction; the recent turns and the new message as contents. The reply is stripped of
   * markdown and cut to `maxChars` at a sentence end.
   * @throws ProviderError on HTTP failure, a blocked prompt or an empty answer
   */
  async reply(request: ChatRequest): Promise<GeminiReply> {
    const { contents, config } = this.chatCall(request);
    const response = await this.generate(contents, config);
    const text = fitToLength(forSpeech(textOf(response)), request.maxChars);
    if (!text) throw new ProviderError(GEMINI, 'empty reply', { retryable: true });
    return { text, usage: usageOf(response) };
  }

  /**
   * {@link reply}, streamed with `generateContentStream` (`:streamGenerateContent?alt=sse`,
   * https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent): the text
   * is stripped of markdown as it arrives and handed to `onDelta` up to its last complete word
   * (markdown can only be removed reliably from whole words); the rest when the model is done.
   * The resolved text is cut to `maxChars` like {@link reply}'s, so it may end before the deltas.
   * @throws ProviderError on HTTP failure (before or during the stream), a blocked prompt or an empty answer
   */
  async streamReply(request: ChatRequest, onDelta: (delta: string) => void): Promise<GeminiReply> {
    const { contents, config } = this.chatCall(request);
    const { signal, ...rest } = config;
    let raw = '';
    let emitted = '';
    let usage: GeminiUsage = { inputTokens: 0, outputTokens: 0 };
    let finishReason: string | undefined;
    const emit = (clean: string): void => {
      if (!clean.startsWith(emitted) || clean.length === emitted.length) return;
      onDelta(clean.slice(emitted.length));
      emitted = clean;
    };
    try {
      const stream = await this.client.models.generateContentStream({
        model: this.model,
        contents,
        config: { ...rest, ...thinkingConfig(this.model, this.options.thinkingBudget), ...(signal ? { abortSignal: signal } : {}) },
      });
      for await (const chunk of stream) {
        const block = chunk.promptFeedback?.blockReason;
        if (block) throw new ProviderError(GEMINI, `prompt blocked (${block})`, { retryable: false });
        const candidate = chunk.candidates?.[0];
        raw += (candidate?.content?.parts ?? []).filter((p) => typeof p.text === 'string' && !p.thought).map((p) => p.text).join('');
        finishReason = candidate?.finishReason ?? finishReason;
        if (chunk.usageMetadata) usage = usageOf(chunk);
        const clean = forSpeech(raw);
        const lastSpace = clean.search(/\s\S*$/);
        if (lastSpace > 0) emit(clean.slice(0, lastSpace));
      }
    } catch (err) {
      throw mapGeminiError(err, this.options.apiKey);
    }
    if (!raw && finishReason && finishReason !== 'STOP') {
      throw new ProviderError(GEMINI, `no text (finish reason ${finishReason})`, { retryable: finishReason === 'MAX_TOKENS' });
    }
    const whole = forSpeech(raw);
    emit(whole);
    const text = fitToLength(whole, request.maxChars);
    if (!text) throw new ProviderError(GEMINI, 'empty reply', { retryable: true });
    return { text, usage };
  }

  /** The request of {@link reply} and {@link streamReply}. */
  private chatCall(request: ChatRequest): { contents: Content[]; config: Parameters<GeminiChatModel['generate']>[1] } {
    const memories = request.memories.length > 0 ? `\n\nWhat you remember about ${request.userName ?? 'the user'} (most relevant first):\n${request.memories.map((m) => `- ${m.text}`).join('\n')}` : '';
    const language = languageInstruction(request.language);
    const systemInstruction = `${request.systemPrompt}${memories}\n\n${language ? `${language}\n` : ''}Answer in at most ${request.maxChars} characters.`;
    return {
      contents: toContents(request.history, request.userText),
      config: {
        systemInstruction,
        temperature: this.options.temperature ?? 0.8,
        // Devanagari takes about one token per character; Latin text about one per two.
        maxOutputTokens: Math.max(64, request.language === 'hi' ? request.maxChars : Math.ceil(request.maxChars / 2)),
        ...(request.seed !== undefined ? { seed: request.seed } : {}),
        signal: request.signal,
      },
    };
  }

  /**
   * New durable facts about the user from recent turns, as JSON `{ memories: string[] }`;
   * facts already known (same text, case-insensitive) are dropped.
   * @throws ProviderError on HTTP failure or output that does not match the schema
   */
  async extractMemories(history: ChatTurn[], known: MemoryRecord[], options: { signal?: AbortSignal } = {}): Promise<string[]> {
    const userTurns = history.filter((t) => t.role === 'user');
    if (userTurns.length === 0) return [];
    const max = this.options.maxMemories ?? 5;
    const knownText = known.length > 0 ? known.map((m) => `- ${m.text}`).join('\n') : '(none)';
    const response = await this.generate([{ role: 'user', parts: [{ text: `Already known:\n${knownText}\n\nConversation:\n${transcriptOf(history)}` }] }], {
      systemInstruction:
        'You keep the long-term memory of a personal companion. From the conversation, list facts the user stated about themselves that will still matter in a month: ' +
        `people, preferences, plans, work, health, places. At most ${max}, each one short sentence in the third person ("Has a sister called Mia."). ` +
        'Leave out what is already known, small talk, and anything the twin said. Return an empty list when there is nothing new.',
      temperature: 0.2,
      responseMimeType: 'application/json',
      responseSchema: MEMORY_SCHEMA,
      signal: options.signal,
    });
    const { memories } = parseJson(textOf(response), z.object({ memories: z.array(z.string()) }));
    const seen = new Set(known.map((m) => m.text.trim().toLowerCase()));
    const out: string[] = [];
    for (const memory of memories.map((m) => m.trim()).filter(Boolean)) {
      const key = memory.toLowerCase();
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(memory.slice(0, 200));
      if (out.length >= max) break;
    }
    return out;
  }

  /**
   * A short reflection on the conversation in the persona's style, as JSON `{ insight }`.
   * @throws ProviderError on HTTP failure or output that does not match the schema
   */
  async insight(history: ChatTurn[], persona: PersonaName, options: { signal?: AbortSignal } = {}): Promise<string> {
    const response = await this.generate([{ role: 'user', parts: [{ text: `Conversation:\n${transcriptOf(history)}` }] }], {
      systemInstruction:
        `You are the user's AI twin. Style: ${persona} (${PERSONAS[persona].description}). ` +
        'Offer one insight about a pattern, feeling or goal you notice in this conversation, in one to three short spoken sentences addressed to the user, no markdown.',
      temperature: 0.7,
      responseMimeType: 'application/json',
      responseSchema: INSIGHT_SCHEMA,
      signal: options.signal,
    });
    const { insight } = parseJson(textOf(response), z.object({ insight: z.string().min(1) }));
    return forSpeech(insight);
  }

  probe(signal: AbortSignal): Promise<void> {
    return probe(this.client, this.model, this.options.apiKey, signal);
  }

  private async generate(
    contents: Content[],
    config: { systemInstruction: string; temperature: number; maxOutputTokens?: number; seed?: number; responseMimeType?: string; responseSchema?: Schema; signal?: AbortSignal },
  ): Promise<GenerateContentResponse> {
    const { signal, ...rest } = config;
    try {
      return await this.client.models.generateContent({
        model: this.model,
        contents,
        config: { ...rest, ...thinkingConfig(this.model, this.options.thinkingBudget), ...(signal ? { abortSignal: signal } : {}) },
      });
    } catch (err) {
      throw mapGeminiError(err, this.options.apiKey);
    }
  }
}

/** Largest WAV sent inline, bytes: the request limit is 20 MB including base64 growth (4/3). */
const MAX_INLINE_WAV_BYTES = 14 * 1024 * 1024;

/** A transcript with token usage. */
export interface GeminiTranscript extends Transcript {
  usage: GeminiUsage;
}

/**
 * Transcription with a Gemini model: the voice note goes inline as `audio/wav` next to a
 * transcription instruction; the answer is JSON `{ text, languageCode }`.
 * Inline requests are limited to 20 MB, so voice notes over about 7 minutes (16 kHz) are
 * refused with a non-retryable ProviderError, leaving them to the next recogniser.
 */
export class GeminiSpeechToText implements SpeechToText {
  readonly name = GEMINI;
  readonly reliable = true;
  readonly model: string;
  private readonly client: GoogleGenAI;

  constructor(private readonly options: GeminiOptions) {
    this.client = createGeminiClient(options);
    this.model = options.model ?? 'gemini-2.5-flash';
  }

  /**
   * @throws UserInputError EMPTY_AUDIO when there are no samples
   * @throws ProviderError on HTTP failure, oversize audio or output that does not match the schema
   */
  async transcribe(audio: PcmAudio, options: { languageHint?: string; signal?: AbortSignal } = {}): Promise<GeminiTranscript> {
    if (audio.samples.length === 0) throw new UserInputError('EMPTY_AUDIO', 'That voice note is empty.');
    const wav = pcmToWav(audio);
    if (wav.length > MAX_INLINE_WAV_BYTES) throw new ProviderError(GEMINI, `audio of ${wav.length} bytes is over the inline limit`, { retryable: false });
    const hint = options.languageHint ? ` The speaker most likely uses the language "${options.languageHint}".` : '';
    let response: GenerateContentResponse;
    try {
      response = await this.client.models.generateContent({
        model: this.model,
        contents: [
          {
            role: 'user',
            parts: [
              { text: `Transcribe the speech in this voice note word for word, in the language and script it is spoken in.${hint} Do not translate, summarise or describe sounds. If nobody speaks, return an empty text.` },
              { inlineData: { mimeType: 'audio/wav', data: wav.toString('base64') } },
            ],
          },
        ],
        config: {
          temperature: 0,
          responseMimeType: 'application/json',
          responseSchema: {
            type: Type.OBJECT,
            properties: {
              text: { type: Type.STRING, description: 'The words spoken.' },
              languageCode: { type: Type.STRING, description: 'BCP-47 code of the spoken language, e.g. en, hi, es.' },
            },
            required: ['text'],
          },
          ...thinkingConfig(this.model, this.options.thinkingBudget),
          ...(options.signal ? { abortSignal: options.signal } : {}),
        },
      });
    } catch (err) {
      throw mapGeminiError(err, this.options.apiKey);
    }
    const { text, languageCode } = parseJson(textOf(response), z.object({ text: z.string(), languageCode: z.string().optional() }));
    let bcp47: string | undefined;
    try {
      bcp47 = languageCode ? Intl.getCanonicalLocales(languageCode)[0] : undefined;
    } catch {
      bcp47 = undefined;
    }
    return { text: text.trim(), languageCode: bcp47, durationSec: audio.samples.length / audio.sampleRateHz, usage: usageOf(response) };
  }

  probe(signal: AbortSignal): Promise<void> {
    return probe(this.client, this.model, this.options.apiKey, signal);
  }
}

export type { EmbeddingTaskType, TextEmbedder } from '../../core/providers.js';

/** Settings of {@link GeminiEmbeddings}. */
export interface GeminiEmbeddingsOptions extends GeminiConnection {
  /** Default `gemini-embedding-001`. */
  model?: string;
  /** 768 (default), 1536 or 3072; shorter vectors are re-normalised as the docs advise. */
  dimensions?: number;
}

/** `gemini-embedding-001` through `batchEmbedContents` (at most 100 texts per request). */
export class GeminiEmbeddings implements TextEmbedder {
  readonly name = GEMINI;
  readonly model: string;
  readonly dimensions: number;
  private readonly client: GoogleGenAI;

  constructor(private readonly options: GeminiEmbeddingsOptions) {
    this.client = createGeminiClient(options);
    this.model = options.model ?? 'gemini-embedding-001';
    this.dimensions = options.dimensions ?? 768;
  }

  async embed(texts: readonly string[], options: { taskType?: EmbeddingTaskType; signal?: AbortSignal } = {}): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += 100) {
      const batch = texts.slice(i, i + 100);
      let embeddings: { values?: number[] }[] | undefined;
      try {
        const response = await this.client.models.embedContent({
          model: this.model,
          contents: [...batch],
          config: { outputDimensionality: this.dimensions, taskType: options.taskType ?? 'RETRIEVAL_DOCUMENT', ...(options.signal ? { abortSignal: options.signal } : {}) },
        });
        embeddings = response.embeddings;
      } catch (err) {
        throw mapGeminiError(err, this.options.apiKey);
      }
      if (!embeddings || embeddings.length !== batch.length) throw new ProviderError(GEMINI, 'embedding count does not match the input', { retryable: true });
      for (const e of embeddings) {
        const v = Float32Array.from(e.values ?? []);
        if (v.length !== this.dimensions) throw new ProviderError(GEMINI, `embedding has ${v.length} dimensions, expected ${this.dimensions}`, { retryable: false });
        const norm = Math.hypot(...v) || 1;
        out.push(v.map((x) => x / norm));
      }
    }
    return out;
  }

  probe(signal: AbortSignal): Promise<void> {
    return probe(this.client, this.model, this.options.apiKey, signal);
  }
}
