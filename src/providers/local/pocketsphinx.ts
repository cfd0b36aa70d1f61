/**
 * Offline speech-to-text with CMU PocketSphinx (`pocketsphinx_continuous` 5prealpha, Debian
 * packages `pocketsphinx` and `pocketsphinx-en-us`). Raw 16 kHz mono s16le PCM goes through a pipe
 * and never touches the disk: the tool opens `-infile` by name (a name not ending in `.wav` is read
 * as headerless PCM), and `/dev/stdin` cannot be opened when stdin is the socket Node.js connects a
 * child to (ENXIO), so `sh` puts a `cat` in front of it and the decoder opens the real pipe between
 * them. One hypothesis line per utterance comes out on stdout. Options of the decoder: `pocketsphinx_continuous` with no
 * arguments lists them; tuning for speed: https://cmusphinx.github.io/wiki/pocketsphinx_tuning/.
 *
 * Accuracy is modest: 46% word error rate over the 16 transcribed English clips of the shared
 * speech folder (17% on clean LibriSpeech, 64% on the JFK inaugural clip, which it hears as "…and
 * not like your brain… your country"); see test/providers/local/measure-stt.ts. So the recogniser
 * is marked `reliable = false`.
 */
import { access } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import pLimit, { type LimitFunction } from 'p-limit';
import { decodeToPcm, normaliseLoudness, pcmToWav } from '../../core/audio/index.js';
import { pcmBytes } from '../../core/audio/wav.js';
import { DependencyError, ProviderError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { PcmAudio, SpeechToText, Transcript } from '../../core/providers.js';
import { localToolPaths, POCKETSPHINX_INSTALL_HINT, runLocalTool } from './process.js';

/** Where Debian's `pocketsphinx-en-us` package installs the US English model. */
export const DEFAULT_POCKETSPHINX_MODEL_DIR = '/usr/share/pocketsphinx/model/en-us';

/** The sample rate the US English acoustic model was trained at, Hz. */
export const POCKETSPHINX_SAMPLE_RATE_HZ = 16000;

/**
 * Decoder options used by default: a cap of 5000 active HMMs per frame (`-maxhmmpf`, the
 * decoder's default is 30000). Measured with the `pocketsphinx_continuous` CLI on 12 transcribed
 * clips of the shared speech folder (81 s of read English, CPU seconds per audio second, two runs):
 * decoder defaults 0.54 at 36.2% word error rate; `-maxhmmpf 10000` 0.45; `-maxhmmpf 5000` 0.37,
 * word error rate unchanged. Options that cut more cost accuracy: `-topn 2` 0.45 (+2.2 points),
 * `-maxhmmpf 3000 -maxwpf 10` 0.30 (+7.1), `-ds 2 -topn 2 -maxwpf 5 -maxhmmpf 3000 -pl_window 10`
 * about 0.19 (+12.5).
 */
export const POCKETSPHINX_FAST_ARGS: readonly string[] = ['-maxhmmpf', '5000'];

/** Options of {@link PocketsphinxSpeechToText}. */
export interface PocketsphinxOptions {
  /**
   * Model folder holding `en-us/` (acoustic model), `en-us.lm.bin` (language model) and
   * `cmudict-en-us.dict` (pronunciations). Default {@link DEFAULT_POCKETSPHINX_MODEL_DIR}.
   */
  modelDir?: string;
  /** Override single files (absolute paths) instead of the ones inside `modelDir`. */
  acousticModelDir?: string;
  languageModelPath?: string;
  dictionaryPath?: string;
  /** Binary; default `POCKETSPHINX_PATH` or `pocketsphinx_continuous` on PATH. */
  binaryPath?: string;
  /** Extra decoder arguments; default {@link POCKETSPHINX_FAST_ARGS}. Pass `[]` for the decoder's defaults. */
  decoderArgs?: readonly string[];
  /**
   * Time allowed per transcription, ms, as a function of the audio's duration in seconds.
   * Default: 20 s plus 2 s per second of audio (the decoder runs at 0.3–0.6× real time here).
   */
  timeoutMs?: (durationSec: number) => number;
  /**
   * Speech level to normalise the audio to before decoding, dBFS RMS of speech frames
   * (`normaliseLoudness` from src/core/audio). Default: none, the audio is decoded as it is —
   * normalising to −20 dBFS raised the word error rate on the transcribed clips of the shared
   * speech folder from 46.0% to 48.9% (test/providers/local/measure-stt.ts).
   */
  inputLevelDb?: number;
  /** Decoders allowed to run at once (each uses one core); default the machine's parallelism. */
  maxConcurrent?: number;
  logger?: Logger;
}

/**
 * {@link SpeechToText} over `pocketsphinx_continuous`, US English only.
 *
 * `transcribe` takes mono PCM (16 kHz expected; other rates are resampled with ffmpeg first) and
 * returns the recognised words in lower case, utterances joined by a space (`languageHint` is
 * ignored: the model is US English only), with
 * `languageCode: 'en-US'` and `durationSec` = samples / sample rate (seconds). Empty audio gives
 * an empty transcript without running the decoder.
 *
 * @throws DependencyError when the binary or a model file is missing (with the apt-get hint)
 * @throws ProviderError when the decoder exits with an error (not retryable) or times out (retryable)
 * @throws the abort reason when `options.signal` aborts (the decoder is killed)
 */
export class PocketsphinxSpeechToText implements SpeechToText {
  readonly name = 'pocketsphinx';
  readonly reliable = false;
  /** US English only (the `en-us` model). */
  readonly languages: readonly string[] = ['en'];
  private readonly files: { hmm: string; lm: string; dict: string };
  private readonly binary: string;
  private readonly decoderArgs: readonly string[];
  private readonly timeoutMs: (durationSec: number) => number;
  private readonly limit: LimitFunction;
  private readonly inputLevelDb: number | undefined;
  private modelChecked = false;

  constructor(private readonly options: PocketsphinxOptions = {}) {
    const dir = options.modelDir ?? DEFAULT_POCKETSPHINX_MODEL_DIR;
    this.files = {
      hmm: options.acousticModelDir ?? path.join(dir, 'en-us'),
      lm: options.languageModelPath ?? path.join(dir, 'en-us.lm.bin'),
      dict: options.dictionaryPath ?? path.join(dir, 'cmudict-en-us.dict'),
    };
    this.binary = options.binaryPath ?? localToolPaths().pocketsphinx;
    this.decoderArgs = options.decoderArgs ?? POCKETSPHINX_FAST_ARGS;
    this.timeoutMs = options.timeoutMs ?? ((durationSec) => 20_000 + 2_000 * durationSec);
    this.inputLevelDb = options.inputLevelDb;
    this.limit = pLimit(Math.max(1, options.maxConcurrent ?? availableParallelism()));
  }

  /**
   * Checks that the three model parts exist.
   * @throws DependencyError naming the missing file and how to install the model
   */
  async checkModel(): Promise<void> {
    for (const file of [path.join(this.files.hmm, 'mdef'), this.files.lm, this.files.dict]) {
      try {
        await access(file);
      } catch {
        throw new DependencyError(`pocketsphinx model (${file})`, POCKETSPHINX_INSTALL_HINT);
      }
    }
    this.modelChecked = true;
  }

  async transcribe(audio: PcmAudio, options: { languageHint?: string; signal?: AbortSignal } = {}): Promise<Transcript> {
    const durationSec = audio.sampleRateHz > 0 ? audio.samples.length / audio.sampleRateHz : 0;
    options.signal?.throwIfAborted();
    if (audio.samples.length === 0) return { text: '', languageCode: 'en-US', durationSec: 0 };
    if (!this.modelChecked) await this.checkModel();
    const resampled =
      audio.sampleRateHz === POCKETSPHINX_SAMPLE_RATE_HZ
        ? audio
        : await decodeToPcm(pcmToWav(audio), { sampleRateHz: POCKETSPHINX_SAMPLE_RATE_HZ, ...(options.signal ? { signal: options.signal } : {}) });
    const pcm = this.inputLevelDb === undefined ? resampled : normaliseLoudness(resampled, this.inputLevelDb);
    // The decoder's log goes to stderr (not `-logfn /dev/null`): runTool keeps its last 8 KiB in
    // memory, which holds the FATAL/ERROR line when decoding fails.
    const args = [
      '-samprate', String(POCKETSPHINX_SAMPLE_RATE_HZ),
      '-hmm', this.files.hmm,
      '-lm', this.files.lm,
      '-dict', this.files.dict,
      ...this.decoderArgs,
    ];
    const startedMs = Date.now();
    // `sh -c 'cat | exec "$0" "$@"'`: cat copies our stdin (a socket) into a pipe, which the
    // decoder can open as /dev/stdin; the binary and its arguments are positional parameters,
    // never parsed by the shell.
    const result = await this.limit(() =>
      runLocalTool('/bin/sh', ['-c', 'cat | exec "$0" "$@"', this.binary, '-infile', '/dev/stdin', ...args], {
        provider: this.name,
        tool: 'pocketsphinx_continuous',
        installHint: POCKETSPHINX_INSTALL_HINT,
        input: pcmBytes(pcm.samples),
        timeoutMs: this.timeoutMs(durationSec),
        maxStdoutBytes: 16 * 1024 * 1024,
        processGroup: true,
        ...(options.signal ? { signal: options.signal } : {}),
      }),
    );
    // 127 and 126: the shell could not find or run the decoder.
    if (result.exitCode === 127 || result.exitCode === 126) throw new DependencyError('pocketsphinx_continuous', POCKETSPHINX_INSTALL_HINT);
    if (result.exitCode !== 0) {
      const reason = result.stderr
        .split('\n')
        .filter((line) => /^(FATAL|ERROR)/.test(line))
        .slice(-2)
        .join(' | ');
      throw new ProviderError(this.name, `pocketsphinx_continuous exited with ${result.exitCode ?? 'a signal'}${reason ? `: ${reason}` : ''}`, { retryable: false });
    }
    const text = parseHypotheses(result.stdout.toString('utf8'));
    this.options.logger?.debug({ durationSec, elapsedMs: Date.now() - startedMs, words: text ? text.split(' ').length : 0 }, 'pocketsphinx transcribed');
    return { text, languageCode: 'en-US', durationSec };
  }
}

/**
 * Joins `pocketsphinx_continuous` stdout (one hypothesis per utterance and line) into one text:
 * lines trimmed, empty lines dropped, runs of whitespace collapsed, filler tokens such as
 * `<sil>`, `[NOISE]` or `++UH++` removed.
 */
export function parseHypotheses(stdout: string): string {
  return stdout
    .split('\n')
    .flatMap((line) => line.trim().split(/\s+/))
    .filter((word) => word !== '' && !/^(<.*>|\[.*\]|\+\+.*\+\+)$/.test(word))
    .map((word) => word.replace(/\(\d+\)$/, ''))
    .join(' ');
}
