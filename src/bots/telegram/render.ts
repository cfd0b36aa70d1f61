/**
 * Renders the engine's {@link OutboundReply} as native Telegram messages through the Bot API
 * (https://core.telegram.org/bots/api#available-methods):
 *
 * - a voice note goes out with `sendVoice` (Ogg/Opus, `duration` in whole seconds), so Telegram shows
 *   the round play button with a waveform; the reply's text (when `sendTextWithVoice`) rides along
 *   as the caption (≤ 1024 characters) or as a separate message when it is longer; `voiceLabel` is
 *   added to the caption unless the text already carries it;
 * - when the user's privacy settings refuse voice messages (400 `VOICE_MESSAGES_FORBIDDEN`,
 *   https://core.telegram.org/bots/api#sendvoice) the same bytes go out with `sendAudio`, and if
 *   that fails too, as text;
 * - text over 4096 characters (https://core.telegram.org/bots/api#sendmessage) is split;
 * - buttons become an inline keyboard whose `callback_data` (1–64 bytes) comes back as an action.
 */
import { GrammyError, InputFile, type Api } from 'grammy';
import type { InlineKeyboardMarkup } from 'grammy/types';
import type { Logger } from '../../core/log.js';
import { splitMessageText } from '../../core/text.js';
import {
  RecipientUnavailableError,
  documentTooLargeText,
  type ChannelSender,
  type ChatActivity,
  type OutboundReply,
  type ReplyButton,
  type ReplyTarget,
} from '../../core/types.js';

/** Longest text of one message, in characters (https://core.telegram.org/bots/api#sendmessage). */
export const MAX_MESSAGE_CHARS = 4096;
/** Longest media caption, in characters (https://core.telegram.org/bots/api#sendvoice). */
export const MAX_CAPTION_CHARS = 1024;
/** Largest file a bot uploads, bytes (https://core.telegram.org/bots/api#sending-files: 50 MB). */
export const MAX_DOCUMENT_BYTES = 50 * 1000 * 1000;
/** Longest `callback_data`, in bytes (https://core.telegram.org/bots/api#inlinekeyboardbutton). */
export const MAX_CALLBACK_DATA_BYTES = 64;

/** Sent when neither a voice message nor an audio file reaches the user and the reply has no text. */
export const VOICE_UNDELIVERABLE_NOTICE =
  'I recorded a voice reply, but this chat does not accept voice messages from me. ' +
  'You can allow them in Telegram under Settings › Privacy and Security › Voice Messages.';

/** Splits text into Telegram messages of at most `maxChars` (default 4096); see {@link splitMessageText}. */
export function splitText(text: string, maxChars = MAX_MESSAGE_CHARS): string[] {
  return splitMessageText(text, maxChars);
}

/**
 * Builds the inline keyboard for `buttons`.
 * @throws Error when a button's data is empty or longer than {@link MAX_CALLBACK_DATA_BYTES} bytes.
 */
export function inlineKeyboard(buttons: ReplyButton[][] | undefined): InlineKeyboardMarkup | undefined {
  if (!buttons || buttons.every((row) => row.length === 0)) return undefined;
  return {
    inline_keyboard: buttons
      .filter((row) => row.length > 0)
      .map((row) =>
        row.map((button) => {
          const size = Buffer.byteLength(button.data);
          if (size < 1 || size > MAX_CALLBACK_DATA_BYTES) {
            throw new Error(`button "${button.label}" has ${size} bytes of data; Telegram allows 1–${MAX_CALLBACK_DATA_BYTES}`);
          }
          return { text: button.label, callback_data: button.data };
        }),
      ),
  };
}

/** `sendVoice`'s `duration` is an integer number of seconds; round to the nearest, at least 1. */
export function voiceDurationParam(durationSec: number): number {
  return Math.max(1, Math.round(durationSec));
}

/** True for a Bot API error with this status whose description matches. */
function isApiError(err: unknown, code: number, description?: RegExp): err is GrammyError {
  return err instanceof GrammyError && err.error_code === code && (description === undefined || description.test(err.description));
}

/**
 * 403 (blocked, deactivated, kicked, "can't initiate conversation") and 400 "chat not found" mean
 * the chat can no longer be reached; anything else is rethrown as is.
 */
export function toRecipientError(err: unknown, chatId: string): unknown {
  if (isApiError(err, 403) || isApiError(err, 400, /chat not found/i)) {
    return new RecipientUnavailableError('telegram', chatId, (err as GrammyError).description);
  }
  return err;
}

/** Sends replies, chat actions and editable status messages to Telegram chats through one {@link Api}. */
export class TelegramRenderer {
  constructor(
    private readonly api: Api,
    private readonly logger: Logger,
  ) {}

  /**
   * Sends `reply` to `chatId` (a Telegram chat id as a string).
   * @throws RecipientUnavailableError when the user blocked the bot or the chat is gone.
   * @throws GrammyError / HttpError for other failures, after auto-retry gave up.
   */
  async send(chatId: string, reply: OutboundReply): Promise<void> {
    try {
      const keyboard = inlineKeyboard(reply.buttons);
      if (reply.document) await this.sendDocumentReply(chatId, reply, keyboard);
      else if (reply.voice) await this.sendVoiceReply(chatId, reply, keyboard);
      else if (reply.text && reply.text.trim() !== '') await this.sendText(chatId, reply.text, keyboard);
      else if (keyboard) throw new Error('a reply with buttons needs text');
    } catch (err) {
      throw toRecipientError(err, chatId);
    }
  }

  /** Shows a chat action (`typing`, `record_voice`, `upload_voice`) for ~5 s; never throws. */
  async activity(chatId: string, kind: ChatActivity): Promise<void> {
    try {
      await this.api.sendChatAction(chatId, kind);
    } catch (err) {
      // The error's cause holds the request URL, which contains the token: log the message only.
      this.logger.debug({ err: err instanceof Error ? err.message : String(err), chatId, kind }, 'telegram chat action failed');
    }
  }

  /**
   * Sends `text` as a status message and returns a function that edits it in place
   * (`editMessageText`). An edit to identical text is skipped ("message is not modified" is
   * ignored); if the message was deleted meanwhile, a new one is sent and edited from then on.
   * @throws RecipientUnavailableError when the chat cannot be reached.
   */
  async status(chatId: string, text: string): Promise<(text: string) => Promise<void>> {
    let current = clip(text);
    let messageId: number;
    try {
      messageId = (await this.api.sendMessage(chatId, current)).message_id;
    } catch (err) {
      throw toRecipientError(err, chatId);
    }
    return async (next: string) => {
      const wanted = clip(next);
      if (wanted === current || wanted.trim() === '') return;
      try {
        await this.api.editMessageText(chatId, messageId, wanted);
      } catch (err) {
        if (isApiError(err, 400, /message is not modified/i)) {
          // Same content already shown.
        } else if (isApiError(err, 400, /message to edit not found/i)) {
          try {
            messageId = (await this.api.sendMessage(chatId, wanted)).message_id;
          } catch (sendErr) {
            throw toRecipientError(sendErr, chatId);
          }
        } else {
          throw toRecipientError(err, chatId);
        }
      }
      current = wanted;
    };
  }

  /** A {@link ReplyTarget} for the handling of one inbound message in `chatId`. */
  target(chatId: string, logger: Logger = this.logger): ReplyTarget {
    const child = new TelegramRenderer(this.api, logger);
    return {
      reply: (reply) => child.send(chatId, reply),
      activity: (kind) => child.activity(chatId, kind),
      status: (text) => child.status(chatId, text),
      // The send throttle calls beforeDispatch() before each message request (throttle.ts).
      reportsDispatch: true,
    };
  }

  /** The {@link ChannelSender} for replies outside a turn (finished clones, broadcasts). */
  sender(): ChannelSender {
    return { channel: 'telegram', send: (chatId, reply) => this.send(chatId, reply), target: (chatId) => this.target(chatId) };
  }

  private async sendText(chatId: string, text: string, keyboard: InlineKeyboardMarkup | undefined): Promise<void> {
    const pieces = splitText(text);
    for (const [i, piece] of pieces.entries()) {
      const last = i === pieces.length - 1;
      await this.api.sendMessage(chatId, piece, last && keyboard ? { reply_markup: keyboard } : {});
    }
  }

  /**
   * A document (the `/export` archive) with `sendDocument`, the text as its caption when it fits
   * (else sent first). Above the Bot API's 50 MB upload limit the text says it could not be attached.
   */
  private async sendDocumentReply(chatId: string, reply: OutboundReply, keyboard: InlineKeyboardMarkup | undefined): Promise<void> {
    const document = reply.document!;
    const text = reply.text?.trim() ? reply.text.trim() : undefined;
    if (document.bytes.length > MAX_DOCUMENT_BYTES) {
      await this.sendText(chatId, [text, documentTooLargeText(document.bytes.length, MAX_DOCUMENT_BYTES, 'Telegram')].filter(Boolean).join('\n\n'), keyboard);
      return;
    }
    const captionFits = text !== undefined && text.length <= MAX_CAPTION_CHARS;
    if (text && !captionFits) await this.sendText(chatId, text, undefined);
    await this.api.sendDocument(chatId, new InputFile(document.bytes, document.fileName), {
      ...(captionFits ? { caption: text } : {}),
      ...(keyboard ? { reply_markup: keyboard } : {}),
    });
  }

  private async sendVoiceReply(chatId: string, reply: OutboundReply, keyboard: InlineKeyboardMarkup | undefined): Promise<void> {
    const voice = reply.voice!;
    const text = reply.text?.trim() ? reply.text.trim() : undefined;
    const label = reply.voiceLabel ? `🔈 ${reply.voiceLabel}` : undefined;
    const withText = reply.sendTextWithVoice === true && text !== undefined;
    // The label is shown once: the engine may already have put it in the text.
    const labelInText = withText && reply.voiceLabel !== undefined && text.includes(reply.voiceLabel);
    const fullCaption = [withText ? text : undefined, labelInText ? undefined : label].filter(Boolean).join('\n\n');
    const captionFits = fullCaption.length <= MAX_CAPTION_CHARS;
    const caption = captionFits ? fullCaption : (label ?? '');
    const separateText = withText && !captionFits ? text : undefined;
    const duration = voiceDurationParam(voice.durationSec);
    const mediaOptions = {
      duration,
      ...(caption ? { caption } : {}),
      ...(keyboard && !separateText ? { reply_markup: keyboard } : {}),
    };
    try {
      await this.api.sendVoice(chatId, new InputFile(voice.oggOpus, 'voice.ogg'), mediaOptions);
    } catch (err) {
      if (!isApiError(err, 400, /VOICE_MESSAGES_FORBIDDEN/)) throw err;
      this.logger.info({ chatId }, 'voice messages forbidden by the user; sending the reply as an audio file');
      try {
        await this.api.sendAudio(chatId, new InputFile(voice.oggOpus, 'voice-reply.ogg'), { ...mediaOptions, title: 'Voice reply' });
      } catch (audioErr) {
        if (!(audioErr instanceof GrammyError) || audioErr.error_code === 403) throw audioErr;
        this.logger.warn({ chatId, err: audioErr }, 'audio fallback failed; sending the reply as text');
        await this.sendText(chatId, text ?? VOICE_UNDELIVERABLE_NOTICE, keyboard);
        return;
      }
    }
    if (separateText) await this.sendText(chatId, separateText, keyboard);
  }
}

function clip(text: string): string {
  return text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS - 1)}…` : text;
}
