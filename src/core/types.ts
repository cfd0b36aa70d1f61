/**
 * Platform-neutral message types: one inbound type in, one reply type out (see DESIGN.md).
 * Adapters map their platform's update/interaction to an {@link InboundMessage} and render each
 * {@link OutboundReply}; the engine decides everything else.
 */

/**
 * A channel the engine can talk through. `console` is the CLI's interactive channel; `web` is the
 * HTTP API and web app (`src/http/`).
 */
export type Channel = 'telegram' | 'discord' | 'whatsapp' | 'console' | 'web';

/** Where to reach a user: the platform plus the platform's chat id (as a string). */
export interface ChatAddress {
  channel: Channel;
  /** Platform chat id: Telegram chat id, Discord channel id, WhatsApp chat id (`…@c.us`). */
  chatId: string;
}

/**
 * Where inbound audio can be fetched again by any process, as plain data: a platform file
 * reference (`telegram` file id, a Discord CDN URL) or a blob in the store (audio the platform
 * delivered as bytes, e.g. WhatsApp media, kept encrypted until the job has run).
 */
export type AudioRef =
  | { kind: 'platform'; channel: Channel; fileId?: string; url?: string }
  | { kind: 'blob'; blobKey: string };

/**
 * Audio attached to an inbound message. Adapters fill in what the platform tells *before*
 * downloading (`declaredSizeBytes`, `declaredDurationSec`) so the engine can refuse early, and give
 * either the bytes or a `download` function the engine calls only after those checks pass.
 */
export interface InboundAudio {
  /** The bytes, when the platform already delivered them. */
  bytes?: Buffer;
  /** Fetches the bytes; called at most once, after the size and duration checks. */
  download?: () => Promise<Buffer>;
  /**
   * A reference any process can fetch the bytes from (see {@link AudioRef}); what a queued job
   * carries instead of `bytes` and `download`, which do not survive serialisation.
   */
  ref?: AudioRef;
  /** Size in bytes as reported by the platform (Telegram `file_size`, Discord `size`). */
  declaredSizeBytes?: number;
  /** Duration in seconds as reported by the platform (Telegram `duration`, Discord `duration_secs`). */
  declaredDurationSec?: number;
  /** MIME type as reported by the platform; informative only, the container is sniffed from bytes. */
  declaredMime?: string;
  /** File name, if any; informative only. */
  fileName?: string;
  /** True when the platform marks it as a voice note (Telegram `voice`, WhatsApp `ptt`, Discord flag 8192). */
  isVoiceNote: boolean;
  /**
   * The platform's own download limit in bytes, when it has one (Telegram Bot API: 20 MB via the
   * public server, https://core.telegram.org/bots/api#getfile). The engine refuses larger files
   * before calling `download`.
   */
  platformMaxBytes?: number;
}

/** One message from a user, as every adapter maps it. */
export interface InboundMessage {
  /** Globally unique id of this inbound event, used to drop redeliveries, e.g. `telegram:update:123`. */
  id: string;
  channel: Channel;
  chatId: string;
  /** Platform user id as a string (Telegram user id, Discord user snowflake, WhatsApp id). */
  userId: string;
  /** Display name for greetings and voice names. */
  displayName?: string;
  /** Receive time, ms since the epoch. */
  receivedAtMs: number;
  /** Plain text (a text message, a caption, or the text option of a slash command). */
  text?: string;
  /** A command, already split by the adapter: `/style coaching` → `{ name: 'style', args: 'coaching' }`. */
  command?: { name: string; args: string };
  /** A button press: the `data` the engine put on an {@link ReplyButton}. */
  action?: string;
  audio?: InboundAudio;
  /** True when the platform marks the message as forwarded (never an enrollment sample). */
  forwarded?: boolean;
  /** BCP-47 language hint from the platform (Telegram `language_code`), optional. */
  languageCode?: string;
  /**
   * The person this message acts for, when the sender authenticated as someone known on another
   * channel (an API key created in a Telegram chat acts for `telegram:42`); default
   * `<channel>:<userId>`. Replies still go back through this message's channel.
   */
  personKey?: string;
}

/**
 * A voice note ready to send: Ogg/Opus mono bytes plus the metadata every platform wants.
 * Telegram `sendVoice` takes `duration`; Discord voice messages take `duration_secs` and a
 * base64 `waveform` (https://discord.com/developers/docs/resources/message#voice-messages);
 * WhatsApp wants `audio/ogg; codecs=opus`.
 */
export interface VoiceNote {
  /** Ogg container, Opus codec, mono. */
  oggOpus: Buffer;
  /** Exact duration in seconds, from the encoded stream. */
  durationSec: number;
  /** Output sample rate in Hz (Opus encodes at 48 kHz internally; this is the input rate signalled). */
  sampleRateHz: number;
  /** 256 amplitude points, 0–255, for Discord/WhatsApp waveform previews. */
  waveform: Uint8Array;
  mimeType: 'audio/ogg; codecs=opus';
}

/** A button under a reply; `data` comes back as {@link InboundMessage.action} (≤ 64 bytes, Telegram's limit). */
export interface ReplyButton {
  label: string;
  data: string;
}

/** What the engine wants sent back. Adapters render each field natively. */
export interface OutboundReply {
  /** Text to show. With `voice`, it is the transcript/caption (sent per the user's setting). */
  text?: string;
  voice?: VoiceNote;
  /** Rows of buttons (persona picker, consent and delete confirmations). */
  buttons?: ReplyButton[][];
  /** Private to the user where the platform supports it (Discord ephemeral). */
  ephemeral?: boolean;
  /** What kind of reply this is; adapters may style errors or statuses differently. */
  kind: 'answer' | 'info' | 'error' | 'status' | 'insight';
  /** Label shown with voice replies made by an approximate (offline) voice, e.g. "offline preview voice". */
  voiceLabel?: string;
  /** Whether to send `text` alongside `voice` (user setting); the engine sets it. */
  sendTextWithVoice?: boolean;
  /**
   * A file sent as a document (the `/export` archive), with `text` as its caption or a message
   * before it. Adapters refuse one above their platform's upload limit with a text saying so.
   */
  document?: OutboundDocument;
  /** For `kind: 'error'` replies to a user error: its stable code (`TEXT_TOO_LONG`, `NO_SPEECH`…). */
  code?: string;
  /**
   * Set on the answer of a chat turn whose voice was already delivered sentence by sentence
   * through the target's {@link ReplyTarget.stream}: the reply then has no `voice`, and `text` is
   * the whole reply text (without caption notes; `voiceLabel` carries the voice's label).
   */
  streamed?: StreamedAnswer;
}

/** How a streamed answer went (see {@link OutboundReply.streamed}). */
export interface StreamedAnswer {
  /** Audio chunks delivered (one per sentence). */
  chunks: number;
  /** Seconds of audio delivered. */
  durationSec: number;
  /** True when the client interrupted it (`ReplyStream.signal` aborted) before the end. */
  interrupted: boolean;
}

/** One sentence of a streamed answer, synthesised: an Ogg/Opus voice note of its own. */
export interface VoiceChunk {
  /** 0-based position in the answer. */
  index: number;
  /** The sentence spoken. */
  text: string;
  voice: VoiceNote;
}

/**
 * Incremental delivery of a chat turn, offered by reply targets that can play an answer while it
 * is being made (the realtime WebSocket). The engine then streams the chat model, synthesises
 * each sentence as soon as it is complete, and hands each one's audio over in order, while the
 * model is still writing; the turn is stored like any other.
 */
export interface ReplyStream {
  /** Aborted when the client interrupts: the model is stopped and no further audio is made or delivered. */
  readonly signal: AbortSignal;
  /** What the user said in a voice turn: partial hypotheses (`final` false) when the recogniser makes them, then the final text. */
  transcript(text: string, final: boolean): void;
  /** Reply text as the chat model writes it (the authoritative whole text comes with the final answer). */
  textDelta(delta: string): void;
  /** One sentence's audio, in order; may wait while the client is slow to read (backpressure). */
  audio(chunk: VoiceChunk): Promise<void>;
}

/** A file attached to a reply. */
export interface OutboundDocument {
  bytes: Buffer;
  /** File name shown to the user, e.g. `voicetwin-export-2026-01-31.zip`. */
  fileName: string;
  /** MIME type, e.g. `application/zip`. */
  mimeType: string;
}

/**
 * The text an adapter sends instead of a document larger than its platform allows.
 * @param sizeBytes the document's size
 * @param limitBytes the platform's limit
 * @param platform the platform's name as users know it
 */
export function documentTooLargeText(sizeBytes: number, limitBytes: number, platform: string): string {
  const mb = (n: number): string => `${(n / 1_000_000).toFixed(1)} MB`;
  return `Your file is ${mb(sizeBytes)}, more than the ${mb(limitBytes)} ${platform} lets me send, so I could not attach it.`;
}

/** A chat action shown while the engine works (Telegram `sendChatAction`, WhatsApp "recording…"). */
export type ChatActivity = 'typing' | 'record_voice' | 'upload_voice';

/**
 * How the engine answers the message it is handling. Adapters implement it per inbound message.
 * `status` creates a message that can be edited as work progresses (clone progress).
 */
export interface ReplyTarget {
  reply(reply: OutboundReply): Promise<void>;
  /** Show an activity indicator; best effort, never throws. */
  activity(kind: ChatActivity): Promise<void>;
  /** Send a status message and return a function that edits it in place. */
  status(text: string): Promise<(text: string) => Promise<void>>;
  /**
   * True when this target calls the outbox's `beforeDispatch()` right before each platform request
   * (so the outbox records a part at the last moment before it leaves).
   */
  readonly reportsDispatch?: boolean;
  /** Present when the target can take a chat answer as it is made (see {@link ReplyStream}). */
  readonly stream?: ReplyStream;
  /**
   * Called once when the message this target answers is completely handled (its job finished, or
   * failed for good): resolve a deferred interaction, clear a "recording…" presence.
   */
  settle?(): Promise<void>;
}

/**
 * Sends replies outside the handling of an inbound message (a clone finished in the background,
 * a broadcast). Adapters register one per channel with the engine.
 */
export interface ChannelSender {
  readonly channel: Channel;
  send(chatId: string, reply: OutboundReply): Promise<void>;
  /**
   * A full {@link ReplyTarget} for a chat, built from plain data (chat actions and editable status
   * messages included), so a job can answer from any process; absent when the channel can only
   * `send` outside a live interaction.
   */
  target?(chatId: string): ReplyTarget;
}

/**
 * Fetches the bytes of an {@link AudioRef} of a channel (getFile + download, a CDN URL…).
 * `declaredSizeBytes` is the size the platform announced, when known (a larger body is refused).
 */
export type MediaFetcher = (ref: Extract<AudioRef, { kind: 'platform' }>, declaredSizeBytes?: number) => Promise<Buffer>;

/** A command the engine understands, for command menus (Telegram `setMyCommands`, Discord slash commands). */
export interface CommandInfo {
  /** Lower-case name without the slash, e.g. `enroll`. */
  name: string;
  /** One line, ≤ 100 characters (Discord's and Telegram's limit). */
  description: string;
  /** Usage of the argument, e.g. `<name>` for `style`; absent when the command takes none. */
  args?: string;
  /** Only operators may run it (e.g. `broadcast`). */
  operatorOnly?: boolean;
}

/**
 * The conversation engine as adapters see it. One inbound message in, replies out through the
 * {@link ReplyTarget}; replies outside a turn (a finished clone, a broadcast) go through the
 * {@link ChannelSender} each adapter registers.
 */
export interface ConversationEngine {
  /**
   * Handles one inbound message to completion (all replies sent). Never throws for user errors:
   * they are rendered as `kind: 'error'` replies; unexpected errors are logged and answered with a
   * short apology. Messages of one user are processed in order, different users concurrently.
   */
  handle(message: InboundMessage, target: ReplyTarget): Promise<void>;
  /**
   * Accepts a message for durable processing: resolves once it is stored as a job (so the adapter
   * may acknowledge it to the platform), before it is processed. With no job queue configured it
   * handles the message to completion like {@link handle}. `target` is used when this process runs
   * the job; a job run elsewhere, or after a restart, answers through the channel's sender.
   * @returns false when the message id was seen before (a redelivery), true otherwise
   * @throws Error when the job cannot be stored (do not acknowledge the message then)
   */
  submit(message: InboundMessage, target?: ReplyTarget): Promise<boolean>;
  /** Registers how to reach users of a channel outside a turn. */
  registerSender(sender: ChannelSender): void;
  /** Registers how to fetch a channel's {@link AudioRef}s. */
  registerMediaFetcher(channel: Channel, fetcher: MediaFetcher): void;
  /** Commands for menus, in display order. */
  readonly commands: readonly CommandInfo[];
}

/**
 * Thrown by a {@link ChannelSender} when the recipient can no longer be reached (Telegram 403
 * "bot was blocked by the user", Discord 50007 "Cannot send messages to this user").
 */
export class RecipientUnavailableError extends Error {
  override readonly name = 'RecipientUnavailableError';
  constructor(
    readonly channel: Channel,
    readonly chatId: string,
    readonly reason: string,
  ) {
    super(`${channel}:${chatId} unreachable: ${reason}`);
  }
}

/**
 * A platform webhook as the HTTP server mounts it (`src/http/`): the adapter says where, how to
 * authenticate a request from its headers alone (checked before the body is read), how large a
 * body may be, and how to handle the parsed JSON body.
 */
export interface WebhookRoute {
  /** Which adapter owns it, for logs (`telegram`). */
  channel: Channel;
  /** Absolute path, e.g. `/telegram`; answered for POST only. */
  path: string;
  /** Largest body accepted, bytes; a larger one is answered 413 without being read. */
  bodyLimitBytes: number;
  /** True when the headers carry the right secret (compared in constant time); false → 401. */
  authorize(headers: Readonly<Record<string, string | string[] | undefined>>): boolean;
  /**
   * Handles one request's parsed JSON body; resolves once the request may be acknowledged (200),
   * i.e. its update is stored as a job. Throwing answers 500 so the platform delivers it again.
   */
  handle(body: unknown): Promise<void>;
}
