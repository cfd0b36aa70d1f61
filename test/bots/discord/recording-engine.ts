/**
 * A small {@link ConversationEngine} for Discord adapter tests: it records each inbound message and
 * answers as the test scripts, so the tests observe the adapter's mapping and rendering alone.
 */
import { submitNow } from '../../helpers/submit.js';
import { spawnSync } from 'node:child_process';
import type { ChannelSender, CommandInfo, ConversationEngine, InboundMessage, ReplyTarget, VoiceNote } from '../../../src/core/types.js';
import { ffprobeDurationSec, makeSpeechWav, toOggOpus, toPcm } from '../../helpers/audio.js';

export type Script = (message: InboundMessage, target: ReplyTarget) => Promise<void>;

/** Commands as an engine lists them (descriptions are taken from here when names match). */
export const TEST_COMMANDS: CommandInfo[] = [
  { name: 'enroll', description: 'Clone your voice from a few voice notes (asks for consent first)' },
  { name: 'status', description: 'Your voice profile, persona and what is stored' },
  { name: 'help', description: 'What you can do' },
  { name: 'text', description: 'Send the text with each voice reply, or not', args: '<on|off>' },
  { name: 'stop', description: 'Stop receiving announcements' },
];

export class RecordingEngine implements ConversationEngine {
  readonly messages: InboundMessage[] = [];
  readonly commands = TEST_COMMANDS;
  readonly errors: unknown[] = [];
  sender: ChannelSender | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(public script: Script = async () => undefined) {}

  async handle(message: InboundMessage, target: ReplyTarget): Promise<void> {
    this.messages.push(message);
    for (const wake of [...this.waiters]) wake();
    try {
      await this.script(message, target);
    } catch (err) {
      this.errors.push(err);
      throw err;
    }
  }

  /** Adapters submit messages; this engine handles them at once, like an engine without a job queue. */
  submit(message: InboundMessage, target?: ReplyTarget): Promise<boolean> {
    return submitNow((m, t) => this.handle(m, t), message, target);
  }

  registerMediaFetcher(): void {}

  registerSender(sender: ChannelSender): void {
    this.sender = sender;
  }

  /** Resolves with the first inbound message matching `predicate`. */
  waitFor(predicate: (m: InboundMessage) => boolean, timeoutMs = 10_000): Promise<InboundMessage> {
    const found = this.messages.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`engine saw no matching message among ${this.messages.length}`));
      }, timeoutMs);
      const check = (): void => {
        const m = this.messages.find(predicate);
        if (!m) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(m);
      };
      this.waiters.add(check);
    });
  }
}

/**
 * A real voice note made the way the engine makes one: espeak-ng speech encoded by ffmpeg as mono
 * 48 kHz Ogg/Opus, its duration from ffprobe and a 256-point peak waveform of the decoded audio.
 */
export function makeVoiceNote(text: string): VoiceNote {
  const oggOpus = toOggOpus(makeSpeechWav(text));
  const pcm = toPcm(oggOpus, 16000);
  const points = 256;
  const waveform = new Uint8Array(points);
  const per = Math.max(1, Math.floor(pcm.samples.length / points));
  for (let i = 0; i < points; i++) {
    let peak = 0;
    for (let j = i * per; j < Math.min(pcm.samples.length, (i + 1) * per); j++) peak = Math.max(peak, Math.abs(pcm.samples[j]!));
    waveform[i] = Math.min(255, Math.round((peak / 32768) * 255));
  }
  return { oggOpus, durationSec: ffprobeDurationSec(oggOpus), sampleRateHz: 48000, waveform, mimeType: 'audio/ogg; codecs=opus' };
}

/** ffprobe's first audio stream of `bytes` (codec, channels, sample rate) and the container name. */
export function probeStream(bytes: Buffer): { codec: string; channels: number; format: string } {
  const result = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,channels:format=format_name', '-of', 'json', '-i', 'pipe:0'], { input: bytes });
  if (result.status !== 0) throw new Error(`ffprobe failed: ${result.stderr.toString()}`);
  const json = JSON.parse(result.stdout.toString()) as { streams: Array<{ codec_name: string; channels: number }>; format: { format_name: string } };
  return { codec: json.streams[0]!.codec_name, channels: json.streams[0]!.channels, format: json.format.format_name };
}

/** The input sample rate and channel count written in the OpusHead packet (RFC 7845 §5.1). */
export function opusHead(bytes: Buffer): { channels: number; inputSampleRateHz: number } {
  const at = bytes.indexOf('OpusHead');
  if (at < 0) throw new Error('no OpusHead packet');
  return { channels: bytes.readUInt8(at + 9), inputSampleRateHz: bytes.readUInt32LE(at + 12) };
}
