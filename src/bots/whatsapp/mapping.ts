/**
 * Maps a whatsapp-web.js `Message` (https://docs.wwebjs.dev/Message.html) to an
 * {@link InboundMessage}, or says why it is ignored. Pure apart from the `download` closure.
 *
 * Message types are WhatsApp Web's (`MessageTypes` in whatsapp-web.js `src/util/Constants.js`):
 * `chat` text, `ptt` voice note (push-to-talk), `audio` audio file, `document` any file.
 */
import type { Message } from 'whatsapp-web.js';
import { UserInputError } from '../../core/errors.js';
import type { InboundMessage } from '../../core/types.js';

/** Default command prefixes: `/enroll` and `!enroll` both work. */
export const DEFAULT_COMMAND_PREFIXES = ['/', '!'] as const;

/** What the mapper needs besides the message. */
export interface MappingContext {
  /** Ids of the linked account (phone-number id `…@c.us` and LID `…@lid`), to recognise mentions. */
  botIds: ReadonlySet<string>;
  /** Command prefixes, e.g. `['/', '!']`. */
  commandPrefixes: readonly string[];
  /** Lower-case names of the commands the engine knows. */
  knownCommands: ReadonlySet<string>;
  /** Receive time, ms since the epoch. */
  nowMs: number;
}

/** Why a message gets no answer (logged, never shown). */
export type IgnoreReason =
  | 'from_me'
  | 'status_broadcast'
  | 'broadcast_or_channel'
  | 'group_without_mention'
  | 'system_message'
  | 'empty_text';

/** Result of {@link mapWhatsAppMessage}. */
export type MappedMessage =
  | { kind: 'inbound'; message: InboundMessage; isGroup: boolean }
  /** A user sent something the bot cannot take (image, sticker…): answer with a hint. */
  | { kind: 'unsupported'; type: string; chatId: string; isGroup: boolean }
  | { kind: 'ignore'; reason: IgnoreReason; type: string };

/** Media types a user sends on purpose; anything else unknown is a system message. */
const USER_MEDIA_TYPES = new Set(['image', 'video', 'sticker', 'location', 'vcard', 'multi_vcard', 'document', 'poll_creation']);

/** The raw WhatsApp Web message model the `Message` was built from (`Message.rawData`). */
type RawData = Record<string, unknown>;

function rawOf(message: Message): RawData {
  return (message.rawData ?? {}) as RawData;
}

function serializedId(id: unknown): string | undefined {
  if (typeof id === 'string') return id;
  if (id && typeof id === 'object' && '_serialized' in id && typeof id._serialized === 'string') return id._serialized;
  return undefined;
}

/** The user part of a WhatsApp id: `4915112345678@c.us` → `4915112345678`. */
export function userPart(id: string): string {
  const at = id.indexOf('@');
  return at === -1 ? id : id.slice(0, at);
}

function positiveNumber(value: unknown): number | undefined {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}

/** True when a group message addresses the bot: it mentions the bot, or quotes one of its messages. */
function addressesBot(message: Message, raw: RawData, botIds: ReadonlySet<string>): boolean {
  const mentioned = (message.mentionedIds ?? []).some((id) => {
    const serialized = serializedId(id);
    return serialized !== undefined && botIds.has(serialized);
  });
  if (mentioned) return true;
  const quotedParticipant = serializedId(raw.quotedParticipant);
  return message.hasQuotedMsg && quotedParticipant !== undefined && botIds.has(quotedParticipant);
}

/** Removes `@<bot number>` mention tokens from a group message's text. */
function stripBotMentions(text: string, botIds: ReadonlySet<string>): string {
  let out = text;
  for (const id of botIds) {
    const user = userPart(id);
    if (user) out = out.split(`@${user}`).join(' ');
  }
  return out.replace(/[ \t]+/g, ' ').trim();
}

/**
 * Splits a command: `/style coaching` → `{ name: 'style', args: 'coaching' }`.
 * `/` followed by any word is a command (an unknown one gets the engine's "unknown command"
 * answer); any other prefix (`!`) only introduces commands the engine knows, so "!wow" stays text.
 */
export function parseCommand(
  text: string,
  prefixes: readonly string[],
  knownCommands: ReadonlySet<string>,
): { name: string; args: string } | undefined {
  for (const prefix of prefixes) {
    if (!prefix || !text.startsWith(prefix)) continue;
    const match = /^([a-z][\w-]*)(?:\s+([\s\S]*))?$/i.exec(text.slice(prefix.length));
    if (!match?.[1]) continue;
    const name = match[1].toLowerCase();
    if (prefix !== '/' && !knownCommands.has(name)) continue;
    return { name, args: (match[2] ?? '').trim() };
  }
  return undefined;
}

/** The message shown when WhatsApp Web could not give us the audio (expired media, network error). */
export const MEDIA_UNAVAILABLE_MESSAGE =
  'I could not download that voice note from WhatsApp (it may have expired on your phone). Please record it again.';

/**
 * Maps one received message.
 *
 * - `fromMe` messages, status updates (`status@broadcast`), broadcast lists and channels: ignored.
 * - Groups (`…@g.us`): only messages that mention the bot or quote one of its messages; the sender
 *   is `author`.
 * - `ptt`/`audio` (and `document` with an `audio/*` mimetype): `audio` with the declared size
 *   (`rawData.size`, bytes), duration (`duration`, seconds) and a `download` that calls
 *   `Message.downloadMedia()`; an empty result throws `UserInputError('EMPTY_AUDIO')`.
 * - `chat`: a command (see {@link parseCommand}) or plain text.
 * - `isForwarded` → `forwarded: true`.
 */
export function mapWhatsAppMessage(message: Message, ctx: MappingContext): MappedMessage {
  const raw = rawOf(message);
  const type = String(message.type ?? '');
  const chatId = message.from;
  if (message.fromMe || message.id?.fromMe) return { kind: 'ignore', reason: 'from_me', type };
  if (message.isStatus || chatId === 'status@broadcast') return { kind: 'ignore', reason: 'status_broadcast', type };
  if (message.broadcast || /@(broadcast|newsletter)$/.test(chatId ?? '')) {
    return { kind: 'ignore', reason: 'broadcast_or_channel', type };
  }
  const isGroup = (chatId ?? '').endsWith('@g.us');
  if (isGroup && !addressesBot(message, raw, ctx.botIds)) return { kind: 'ignore', reason: 'group_without_mention', type };

  const userId = isGroup ? (message.author ?? chatId) : chatId;
  const base: InboundMessage = {
    id: `whatsapp:${message.id._serialized}`,
    channel: 'whatsapp',
    chatId,
    userId,
    receivedAtMs: ctx.nowMs,
    ...(typeof raw.notifyName === 'string' && raw.notifyName ? { displayName: raw.notifyName } : {}),
    ...(message.isForwarded || (message.forwardingScore ?? 0) > 0 ? { forwarded: true } : {}),
  };

  const mimetype = typeof raw.mimetype === 'string' ? raw.mimetype : undefined;
  const isAudio = type === 'ptt' || type === 'audio' || (type === 'document' && mimetype?.startsWith('audio/') === true);
  if (isAudio) {
    const declaredSizeBytes = positiveNumber(raw.size);
    const declaredDurationSec = positiveNumber(message.duration ?? raw.duration);
    const fileName = typeof raw.filename === 'string' && raw.filename ? raw.filename : undefined;
    return {
      kind: 'inbound',
      isGroup,
      message: {
        ...base,
        audio: {
          isVoiceNote: type === 'ptt',
          ...(declaredSizeBytes !== undefined ? { declaredSizeBytes } : {}),
          ...(declaredDurationSec !== undefined ? { declaredDurationSec } : {}),
          ...(mimetype ? { declaredMime: mimetype } : {}),
          ...(fileName ? { fileName } : {}),
          download: () => downloadAudio(message),
        },
      },
    };
  }

  if (type === 'chat') {
    const text = isGroup ? stripBotMentions(message.body ?? '', ctx.botIds) : (message.body ?? '').trim();
    if (!text) return { kind: 'ignore', reason: 'empty_text', type };
    const command = parseCommand(text, ctx.commandPrefixes, ctx.knownCommands);
    return { kind: 'inbound', isGroup, message: command ? { ...base, command } : { ...base, text } };
  }

  if (USER_MEDIA_TYPES.has(type)) return { kind: 'unsupported', type, chatId, isGroup };
  return { kind: 'ignore', reason: 'system_message', type };
}

/**
 * Downloads a message's audio through WhatsApp Web.
 * @throws UserInputError `EMPTY_AUDIO` when `downloadMedia()` yields nothing (expired or
 *   unavailable media) or zero bytes, or fails.
 */
async function downloadAudio(message: Message): Promise<Buffer> {
  let media: Awaited<ReturnType<Message['downloadMedia']>> | undefined;
  try {
    media = await message.downloadMedia();
  } catch (err) {
    throw new UserInputError('EMPTY_AUDIO', MEDIA_UNAVAILABLE_MESSAGE, {
      reason: 'downloadMedia failed',
      error: err instanceof Error ? err.message : String(err),
    });
  }
  const bytes = media?.data ? Buffer.from(media.data, 'base64') : undefined;
  if (!bytes || bytes.length === 0) {
    throw new UserInputError('EMPTY_AUDIO', MEDIA_UNAVAILABLE_MESSAGE, {
      reason: media ? 'downloadMedia returned no data' : 'downloadMedia returned undefined',
    });
  }
  return bytes;
}
