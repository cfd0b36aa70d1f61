/**
 * A local Discord for tests: the REST API routes the bot uses, a gateway WebSocket and a CDN route,
 * speaking Discord's wire format so the real discord.js client can run against it.
 *
 * Follows the official documentation at https://discord.com/developers/docs :
 * - REST basics, auth header `Bot <token>`, JSON error bodies `{ code, message }`:
 *   https://discord.com/developers/docs/reference
 * - Rate limits (429 body `retry_after`/`global`, `Retry-After` and `X-RateLimit-*` headers):
 *   https://discord.com/developers/docs/topics/rate-limits
 * - Gateway (HELLO op 10, HEARTBEAT op 1 / ACK op 11, IDENTIFY op 2 → READY, GUILD_CREATE,
 *   INTERACTION_CREATE, MESSAGE_CREATE dispatches op 0 with sequence numbers; GET /gateway/bot):
 *   https://discord.com/developers/docs/events/gateway
 * - Application commands bulk overwrite (PUT /applications/{app}/commands and
 *   /applications/{app}/guilds/{guild}/commands):
 *   https://discord.com/developers/docs/interactions/application-commands
 * - Interactions: callback POST /interactions/{id}/{token}/callback within 3 s, token valid 15 min,
 *   PATCH/DELETE /webhooks/{app}/{token}/messages/@original, follow-ups POST /webhooks/{app}/{token}:
 *   https://discord.com/developers/docs/interactions/receiving-and-responding
 * - Messages (POST /channels/{id}/messages with JSON or multipart `payload_json` + `files[n]`,
 *   voice messages: flag IS_VOICE_MESSAGE 1 << 13, one audio attachment with `duration_secs` and
 *   base64 `waveform`, no content, not editable): https://discord.com/developers/docs/resources/message
 * - DM channels (POST /users/@me/channels): https://discord.com/developers/docs/resources/user
 * - JSON error codes (10003, 10015, 10062, 40060, 50006, 50007, 50013, 50159–50162, 50173):
 *   https://discord.com/developers/docs/topics/opcodes-and-status-codes#json
 *
 * Every REST call is recorded in {@link FakeDiscord.calls}; every created message in
 * {@link FakeDiscord.messages} with its uploaded files.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { snowflake } from './snowflake.js';

/** A Discord user object (https://discord.com/developers/docs/resources/user#user-object). */
export interface FakeUser {
  id: string;
  username: string;
  global_name: string | null;
  discriminator: string;
  avatar: string | null;
  bot?: boolean;
}

/** An attachment object (https://discord.com/developers/docs/resources/message#attachment-object). */
export interface FakeAttachment {
  id: string;
  filename: string;
  size: number;
  url: string;
  proxy_url: string;
  content_type?: string;
  duration_secs?: number;
  waveform?: string;
  ephemeral?: boolean;
}

/** A file part of a multipart upload (`files[n]`). */
export interface RecordedFile {
  field: string;
  filename: string;
  contentType: string;
  bytes: Buffer;
}

/** One REST call as the fake received and answered it. */
export interface RecordedCall {
  atMs: number;
  method: string;
  /** Path below `/api/v10`, e.g. `/channels/123/messages`. */
  path: string;
  query: Record<string, string>;
  authorization?: string;
  /** JSON body, or the parsed `payload_json` of a multipart body. */
  json?: unknown;
  files: RecordedFile[];
  status: number;
  /** The JSON error code when the fake answered with an error body. */
  errorCode?: number;
}

/** A message the bot created (channel message, interaction response or follow-up). */
export interface PostedMessage {
  id: string;
  channelId: string;
  via: 'channel' | 'original' | 'followup';
  interactionId?: string;
  atMs: number;
  /** The request body (JSON or `payload_json`) as sent, after the latest edit. */
  body: Record<string, unknown>;
  files: RecordedFile[];
  /** The message object the fake returned (https://discord.com/developers/docs/resources/message#message-object). */
  message: Record<string, unknown>;
  deleted?: boolean;
  edits: number;
}

/** What the fake knows about one dispatched interaction. */
export interface FakeInteraction {
  id: string;
  token: string;
  userId: string;
  channelId: string;
  dispatchedAtMs: number;
  ackedAtMs?: number;
  /** Interaction callback type: 4 reply, 5 deferred reply, 6 deferred update, 7 update. */
  ackType?: number;
  ackFlags?: number;
  originalMessageId?: string;
  payload: Record<string, unknown>;
}

export interface FakeDiscordOptions {
  token?: string;
  applicationId?: string;
  botUsername?: string;
  /** HELLO heartbeat interval in ms (Discord sends about 41250). */
  heartbeatIntervalMs?: number;
  /** Interaction acknowledgement deadline in ms (Discord: 3 s). */
  ackDeadlineMs?: number;
}

/** Permission bits (https://discord.com/developers/docs/topics/permissions#permissions-bitwise-permission-flags). */
export const PERMISSION = {
  VIEW_CHANNEL: 1n << 10n,
  SEND_MESSAGES: 1n << 11n,
  EMBED_LINKS: 1n << 14n,
  ATTACH_FILES: 1n << 15n,
  READ_MESSAGE_HISTORY: 1n << 16n,
  USE_APPLICATION_COMMANDS: 1n << 31n,
  SEND_VOICE_MESSAGES: 1n << 46n,
} as const;

/** The permissions a freshly invited bot has in a text channel in these tests. */
export const DEFAULT_APP_PERMISSIONS = Object.values(PERMISSION).reduce((a, b) => a | b, 0n);

/** Message flags (https://discord.com/developers/docs/resources/message#message-object-message-flags). */
export const MESSAGE_FLAG = { EPHEMERAL: 1 << 6, LOADING: 1 << 7, IS_VOICE_MESSAGE: 1 << 13 } as const;

/** Application command option types (https://discord.com/developers/docs/interactions/application-commands#application-command-object-application-command-option-type). */
export const OPTION_TYPE = { STRING: 3, INTEGER: 4, BOOLEAN: 5, ATTACHMENT: 11 } as const;

interface RateLimitRule {
  method: string;
  path: RegExp;
  remaining: number;
  retryAfterSec: number;
  global: boolean;
}

interface Channel {
  id: string;
  type: number;
  guild_id?: string;
  name?: string;
  recipients?: FakeUser[];
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const INTERACTION_TOKEN_LIFETIME_MS = 15 * 60_000;

/** The fake Discord: start it, point discord.js at {@link FakeDiscord.apiBase}, drive it, inspect it. */
export class FakeDiscord {
  readonly token: string;
  readonly applicationId: string;
  readonly botUser: FakeUser;
  readonly guildId = snowflake();
  readonly guildChannelId = snowflake();
  readonly calls: RecordedCall[] = [];
  readonly messages: PostedMessage[] = [];
  /** Registered commands as last bulk-overwritten: key `global` or the guild id. */
  readonly registeredCommands = new Map<string, Array<Record<string, unknown>>>();
  readonly interactions = new Map<string, FakeInteraction>();
  /** Attachment ids fetched from the CDN route, in order. */
  readonly cdnHits: string[] = [];
  /** Payloads the gateway received from the client (IDENTIFY, heartbeats…). */
  readonly gatewayReceived: Array<{ op: number; d: unknown; atMs: number }> = [];

  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<WebSocket>();
  private readonly identified = new Set<WebSocket>();
  private sequence = 0;
  private origin = '';
  private readonly users = new Map<string, FakeUser>();
  private readonly channels = new Map<string, Channel>();
  private readonly dmChannelByUser = new Map<string, string>();
  private readonly hosted = new Map<string, { bytes: Buffer; contentType: string }>();
  private readonly rateLimits: RateLimitRule[] = [];
  private readonly appPermissions = new Map<string, bigint>();
  private readonly voiceRejected = new Set<string>();
  private readonly attachmentsRejected = new Set<string>();
  private readonly dmBlocked = new Set<string>();
  private readonly channelFailures = new Map<string, { status: number; code: number; message: string }>();
  private readonly expiredTokens = new Set<string>();
  private readonly heartbeatIntervalMs: number;
  private readonly ackDeadlineMs: number;
  private readonly listeners = new Set<() => void>();

  private constructor(options: FakeDiscordOptions) {
    this.token = options.token ?? `fake.${randomBytes(12).toString('base64url')}`;
    this.applicationId = options.applicationId ?? snowflake();
    this.botUser = { id: this.applicationId, username: options.botUsername ?? 'VoiceTwin', global_name: null, discriminator: '0', avatar: null, bot: true };
    this.users.set(this.botUser.id, this.botUser);
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 41_250;
    this.ackDeadlineMs = options.ackDeadlineMs ?? 3_000;
    this.channels.set(this.guildChannelId, { id: this.guildChannelId, type: 0, guild_id: this.guildId, name: 'general' });
    this.server = createServer((req, res) => void this.onHttp(req, res));
    this.wss = new WebSocketServer({ noServer: true });
    this.server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== '/gateway') {
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onGatewayConnection(ws, url));
    });
  }

  /** Starts the fake on 127.0.0.1 with a random port. */
  static async start(options: FakeDiscordOptions = {}): Promise<FakeDiscord> {
    const fake = new FakeDiscord(options);
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    const { port } = fake.server.address() as AddressInfo;
    fake.origin = `http://127.0.0.1:${port}`;
    return fake;
  }

  /** REST root to give discord.js (`rest.api`), like `https://discord.com/api`. */
  get apiBase(): string {
    return `${this.origin}/api`;
  }

  /** The gateway URL `/gateway/bot` hands out. */
  get gatewayUrl(): string {
    return `${this.origin.replace('http', 'ws')}/gateway`;
  }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---------------------------------------------------------------- test controls

  /** Adds a user the tests act as. */
  addUser(username: string): FakeUser {
    const user: FakeUser = { id: snowflake(), username, global_name: username[0]!.toUpperCase() + username.slice(1), discriminator: '0', avatar: null };
    this.users.set(user.id, user);
    return user;
  }

  /** The next `count` calls matching `method` and `path` (below /api/v10) get a 429. */
  rateLimit(method: string, path: RegExp, options: { count?: number; retryAfterSec?: number; global?: boolean } = {}): void {
    this.rateLimits.push({ method: method.toUpperCase(), path, remaining: options.count ?? 1, retryAfterSec: options.retryAfterSec ?? 0.5, global: options.global ?? false });
  }

  /** Sets the bot's permissions in a channel, as sent in `app_permissions` of interactions there. */
  setAppPermissions(channelId: string, permissions: bigint): void {
    this.appPermissions.set(channelId, permissions);
  }

  /** Voice messages to this channel fail with 50173 "Cannot send voice messages in this channel". */
  rejectVoiceMessages(channelId: string): void {
    this.voiceRejected.add(channelId);
  }

  /** Any upload to this channel fails with 50013 "Missing Permissions" (no ATTACH_FILES). */
  rejectAttachments(channelId: string): void {
    this.attachmentsRejected.add(channelId);
  }

  /** Messages to this user's DM channel fail with 50007 "Cannot send messages to this user". */
  blockDirectMessages(userId: string): void {
    this.dmBlocked.add(userId);
  }

  /**
   * Every message created in this channel (channel messages, not interaction responses) fails with
   * the given error after the request was read, e.g. `{ status: 400, code: 50035, message: 'Invalid Form Body' }`.
   */
  failMessagesIn(channelId: string, error: { status: number; code: number; message: string }): void {
    this.channelFailures.set(channelId, error);
  }

  /** The DM channel id between the bot and `userId` (created on first use). */
  dmChannelId(userId: string): string {
    let id = this.dmChannelByUser.get(userId);
    if (!id) {
      id = snowflake();
      this.dmChannelByUser.set(userId, id);
      this.channels.set(id, { id, type: 1, recipients: [this.userOrThrow(userId)] });
    }
    return id;
  }

  /**
   * Hosts bytes on the CDN route and returns the attachment object Discord would put in a message
   * or in `resolved.attachments`. `declaredSizeBytes` lets a test declare a size without sending it.
   */
  hostAttachment(
    bytes: Buffer,
    meta: { filename: string; contentType?: string; durationSec?: number; waveform?: string; declaredSizeBytes?: number; channelId?: string },
  ): FakeAttachment {
    const id = snowflake();
    const channelId = meta.channelId ?? this.guildChannelId;
    const contentType = meta.contentType ?? 'application/octet-stream';
    this.hosted.set(id, { bytes, contentType });
    const url = `${this.origin}/attachments/${channelId}/${id}/${encodeURIComponent(meta.filename)}?ex=${Math.floor(Date.now() / 1000 + 86_400).toString(16)}&is=0&hm=00`;
    const attachment: FakeAttachment = {
      id,
      filename: meta.filename,
      size: meta.declaredSizeBytes ?? bytes.length,
      url,
      proxy_url: url,
      content_type: contentType,
    };
    if (meta.durationSec !== undefined) attachment.duration_secs = meta.durationSec;
    if (meta.waveform !== undefined) attachment.waveform = meta.waveform;
    return attachment;
  }

  /** Ends an interaction token's life early (Discord: 15 minutes); webhook calls then get 401 50027. */
  expireInteractionToken(interactionId: string): void {
    this.expiredTokens.add(this.interactions.get(interactionId)?.token ?? '');
  }

  /** Waits until the client has identified on the gateway. */
  async waitForIdentify(timeoutMs = 10_000): Promise<void> {
    await this.waitFor(() => (this.identified.size > 0 ? true : undefined), timeoutMs, 'gateway IDENTIFY');
  }

  /**
   * Dispatches INTERACTION_CREATE for a slash command (type 2, APPLICATION_COMMAND) of a registered
   * command. `options` are the command's options (`{ name, type, value }`); attachment options
   * carry the attachment id as value and the attachment goes into `resolved.attachments`.
   */
  sendSlashCommand(params: {
    user: FakeUser;
    name: string;
    options?: Array<{ name: string; type: number; value: string | number | boolean }>;
    attachments?: FakeAttachment[];
    /** `guild` (default): in the guild text channel; `dm`: in the bot's DM with the user. */
    where?: 'guild' | 'dm';
  }): FakeInteraction {
    const registered = this.findCommand(params.name);
    const where = params.where ?? 'guild';
    const data: Record<string, unknown> = { id: registered.id, name: params.name, type: 1 };
    if (where === 'guild') data.guild_id = this.guildId;
    if (params.options?.length) data.options = params.options;
    if (params.attachments?.length) {
      data.resolved = { attachments: Object.fromEntries(params.attachments.map((a) => [a.id, { ...a, ephemeral: true }])) };
    }
    return this.dispatchInteraction(2, params.user, where, data);
  }

  /**
   * Dispatches INTERACTION_CREATE for a button press (type 3, MESSAGE_COMPONENT, component type 2)
   * on a message the bot posted.
   */
  pressButton(params: { user: FakeUser; message: PostedMessage; customId: string }): FakeInteraction {
    const channel = this.channels.get(params.message.channelId);
    const where = channel?.type === 1 ? 'dm' : 'guild';
    const data = { custom_id: params.customId, component_type: 2 };
    return this.dispatchInteraction(3, params.user, where, data, params.message.message);
  }

  /**
   * Dispatches MESSAGE_CREATE for a direct message from `user` to the bot. With `voice`, the message
   * carries flag IS_VOICE_MESSAGE and the single attachment is a voice message. With `forwarded`,
   * the content and attachments arrive as a forward: a `message_reference` of type 1 (FORWARD), a
   * `message_snapshots` entry holding them, and flag HAS_SNAPSHOT (1 << 14) on the outer message
   * (https://discord.com/developers/docs/resources/message#message-reference-types).
   */
  sendDirectMessage(params: { user: FakeUser; content?: string; attachments?: FakeAttachment[]; voice?: boolean; forwarded?: boolean }): Record<string, unknown> {
    const channelId = this.dmChannelId(params.user.id);
    const inner = {
      content: params.content ?? '',
      attachments: params.attachments ?? [],
      flags: params.voice ? MESSAGE_FLAG.IS_VOICE_MESSAGE : 0,
    };
    const message: Record<string, unknown> = {
      id: snowflake(),
      channel_id: channelId,
      author: params.user,
      content: inner.content,
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments: inner.attachments,
      embeds: [],
      pinned: false,
      type: 0,
      flags: inner.flags,
      components: [],
      // MESSAGE_CREATE extra field (https://discord.com/developers/docs/events/gateway-events#message-create)
      channel_type: 1,
    };
    if (params.forwarded) {
      const sourceChannel = snowflake();
      Object.assign(message, {
        content: '',
        attachments: [],
        flags: 1 << 14,
        message_reference: { type: 1, message_id: snowflake(), channel_id: sourceChannel },
        message_snapshots: [{ message: { type: 0, ...inner, embeds: [], timestamp: new Date().toISOString(), edited_timestamp: null, mentions: [], mention_roles: [] } }],
      });
    }
    this.dispatch('MESSAGE_CREATE', message);
    return message;
  }

  /** Sends a gateway dispatch (op 0) with the next sequence number to every identified session. */
  dispatch(type: string, data: unknown): void {
    const payload = JSON.stringify({ op: 0, t: type, s: ++this.sequence, d: data });
    for (const ws of this.identified) ws.send(payload);
  }

  /** Resolves with the first truthy `probe()` result, re-checking on every recorded call. */
  async waitFor<T>(probe: () => T | undefined | false | null, timeoutMs = 10_000, what = 'condition'): Promise<T> {
    const first = probe();
    if (first) return first;
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const value = probe();
        if (value) {
          cleanup();
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`fake Discord: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const poll = setInterval(check, 50);
      const cleanup = (): void => {
        clearTimeout(timer);
        clearInterval(poll);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
    });
  }

  /** Messages created in answer to one interaction (original response first, then follow-ups). */
  messagesFor(interactionId: string): PostedMessage[] {
    return this.messages.filter((m) => m.interactionId === interactionId && !m.deleted);
  }

  /** Messages the bot posted in a channel through POST /channels/{id}/messages. */
  channelMessages(channelId: string): PostedMessage[] {
    return this.messages.filter((m) => m.channelId === channelId && m.via === 'channel' && !m.deleted);
  }

  // ---------------------------------------------------------------- gateway

  private onGatewayConnection(ws: WebSocket, url: URL): void {
    this.sockets.add(ws);
    ws.on('close', () => {
      this.sockets.delete(ws);
      this.identified.delete(ws);
    });
    if (url.searchParams.get('encoding') !== 'json' || url.searchParams.get('v') !== '10') {
      ws.close(4012, 'Invalid API version'); // https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-gateway-close-event-codes
      return;
    }
    ws.send(JSON.stringify({ op: 10, d: { heartbeat_interval: this.heartbeatIntervalMs }, s: null, t: null }));
    ws.on('message', (raw) => {
      let payload: { op: number; d: unknown };
      try {
        payload = JSON.parse(String(raw)) as { op: number; d: unknown };
      } catch {
        ws.close(4002, 'Error while decoding payload.');
        return;
      }
      this.gatewayReceived.push({ ...payload, atMs: Date.now() });
      if (payload.op === 1) {
        ws.send(JSON.stringify({ op: 11, d: null, s: null, t: null }));
      } else if (payload.op === 2) {
        this.onIdentify(ws, payload.d as { token?: string; intents?: number });
      } else if (payload.op === 6) {
        ws.close(4009, 'Session timed out'); // resume is not offered: the client re-identifies
      }
      this.notify();
    });
  }

  private onIdentify(ws: WebSocket, d: { token?: string; intents?: number }): void {
    const token = String(d.token ?? '').replace(/^Bot /, '');
    if (token !== this.token) {
      ws.close(4004, 'Authentication failed.');
      return;
    }
    this.identified.add(ws);
    const ready = {
      v: 10,
      user: { ...this.botUser, flags: 0, mfa_enabled: false, verified: true },
      guilds: [{ id: this.guildId, unavailable: true }],
      session_id: randomBytes(16).toString('hex'),
      resume_gateway_url: this.gatewayUrl,
      shard: [0, 1],
      application: { id: this.applicationId, flags: 0 },
      private_channels: [],
      presences: [],
      relationships: [],
      guild_join_requests: [],
      geo_ordered_rtc_regions: [],
      user_settings: {},
    };
    ws.send(JSON.stringify({ op: 0, t: 'READY', s: ++this.sequence, d: ready }));
    ws.send(JSON.stringify({ op: 0, t: 'GUILD_CREATE', s: ++this.sequence, d: this.guildPayload() }));
    this.notify();
  }

  private guildPayload(): Record<string, unknown> {
    const now = new Date().toISOString();
    return {
      id: this.guildId,
      name: 'VoiceTwin test server',
      icon: null,
      splash: null,
      discovery_splash: null,
      owner_id: snowflake(),
      afk_channel_id: null,
      afk_timeout: 300,
      verification_level: 0,
      default_message_notifications: 0,
      explicit_content_filter: 0,
      roles: [{ id: this.guildId, name: '@everyone', color: 0, hoist: false, position: 0, permissions: DEFAULT_APP_PERMISSIONS.toString(), managed: false, mentionable: false, flags: 0 }],
      emojis: [],
      features: [],
      mfa_level: 0,
      application_id: null,
      system_channel_id: null,
      system_channel_flags: 0,
      rules_channel_id: null,
      vanity_url_code: null,
      description: null,
      banner: null,
      premium_tier: 0,
      preferred_locale: 'en-US',
      public_updates_channel_id: null,
      nsfw_level: 0,
      stickers: [],
      premium_progress_bar_enabled: false,
      joined_at: now,
      large: false,
      unavailable: false,
      member_count: 2,
      voice_states: [],
      members: [{ user: this.botUser, roles: [], joined_at: now, deaf: false, mute: false, flags: 0 }],
      channels: [{ id: this.guildChannelId, type: 0, guild_id: this.guildId, name: 'general', position: 0, permission_overwrites: [], parent_id: null, nsfw: false, topic: null, last_message_id: null, rate_limit_per_user: 0 }],
      threads: [],
      presences: [],
      stage_instances: [],
      guild_scheduled_events: [],
      soundboard_sounds: [],
    };
  }

  private dispatchInteraction(
    type: 2 | 3,
    user: FakeUser,
    where: 'guild' | 'dm',
    data: Record<string, unknown>,
    message?: Record<string, unknown>,
  ): FakeInteraction {
    const id = snowflake();
    // Interaction tokens are opaque base64url strings (no characters that need escaping in a path).
    const token = Buffer.from(`interaction:${id}:${randomBytes(24).toString('hex')}`).toString('base64url');
    const channelId = where === 'guild' ? this.guildChannelId : this.dmChannelId(user.id);
    const permissions = this.appPermissions.get(channelId) ?? DEFAULT_APP_PERMISSIONS;
    const payload: Record<string, unknown> = {
      id,
      application_id: this.applicationId,
      type,
      data,
      channel_id: channelId,
      token,
      version: 1,
      app_permissions: permissions.toString(),
      locale: 'en-US',
      entitlements: [],
      attachment_size_limit: 10 * 1024 * 1024,
    };
    if (where === 'guild') {
      payload.guild_id = this.guildId;
      payload.guild = { id: this.guildId, locale: 'en-US', features: [] };
      payload.guild_locale = 'en-US';
      payload.channel = { id: channelId, type: 0, guild_id: this.guildId, name: 'general', permissions: DEFAULT_APP_PERMISSIONS.toString() };
      payload.member = {
        user,
        roles: [],
        premium_since: null,
        permissions: DEFAULT_APP_PERMISSIONS.toString(),
        pending: false,
        nick: null,
        mute: false,
        deaf: false,
        joined_at: new Date().toISOString(),
        flags: 0,
        avatar: null,
        communication_disabled_until: null,
      };
      payload.authorizing_integration_owners = { '0': this.guildId };
      payload.context = 0;
    } else {
      payload.user = user;
      payload.channel = { id: channelId, type: 1, recipients: [user], flags: 0 };
      payload.authorizing_integration_owners = { '0': this.guildId };
      payload.context = 1;
    }
    if (message) payload.message = message;
    const interaction: FakeInteraction = { id, token, userId: user.id, channelId, dispatchedAtMs: Date.now(), payload };
    this.interactions.set(id, interaction);
    this.dispatch('INTERACTION_CREATE', payload);
    return interaction;
  }

  private findCommand(name: string): Record<string, unknown> {
    for (const list of this.registeredCommands.values()) {
      const found = list.find((c) => c.name === name);
      if (found) return found;
    }
    throw new Error(`fake Discord: /${name} is not a registered command`);
  }

  // ---------------------------------------------------------------- HTTP

  private async onHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.origin);
    const body = await readBody(req);
    if (req.method === 'GET' && url.pathname.startsWith('/attachments/')) {
      this.serveCdn(url, res);
      return;
    }
    const match = /^\/api\/v(\d+)(\/.*)$/.exec(url.pathname);
    if (!match) {
      send(res, 404, { message: '404: Not Found', code: 0 });
      return;
    }
    const path = match[2]!.split('/').map((segment) => decodeURIComponent(segment)).join('/');
    const call: RecordedCall = {
      atMs: Date.now(),
      method: req.method ?? 'GET',
      path,
      query: Object.fromEntries(url.searchParams),
      files: [],
      status: 0,
    };
    if (typeof req.headers.authorization === 'string') call.authorization = req.headers.authorization;
    this.calls.push(call);
    try {
      if (match[1] !== '10') throw new ApiError(400, 50041, 'Invalid API version provided');
      await parseRequestBody(req, body, call);
      const limited = this.takeRateLimit(call.method, path);
      if (limited) {
        call.status = 429;
        const headers: Record<string, string> = {
          'retry-after': String(Math.ceil(limited.retryAfterSec)),
          'x-ratelimit-limit': '5',
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset': String((Date.now() + limited.retryAfterSec * 1000) / 1000),
          'x-ratelimit-reset-after': String(limited.retryAfterSec),
          'x-ratelimit-bucket': 'fakebucket' + path.split('/')[1],
          'x-ratelimit-scope': limited.global ? 'global' : 'user',
        };
        if (limited.global) headers['x-ratelimit-global'] = 'true';
        send(res, 429, { message: 'You are being rate limited.', retry_after: limited.retryAfterSec, global: limited.global }, headers);
        return;
      }
      const result = await this.route(call);
      call.status = result.status;
      send(res, result.status, result.body, { 'x-ratelimit-limit': '50', 'x-ratelimit-remaining': '49', 'x-ratelimit-reset-after': '1', 'x-ratelimit-bucket': 'fakebucket' + path.split('/')[1] });
    } catch (err) {
      if (err instanceof ApiError) {
        call.status = err.status;
        call.errorCode = err.code;
        send(res, err.status, { message: err.message, code: err.code });
      } else {
        call.status = 500;
        send(res, 500, { message: String(err), code: 0 });
      }
    } finally {
      this.notify();
    }
  }

  private serveCdn(url: URL, res: ServerResponse): void {
    const parts = url.pathname.split('/');
    const id = parts[3] ?? '';
    const hosted = this.hosted.get(id);
    this.cdnHits.push(id);
    this.notify();
    if (!hosted) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': hosted.contentType, 'content-length': String(hosted.bytes.length) }).end(hosted.bytes);
  }

  private takeRateLimit(method: string, path: string): RateLimitRule | undefined {
    const rule = this.rateLimits.find((r) => r.remaining > 0 && r.method === method && r.path.test(path));
    if (rule) rule.remaining -= 1;
    return rule;
  }

  private requireBot(call: RecordedCall): void {
    if (call.authorization !== `Bot ${this.token}`) throw new ApiError(401, 0, '401: Unauthorized');
  }

  private async route(call: RecordedCall): Promise<{ status: number; body?: unknown }> {
    const { method, path } = call;
    let m: RegExpExecArray | null;

    if (method === 'GET' && path === '/gateway/bot') {
      this.requireBot(call);
      return { status: 200, body: { url: this.gatewayUrl, shards: 1, session_start_limit: { total: 1000, remaining: 999, reset_after: 86_400_000, max_concurrency: 1 } } };
    }
    if (method === 'GET' && path === '/users/@me') {
      this.requireBot(call);
      return { status: 200, body: this.botUser };
    }
    if ((m = /^\/applications\/(\d+)(?:\/guilds\/(\d+))?\/commands$/.exec(path)) && method === 'PUT') {
      this.requireBot(call);
      if (m[1] !== this.applicationId) throw new ApiError(403, 50001, 'Missing Access');
      if (m[2] && m[2] !== this.guildId) throw new ApiError(403, 50001, 'Missing Access');
      const list = validateCommands(call.json);
      const stored = list.map((c) => ({ ...c, id: snowflake(), application_id: this.applicationId, version: snowflake(), ...(m![2] ? { guild_id: m![2] } : {}) }));
      this.registeredCommands.set(m[2] ?? 'global', stored);
      return { status: 200, body: stored };
    }
    if ((m = /^\/interactions\/(\d+)\/([^/]+)\/callback$/.exec(path)) && method === 'POST') {
      return this.interactionCallback(m[1]!, m[2]!, call);
    }
    if ((m = /^\/webhooks\/(\d+)\/([^/]+)\/messages\/(@original|\d+)$/.exec(path))) {
      const interaction = this.interactionForWebhook(m[1]!, m[2]!);
      if (method === 'PATCH') return this.editWebhookMessage(interaction, m[3]!, call);
      if (method === 'DELETE') return this.deleteWebhookMessage(interaction, m[3]!);
      if (method === 'GET') return { status: 200, body: this.webhookMessage(interaction, m[3]!).message };
    }
    if ((m = /^\/webhooks\/(\d+)\/([^/]+)$/.exec(path)) && method === 'POST') {
      const interaction = this.interactionForWebhook(m[1]!, m[2]!);
      if (!interaction.ackType) throw new ApiError(404, 10015, 'Unknown Webhook');
      const posted = this.createMessage(interaction.channelId, call, 'followup', interaction);
      return { status: 200, body: posted.message };
    }
    if ((m = /^\/channels\/(\d+)\/messages$/.exec(path)) && method === 'POST') {
      this.requireBot(call);
      const posted = this.createMessage(m[1]!, call, 'channel');
      return { status: 200, body: posted.message };
    }
    if ((m = /^\/channels\/(\d+)\/messages\/(\d+)$/.exec(path)) && method === 'PATCH') {
      this.requireBot(call);
      const posted = this.messages.find((p) => p.id === m![2] && p.channelId === m![1] && !p.deleted);
      if (!posted) throw new ApiError(404, 10008, 'Unknown Message');
      return { status: 200, body: this.applyEdit(posted, call).message };
    }
    if ((m = /^\/channels\/(\d+)\/typing$/.exec(path)) && method === 'POST') {
      this.requireBot(call);
      this.channelOrThrow(m[1]!);
      return { status: 204 };
    }
    if ((m = /^\/channels\/(\d+)$/.exec(path)) && method === 'GET') {
      this.requireBot(call);
      return { status: 200, body: this.channelObject(this.channelOrThrow(m[1]!)) };
    }
    if (path === '/users/@me/channels' && method === 'POST') {
      this.requireBot(call);
      const recipient = String((call.json as { recipient_id?: unknown } | undefined)?.recipient_id ?? '');
      if (!this.users.has(recipient)) throw new ApiError(400, 50035, 'Invalid Form Body');
      return { status: 200, body: this.channelObject(this.channelOrThrow(this.dmChannelId(recipient))) };
    }
    if ((m = /^\/users\/(\d+)$/.exec(path)) && method === 'GET') {
      this.requireBot(call);
      return { status: 200, body: this.userOrThrow(m[1]!, 10013) };
    }
    throw new ApiError(404, 0, `404: Not Found (${method} ${path})`);
  }

  private interactionCallback(id: string, token: string, call: RecordedCall): { status: number; body?: unknown } {
    const interaction = this.interactions.get(id);
    if (!interaction || interaction.token !== token) throw new ApiError(404, 10062, 'Unknown interaction');
    if (interaction.ackType) throw new ApiError(400, 40060, 'Interaction has already been acknowledged.');
    if (call.atMs - interaction.dispatchedAtMs > this.ackDeadlineMs) throw new ApiError(404, 10062, 'Unknown interaction');
    const body = (call.json ?? {}) as { type?: number; data?: Record<string, unknown> };
    if (![4, 5, 6, 7].includes(body.type ?? 0)) throw new ApiError(400, 50035, 'Invalid Form Body');
    interaction.ackedAtMs = call.atMs;
    interaction.ackType = body.type!;
    interaction.ackFlags = Number(body.data?.flags ?? 0);
    if (body.type === 4 || body.type === 5) {
      const data = body.data ?? {};
      const flags = Number(data.flags ?? 0) | (body.type === 5 ? MESSAGE_FLAG.LOADING : 0);
      const posted = this.storeMessage(interaction.channelId, 'original', { ...data, flags }, call.files, interaction);
      interaction.originalMessageId = posted.id;
    }
    if (call.query.with_response === 'true') {
      return { status: 200, body: { interaction: { id, type: interaction.payload.type, response_message_id: interaction.originalMessageId } } };
    }
    return { status: 204 };
  }

  private interactionForWebhook(applicationId: string, token: string): FakeInteraction {
    if (applicationId !== this.applicationId) throw new ApiError(404, 10015, 'Unknown Webhook');
    const interaction = [...this.interactions.values()].find((i) => i.token === token);
    if (!interaction) throw new ApiError(404, 10015, 'Unknown Webhook');
    if (this.expiredTokens.has(token) || Date.now() - interaction.dispatchedAtMs > INTERACTION_TOKEN_LIFETIME_MS) throw new ApiError(401, 50027, 'Invalid Webhook Token');
    return interaction;
  }

  private webhookMessage(interaction: FakeInteraction, ref: string): PostedMessage {
    const componentMessage = interaction.payload.message as { id: string } | undefined;
    const id = ref === '@original' ? (interaction.originalMessageId ?? componentMessage?.id) : ref;
    const posted = this.messages.find((p) => p.id === id && !p.deleted);
    if (!posted) throw new ApiError(404, 10008, 'Unknown Message');
    return posted;
  }

  private editWebhookMessage(interaction: FakeInteraction, ref: string, call: RecordedCall): { status: number; body?: unknown } {
    if (!interaction.ackType) throw new ApiError(404, 10015, 'Unknown Webhook');
    const posted = this.webhookMessage(interaction, ref);
    return { status: 200, body: this.applyEdit(posted, call).message };
  }

  private deleteWebhookMessage(interaction: FakeInteraction, ref: string): { status: number } {
    if (!interaction.ackType) throw new ApiError(404, 10015, 'Unknown Webhook');
    const posted = this.webhookMessage(interaction, ref);
    posted.deleted = true;
    return { status: 204 };
  }

  private applyEdit(posted: PostedMessage, call: RecordedCall): PostedMessage {
    const previousFlags = Number(posted.message.flags ?? 0);
    if (previousFlags & MESSAGE_FLAG.IS_VOICE_MESSAGE) throw new ApiError(400, 50162, 'Voice messages cannot be edited');
    const body = (call.json ?? {}) as Record<string, unknown>;
    if (typeof body.content === 'string' && body.content.length > 2000) throw new ApiError(400, 50035, 'Invalid Form Body: content must be 2000 or fewer in length.');
    if (call.files.length) this.checkUploadsAllowed(posted.channelId);
    // Editing a deferred response clears LOADING; only SUPPRESS_EMBEDS can be changed otherwise.
    const flags = (previousFlags & ~MESSAGE_FLAG.LOADING) | (Number(body.flags ?? 0) & (1 << 2));
    posted.body = { ...posted.body, ...body, flags };
    if (call.files.length || body.attachments) posted.files = call.files;
    posted.edits += 1;
    posted.message = this.messageObject(posted);
    return posted;
  }

  private createMessage(channelId: string, call: RecordedCall, via: 'channel' | 'followup', interaction?: FakeInteraction): PostedMessage {
    const channel = this.channelOrThrow(channelId);
    if (via === 'channel' && channel.type === 1) {
      const recipient = channel.recipients?.[0]?.id;
      if (recipient && this.dmBlocked.has(recipient)) throw new ApiError(403, 50007, 'Cannot send messages to this user');
    }
    const failure = this.channelFailures.get(channelId);
    if (failure) throw new ApiError(failure.status, failure.code, failure.message);
    const body = (call.json ?? {}) as Record<string, unknown>;
    validateMessageBody(body, call.files);
    if (call.files.length) this.checkUploadsAllowed(channelId);
    if (Number(body.flags ?? 0) & MESSAGE_FLAG.IS_VOICE_MESSAGE && this.voiceRejected.has(channelId)) {
      throw new ApiError(403, 50173, 'Cannot send voice messages in this channel');
    }
    return this.storeMessage(channelId, via, body, call.files, interaction);
  }

  private checkUploadsAllowed(channelId: string): void {
    if (this.attachmentsRejected.has(channelId)) throw new ApiError(403, 50013, 'Missing Permissions');
  }

  private storeMessage(channelId: string, via: PostedMessage['via'], body: Record<string, unknown>, files: RecordedFile[], interaction?: FakeInteraction): PostedMessage {
    const posted: PostedMessage = { id: snowflake(), channelId, via, atMs: Date.now(), body, files, message: {}, edits: 0 };
    if (interaction) posted.interactionId = interaction.id;
    posted.message = this.messageObject(posted);
    this.messages.push(posted);
    return posted;
  }

  private messageObject(posted: PostedMessage): Record<string, unknown> {
    const body = posted.body;
    const described = Array.isArray(body.attachments) ? (body.attachments as Array<Record<string, unknown>>) : [];
    const attachments = posted.files.map((file, index) => {
      const meta = described.find((d) => String(d.id) === String(index)) ?? {};
      const id = snowflake();
      this.hosted.set(id, { bytes: file.bytes, contentType: file.contentType });
      const url = `${this.origin}/attachments/${posted.channelId}/${id}/${encodeURIComponent(file.filename)}`;
      const out: Record<string, unknown> = { id, filename: file.filename, size: file.bytes.length, url, proxy_url: url, content_type: file.contentType };
      if (meta.duration_secs !== undefined) out.duration_secs = meta.duration_secs;
      if (meta.waveform !== undefined) out.waveform = meta.waveform;
      return out;
    });
    const message: Record<string, unknown> = {
      id: posted.id,
      channel_id: posted.channelId,
      author: this.botUser,
      content: typeof body.content === 'string' ? body.content : '',
      timestamp: new Date(posted.atMs).toISOString(),
      edited_timestamp: posted.edits ? new Date().toISOString() : null,
      tts: false,
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments,
      embeds: Array.isArray(body.embeds) ? body.embeds : [],
      pinned: false,
      type: posted.via === 'channel' ? 0 : 20,
      flags: Number(body.flags ?? 0),
      components: Array.isArray(body.components) ? body.components : [],
    };
    const channel = this.channels.get(posted.channelId);
    if (channel?.guild_id) message.guild_id = channel.guild_id;
    if (posted.via !== 'channel') {
      message.webhook_id = this.applicationId;
      message.application_id = this.applicationId;
    }
    return message;
  }

  private channelOrThrow(id: string): Channel {
    const channel = this.channels.get(id);
    if (!channel) throw new ApiError(404, 10003, 'Unknown Channel');
    return channel;
  }

  private channelObject(channel: Channel): Record<string, unknown> {
    if (channel.type === 1) return { id: channel.id, type: 1, last_message_id: null, flags: 0, recipients: channel.recipients ?? [] };
    return { id: channel.id, type: channel.type, guild_id: channel.guild_id, name: channel.name, position: 0, permission_overwrites: [], parent_id: null, nsfw: false };
  }

  private userOrThrow(id: string, code = 50035): FakeUser {
    const user = this.users.get(id);
    if (!user) throw new ApiError(code === 10013 ? 404 : 400, code, code === 10013 ? 'Unknown User' : 'Invalid Form Body');
    return user;
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Parses a JSON or multipart (`payload_json` + `files[n]`) body into the call record. */
async function parseRequestBody(req: IncomingMessage, body: Buffer, call: RecordedCall): Promise<void> {
  if (body.length === 0) return;
  const contentType = String(req.headers['content-type'] ?? '');
  if (contentType.startsWith('application/json')) {
    try {
      call.json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new ApiError(400, 50109, 'The request body contains invalid JSON.');
    }
    return;
  }
  if (contentType.startsWith('multipart/form-data')) {
    const form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
    for (const [field, value] of form.entries()) {
      if (field === 'payload_json' && typeof value === 'string') {
        call.json = JSON.parse(value);
      } else if (typeof value !== 'string') {
        if (!/^files\[\d+\]$/.test(field)) throw new ApiError(400, 50035, `Invalid Form Body: unexpected field ${field}`);
        call.files.push({ field, filename: value.name, contentType: value.type || 'application/octet-stream', bytes: Buffer.from(await value.arrayBuffer()) });
      }
    }
    call.files.sort((a, b) => Number(/\d+/.exec(a.field)![0]) - Number(/\d+/.exec(b.field)![0]));
    return;
  }
  throw new ApiError(400, 50035, `Invalid Form Body: unsupported content type ${contentType}`);
}

/** Checks a message body the way Discord does for create calls (empty message, length, voice-message rules). */
function validateMessageBody(body: Record<string, unknown>, files: RecordedFile[]): void {
  const content = typeof body.content === 'string' ? body.content : '';
  if (content.length > 2000) throw new ApiError(400, 50035, 'Invalid Form Body: content must be 2000 or fewer in length.');
  const hasComponents = Array.isArray(body.components) && body.components.length > 0;
  const hasEmbeds = Array.isArray(body.embeds) && body.embeds.length > 0;
  if (!content && files.length === 0 && !hasComponents && !hasEmbeds) throw new ApiError(400, 50006, 'Cannot send an empty message');
  if (Number(body.flags ?? 0) & MESSAGE_FLAG.IS_VOICE_MESSAGE) {
    if (content || hasEmbeds || hasComponents) throw new ApiError(400, 50159, 'Voice messages do not support additional content.');
    if (files.length !== 1) throw new ApiError(400, 50160, 'Voice messages must have a single audio attachment.');
    const meta = Array.isArray(body.attachments) ? (body.attachments as Array<Record<string, unknown>>)[0] : undefined;
    if (!meta || typeof meta.waveform !== 'string' || typeof meta.duration_secs !== 'number') {
      throw new ApiError(400, 50161, 'Voice messages must have supporting metadata.');
    }
  }
}

const COMMAND_NAME = /^[-_\p{L}\p{N}]{1,32}$/u;

/** Validates a bulk-overwrite body: ≤ 100 commands, names, descriptions ≤ 100, ≤ 25 options, required first. */
function validateCommands(json: unknown): Array<Record<string, unknown>> {
  if (!Array.isArray(json) || json.length > 100) throw new ApiError(400, 50035, 'Invalid Form Body');
  const names = new Set<string>();
  for (const command of json as Array<Record<string, unknown>>) {
    const name = String(command.name ?? '');
    if (!COMMAND_NAME.test(name) || name !== name.toLowerCase() || names.has(name)) throw new ApiError(400, 50035, `Invalid Form Body: name ${name}`);
    names.add(name);
    const description = String(command.description ?? '');
    if (description.length < 1 || description.length > 100) throw new ApiError(400, 50035, `Invalid Form Body: description of ${name}`);
    const options = (command.options ?? []) as Array<Record<string, unknown>>;
    if (options.length > 25) throw new ApiError(400, 50035, `Invalid Form Body: too many options on ${name}`);
    let optionalSeen = false;
    for (const option of options) {
      if (!COMMAND_NAME.test(String(option.name ?? ''))) throw new ApiError(400, 50035, `Invalid Form Body: option name on ${name}`);
      const d = String(option.description ?? '');
      if (d.length < 1 || d.length > 100) throw new ApiError(400, 50035, `Invalid Form Body: option description on ${name}`);
      if (option.required) {
        if (optionalSeen) throw new ApiError(400, 50035, `Invalid Form Body: required options must be placed before non-required options on ${name}`);
      } else optionalSeen = true;
      const choices = (option.choices ?? []) as unknown[];
      if (choices.length > 25) throw new ApiError(400, 50035, `Invalid Form Body: too many choices on ${name}`);
    }
  }
  return json as Array<Record<string, unknown>>;
}

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  if (status === 204 || body === undefined) {
    res.writeHead(status, headers).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(text);
}
