/**
 * The Discord adapter: a discord.js client that registers the bot's slash commands, maps
 * interactions and direct messages to {@link InboundMessage}s for the engine, and renders replies as
 * native voice messages (see `render.ts`).
 *
 * Gateway intents: GUILDS and DIRECT_MESSAGES (https://discord.com/developers/docs/events/gateway#gateway-intents).
 * MESSAGE_CONTENT is not needed: apps receive the content of DMs sent to them without it
 * (https://discord.com/developers/docs/events/gateway#message-content-intent). Interactions are
 * acknowledged with a deferral before any work, within Discord's 3 seconds
 * (https://discord.com/developers/docs/interactions/receiving-and-responding#responding-to-an-interaction).
 * Rate limits are handled by discord.js's REST queue (per-route buckets, `retry_after`).
 */
import { once } from 'node:events';
import {
  ChannelType,
  Client,
  Events,
  GatewayIntentBits,
  MessageFlags,
  Partials,
  RESTEvents,
  Routes,
  type Attachment,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
  type DMChannel,
  type Interaction,
  type Message,
} from 'discord.js';
import type { Logger } from '../../core/log.js';
import type { ConversationEngine, InboundMessage } from '../../core/types.js';
import { EPHEMERAL_COMMANDS, buildSlashCommands, commandContent } from './commands.js';
import { directMessageToInbound, displayNameOf, downloadAttachment, interactionInboundId } from './mapping.js';
import { DEFAULT_UPLOAD_LIMIT_BYTES, parseButtonCustomId, type Surface } from './render.js';
import { ChannelSurface, DirectMessageSender, InteractionSurface, SurfaceReplyTarget } from './targets.js';

export { buildSlashCommands } from './commands.js';

/** Options of {@link startDiscordBot}. */
export interface DiscordBotOptions {
  /** Bot token (Developer Portal → Bot → Token). Never logged. */
  token: string;
  /** Application id (Developer Portal → General Information), for command registration. */
  applicationId: string;
  /** Register commands in this server only (instant); global registration otherwise. */
  guildId?: string;
  /**
   * REST root, like `https://discord.com/api` (the default); the API version is appended. The
   * gateway URL comes from `GET /gateway/bot` on this root, so a proxy or a test server gets both.
   */
  apiBase?: string;
  engine: ConversationEngine;
  logger: Logger;
  /** How long {@link DiscordBot.stop} waits for turns in progress, ms (default 10 s). */
  drainTimeoutMs?: number;
  /** How long to wait for the gateway's READY, ms (default 30 s). */
  readyTimeoutMs?: number;
}

/** A running Discord bot. */
export interface DiscordBot {
  /** Stops taking new events, waits for turns in progress (bounded), then closes the gateway. */
  stop(): Promise<void>;
  client: Client;
}

const APOLOGY = 'Sorry, something went wrong on my side. Nothing you stored was lost; please try again in a moment.';

/**
 * Starts the Discord bot: registers the slash commands (bulk overwrite, guild or global), registers
 * the engine's Discord sender, logs in and resolves once the gateway session is ready.
 *
 * @throws Error when command registration fails (bad token → 401, wrong application id → 403…) or
 *   the gateway is not ready within `readyTimeoutMs`; the client is destroyed first.
 */
export async function startDiscordBot(options: DiscordBotOptions): Promise<DiscordBot> {
  const { engine } = options;
  const log = options.logger.bindings().channel === 'discord' ? options.logger : options.logger.child({ channel: 'discord' });
  const client = new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.DirectMessages],
    // DM channels are not cached; without the Channel partial discord.js drops their messages.
    partials: [Partials.Channel],
    allowedMentions: { parse: [] },
    ...(options.apiBase ? { rest: { api: options.apiBase } } : {}),
  });
  client.rest.setToken(options.token);
  client.rest.on(RESTEvents.RateLimited, (info) => {
    log.warn({ route: info.route, method: info.method, retryAfterMs: info.retryAfter, global: info.global, scope: info.scope }, 'Discord rate limit; request queued');
  });
  client.on(Events.Error, (err) => log.error({ err }, 'Discord client error'));
  client.on(Events.Warn, (message) => log.warn({ message }, 'Discord client warning'));
  client.on(Events.ShardDisconnect, (event, shardId) => log.warn({ code: event.code, shardId }, 'Discord gateway disconnected'));

  const commands = buildSlashCommands(engine.commands);
  try {
    const route = options.guildId ? Routes.applicationGuildCommands(options.applicationId, options.guildId) : Routes.applicationCommands(options.applicationId);
    await client.rest.put(route, { body: commands });
    log.info({ count: commands.length, scope: options.guildId ? 'guild' : 'global', guildId: options.guildId }, 'slash commands registered');
  } catch (err) {
    await client.destroy();
    throw new Error(`Discord: registering slash commands failed (${errorSummary(err)}). Check DISCORD_TOKEN, DISCORD_APPLICATION_ID and DISCORD_GUILD_ID.`, { cause: err });
  }

  const inFlight = new Set<Promise<void>>();
  let stopping = false;
  const track = (work: Promise<void>): void => {
    const p = work.catch((err: unknown) => log.error({ err }, 'Discord event handling failed'));
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  const download = (a: Attachment) => () => downloadAttachment(a.url, a.size);

  /**
   * Stores one inbound message as a job (after the interaction was deferred); the engine settles
   * the target when the job is over. If it cannot be stored, the user gets an apology at once.
   */
  const run = async (inbound: InboundMessage, surface: Surface, reqLog: Logger, typing?: () => Promise<void>): Promise<void> => {
    const target = new SurfaceReplyTarget(surface, inbound.userId, reqLog, typing);
    try {
      await engine.submit(inbound, target);
    } catch (err) {
      reqLog.error({ err }, 'message could not be accepted');
      await target.reply({ kind: 'error', text: APOLOGY }).catch((e: unknown) => reqLog.error({ err: e }, 'apology could not be sent'));
      await target.settle();
    }
  };

  const onCommand = async (interaction: ChatInputCommandInteraction, receivedAtMs: number): Promise<void> => {
    const ephemeral = EPHEMERAL_COMMANDS.has(interaction.commandName);
    const reqLog = log.child({ chatId: interaction.user.id, updateId: interactionInboundId(interaction.id), command: interaction.commandName });
    try {
      await interaction.deferReply(ephemeral ? { flags: MessageFlags.Ephemeral } : {});
    } catch (err) {
      reqLog.warn({ err: errorSummary(err) }, 'interaction could not be acknowledged; dropped');
      return;
    }
    const inbound: InboundMessage = { ...interactionInbound(interaction, receivedAtMs), ...commandContent(interaction, download) };
    await run(inbound, new InteractionSurface(interaction, ephemeral, client, reqLog, true), reqLog);
  };

  const onButton = async (interaction: ButtonInteraction, receivedAtMs: number): Promise<void> => {
    const reqLog = log.child({ chatId: interaction.user.id, updateId: interactionInboundId(interaction.id) });
    const parsed = parseButtonCustomId(interaction.customId);
    if (!parsed || parsed.ownerId !== interaction.user.id) {
      const content = parsed ? 'These buttons belong to someone else. Use the slash commands to get your own.' : 'This button has expired. Send /help to see what you can do.';
      await interaction.reply({ content, flags: MessageFlags.Ephemeral }).catch((err: unknown) => reqLog.warn({ err: errorSummary(err) }, 'button refusal not sent'));
      return;
    }
    const sourceEphemeral = interaction.message.flags.has(MessageFlags.Ephemeral);
    try {
      await interaction.deferUpdate();
    } catch (err) {
      reqLog.warn({ err: errorSummary(err) }, 'button press could not be acknowledged; dropped');
      return;
    }
    // One press, one answer: take the buttons off the message that carried them.
    await interaction.editReply({ components: [] }).catch((err: unknown) => reqLog.debug({ err: errorSummary(err) }, 'buttons not removed'));
    const inbound: InboundMessage = { ...interactionInbound(interaction, receivedAtMs), action: parsed.data };
    await run(inbound, new InteractionSurface(interaction, sourceEphemeral, client, reqLog, false), reqLog);
  };

  const onDirectMessage = async (message: Message, receivedAtMs: number): Promise<void> => {
    const channel = message.channel as DMChannel;
    const inbounds = directMessageToInbound(message, { nowMs: receivedAtMs, download });
    for (const inbound of inbounds) {
      const reqLog = log.child({ chatId: inbound.chatId, updateId: inbound.id });
      await run(inbound, new ChannelSurface(channel, inbound.userId), reqLog, () => channel.sendTyping());
    }
  };

  client.on(Events.InteractionCreate, (interaction: Interaction) => {
    if (stopping) return;
    const receivedAtMs = Date.now();
    if (interaction.isChatInputCommand()) track(onCommand(interaction, receivedAtMs));
    else if (interaction.isButton()) track(onButton(interaction, receivedAtMs));
  });
  client.on(Events.MessageCreate, (message: Message) => {
    if (stopping || message.author.bot || message.channel.type !== ChannelType.DM) return;
    track(onDirectMessage(message, Date.now()));
  });

  engine.registerSender(new DirectMessageSender(client, log));
  engine.registerMediaFetcher('discord', async (ref, declaredSizeBytes) => {
    if (!ref.url) throw new Error('a Discord audio reference needs the attachment URL');
    return downloadAttachment(ref.url, declaredSizeBytes ?? DEFAULT_UPLOAD_LIMIT_BYTES);
  });

  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  const ready = once(client, Events.ClientReady, { signal: AbortSignal.timeout(readyTimeoutMs) });
  try {
    await client.login(options.token);
    await ready;
  } catch (err) {
    await client.destroy();
    throw new Error(`Discord: the gateway session did not start (${errorSummary(err)}).`, { cause: err });
  }
  log.info({ user: client.user?.tag, applicationId: options.applicationId }, 'Discord bot ready');

  return {
    client,
    async stop() {
      stopping = true;
      const drain = Promise.allSettled([...inFlight]);
      const timeout = new Promise<void>((resolve) => setTimeout(resolve, options.drainTimeoutMs ?? 10_000).unref());
      await Promise.race([drain, timeout]);
      await client.destroy();
      log.info('Discord bot stopped');
    },
  };
}

/**
 * What the inbound message of a slash command or a button press says about its origin: the
 * interaction's id, the user (who is also the chat: replies go to them), their display name and
 * locale, and the arrival time (ms since the epoch).
 */
function interactionInbound(
  interaction: ChatInputCommandInteraction | ButtonInteraction,
  receivedAtMs: number,
): Pick<InboundMessage, 'id' | 'channel' | 'chatId' | 'userId' | 'displayName' | 'receivedAtMs' | 'languageCode'> {
  return {
    id: interactionInboundId(interaction.id),
    channel: 'discord',
    chatId: interaction.user.id,
    userId: interaction.user.id,
    displayName: displayNameOf(interaction.user, memberNickname(interaction)),
    receivedAtMs,
    languageCode: interaction.locale,
  };
}

/** The member's server nickname, from a cached member or the raw interaction member. */
function memberNickname(interaction: ChatInputCommandInteraction | ButtonInteraction): string | null {
  const member = interaction.member;
  if (!member) return null;
  return 'nickname' in member ? member.nickname : (member.nick ?? null);
}

/** A short description of an error for logs and messages (no request bodies, no token). */
function errorSummary(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && 'message' in err) return `${String((err as { code: unknown }).code)} ${String((err as { message: unknown }).message)}`;
  return err instanceof Error ? err.message : String(err);
}
