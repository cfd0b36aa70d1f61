/**
 * A small {@link ConversationEngine} for adapter tests: it records every inbound message and answers
 * with whatever the test scripts, so tests observe the adapter's mapping and rendering alone.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ChannelSender, CommandInfo, ConversationEngine, InboundMessage, ReplyTarget, VoiceNote } from '../../../src/core/types.js';

const execFileAsync = promisify(execFile);

export type Script = (message: InboundMessage, target: ReplyTarget) => Promise<void>;

export const TEST_COMMANDS: CommandInfo[] = [
  { name: 'start', description: 'Say hello and see what I can do' },
  { name: 'enroll', description: 'Clone your voice from a few voice notes' },
  { name: 'style', description: 'Pick how your twin talks', args: '<name>' },
  { name: 'broadcast', description: 'Send a message to every user', args: '<text>', operatorOnly: true },
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
    }
  }

  private readonly chains = new Map<string, Promise<void>>();

  /**
   * Adapters submit messages; like an engine with a job queue, this one accepts them at once and
   * handles them in the background, one chat's messages in order.
   */
  async submit(message: InboundMessage, target?: ReplyTarget): Promise<boolean> {
    if (!target) throw new Error('the test engine needs a live reply target');
    const next = (this.chains.get(message.chatId) ?? Promise.resolve()).then(() => this.handle(message, target));
    this.chains.set(message.chatId, next);
    return true;
  }

  registerMediaFetcher(): void {}

  registerSender(sender: ChannelSender): void {
    this.sender = sender;
  }

  /** Resolves with the first `count` messages once that many arrived. */
  waitForMessages(count: number, timeoutMs = 10_000): Promise<InboundMessage[]> {
    if (this.messages.length >= count) return Promise.resolve(this.messages.slice(0, count));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`engine saw ${this.messages.length} of ${count} messages`));
      }, timeoutMs);
      const check = () => {
        if (this.messages.length < count) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(this.messages.slice(0, count));
      };
      this.waiters.add(check);
    });
  }
}

/** Encodes a sine tone as Ogg/Opus mono with ffmpeg (what a Telegram voice note is). */
export async function makeOggOpus(durationSec: number, frequencyHz = 220): Promise<Buffer> {
  const { stdout } = await execFileAsync(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `sine=frequency=${frequencyHz}:duration=${durationSec}`, '-c:a', 'libopus', '-ac', '1', '-b:a', '32k', '-f', 'ogg', 'pipe:1'],
    { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 },
  );
  return stdout;
}

/** A voice note as the engine would produce it, from real Ogg/Opus bytes. */
export function voiceNote(oggOpus: Buffer, durationSec: number): VoiceNote {
  return { oggOpus, durationSec, sampleRateHz: 48_000, waveform: new Uint8Array(256), mimeType: 'audio/ogg; codecs=opus' };
}
