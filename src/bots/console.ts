/**
 * The console channel: renders engine replies in a terminal and writes voice notes as `.ogg` files.
 * Used by `voicetwin demo`, `chat` and `say`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ChannelSender, ChatActivity, OutboundReply, ReplyTarget } from '../core/types.js';

/** A reply as the console rendered it, with the path of its voice note when it had one. */
export interface ConsoleRecord {
  reply: OutboundReply;
  voicePath?: string;
}

/**
 * Prints replies to a stream and saves voice notes under `outDir` as `<prefix>-<n>.ogg`.
 * Also serves as the console's {@link ChannelSender} for background replies.
 */
export class ConsoleChannel implements ReplyTarget, ChannelSender {
  readonly channel = 'console' as const;
  readonly records: ConsoleRecord[] = [];
  private counter = 0;

  constructor(
    private readonly options: { outDir: string; prefix?: string; write?: (line: string) => void; showActivity?: boolean },
  ) {}

  private write(line: string): void {
    (this.options.write ?? ((l: string) => process.stdout.write(`${l}\n`)))(line);
  }

  async reply(reply: OutboundReply): Promise<void> {
    const record: ConsoleRecord = { reply };
    const tag = reply.kind === 'error' ? 'twin (error)' : reply.kind === 'insight' ? 'twin (insight)' : 'twin';
    if (reply.voice) {
      await mkdir(this.options.outDir, { recursive: true });
      const file = path.join(this.options.outDir, `${this.options.prefix ?? 'reply'}-${String(++this.counter).padStart(2, '0')}.ogg`);
      await writeFile(file, reply.voice.oggOpus);
      record.voicePath = file;
      this.write(`${tag} [voice note ${reply.voice.durationSec.toFixed(2)} s → ${file}]`);
      if (reply.text && (reply.sendTextWithVoice ?? true)) this.write(indent(reply.text));
    } else if (reply.text) {
      this.write(`${tag}: ${reply.text.includes('\n') ? `\n${indent(reply.text)}` : reply.text}`);
    }
    if (reply.document) {
      await mkdir(this.options.outDir, { recursive: true, mode: 0o700 });
      const file = path.join(this.options.outDir, path.basename(reply.document.fileName));
      await writeFile(file, reply.document.bytes, { mode: 0o600 });
      this.write(`  [file ${reply.document.fileName}, ${reply.document.bytes.length} bytes → ${file}]`);
    }
    if (reply.buttons?.length) {
      this.write(`  buttons: ${reply.buttons.flat().map((b) => `[${b.label}]`).join(' ')}`);
    }
    this.records.push(record);
  }

  async activity(kind: ChatActivity): Promise<void> {
    if (this.options.showActivity) this.write(`  (${kind.replace('_', ' ')}…)`);
  }

  async status(text: string): Promise<(text: string) => Promise<void>> {
    this.write(`status: ${text}`);
    return async (next: string) => this.write(`status: ${next}`);
  }

  async send(_chatId: string, reply: OutboundReply): Promise<void> {
    await this.reply(reply);
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
