/**
 * The small interfaces `core` declares for each provider capability. Every vendor module under
 * `src/providers/` implements some of them; `core` never imports a vendor SDK.
 */
import type { PersonaName } from './personas.js';
import type { ReplyLanguage } from './language.js';

/** Mono 16-bit PCM at a stated sample rate, the engine's internal audio form. */
export interface PcmAudio {
  /** Signed 16-bit samples, mono. */
  samples: Int16Array;
  sampleRateHz: number;
}

/** The outcome of speech-to-text on one voice note. */
export interface Transcript {
  text: string;
  /** BCP-47 language code, when the provider reports one. */
  languageCode?: string;
  /** Audio seconds transcribed (for usage accounting). */
  durationSec: number;
  /** Provider that transcribed, when a fallback chain reports it. */
  provider?: string;
  /** Whether this transcript came from a reliable recogniser (a fallback may be less reliable than the chain). */
  reliable?: boolean;
  /** Languages (BCP-47 primary subtags) the recogniser that made it understands; absent = many. */
  languages?: readonly string[];
}

/** Speech-to-text. */
export interface SpeechToText {
  readonly name: string;
  /**
   * True when transcripts are good enough to check a spoken consent phrase word by word.
   * The offline pocketsphinx recogniser is not, so consent then also needs a typed confirmation.
   */
  readonly reliable: boolean;
  /**
   * Languages it understands, as BCP-47 primary subtags (pocketsphinx: `['en']`); absent when it
   * understands many (Scribe, Gemini). A Hindi voice note is not handed to one that lacks `hi`.
   */
  readonly languages?: readonly string[];
  /**
   * Transcribe 16 kHz mono PCM.
   * @throws ProviderError on provider failure
   */
  transcribe(audio: PcmAudio, options?: TranscribeOptions): Promise<Transcript>;
}

/** Options of {@link SpeechToText.transcribe}. */
export interface TranscribeOptions {
  /** BCP-47 language the speaker most likely uses. */
  languageHint?: string;
  signal?: AbortSignal;
  /**
   * Called with the text recognised so far (each call replaces the previous one) by recognisers
   * that produce partial hypotheses while they work; others never call it. The final text is the
   * resolved {@link Transcript}.
   */
  onPartial?: (text: string) => void;
}

/** One past turn of a conversation. */
export interface ChatTurn {
  role: 'user' | 'twin';
  text: string;
  atMs: number;
  /** The inbound message this turn answers (makes a re-run of the same job idempotent). */
  messageId?: string;
}

/** A remembered fact about the user. */
export interface MemoryRecord {
  /** Short id the user can type (`forget 3f9a`). */
  id: string;
  text: string;
  createdAtMs: number;
  source: 'explicit' | 'extracted';
  /** The inbound message it came from (`/remember`), so a re-run of that job stores it once. */
  sourceMessageId?: string;
  /**
   * Embedding of `text` for retrieval by meaning: little-endian float32 values, unit length,
   * base64 (768 dimensions ≈ 4 KiB). Sealed with the rest of the record; absent offline.
   */
  vector?: string;
  /** Which embedder made {@link vector} (`TextEmbedder.model`); a vector from another one is recomputed. */
  vectorModel?: string;
}

/** Everything a chat model needs for one reply. */
export interface ChatRequest {
  persona: PersonaName;
  /** The persona's system prompt, already rendered with the user's name. */
  systemPrompt: string;
  /** Recent turns, oldest first, not including `userText`. */
  history: ChatTurn[];
  /** The most relevant memories for this turn, most relevant first. */
  memories: MemoryRecord[];
  userText: string;
  userName?: string;
  /** Upper bound on the reply, in characters (keeps the voice note under ~60 s). */
  maxChars: number;
  /**
   * The language to answer in (`hi`: Hindi in Devanagari; `hinglish`: Hindi and English mixed in
   * Latin letters, as the person writes); absent = English.
   */
  language?: ReplyLanguage;
  /** Seed for deterministic models. */
  seed?: number;
  signal?: AbortSignal;
}

/** A chat model's answer. */
export interface ChatReply {
  text: string;
  /** Provider that answered, when a fallback chain reports it. */
  provider?: string;
  /** Tokens used, when the provider reports them (usage accounting). */
  usage?: { inputTokens: number; outputTokens: number };
}

/** A conversational model. */
export interface ChatModel {
  readonly name: string;
  /** @throws ProviderError on provider failure */
  reply(request: ChatRequest): Promise<ChatReply>;
  /**
   * Optional streamed form of {@link reply}: hands the text to `onDelta` piece by piece as the
   * model writes it (in order; the pieces joined are the reply text), and resolves with the whole
   * reply once the model is done. Models without it are streamed by the engine as one piece
   * (`streamChatReply` in `core/streaming.ts`). Aborting `request.signal` stops the model; the
   * promise then rejects with the signal's reason.
   * @throws ProviderError on provider failure (possibly after some deltas were handed out)
   */
  streamReply?(request: ChatRequest, onDelta: (delta: string) => void): Promise<ChatReply>;
  /** Facts worth remembering from recent turns (short sentences, possibly none). */
  extractMemories(history: ChatTurn[], known: MemoryRecord[], options?: { signal?: AbortSignal }): Promise<string[]>;
  /** A short reflection on the conversation so far (an "insight"). */
  insight(history: ChatTurn[], persona: PersonaName, options?: { signal?: AbortSignal }): Promise<string>;
}

/** An enrollment sample handed to a voice cloner: normalised 16 kHz mono PCM and its speech seconds. */
export interface CloneSample {
  id: string;
  pcm: PcmAudio;
  /** Seconds of detected speech in the sample. */
  speechSec: number;
}

/**
 * A cloned voice as a provider describes it. Stored in the user's voice profile and handed back
 * to the synthesizer of the same provider.
 */
export interface ClonedVoice {
  /** Provider that made it; a synthesizer only accepts voices of its own provider (or falls back). */
  provider: string;
  /** Provider voice id (ElevenLabs `voice_id`), or an id of our own for reference-audio providers. */
  voiceId: string;
  /** Provider-specific parameters (e.g. espeak-ng pitch and rate, a reference-audio blob key). */
  params: Record<string, unknown>;
  /** True when the voice only approximates the speaker (the offline preview voice). */
  approximate: boolean;
  /** Human label, e.g. "offline preview voice (espeak-ng, pitch 118 Hz, 165 wpm)". */
  label: string;
}

/** Makes a {@link ClonedVoice} from enrollment samples. */
export interface VoiceCloner {
  readonly name: string;
  /** Seconds of speech needed before cloning can start. */
  readonly minSpeechSec: number;
  /** @throws ProviderError on provider failure */
  clone(request: { userId: string; displayName?: string; samples: CloneSample[]; signal?: AbortSignal }): Promise<ClonedVoice>;
  /** Deletes the provider-side voice, where one exists. */
  deleteVoice?(voice: ClonedVoice): Promise<void>;
}

/** Synthesised speech in any container; the engine sniffs and transcodes it to a voice note. */
export interface SynthesizedAudio {
  bytes: Buffer;
  /** Characters billed (for usage accounting). */
  characters: number;
  /** Provider that synthesised, when a fallback chain reports it. */
  provider?: string;
  /** False when the answering provider spoke in its default voice instead of the requested one. */
  voiceMatched?: boolean;
}

/** Text-to-speech. */
export interface SpeechSynthesizer {
  readonly name: string;
  /**
   * Synthesise `text` in `voice` (a voice of this provider) or in the provider's default voice.
   * @throws ProviderError on provider failure or empty output
   */
  synthesize(request: { text: string; voice?: ClonedVoice; languageCode?: string; signal?: AbortSignal }): Promise<SynthesizedAudio>;
}

/**
 * What an embedding is for: a stored text to be found later (`RETRIEVAL_DOCUMENT`) or the text
 * that searches (`RETRIEVAL_QUERY`); the names of gemini-embedding-001's task types
 * (https://ai.google.dev/gemini-api/docs/embeddings#task-types), which other embedders map.
 */
export type EmbeddingTaskType = 'RETRIEVAL_QUERY' | 'RETRIEVAL_DOCUMENT' | 'SEMANTIC_SIMILARITY' | 'CLASSIFICATION' | 'CLUSTERING';

/** Text embeddings, for retrieving memories by meaning. */
export interface TextEmbedder {
  readonly name: string;
  /** Model id; vectors of different models are never compared. */
  readonly model: string;
  /** Length of every vector. */
  readonly dimensions: number;
  /**
   * @returns one unit-length vector per text, in order
   * @throws ProviderError on provider failure
   */
  embed(texts: readonly string[], options?: { taskType?: EmbeddingTaskType; signal?: AbortSignal }): Promise<Float32Array[]>;
}

/** The provider set the engine runs with. */
export interface Providers {
  stt: SpeechToText;
  chat: ChatModel;
  cloner: VoiceCloner;
  tts: SpeechSynthesizer;
}
