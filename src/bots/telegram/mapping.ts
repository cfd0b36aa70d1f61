/**
 * Maps Telegram Bot API updates (https://core.telegram.org/bots/api#update) to the engine's
 * {@link InboundMessage}. Pure: no network, no decisions — what to do with a message is the engine's.
 */
import type { Message, Update } from 'grammy/types';
import type { InboundAudio, InboundMessage } from '../../core/types.js';

/**
 * The Bot API's download limit through the public server: "bots can download files of up to 20MB
 * in size" (https://core.telegram.org/bots/api#getfile). A self-hosted `telegram-bot-api` in
 * `--local` mode lifts it (https://github.com/tdlib/telegram-bot-api#usage).
 */
export const TELEGRAM_DOWNLOAD_LIMIT_BYTES = 20 * 1024 * 1024;

/** The update types the bot asks for (`allowed_updates` of getUpdates/setWebhook). */
export const ALLOWED_UPDATES = ['message', 'callback_query'] as const;

/** Stable id of an update, used by the engine to drop redeliveries: `telegram:update:<update_id>`. */
export function inboundId(updateId: number): string {
  return `telegram:update:${updateId}`;
}

/** What {@link mapUpdate} needs besides the update. */
export interface MapContext {
  /** The bot's own username (from getMe), to strip `/cmd@username` and skip commands for other bots. */
  botUsername: string;
  /** Receive time, ms since the epoch. */
  nowMs: number;
  /** Download limit in bytes; `undefined` when a self-hosted Bot API server lifts it. */
  platformMaxBytes: number | undefined;
  /** Returns a function that fetches the file's bytes (getFile + download); called lazily by the engine. */
  downloader: (fileId: string) => () => Promise<Buffer>;
}

/**
 * User content the bot can receive but not use (sticker, photo, video…). Such messages still reach the
 * engine, with neither text nor audio, so it can tell the user what it understands.
 */
const OTHER_CONTENT_FIELDS = [
  'sticker',
  'photo',
  'video',
  'animation',
  'location',
  'venue',
  'contact',
  'poll',
  'dice',
  'game',
  'story',
  'paid_media',
  'checklist',
] as const;

/**
 * Splits a command message: `/style@VoiceTwinBot coaching` → `{ name: 'style', args: 'coaching' }`.
 * Returns `null` when the command names another bot (`/start@OtherBot` in a group), and `undefined`
 * when the text is not a command. Command syntax: https://core.telegram.org/bots/features#commands
 * (1–32 characters of Latin letters, digits and underscores).
 */
export function parseCommand(text: string, botUsername: string): { name: string; args: string } | null | undefined {
  const match = /^\/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]+))?(?=\s|$)\s*([\s\S]*)$/.exec(text);
  if (!match) return undefined;
  const [, name, target, args] = match;
  if (target && target.toLowerCase() !== botUsername.toLowerCase()) return null;
  return { name: name!.toLowerCase(), args: (args ?? '').trim() };
}

/**
 * Maps one update to an inbound message.
 *
 * - `message` with `text` → `text`, or `command` when it starts with a bot command;
 * - `voice` → audio with `isVoiceNote: true`; `audio`, `video_note` (the engine decodes its sound
 *   track) and `document`s → audio with `isVoiceNote: false`. Every document is offered as audio
 *   with its declared MIME type and name, because the engine sniffs the container from the bytes:
 *   an `.ogg` sent as `application/octet-stream` is still a recording, and a PDF is refused with
 *   a message saying which formats work. The caption becomes `text`;
 * - other user content (sticker, photo, video…) → a message with neither text nor audio;
 * - `callback_query` → `action` = its `data`, in the chat of the message carrying the button;
 * - `forward_origin` → `forwarded: true`; `from.language_code` → `languageCode`.
 *
 * Returns `undefined` for updates that carry nothing for the engine (service messages such as
 * "user joined", commands addressed to another bot, updates without a sender).
 */
export function mapUpdate(update: Update, context: MapContext): InboundMessage | undefined {
  const id = inboundId(update.update_id);
  const query = update.callback_query;
  if (query) {
    const chatId = query.message?.chat.id ?? query.from.id;
    if (query.data === undefined) return undefined;
    return {
      id,
      channel: 'telegram',
      chatId: String(chatId),
      userId: String(query.from.id),
      displayName: displayName(query.from),
      receivedAtMs: context.nowMs,
      action: query.data,
      ...(query.from.language_code ? { languageCode: query.from.language_code } : {}),
    };
  }
  const message = update.message;
  if (!message?.from) return undefined;
  const base: InboundMessage = {
    id,
    channel: 'telegram',
    chatId: String(message.chat.id),
    userId: String(message.from.id),
    displayName: displayName(message.from),
    receivedAtMs: context.nowMs,
    ...(message.forward_origin || 'forward_date' in message ? { forwarded: true } : {}),
    ...(message.from.language_code ? { languageCode: message.from.language_code } : {}),
  };

  if (message.text !== undefined) {
    const command = message.forward_origin ? undefined : parseCommand(message.text, context.botUsername);
    if (command === null) return undefined;
    return command ? { ...base, command } : { ...base, text: message.text };
  }

  const audio = mapAudio(message, context);
  const caption = message.caption;
  if (audio) return { ...base, audio, ...(caption ? { text: caption } : {}) };
  if (OTHER_CONTENT_FIELDS.some((field) => field in message)) {
    return { ...base, ...(caption ? { text: caption } : {}) };
  }
  return undefined;
}

/** The audio of a message, with the sizes Telegram declares, or `undefined` when it has none. */
function mapAudio(message: Message, context: MapContext): InboundAudio | undefined {
  const limit = context.platformMaxBytes === undefined ? {} : { platformMaxBytes: context.platformMaxBytes };
  // The file id is what a job carries: any process can fetch it again with getFile.
  const file = (fileId: string) => ({ download: context.downloader(fileId), ref: { kind: 'platform' as const, channel: 'telegram' as const, fileId } });
  const declared = (size: number | undefined, durationSec: number | undefined) => ({
    ...(size !== undefined ? { declaredSizeBytes: size } : {}),
    ...(durationSec !== undefined ? { declaredDurationSec: durationSec } : {}),
  });
  if (message.voice) {
    const v = message.voice;
    return {
      isVoiceNote: true,
      ...file(v.file_id),
      ...declared(v.file_size, v.duration),
      declaredMime: v.mime_type ?? 'audio/ogg',
      ...limit,
    };
  }
  if (message.audio) {
    const a = message.audio;
    return {
      isVoiceNote: false,
      ...file(a.file_id),
      ...declared(a.file_size, a.duration),
      ...(a.mime_type ? { declaredMime: a.mime_type } : {}),
      ...(a.file_name ? { fileName: a.file_name } : {}),
      ...limit,
    };
  }
  if (message.video_note) {
    const n = message.video_note;
    return {
      isVoiceNote: false,
      ...file(n.file_id),
      ...declared(n.file_size, n.duration),
      declaredMime: 'video/mp4',
      ...limit,
    };
  }
  const d = message.document;
  if (d) {
    return {
      isVoiceNote: false,
      ...file(d.file_id),
      ...declared(d.file_size, undefined),
      ...(d.mime_type ? { declaredMime: d.mime_type } : {}),
      ...(d.file_name ? { fileName: d.file_name } : {}),
      ...limit,
    };
  }
  return undefined;
}

function displayName(user: { first_name: string; last_name?: string }): string {
  return [user.first_name, user.last_name].filter(Boolean).join(' ');
}
