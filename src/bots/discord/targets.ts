/**
 * Reply targets and the channel sender for Discord.
 *
 * - {@link InteractionSurface}: answers a deferred interaction. The first text edits the deferred
 *   response (PATCH /webhooks/{app}/{token}/messages/@original); the rest are follow-ups
 *   (POST /webhooks/{app}/{token}). The token lives 15 minutes; after that the surface falls back to
 *   the user's DMs. https://discord.com/developers/docs/interactions/receiving-and-responding
 * - {@link ChannelSurface}: sends to a channel (POST /channels/{id}/messages), used for DMs.
 * - {@link DirectMessageSender}: the engine's {@link ChannelSender}; opens the user's DM channel
 *   (POST /users/@me/channels, https://discord.com/developers/docs/resources/user#create-dm) and
 *   maps 50007/50278/10013 to {@link RecipientUnavailableError}.
 */
import {
  MessageFlags,
  PermissionFlagsBits,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
  type Client,
  type DMChannel,
  type InteractionReplyOptions,
  type Message,
} from 'discord.js';
import type { Logger } from '../../core/log.js';
import { RecipientUnavailableError, type ChannelSender, type ChatActivity, type OutboundReply, type ReplyTarget } from '../../core/types.js';
import { DEFAULT_UPLOAD_LIMIT_BYTES, DiscordErrorCode, deliverReply, hasDiscordCode, type OutgoingMessage, type SentMessage, type Surface } from './render.js';

/** Codes that mean a user cannot be messaged (blocked the bot, closed DMs, left every shared server, unknown). */
const UNREACHABLE_CODES = [DiscordErrorCode.CannotSendMessagesToThisUser, DiscordErrorCode.CannotSendMessagesNoMutualGuilds, DiscordErrorCode.UnknownUser];

/** Codes that mean an interaction token can no longer be used (expired after 15 minutes). */
const EXPIRED_TOKEN_CODES = [DiscordErrorCode.UnknownWebhook, DiscordErrorCode.InvalidWebhookToken];

/** Rethrows a Discord error that says the user is unreachable as a {@link RecipientUnavailableError}. */
function toRecipientError(err: unknown, userId: string): unknown {
  if (hasDiscordCode(err, ...UNREACHABLE_CODES)) return new RecipientUnavailableError('discord', userId, `${err.code} ${err.message}`);
  return err;
}

/** Sends to a DM channel. Ephemeral has no meaning there and is ignored. */
export class ChannelSurface implements Surface {
  readonly uploadLimitBytes = DEFAULT_UPLOAD_LIMIT_BYTES;

  constructor(
    private readonly channel: DMChannel,
    private readonly userId: string,
  ) {}

  async send(message: OutgoingMessage, _ephemeral: boolean): Promise<SentMessage> {
    let sent: Message;
    try {
      sent = await this.channel.send({
        ...(message.content !== undefined ? { content: message.content } : {}),
        ...(message.components ? { components: message.components } : {}),
        ...(message.files ? { files: message.files } : {}),
        ...(message.voice ? { flags: MessageFlags.IsVoiceMessage } : {}),
      });
    } catch (err) {
      throw toRecipientError(err, this.userId);
    }
    return { edit: async (text) => void (await sent.edit({ content: text })) };
  }

  allows(): boolean {
    return true;
  }
}

/** Opens (or reuses) the DM channel with a user. */
async function openDm(client: Client, userId: string): Promise<DMChannel> {
  try {
    return await client.users.createDM(userId);
  } catch (err) {
    throw toRecipientError(err, userId);
  }
}

/**
 * Answers an interaction that was deferred (`deferReply`, or `deferUpdate` for buttons). Ephemeral
 * replies on a public deferral delete the pending response and follow up privately.
 */
export class InteractionSurface implements Surface {
  /** `pending`: the deferred response still shows "thinking…"; `used`: it was edited or deleted. */
  private original: 'pending' | 'used';
  private fallback: ChannelSurface | undefined;
  readonly uploadLimitBytes: number;

  constructor(
    private readonly interaction: ChatInputCommandInteraction | ButtonInteraction,
    private readonly deferredEphemeral: boolean,
    private readonly client: Client,
    private readonly log: Logger,
    /** False for button presses acknowledged with `deferUpdate`: there is no response to edit. */
    hasPendingResponse: boolean,
  ) {
    this.original = hasPendingResponse ? 'pending' : 'used';
    this.uploadLimitBytes = interaction.attachmentSizeLimit || DEFAULT_UPLOAD_LIMIT_BYTES;
  }

  /** True while the deferred response has not been answered. */
  get pending(): boolean {
    return this.original === 'pending';
  }

  allows(capability: 'voice' | 'attach'): boolean {
    const permissions = this.interaction.appPermissions;
    if (!permissions) return true;
    return permissions.has(capability === 'voice' ? PermissionFlagsBits.SendVoiceMessages : PermissionFlagsBits.AttachFiles);
  }

  async send(message: OutgoingMessage, ephemeral: boolean): Promise<SentMessage> {
    if (this.fallback) return this.fallback.send(message, ephemeral);
    try {
      return await this.sendViaToken(message, ephemeral || this.deferredEphemeral);
    } catch (err) {
      if (!hasDiscordCode(err, ...EXPIRED_TOKEN_CODES)) throw err;
      this.log.warn({ code: err.code }, 'interaction token expired; continuing in DMs');
      this.fallback = new ChannelSurface(await openDm(this.client, this.interaction.user.id), this.interaction.user.id);
      return this.fallback.send(message, ephemeral);
    }
  }

  private async sendViaToken(message: OutgoingMessage, ephemeral: boolean): Promise<SentMessage> {
    const i = this.interaction;
    if (this.original === 'pending') {
      // A voice message cannot be an edit, and an edit cannot change ephemerality: remove the
      // pending response and follow up instead.
      if (message.voice || (ephemeral && !this.deferredEphemeral)) {
        this.original = 'used';
        await i.deleteReply();
      } else {
        this.original = 'used';
        await i.editReply({
          content: message.content ?? '',
          ...(message.components ? { components: message.components } : {}),
          ...(message.files ? { files: message.files } : {}),
        });
        return { edit: async (text) => void (await i.editReply({ content: text })) };
      }
    }
    const flags = (message.voice ? MessageFlags.IsVoiceMessage : 0) | (ephemeral ? MessageFlags.Ephemeral : 0);
    const options: InteractionReplyOptions = {
      ...(message.content !== undefined ? { content: message.content } : {}),
      ...(message.components ? { components: message.components } : {}),
      ...(message.files ? { files: message.files } : {}),
      ...(flags ? { flags: flags as InteractionReplyOptions['flags'] } : {}),
    };
    const sent = await i.followUp(options);
    return { edit: async (text) => void (await i.editReply({ message: sent.id, content: text })) };
  }

  /** Removes a deferred response nobody answered (the engine had nothing to say, e.g. a redelivery). */
  async settle(): Promise<void> {
    if (this.original !== 'pending') return;
    this.original = 'used';
    await this.interaction.deleteReply().catch((err: unknown) => this.log.debug({ err }, 'could not delete the pending response'));
  }
}

/** A {@link ReplyTarget} over a {@link Surface}. */
export class SurfaceReplyTarget implements ReplyTarget {
  /** Number of replies rendered. */
  replies = 0;

  constructor(
    private readonly surface: Surface,
    private readonly ownerId: string,
    private readonly log: Logger,
    private readonly typing?: () => Promise<void>,
  ) {}

  /** Resolves a deferred interaction that got no answer (see {@link InteractionSurface.settle}). */
  async settle(): Promise<void> {
    if (this.surface instanceof InteractionSurface) await this.surface.settle();
  }

  async reply(reply: OutboundReply): Promise<void> {
    this.replies += 1;
    await deliverReply(this.surface, reply, this.ownerId, this.log);
  }

  async activity(_kind: ChatActivity): Promise<void> {
    if (!this.typing) return;
    try {
      await this.typing();
    } catch (err) {
      this.log.debug({ err }, 'typing indicator failed');
    }
  }

  async status(text: string): Promise<(text: string) => Promise<void>> {
    const sent = await this.surface.send({ content: text }, false);
    return async (next: string) => {
      try {
        await sent.edit(next);
      } catch (err) {
        this.log.warn({ err }, 'status message could not be edited');
      }
    };
  }
}

/**
 * The engine's sender for replies outside a turn (a clone finished, a broadcast). `chatId` is the
 * Discord user id; the reply goes to the user's DM channel.
 *
 * @throws RecipientUnavailableError when Discord answers 50007, 50278 or 10013
 */
export class DirectMessageSender implements ChannelSender {
  readonly channel = 'discord' as const;

  constructor(
    private readonly client: Client,
    private readonly log: Logger,
  ) {}

  async send(chatId: string, reply: OutboundReply): Promise<void> {
    const dm = await openDm(this.client, chatId);
    await deliverReply(new ChannelSurface(dm, chatId), reply, chatId, this.log.child({ chatId }));
  }
}

export { openDm };
