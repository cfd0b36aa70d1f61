/**
 * Renders an {@link OutboundReply} as WhatsApp messages through whatsapp-web.js, one paced send
 * at a time.
 *
 * - Voice: `new MessageMedia('audio/ogg; codecs=opus', base64, 'voice.ogg')` sent with
 *   `sendAudioAsVoice: true`, which makes WhatsApp Web prepare it as a `ptt` (voice-note bubble
 *   with waveform) instead of an audio file card (https://docs.wwebjs.dev/global.html#MessageSendOptions).
 * - Text: a separate message after the voice note when the reply asks for it
 *   (`sendTextWithVoice`), or alone. WhatsApp formatting: `_italic_`, `*bold*`.
 * - Buttons: WhatsApp Web no longer delivers interactive buttons from unofficial clients
 *   (whatsapp-web.js deprecates `Buttons`), so they become a numbered list; the user answers
 *   with the number (see {@link PendingChoices}).
 */
import wwebjs from 'whatsapp-web.js';
import type { Message, MessageSendOptions } from 'whatsapp-web.js';
import { documentTooLargeText, type OutboundReply, type ReplyButton } from '../../core/types.js';
import type { WhatsAppClientLike } from './client.js';
import type { SendPacer } from './pacing.js';

/** WhatsApp's mimetype for a voice note; exactly this string, or phones show a file card. */
export const VOICE_NOTE_MIMETYPE = 'audio/ogg; codecs=opus';

/** Longest text sent in one message, characters (the commonly reported WhatsApp limit; longer texts are cut). */
export const MAX_TEXT_LENGTH = 65_536;

/**
 * Largest document sent, bytes. WhatsApp accepts documents up to 2 GB, but whatsapp-web.js hands
 * the file to the browser page as base64 in one call, so the bot stays at 100 MB.
 */
export const MAX_DOCUMENT_BYTES = 100 * 1000 * 1000;

/** Thrown when WhatsApp Web has no chat with this id (`sendMessage` resolved to `undefined`). */
export class ChatNotFoundError extends Error {
  override readonly name = 'ChatNotFoundError';
  constructor(readonly chatId: string) {
    super(`WhatsApp Web has no chat ${chatId}`);
  }
}

/**
 * Numbered choices offered in a chat, so "2" can be answered with the second button's `data`.
 * Only the latest set per chat is kept, for `ttlMs`.
 */
export class PendingChoices {
  private readonly byChat = new Map<string, { buttons: ReplyButton[]; expiresAtMs: number }>();

  constructor(private readonly ttlMs = 30 * 60_000) {}

  /** Remembers the buttons offered in `chatId` (flattened, in reading order). */
  offer(chatId: string, buttons: ReplyButton[], nowMs = Date.now()): void {
    if (buttons.length === 0) return;
    this.byChat.set(chatId, { buttons, expiresAtMs: nowMs + this.ttlMs });
  }

  /** The `data` of the choice `text` names ("2" or "2."), consuming the offer; else `undefined`. */
  take(chatId: string, text: string, nowMs = Date.now()): string | undefined {
    const entry = this.byChat.get(chatId);
    if (!entry) return undefined;
    if (entry.expiresAtMs < nowMs) {
      this.byChat.delete(chatId);
      return undefined;
    }
    const match = /^\s*(\d{1,2})\s*[.)]?\s*$/.exec(text);
    if (!match) return undefined;
    const chosen = entry.buttons[Number(match[1]) - 1];
    if (!chosen) return undefined;
    this.byChat.delete(chatId);
    return chosen.data;
  }
}

/** The text message of a reply (text, voice label, numbered choices), or `undefined` if none is due. */
export function replyText(reply: OutboundReply): string | undefined {
  const parts: string[] = [];
  const textDue = reply.text && (!reply.voice || reply.sendTextWithVoice);
  if (textDue && reply.text) parts.push(reply.kind === 'error' ? `⚠️ ${reply.text}` : reply.text);
  // The engine often puts the label in the text already ("…\n\n(label)"): say it once.
  const labelInText = textDue && reply.voiceLabel !== undefined && reply.text!.includes(reply.voiceLabel);
  if (reply.voice && reply.voiceLabel && !labelInText) parts.push(`_${reply.voiceLabel}_`);
  const buttons = (reply.buttons ?? []).flat();
  if (buttons.length > 0) {
    if (!textDue && reply.text && !reply.voice) parts.push(reply.text);
    parts.push(buttons.map((button, i) => `*${i + 1}.* ${button.label}`).join('\n'));
    parts.push('_Reply with the number of your choice._');
  }
  const text = parts.join('\n\n').trim();
  if (!text) return undefined;
  return text.length > MAX_TEXT_LENGTH ? `${text.slice(0, MAX_TEXT_LENGTH - 1)}…` : text;
}

/** Sends WhatsApp messages for replies; every send goes through the shared pacer. */
export class WhatsAppReplySender {
  constructor(
    private readonly client: WhatsAppClientLike,
    private readonly pacer: SendPacer,
    private readonly choices: PendingChoices,
  ) {}

  /**
   * Sends `reply` to `chatId`: the voice note first, then the text message if one is due.
   * @param quotedMessageId quote this message (used in groups, so it is clear whom the bot answers)
   * @throws ChatNotFoundError when WhatsApp Web has no such chat; whatsapp-web.js errors as thrown
   */
  async send(chatId: string, reply: OutboundReply, quotedMessageId?: string): Promise<void> {
    const quote: MessageSendOptions = quotedMessageId ? { quotedMessageId } : {};
    if (reply.document) {
      const document = reply.document;
      if (document.bytes.length > MAX_DOCUMENT_BYTES) {
        const text = [replyText(reply), documentTooLargeText(document.bytes.length, MAX_DOCUMENT_BYTES, 'WhatsApp')].filter(Boolean).join('\n\n');
        await this.sendOne(chatId, text, quote);
        return;
      }
      const media = new wwebjs.MessageMedia(document.mimeType, document.bytes.toString('base64'), document.fileName, document.bytes.length);
      const caption = replyText(reply);
      await this.sendOne(chatId, media, { ...quote, sendMediaAsDocument: true, ...(caption ? { caption } : {}) });
      this.choices.offer(chatId, (reply.buttons ?? []).flat());
      return;
    }
    if (reply.voice) {
      const media = new wwebjs.MessageMedia(VOICE_NOTE_MIMETYPE, reply.voice.oggOpus.toString('base64'), 'voice.ogg', reply.voice.oggOpus.length);
      await this.sendOne(chatId, media, { ...quote, sendAudioAsVoice: true });
    }
    const text = replyText(reply);
    if (text) {
      await this.sendOne(chatId, text, reply.voice ? {} : quote);
      this.choices.offer(chatId, (reply.buttons ?? []).flat());
    }
  }

  /**
   * Sends a text that can be edited later (clone progress). Edits go through
   * `Message.edit` (WhatsApp allows editing for 15 minutes); when an edit is refused, the new
   * text is sent as a new message, which later edits then change.
   */
  async sendEditable(chatId: string, text: string): Promise<(text: string) => Promise<void>> {
    let message = await this.sendOne(chatId, text, {});
    let lastText = text;
    return async (next: string) => {
      if (next === lastText) return;
      lastText = next;
      const edited = await this.pacer
        .run(async () => (typeof message.edit === 'function' ? await message.edit(next) : null))
        .catch(() => null);
      if (!edited) message = await this.sendOne(chatId, next, {});
    };
  }

  private async sendOne(chatId: string, content: string | InstanceType<typeof wwebjs.MessageMedia>, options: MessageSendOptions): Promise<Message> {
    const sent = await this.pacer.run(() => this.client.sendMessage(chatId, content, options));
    if (!sent) throw new ChatNotFoundError(chatId);
    return sent;
  }
}
