/**
 * Offline text-to-speech with espeak-ng (formant synthesis, https://github.com/espeak-ng/espeak-ng,
 * command-line options in its manual page `src/espeak-ng.1.ronn`: `-v` voice[+variant], `-p` pitch 0–99,
 * `-s` words per minute 80–450, `--stdin`, `--stdout`, `-m` SSML). The text goes in on stdin,
 * never through a shell or the argument list; a 22.05 kHz mono 16-bit WAV comes out on stdout.
 */
import { ProviderError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ClonedVoice, SpeechSynthesizer, SynthesizedAudio } from '../../core/providers.js';
import { ESPEAK_INSTALL_HINT, localToolPaths, runLocalTool, stderrTail } from './process.js';

/** Provider name shared by the offline synthesizer and cloner (voices carry it in `provider`). */
export const LOCAL_PROVIDER = 'local';

/** The voice used when no (usable) voice is given: espeak-ng's US English voice at its defaults. */
export const DEFAULT_ESPEAK_VOICE = 'en-us';

/**
 * espeak-ng settings of an offline voice, stored in {@link ClonedVoice.params}.
 * Omitted numbers mean espeak-ng's defaults (pitch 50, 175 wpm, pitch range 50).
 */
export interface EspeakVoiceParams {
  /** Voice and optional variant, e.g. `en-us+m3`, `en-us+f3`. */
  espeakVoice: string;
  /** `-p`, 0–99 (higher = higher F0; see calibration.ts for Hz). */
  pitch?: number;
  /** `-s`, words per minute, 80–450. */
  speedWpm?: number;
  /**
   * Intonation range, 0–99, 50 = the voice's own (0 = monotone). Sent as SSML
   * `<prosody range="{2 × value}%">` since the command line has no option for it.
   */
  pitchRange?: number;
}

/** espeak-ng voice names: language tag, optional `+variant` (letters, digits, `_`, `-`). */
const VOICE_NAME = /^[a-z]{2,3}(?:-[a-z0-9]{1,8})*(?:\+[a-z0-9_-]{1,32})?$/i;

/**
 * Reads {@link EspeakVoiceParams} from a voice's `params`.
 * @throws ProviderError (not retryable) naming the bad field when a value is missing or out of range
 */
export function parseEspeakParams(params: Record<string, unknown>): EspeakVoiceParams {
  const bad = (field: string, value: unknown): never => {
    throw new ProviderError(LOCAL_PROVIDER, `invalid espeak-ng voice parameter ${field}=${JSON.stringify(value)}`, { retryable: false });
  };
  const voice = params.espeakVoice;
  if (typeof voice !== 'string' || !VOICE_NAME.test(voice)) bad('espeakVoice', voice);
  const out: EspeakVoiceParams = { espeakVoice: voice as string };
  const numeric = (field: 'pitch' | 'speedWpm' | 'pitchRange', min: number, max: number): void => {
    const value = params[field];
    if (value === undefined) return;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) bad(field, value);
    out[field] = Math.round(value as number);
  };
  numeric('pitch', 0, 99);
  numeric('speedWpm', 80, 450);
  numeric('pitchRange', 0, 99);
  return out;
}

/** Command-line arguments for `params` (text excluded; it goes on stdin). */
export function espeakArgs(params: EspeakVoiceParams): string[] {
  const args = ['--stdout', '--stdin', '-b', '1', '-v', params.espeakVoice];
  if (params.pitch !== undefined) args.push('-p', String(params.pitch));
  if (params.speedWpm !== undefined) args.push('-s', String(params.speedWpm));
  if (usesSsml(params)) args.push('-m');
  return args;
}

function usesSsml(params: EspeakVoiceParams): boolean {
  return params.pitchRange !== undefined && params.pitchRange !== 50;
}

/** Escapes text for an XML text node. */
function xmlEscape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** The stdin bytes for `text` under `params` (UTF-8; wrapped in SSML when a pitch range is set). */
export function espeakInput(text: string, params: EspeakVoiceParams): Buffer {
  const body = usesSsml(params) ? `<speak><prosody range="${params.pitchRange! * 2}%">${xmlEscape(text)}</prosody></speak>` : text;
  return Buffer.from(body, 'utf8');
}

/** Options of {@link EspeakSpeechSynthesizer}. */
export interface EspeakSynthesizerOptions {
  /** Binary; default `ESPEAK_NG_PATH` or `espeak-ng` on PATH. */
  binaryPath?: string;
  /** Time allowed per call, ms, from the text length in characters. Default 15 s + 20 ms per character. */
  timeoutMs?: (characters: number) => number;
  logger?: Logger;
}

/**
 * {@link SpeechSynthesizer} over espeak-ng (name `local`).
 *
 * `synthesize` speaks `text` (any length; the engine splits sentences) in `voice` when it is a
 * `local` voice (its {@link EspeakVoiceParams}), else in {@link DEFAULT_ESPEAK_VOICE}.
 * `languageCode` (BCP-47) switches the voice's language when espeak-ng has that language, keeping
 * the variant (`de` + `en-us+f3` → `de+f3`). Returns a 22.05 kHz mono 16-bit PCM WAV whose RIFF
 * and data sizes are set (espeak-ng writes placeholders when streaming) and `characters` = Unicode
 * code points of `text`.
 *
 * @throws ProviderError (not retryable) when the text is blank, the params are invalid, espeak-ng
 *   fails, or the output has no audible samples; (retryable) on timeout
 * @throws DependencyError when espeak-ng is missing
 * @throws the abort reason when `signal` aborts
 */
export class EspeakSpeechSynthesizer implements SpeechSynthesizer {
  readonly name = LOCAL_PROVIDER;
  private readonly binary: string;
  private readonly timeoutMs: (characters: number) => number;
  private languages?: Promise<Set<string>>;

  constructor(private readonly options: EspeakSynthesizerOptions = {}) {
    this.binary = options.binaryPath ?? localToolPaths().espeak;
    this.timeoutMs = options.timeoutMs ?? ((characters) => 15_000 + 20 * characters);
  }

  async synthesize(request: { text: string; voice?: ClonedVoice; languageCode?: string; signal?: AbortSignal }): Promise<SynthesizedAudio> {
    const text = request.text.trim();
    if (!text) throw new ProviderError(this.name, 'nothing to synthesise: the text is blank', { retryable: false });
    let params: EspeakVoiceParams = { espeakVoice: DEFAULT_ESPEAK_VOICE };
    if (request.voice?.provider === LOCAL_PROVIDER) params = parseEspeakParams(request.voice.params);
    else if (request.voice) this.options.logger?.debug({ provider: request.voice.provider }, 'espeak-ng: voice of another provider, using the default voice');
    if (request.languageCode) params = { ...params, espeakVoice: await this.withLanguage(params.espeakVoice, request.languageCode, request.signal) };

    const characters = [...request.text].length;
    const startedMs = Date.now();
    const result = await runLocalTool(this.binary, espeakArgs(params), {
      provider: this.name,
      tool: 'espeak-ng',
      installHint: ESPEAK_INSTALL_HINT,
      input: espeakInput(text, params),
      timeoutMs: this.timeoutMs(characters),
      maxStdoutBytes: 256 * 1024 * 1024,
      ...(request.signal ? { signal: request.signal } : {}),
    });
    if (result.exitCode !== 0) {
      throw new ProviderError(this.name, `espeak-ng exited with ${result.exitCode ?? 'a signal'}: ${stderrTail(result.stderr)}`, { retryable: false });
    }
    const bytes = fixStreamedWavSizes(result.stdout);
    if (!bytes || !hasAudibleSamples(bytes, wavDataOffset(bytes)!)) {
      throw new ProviderError(this.name, `espeak-ng produced no audible speech for ${characters} characters`, { retryable: false });
    }
    this.options.logger?.debug({ characters, sizeBytes: bytes.length, elapsedMs: Date.now() - startedMs, voice: params.espeakVoice }, 'espeak-ng synthesised');
    return { bytes, characters };
  }

  /** `voice` with its language replaced by the one `languageCode` names, when espeak-ng has it. */
  private async withLanguage(voice: string, languageCode: string, signal?: AbortSignal): Promise<string> {
    const [base, variant] = voice.split('+') as [string, string | undefined];
    const wanted = languageCode.toLowerCase();
    const primary = wanted.split('-')[0]!;
    if (base.toLowerCase() === wanted || base.toLowerCase().split('-')[0] === primary) return voice;
    const languages = await (this.languages ??= this.listLanguages(signal));
    const found = [wanted, primary === 'en' ? 'en-us' : primary].find((tag) => languages.has(tag));
    return found ? `${found}${variant ? `+${variant}` : ''}` : voice;
  }

  /** Language tags espeak-ng has voices for (`espeak-ng --voices`, second column); empty on failure. */
  private async listLanguages(signal?: AbortSignal): Promise<Set<string>> {
    const result = await runLocalTool(this.binary, ['--voices'], {
      provider: this.name,
      tool: 'espeak-ng',
      installHint: ESPEAK_INSTALL_HINT,
      timeoutMs: 10_000,
      ...(signal ? { signal } : {}),
    });
    const tags = result.stdout
      .toString('utf8')
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/)[1]?.toLowerCase())
      .filter((tag): tag is string => Boolean(tag));
    return new Set(tags);
  }
}

/**
 * Sets the RIFF size and the `data` chunk size of a WAV written to a pipe (espeak-ng leaves
 * 0x7FFFF000 placeholders there) to the real sizes, in place.
 * RIFF layout: http://soundfile.sapp.org/doc/WaveFormat/ (chunks: 4-byte id, 32-bit LE size, body).
 * @returns the same buffer, trimmed to whole samples; undefined when it is not a RIFF/WAVE or has no data chunk
 */
export function fixStreamedWavSizes(wav: Buffer): Buffer | undefined {
  const dataOffset = wavDataOffset(wav);
  if (dataOffset === undefined) return undefined;
  const dataBytes = (wav.length - dataOffset) & ~1;
  const out = wav.subarray(0, dataOffset + dataBytes);
  out.writeUInt32LE(dataBytes, dataOffset - 4);
  out.writeUInt32LE(out.length - 8, 4);
  return out;
}

/** Byte offset where the `data` chunk's samples start, walking the RIFF chunks; undefined when absent. */
function wavDataOffset(wav: Buffer): number | undefined {
  if (wav.length < 12 || wav.toString('latin1', 0, 4) !== 'RIFF' || wav.toString('latin1', 8, 12) !== 'WAVE') return undefined;
  let offset = 12;
  while (offset + 8 <= wav.length) {
    if (wav.toString('latin1', offset, offset + 4) === 'data') return offset + 8;
    const size = wav.readUInt32LE(offset + 4);
    offset += 8 + size + (size & 1);
  }
  return undefined;
}

/**
 * True when `wav` is a RIFF/WAVE with 16-bit PCM samples reaching at least 1% of full scale
 * somewhere (flite and espeak-ng write digital silence for text with nothing to say).
 */
export function isAudibleWav(wav: Buffer): boolean {
  const offset = wavDataOffset(wav);
  return offset !== undefined && hasAudibleSamples(wav, offset);
}

/** True when the 16-bit PCM samples from `dataStart` on reach at least 1% of full scale somewhere. */
function hasAudibleSamples(wav: Buffer, dataStart: number): boolean {
  for (let i = dataStart; i + 1 < wav.length; i += 2) {
    const s = wav.readInt16LE(i);
    if (s > 327 || s < -327) return true;
  }
  return false;
}
