/**
 * `voicetwin serve`: builds the app, checks the system tools, starts every configured bot and
 * shuts down cleanly on SIGINT/SIGTERM.
 */
import type { Config } from './config.js';
import { enabledChannels } from './config.js';
import { buildApp, type App } from './app.js';
import { checkAudioTools } from './core/audio/index.js';
import { checkLocalTools } from './providers/local/index.js';

/** A running bot. */
interface RunningBot {
  name: string;
  stop(): Promise<void>;
}

/** How to configure a bot, printed by `serve` when none is configured. */
export const NO_BOT_MESSAGE = [
  'No bot is configured, so there is nothing to serve.',
  'Set at least one of these (in the environment or in .env; see .env.example):',
  '  TELEGRAM_BOT_TOKEN=123456:ABC…          (from @BotFather)',
  '  DISCORD_TOKEN=… and DISCORD_APPLICATION_ID=…',
  '  WHATSAPP_ENABLED=true                   (then scan the QR code)',
  'To try VoiceTwin without any bot or key, run: npm run demo',
].join('\n');

/**
 * Starts the configured bots and resolves once they run. Returns a stop function.
 * @throws DependencyError when ffmpeg (or, offline, espeak-ng/pocketsphinx) is missing
 */
export async function serve(config: Config): Promise<{ app: App; stop(): Promise<void> }> {
  const channels = enabledChannels(config);
  if (channels.length === 0) throw new NoBotConfiguredError();
  await checkAudioTools();
  const app = await buildApp(config);
  if (app.offline) await checkLocalTools();
  const log = app.logger;
  log.info({ channels, storage: app.store.backend, offline: app.offline }, 'starting VoiceTwin');
  await app.engine.start();
  const bots: RunningBot[] = [];
  try {
    if (config.telegram) {
      const { startTelegramBot } = await import('./bots/telegram/index.js');
      const t = config.telegram;
      const bot = await startTelegramBot({
        token: t.token,
        engine: app.engine,
        logger: log.child({ channel: 'telegram' }),
        ...(t.apiRoot ? { apiRoot: t.apiRoot } : {}),
        selfHostedApi: t.selfHostedApi,
        ...(t.webhookUrl ? { webhook: { url: t.webhookUrl, port: t.webhookPort, ...(t.webhookSecret ? { secret: t.webhookSecret } : {}) } } : {}),
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
    await app.close();
    throw err;
  }
  // Broadcasts resume (or start, when queued by `voicetwin broadcast`) once the senders exist.
  await app.broadcasts.start();
  const p = app.providers;
  log.info(
    { bots: bots.map((b) => b.name), providers: { stt: p.stt.name, chat: p.chat.name, tts: p.tts.name, cloner: p.cloner.name }, offline: app.offline },
    `VoiceTwin is running: ${bots.map((b) => b.name).join(', ')}; speech-to-text ${p.stt.name}, chat ${p.chat.name}, voice ${p.tts.name}, cloning ${p.cloner.name}${app.offline ? ' (offline stack)' : ''}`,
  );
  return {
    app,
    async stop() {
      await app.broadcasts.stop();
      for (const b of bots) {
        await b.stop().catch((err: unknown) => log.error({ err, bot: b.name }, 'bot stop failed'));
      }
      await app.close();
      log.info('VoiceTwin stopped');
    },
  };
}

/** `serve` was called with no bot configured. */
export class NoBotConfiguredError extends Error {
  override readonly name = 'NoBotConfiguredError';
  constructor() {
    super(NO_BOT_MESSAGE);
  }
}
