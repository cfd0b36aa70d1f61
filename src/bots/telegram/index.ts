/**
 * The Telegram adapter: a grammY bot that maps updates to the engine's inbound messages and renders
 * its replies as native Telegram voice notes and messages.
 *
 * - Intake is at-least-once: every update is stored as a job (`engine.submit`) before it is
 *   confirmed to Telegram. Long polling advances `getUpdates`' `offset` past an update only after
 *   its job is stored (https://core.telegram.org/bots/api#getupdates: "An update is considered
 *   confirmed as soon as getUpdates is called with an offset higher than its update_id"); a
 *   webhook request is answered 200 only after the job is stored, so Telegram re-sends it
 *   otherwise (https://core.telegram.org/bots/api#setwebhook, checking
 *   `X-Telegram-Bot-Api-Secret-Token`).
 * - The first sign of life (the chat action) is sent before the job is queued.
 * - A 409 Conflict (another process polls with the same token) is logged as an error every time
 *   and retried with backoff; polling never stops silently.
 * - Outbound calls go through a flood-control queue ({@link SendThrottle}) and
 *   `@grammyjs/auto-retry` (429 `retry_after`, 5xx).
 * - `apiRoot` points the bot at another Bot API server: a self-hosted `telegram-bot-api`
 *   (https://github.com/tdlib/telegram-bot-api) or a test server.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Bot, GrammyError, HttpError, type Transformer } from 'grammy';
import type { Update } from 'grammy/types';
import { autoRetry } from '@grammyjs/auto-retry';
import type { Logger } from '../../core/log.js';
import type { CommandInfo, ConversationEngine, WebhookRoute } from '../../core/types.js';
import { downloadTelegramFile } from './download.js';
import { ALLOWED_UPDATES, TELEGRAM_DOWNLOAD_LIMIT_BYTES, mapUpdate } from './mapping.js';
import { TelegramRenderer } from './render.js';
import { SendThrottle, throttleTransformer, type SendThrottleOptions } from './throttle.js';

export { ALLOWED_UPDATES, TELEGRAM_DOWNLOAD_LIMIT_BYTES, inboundId, mapUpdate, parseCommand } from './mapping.js';
export { TelegramRenderer, splitText, inlineKeyboard, voiceDurationParam } from './render.js';
export { SendThrottle, throttleTransformer } from './throttle.js';

/** The public Bot API server. */
export const DEFAULT_TELEGRAM_API_ROOT = 'https://api.telegram.org';

/** Webhook mode settings (https://core.telegram.org/bots/api#setwebhook). */
export interface TelegramWebhookOptions {
  /** Public HTTPS URL Telegram POSTs updates to (`TELEGRAM_WEBHOOK_URL`). */
  url: string;
  /**
   * Secret sent by Telegram in `X-Telegram-Bot-Api-Secret-Token` (`TELEGRAM_WEBHOOK_SECRET`),
   * 1–256 characters of `A-Z a-z 0-9 _ -`, compared in constant time; a request without it is
   * answered 401 before its body is read. When absent, a random 256-bit secret is generated and
   * registered with `setWebhook` (fine for one process; several webhook replicas need the same
   * configured secret, since each registration replaces the previous one).
   */
  secret?: string;
  /** Path the webhook is mounted on; default the path of `url`. */
  path?: string;
  /** Mounts the webhook route on the HTTP server (`src/http/`'s `mountWebhook`). */
  mount(route: WebhookRoute): void;
}

/** Options of {@link startTelegramBot}. */
export interface TelegramBotOptions {
  /** Bot token from @BotFather (`TELEGRAM_BOT_TOKEN`). Never logged. */
  token: string;
  engine: ConversationEngine;
  logger: Logger;
  /** Bot API server root without a trailing slash (`TELEGRAM_API_ROOT`); default {@link DEFAULT_TELEGRAM_API_ROOT}. */
  apiRoot?: string;
  /** The server at `apiRoot` is a self-hosted `telegram-bot-api --local`: no 20 MB download cap, local file paths. */
  selfHostedApi?: boolean;
  /** Receive updates by webhook instead of long polling. */
  webhook?: TelegramWebhookOptions;
  /** Long-polling timeout of `getUpdates`, seconds. Default 30. */
  pollingTimeoutSec?: number;
  /** Flood-control limits; defaults follow Telegram's FAQ (1/s per chat, 20/min per group, 30/s overall). */
  throttle?: SendThrottleOptions;
  /** Bounds of auto-retry: attempts after the first (default 5) and the longest `retry_after` honoured, s (default 300). */
  retry?: { maxRetryAttempts?: number; maxDelaySeconds?: number };
  /**
   * Receive updates (polling or webhook). False for a worker-only process: the bot only sends
   * (replies, media downloads) for jobs run here. Default true.
   */
  receive?: boolean;
  /** Time a webhook request may take to store its update as a job before it is answered 500 (Telegram then re-sends it), ms. Default 8000. */
  webhookResponseTimeoutMs?: number;
}

/** A running Telegram bot. */
export interface TelegramBotHandle {
  /** The grammY bot (its `botInfo` is the getMe result). */
  bot: Bot;
  /** `polling`, `webhook`, or `send-only` (a worker process). */
  mode: 'polling' | 'webhook' | 'send-only';
  /** The path the webhook is mounted on (webhook mode only). */
  webhookPath?: string;
  /** Stops receiving updates and waits for the updates in progress to finish. */
  stop(): Promise<void>;
}

/** Telegram's command syntax for menus: 1–32 of a–z, 0–9, _ (https://core.telegram.org/bots/api#botcommand). */
const COMMAND_NAME = /^[a-z0-9_]{1,32}$/;

/**
 * The command menu for `setMyCommands`: the engine's commands without operator-only ones, in order;
 * names Telegram would refuse are left out. Descriptions are clipped to 256 characters.
 */
export function menuCommands(commands: readonly CommandInfo[]): { command: string; description: string }[] {
  return commands
    .filter((c) => !c.operatorOnly && COMMAND_NAME.test(c.name))
    .map((c) => ({ command: c.name, description: c.description.slice(0, 256) || c.name }));
}

/** Logs every failed Bot API attempt (the runner's own logging is off), without payloads or the token. */
function logFailures(logger: Logger): Transformer {
  return async (prev, method, payload, signal) => {
    try {
      const result = await prev(method, payload, signal);
      if (!result.ok) {
        const level = result.error_code === 429 || result.error_code >= 500 || method === 'getUpdates' ? 'warn' : 'debug';
        logger[level]({ method, errorCode: result.error_code, description: result.description, retryAfterSec: result.parameters?.retry_after }, 'telegram api error');
      }
      return result;
    } catch (err) {
      if (!signal?.aborted) logger.warn({ method, err: err instanceof HttpError ? err.message : err }, 'telegram api request failed');
      throw err;
    }
  };
}

/**
 * Starts the Telegram bot: checks the token (`getMe`), fills the command menu from
 * `engine.commands`, registers a {@link ChannelSender} with the engine, then receives updates by long
 * polling (after `deleteWebhook`) or by webhook (after `setWebhook`).
 *
 * @throws GrammyError 401 when the token is wrong; other errors when the Bot API is unreachable
 *   or the webhook port cannot be bound.
 */
export async function startTelegramBot(options: TelegramBotOptions): Promise<TelegramBotHandle> {
  const apiRoot = (options.apiRoot ?? DEFAULT_TELEGRAM_API_ROOT).replace(/\/+$/, '');
  const logger = options.logger.bindings().channel ? options.logger : options.logger.child({ channel: 'telegram' });
  const bot = new Bot(options.token, { client: { apiRoot } });
  const throttle = new SendThrottle(options.throttle);
  // First installed runs innermost: each attempt is logged and paced, auto-retry repeats the pair.
  bot.api.config.use(
    logFailures(logger),
    throttleTransformer(throttle),
    autoRetry({
      maxRetryAttempts: options.retry?.maxRetryAttempts ?? 5,
      maxDelaySeconds: options.retry?.maxDelaySeconds ?? 300,
      // Network errors are not retried: auto-retry would retry them without bound.
      rethrowHttpErrors: true,
    }),
  );
  const renderer = new TelegramRenderer(bot.api, logger);
  /** Updates whose chat action the poller already sent. */
  const signalled = new Set<number>();
  const platformMaxBytes = options.selfHostedApi ? undefined : TELEGRAM_DOWNLOAD_LIMIT_BYTES;
  const download = (fileId: string) =>
    downloadTelegramFile({ api: bot.api, apiRoot, token: options.token, fileId, maxBytes: platformMaxBytes, allowLocalPath: options.selfHostedApi === true });

  bot.catch((err) => logger.error({ err: err.error, updateId: err.ctx.update.update_id }, 'telegram update failed'));
  // Stop the button's spinner at once, even while the chat's previous message is still being handled.
  bot.on('callback_query', async (ctx, next) => {
    await ctx.answerCallbackQuery().catch((err: unknown) => logger.debug({ err, updateId: ctx.update.update_id }, 'answerCallbackQuery failed'));
    await next();
  });
  bot.use(async (ctx) => {
    const presignalled = signalled.delete(ctx.update.update_id);
    const inbound = mapUpdate(ctx.update, {
      botUsername: ctx.me.username,
      nowMs: Date.now(),
      platformMaxBytes,
      downloader: (fileId) => () => download(fileId),
    });
    if (!inbound) return;
    const log = logger.child({ chatId: inbound.chatId, updateId: ctx.update.update_id });
    // First sign of life before the job is stored; not awaited, and never behind the send throttle.
    // Long polling has already shown it for the whole batch (UpdatePoller).
    if (!inbound.action && !presignalled) void renderer.activity(inbound.chatId, 'typing');
    // Throws when the job cannot be stored: the update is then not confirmed and comes again.
    await options.engine.submit(inbound, renderer.target(inbound.chatId, log));
  });

  await bot.init();
  options.engine.registerSender(renderer.sender());
  options.engine.registerMediaFetcher('telegram', async (ref) => {
    if (!ref.fileId) throw new Error('a Telegram audio reference needs a file id');
    return download(ref.fileId);
  });

  if (options.receive === false) {
    logger.info({ mode: 'send-only', username: bot.botInfo.username }, 'telegram bot ready to send (no update intake in this process)');
    return { bot, mode: 'send-only', stop: async () => undefined };
  }

  if (options.webhook) {
    const secret = options.webhook.secret ?? randomBytes(32).toString('base64url');
    if (!TELEGRAM_SECRET.test(secret)) throw new Error('TELEGRAM_WEBHOOK_SECRET must be 1–256 characters of A-Z, a-z, 0-9, _ and -');
    if (!options.webhook.secret) logger.warn('TELEGRAM_WEBHOOK_SECRET is not set: a random secret was generated and registered with setWebhook (set one when several processes receive the webhook)');
    const path = options.webhook.path ?? (new URL(options.webhook.url).pathname || '/');
    options.webhook.mount(webhookRoute(bot, path, secret, logger, options.webhookResponseTimeoutMs ?? 8000));
    await bot.api.setWebhook(options.webhook.url, { allowed_updates: [...ALLOWED_UPDATES], secret_token: secret });
    await setCommands(bot, options.engine, logger);
    logger.info({ mode: 'webhook', username: bot.botInfo.username, path }, 'telegram bot started');
    return {
      bot,
      mode: 'webhook',
      webhookPath: path,
      async stop() {
        logger.info('telegram bot stopped');
      },
    };
  }

  await bot.api.deleteWebhook({ drop_pending_updates: false });
  await setCommands(bot, options.engine, logger);
  const poller = new UpdatePoller(bot, logger, options.pollingTimeoutSec ?? 30, (updates) => {
    // Every chat of a batch sees "typing" at once, before the batch's jobs are stored one by one.
    for (const update of updates) {
      const chatId = (update.message ?? update.edited_message)?.chat.id;
      if (chatId === undefined) continue;
      signalled.add(update.update_id);
      void renderer.activity(String(chatId), 'typing');
    }
  });
  poller.start();
  logger.info({ mode: 'polling', username: bot.botInfo.username }, 'telegram bot started');
  return {
    bot,
    mode: 'polling',
    async stop() {
      await poller.stop();
      logger.info('telegram bot stopped');
    },
  };
}

/**
 * Long polling that confirms an update only once it is handled (stored as a job): `offset` moves
 * past an update after `handleUpdate` resolved for it. Updates are handed over one by one, in
 * order; handling is only mapping and storing, so this stays fast.
 *
 * Errors: a 409 Conflict (another poller or a webhook) and network or 5xx errors are logged and
 * retried with exponential backoff (1 s doubling to 30 s); a 401 stops polling with a fatal log
 * (the token was revoked). An update whose handling throws (the store is down) is retried from
 * the same offset after the backoff.
 */
class UpdatePoller {
  #offset = 0;
  #running = false;
  #abort = new AbortController();
  #loop: Promise<void> | undefined;
  /** Consecutive 409 Conflicts seen (for tests and logs). */
  conflicts = 0;

  constructor(
    private readonly bot: Bot,
    private readonly logger: Logger,
    private readonly timeoutSec: number,
    /** Called with each batch as it arrives, before its updates are handled (first sign of life). */
    private readonly onBatch: (updates: Update[]) => void = () => undefined,
  ) {}

  start(): void {
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#abort.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let backoffMs = 1000;
    const pause = async (): Promise<void> => {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, backoffMs);
        this.#abort.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
      backoffMs = Math.min(30_000, backoffMs * 2);
    };
    while (this.#running) {
      let updates: Update[];
      try {
        updates = await this.bot.api.getUpdates({ offset: this.#offset, timeout: this.timeoutSec, allowed_updates: [...ALLOWED_UPDATES] }, this.#abort.signal as Parameters<Bot['api']['getUpdates']>[1]);
      } catch (err) {
        if (!this.#running) return;
        if (err instanceof GrammyError && err.error_code === 401) {
          this.logger.fatal({ errorCode: 401 }, 'telegram polling stopped: the bot token was refused (401)');
          return;
        }
        if (err instanceof GrammyError && err.error_code === 409) {
          this.conflicts++;
          this.logger.error(
            { errorCode: 409, retryInMs: backoffMs, conflicts: this.conflicts },
            'telegram polling conflict (409): another process polls with this token or a webhook is set; retrying',
          );
        } else {
          this.logger.warn({ err: err instanceof GrammyError ? err.description : err, retryInMs: backoffMs }, 'telegram getUpdates failed; retrying');
        }
        await pause();
        continue;
      }
      backoffMs = 1000;
      this.conflicts = 0;
      this.onBatch(updates);
      for (const update of updates) {
        try {
          await this.bot.handleUpdate(update);
        } catch (err) {
          this.logger.error({ err, updateId: update.update_id, retryInMs: backoffMs }, 'telegram update not stored; it stays unconfirmed and is fetched again');
          await pause();
          break;
        }
        this.#offset = update.update_id + 1;
      }
    }
  }
}

/** Fills the command menu; a refusal is logged, not fatal (the bot still answers typed commands). */
async function setCommands(bot: Bot, engine: ConversationEngine, logger: Logger): Promise<void> {
  const commands = menuCommands(engine.commands);
  try {
    await bot.api.setMyCommands(commands);
  } catch (err) {
    logger.warn({ err: err instanceof GrammyError ? err.description : err }, 'setMyCommands failed; the command menu stays as it was');
  }
}

/** What Telegram allows as a webhook `secret_token` (https://core.telegram.org/bots/api#setwebhook). */
const TELEGRAM_SECRET = /^[A-Za-z0-9_-]{1,256}$/;

/** Telegram updates are small; a webhook body over this is refused unread, bytes. */
const WEBHOOK_BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * The webhook as a route of the HTTP server: the `X-Telegram-Bot-Api-Secret-Token` header is
 * compared with the secret in constant time (both hashed with SHA-256 first, so lengths leak
 * nothing); the update is answered 200 only once it is stored as a job, and 500 (so Telegram
 * sends it again) when storing fails or takes longer than `responseTimeoutMs`.
 */
function webhookRoute(bot: Bot, path: string, secret: string, logger: Logger, responseTimeoutMs: number): WebhookRoute {
  const expected = createHash('sha256').update(secret).digest();
  return {
    channel: 'telegram',
    path,
    bodyLimitBytes: WEBHOOK_BODY_LIMIT_BYTES,
    authorize(headers) {
      const given = headers['x-telegram-bot-api-secret-token'];
      if (typeof given !== 'string') return false;
      return timingSafeEqual(createHash('sha256').update(given).digest(), expected);
    },
    async handle(body) {
      const update = body as Update;
      if (!update || typeof update !== 'object' || typeof update.update_id !== 'number') {
        // Not an update: acknowledging it would not lose anything, refusing it would make Telegram retry it forever.
        logger.warn('webhook body is not a Telegram update; ignored');
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          bot.handleUpdate(update),
          new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`update not stored within ${responseTimeoutMs} ms`)), responseTimeoutMs))),
        ]);
      } catch (err) {
        logger.error({ err, updateId: update.update_id }, 'telegram webhook update not stored; answered 500 so Telegram delivers it again');
        throw err;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
