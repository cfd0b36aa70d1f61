/**
 * The Telegram adapter: a grammY bot that maps updates to the engine's inbound messages and renders
 * its replies as native Telegram voice notes and messages.
 *
 * - Long polling with `@grammyjs/runner` (concurrent across chats, sequential within a chat), or a
 *   webhook server checking `X-Telegram-Bot-Api-Secret-Token`
 *   (https://core.telegram.org/bots/api#setwebhook).
 * - Outbound calls go through a flood-control queue ({@link SendThrottle}) and
 *   `@grammyjs/auto-retry` (429 `retry_after`, 5xx).
 * - `apiRoot` points the bot at another Bot API server: a self-hosted `telegram-bot-api`
 *   (https://github.com/tdlib/telegram-bot-api) or a test server.
 */
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Bot, GrammyError, HttpError, webhookCallback, type Transformer } from 'grammy';
import { autoRetry } from '@grammyjs/auto-retry';
import { run, sequentialize, type RunnerHandle } from '@grammyjs/runner';
import type { Logger } from '../../core/log.js';
import type { CommandInfo, ConversationEngine } from '../../core/types.js';
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
   * 1–256 characters of `A-Z a-z 0-9 _ -`. Requests without it are answered 401.
   */
  secret?: string;
  /** Local port of the webhook HTTP server (`TELEGRAM_WEBHOOK_PORT`); 0 picks a free one. */
  port: number;
  /** Path the server answers on; default the path of `url`. */
  path?: string;
  /** Interface to listen on; default all interfaces. */
  host?: string;
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
  /** Most updates handled at once across chats (runner sink concurrency). Default 500. */
  concurrency?: number;
  /** Time a webhook request waits for its update before answering 200 anyway, ms. Default 8000. */
  webhookResponseTimeoutMs?: number;
}

/** A running Telegram bot. */
export interface TelegramBotHandle {
  /** The grammY bot (its `botInfo` is the getMe result). */
  bot: Bot;
  /** `polling` or `webhook`. */
  mode: 'polling' | 'webhook';
  /** The port the webhook server listens on (webhook mode only). */
  webhookPort?: number;
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
  const platformMaxBytes = options.selfHostedApi ? undefined : TELEGRAM_DOWNLOAD_LIMIT_BYTES;
  const inFlight = new Set<Promise<unknown>>();

  bot.catch((err) => logger.error({ err: err.error, updateId: err.ctx.update.update_id }, 'telegram update failed'));

  // Track updates in progress so stop() can wait for them.
  bot.use(async (ctx, next) => {
    const task = next();
    inFlight.add(task);
    try {
      await task;
    } catch (err) {
      logger.error({ err, updateId: ctx.update.update_id }, 'telegram update failed');
    } finally {
      inFlight.delete(task);
    }
  });
  // Stop the button's spinner at once, even while the chat's previous message is still being handled.
  bot.on('callback_query', async (ctx, next) => {
    await ctx.answerCallbackQuery().catch((err: unknown) => logger.debug({ err, updateId: ctx.update.update_id }, 'answerCallbackQuery failed'));
    await next();
  });
  bot.use(sequentialize((ctx) => (ctx.chat ?? ctx.from)?.id.toString()));
  bot.use(async (ctx) => {
    const inbound = mapUpdate(ctx.update, {
      botUsername: ctx.me.username,
      nowMs: Date.now(),
      platformMaxBytes,
      downloader: (fileId) => () =>
        downloadTelegramFile({
          api: bot.api,
          apiRoot,
          token: options.token,
          fileId,
          maxBytes: platformMaxBytes,
          allowLocalPath: options.selfHostedApi === true,
        }),
    });
    if (!inbound) return;
    const log = logger.child({ chatId: inbound.chatId, updateId: ctx.update.update_id });
    await options.engine.handle(inbound, renderer.target(inbound.chatId, log));
  });

  await bot.init();
  options.engine.registerSender(renderer.sender());
  const waitForUpdatesInProgress = async () => {
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
  };

  if (options.webhook) {
    const server = await startWebhook(bot, options.webhook, logger, options.webhookResponseTimeoutMs ?? 8000);
    await bot.api.setWebhook(options.webhook.url, {
      allowed_updates: [...ALLOWED_UPDATES],
      ...(options.webhook.secret ? { secret_token: options.webhook.secret } : {}),
    });
    await setCommands(bot, options.engine, logger);
    const port = (server.address() as AddressInfo).port;
    logger.info({ mode: 'webhook', username: bot.botInfo.username, port }, 'telegram bot started');
    return {
      bot,
      mode: 'webhook',
      webhookPort: port,
      async stop() {
        server.close();
        server.closeIdleConnections();
        await waitForUpdatesInProgress();
        logger.info('telegram bot stopped');
      },
    };
  }

  await bot.api.deleteWebhook({ drop_pending_updates: false });
  await setCommands(bot, options.engine, logger);
  const runner: RunnerHandle = run(bot, {
    runner: {
      fetch: { timeout: options.pollingTimeoutSec ?? 30, allowed_updates: [...ALLOWED_UPDATES] },
      silent: true,
    },
    sink: { concurrency: options.concurrency ?? 500 },
  });
  runner.task()?.catch((err: unknown) => logger.fatal({ err }, 'telegram polling stopped'));
  logger.info({ mode: 'polling', username: bot.botInfo.username }, 'telegram bot started');
  return {
    bot,
    mode: 'polling',
    async stop() {
      if (runner.isRunning()) await runner.stop();
      await waitForUpdatesInProgress();
      logger.info('telegram bot stopped');
    },
  };
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

/** Starts the HTTP server that receives webhook updates on `options.path` (POST only). */
async function startWebhook(bot: Bot, options: TelegramWebhookOptions, logger: Logger, responseTimeoutMs: number): Promise<Server> {
  const path = options.path ?? (new URL(options.url).pathname || '/');
  const handle = webhookCallback(bot, 'http', {
    secretToken: options.secret,
    // Answer 200 after the timeout and keep working, so Telegram does not resend a slow voice turn.
    onTimeout: 'return',
    timeoutMilliseconds: responseTimeoutMs,
  });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== path) {
      res.writeHead(404).end();
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    handle(req, res).catch((err: unknown) => {
      logger.error({ err }, 'telegram webhook request failed');
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  server.listen(options.port, options.host);
  await once(server, 'listening');
  return server;
}
