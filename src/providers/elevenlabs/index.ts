/**
 * ElevenLabs: instant voice clone, text-to-speech and Scribe speech-to-text over the maintained
 * `@elevenlabs/elevenlabs-js` SDK.
 *
 * API reference: https://elevenlabs.io/docs/api-reference
 * - instant voice clone `POST /v1/voices/add`, delete `DELETE /v1/voices/{voice_id}`
 * - TTS `POST /v1/text-to-speech/{voice_id}?output_format=opus_48000_64`
 * - STT `POST /v1/speech-to-text` (`scribe_v2`)
 */
import type { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import type { Logger } from 'pino';
import { ProviderError, UserInputError } from '../../core/errors.js';
import type {
  CloneSample,
  ClonedVoice,
  PcmAudio,
  SpeechSynthesizer,
  SpeechToText,
  SynthesizedAudio,
  Transcript,
  VoiceCloner,
} from '../../core/providers.js';
import type { AudioContainer } from '../../core/audio/types.js';
import { sniffContainer } from '../../core/audio/sniff.js';
import { pcmBytes, pcmToWav } from '../../core/audio/wav.js';
import { ELEVENLABS, createElevenLabsClient, isVoiceNotFound, mapElevenLabsError, type ElevenLabsConnection } from './client.js';

export { ELEVENLABS, createElevenLabsClient, mapElevenLabsError, type ElevenLabsConnection } from './client.js';

/** TTS models this module knows; any other id is passed through as configured. */
export const ELEVENLABS_TTS_MODELS = ['eleven_flash_v2_5', 'eleven_turbo_v2_5', 'eleven_multilingual_v2', 'eleven_v3'] as const;

/**
 * Output formats of `POST /v1/text-to-speech` as the SDK names them
 * (`TextToSpeechConvertRequestOutputFormat`): `opus_48000_{32,64,96,128,192}` give Ogg/Opus at
 * 48 kHz, `mp3_44100_{32,64,96,128,192}` MP3, `pcm_{8000…48000}` raw PCM.
 */
export type ElevenLabsOutputFormat = `opus_48000_${32 | 64 | 96 | 128 | 192}` | `mp3_44100_${32 | 64 | 96 | 128 | 192}` | `mp3_22050_32`;

/** The primary subtag of a BCP-47 tag (`en-US` → `en`), which ElevenLabs' `language_code` takes. */
function primaryLanguage(tag: string | undefined): string | undefined {
  if (!tag) return undefined;
  const primary = tag.split(/[-_]/)[0]?.toLowerCase();
  return primary && /^[a-z]{2,3}$/.test(primary) ? primary : undefined;
}

/**
 * ElevenLabs TTS models that speak English only (https://elevenlabs.io/docs/models): a request in
 * another language goes to {@link MULTILINGUAL_FALLBACK_MODEL} instead.
 */
export const ENGLISH_ONLY_TTS_MODELS: readonly string[] = ['eleven_monolingual_v1', 'eleven_flash_v2', 'eleven_turbo_v2', 'eleven_english_sts_v2'];

/**
 * The model used for a non-English request when the configured one speaks English only: Flash
 * v2.5 speaks 32 languages including Hindi and accepts `language_code` (https://elevenlabs.io/docs/models#flash-v25).
 */
export const MULTILINGUAL_FALLBACK_MODEL = 'eleven_flash_v2_5';

/** An ISO 639-3 code as Scribe reports it (`eng`) in BCP-47 canonical form (`en`). */
function toBcp47(code: string | undefined): string | undefined {
  if (!code) return undefined;
  try {
    return Intl.getCanonicalLocales(code)[0];
  } catch {
    return undefined;
  }
}

/** A cheap authenticated request used to bring ElevenLabs back into rotation (`GET /v1/models`). */
async function probe(client: ElevenLabsClient, apiKey: string, signal: AbortSignal): Promise<void> {
  try {
    await client.models.list({ abortSignal: signal, maxRetries: 0 });
  } catch (err) {
    throw mapElevenLabsError(err, apiKey);
  }
}

/** Settings of {@link ElevenLabsVoiceCloner}. */
export interface ElevenLabsClonerOptions extends ElevenLabsConnection {
  /**
   * Seconds of speech before cloning starts (default 60). ElevenLabs recommends 1–2 minutes of
   * clean audio for an instant voice clone and notes that more than 3 minutes does not help
   * (https://elevenlabs.io/docs/product-guides/voices/voice-cloning/instant-voice-cloning).
   */
  minSpeechSec?: number;
  /** Most speech uploaded, seconds (default 180); the samples with the most speech are kept. */
  maxSpeechSec?: number;
  /** ElevenLabs' audio isolation on upload (default false: it can hurt clean samples). */
  removeBackgroundNoise?: boolean;
  logger?: Logger;
}

/**
 * Instant voice clone: uploads the samples as WAV files (one `files` part each) to
 * `POST /v1/voices/add` and returns the `voice_id`.
 */
export class ElevenLabsVoiceCloner implements VoiceCloner {
  readonly name = ELEVENLABS;
  readonly minSpeechSec: number;
  private readonly maxSpeechSec: number;
  private readonly client: ElevenLabsClient;

  constructor(private readonly options: ElevenLabsClonerOptions) {
    this.client = createElevenLabsClient(options);
    this.minSpeechSec = options.minSpeechSec ?? 60;
    this.maxSpeechSec = options.maxSpeechSec ?? 180;
  }

  /**
   * @param request.userId the user key; sent as a label so voices can be traced to their owner
   * @throws UserInputError AUDIO_TOO_SHORT when the samples hold less than `minSpeechSec` of speech
   * @throws ProviderError on HTTP or network failure
   */
  async clone(request: { userId: string; displayName?: string; samples: CloneSample[]; signal?: AbortSignal }): Promise<ClonedVoice> {
    const totalSpeechSec = request.samples.reduce((sum, s) => sum + s.speechSec, 0);
    if (totalSpeechSec < this.minSpeechSec) {
      throw new UserInputError('AUDIO_TOO_SHORT', `I need about ${Math.ceil(this.minSpeechSec)} seconds of your speech to clone your voice; I have ${Math.floor(totalSpeechSec)} so far. Please send a few more voice notes.`, {
        totalSpeechSec,
        minSpeechSec: this.minSpeechSec,
      });
    }
    // Keep the samples with the most speech up to the ceiling, in their original order.
    const ranked = [...request.samples].sort((a, b) => b.speechSec - a.speechSec);
    const kept = new Set<CloneSample>();
    let keptSec = 0;
    for (const sample of ranked) {
      if (keptSec >= this.maxSpeechSec) break;
      kept.add(sample);
      keptSec += sample.speechSec;
    }
    const samples = request.samples.filter((s) => kept.has(s));
    const name = `VoiceTwin ${request.displayName ?? request.userId}`.slice(0, 100);
    try {
      const response = await this.client.voices.ivc.create(
        {
          name,
          files: samples.map((s, i) => ({ data: pcmToWav(s.pcm), filename: `sample-${i + 1}.wav`, contentType: 'audio/wav' })),
          removeBackgroundNoise: this.options.removeBackgroundNoise ?? false,
          description: 'Instant voice clone made by VoiceTwin with the speaker’s recorded consent.',
          labels: { app: 'voicetwin', owner: request.userId },
        },
        { abortSignal: request.signal, maxRetries: 0 },
      );
      this.options.logger?.info({ provider: ELEVENLABS, voiceId: response.voiceId, samples: samples.length, speechSec: Math.round(keptSec) }, 'instant voice clone created');
      return {
        provider: ELEVENLABS,
        voiceId: response.voiceId,
        params: { requiresVerification: response.requiresVerification, sampleCount: samples.length, speechSec: keptSec },
        approximate: false,
        label: `ElevenLabs instant voice clone (${samples.length} samples, ${Math.round(keptSec)} s of speech)`,
      };
    } catch (err) {
      throw mapElevenLabsError(err, this.options.apiKey);
    }
  }

  /**
   * Deletes the voice (`DELETE /v1/voices/{voice_id}`). A voice that no longer exists counts as
   * deleted.
   * @throws ProviderError on other failures
   */
  async deleteVoice(voice: ClonedVoice): Promise<void> {
    if (voice.provider !== ELEVENLABS) return;
    try {
      await this.client.voices.delete(voice.voiceId, { maxRetries: 0 });
    } catch (err) {
      if (isVoiceNotFound(err)) return;
      throw mapElevenLabsError(err, this.options.apiKey);
    }
  }

  probe(signal: AbortSignal): Promise<void> {
    return probe(this.client, this.options.apiKey, signal);
  }
}

/** Settings of {@link ElevenLabsSynthesizer}. */
export interface ElevenLabsSynthesizerOptions extends ElevenLabsConnection {
  /** `eleven_flash_v2_5` (default, lowest latency), `eleven_multilingual_v2`, `eleven_v3`, … */
  model?: string;
  /** Default `opus_48000_64`: Ogg/Opus at 48 kHz, 64 kb/s, what voice notes carry. */
  outputFormat?: ElevenLabsOutputFormat;
  /** Voice used when the request has none (a premade voice id), e.g. for the fallback voice. */
  defaultVoiceId?: string;
  logger?: Logger;
}

/** Synthesised audio plus the container found in its bytes. */
export interface ElevenLabsSynthesis extends SynthesizedAudio {
  /** Container sniffed from the bytes (`ogg` when ElevenLabs honoured `opus_48000_*`). */
  container: AudioContainer | undefined;
  /** The `output_format` requested. */
  outputFormat: ElevenLabsOutputFormat;
}

/**
 * Text-to-speech: `POST /v1/text-to-speech/{voice_id}?output_format=opus_48000_64`. The bytes are
 * checked for the `OggS` magic; when ElevenLabs answers in another container the result says so
 * (`container`) and a warning is logged; the engine transcodes whatever arrives.
 */
export class ElevenLabsSynthesizer implements SpeechSynthesizer {
  readonly name = ELEVENLABS;
  readonly model: string;
  readonly outputFormat: ElevenLabsOutputFormat;
  private readonly client: ElevenLabsClient;

  constructor(private readonly options: ElevenLabsSynthesizerOptions) {
    this.client = createElevenLabsClient(options);
    this.model = options.model ?? 'eleven_flash_v2_5';
    this.outputFormat = options.outputFormat ?? 'opus_48000_64';
  }

  /**
   * @throws UserInputError EMPTY_TEXT for blank text; TEXT_TOO_LONG when ElevenLabs says the
   *   text exceeds the model's limit
   * @throws ProviderError when there is no voice to use, on HTTP failure, or on empty audio
   */
  async synthesize(request: { text: string; voice?: ClonedVoice; languageCode?: string; signal?: AbortSignal }): Promise<ElevenLabsSynthesis> {
    const text = request.text.trim();
    if (!text) throw new UserInputError('EMPTY_TEXT', 'There is nothing to say: the text is empty.');
    if (request.voice && request.voice.provider !== ELEVENLABS) {
      throw new ProviderError(ELEVENLABS, `voice of provider "${request.voice.provider}" cannot be used`, { retryable: false });
    }
    const voiceId = request.voice?.voiceId ?? this.options.defaultVoiceId;
    if (!voiceId) throw new ProviderError(ELEVENLABS, 'no voice given and no default voice configured', { retryable: false });
    const modelId = this.modelFor(request.languageCode);
    // `language_code` is documented as unsupported by the multilingual v2 models.
    const languageCode = modelId.startsWith('eleven_multilingual') ? undefined : primaryLanguage(request.languageCode);
    let bytes: Buffer;
    try {
      const stream = await this.client.textToSpeech.convert(
        voiceId,
        { text, modelId, outputFormat: this.outputFormat, ...(languageCode ? { languageCode } : {}) },
        { abortSignal: request.signal, maxRetries: 0 },
      );
      bytes = Buffer.from(await new Response(stream).arrayBuffer());
    } catch (err) {
      throw mapElevenLabsError(err, this.options.apiKey);
    }
    if (bytes.length === 0) throw new ProviderError(ELEVENLABS, 'synthesis returned no audio', { retryable: true });
    const container = sniffContainer(bytes);
    const expected = this.outputFormat.startsWith('opus') ? 'ogg' : 'mp3';
    if (container !== expected) {
      this.options.logger?.warn({ provider: ELEVENLABS, outputFormat: this.outputFormat, container: container ?? 'unknown', sizeBytes: bytes.length }, 'TTS returned another container than requested; it will be transcoded');
    }
    return { bytes, characters: text.length, container, outputFormat: this.outputFormat };
  }

  /**
   * The model for a request in `languageCode`: the configured one, unless it speaks English only
   * and the request is in another language (Hindi), then {@link MULTILINGUAL_FALLBACK_MODEL}.
   */
  modelFor(languageCode: string | undefined): string {
    const primary = primaryLanguage(languageCode);
    if (primary && primary !== 'en' && ENGLISH_ONLY_TTS_MODELS.includes(this.model)) return MULTILINGUAL_FALLBACK_MODEL;
    return this.model;
  }

  probe(signal: AbortSignal): Promise<void> {
    return probe(this.client, this.options.apiKey, signal);
  }
}

/** Settings of {@link ElevenLabsSpeechToText}. */
export interface ElevenLabsSpeechToTextOptions extends ElevenLabsConnection {
  /** Scribe model id (default `scribe_v2`; `scribe_v1` also accepted by the API). */
  model?: string;
}

/**
 * Speech-to-text with Scribe: `POST /v1/speech-to-text`. 16 kHz audio is sent as raw
 * `pcm_s16le_16` (documented as the lower-latency input), anything else as a WAV file.
 */
export class ElevenLabsSpeechToText implements SpeechToText {
  readonly name = ELEVENLABS;
  readonly reliable = true;
  readonly model: string;
  private readonly client: ElevenLabsClient;

  constructor(private readonly options: ElevenLabsSpeechToTextOptions) {
    this.client = createElevenLabsClient(options);
    this.model = options.model ?? 'scribe_v2';
  }

  /**
   * @returns the transcript, its language (BCP-47, from Scribe's ISO 639-3 code) and the audio
   *   seconds (as ElevenLabs bills them, else from the sample count)
   * @throws UserInputError EMPTY_AUDIO when there are no samples
   * @throws ProviderError on HTTP or network failure
   */
  async transcribe(audio: PcmAudio, options: { languageHint?: string; signal?: AbortSignal } = {}): Promise<Transcript> {
    if (audio.samples.length === 0) throw new UserInputError('EMPTY_AUDIO', 'That voice note is empty.');
    const durationSec = audio.samples.length / audio.sampleRateHz;
    const raw = audio.sampleRateHz === 16_000;
    const languageCode = primaryLanguage(options.languageHint);
    try {
      const result = await this.client.speechToText.convert(
        {
          modelId: this.model,
          file: raw
            ? { data: Buffer.from(pcmBytes(audio.samples)), filename: 'voice-note.pcm', contentType: 'application/octet-stream' }
            : { data: pcmToWav(audio), filename: 'voice-note.wav', contentType: 'audio/wav' },
          fileFormat: raw ? 'pcm_s16le_16' : 'other',
          tagAudioEvents: false,
          ...(languageCode ? { languageCode } : {}),
        },
        { abortSignal: options.signal, maxRetries: 0 },
      );
      return {
        text: result.text.trim(),
        languageCode: toBcp47(result.languageCode),
        durationSec: result.audioDurationSecs ?? durationSec,
      };
    } catch (err) {
      throw mapElevenLabsError(err, this.options.apiKey);
    }
  }

  probe(signal: AbortSignal): Promise<void> {
    return probe(this.client, this.options.apiKey, signal);
  }
}
