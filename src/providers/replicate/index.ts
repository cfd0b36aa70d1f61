/**
 * Replicate: zero-shot voice cloning and TTS with Resemble AI's Chatterbox
 * (`resemble-ai/chatterbox`, https://replicate.com/resemble-ai/chatterbox) over the `replicate` SDK.
 *
 * There is no stored clone: "cloning" keeps the best 10–15 s of clean speech as a reference WAV
 * (in the engine's encrypted blob store, through callbacks), and every synthesis sends it as
 * `audio_prompt` with the text as `prompt`. Long replies are split at sentence boundaries into
 * requests of at most ~300 characters, run concurrently (bounded) and joined.
 *
 * HTTP API: https://replicate.com/docs/reference/http — predictions are created with
 * `Prefer: wait=<s>` (sync mode) and, when still running after that, polled with a growing
 * interval until they finish or the caller's signal aborts (then they are cancelled).
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import type Replicate from 'replicate';
import type { Logger } from 'pino';
import { ProviderError, UserInputError, isUserInputError } from '../../core/errors.js';
import type { CloneSample, ClonedVoice, SpeechSynthesizer, SynthesizedAudio, VoiceCloner } from '../../core/providers.js';
import { parseWavHeader, pcmToWav } from '../../core/audio/wav.js';
import { REPLICATE, createReplicateClient, mapReplicateError, type ReplicateConnection } from './client.js';
import { selectReference, type ReferenceBounds } from './reference.js';
import { splitForSynthesis } from './text.js';
import { joinWavs } from './wav.js';

export { REPLICATE, createReplicateClient, mapReplicateError, singleShotFetch, type ReplicateConnection } from './client.js';
export { selectReference, DEFAULT_REFERENCE_BOUNDS, type ReferenceBounds, type ReferenceClip } from './reference.js';
export { splitForSynthesis } from './text.js';
export { joinWavs } from './wav.js';

/** Default model. */
export const CHATTERBOX_MODEL = 'resemble-ai/chatterbox';

/**
 * Where reference audio lives. The engine stores it in its encrypted blob store.
 * - `saveReference(ownerKey, wav)` stores the WAV and returns a blob key
 * - `loadReference(key)` returns the WAV
 * - `deleteReference(key)` removes it (optional; the engine's user deletion removes all blobs)
 */
export interface ReferenceStore {
  saveReference(ownerKey: string, wav: Buffer): Promise<string>;
  loadReference(blobKey: string): Promise<Buffer>;
  deleteReference?(blobKey: string): Promise<void>;
}

/** Settings of the Chatterbox cloner and synthesizer. */
export interface ChatterboxOptions extends ReplicateConnection {
  /** `owner/name` of an official model or `owner/name:version` (default `resemble-ai/chatterbox`). */
  model?: string;
  references: ReferenceStore;
  logger?: Logger;
}

function parseModel(model: string): { owner: string; name: string; version?: string } {
  const match = /^([\w.-]+)\/([\w.-]+)(?::([0-9a-f]{64}))?$/.exec(model);
  if (!match) throw new Error(`Replicate model must be "owner/name" or "owner/name:version", got "${model}"`);
  return { owner: match[1] as string, name: match[2] as string, version: match[3] };
}

/** A cheap authenticated request used to bring Replicate back into rotation (`GET /v1/models/{owner}/{name}`). */
async function probe(client: Replicate, model: string, apiToken: string, signal: AbortSignal): Promise<void> {
  const { owner, name } = parseModel(model);
  try {
    await client.models.get(owner, name, { signal });
  } catch (err) {
    throw mapReplicateError(err, apiToken);
  }
}

/** Settings of {@link ChatterboxCloner}. */
export interface ChatterboxClonerOptions extends ChatterboxOptions {
  /** Seconds of speech before cloning starts (default 12: enough to pick a 10–15 s reference). */
  minSpeechSec?: number;
  reference?: Partial<ReferenceBounds>;
}

/**
 * "Clones" by choosing the reference clip and storing it; nothing is sent to Replicate.
 * The voice is `{ provider: 'replicate', params: { referenceBlobKey, referenceSec } }`.
 */
export class ChatterboxCloner implements VoiceCloner {
  readonly name = REPLICATE;
  readonly minSpeechSec: number;
  private readonly client: Replicate;

  constructor(private readonly options: ChatterboxClonerOptions) {
    this.minSpeechSec = options.minSpeechSec ?? 12;
    this.client = createReplicateClient(options);
  }

  /**
   * @param request.userId the owner key under which the reference is stored
   * @throws UserInputError AUDIO_TOO_SHORT when the samples hold less than 5 s of speech
   */
  async clone(request: { userId: string; displayName?: string; samples: CloneSample[]; signal?: AbortSignal }): Promise<ClonedVoice> {
    const clip = selectReference(request.samples, this.options.reference);
    request.signal?.throwIfAborted();
    const wav = pcmToWav(clip.pcm);
    const referenceBlobKey = await this.options.references.saveReference(request.userId, wav);
    const durationSec = Math.round(clip.durationSec * 10) / 10;
    this.options.logger?.info({ provider: REPLICATE, durationSec, speechSec: clip.speechSec, segments: clip.segments.length }, 'Chatterbox reference chosen');
    return {
      provider: REPLICATE,
      voiceId: `chatterbox-${createHash('sha256').update(wav).digest('hex').slice(0, 16)}`,
      params: { referenceBlobKey, referenceSec: durationSec, segments: clip.segments },
      approximate: false,
      label: `Chatterbox zero-shot voice (${durationSec} s reference)`,
    };
  }

  /** Removes the stored reference (when the store can). */
  async deleteVoice(voice: ClonedVoice): Promise<void> {
    const key = voice.params.referenceBlobKey;
    if (voice.provider === REPLICATE && typeof key === 'string') await this.options.references.deleteReference?.(key);
  }

  probe(signal: AbortSignal): Promise<void> {
    return probe(this.client, this.options.model ?? CHATTERBOX_MODEL, this.options.apiToken, signal);
  }
}

/** Settings of {@link ChatterboxSynthesizer}. */
export interface ChatterboxSynthesizerOptions extends ChatterboxOptions {
  /** Longest text of one prediction, characters (default 300). */
  maxCharsPerRequest?: number;
  /** Predictions running at once for one reply (default 3). */
  concurrency?: number;
  /** Seconds the create request is held open (`Prefer: wait`, 1–60; default 30). */
  waitSec?: number;
  /** First polling interval after the held request, ms (default 250; grows ×1.5 up to 2 000). */
  pollIntervalMs?: number;
  /** Chatterbox inputs; defaults are the model's. */
  exaggeration?: number;
  cfgWeight?: number;
  temperature?: number;
  /** Fixed seed for every piece of a reply (keeps the voice consistent across pieces). */
  seed?: number;
  /** Reference WAVs up to this size go inline as data URIs, larger ones through the Files API (default 256 KiB, Replicate's advice). */
  maxDataUriBytes?: number;
  /** Silence between joined pieces, seconds (default 0.15). */
  gapSec?: number;
}

/** Synthesised audio (a WAV) plus what it took. */
export interface ChatterboxSynthesis extends SynthesizedAudio {
  /** Predictions run. */
  pieces: number;
  /** Sum of Replicate's `metrics.predict_time`, seconds (what Replicate bills). */
  predictTimeSec: number;
}

function isTerminal(status: string): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'canceled';
}

/**
 * TTS with Chatterbox. With a voice of this provider the stored reference goes as `audio_prompt`;
 * without one Chatterbox speaks in its built-in voice.
 */
export class ChatterboxSynthesizer implements SpeechSynthesizer {
  readonly name = REPLICATE;
  private readonly client: Replicate;
  private readonly model: { owner: string; name: string; version?: string };
  private readonly apiOrigin: string;
  private readonly uploads = new Map<string, { url: string; expiresAtMs: number }>();

  constructor(private readonly options: ChatterboxSynthesizerOptions) {
    this.client = createReplicateClient(options);
    this.model = parseModel(options.model ?? CHATTERBOX_MODEL);
    this.apiOrigin = new URL(options.baseUrl ?? 'https://api.replicate.com/v1').origin;
  }

  /**
   * @throws UserInputError EMPTY_TEXT for blank text
   * @throws ProviderError on HTTP failure, a failed or cancelled prediction, or unusable output
   */
  async synthesize(request: { text: string; voice?: ClonedVoice; languageCode?: string; signal?: AbortSignal }): Promise<ChatterboxSynthesis> {
    const text = request.text.trim();
    if (!text) throw new UserInputError('EMPTY_TEXT', 'There is nothing to say: the text is empty.');
    if (request.voice && request.voice.provider !== REPLICATE) {
      throw new ProviderError(REPLICATE, `voice of provider "${request.voice.provider}" cannot be used`, { retryable: false });
    }
    const pieces = splitForSynthesis(text, this.options.maxCharsPerRequest ?? 300);
    // One failed piece fails the reply: abort (and cancel) the others.
    const local = new AbortController();
    const signal = request.signal ? AbortSignal.any([request.signal, local.signal]) : local.signal;
    const audioPrompt = request.voice ? await this.referenceInput(request.voice, signal) : undefined;
    const limit = pLimit(Math.max(1, this.options.concurrency ?? 3));
    const input = (prompt: string): Record<string, unknown> => ({
      prompt,
      ...(audioPrompt ? { audio_prompt: audioPrompt } : {}),
      ...(this.options.exaggeration !== undefined ? { exaggeration: this.options.exaggeration } : {}),
      ...(this.options.cfgWeight !== undefined ? { cfg_weight: this.options.cfgWeight } : {}),
      ...(this.options.temperature !== undefined ? { temperature: this.options.temperature } : {}),
      ...(this.options.seed !== undefined ? { seed: this.options.seed } : {}),
    });
    let results: { wav: Buffer; predictTimeSec: number }[];
    try {
      results = await Promise.all(
        pieces.map((piece) =>
          limit(async () => {
            try {
              return await this.predict(input(piece), signal);
            } catch (err) {
              local.abort(err);
              throw err;
            }
          }),
        ),
      );
    } catch (err) {
      if (request.signal?.aborted) throw request.signal.reason;
      throw err;
    }
    let bytes: Buffer;
    try {
      bytes = await joinWavs(
        results.map((r) => r.wav),
        this.options.gapSec ?? 0.15,
      );
    } catch (err) {
      if (isUserInputError(err)) throw new ProviderError(REPLICATE, `output audio could not be joined: ${err.message}`, { retryable: false, cause: err });
      throw err;
    }
    const predictTimeSec = results.reduce((sum, r) => sum + r.predictTimeSec, 0);
    this.options.logger?.debug({ provider: REPLICATE, pieces: pieces.length, predictTimeSec, sizeBytes: bytes.length }, 'Chatterbox synthesis done');
    return { bytes, characters: text.length, pieces: pieces.length, predictTimeSec };
  }

  probe(signal: AbortSignal): Promise<void> {
    return probe(this.client, this.options.model ?? CHATTERBOX_MODEL, this.options.apiToken, signal);
  }

  /** The reference as a data URI (small) or an uploaded file URL (cached until it expires). */
  private async referenceInput(voice: ClonedVoice, signal: AbortSignal): Promise<string> {
    const key = voice.params.referenceBlobKey;
    if (typeof key !== 'string') throw new ProviderError(REPLICATE, 'voice has no reference audio', { retryable: false });
    const cached = this.uploads.get(key);
    if (cached && cached.expiresAtMs > Date.now()) return cached.url;
    const wav = await this.options.references.loadReference(key);
    if (wav.length <= (this.options.maxDataUriBytes ?? 256 * 1024)) return `data:audio/wav;base64,${wav.toString('base64')}`;
    try {
      const file = await this.client.files.create(new File([new Uint8Array(wav)], 'reference.wav', { type: 'audio/wav' }), { purpose: 'voicetwin-reference' }, { signal });
      const expires = Date.parse((file as { expires_at?: string }).expires_at ?? '');
      const expiresAtMs = Math.min(Number.isNaN(expires) ? Infinity : expires - 5 * 60_000, Date.now() + 3_600_000);
      if (this.uploads.size >= 256) this.uploads.delete(this.uploads.keys().next().value as string);
      this.uploads.set(key, { url: file.urls.get, expiresAtMs });
      return file.urls.get;
    } catch (err) {
      throw mapReplicateError(err, this.options.apiToken);
    }
  }

  /** Runs one prediction to its end and downloads its WAV. */
  private async predict(input: Record<string, unknown>, signal: AbortSignal): Promise<{ wav: Buffer; predictTimeSec: number }> {
    const { owner, name, version } = this.model;
    const token = this.options.apiToken;
    let prediction: Awaited<ReturnType<Replicate['predictions']['get']>>;
    try {
      prediction = await this.client.predictions.create({
        ...(version ? { version } : { model: `${owner}/${name}` }),
        input,
        wait: Math.min(60, Math.max(1, this.options.waitSec ?? 30)),
        signal,
      });
    } catch (err) {
      throw mapReplicateError(err, token);
    }
    let intervalMs = this.options.pollIntervalMs ?? 250;
    try {
      while (!isTerminal(prediction.status)) {
        await sleep(intervalMs, undefined, { signal });
        intervalMs = Math.min(2_000, intervalMs * 1.5);
        prediction = await this.client.predictions.get(prediction.id, { signal });
      }
    } catch (err) {
      if (signal.aborted) {
        const id = prediction.id;
        // Stop billing for work nobody will use; best effort.
        this.client.predictions.cancel(id).catch((cancelErr: unknown) => this.options.logger?.debug({ provider: REPLICATE, predictionId: id, err: String(cancelErr) }, 'cancel failed'));
        throw signal.reason;
      }
      throw mapReplicateError(err, token);
    }
    if (prediction.status !== 'succeeded') {
      const reason = typeof prediction.error === 'string' ? prediction.error : JSON.stringify(prediction.error ?? 'unknown');
      throw new ProviderError(REPLICATE, `prediction ${prediction.id} ${prediction.status}: ${reason}`, { retryable: true });
    }
    const output: unknown = Array.isArray(prediction.output) ? prediction.output[0] : prediction.output;
    if (typeof output !== 'string') throw new ProviderError(REPLICATE, `prediction ${prediction.id} returned no output URI`, { retryable: true });
    const wav = await this.download(output, signal);
    return { wav, predictTimeSec: prediction.metrics?.predict_time ?? 0 };
  }

  /** Downloads an output file; the token is sent only to the API's own origin (Files API URLs). */
  private async download(url: string, signal: AbortSignal): Promise<Buffer> {
    const token = this.options.apiToken;
    let response: Response;
    try {
      const headers = new URL(url).origin === this.apiOrigin ? { authorization: `Bearer ${token}` } : undefined;
      response = await fetch(url, { signal, headers });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw mapReplicateError(err, token);
    }
    if (!response.ok) {
      throw new ProviderError(REPLICATE, `output download: HTTP ${response.status}`, { retryable: response.status === 429 || response.status >= 500, status: response.status });
    }
    const bytes = Buffer.from(await response.arrayBuffer());
    if (bytes.length === 0) throw new ProviderError(REPLICATE, 'output file is empty', { retryable: true });
    if (!parseWavHeader(bytes)) throw new ProviderError(REPLICATE, 'output file is not a WAV file', { retryable: false });
    return bytes;
  }
}
