/**
 * A fake whatsapp-web.js client for adapter tests: an EventEmitter with the library's event names
 * (`qr`, `authenticated`, `auth_failure`, `ready`, `change_state`, `disconnected`, `message`;
 * whatsapp-web.js 1.34 `src/util/Constants.js` `Events`, https://docs.wwebjs.dev/Client.html) that
 * emits the library's own `Message` structures built from raw WhatsApp Web data (see raw.ts) and
 * records every `sendMessage(chatId, content, options)` call.
 *
 * The library's structures talk to WhatsApp Web through `client.pupPage.evaluate(pageFunction,
 * …args)`: `Message.downloadMedia()`, `Message.edit()`, `Chat.sendStateRecording()`,
 * `Chat.clearState()`. {@link FakeWhatsAppWebPage} runs those page functions unchanged against a
 * fake `window` offering the WhatsApp Web modules they use (`WAWebCollections.Msg`,
 * `WAWebDownloadManager.downloadManager.downloadAndMaybeDecrypt`, `WAWebMsgActionCapability`,
 * `window.WWebJS.*`), with arguments and results crossing a JSON boundary as in puppeteer. So the
 * library's real media-stage handling (`REUPLOADING` → no media, 404 → undefined) runs in tests.
 */
import { EventEmitter } from 'node:events';
import wwebjs from 'whatsapp-web.js';
import type { Message, MessageSendOptions } from 'whatsapp-web.js';
import type { WhatsAppChatLike, WhatsAppClientLike } from '../../../src/bots/whatsapp/client.js';
import { rawChat, rawIncomingMessage, rawSentMessage, wid, type IncomingMessageOptions } from './raw.js';

/** The library's structure classes (exported at run time; its typings declare them as interfaces only). */
type StructureClass<T> = new (client: unknown, data: Record<string, unknown>) => T;
const structures = wwebjs as unknown as {
  Message: StructureClass<Message>;
  PrivateChat: StructureClass<WhatsAppChatLike>;
  GroupChat: StructureClass<WhatsAppChatLike>;
};

/** The page's global, as page functions see it (they run with the fake `window` below). */
declare const window: { WWebJS: { getChat(id: string): Promise<unknown> } };

/** WhatsApp Web's media stages (`msg.mediaData.mediaStage`) the library distinguishes. */
export type MediaStage = 'RESOLVED' | 'INIT' | 'REUPLOADING' | 'ERROR_MISSING' | 'FETCHING';

interface PageMessageModel extends Record<string, unknown> {
  id: { _serialized: string; fromMe: boolean };
  type: string;
  mediaData?: { mediaStage: MediaStage };
}

/** One recorded chat-state change (`window.WWebJS.sendChatstate`). */
export interface ChatStateRecord {
  chatId: string;
  state: 'typing' | 'recording' | 'stop';
  atMs: number;
}

/** A page function as puppeteer takes it: a function or an expression string. */
type PageFunction = string | ((...args: never[]) => unknown);

/** The WhatsApp Web page, reduced to the modules the library's page functions use here. */
export class FakeWhatsAppWebPage {
  /** Message models by serialized id (`WAWebCollections.Msg`). */
  readonly messages = new Map<string, PageMessageModel>();
  /** Decrypted media by `directPath`, as the media CDN + decryption would yield it. */
  readonly media = new Map<string, Buffer>();
  /** Chats by id (`window.WWebJS.getChat`). */
  readonly chats = new Map<string, Record<string, unknown>>();
  readonly chatStates: ChatStateRecord[] = [];
  readonly edits: Array<{ msgId: string; content: string }> = [];
  /** How many page functions ran. */
  evaluateCalls = 0;
  /** How many media downloads were attempted (`downloadAndMaybeDecrypt` calls). */
  downloads = 0;
  private readonly window: Record<string, unknown>;

  constructor() {
    const modules: Record<string, unknown> = {
      WAWebCollections: {
        Msg: {
          get: (id: string) => this.messages.get(id),
          getMessagesById: async (ids: string[]) => ({ messages: ids.map((id) => this.messages.get(id)).filter(Boolean) }),
        },
      },
      WAWebDownloadManager: {
        downloadManager: {
          downloadAndMaybeDecrypt: async ({ directPath }: { directPath: string }) => {
            this.downloads += 1;
            const bytes = this.media.get(directPath);
            if (!bytes) throw Object.assign(new Error('media not found on CDN'), { status: 404 });
            return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
          },
        },
      },
      WAWebMsgActionCapability: {
        canEditText: (msg: PageMessageModel) => msg.id.fromMe && msg.type === 'chat',
        canEditCaption: () => false,
      },
    };
    this.window = {
      require: (name: string) => {
        if (!(name in modules)) throw new Error(`the fake WhatsApp Web page has no module ${name}`);
        return modules[name];
      },
      WWebJS: {
        arrayBufferToBase64Async: async (buffer: ArrayBuffer) => Buffer.from(buffer).toString('base64'),
        sendChatstate: (state: ChatStateRecord['state'], chatId: string) => {
          this.chatStates.push({ chatId, state, atMs: Date.now() });
        },
        getChat: async (chatId: string) => this.chats.get(chatId),
        editMessage: async (msg: PageMessageModel, content: string) => {
          this.edits.push({ msgId: msg.id._serialized, content });
          msg.body = content;
          return { serialize: () => ({ ...msg }) };
        },
      },
    };
  }

  /** Runs a page function against the fake `window`, with a JSON boundary like puppeteer's. */
  async evaluate(pageFunction: PageFunction, ...args: unknown[]): Promise<unknown> {
    this.evaluateCalls += 1;
    const source = typeof pageFunction === 'string' ? `() => (${pageFunction})` : pageFunction.toString();
    const compiled = new Function('window', `"use strict"; return (${source});`)(this.window) as (...a: unknown[]) => unknown;
    const result = await compiled(...args.map(jsonRoundTrip));
    return jsonRoundTrip(result);
  }
}

function jsonRoundTrip(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

/** One recorded `sendMessage` call. */
export interface SentRecord {
  chatId: string;
  /** The text, or the `MessageMedia` instance sent. */
  content: string | InstanceType<typeof wwebjs.MessageMedia>;
  options: MessageSendOptions;
  atMs: number;
  /** The serialized id of the resulting message. */
  messageId: string;
}

/** How {@link FakeWhatsAppClient.initialize} behaves. */
export type FakeStartup =
  /** A saved session: `authenticated` then `ready`, no QR. */
  | 'restored'
  /** No session: emits `qr`; call {@link FakeWhatsAppClient.link} to simulate the scan. */
  | 'qr'
  /** `initialize()` rejects as when WhatsApp Web cannot be reached. */
  | 'unreachable';

/** A fake whatsapp-web.js `Client`; see the file header. */
export class FakeWhatsAppClient extends EventEmitter implements WhatsAppClientLike {
  info: { wid: { _serialized: string }; pushname: string; platform: string } | null = null;
  readonly pupPage = new FakeWhatsAppWebPage();
  readonly sent: SentRecord[] = [];
  /** Chats for which `sendMessage` resolves to `undefined`, as the library does for unknown chats. */
  readonly unknownChats = new Set<string>();
  /**
   * When set, every `sendMessage` rejects with the error it returns, as when the page's
   * `window.WWebJS.sendMessage` throws inside puppeteer's evaluate.
   */
  sendFailure: (() => Error) | undefined;
  initializeCalls = 0;
  destroyCalls = 0;
  /** The QR payloads emitted, in order. */
  readonly qrPayloads: string[] = [];
  startup: FakeStartup;
  readonly botWid: string;
  readonly botLid: string;

  constructor(options: { botWid?: string; botLid?: string; startup?: FakeStartup } = {}) {
    super();
    this.botWid = options.botWid ?? '15550001111@c.us';
    this.botLid = options.botLid ?? '104010203040506@lid';
    this.startup = options.startup ?? 'restored';
  }

  async initialize(): Promise<void> {
    this.initializeCalls += 1;
    if (this.startup === 'unreachable') throw new Error('net::ERR_NAME_NOT_RESOLVED at https://web.whatsapp.com/');
    if (this.startup === 'qr') {
      // Same shape as the library's getQR(): ref, noise key, identity key, ADV secret, platform.
      const payload = `2@${Buffer.from(`ref-${this.initializeCalls}-${Date.now()}`).toString('base64')},AQID,BAUG,c2VjcmV0,WEB`;
      this.qrPayloads.push(payload);
      queueMicrotask(() => this.emit('qr', payload));
      return;
    }
    queueMicrotask(() => this.link());
  }

  /** Simulates a successful link/restore: `authenticated`, `change_state CONNECTED`, `ready`. */
  link(): void {
    this.emit('authenticated');
    this.info = { wid: wid(this.botWid), pushname: 'VoiceTwin', platform: 'web' };
    this.emit('ready');
    this.emit('change_state', 'CONNECTED');
  }

  async destroy(): Promise<void> {
    this.destroyCalls += 1;
    this.info = null;
  }

  async getContactLidAndPhone(userIds: string[]): Promise<Array<{ lid?: string; pn?: string }>> {
    return userIds.map((id) => (id === this.botWid ? { lid: this.botLid, pn: this.botWid } : { pn: id }));
  }

  async sendMessage(chatId: string, content: string | InstanceType<typeof wwebjs.MessageMedia>, options: MessageSendOptions = {}): Promise<Message | undefined> {
    if (!this.info) throw new TypeError("Cannot read properties of null (reading 'evaluate')");
    if (this.sendFailure) throw this.sendFailure();
    if (this.unknownChats.has(chatId)) return undefined;
    const isMedia = content instanceof wwebjs.MessageMedia;
    const type = isMedia ? (options.sendAudioAsVoice ? 'ptt' : 'audio') : 'chat';
    const raw = rawSentMessage({ chatId, botWid: this.botWid, type, body: isMedia ? '' : content });
    const message = new structures.Message(this, raw);
    this.pupPage.messages.set(message.id._serialized, raw as unknown as PageMessageModel);
    this.sent.push({ chatId, content, options: { ...options }, atMs: Date.now(), messageId: message.id._serialized });
    this.emit('message_create', message);
    return message;
  }

  async getChatById(chatId: string): Promise<WhatsAppChatLike | undefined> {
    // The same page function as whatsapp-web.js Client.getChatById.
    const raw = (await this.pupPage.evaluate(async (id: string) => await window.WWebJS.getChat(id), chatId)) as Record<string, unknown> | undefined;
    if (!raw) return undefined;
    return raw.isGroup ? new structures.GroupChat(this, raw) : new structures.PrivateChat(this, raw);
  }

  /**
   * Delivers a received message: registers its model (and media bytes, with the given media
   * stage) with the page, builds `new Message(client, raw)` and emits `message`.
   */
  receive(options: Omit<IncomingMessageOptions, 'botWid'>, media?: { bytes: Buffer; stage?: MediaStage; missing?: boolean }): Message {
    const raw = rawIncomingMessage({
      ...options,
      botWid: this.botWid,
      ...(media && !options.media ? { media: { sizeBytes: media.bytes.length, mimetype: 'audio/ogg; codecs=opus' } } : {}),
    });
    if (!this.pupPage.chats.has(options.chatId)) this.pupPage.chats.set(options.chatId, rawChat(options.chatId, options.notifyName));
    const message = new structures.Message(this, raw);
    const model: PageMessageModel = {
      ...(raw as PageMessageModel),
      ...(raw.directPath
        ? {
            mediaData: { mediaStage: media?.stage ?? 'RESOLVED' },
            downloadMedia: async () => {
              if (model.mediaData && model.mediaData.mediaStage === 'INIT') model.mediaData.mediaStage = 'RESOLVED';
            },
          }
        : {}),
    };
    this.pupPage.messages.set(message.id._serialized, model);
    if (media && !media.missing && typeof raw.directPath === 'string') this.pupPage.media.set(raw.directPath, media.bytes);
    this.emit('message', message);
    return message;
  }

  /** The sends to `chatId`, in order. */
  sentTo(chatId: string): SentRecord[] {
    return this.sent.filter((record) => record.chatId === chatId);
  }
}
