/**
 * A local Telegram Bot API server for tests, speaking the wire format of
 * https://core.telegram.org/bots/api (Bot API 9.x):
 *
 * - Requests: `POST|GET /bot<token>/<method>` with parameters as a query string,
 *   `application/x-www-form-urlencoded`, `application/json` or `multipart/form-data`
 *   ("Making requests"; multipart parsed with busboy). Uploaded files may be named directly by the field or referenced as
 *   `attach://<file_attach_name>` ("Sending files").
 * - Responses: `{ ok: true, result }` or `{ ok: false, error_code, description, parameters? }` with the
 *   HTTP status equal to `error_code`; `parameters.retry_after` on 429 ("ResponseParameters").
 * - `getUpdates` long polling with `offset` (an update is confirmed once `getUpdates` is called with a
 *   higher offset), `limit` (1–100), `timeout` (seconds) and `allowed_updates` (kept when omitted);
 *   409 while a webhook is set, and 409 "terminated by other getUpdates request" for an overlapping poll.
 * - `setWebhook`/`deleteWebhook`: with a webhook set, updates are POSTed to its URL with the
 *   `X-Telegram-Bot-Api-Secret-Token` header; an update not answered 2XX is delivered again when
 *   `webhookRetry` is set.
 * - `getFile` (400 "file is too big" above 20 MB) and the download at `GET /file/bot<token>/<file_path>`.
 * - `getMe`, `setMyCommands`/`getMyCommands` (command 1–32 chars of a–z, 0–9, _; description 1–256),
 *   `sendMessage` (1–4096 chars), `sendVoice`/`sendAudio` (caption ≤ 1024), `sendDocument` (an
 *   uploaded file of at most 50 MB, caption ≤ 1024; https://core.telegram.org/bots/api#senddocument), `sendChatAction`,
 *   `editMessageText` (400 "message is not modified"), `answerCallbackQuery`.
 *
 * Faults: any method can be made to fail next with a given error (429 with `retry_after`, 5xx,
 * 400 `VOICE_MESSAGES_FORBIDDEN`, 403 blocked). Every call is recorded with its parsed parameters,
 * uploaded files and a timestamp.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import busboy from 'busboy';
import type { CallbackQuery, Chat, File, Message, Update, User } from 'grammy/types';

/** An uploaded file part of a multipart request. */
export interface UploadedFile {
  bytes: Buffer;
  fileName: string;
  contentType: string;
}

/** One request the bot made, as the server understood it. */
export interface RecordedCall {
  method: string;
  /** Parameters with JSON-typed values decoded (`reply_markup`, `commands`, numbers stay strings in multipart). */
  params: Record<string, unknown>;
  /** Uploaded files by the parameter they fill (`voice`, `audio`, …), `attach://` references resolved. */
  files: Record<string, UploadedFile>;
  /** Content type of the request body (`multipart/form-data; boundary=…`, `application/json`, …). */
  contentType: string;
  /** When the request arrived (before its body was read), ms since the epoch. */
  atMs: number;
  /** HTTP status answered. */
  status: number;
  response: ApiResponse;
}

/** A Bot API error as sent on the wire. */
export interface ApiErrorSpec {
  error_code: number;
  description: string;
  parameters?: { retry_after?: number; migrate_to_chat_id?: number };
}

type ApiResponse = { ok: true; result: unknown } | ({ ok: false } & ApiErrorSpec);

/** Thrown inside handlers to answer with a Bot API error. */
class ApiFailure extends Error {
  constructor(readonly spec: ApiErrorSpec) {
    super(spec.description);
  }
}

const fail = (error_code: number, description: string, parameters?: ApiErrorSpec['parameters']): never => {
  throw new ApiFailure({ error_code, description, ...(parameters ? { parameters } : {}) });
};

/** Ready-made errors with the descriptions the real Bot API uses. */
export const TELEGRAM_ERRORS = {
  tooManyRequests: (retryAfterSec: number): ApiErrorSpec => ({
    error_code: 429,
    description: `Too Many Requests: retry after ${retryAfterSec}`,
    parameters: { retry_after: retryAfterSec },
  }),
  internal: (): ApiErrorSpec => ({ error_code: 500, description: 'Internal Server Error' }),
  badGateway: (): ApiErrorSpec => ({ error_code: 502, description: 'Bad Gateway' }),
  voiceForbidden: (): ApiErrorSpec => ({ error_code: 400, description: 'Bad Request: VOICE_MESSAGES_FORBIDDEN' }),
  blocked: (): ApiErrorSpec => ({ error_code: 403, description: 'Forbidden: bot was blocked by the user' }),
  chatNotFound: (): ApiErrorSpec => ({ error_code: 400, description: 'Bad Request: chat not found' }),
} as const;

/** The Bot API's download limit through the public server (https://core.telegram.org/bots/api#getfile). */
export const BOT_API_DOWNLOAD_LIMIT_BYTES = 20 * 1024 * 1024;

interface StoredFile {
  file_id: string;
  file_unique_id: string;
  file_path: string;
  bytes: Buffer;
  /** The size the server reports (defaults to the real size; tests may declare more). */
  file_size: number;
}

interface Poller {
  offset: number;
  limit: number;
  res: ServerResponse;
  call: RecordedCall;
  timer: NodeJS.Timeout;
  resolve: () => void;
}

/** Options of the fake. */
export interface FakeTelegramOptions {
  /** Bot token the server accepts. */
  token?: string;
  /** The bot's `username` in `getMe`. */
  botUsername?: string;
  /** The bot's user id. */
  botId?: number;
  /**
   * Repeat a webhook delivery that was not answered 2XX, as Telegram does ("In case of an
   * unsuccessful request, we will repeat the request and give up after a reasonable amount of
   * attempts", https://core.telegram.org/bots/api#setwebhook): every `intervalMs`, at most
   * `maxAttempts` times in all. Off by default (one attempt).
   */
  webhookRetry?: { intervalMs: number; maxAttempts: number };
}

/** Someone who talks to the bot. */
export interface FakeUser {
  id: number;
  first_name: string;
  last_name?: string;
  username?: string;
  language_code?: string;
}

/** Options shared by the update builders. */
export interface UpdateOptions {
  /** Sender; default {@link FakeTelegramServer.defaultUser}. */
  from?: FakeUser;
  /** Chat id; default the sender's private chat (`chat.id === from.id`). */
  chatId?: number;
  /** Marks the message as forwarded from another user (`forward_origin`). */
  forwarded?: boolean;
  caption?: string;
}

/** Options of audio update builders. */
export interface AudioUpdateOptions extends UpdateOptions {
  /** Duration the platform reports, seconds (integer on the wire). */
  durationSec: number;
  /** Size the platform reports; defaults to the real byte count. */
  declaredSizeBytes?: number;
  mimeType?: string;
  fileName?: string;
}

/** The local Bot API server. Start with {@link FakeTelegramServer.start}. */
export class FakeTelegramServer {
  readonly token: string;
  readonly botUser: User;
  readonly calls: RecordedCall[] = [];
  /** Webhook deliveries: the update id and the HTTP status the bot answered. */
  readonly webhookDeliveries: { updateId: number; status: number }[] = [];
  readonly defaultUser: FakeUser = { id: 1001, first_name: 'Ada', last_name: 'Lovelace', language_code: 'en' };

  private server!: Server;
  private port = 0;
  private nextUpdateId = 100;
  private nextFileNo = 1;
  private nextCallbackNo = 1;
  /** Unconfirmed updates, in update_id order. */
  private updates: Update[] = [];
  private allowedUpdates: string[] = [];
  private poller: Poller | undefined;
  private webhook: { url: string; secretToken?: string; allowedUpdates: string[] } | undefined;
  private webhookRoute: string | undefined;
  private readonly files = new Map<string, StoredFile>();
  private readonly filesByPath = new Map<string, StoredFile>();
  private readonly failures = new Map<string, ApiErrorSpec[]>();
  private readonly blockedChats = new Set<number>();
  private readonly voiceForbiddenChats = new Set<number>();
  private readonly chats = new Map<number, Chat>();
  /** Messages by chat id then message id (both the users' and the bot's). */
  private readonly messages = new Map<number, Map<number, Message>>();
  private readonly nextMessageId = new Map<number, number>();
  private readonly callbackQueries = new Map<string, { answered: boolean }>();
  private commands: unknown[] = [];
  private readonly listeners = new Set<() => void>();

  private readonly webhookRetry: FakeTelegramOptions['webhookRetry'];

  private constructor(options: FakeTelegramOptions) {
    this.webhookRetry = options.webhookRetry;
    this.token = options.token ?? `${options.botId ?? 7000001}:AAFakeTokenForTests_${randomBytes(6).toString('hex')}`;
    this.botUser = {
      id: options.botId ?? 7000001,
      is_bot: true,
      first_name: 'VoiceTwin',
      username: options.botUsername ?? 'VoiceTwinTestBot',
    };
  }

  /** Starts the server on a free port of 127.0.0.1. */
  static async start(options: FakeTelegramOptions = {}): Promise<FakeTelegramServer> {
    const fake = new FakeTelegramServer(options);
    fake.server = createServer((req, res) => void fake.route(req, res));
    fake.server.listen(0, '127.0.0.1');
    await once(fake.server, 'listening');
    fake.port = (fake.server.address() as AddressInfo).port;
    return fake;
  }

  /** The value for grammY's `apiRoot` / `TELEGRAM_API_ROOT`, e.g. `http://127.0.0.1:41234`. */
  get apiRoot(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The webhook currently set, if any. */
  get webhookInfo(): { url: string; secretToken?: string } | undefined {
    return this.webhook;
  }

  /**
   * Delivers webhook updates to `localUrl` instead of the public URL the bot registered, standing
   * in for the reverse proxy in front of a real deployment.
   */
  routeWebhookTo(localUrl: string): void {
    this.webhookRoute = localUrl;
  }

  /** Commands last set with `setMyCommands`. */
  get myCommands(): unknown[] {
    return this.commands;
  }

  /** Number of updates not yet confirmed by an offset. */
  get pendingUpdateCount(): number {
    return this.updates.length;
  }

  async close(): Promise<void> {
    if (this.poller) this.finishPoll(this.poller, []);
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close').catch(() => undefined);
  }

  // ---- fault injection -------------------------------------------------------------------------

  /** The next `times` calls of `method` fail with `error` (before any other checks). */
  failNext(method: string, error: ApiErrorSpec, times = 1): void {
    const queue = this.failures.get(method) ?? [];
    for (let i = 0; i < times; i++) queue.push(error);
    this.failures.set(method, queue);
  }

  /** Every send to `chatId` fails with 403 "bot was blocked by the user". */
  blockChat(chatId: number): void {
    this.blockedChats.add(chatId);
  }

  /** `sendVoice` to `chatId` fails with 400 `VOICE_MESSAGES_FORBIDDEN` (the user's privacy setting). */
  forbidVoiceMessages(chatId: number): void {
    this.voiceForbiddenChats.add(chatId);
  }

  // ---- observing calls -------------------------------------------------------------------------

  /** Recorded calls of `method`, oldest first. */
  callsTo(method: string): RecordedCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** Messages the bot successfully sent to a chat (sendMessage, sendVoice, sendAudio), oldest first. */
  botMessages(chatId: number): Message[] {
    return [...(this.messages.get(chatId)?.values() ?? [])].filter((m) => m.from?.id === this.botUser.id);
  }

  /**
   * Resolves with the first `count` recorded calls of `method` that satisfy `predicate`, waiting for
   * new calls as needed; rejects after `timeoutMs`.
   */
  async waitForCalls(
    method: string,
    count: number,
    options: { predicate?: (call: RecordedCall) => boolean; timeoutMs?: number } = {},
  ): Promise<RecordedCall[]> {
    const match = () => this.calls.filter((c) => c.method === method && (options.predicate?.(c) ?? true));
    await this.waitUntil(() => match().length >= count, options.timeoutMs ?? 15_000, `${count} × ${method}`);
    return match().slice(0, count);
  }

  /** Resolves with the first recorded call of `method` that satisfies `predicate` (waiting if needed). */
  async waitForCall(method: string, predicate?: (call: RecordedCall) => boolean, timeoutMs?: number): Promise<RecordedCall> {
    const [call] = await this.waitForCalls(method, 1, { predicate, timeoutMs });
    return call!;
  }

  /**
   * Resolves once `condition()` holds (re-checked after every call and update, and every 20 ms for
   * conditions on state outside the server); rejects after `timeoutMs`.
   */
  waitUntil(condition: () => boolean, timeoutMs = 15_000, what = 'condition'): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!condition()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`fake Telegram: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const poll = setInterval(check, 20);
      const cleanup = () => {
        clearTimeout(timer);
        clearInterval(poll);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
    });
  }

  // ---- update builders -------------------------------------------------------------------------

  /** Queues an update (assigning `update_id` unless given) and returns it. */
  enqueueUpdate(update: Omit<Update, 'update_id'> & { update_id?: number }): Update {
    const full = { ...update, update_id: update.update_id ?? this.nextUpdateId++ } as Update;
    this.nextUpdateId = Math.max(this.nextUpdateId, full.update_id + 1);
    if (this.webhook) {
      void this.deliverToWebhook(full);
    } else {
      this.updates.push(full);
      this.updates.sort((a, b) => a.update_id - b.update_id);
      this.servePoller();
    }
    this.notify();
    return full;
  }

  /** Queues the same update again, as Telegram does when it was not confirmed before a crash. */
  redeliver(update: Update): void {
    this.enqueueUpdate(update);
  }

  /** A user sends a text message. */
  sendText(text: string, options: UpdateOptions = {}): Update {
    return this.enqueueUpdate({ message: this.userMessage(options, { text }) });
  }

  /** A user sends a command, e.g. `/style coaching`; the `bot_command` entity is set as Telegram does. */
  sendCommand(commandText: string, options: UpdateOptions = {}): Update {
    const length = commandText.split(/\s/, 1)[0]!.length;
    return this.enqueueUpdate({
      message: this.userMessage(options, { text: commandText, entities: [{ type: 'bot_command', offset: 0, length }] }),
    });
  }

  /** A user records a voice note (`message.voice`, Ogg/Opus). */
  sendVoice(bytes: Buffer, options: AudioUpdateOptions): Update {
    const file = this.addFile(bytes, 'voice', 'oga', options.declaredSizeBytes);
    return this.enqueueUpdate({
      message: this.userMessage(options, {
        voice: {
          file_id: file.file_id,
          file_unique_id: file.file_unique_id,
          duration: Math.round(options.durationSec),
          mime_type: options.mimeType ?? 'audio/ogg',
          file_size: file.file_size,
        },
        ...(options.caption ? { caption: options.caption } : {}),
      }),
    });
  }

  /** A user sends a music/audio file (`message.audio`). */
  sendAudio(bytes: Buffer, options: AudioUpdateOptions): Update {
    const file = this.addFile(bytes, 'music', 'mp3', options.declaredSizeBytes);
    return this.enqueueUpdate({
      message: this.userMessage(options, {
        audio: {
          file_id: file.file_id,
          file_unique_id: file.file_unique_id,
          duration: Math.round(options.durationSec),
          mime_type: options.mimeType ?? 'audio/mpeg',
          file_name: options.fileName ?? 'clip.mp3',
          file_size: file.file_size,
        },
      }),
    });
  }

  /** A user records a round video message (`message.video_note`, MP4). */
  sendVideoNote(bytes: Buffer, options: AudioUpdateOptions): Update {
    const file = this.addFile(bytes, 'video_notes', 'mp4', options.declaredSizeBytes);
    return this.enqueueUpdate({
      message: this.userMessage(options, {
        video_note: {
          file_id: file.file_id,
          file_unique_id: file.file_unique_id,
          length: 384,
          duration: Math.round(options.durationSec),
          file_size: file.file_size,
        },
      }),
    });
  }

  /** A user sends a file as a document (`message.document`). */
  sendDocument(bytes: Buffer, options: UpdateOptions & { fileName: string; mimeType: string; declaredSizeBytes?: number }): Update {
    const ext = options.fileName.split('.').pop() ?? 'bin';
    const file = this.addFile(bytes, 'documents', ext, options.declaredSizeBytes);
    return this.enqueueUpdate({
      message: this.userMessage(options, {
        document: {
          file_id: file.file_id,
          file_unique_id: file.file_unique_id,
          file_name: options.fileName,
          mime_type: options.mimeType,
          file_size: file.file_size,
        },
        ...(options.caption ? { caption: options.caption } : {}),
      }),
    });
  }

  /** A user sends a sticker (content the bot cannot use). */
  sendSticker(options: UpdateOptions = {}): Update {
    const file = this.addFile(Buffer.from('RIFF....WEBP'), 'stickers', 'webp');
    return this.enqueueUpdate({
      message: this.userMessage(options, {
        sticker: {
          file_id: file.file_id,
          file_unique_id: file.file_unique_id,
          type: 'regular',
          width: 512,
          height: 512,
          is_animated: false,
          is_video: false,
          emoji: '👍',
          file_size: file.file_size,
        },
      }),
    });
  }

  /**
   * A user presses an inline keyboard button. `message` is the bot message carrying the keyboard
   * (default: the bot's latest message in the chat).
   */
  pressButton(data: string, options: UpdateOptions & { message?: Message } = {}): Update {
    const from = options.from ?? this.defaultUser;
    const chatId = options.chatId ?? from.id;
    const message = options.message ?? this.botMessages(chatId).at(-1);
    const id = `${from.id}${String(this.nextCallbackNo++).padStart(6, '0')}`;
    this.callbackQueries.set(id, { answered: false });
    const query: CallbackQuery = {
      id,
      from: this.toUser(from),
      chat_instance: `ci${chatId}`,
      data,
      ...(message ? { message } : {}),
    };
    return this.enqueueUpdate({ callback_query: query });
  }

  /** True when `answerCallbackQuery` was called for the query of `update`. */
  isCallbackAnswered(update: Update): boolean {
    const id = update.callback_query?.id;
    return id !== undefined && this.callbackQueries.get(id)?.answered === true;
  }

  /** Stores a file that `getFile` and the download URL serve; `declaredSizeBytes` overrides `file_size`. */
  addFile(bytes: Buffer, folder: string, ext: string, declaredSizeBytes?: number): StoredFile {
    const no = this.nextFileNo++;
    const file: StoredFile = {
      file_id: `AwACAgQAAxkBAAI${no}_${randomBytes(8).toString('base64url')}`,
      file_unique_id: `AgAD${no}${randomBytes(3).toString('hex')}`,
      file_path: `${folder}/file_${no}.${ext}`,
      bytes,
      file_size: declaredSizeBytes ?? bytes.length,
    };
    this.files.set(file.file_id, file);
    this.filesByPath.set(file.file_path, file);
    return file;
  }

  // ---- HTTP ------------------------------------------------------------------------------------

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const atMs = Date.now();
    const url = new URL(req.url ?? '/', this.apiRoot);
    const fileMatch = /^\/file\/bot([^/]+)\/(.+)$/.exec(url.pathname);
    if (fileMatch && (req.method === 'GET' || req.method === 'HEAD')) {
      this.serveFile(fileMatch[1]!, decodeURIComponent(fileMatch[2]!), res);
      return;
    }
    const match = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
    if (!match) {
      this.respond(res, { ok: false, error_code: 404, description: 'Not Found' });
      return;
    }
    const [, token, rawMethod] = match;
    const body = Buffer.concat(await req.toArray().then((chunks) => chunks as Buffer[]));
    const contentType = req.headers['content-type'] ?? '';
    if (token !== this.token) {
      this.respond(res, { ok: false, error_code: 401, description: 'Unauthorized' });
      return;
    }
    const method = rawMethod!;
    let params: Record<string, unknown> = {};
    let files: Record<string, UploadedFile> = {};
    let response: ApiResponse;
    try {
      ({ params, files } = await parseParameters(url, contentType, body));
      if (method === 'getUpdates') {
        // Long polls are recorded when they start; their result is written when they end.
        const call: RecordedCall = { method, params, files, contentType, atMs, status: 0, response: { ok: true, result: [] } };
        this.calls.push(call);
        this.notify();
        await this.getUpdates(params, res, call);
        return;
      }
      response = { ok: true, result: this.dispatch(method, params, files) };
    } catch (err) {
      response =
        err instanceof ApiFailure
          ? { ok: false, ...err.spec }
          : { ok: false, error_code: 400, description: `Bad Request: ${(err as Error).message}` };
    }
    const status = response.ok ? 200 : response.error_code;
    this.calls.push({ method, params, files, contentType, atMs, status, response });
    this.respond(res, response);
    this.notify();
  }

  private respond(res: ServerResponse, response: ApiResponse): void {
    if (res.writableEnded || res.destroyed) return;
    const status = response.ok ? 200 : response.error_code;
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(response));
  }

  private serveFile(token: string, filePath: string, res: ServerResponse): void {
    const file = token === this.token ? this.filesByPath.get(filePath) : undefined;
    this.calls.push({
      method: 'GET /file',
      params: { file_path: filePath },
      files: {},
      contentType: '',
      atMs: Date.now(),
      status: file ? 200 : 404,
      response: file ? { ok: true, result: filePath } : { ok: false, error_code: 404, description: 'Not Found' },
    });
    this.notify();
    if (!file) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, error_code: 404, description: 'Not Found' }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': file.bytes.length }).end(file.bytes);
  }

  private dispatch(method: string, params: Record<string, unknown>, files: Record<string, UploadedFile>): unknown {
    const injected = this.failures.get(method)?.shift();
    if (injected) throw new ApiFailure(injected);
    switch (method) {
      case 'getMe':
        return { ...this.botUser, can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false };
      case 'deleteWebhook':
        this.webhook = undefined;
        if (truthy(params.drop_pending_updates)) this.updates = [];
        return true;
      case 'setWebhook':
        return this.setWebhook(params);
      case 'getWebhookInfo':
        return { url: this.webhook?.url ?? '', has_custom_certificate: false, pending_update_count: this.updates.length };
      case 'setMyCommands':
        return this.setMyCommands(params);
      case 'getMyCommands':
        return this.commands;
      case 'getFile':
        return this.getFile(params);
      case 'sendMessage':
        return this.sendMessage(params);
      case 'sendVoice':
      case 'sendAudio':
        return this.sendMedia(method, params, files);
      case 'sendDocument':
        return this.sendBotDocument(params, files);
      case 'sendChatAction':
        return this.sendChatAction(params);
      case 'editMessageText':
        return this.editMessageText(params);
      case 'answerCallbackQuery':
        return this.answerCallbackQuery(params);
      default:
        return fail(404, 'Not Found');
    }
  }

  // ---- methods ---------------------------------------------------------------------------------

  private async getUpdates(params: Record<string, unknown>, res: ServerResponse, call: RecordedCall): Promise<void> {
    const injected = this.failures.get('getUpdates')?.shift();
    const finish = (response: ApiResponse) => {
      call.status = response.ok ? 200 : response.error_code;
      call.response = response;
      this.respond(res, response);
      this.notify();
    };
    if (injected) return finish({ ok: false, ...injected });
    if (this.webhook) {
      return finish({
        ok: false,
        error_code: 409,
        description: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
      });
    }
    const offset = toInt(params.offset) ?? 0;
    const limit = Math.min(100, Math.max(1, toInt(params.limit) ?? 100));
    const timeoutSec = Math.max(0, toInt(params.timeout) ?? 0);
    if (params.allowed_updates !== undefined) this.allowedUpdates = asArray(params.allowed_updates).map(String);
    // "An update is considered confirmed as soon as getUpdates is called with an offset higher than its update_id."
    if (offset > 0) this.updates = this.updates.filter((u) => u.update_id >= offset);
    if (this.poller) {
      this.finishPoll(this.poller, undefined, {
        ok: false,
        error_code: 409,
        description: 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
      });
    }
    const ready = this.deliverable(offset, limit);
    if (ready.length > 0 || timeoutSec === 0) return finish({ ok: true, result: ready });
    await new Promise<void>((resolve) => {
      const poller: Poller = {
        offset,
        limit,
        res,
        call,
        resolve,
        timer: setTimeout(() => this.finishPoll(poller, []), timeoutSec * 1000),
      };
      this.poller = poller;
      res.on('close', () => {
        // The client went away (aborted poll): forget it without confirming anything.
        if (this.poller === poller) this.poller = undefined;
        clearTimeout(poller.timer);
        resolve();
      });
    });
  }

  private deliverable(offset: number, limit: number): Update[] {
    const allowed = this.allowedUpdates;
    return this.updates
      .filter((u) => u.update_id >= offset)
      .filter((u) => allowed.length === 0 || Object.keys(u).some((k) => k !== 'update_id' && allowed.includes(k)))
      .slice(0, limit);
  }

  private servePoller(): void {
    const poller = this.poller;
    if (!poller) return;
    const ready = this.deliverable(poller.offset, poller.limit);
    if (ready.length > 0) this.finishPoll(poller, ready);
  }

  private finishPoll(poller: Poller, result: Update[] | undefined, error?: ApiResponse): void {
    if (this.poller === poller) this.poller = undefined;
    clearTimeout(poller.timer);
    const response: ApiResponse = error ?? { ok: true, result: result ?? [] };
    poller.call.response = response;
    poller.call.status = response.ok ? 200 : response.error_code;
    this.respond(poller.res, response);
    poller.resolve();
    this.notify();
  }

  private setWebhook(params: Record<string, unknown>): true {
    const url = String(params.url ?? '');
    if (url === '') {
      this.webhook = undefined;
      return true;
    }
    if (!/^https?:\/\//.test(url)) fail(400, 'Bad Request: bad webhook: An HTTPS URL must be provided for webhook');
    const secretToken = params.secret_token === undefined ? undefined : String(params.secret_token);
    if (secretToken !== undefined && !/^[A-Za-z0-9_-]{1,256}$/.test(secretToken)) {
      fail(400, 'Bad Request: secret token contains unallowed characters');
    }
    if (truthy(params.drop_pending_updates)) this.updates = [];
    this.webhook = { url, ...(secretToken ? { secretToken } : {}), allowedUpdates: asArray(params.allowed_updates ?? []).map(String) };
    const pending = this.updates;
    this.updates = [];
    for (const update of pending) void this.deliverToWebhook(update);
    return true;
  }

  /** POSTs one update to the webhook, as Telegram does (https://core.telegram.org/bots/api#setwebhook). */
  private async deliverToWebhook(update: Update, attempt = 1): Promise<void> {
    const hook = this.webhook;
    if (!hook) return;
    let status: number;
    try {
      const res = await fetch(this.webhookRoute ?? hook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(hook.secretToken ? { 'X-Telegram-Bot-Api-Secret-Token': hook.secretToken } : {}),
        },
        body: JSON.stringify(update),
      });
      status = res.status;
      await res.arrayBuffer();
    } catch {
      status = -1;
    }
    this.webhookDeliveries.push({ updateId: update.update_id, status });
    this.notify();
    const retry = this.webhookRetry;
    if ((status < 200 || status > 299) && retry && attempt < retry.maxAttempts) {
      setTimeout(() => void this.deliverToWebhook(update, attempt + 1), retry.intervalMs).unref();
    }
  }

  private setMyCommands(params: Record<string, unknown>): true {
    const commands = asArray(params.commands);
    if (commands.length > 100) fail(400, 'Bad Request: BOT_COMMANDS_TOO_MUCH');
    for (const entry of commands) {
      const { command, description } = (entry ?? {}) as { command?: unknown; description?: unknown };
      if (typeof command !== 'string' || !/^[a-z0-9_]{1,32}$/.test(command)) fail(400, 'Bad Request: BOT_COMMAND_INVALID');
      if (typeof description !== 'string' || description.length < 1 || description.length > 256) {
        fail(400, 'Bad Request: command description is invalid');
      }
    }
    this.commands = commands;
    return true;
  }

  private getFile(params: Record<string, unknown>): File {
    const file = this.files.get(String(params.file_id ?? ''));
    if (!file) return fail(400, 'Bad Request: invalid file_id');
    if (file.file_size > BOT_API_DOWNLOAD_LIMIT_BYTES) fail(400, 'Bad Request: file is too big');
    return { file_id: file.file_id, file_unique_id: file.file_unique_id, file_size: file.file_size, file_path: file.file_path };
  }

  private requireChat(params: Record<string, unknown>): Chat {
    const chatId = toInt(params.chat_id);
    if (chatId === undefined) return fail(400, 'Bad Request: chat_id is empty');
    const chat = this.chats.get(chatId);
    if (!chat) return fail(400, 'Bad Request: chat not found');
    if (this.blockedChats.has(chatId)) fail(403, 'Forbidden: bot was blocked by the user');
    return chat;
  }

  private replyMarkup(params: Record<string, unknown>): Message['reply_markup'] | undefined {
    const markup = params.reply_markup as { inline_keyboard?: { text?: string; callback_data?: string }[][] } | undefined;
    if (!markup) return undefined;
    for (const row of markup.inline_keyboard ?? []) {
      for (const button of row) {
        if (!button.text) fail(400, 'Bad Request: text buttons are unallowed in the inline keyboard');
        if (button.callback_data !== undefined && Buffer.byteLength(button.callback_data) > 64) {
          fail(400, 'Bad Request: BUTTON_DATA_INVALID');
        }
      }
    }
    return markup as Message['reply_markup'];
  }

  private sendMessage(params: Record<string, unknown>): Message {
    const chat = this.requireChat(params);
    const text = String(params.text ?? '');
    if (text.trim() === '') fail(400, 'Bad Request: message text is empty');
    if ([...text].length > 4096) fail(400, 'Bad Request: message is too long');
    const markup = this.replyMarkup(params);
    return this.storeBotMessage(chat, { text, ...(markup ? { reply_markup: markup } : {}) });
  }

  private sendMedia(method: 'sendVoice' | 'sendAudio', params: Record<string, unknown>, files: Record<string, UploadedFile>): Message {
    const chat = this.requireChat(params);
    const field = method === 'sendVoice' ? 'voice' : 'audio';
    if (method === 'sendVoice' && this.voiceForbiddenChats.has(chat.id)) fail(400, 'Bad Request: VOICE_MESSAGES_FORBIDDEN');
    const upload = files[field];
    if (!upload) {
      if (typeof params[field] === 'string') fail(400, 'Bad Request: wrong remote file identifier specified: Wrong string length');
      fail(400, `Bad Request: there is no ${field} in the request`);
    }
    const caption = params.caption === undefined ? undefined : String(params.caption);
    if (caption !== undefined && [...caption].length > 1024) fail(400, 'Bad Request: message caption is too long');
    const markup = this.replyMarkup(params);
    const stored = this.addFile(upload!.bytes, method === 'sendVoice' ? 'voice' : 'music', method === 'sendVoice' ? 'oga' : 'ogg');
    const duration = toInt(params.duration) ?? 0;
    const media =
      method === 'sendVoice'
        ? { voice: { file_id: stored.file_id, file_unique_id: stored.file_unique_id, duration, mime_type: 'audio/ogg', file_size: stored.file_size } }
        : {
            audio: {
              file_id: stored.file_id,
              file_unique_id: stored.file_unique_id,
              duration,
              mime_type: upload!.contentType || 'audio/ogg',
              file_name: upload!.fileName,
              ...(params.title ? { title: String(params.title) } : {}),
              file_size: stored.file_size,
            },
          };
    return this.storeBotMessage(chat, { ...media, ...(caption ? { caption } : {}), ...(markup ? { reply_markup: markup } : {}) });
  }

  private sendBotDocument(params: Record<string, unknown>, files: Record<string, UploadedFile>): Message {
    const chat = this.requireChat(params);
    const upload = files.document;
    if (!upload) fail(400, 'Bad Request: there is no document in the request');
    if (upload!.bytes.length > 50 * 1000 * 1000) fail(413, 'Request Entity Too Large');
    const caption = params.caption === undefined ? undefined : String(params.caption);
    if (caption !== undefined && [...caption].length > 1024) fail(400, 'Bad Request: message caption is too long');
    const markup = this.replyMarkup(params);
    const ext = upload!.fileName.split('.').pop() ?? 'bin';
    const stored = this.addFile(upload!.bytes, 'documents', ext);
    const document = {
      file_id: stored.file_id,
      file_unique_id: stored.file_unique_id,
      file_name: upload!.fileName,
      mime_type: upload!.contentType || 'application/octet-stream',
      file_size: stored.file_size,
    };
    return this.storeBotMessage(chat, { document, ...(caption ? { caption } : {}), ...(markup ? { reply_markup: markup } : {}) });
  }

  private sendChatAction(params: Record<string, unknown>): true {
    this.requireChat(params);
    const actions = [
      'typing',
      'upload_photo',
      'record_video',
      'upload_video',
      'record_voice',
      'upload_voice',
      'upload_document',
      'choose_sticker',
      'find_location',
      'record_video_note',
      'upload_video_note',
    ];
    if (!actions.includes(String(params.action))) fail(400, 'Bad Request: wrong parameter action in request');
    return true;
  }

  private editMessageText(params: Record<string, unknown>): Message {
    const chat = this.requireChat(params);
    const messageId = toInt(params.message_id);
    const message = messageId === undefined ? undefined : this.messages.get(chat.id)?.get(messageId);
    if (!message) return fail(400, 'Bad Request: message to edit not found');
    if (message.from?.id !== this.botUser.id) fail(400, "Bad Request: message can't be edited");
    const text = String(params.text ?? '');
    if (text.trim() === '') fail(400, 'Bad Request: message text is empty');
    if ([...text].length > 4096) fail(400, 'Bad Request: MESSAGE_TOO_LONG');
    const markup = this.replyMarkup(params);
    if (message.text === text && JSON.stringify(message.reply_markup) === JSON.stringify(markup)) {
      fail(
        400,
        'Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message',
      );
    }
    const edited = { ...message, text, edit_date: Math.floor(Date.now() / 1000) } as Message;
    if (markup) edited.reply_markup = markup;
    else delete edited.reply_markup;
    this.messages.get(chat.id)!.set(message.message_id, edited);
    return edited;
  }

  private answerCallbackQuery(params: Record<string, unknown>): true {
    const query = this.callbackQueries.get(String(params.callback_query_id ?? ''));
    if (!query || query.answered) fail(400, 'Bad Request: query is too old and response timeout expired or query ID is invalid');
    query!.answered = true;
    return true;
  }

  // ---- message store ---------------------------------------------------------------------------

  private toUser(user: FakeUser): User {
    return { is_bot: false, ...user };
  }

  private chatFor(from: FakeUser, chatId?: number): Chat {
    const id = chatId ?? from.id;
    let chat = this.chats.get(id);
    if (!chat) {
      chat =
        id > 0
          ? ({ id, type: 'private', first_name: from.first_name, ...(from.last_name ? { last_name: from.last_name } : {}) } as Chat)
          : ({ id, type: 'supergroup', title: 'Test group' } as Chat);
      this.chats.set(id, chat);
    }
    return chat;
  }

  private allocateMessageId(chatId: number): number {
    const id = this.nextMessageId.get(chatId) ?? 1;
    this.nextMessageId.set(chatId, id + 1);
    return id;
  }

  private userMessage(options: UpdateOptions, content: Record<string, unknown>): Message & Update.NonChannel {
    const from = options.from ?? this.defaultUser;
    const chat = this.chatFor(from, options.chatId);
    const date = Math.floor(Date.now() / 1000);
    const message = {
      message_id: this.allocateMessageId(chat.id),
      from: this.toUser(from),
      chat,
      date,
      ...(options.forwarded ? { forward_origin: { type: 'user', sender_user: { id: 2002, is_bot: false, first_name: 'Grace' }, date: date - 3600 } } : {}),
      ...content,
    } as unknown as Message & Update.NonChannel;
    this.storeMessage(chat.id, message);
    return message;
  }

  private storeBotMessage(chat: Chat, content: Record<string, unknown>): Message {
    const message = {
      message_id: this.allocateMessageId(chat.id),
      from: this.botUser,
      chat,
      date: Math.floor(Date.now() / 1000),
      ...content,
    } as unknown as Message;
    this.storeMessage(chat.id, message);
    return message;
  }

  private storeMessage(chatId: number, message: Message): void {
    let byId = this.messages.get(chatId);
    if (!byId) this.messages.set(chatId, (byId = new Map()));
    byId.set(message.message_id, message);
  }
}

// ---- request parsing ---------------------------------------------------------------------------

/** Fields whose values are JSON-serialised objects when sent as form fields ("Making requests"). */
const JSON_FIELDS = new Set(['reply_markup', 'commands', 'allowed_updates', 'scope', 'reply_parameters', 'entities', 'caption_entities', 'link_preview_options', 'media']);

async function parseParameters(
  url: URL,
  contentType: string,
  body: Buffer,
): Promise<{ params: Record<string, unknown>; files: Record<string, UploadedFile> }> {
  const params: Record<string, unknown> = {};
  const files: Record<string, UploadedFile> = {};
  for (const [key, value] of url.searchParams) params[key] = decodeField(key, value);
  if (body.length === 0) return { params, files };
  if (contentType.startsWith('application/json')) {
    Object.assign(params, JSON.parse(body.toString('utf8')) as Record<string, unknown>);
  } else if (contentType.startsWith('application/x-www-form-urlencoded')) {
    for (const [key, value] of new URLSearchParams(body.toString('utf8'))) params[key] = decodeField(key, value);
  } else if (contentType.startsWith('multipart/form-data')) {
    const parts = new Map<string, UploadedFile>();
    for (const field of await parseMultipart(contentType, body)) {
      if (field.kind === 'value') params[field.name] = decodeField(field.name, field.value);
      else parts.set(field.name, field.file);
    }
    const attached = new Set<string>();
    for (const [key, value] of Object.entries(params)) {
      if (typeof value === 'string' && value.startsWith('attach://')) {
        const name = value.slice('attach://'.length);
        const part = parts.get(name);
        if (!part) throw new Error(`file ${value} not found in the request`);
        files[key] = part;
        attached.add(name);
      }
    }
    for (const [key, part] of parts) if (!(key in params) && !attached.has(key)) files[key] = part;
  } else {
    throw new Error(`unsupported content type ${contentType}`);
  }
  return { params, files };
}

type MultipartField = { kind: 'value'; name: string; value: string } | { kind: 'file'; name: string; file: UploadedFile };

/** Parses a multipart/form-data body (RFC 7578) with busboy, as tolerant of header spacing as Telegram's server. */
function parseMultipart(contentType: string, body: Buffer): Promise<MultipartField[]> {
  return new Promise((resolve, reject) => {
    const fields: MultipartField[] = [];
    const parser = busboy({ headers: { 'content-type': contentType }, limits: { fileSize: 60 * 1024 * 1024 } });
    parser.on('field', (name, value) => fields.push({ kind: 'value', name, value }));
    parser.on('file', (name, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () =>
        fields.push({ kind: 'file', name, file: { bytes: Buffer.concat(chunks), fileName: info.filename ?? '', contentType: info.mimeType } }),
      );
    });
    parser.on('error', reject);
    parser.on('close', () => resolve(fields));
    parser.end(body);
  });
}

function decodeField(key: string, value: string): unknown {
  if (!JSON_FIELDS.has(key)) return value;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}

function toInt(value: unknown): number | undefined {
  if (typeof value === 'number') return Math.trunc(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return Number(value);
  return undefined;
}

function truthy(value: unknown): boolean {
  return value === true || value === 'true' || value === '1';
}

function asArray(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value === 'string') {
    try {
      const parsed = JSON.parse(value) as unknown;
      return Array.isArray(parsed) ? parsed : [];
    } catch {
      return [];
    }
  }
  return [];
}
