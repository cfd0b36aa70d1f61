/**
 * The cloud providers available with the configured keys, by capability and name, for the
 * composition root to order (`TTS_PROVIDERS=elevenlabs,replicate,local`) and wrap with
 * {@link createResilientProviders}. Also the default unit prices for usage accounting.
 */
import type { Logger } from 'pino';
import type { UnitPrices } from '../core/usage.js';
import { ElevenLabsSpeechToText, ElevenLabsSynthesizer, ElevenLabsVoiceCloner, type ElevenLabsOutputFormat } from './elevenlabs/index.js';
import { GeminiChatModel, GeminiEmbeddings, GeminiSpeechToText } from './gemini/index.js';
import { ChatterboxCloner, ChatterboxSynthesizer } from './replicate/index.js';

/** Vendor settings; a vendor is available when its key is present. */
export interface CloudConfig {
  elevenlabs?: {
    apiKey: string;
    baseUrl?: string;
    /** Default `eleven_flash_v2_5`; `eleven_multilingual_v2` or `eleven_v3` for e.g. Hindi/Hinglish. */
    ttsModel?: string;
    /** Default `scribe_v2`. */
    sttModel?: string;
    /** Seconds of speech before an instant voice clone (default 60; ElevenLabs advises 1–2 min, at most 3). */
    minSpeechSec?: number;
    /** Default `opus_48000_64`. */
    outputFormat?: ElevenLabsOutputFormat;
    /** Premade voice used when a user has no ElevenLabs voice (optional). */
    defaultVoiceId?: string;
    /** Default false. */
    removeBackgroundNoise?: boolean;
  };
  replicate?: {
    apiToken: string;
    /** API root including `/v1`. */
    baseUrl?: string;
    /** Default `resemble-ai/chatterbox`. */
    model?: string;
    /** Seconds of speech before the reference is taken (default 12). */
    minSpeechSec?: number;
    /** Predictions at once per reply (default 3). */
    concurrency?: number;
    /** Fixed seed for consistent pieces (optional). */
    seed?: number;
  };
  gemini?: {
    apiKey: string;
    /** API root without version. */
    baseUrl?: string;
    /** Default `gemini-2.5-flash`. */
    chatModel?: string;
    /** Default: the chat model. */
    sttModel?: string;
    /** Default `gemini-embedding-001`. */
    embeddingModel?: string;
    /** Default 768. */
    embeddingDimensions?: number;
  };
}

/**
 * What the providers need from the application.
 * `saveReference(ownerKey, wav)` stores a reference WAV (encrypted blob, kind `reference`) under
 * the user's key and returns its blob key; `loadReference(blobKey)` returns it;
 * `deleteReference(blobKey)` removes it.
 */
export interface CloudDeps {
  logger: Logger;
  saveReference(ownerKey: string, wav: Buffer): Promise<string>;
  loadReference(blobKey: string): Promise<Buffer>;
  deleteReference?(blobKey: string): Promise<void>;
}

/** Available cloud providers per capability, keyed by provider name. */
export interface CloudProviders {
  stt: { elevenlabs?: ElevenLabsSpeechToText; gemini?: GeminiSpeechToText };
  chat: { gemini?: GeminiChatModel };
  cloner: { elevenlabs?: ElevenLabsVoiceCloner; replicate?: ChatterboxCloner };
  tts: { elevenlabs?: ElevenLabsSynthesizer; replicate?: ChatterboxSynthesizer };
  embeddings: { gemini?: GeminiEmbeddings };
}

/**
 * Builds every provider whose key is configured. Nothing is contacted here.
 * @throws Error when a Replicate model id is malformed
 */
export function createCloudProviders(config: CloudConfig, deps: CloudDeps): CloudProviders {
  const out: CloudProviders = { stt: {}, chat: {}, cloner: {}, tts: {}, embeddings: {} };
  const e = config.elevenlabs;
  if (e) {
    const logger = deps.logger.child({ provider: 'elevenlabs' });
    const connection = { apiKey: e.apiKey, ...(e.baseUrl ? { baseUrl: e.baseUrl } : {}) };
    out.stt.elevenlabs = new ElevenLabsSpeechToText({ ...connection, ...(e.sttModel ? { model: e.sttModel } : {}) });
    out.cloner.elevenlabs = new ElevenLabsVoiceCloner({
      ...connection,
      logger,
      ...(e.minSpeechSec !== undefined ? { minSpeechSec: e.minSpeechSec } : {}),
      ...(e.removeBackgroundNoise !== undefined ? { removeBackgroundNoise: e.removeBackgroundNoise } : {}),
    });
    out.tts.elevenlabs = new ElevenLabsSynthesizer({
      ...connection,
      logger,
      ...(e.ttsModel ? { model: e.ttsModel } : {}),
      ...(e.outputFormat ? { outputFormat: e.outputFormat } : {}),
      ...(e.defaultVoiceId ? { defaultVoiceId: e.defaultVoiceId } : {}),
    });
  }
  const r = config.replicate;
  if (r) {
    const logger = deps.logger.child({ provider: 'replicate' });
    const references = {
      saveReference: deps.saveReference,
      loadReference: deps.loadReference,
      ...(deps.deleteReference ? { deleteReference: deps.deleteReference } : {}),
    };
    const base = { apiToken: r.apiToken, references, logger, ...(r.baseUrl ? { baseUrl: r.baseUrl } : {}), ...(r.model ? { model: r.model } : {}) };
    out.cloner.replicate = new ChatterboxCloner({ ...base, ...(r.minSpeechSec !== undefined ? { minSpeechSec: r.minSpeechSec } : {}) });
    out.tts.replicate = new ChatterboxSynthesizer({ ...base, ...(r.concurrency !== undefined ? { concurrency: r.concurrency } : {}), ...(r.seed !== undefined ? { seed: r.seed } : {}) });
  }
  const g = config.gemini;
  if (g) {
    const connection = { apiKey: g.apiKey, ...(g.baseUrl ? { baseUrl: g.baseUrl } : {}) };
    out.chat.gemini = new GeminiChatModel({ ...connection, ...(g.chatModel ? { model: g.chatModel } : {}) });
    const sttModel = g.sttModel ?? g.chatModel;
    out.stt.gemini = new GeminiSpeechToText({ ...connection, ...(sttModel ? { model: sttModel } : {}) });
    out.embeddings.gemini = new GeminiEmbeddings({
      ...connection,
      ...(g.embeddingModel ? { model: g.embeddingModel } : {}),
      ...(g.embeddingDimensions ? { dimensions: g.embeddingDimensions } : {}),
    });
  }
  return out;
}

/**
 * Default unit prices in US dollars, estimates for budgeting only (check the vendors' pricing
 * pages; override through configuration):
 * - ElevenLabs: Flash/Turbo TTS $0.05 per 1 000 characters (Multilingual v2 / v3: $0.10);
 *   Scribe STT about $0.40 per hour at the smallest paid tier (https://elevenlabs.io/pricing/api).
 * - Replicate: billed by GPU time, not by character (https://replicate.com/pricing); $0.03 per
 *   1 000 characters is a placeholder to replace with figures from your own invoices (each
 *   synthesis reports Replicate's `predict_time` in seconds to help).
 * - Gemini 2.5 Flash: $0.30 per million input tokens, $2.50 per million output tokens; audio
 *   input $1.00 per million tokens at 32 tokens per second ≈ $0.0019 per minute
 *   (https://ai.google.dev/gemini-api/docs/pricing).
 * - local: free.
 */
export const DEFAULT_UNIT_PRICES: Record<string, UnitPrices> = {
  elevenlabs: { ttsUsdPer1kChars: 0.05, sttUsdPerMinute: 0.4 / 60 },
  replicate: { ttsUsdPer1kChars: 0.03 },
  gemini: { inputUsdPer1MTokens: 0.3, outputUsdPer1MTokens: 2.5, sttUsdPerMinute: 0.0019 },
  local: {},
};
