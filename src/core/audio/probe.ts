/**
 * Probing and validation of incoming audio with ffprobe over a pipe. Only headers are read
 * (ffprobe without `-count_frames`); nothing is decoded.
 *
 * ffprobe options: https://ffmpeg.org/ffprobe.html (`-show_streams`, `-show_format`, `-of json`).
 */
import { UserInputError } from '../errors.js';
import { checkDeclared } from './limits.js';
import { mp3DurationSec } from './mpeg.js';
import { getOggOpusInfo, oggGranuleDurationSec, scanOggPages } from './ogg.js';
import { audioToolPaths, runTool } from './process.js';
import { DEMUXER, SUPPORTED_FORMATS_TEXT, sniffContainer } from './sniff.js';
import type { AudioContainer, AudioLimits, AudioProbe } from './types.js';
import { parseWavHeader } from './wav.js';

/** Default time allowed for one ffprobe/ffmpeg header pass, ms. */
export const PROBE_TIMEOUT_MS = 15_000;

/** Options shared by the probing functions. */
export interface ProbeOptions {
  signal?: AbortSignal;
  /** Per tool run, ms (default {@link PROBE_TIMEOUT_MS}). */
  timeoutMs?: number;
}

interface FfprobeStream {
  codec_type?: string;
  codec_name?: string;
  sample_rate?: string;
  channels?: number;
  duration?: string;
  disposition?: { attached_pic?: number };
}
interface FfprobeOutput {
  streams?: FfprobeStream[];
  format?: { duration?: string; format_name?: string };
}

/** The error for bytes that are no audio container we know. */
export function unsupportedFormatError(details?: Record<string, unknown>): UserInputError {
  return new UserInputError(
    'UNSUPPORTED_FORMAT',
    `I can't use that file: it is not an audio format I know. Please send a voice note or an audio file (${SUPPORTED_FORMATS_TEXT}).`,
    details,
  );
}

/** The error for bytes that look like audio but cannot be read. */
export function corruptAudioError(details?: Record<string, unknown>): UserInputError {
  return new UserInputError(
    'CORRUPT_AUDIO',
    'That audio file seems damaged or incomplete, so I could not play it. Please record or send it again.',
    details,
  );
}

/** The error for zero bytes or a file without any audio in it. */
export function emptyAudioError(details?: Record<string, unknown>): UserInputError {
  return new UserInputError('EMPTY_AUDIO', 'That recording is empty. Please record a voice note and send it again.', details);
}

/**
 * Sniffs the container and reads the first audio stream's codec, sample rate, channels and
 * duration with ffprobe (input on stdin, `-f` forced to the sniffed container so ffmpeg never
 * guesses, only the `pipe` protocol allowed). Cover-art video streams are ignored.
 *
 * Duration comes from the container header; when a piped stream has none: WAV from its `data`
 * chunk size (capped at the bytes present), Ogg from granule positions (Opus: minus pre-skip, at
 * 48 kHz, RFC 7845 §4), MP3 by adding up frame headers, anything else (or an MP3 whose frames
 * cannot be walked) from a stream-copy pass that reads packets without decoding (accurate to
 * within the last packet's duration).
 *
 * @param bytes the whole file
 * @returns the probe; `durationSec` in seconds, `sampleRateHz` in Hz, `sizeBytes` = `bytes.length`
 * @throws UserInputError EMPTY_AUDIO for 0 bytes or an audio stream with no duration
 * @throws UserInputError UNSUPPORTED_FORMAT when the magic bytes match no supported container
 * @throws UserInputError CORRUPT_AUDIO when ffprobe fails, finds no audio stream, or an Ogg file ends mid-page
 * @throws DependencyError when ffprobe is not installed; AudioToolError on timeout
 */
export async function probeAudio(bytes: Buffer, options: ProbeOptions = {}): Promise<AudioProbe> {
  if (bytes.length === 0) throw emptyAudioError({ sizeBytes: 0 });
  const container = sniffContainer(bytes);
  if (!container) throw unsupportedFormatError({ sizeBytes: bytes.length, magic: bytes.subarray(0, 8).toString('hex') });

  if (container === 'ogg') {
    const scan = scanOggPages(bytes);
    if (scan.truncated || scan.pages.length === 0) throw corruptAudioError({ container, reason: 'Ogg data ends inside a page', pages: scan.pages.length });
  }
  const fromHeaders = probeFromHeaders(bytes, container);
  if (fromHeaders) return fromHeaders;

  const timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
  const result = await runTool(
    audioToolPaths().ffprobe,
    ['-hide_banner', '-v', 'error', '-protocol_whitelist', 'pipe', '-f', DEMUXER[container], '-i', 'pipe:0', '-show_streams', '-show_format', '-of', 'json'],
    { input: bytes, timeoutMs, signal: options.signal, label: 'ffprobe', maxStdoutBytes: 4 * 1024 * 1024 },
  );
  if (result.exitCode !== 0) throw corruptAudioError({ container, tool: 'ffprobe', exitCode: result.exitCode, stderr: result.stderr });
  let parsed: FfprobeOutput;
  try {
    parsed = JSON.parse(result.stdout.toString('utf8')) as FfprobeOutput;
  } catch {
    throw corruptAudioError({ container, reason: 'ffprobe printed no JSON', stderr: result.stderr });
  }
  const stream = parsed.streams?.find((s) => s.codec_type === 'audio' && !s.disposition?.attached_pic);
  if (!stream) throw corruptAudioError({ container, reason: 'no audio stream', streams: parsed.streams?.map((s) => s.codec_type) });
  const sampleRateHz = Number(stream.sample_rate);
  const channels = stream.channels ?? 0;
  const codec = stream.codec_name ?? 'unknown';
  if (!(sampleRateHz > 0) || channels <= 0) throw corruptAudioError({ container, codec, reason: 'no sample rate or channels', stderr: result.stderr });

  let durationSec = positive(parsed.format?.duration) ?? positive(stream.duration);
  if (container === 'wav') {
    const header = parseWavHeader(bytes);
    if (header && header.byteRate > 0) durationSec = header.dataSizeBytes / header.byteRate;
  } else if (durationSec === undefined && container === 'ogg') {
    durationSec = codec === 'opus' ? getOggOpusInfo(bytes).durationSec : oggGranuleDurationSec(bytes, sampleRateHz);
  } else if (durationSec === undefined && container === 'mp3') {
    durationSec = mp3DurationSec(bytes);
  }
  if (durationSec === undefined) durationSec = await scanDurationSec(bytes, container, timeoutMs, options.signal);
  if (durationSec === undefined || !(durationSec > 0)) throw emptyAudioError({ container, codec, durationSec });

  return { container, codec, durationSec, sampleRateHz, channels, sizeBytes: bytes.length };
}

/**
 * Validates incoming audio cheaply, in this order: size (before anything else), container
 * sniffing, ffprobe header probe, duration. A one-hour file is refused after the header pass.
 *
 * @param limits `maxBytes` in bytes, `maxDurationSec` in seconds (0.5 s tolerance on duration)
 * @returns the probe of the accepted audio
 * @throws UserInputError EMPTY_AUDIO, FILE_TOO_LARGE, UNSUPPORTED_FORMAT, CORRUPT_AUDIO, AUDIO_TOO_LONG
 * @throws DependencyError when ffprobe is missing; AudioToolError on timeout
 */
export async function checkAudio(bytes: Buffer, limits: AudioLimits, options: ProbeOptions = {}): Promise<AudioProbe> {
  if (bytes.length === 0) throw emptyAudioError({ sizeBytes: 0 });
  checkDeclared({ sizeBytes: bytes.length }, limits);
  const probe = await probeAudio(bytes, options);
  checkDeclared({ durationSec: probe.durationSec }, limits);
  return probe;
}

/**
 * The probe read from the container's own headers, without starting ffprobe, for the two forms a
 * voice pipeline sees most: Ogg/Opus voice notes (OpusHead and granule positions, RFC 7845; Opus
 * always decodes at 48 kHz, which is what ffprobe reports too) and plain PCM WAV (`fmt ` and
 * `data` chunks). Anything else, or anything odd about these, returns undefined (ffprobe decides).
 */
function probeFromHeaders(bytes: Buffer, container: AudioContainer): AudioProbe | undefined {
  if (container === 'ogg') {
    let info: ReturnType<typeof getOggOpusInfo>;
    try {
      info = getOggOpusInfo(bytes);
    } catch {
      return undefined;
    }
    if (info.truncated || info.channels < 1 || !(info.durationSec > 0)) return undefined;
    return { container, codec: 'opus', durationSec: info.durationSec, sampleRateHz: 48000, channels: info.channels, sizeBytes: bytes.length };
  }
  if (container === 'wav') {
    const h = parseWavHeader(bytes);
    if (!h || h.subFormat !== 1 || h.bitsPerSample !== 16 || h.channels < 1 || h.sampleRateHz <= 0 || h.byteRate <= 0 || h.dataSizeBytes <= 0) return undefined;
    return { container, codec: 'pcm_s16le', durationSec: h.dataSizeBytes / h.byteRate, sampleRateHz: h.sampleRateHz, channels: h.channels, sizeBytes: bytes.length };
  }
  return undefined;
}

/** Reads every packet of the first audio stream without decoding (`-c copy` to the null muxer) and returns the last timestamp. */
async function scanDurationSec(bytes: Buffer, container: AudioContainer, timeoutMs: number, signal?: AbortSignal): Promise<number | undefined> {
  const result = await runTool(
    audioToolPaths().ffmpeg,
    ['-hide_banner', '-nostats', '-v', 'error', '-protocol_whitelist', 'pipe', '-f', DEMUXER[container], '-i', 'pipe:0',
      '-map', '0:a:0', '-c', 'copy', '-f', 'null', '-progress', 'pipe:1', '-'],
    { input: bytes, timeoutMs, signal, label: 'ffmpeg', maxStdoutBytes: 16 * 1024 * 1024 },
  );
  if (result.exitCode !== 0) throw corruptAudioError({ container, tool: 'ffmpeg', exitCode: result.exitCode, stderr: result.stderr });
  const matches = [...result.stdout.toString('latin1').matchAll(/^out_time_us=(\d+)$/gm)];
  const last = matches.at(-1)?.[1];
  return last === undefined ? undefined : Number(last) / 1e6;
}

function positive(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}
