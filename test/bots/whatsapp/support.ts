/**
 * Test support for the WhatsApp adapter: a recording engine, a log capture, real Ogg/Opus voice
 * notes made with espeak-ng + ffmpeg, and ffprobe.
 */
import { submitNow } from '../../helpers/submit.js';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { createLogger, type Logger } from '../../../src/core/log.js';
import type { ChannelSender, CommandInfo, ConversationEngine, InboundMessage, ReplyTarget, VoiceNote } from '../../../src/core/types.js';

const run = promisify(execFile);

/** An engine that records what it is given and runs a scripted behaviour per message. */
export class RecordingEngine implements ConversationEngine {
  readonly handled: Array<{ message: InboundMessage; target: ReplyTarget }> = [];
  readonly senders: ChannelSender[] = [];
  readonly commands: readonly CommandInfo[] = [
    { name: 'enroll', description: 'Clone your voice' },
    { name: 'style', description: 'Pick a persona', args: '<name>' },
    { name: 'help', description: 'What I can do' },
  ];
  private waiters: Array<() => void> = [];

  constructor(public behaviour: (message: InboundMessage, target: ReplyTarget) => Promise<void> = async () => undefined) {}

  async handle(message: InboundMessage, target: ReplyTarget): Promise<void> {
    this.handled.push({ message, target });
    for (const wake of this.waiters.splice(0)) wake();
    await this.behaviour(message, target);
  }

  /** Adapters submit messages; this engine handles them at once, like an engine without a job queue. */
  submit(message: InboundMessage, target?: ReplyTarget): Promise<boolean> {
    return submitNow((m, t) => this.handle(m, t), message, target);
  }

  registerMediaFetcher(): void {}

  registerSender(sender: ChannelSender): void {
    this.senders.push(sender);
  }

  /** Resolves once `count` messages were handed to the engine. */
  async waitForHandled(count: number, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.handled.length < count) {
      if (Date.now() > deadline) throw new Error(`engine got ${this.handled.length} of ${count} messages`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }
}

/** One parsed pino log line. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/** A pino logger (level debug) whose JSON lines are kept for assertions. */
export function captureLogs(): { logger: Logger; lines: LogLine[]; text(): string } {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        raw.push(line);
        lines.push(JSON.parse(line) as LogLine);
      }
      callback();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), lines, text: () => raw.join('\n') };
}

/** Polls `predicate` every 10 ms until true. @throws after `timeoutMs` with `what`. */
export async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** What ffprobe reports about a stream. */
export interface ProbeResult {
  formatName: string;
  codecName: string;
  channels: number;
  sampleRateHz: number;
  durationSec: number;
}

/** Runs ffprobe on `bytes` (through a temp file). @throws when ffprobe cannot read them. */
export async function ffprobe(bytes: Buffer): Promise<ProbeResult> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vt-wa-probe-'));
  const file = path.join(dir, 'in.bin');
  try {
    await writeFile(file, bytes);
    const { stdout } = await run('ffprobe', ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', file]);
    const info = JSON.parse(stdout) as {
      format: { format_name: string; duration?: string };
      streams: Array<{ codec_name: string; channels: number; sample_rate: string; duration?: string }>;
    };
    const stream = info.streams[0];
    if (!stream) throw new Error('no stream');
    return {
      formatName: info.format.format_name,
      codecName: stream.codec_name,
      channels: stream.channels,
      sampleRateHz: Number(stream.sample_rate),
      durationSec: Number(info.format.duration ?? stream.duration),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Speaks `text` with espeak-ng and encodes it as a WhatsApp-style voice note: Ogg/Opus, mono,
 * `sampleRateHz` (16 kHz by default), VoIP application.
 */
export async function makeVoiceNote(text: string, sampleRateHz = 16_000): Promise<VoiceNote> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vt-wa-voice-'));
  try {
    const wav = path.join(dir, 'speech.wav');
    const ogg = path.join(dir, 'voice.ogg');
    await run('espeak-ng', ['-w', wav, text]);
    await run('ffmpeg', ['-v', 'error', '-y', '-i', wav, '-ac', '1', '-ar', String(sampleRateHz), '-c:a', 'libopus', '-b:a', '24k', '-application', 'voip', ogg]);
    const oggOpus = await readFile(ogg);
    const { durationSec } = await ffprobe(oggOpus);
    return { oggOpus, durationSec, sampleRateHz, waveform: new Uint8Array(256), mimeType: 'audio/ogg; codecs=opus' };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Creates a temporary data dir; remove it with the returned function. */
export async function tempDataDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vt-wa-data-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Reads the OpusHead identification header of an Ogg/Opus stream (RFC 7845 §5.1): channel count
 * and the input sample rate the encoder signals. (ffprobe reports 48 kHz for every Opus stream,
 * the decoder's rate, so the signalled rate is read here.)
 * @throws when the bytes hold no OpusHead packet
 */
export function readOpusHead(bytes: Buffer): { channels: number; inputSampleRateHz: number; preSkip: number } {
  const at = bytes.indexOf('OpusHead');
  if (at === -1 || bytes.length < at + 16) throw new Error('no OpusHead packet');
  return { channels: bytes.readUInt8(at + 9), preSkip: bytes.readUInt16LE(at + 10), inputSampleRateHz: bytes.readUInt32LE(at + 12) };
}

/**
 * Encodes any audio the way WhatsApp's phone apps record voice notes: Ogg/Opus, mono, 16 kHz.
 * @throws when ffmpeg cannot decode the input
 */
export async function toWhatsAppPtt(bytes: Buffer): Promise<Buffer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vt-wa-ptt-'));
  try {
    const input = path.join(dir, 'in.bin');
    const output = path.join(dir, 'out.ogg');
    await writeFile(input, bytes);
    await run('ffmpeg', ['-v', 'error', '-y', '-i', input, '-ac', '1', '-ar', '16000', '-c:a', 'libopus', '-b:a', '24k', '-application', 'voip', output]);
    return await readFile(output);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
