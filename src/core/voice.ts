/**
 * Turns reply text into a voice note: sentences are synthesised concurrently (bounded), each
 * through the synthesis cache, decoded to PCM, joined with short pauses and encoded as Ogg/Opus at
 * the lowest Opus rate that holds the speech, up to the channel's sample rate ({@link voiceEncoderRate}).
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
import { hasDevanagari, ttsLanguageCode, type ReplyLanguage } from './language.js';
import { concatPcm, decodeToPcm, encodeVoiceNote, parseWavHeader } from './audio/index.js';

/** Sample rate used to join synthesised pieces that are not 16-bit mono WAV, Hz. */
const JOIN_RATE_HZ = 24000;
/** Longest piece sent to the synthesizer at once, characters. */
const CHUNK_CHARS = 300;
/** Pause between joined pieces, seconds. */
const GAP_SEC = 0.12;

/**
 * Highest voice-note sample rate per channel, Hz: 48 kHz as Telegram's and Discord's own clients
 * send; 16 kHz mono for WhatsApp mobile playback. Speech synthesised at a lower rate is encoded at
 * the lowest Opus rate that holds it ({@link voiceEncoderRate}), except on
 * {@link FIXED_RATE_CHANNELS}.
 */
export const DEFAULT_VOICE_RATES: Record<Channel, number> = { telegram: 48000, discord: 48000, whatsapp: 16000, console: 48000, web: 48000 };

/**
 * Channels whose voice notes are always encoded at the channel's rate: Discord's player is reported
 * to play a voice message whose OpusHead says 24 kHz at half speed
 * (https://github.com/openclaw/openclaw/pull/32298, see docs/discord.md).
 */
export const FIXED_RATE_CHANNELS: ReadonlySet<Channel> = new Set<Channel>(['discord']);

/** Encoder rates we use, Hz, lowest first: a subset of libopus's 8/12/16/24/48 kHz (RFC 7845 §5.1: decoders play at 48 kHz whatever OpusHead says). */
const OPUS_ENCODER_RATES = [16000, 24000, 48000] as const;

/**
 * The Opus encoder rate for speech at `sourceRateHz` on a channel whose highest rate is
 * `channelRateHz`: the lowest of 16/24/48 kHz at or above the source (so 16 kHz speech is encoded
 * with no resampling and 22.05 kHz speech is resampled to 24 kHz, not 48 kHz), never above the
 * channel's rate; the channel's rate itself when `fixed`. libopus accepts 8/12/16/24/48 kHz input
 * natively (https://opus-codec.org/docs/opus_api-1.5/group__opus__encoder.html#gaa89264fd93c9da70362a0c9b96b9ca88)
 * and a decoder always outputs 48 kHz, so the OpusHead input rate is only metadata (RFC 7845 §5.1).
 *
 * @param sourceRateHz rate of the speech to encode, Hz
 * @param channelRateHz the channel's voice-note rate, Hz (16000, 24000 or 48000)
 * @param fixed true for {@link FIXED_RATE_CHANNELS}
 * @returns 16000, 24000 or 48000
 */
export function voiceEncoderRate(sourceRateHz: number, channelRateHz: number, fixed = false): 48000 | 24000 | 16000 {
  const cap = OPUS_ENCODER_RATES.filter((r) => r <= channelRateHz).at(-1) ?? 16000;
  if (fixed) return cap;
  return OPUS_ENCODER_RATES.find((r) => r >= sourceRateHz && r <= cap) ?? cap;
}

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
  /**
   * True when a voice was asked for and at least one piece was spoken by a fallback in another
   * voice (the answering provider is not the voice's provider, or it reported `voiceMatched: false`).
   */
  fallback: boolean;
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
   * With `options.language` `hi` or `hinglish`, each piece goes to the synthesizer with
   * `languageCode: 'hi'` (see `ttsLanguageCode`); any piece with Devanagari letters does too,
   * whatever the language says. English pieces carry no code (the synthesizer's default).
   * @param options.encodeAfter encoding (the CPU-bound step) waits for this to settle first, so
   *   sentences of a streamed answer synthesised concurrently are encoded in order and the first
   *   one is not slowed down by the ones after it
   * @param options.signal aborting it stops the rendering: pieces not yet sent to the synthesizer
   *   are not sent, the synthesizer's request is aborted
   * @throws ProviderError when synthesis fails or returns no audio; the signal's reason when aborted
   */
  async render(
    ownerKey: string,
    text: string,
    voice: ClonedVoice | undefined,
    channel: Channel,
    options: { language?: ReplyLanguage | undefined; encodeAfter?: Promise<unknown>; signal?: AbortSignal } = {},
  ): Promise<RenderedVoice> {
    const language = options.language;
    const pieces = chunkSentences(text, CHUNK_CHARS);
    let cacheHits = 0;
    let fallback = false;
    const synthesized: RenderedVoice['synthesized'] = [];
    const t0 = performance.now();
    const audio = await Promise.all(
      pieces.map((piece) =>
        this.limit(async () => {
          options.signal?.throwIfAborted();
          const languageCode = hasDevanagari(piece) ? 'hi' : language && language !== 'en' ? ttsLanguageCode(language) : undefined;
          const { bytes, cached, provider, characters, matched } = await this.synthesizeCached(ownerKey, piece, voice, languageCode, options.signal);
          if (!matched) fallback = true;
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
    const note = await encodeVoiceNote(joined, { sampleRateHz: voiceEncoderRate(joined.sampleRateHz, this.rates[channel], FIXED_RATE_CHANNELS.has(channel)) });
    const t2 = performance.now();
    return { voice: note, synthMs: t1 - t0, encodeMs: t2 - t1, cacheHits, pieces: pieces.length, synthesized, fallback };
  }

  private async synthesizeCached(
    ownerKey: string,
    text: string,
    voice: ClonedVoice | undefined,
    languageCode?: string,
    signal?: AbortSignal,
  ): Promise<{ bytes: Buffer; cached: boolean; provider: string; characters: number; matched: boolean }> {
    const { store, tts, logger } = this.deps;
    // The language joins the key only when set, so English cache entries stay valid.
    const keyParts: unknown[] = [tts.name, voice?.provider ?? null, voice?.voiceId ?? null, voice?.params ?? null, text];
    if (languageCode) keyParts.push(languageCode);
    const hash = createHash('sha256').update(JSON.stringify(keyParts)).digest('hex');
    const cacheKey = `tts-cache:${hash}`;
    const blobKey = await store.kv.get<string>(cacheKey);
    if (blobKey) {
      try {
        return { bytes: await store.blobs.get(blobKey), cached: true, provider: tts.name, characters: 0, matched: true };
      } catch {
        await store.kv.delete(cacheKey);
      }
    }
    signal?.throwIfAborted();
    const out = await tts.synthesize({ text, ...(voice ? { voice } : {}), ...(languageCode ? { languageCode } : {}), ...(signal ? { signal } : {}) });
    if (out.bytes.length === 0) throw new ProviderError(tts.name, 'synthesis returned zero bytes', { retryable: true });
    // Audio from a fallback that could not speak in the requested voice is not cached under that voice.
    const fallback = out.voiceMatched === false || (voice !== undefined && out.provider !== undefined && out.provider !== voice.provider);
    const answered = { provider: out.provider ?? tts.name, characters: out.characters };
    if (fallback) return { bytes: out.bytes, cached: false, ...answered, matched: voice === undefined };
    try {
      const owner = voice ? ownerKey : SHARED_TTS_OWNER;
      const key = await store.blobs.put(owner, out.bytes, 'tts');
      await store.kv.set(cacheKey, key, 30 * 24 * 3600 * 1000);
    } catch (err) {
      logger.warn({ err }, 'synthesis cache write failed');
    }
    return { bytes: out.bytes, cached: false, ...answered, matched: true };
  }
}
