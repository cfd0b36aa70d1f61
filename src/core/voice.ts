/**
 * Turns reply text into a voice note: sentences are synthesised concurrently (bounded), each
 * through the synthesis cache, decoded to PCM, joined with short pauses and encoded as Ogg/Opus at
 * the channel's sample rate.
 */
import { SHARED_TTS_OWNER } from './retention.js';
import { createHash } from 'node:crypto';
import pLimit from 'p-limit';
import type { Logger } from './log.js';
import type { Channel, VoiceNote } from './types.js';
import type { ClonedVoice, PcmAudio, SpeechSynthesizer } from './providers.js';
import type { Store } from './store/types.js';
import { ProviderError } from './errors.js';
import { chunkSentences } from './text.js';
import { concatPcm, decodeToPcm, encodeVoiceNote, parseWavHeader } from './audio/index.js';

/** Sample rate used to join synthesised pieces that are not 16-bit mono WAV, Hz. */
const JOIN_RATE_HZ = 24000;
/** Longest piece sent to the synthesizer at once, characters. */
const CHUNK_CHARS = 300;
/** Pause between joined pieces, seconds. */
const GAP_SEC = 0.12;

/** Voice-note sample rate per channel, Hz: 48 kHz as Telegram's and Discord's own clients send; 16 kHz mono for WhatsApp mobile playback. */
export const DEFAULT_VOICE_RATES: Record<Channel, number> = { telegram: 48000, discord: 48000, whatsapp: 16000, console: 48000, web: 48000 };

/** A rendered voice note with how long synthesis and encoding took, milliseconds. */
export interface RenderedVoice {
  voice: VoiceNote;
  synthMs: number;
  encodeMs: number;
  /** Pieces served from the synthesis cache. */
  cacheHits: number;
  pieces: number;
  /** Characters actually sent to synthesizers, by the provider that answered (cache hits excluded). */
  synthesized: Array<{ provider: string; characters: number }>;
}

/** Renders text to voice notes with a synthesis cache keyed by (synthesizer, voice, text). */
export class VoiceRenderer {
  private readonly limit = pLimit(3);
  private readonly rates: Record<Channel, number>;

  constructor(
    private readonly deps: { store: Store; tts: SpeechSynthesizer; logger: Logger; sampleRates?: Partial<Record<Channel, number>> | undefined },
  ) {
    this.rates = { ...DEFAULT_VOICE_RATES, ...deps.sampleRates };
  }

  /**
   * Speaks `text` in `voice` (or the synthesizer's default voice) as a voice note for `channel`.
   * @param options.encodeAfter encoding (the CPU-bound step) waits for this to settle first, so
   *   sentences of a streamed answer synthesised concurrently are encoded in order and the first
   *   one is not slowed down by the ones after it
   * @param options.signal aborting it stops the rendering: pieces not yet sent to the synthesizer
   *   are not sent, the synthesizer's request is aborted
   * @throws ProviderError when synthesis fails or returns no audio; the signal's reason when aborted
   */
  async render(ownerKey: string, text: string, voice: ClonedVoice | undefined, channel: Channel, options: { encodeAfter?: Promise<unknown>; signal?: AbortSignal } = {}): Promise<RenderedVoice> {
    const pieces = chunkSentences(text, CHUNK_CHARS);
    let cacheHits = 0;
    const synthesized: RenderedVoice['synthesized'] = [];
    const t0 = performance.now();
    const audio = await Promise.all(
      pieces.map((piece) =>
        this.limit(async () => {
          options.signal?.throwIfAborted();
          const { bytes, cached, provider, characters } = await this.synthesizeCached(ownerKey, piece, voice, options.signal);
          if (cached) cacheHits++;
          else synthesized.push({ provider, characters });
          return bytes;
        }),
      ),
    );
    // Join at the synthesizer's own rate when it gives 16-bit mono WAV (no resampling pass needed).
    const header = parseWavHeader(audio[0]!);
    const joinRateHz = header && header.subFormat === 1 && header.bitsPerSample === 16 && header.channels === 1 && header.sampleRateHz >= 8000 ? header.sampleRateHz : JOIN_RATE_HZ;
    const pcms: PcmAudio[] = await Promise.all(audio.map((bytes) => this.limit(() => decodeToPcm(bytes, { sampleRateHz: joinRateHz }))));
    if (options.encodeAfter) await options.encodeAfter.catch(() => undefined);
    options.signal?.throwIfAborted();
    const t1 = performance.now();
    const joined = concatPcm(pcms, GAP_SEC);
    if (joined.samples.length === 0) throw new ProviderError(this.deps.tts.name, 'synthesis returned no audio', { retryable: true });
    const note = await encodeVoiceNote(joined, { sampleRateHz: this.rates[channel] as 48000 | 24000 | 16000 });
    const t2 = performance.now();
    return { voice: note, synthMs: t1 - t0, encodeMs: t2 - t1, cacheHits, pieces: pieces.length, synthesized };
  }

  private async synthesizeCached(ownerKey: string, text: string, voice: ClonedVoice | undefined, signal?: AbortSignal): Promise<{ bytes: Buffer; cached: boolean; provider: string; characters: number }> {
    const { store, tts, logger } = this.deps;
    const hash = createHash('sha256')
      .update(JSON.stringify([tts.name, voice?.provider ?? null, voice?.voiceId ?? null, voice?.params ?? null, text]))
      .digest('hex');
    const cacheKey = `tts-cache:${hash}`;
    const blobKey = await store.kv.get<string>(cacheKey);
    if (blobKey) {
      try {
        return { bytes: await store.blobs.get(blobKey), cached: true, provider: tts.name, characters: 0 };
      } catch {
        await store.kv.delete(cacheKey);
      }
    }
    signal?.throwIfAborted();
    const out = await tts.synthesize({ text, ...(voice ? { voice } : {}), ...(signal ? { signal } : {}) });
    if (out.bytes.length === 0) throw new ProviderError(tts.name, 'synthesis returned zero bytes', { retryable: true });
    // Audio from a fallback that could not speak in the requested voice is not cached under that voice.
    const fallback = out.voiceMatched === false || (voice !== undefined && out.provider !== undefined && out.provider !== voice.provider);
    const answered = { provider: out.provider ?? tts.name, characters: out.characters };
    if (fallback) return { bytes: out.bytes, cached: false, ...answered };
    try {
      const owner = voice ? ownerKey : SHARED_TTS_OWNER;
      const key = await store.blobs.put(owner, out.bytes, 'tts');
      await store.kv.set(cacheKey, key, 30 * 24 * 3600 * 1000);
    } catch (err) {
      logger.warn({ err }, 'synthesis cache write failed');
    }
    return { bytes: out.bytes, cached: false, ...answered };
  }
}
