/**
 * `voicetwin serve`: builds the app, checks the system tools, starts every configured bot and
 * shuts down cleanly on SIGINT/SIGTERM.
 */
import type { Config } from './config.js';
import type { Providers } from './core/providers.js';
import { enabledChannels } from './config.js';
import { buildApp, type App } from './app.js';
import { checkAudioTools } from './core/audio/index.js';
import { checkLocalTools } from './providers/local/index.js';
import type { HttpServer } from './http/server.js';
import { signInLink } from './core/apikeys.js';
import { startServePresence } from './core/store/presence.js';

/**
 * Starts the HTTP server of `app.config.http` with health checks of the store and the queue.
 * @throws Error when the port cannot be bound (EADDRINUSE…)
 */
export async function startHttp(app: App): Promise<HttpServer> {
  const { createHttpServer } = await import('./http/server.js');
  const queue = app.queue;
  const { registerApi } = await import('./http/api.js');
  const http = app.config.http;
  const server = await createHttpServer({
    settings: http,
    logger: app.logger,
    routes: async (fastify) => {
      await registerApi(fastify, {
        engine: app.engine,
        urlSigningKey: app.urlSigningKey,
        rateLimitPerKey: http.rateLimitPerKey,
        logger: app.logger,
        ...(http.publicUrl ? { publicUrl: http.publicUrl } : {}),
      });
      const { registerWebApp } = await import('./http/web-app.js');
      await registerWebApp(fastify);
      // The phone line (TWILIO_AUTH_TOKEN): Twilio webhooks and the Media Streams WebSocket.
      const { startTelephony } = await import('./telephony/index.js');
      await startTelephony(fastify, { config: app.config, engine: app.engine, logger: app.logger });
    },
    health: {
      store: async () => {
        await app.store.kv.get('health:probe');
      },
      ...(queue
        ? {
            queue: async () => {
              await queue.stats();
            },
          }
        : {}),
    },
  });
  try {
    const { url } = await server.listen();
    // Links sent by /web point at HTTP_PUBLIC_URL, else at the address this server listens on.
    if (!http.publicUrl) app.engine.setWebAppUrl(url);
  } catch (err) {
    await server.close().catch(() => undefined);
    throw err;
  }
  return server;
}

/** A running bot. */
interface RunningBot {
  name: string;
  stop(): Promise<void>;
}

/** How to configure a bot, printed by `serve` when none is configured. */
export const NO_BOT_MESSAGE = [
  'No bot is configured and the HTTP server is off (HTTP_ENABLED=false) or this is not --role all, so there is nothing to serve.',
  'Set at least one of these (in the environment or in .env; see .env.example):',
  '  TELEGRAM_BOT_TOKEN=123456:ABC…          (from @BotFather)',
  '  DISCORD_TOKEN=… and DISCORD_APPLICATION_ID=…',
  '  WHATSAPP_ENABLED=true                   (then scan the QR code)',
  'To try VoiceTwin without any bot or key, run: npm run demo',
].join('\n');

/**
 * What a `serve` process does (`voicetwin serve --role`):
 * - `all` (default): receives updates and runs jobs;
 * - `ingress`: receives updates and stores them as jobs, runs none;
 * - `worker`: runs jobs only, sending through the platforms' APIs (Telegram only: a Discord
 *   gateway or WhatsApp Web session is held by one process, which must run its jobs).
 */
export type ServeRole = 'all' | 'ingress' | 'worker';

/** The roles, for `--role` validation. */
export const SERVE_ROLES: readonly ServeRole[] = ['all', 'ingress', 'worker'];

/**
 * Starts the configured bots and resolves once they run. Returns a stop function.
 * @throws DependencyError when ffmpeg (or, offline, espeak-ng/pocketsphinx) is missing
 * @param options.providers replace the configured providers (benchmarks)
 * @throws RoleError when the role cannot serve the configured channels
 */
export async function serve(config: Config, options: { role?: ServeRole; providers?: Providers } = {}): Promise<{ app: App; http?: HttpServer; signIn?: SignIn; stop(): Promise<void> }> {
  const role = options.role ?? 'all';
  const channels = enabledChannels(config);
  // With no platform, the HTTP API (the web channel) is what is served, for the local owner.
  const webOnly = channels.length === 0;
  if (webOnly && (!config.http.enabled || role !== 'all')) throw new NoBotConfiguredError();
  if (role !== 'all' && !config.redisUrl) {
    throw new RoleError(`--role ${role} shares work with other processes through Redis: set REDIS_URL (the embedded queue serves one process, --role all).`);
  }
  if (role === 'worker' && (config.discord || config.whatsapp)) {
    throw new RoleError('--role worker runs Telegram jobs only: Discord and WhatsApp jobs run in the process that holds the gateway or WhatsApp session (--role all).');
  }
  if (config.telegram?.webhookUrl && (!config.http.enabled || role === 'worker')) {
    throw new RoleError('TELEGRAM_WEBHOOK_URL is set: the webhook is served by the HTTP server, which runs with HTTP_ENABLED=true in a process with --role all or ingress.');
  }
  await checkAudioTools();
  const app = await buildApp(config, options.providers ? { providers: options.providers } : {});
  if (app.offline) await checkLocalTools();
  const log = app.logger;
  log.info({ channels, role, storage: app.store.backend, queue: app.queue?.engine, offline: app.offline }, 'starting VoiceTwin');
  // Seen by maintenance that must not run beside a server (`voicetwin rotate-key`).
  const stopPresence = await startServePresence(app.store.kv);
  const bots: RunningBot[] = [];
  let http: HttpServer | undefined;
  try {
    if (config.http.enabled && role !== 'worker') {
      http = await startHttp(app);
      bots.push({ name: 'http', stop: () => http!.close() });
    }
    if (config.telegram) {
      const { startTelegramBot } = await import('./bots/telegram/index.js');
      const t = config.telegram;
      const bot = await startTelegramBot({
        token: t.token,
        engine: app.engine,
        logger: log.child({ channel: 'telegram' }),
        ...(t.apiRoot ? { apiRoot: t.apiRoot } : {}),
        selfHostedApi: t.selfHostedApi,
        receive: role !== 'worker',
        ...(t.webhookUrl && http ? { webhook: { url: t.webhookUrl, mount: (route) => http!.mountWebhook(route), ...(t.webhookSecret ? { secret: t.webhookSecret } : {}) } } : {}),
      });
      bots.push({ name: 'telegram', stop: () => bot.stop() });
    }
    if (config.discord) {
      const { startDiscordBot } = await import('./bots/discord/index.js');
      const d = config.discord;
      const bot = await startDiscordBot({
        token: d.token,
        applicationId: d.applicationId,
        engine: app.engine,
        logger: log.child({ channel: 'discord' }),
        ...(d.guildId ? { guildId: d.guildId } : {}),
        ...(d.apiBase ? { apiBase: d.apiBase } : {}),
      });
      bots.push({ name: 'discord', stop: () => bot.stop() });
    }
    if (config.whatsapp) {
      const { startWhatsAppBot } = await import('./bots/whatsapp/index.js');
      const w = config.whatsapp;
      const bot = await startWhatsAppBot({
        engine: app.engine,
        logger: log.child({ channel: 'whatsapp' }),
        dataDir: config.dataDir,
        ...(w.chromiumPath ? { chromiumPath: w.chromiumPath } : {}),
        minSendIntervalMs: w.minSendIntervalMs,
      });
      bots.push({ name: 'whatsapp', stop: () => bot.stop() });
    }
  } catch (err) {
    for (const b of bots) await b.stop().catch(() => undefined);
    await stopPresence();
    await app.close();
    throw err;
  }
  // Jobs (those left by a crash first) and broadcasts run once the senders exist.
  try {
    await app.engine.start({ worker: role !== 'ingress' });
  } catch (err) {
    for (const b of bots) await b.stop().catch(() => undefined);
    await stopPresence();
    await app.close();
    throw err;
  }
  if (role !== 'ingress') await app.broadcasts.start();
  // Queue depth, failures and latency per kind, once a minute (also `voicetwin status`).
  const metricsTimer = setInterval(() => {
    void app.queue
      ?.stats()
      .then((kinds) => log.info({ queue: app.queue?.engine, kinds }, 'job queue metrics'))
      .catch((err: unknown) => log.warn({ err }, 'job queue metrics unavailable'));
  }, 60_000);
  metricsTimer.unref();
  let signIn: SignIn | undefined;
  if (webOnly && http) {
    const code = await app.engine.apiKeys.createSignInCode(LOCAL_OWNER);
    const base = (config.http.publicUrl ?? http.url).replace(/\/+$/, '');
    signIn = { code, url: base, link: signInLink(base, code), expiresInMin: 15 };
  }
  const p = app.providers;
  log.info(
    { bots: bots.map((b) => b.name), providers: { stt: p.stt.name, chat: p.chat.name, tts: p.tts.name, cloner: p.cloner.name }, offline: app.offline },
    `VoiceTwin is running: ${bots.map((b) => (b.name === 'http' && http ? `http ${http.url}` : b.name)).join(', ')}; speech-to-text ${p.stt.name}, chat ${p.chat.name}, voice ${p.tts.name}, cloning ${p.cloner.name}${app.offline ? ' (offline stack)' : ''}`,
  );
  return {
    app,
    ...(http ? { http } : {}),
    ...(signIn ? { signIn } : {}),
    async stop() {
      clearInterval(metricsTimer);
      // Intake first (nothing new is accepted), then running jobs finish or return to the queue.
      for (const b of bots) {
        await b.stop().catch((err: unknown) => log.error({ err, bot: b.name }, 'bot stop failed'));
      }
      await app.broadcasts.stop();
      await stopPresence();
      await app.close();
      log.info('VoiceTwin stopped');
    },
  };
}

/** The person who runs a server with no platform configured (the web channel's local owner). */
export const LOCAL_OWNER = 'web:owner';

/** A one-time sign-in code for the local owner, printed by `serve` when no platform is configured. */
export interface SignIn {
  code: string;
  /** The server's base URL (HTTP_PUBLIC_URL, else the address it listens on), no trailing slash. */
  url: string;
  /** The web app's sign-in link: `<url>/?code=<code>`. */
  link: string;
  expiresInMin: number;
}

/** What `voicetwin serve` prints for a {@link SignIn}. */
export function signInMessage(signIn: SignIn): string {
  return [
    `No chat platform is configured: VoiceTwin serves its web app and HTTP API on ${signIn.url} (see /health).`,
    `Open this link to sign in as the local owner (one use, valid ${signIn.expiresInMin} minutes):`,
    `  ${signIn.link}`,
    `or enter the code ${signIn.code} in the web app, or exchange it for an API key:`,
    `  curl -s -X POST ${signIn.url}/v1/auth/sign-in -H 'content-type: application/json' -d '{"code":"${signIn.code}"}'`,
    `API reference: ${signIn.url}/v1/docs. Another code: voicetwin apikey create --sign-in-code. Bots: see .env.example.`,
  ].join('\n');
}

/** `serve` was called with no bot configured. */
export class NoBotConfiguredError extends Error {
  override readonly name = 'NoBotConfiguredError';
  constructor() {
    super(NO_BOT_MESSAGE);
  }
}

/** `serve --role` cannot run with this configuration. */
export class RoleError extends Error {
  override readonly name = 'RoleError';
}
