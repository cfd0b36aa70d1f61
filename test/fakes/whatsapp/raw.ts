/**
 * Raw message data shaped like WhatsApp Web's serialized message models — what whatsapp-web.js's
 * `window.WWebJS.getMessageModel(msg)` returns and `new Message(client, data)` `_patch`es
 * (whatsapp-web.js 1.34 `src/structures/Message.js`; field names are WhatsApp Web's own: `t`,
 * `directPath`, `mediaKey`, `mentionedJidList`, `notifyName`, `isForwarded`, `forwardingScore`…).
 * Ids are WhatsApp "wids" `{ server, user, _serialized }`: `…@c.us` users, `…@g.us` groups,
 * `…@lid` linked ids, `status@broadcast` status updates; a message id serializes as
 * `<fromMe>_<remote>_<id>[_<participant>]`.
 */
import { createHash, randomBytes } from 'node:crypto';

/** A WhatsApp id as WhatsApp Web serializes it. */
export interface RawWid {
  server: string;
  user: string;
  _serialized: string;
}

/** `4915112345678@c.us` → `{ server: 'c.us', user: '4915112345678', _serialized: … }`. */
export function wid(serialized: string): RawWid {
  const at = serialized.indexOf('@');
  return { server: serialized.slice(at + 1), user: serialized.slice(0, at), _serialized: serialized };
}

/** A message id as WhatsApp Web makes one: 20 upper-case hex digits after `3EB0` (web) — `3A…` is iOS. */
export function newMessageKey(): string {
  return `3EB0${randomBytes(10).toString('hex').toUpperCase()}`;
}

/** The raw id object of a message. */
export function rawMessageId(options: { fromMe: boolean; remote: string; id?: string; participant?: string }) {
  const id = options.id ?? newMessageKey();
  const serialized = [String(options.fromMe), options.remote, id, ...(options.participant ? [options.participant] : [])].join('_');
  return {
    fromMe: options.fromMe,
    remote: options.remote,
    id,
    ...(options.participant ? { participant: wid(options.participant) } : {}),
    _serialized: serialized,
  };
}

/** Options for an incoming message. */
export interface IncomingMessageOptions {
  /** Chat id: the sender (`…@c.us`) in a private chat, the group (`…@g.us`), or `status@broadcast`. */
  chatId: string;
  /** The linked account (`to`). */
  botWid: string;
  /** In groups: the member who sent it. */
  author?: string;
  type: 'chat' | 'ptt' | 'audio' | 'document' | 'image' | 'sticker' | 'e2e_notification' | 'revoked';
  body?: string;
  notifyName?: string;
  fromMe?: boolean;
  isForwarded?: boolean;
  forwardingScore?: number;
  /** Serialized ids mentioned in the body (`@<number>` tokens). */
  mentionedIds?: string[];
  /** Media: the bytes' size, mimetype, duration; `directPath` names the encrypted blob on the CDN. */
  media?: { sizeBytes: number; mimetype: string; durationSec?: number; filename?: string; directPath?: string };
  /** A quoted message's sender (`quotedParticipant`). */
  quotedParticipant?: string;
  isStatus?: boolean;
  /** Unix time, seconds. */
  t?: number;
}

/** Raw data of a received message, as WhatsApp Web would hand it to whatsapp-web.js. */
export function rawIncomingMessage(options: IncomingMessageOptions): Record<string, unknown> {
  const isGroup = options.chatId.endsWith('@g.us');
  const id = rawMessageId({ fromMe: options.fromMe ?? false, remote: options.chatId, participant: isGroup ? options.author : undefined });
  const media = options.media;
  const directPath = media ? (media.directPath ?? `/v/t62.7117-24/${randomBytes(8).toString('hex')}.enc?ccb=11-4`) : undefined;
  return {
    id,
    type: options.type,
    t: options.t ?? Math.floor(Date.now() / 1000),
    body: options.body ?? '',
    from: wid(options.chatId),
    to: wid(options.botWid),
    ...(isGroup && options.author ? { author: wid(options.author) } : {}),
    notifyName: options.notifyName ?? '',
    ack: 1,
    star: false,
    broadcast: false,
    isNewMsg: true,
    isForwarded: options.isForwarded ?? false,
    forwardingScore: options.forwardingScore ?? (options.isForwarded ? 1 : 0),
    isStatusV3: options.isStatus ?? options.chatId === 'status@broadcast',
    mentionedJidList: (options.mentionedIds ?? []).map(wid),
    groupMentions: [],
    links: [],
    hasReaction: false,
    isEphemeral: false,
    ...(options.quotedParticipant
      ? { quotedMsg: { type: 'chat', body: '…' }, quotedParticipant: wid(options.quotedParticipant), quotedStanzaID: newMessageKey() }
      : {}),
    ...(media && directPath
      ? {
          directPath,
          mediaKey: randomBytes(32).toString('base64'),
          mediaKeyTimestamp: Math.floor(Date.now() / 1000),
          mimetype: media.mimetype,
          size: media.sizeBytes,
          filehash: createHash('sha256').update(directPath).digest('base64'),
          encFilehash: createHash('sha256').update(`enc${directPath}`).digest('base64'),
          ...(media.durationSec !== undefined ? { duration: String(Math.round(media.durationSec)) } : {}),
          ...(media.filename ? { filename: media.filename } : {}),
        }
      : {}),
  };
}

/** Raw data of a message the linked account sent (what `sendMessage` resolves to). */
export function rawSentMessage(options: { chatId: string; botWid: string; type: string; body: string }): Record<string, unknown> {
  return {
    id: rawMessageId({ fromMe: true, remote: options.chatId }),
    type: options.type,
    t: Math.floor(Date.now() / 1000),
    body: options.body,
    from: wid(options.botWid),
    to: wid(options.chatId),
    ack: 0,
    isForwarded: false,
    forwardingScore: 0,
    mentionedJidList: [],
    links: [],
  };
}

/** Raw chat data as `window.WWebJS.getChat` serializes it (fields read by whatsapp-web.js `Chat._patch`). */
export function rawChat(chatId: string, name = ''): Record<string, unknown> {
  return {
    id: wid(chatId),
    formattedTitle: name,
    isGroup: chatId.endsWith('@g.us'),
    isReadOnly: false,
    unreadCount: 0,
    t: Math.floor(Date.now() / 1000),
    archive: false,
    pin: 0,
    isMuted: false,
    lastMessage: null,
    ...(chatId.endsWith('@g.us') ? { groupMetadata: { participants: [], owner: undefined, creation: 0, desc: '' } } : {}),
  };
}
