/**
 * WhatsApp adapter over whatsapp-web.js (an unofficial WhatsApp Web client, https://wwebjs.dev/):
 * maps received messages to {@link InboundMessage}s for the engine and renders its
 * {@link OutboundReply}s as WhatsApp messages — voice notes as push-to-talk (`ptt`) bubbles.
 * It maps; the engine decides. See docs/whatsapp.md for linking, the session and the risks.
 */
import type { Message } from 'whatsapp-web.js';
import type { Logger } from '../../core/log.js';
import {
  RecipientUnavailableError,
  type ChannelSender,
  type ChatActivity,
  type ConversationEngine,
  type InboundMessage,
  type OutboundReply,
  type ReplyTarget,
} from '../../core/types.js';
import { createWhatsAppClient, secureWhatsAppFiles, whatsAppPaths, type WhatsAppChatLike, type WhatsAppClientLike } from './client.js';
import { WhatsAppConnection, type ReconnectBackoff, type WhatsAppConnectionState } from './connection.js';
import { DEFAULT_COMMAND_PREFIXES, mapWhatsAppMessage } from './mapping.js';
import { DEFAULT_MIN_SEND_INTERVAL_MS, SendPacer } from './pacing.js';
import { ChatNotFoundError, PendingChoices, WhatsAppReplySender } from './replies.js';

export type { WhatsAppClientLike, WhatsAppChatLike } from './client.js';
export { createWhatsAppClient, resolveChromiumPath, whatsAppPaths } from './client.js';
export type { WhatsAppConnectionState, ReconnectBackoff } from './connection.js';
export { mapWhatsAppMessage, parseCommand } from './mapping.js';
export { SendPacer, DEFAULT_MIN_SEND_INTERVAL_MS } from './pacing.js';
export { VOICE_NOTE_MIMETYPE } from './replies.js';

/** Options of {@link startWhatsAppBot}. */
export interface WhatsAppBotOptions {
  engine: ConversationEngine;
  logger: Logger;
  /** Data dir: the session lives in `<dataDir>/whatsapp-session`, the QR PNG at `<dataDir>/whatsapp-qr.png`. */
  dataDir: string;
  /** Chromium executable (else `PUPPETEER_EXECUTABLE_PATH`, else a standard path such as /usr/bin/chromium). */
  chromiumPath?: string;
  /** Command prefixes; default `['/', '!']`. */
  commandPrefixes?: string[];
  /** Minimum gap between two outbound messages of the process, ms; default 1500. */
  minSendIntervalMs?: number;
  /** A client to use instead of the real whatsapp-web.js one (tests). */
  client?: WhatsAppClientLike;
  /** Where the terminal QR code is printed; `null` prints none; default stdout. */
  qrOutput?: NodeJS.WritableStream | null;
  /** Reconnection backoff; default 2 s doubling up to 5 min. */
  reconnect?: ReconnectBackoff;
  /** Bound on one client start (browser launch + WhatsApp Web load), ms; default 120 000. */
  startupTimeoutMs?: number;
  /** How long a send outside a turn waits for the connection to be ready, ms; default 60 000. */
  sendReadyTimeoutMs?: number;
}

/** A running WhatsApp bot. */
export interface WhatsAppBot {
  /** Stops taking messages, waits (bounded) for turns in progress, closes the browser. */
  stop(): Promise<void>;
  /** Connection state (logged on every change). */
  readonly state: WhatsAppConnectionState;
  /** Calls `listener` on every state change; returns an unsubscribe function. */
  onStateChange(listener: (state: WhatsAppConnectionState) => void): () => void;
  /** Resolves when no received message is being handled (turns started before the call and since). */
  idle(): Promise<void>;
}

const APOLOGY = 'Sorry, something went wrong on my side. Please try again in a moment.';
const UNSUPPORTED_HINT = 'I can listen to voice notes and read text messages. Send me a voice note or a text.';
/** WhatsApp clears "recording…"/"typing…" after about 25 s, so it is refreshed every 20 s. */
const ACTIVITY_REFRESH_MS = 20_000;
/** No indicator stays on longer than this, ms. */
const ACTIVITY_MAX_MS = 5 * 60_000;

/**
 * Starts the WhatsApp bot: registers a {@link ChannelSender} for `whatsapp` with the engine, wires
 * the client's events and starts the client in the background (the QR code appears in the
 * terminal and as a PNG until the account is linked; a saved session is restored without one).
 * Resolves once started, not once connected: startup failures are logged and retried with backoff.
 *
 * @throws DependencyError when no `client` is given and no Chromium is found
 * @throws RangeError when `minSendIntervalMs` is negative
 */
export async function startWhatsAppBot(options: WhatsAppBotOptions): Promise<WhatsAppBot> {
  // The composition root may already have bound the channel; bind it once.
  const logger = options.logger.bindings().channel === 'whatsapp' ? options.logger : options.logger.child({ channel: 'whatsapp' });
  const paths = whatsAppPaths(options.dataDir);
  await secureWhatsAppFiles(options.dataDir, logger);
  const client = options.client ?? createWhatsAppClient({ dataDir: options.dataDir, chromiumPath: options.chromiumPath });
  const pacer = new SendPacer(options.minSendIntervalMs ?? DEFAULT_MIN_SEND_INTERVAL_MS);
  const choices = new PendingChoices();
  const sender = new WhatsAppReplySender(client, pacer, choices);
  const commandPrefixes = options.commandPrefixes ?? [...DEFAULT_COMMAND_PREFIXES];
  const knownCommands = new Set(options.engine.commands.map((command) => command.name.toLowerCase()));
  let botIds: ReadonlySet<string> = new Set<string>();

  const connection = new WhatsAppConnection(client, {
    logger,
    qrPngPath: paths.qrPngPath,
    sessionDir: paths.sessionDir,
    qrOutput: options.qrOutput,
    reconnect: options.reconnect,
    startupTimeoutMs: options.startupTimeoutMs,
    onReady: async () => {
      botIds = await resolveBotIds(client, logger);
    },
  });

  const sendReadyTimeoutMs = options.sendReadyTimeoutMs ?? 60_000;
  const whenReady = (): Promise<void> =>
    new Promise((resolve, reject) => {
      if (connection.state === 'ready') return resolve();
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new Error(`WhatsApp is not connected (state ${connection.state}); could not send within ${sendReadyTimeoutMs} ms`));
      }, sendReadyTimeoutMs);
      const unsubscribe = connection.onStateChange((state) => {
        if (state !== 'ready') return;
        clearTimeout(timer);
        unsubscribe();
        resolve();
      });
    });

  const channelSender: ChannelSender = {
    channel: 'whatsapp',
    async send(chatId: string, reply: OutboundReply): Promise<void> {
      await whenReady();
      try {
        await sender.send(chatId, reply);
      } catch (err) {
        if (err instanceof ChatNotFoundError) throw new RecipientUnavailableError('whatsapp', chatId, 'no such chat on WhatsApp');
        throw err;
      }
    },
  };
  options.engine.registerSender(channelSender);

  const inFlight = new Set<Promise<void>>();
  let accepting = true;

  const handleMessage = async (message: Message): Promise<void> => {
    const mapped = mapWhatsAppMessage(message, { botIds, commandPrefixes, knownCommands, nowMs: Date.now() });
    const log = logger.child({ chatId: message.from, updateId: message.id?._serialized });
    if (mapped.kind === 'ignore') {
      log.debug({ event: 'ignored', reason: mapped.reason, type: mapped.type }, `ignored WhatsApp message (${mapped.reason})`);
      return;
    }
    if (mapped.kind === 'unsupported') {
      log.info({ event: 'unsupported', type: mapped.type }, 'unsupported WhatsApp message type');
      await sender
        .send(mapped.chatId, { kind: 'info', text: UNSUPPORTED_HINT }, mapped.isGroup ? message.id._serialized : undefined)
        .catch((err: unknown) => log.error({ err }, 'could not answer an unsupported message'));
      return;
    }
    const inbound: InboundMessage = withChoice(mapped.message, choices);
    log.info(
      { event: 'inbound', kind: inbound.audio ? (inbound.audio.isVoiceNote ? 'voice_note' : 'audio') : inbound.command ? 'command' : inbound.action ? 'action' : 'text' },
      'WhatsApp message received',
    );
    const target = new WhatsAppTurnTarget(client, sender, inbound.chatId, mapped.isGroup ? message.id._serialized : undefined, log);
    // First sign of life before the job is stored; the engine settles the target when it is done.
    void target.activity(inbound.audio ? 'record_voice' : 'typing');
    try {
      await options.engine.submit(inbound, target);
    } catch (err) {
      log.error({ err }, 'WhatsApp message could not be accepted');
      await sender.send(inbound.chatId, { kind: 'error', text: APOLOGY }).catch((sendErr: unknown) => log.error({ err: sendErr }, 'could not send the apology'));
      await target.settle();
    }
  };

  const onMessage = (message: Message): void => {
    if (!accepting) return;
    const running = handleMessage(message).catch((err: unknown) => logger.error({ err }, 'WhatsApp message handling failed'));
    inFlight.add(running);
    void running.finally(() => inFlight.delete(running));
  };
  client.on('message', onMessage);
  connection.start();
  logger.info({ event: 'started', dataDir: options.dataDir, sessionDir: paths.sessionDir, minSendIntervalMs: pacer.minIntervalMs }, 'WhatsApp bot started');

  let stopping: Promise<void> | undefined;
  return {
    get state() {
      return connection.state;
    },
    onStateChange: (listener) => connection.onStateChange(listener),
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    stop() {
      stopping ??= (async () => {
        accepting = false;
        client.removeListener('message', onMessage);
        await Promise.race([Promise.allSettled([...inFlight]), new Promise((resolve) => setTimeout(resolve, 30_000).unref())]);
        await connection.stop();
      })();
      return stopping;
    },
  };
}

/** A numbered answer ("2") to buttons offered earlier becomes the button's `action`. */
function withChoice(message: InboundMessage, choices: PendingChoices): InboundMessage {
  if (message.text === undefined) return message;
  const action = choices.take(message.chatId, message.text);
  if (action === undefined) return message;
  const { text: _text, ...rest } = message;
  return { ...rest, action };
}

/** The linked account's ids: its phone-number id and, when WhatsApp Web knows it, its LID. */
async function resolveBotIds(client: WhatsAppClientLike, logger: Logger): Promise<ReadonlySet<string>> {
  const ids = new Set<string>();
  const wid = client.info?.wid?._serialized;
  if (wid) ids.add(wid);
  if (wid && client.getContactLidAndPhone) {
    try {
      for (const entry of await client.getContactLidAndPhone([wid])) {
        if (entry.lid) ids.add(entry.lid);
        if (entry.pn) ids.add(entry.pn);
      }
    } catch (err) {
      logger.debug({ err }, 'could not look up the linked account LID; group mentions by LID will be missed');
    }
  }
  return ids;
}

/** {@link ReplyTarget} for one received message. */
class WhatsAppTurnTarget implements ReplyTarget {
  private chat: WhatsAppChatLike | undefined;
  private activityKind: ChatActivity | undefined;
  private activityTimer: NodeJS.Timeout | undefined;
  private activityStartedAtMs = 0;

  constructor(
    private readonly client: WhatsAppClientLike,
    private readonly sender: WhatsAppReplySender,
    private readonly chatId: string,
    private readonly quotedMessageId: string | undefined,
    private readonly log: Logger,
  ) {}

  async reply(reply: OutboundReply): Promise<void> {
    this.stopActivityRefresh();
    this.activityKind = undefined;
    await this.sender.send(this.chatId, reply, this.quotedMessageId);
  }

  /** Shows "recording…" (voice activities) or "typing…", refreshed until a reply is sent. Never throws. */
  async activity(kind: ChatActivity): Promise<void> {
    // Already shown and being refreshed (the adapter's first sign of life): nothing to send.
    if (this.activityKind === kind && this.activityTimer) return;
    this.activityKind = kind;
    if (!this.activityTimer) {
      this.activityStartedAtMs = Date.now();
      this.activityTimer = setInterval(() => {
        if (Date.now() - this.activityStartedAtMs > ACTIVITY_MAX_MS) return this.stopActivityRefresh();
        void this.showActivity();
      }, ACTIVITY_REFRESH_MS);
      this.activityTimer.unref();
    }
    await this.showActivity();
  }

  async status(text: string): Promise<(text: string) => Promise<void>> {
    this.stopActivityRefresh();
    return this.sender.sendEditable(this.chatId, text);
  }

  /** Clears the presence when the message's job is over (called by the engine). */
  async settle(): Promise<void> {
    await this.finish();
  }

  /** Ends the turn: stops the indicator (clearing it if no reply did). */
  async finish(): Promise<void> {
    this.stopActivityRefresh();
    if (!this.activityKind) return;
    this.activityKind = undefined;
    try {
      await (await this.getChat())?.clearState();
    } catch (err) {
      this.log.debug({ err }, 'could not clear the chat state');
    }
  }

  private stopActivityRefresh(): void {
    if (this.activityTimer) clearInterval(this.activityTimer);
    this.activityTimer = undefined;
  }

  private async getChat(): Promise<WhatsAppChatLike | undefined> {
    this.chat ??= await this.client.getChatById(this.chatId);
    return this.chat;
  }

  private async showActivity(): Promise<void> {
    const kind = this.activityKind;
    if (!kind) return;
    try {
      const chat = await this.getChat();
      if (!chat) return;
      if (kind === 'typing') await chat.sendStateTyping();
      else await chat.sendStateRecording();
    } catch (err) {
      this.log.debug({ err, kind }, 'could not show the chat state');
    }
  }
}
