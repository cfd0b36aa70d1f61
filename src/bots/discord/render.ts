/**
 * Renders an engine {@link OutboundReply} on Discord: text (split at Discord's 2,000 characters),
 * buttons, and voice as a native voice message with a plain audio file and then text as fallbacks.
 *
 * Voice messages (https://discord.com/developers/docs/resources/message#voice-messages and the
 * attachment object): message flag IS_VOICE_MESSAGE (1 << 13), exactly one audio attachment
 * carrying `duration_secs` (float seconds) and `waveform` (base64 bytes, "at most 256" points,
 * 0–255), no content, no components, never edited. Sending one needs the SEND_VOICE_MESSAGES
 * permission (1 << 46, https://discord.com/developers/docs/topics/permissions); without it Discord
 * answers 50173 "Cannot send voice messages in this channel"
 * (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json).
 */
import { ActionRowBuilder, AttachmentBuilder, ButtonBuilder, ButtonStyle, DiscordAPIError } from 'discord.js';
import type { Logger } from '../../core/log.js';
import { documentTooLargeText, type OutboundReply, type ReplyButton, type VoiceNote } from '../../core/types.js';
import { splitMessageText } from '../../core/text.js';

/** Discord's message content limit, in characters. */
export const MAX_CONTENT_CHARS = 2000;
/** Discord's `custom_id` limit for buttons, in characters. */
export const MAX_CUSTOM_ID_CHARS = 100;
/** Waveform points Discord accepts at most. */
export const MAX_WAVEFORM_POINTS = 256;
/** Default upload limit for bots without a boosted server, in bytes (10 MiB). */
export const DEFAULT_UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024;
/** File name of voice-message attachments (Discord's own clients use `voice-message.ogg`). */
export const VOICE_MESSAGE_FILE_NAME = 'voice-message.ogg';

/** JSON error codes this adapter branches on (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json). */
export const DiscordErrorCode = {
  UnknownChannel: 10003,
  UnknownMessage: 10008,
  UnknownUser: 10013,
  UnknownWebhook: 10015,
  UnknownInteraction: 10062,
  RequestEntityTooLarge: 40005,
  InteractionAlreadyAcknowledged: 40060,
  CannotSendMessagesToThisUser: 50007,
  MissingPermissions: 50013,
  InvalidWebhookToken: 50027,
  VoiceMessagesDoNotSupportAdditionalContent: 50159,
  VoiceMessagesMustHaveASingleAudioAttachment: 50160,
  VoiceMessagesMustHaveSupportingMetadata: 50161,
  CannotSendVoiceMessagesInThisChannel: 50173,
  CannotSendMessagesNoMutualGuilds: 50278,
} as const;

/** True when `err` is a Discord API error with one of `codes`. */
export function hasDiscordCode(err: unknown, ...codes: number[]): err is DiscordAPIError {
  return err instanceof DiscordAPIError && typeof err.code === 'number' && codes.includes(err.code);
}

/** Said when neither a voice message nor an audio file can be sent where the user is. */
export const VOICE_UNDELIVERABLE_NOTICE =
  "(I can't send audio here. A server admin can allow me Send Voice Messages and Attach Files, or talk to me in a direct message.)";

/** One message to send, in discord.js terms. */
export interface OutgoingMessage {
  content?: string;
  components?: Array<ActionRowBuilder<ButtonBuilder>>;
  files?: AttachmentBuilder[];
  /** A voice message: sent with flag IS_VOICE_MESSAGE. */
  voice?: boolean;
}

/** A sent message whose text can be edited. */
export interface SentMessage {
  edit(text: string): Promise<void>;
}

/** Where replies go: an interaction's response and follow-ups, or a channel. */
export interface Surface {
  /** Sends one message; `ephemeral` is honoured where the surface supports it. */
  send(message: OutgoingMessage, ephemeral: boolean): Promise<SentMessage>;
  /** False when the bot is known to lack the permission here; true when allowed or unknown. */
  allows(capability: 'voice' | 'attach'): boolean;
  /** Largest upload in bytes. */
  readonly uploadLimitBytes: number;
}

/** Splits text into Discord messages of at most `maxChars` (default 2,000); see {@link splitMessageText}. */
export function splitText(text: string, maxChars = MAX_CONTENT_CHARS): string[] {
  return splitMessageText(text, maxChars);
}

/**
 * A button's `custom_id`: `vt:<owner user id>:<data>`, so a press by anyone but the user the
 * buttons were made for can be refused (guild messages are visible to everyone).
 * @throws Error when the result exceeds Discord's 100 characters (the engine keeps `data` ≤ 64 bytes)
 */
export function buttonCustomId(ownerId: string, data: string): string {
  const id = `vt:${ownerId}:${data}`;
  if (id.length > MAX_CUSTOM_ID_CHARS) throw new Error(`button data too long for a Discord custom_id (${id.length} > ${MAX_CUSTOM_ID_CHARS})`);
  return id;
}

/** Parses a {@link buttonCustomId}; `undefined` for ids this bot did not make. */
export function parseButtonCustomId(customId: string): { ownerId: string; data: string } | undefined {
  const match = /^vt:(\d+):([\s\S]*)$/.exec(customId);
  return match ? { ownerId: match[1]!, data: match[2]! } : undefined;
}

/** Action rows of buttons (≤ 5 rows of ≤ 5 buttons, Discord's layout limits); the first button of a row is primary. */
export function buttonRows(buttons: ReplyButton[][] | undefined, ownerId: string): Array<ActionRowBuilder<ButtonBuilder>> | undefined {
  if (!buttons?.length) return undefined;
  const rows = buttons
    .filter((row) => row.length > 0)
    .slice(0, 5)
    .map((row) =>
      new ActionRowBuilder<ButtonBuilder>().addComponents(
        row.slice(0, 5).map((b, i) =>
          new ButtonBuilder()
            .setCustomId(buttonCustomId(ownerId, b.data))
            .setLabel(b.label.slice(0, 80))
            .setStyle(i === 0 ? ButtonStyle.Primary : ButtonStyle.Secondary),
        ),
      ),
    );
  return rows.length ? rows : undefined;
}

/**
 * The base64 waveform for a voice message: at most {@link MAX_WAVEFORM_POINTS} bytes, taking the
 * peak of each group when the input has more points. An empty input gives one silent point.
 */
export function encodeWaveform(points: Uint8Array): string {
  if (points.length === 0) return Buffer.from([0]).toString('base64');
  if (points.length <= MAX_WAVEFORM_POINTS) return Buffer.from(points).toString('base64');
  const out = new Uint8Array(MAX_WAVEFORM_POINTS);
  for (let i = 0; i < MAX_WAVEFORM_POINTS; i++) {
    const start = Math.floor((i * points.length) / MAX_WAVEFORM_POINTS);
    const end = Math.max(start + 1, Math.floor(((i + 1) * points.length) / MAX_WAVEFORM_POINTS));
    let peak = 0;
    for (let j = start; j < end; j++) peak = Math.max(peak, points[j]!);
    out[i] = peak;
  }
  return Buffer.from(out).toString('base64');
}

/** The attachment of a voice message: Ogg/Opus bytes with `duration_secs` and `waveform`. */
export function voiceMessageAttachment(voice: VoiceNote): AttachmentBuilder {
  return new AttachmentBuilder(voice.oggOpus, { name: VOICE_MESSAGE_FILE_NAME }).setDuration(voice.durationSec).setWaveform(encodeWaveform(voice.waveform));
}

/** The text shown with a reply; errors get a warning sign. */
function displayText(reply: OutboundReply, text: string | undefined): string | undefined {
  const clean = text?.trim();
  if (!clean) return undefined;
  return reply.kind === 'error' ? `⚠️ ${clean}` : clean;
}

/** Sends text chunks; the buttons go on the last one. Returns the last message sent. */
async function sendText(surface: Surface, text: string | undefined, components: OutgoingMessage['components'], ephemeral: boolean): Promise<SentMessage | undefined> {
  const chunks = text ? splitText(text) : [];
  if (chunks.length === 0 && components) chunks.push('​');
  let last: SentMessage | undefined;
  for (const [i, chunk] of chunks.entries()) {
    const message: OutgoingMessage = { content: chunk };
    if (components && i === chunks.length - 1) message.components = components;
    last = await surface.send(message, ephemeral);
  }
  return last;
}

/** How a voice reply went out. */
export type VoiceDelivery = 'voice-message' | 'audio-file' | 'none';

/**
 * Sends a voice note as a voice message; falls back to a plain audio attachment when voice
 * messages are not allowed (50173, 50013, or no SEND_VOICE_MESSAGES in the interaction's
 * `app_permissions`), then to nothing when files are not allowed either.
 */
export async function sendVoice(surface: Surface, voice: VoiceNote, ephemeral: boolean, log: Logger): Promise<VoiceDelivery> {
  if (voice.oggOpus.length > surface.uploadLimitBytes) {
    log.warn({ sizeBytes: voice.oggOpus.length, limitBytes: surface.uploadLimitBytes }, 'voice note larger than the upload limit');
    return 'none';
  }
  if (surface.allows('voice')) {
    try {
      await surface.send({ files: [voiceMessageAttachment(voice)], voice: true }, ephemeral);
      return 'voice-message';
    } catch (err) {
      if (!hasDiscordCode(err, DiscordErrorCode.CannotSendVoiceMessagesInThisChannel, DiscordErrorCode.MissingPermissions)) throw err;
      log.warn({ code: err.code }, 'voice message refused; sending an audio file');
    }
  } else {
    log.info('no Send Voice Messages permission here; sending an audio file');
  }
  if (surface.allows('attach')) {
    try {
      await surface.send({ files: [new AttachmentBuilder(voice.oggOpus, { name: 'voice-reply.ogg', description: 'Voice reply (Ogg/Opus)' })] }, ephemeral);
      return 'audio-file';
    } catch (err) {
      if (!hasDiscordCode(err, DiscordErrorCode.MissingPermissions, DiscordErrorCode.RequestEntityTooLarge)) throw err;
      log.warn({ code: err.code }, 'audio file refused; replying with text only');
    }
  }
  return 'none';
}

/**
 * A document reply (the `/export` archive): the text, then the file as an attachment in its own
 * message. Over the surface's upload limit (10 MiB, or the interaction's `attachment_size_limit`)
 * or without Attach Files, the text says why the file is missing.
 */
async function sendDocument(
  surface: Surface,
  reply: OutboundReply,
  components: OutgoingMessage['components'],
  ephemeral: boolean,
  log: Logger,
): Promise<SentMessage | undefined> {
  const document = reply.document!;
  const text = displayText(reply, reply.text);
  let problem: string | undefined;
  if (document.bytes.length > surface.uploadLimitBytes) problem = documentTooLargeText(document.bytes.length, surface.uploadLimitBytes, 'Discord');
  else if (!surface.allows('attach')) problem = "I can't attach files here. Ask a server admin to allow me Attach Files, or send the command in a direct message.";
  if (problem) {
    log.warn({ sizeBytes: document.bytes.length, limitBytes: surface.uploadLimitBytes }, 'document not sent');
    return sendText(surface, [text, problem].filter(Boolean).join('\n\n'), components, ephemeral);
  }
  const lastText = await sendText(surface, text, components, ephemeral);
  await surface.send({ files: [new AttachmentBuilder(document.bytes, { name: document.fileName })] }, ephemeral);
  return lastText;
}

/**
 * Renders one reply on a surface. Text first (it answers a deferred interaction in place), then
 * the voice note in its own message, as Discord requires of voice messages. When no audio can be
 * sent, the text is sent with a notice instead, so the user always gets an answer.
 *
 * @param ownerId the user the reply's buttons are for
 * @param ephemeralByDefault whether errors are private (true for interactions)
 */
export async function deliverReply(surface: Surface, reply: OutboundReply, ownerId: string, log: Logger): Promise<{ lastText?: SentMessage; voice?: VoiceDelivery }> {
  const ephemeral = reply.ephemeral === true || reply.kind === 'error';
  const components = buttonRows(reply.buttons, ownerId);
  if (reply.document) {
    const lastText = await sendDocument(surface, reply, components, ephemeral, log);
    return lastText ? { lastText } : {};
  }
  if (!reply.voice) {
    const lastText = await sendText(surface, displayText(reply, reply.text), components, ephemeral);
    return lastText ? { lastText } : {};
  }
  const showText = reply.sendTextWithVoice !== false ? displayText(reply, reply.text) : reply.voiceLabel ? `-# ${reply.voiceLabel}` : undefined;
  const lastText = await sendText(surface, showText, components, ephemeral);
  const voice = await sendVoice(surface, reply.voice, ephemeral, log);
  if (voice === 'none') {
    const fallback = showText === displayText(reply, reply.text) && showText ? VOICE_UNDELIVERABLE_NOTICE : `${displayText(reply, reply.text) ?? ''}\n\n${VOICE_UNDELIVERABLE_NOTICE}`;
    await sendText(surface, fallback, undefined, ephemeral);
  }
  return lastText ? { lastText, voice } : { voice };
}
