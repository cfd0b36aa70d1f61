/**
 * Maps Discord objects (messages, attachments, users) to the engine's {@link InboundMessage}
 * fields. Pure apart from the lazy attachment download: what to do with a message is the engine's.
 *
 * Sources: message object and flags (IS_VOICE_MESSAGE = 1 << 13), attachment object (`size`,
 * `duration_secs`, `content_type`), message snapshots of forwards:
 * https://discord.com/developers/docs/resources/message
 */
import { MessageFlags, MessageReferenceType, type Attachment, type Message, type User } from 'discord.js';
import type { InboundAudio, InboundMessage } from '../../core/types.js';

/** Inbound id of an interaction: `discord:interaction:<snowflake>`. */
export function interactionInboundId(interactionId: string): string {
  return `discord:interaction:${interactionId}`;
}

/** Inbound id of a message: `discord:message:<snowflake>`, or `…:<attachment>` for extra attachments. */
export function messageInboundId(messageId: string, attachmentId?: string): string {
  return attachmentId ? `discord:message:${messageId}:${attachmentId}` : `discord:message:${messageId}`;
}

/** The name to greet a user by: server nickname, then display name, then username. */
export function displayNameOf(user: User, memberNickname?: string | null): string {
  return memberNickname ?? user.globalName ?? user.username;
}

/**
 * An attachment as engine audio, with the size and duration Discord declares (`size` in bytes,
 * `duration_secs` for voice messages) so the engine can refuse before downloading. Discord has no
 * download limit of its own, so `platformMaxBytes` is left unset.
 *
 * @param attachment the attachment (from a message or an interaction's `resolved.attachments`)
 * @param isVoiceNote true for the attachment of a message flagged IS_VOICE_MESSAGE
 * @param download fetches the bytes; called by the engine at most once, after its checks
 */
export function attachmentAudio(attachment: Attachment, isVoiceNote: boolean, download: () => Promise<Buffer>): InboundAudio {
  const audio: InboundAudio = {
    isVoiceNote,
    declaredSizeBytes: attachment.size,
    fileName: attachment.name,
    download,
    // The CDN URL is what a job carries; a worker fetches it again (signed, valid for some hours).
    ref: { kind: 'platform', channel: 'discord', url: attachment.url },
  };
  if (typeof attachment.duration === 'number' && Number.isFinite(attachment.duration)) audio.declaredDurationSec = attachment.duration;
  if (attachment.contentType) audio.declaredMime = attachment.contentType;
  return audio;
}

/**
 * Downloads an attachment from its CDN URL.
 *
 * @param url the attachment's `url` (signed CDN link, valid for a limited time)
 * @param declaredSizeBytes the attachment's `size`; a body larger than this (plus 64 KiB) is refused
 * @param timeoutMs abort after this many ms
 * @throws Error on a non-2xx answer, a timeout, or a body larger than declared
 */
export async function downloadAttachment(url: string, declaredSizeBytes: number, timeoutMs = 60_000): Promise<Buffer> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok || !response.body) throw new Error(`attachment download failed: HTTP ${response.status}`);
  const limit = declaredSizeBytes + 64 * 1024;
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.length;
    if (total > limit) throw new Error(`attachment larger than its declared ${declaredSizeBytes} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/** The user-visible content of a message: its own, or the first snapshot's for a forward. */
interface MessageContent {
  content: string;
  attachments: Attachment[];
  isVoiceMessage: boolean;
  forwarded: boolean;
}

function contentOf(message: Message): MessageContent {
  const forwarded = message.reference?.type === MessageReferenceType.Forward;
  const snapshot = forwarded ? message.messageSnapshots.first() : undefined;
  const source = snapshot ?? message;
  return {
    content: source.content ?? '',
    attachments: [...(source.attachments?.values() ?? [])],
    isVoiceMessage: source.flags?.has(MessageFlags.IsVoiceMessage) ?? false,
    forwarded,
  };
}

/**
 * Splits a typed command: `/style coaching` → `{ name: 'style', args: 'coaching' }`; `undefined`
 * when the text is not a command. Names follow Discord's command-name rule (1–32 word characters).
 */
export function parseTypedCommand(text: string): { name: string; args: string } | undefined {
  const match = /^\/([\p{L}\p{N}_-]{1,32})(?=\s|$)\s*([\s\S]*)$/u.exec(text.trim());
  if (!match) return undefined;
  return { name: match[1]!.toLowerCase(), args: (match[2] ?? '').trim() };
}

/** What {@link directMessageToInbound} needs besides the message. */
export interface DirectMessageContext {
  nowMs: number;
  download: (attachment: Attachment) => () => Promise<Buffer>;
}

/**
 * Maps a direct message to one inbound message per attachment (a voice message has exactly one),
 * or one text message when there is none. Text that starts with `/` is a typed command. The
 * message's text rides along with its first attachment. Every attachment is passed on as audio,
 * whatever its type: the engine sniffs the bytes and tells the user what it accepts.
 *
 * `chatId` is the user's id: the bot reaches a Discord user through their DM channel, which the
 * adapter's sender opens from the user id.
 */
export function directMessageToInbound(message: Message, context: DirectMessageContext): InboundMessage[] {
  const { content, attachments, isVoiceMessage, forwarded } = contentOf(message);
  const base: InboundMessage = {
    id: messageInboundId(message.id),
    channel: 'discord',
    chatId: message.author.id,
    userId: message.author.id,
    displayName: displayNameOf(message.author),
    receivedAtMs: context.nowMs,
  };
  if (forwarded) base.forwarded = true;
  const text = content.trim();
  if (attachments.length === 0) {
    const command = forwarded ? undefined : parseTypedCommand(text);
    return [command ? { ...base, command } : { ...base, text }];
  }
  return attachments.map((attachment, index) => {
    const inbound: InboundMessage = {
      ...base,
      id: index === 0 ? base.id : messageInboundId(message.id, attachment.id),
      audio: attachmentAudio(attachment, isVoiceMessage, context.download(attachment)),
    };
    if (index === 0 && text) inbound.text = text;
    return inbound;
  });
}
