/**
 * The composition root: config → logger → store → providers → engine. Bots are started by
 * `serve` (src/main.ts); the CLI's `demo`, `chat` and `say` use the engine directly.
 */
import { createHmac } from 'node:crypto';
import type { Config } from './config.js';
import { createLogger, setLogIdKey, type Logger } from './core/log.js';
import { createStore, loadDataKey } from './core/store/index.js';
import type { Store } from './core/store/types.js';
import type { Providers, TextEmbedder } from './core/providers.js';
import { Engine, type EngineEvent } from './core/engine.js';
import { BROADCAST_JOB_KIND, BroadcastService } from './core/broadcast/index.js';
import { UsageMeter } from './core/usage.js';
import { scheduleRetention } from './core/retention.js';
import { audioWorkersError, closeAudioWorkers, setAudioWorkerThreads, warmAudioWorkers } from './core/audio/workers.js';
import type { JobQueue } from './core/jobs.js';
import path from 'node:path';
import { checkSharedBlobVolume } from './core/store/blob-volume.js';
import { setUpPhoneCommands } from './telephony/commands-setup.js';

/** A built application: the engine and what it runs on. */
export interface App {
  config: Config;
  logger: Logger;
  store: Store;
  providers: Providers;
  engine: Engine;
  /** Operator broadcasts (`/broadcast`, `voicetwin broadcast`); `start()` it once the bots registered their senders. */
  broadcasts: BroadcastService;
  /** True when every capability runs on the offline stack (no API key). */
  offline: boolean;
  /** The durable job queue turns and clone jobs run on (undefined with `queue: false`). */
  queue: JobQueue | undefined;
  /** 32 bytes derived from the data key for signing URLs (signed audio links of the HTTP API). */
  urlSigningKey: Buffer;
  /** Stops background work and closes the store. */
  close(): Promise<void>;
}

/**
 * Builds the application from a validated config.
 * @param options.logger use this logger instead of creating one
 * @param options.observer receives engine events (timings, state changes)
 * @param options.providers replace the configured providers (benchmarks, tests)
 * @param options.queue false: no job queue, messages are handled in this process (the terminal
 *   chat, the demo); default true: the embedded SQLite queue, or BullMQ when `REDIS_URL` is set
 * @throws Error when the store cannot be opened (the message names the backend)
 */
export async function buildApp(
  config: Config,
  options: { logger?: Logger; observer?: (event: EngineEvent) => void; providers?: Providers; queue?: boolean } = {},
): Promise<App> {
  const logger = options.logger ?? createLogger({ level: config.log.level, pretty: config.log.pretty });
  setAudioWorkerThreads(config.audioWorkers);
  void warmAudioWorkers().then(() => {
    const err = audioWorkersError();
    if (err) logger.warn({ err }, 'audio worker threads unavailable; voice notes are encoded on the main thread');
  });
  const { key } = await loadDataKey({ dataDir: config.dataDir, envValue: config.dataKey, keyFile: config.dataKeyFile, allowDataDirKey: !config.redisUrl, logger });
  // Phone numbers in WhatsApp ids are logged as keyed hashes, the same in every process of this deployment.
  setLogIdKey(createHmac('sha256', key).update('voicetwin log ids v1').digest());
  const store = await createStore({
    backend: config.redisUrl ? 'redis' : 'sqlite',
    dataDir: config.dataDir,
    ...(config.redisUrl ? { redisUrl: config.redisUrl, namespace: config.redisNamespace } : {}),
    dataKey: key,
    logger,
  });
  if (config.redisUrl) {
    try {
      await checkSharedBlobVolume(path.join(config.dataDir, 'blobs'), store.kv);
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  let queue: JobQueue | undefined;
  if (options.queue !== false) {
    try {
      queue = await openQueue(config, logger, key);
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  let closeProviders = (): void => undefined;
  let providers: Providers;
  let embedder: TextEmbedder | undefined;
  let offline: boolean;
  if (options.providers) {
    providers = options.providers;
    offline = false;
  } else {
    const { createLocalProviders } = await import('./providers/local/index.js');
    const local = createLocalProviders({
      ...(config.engine.enrollMinSpeechSec !== undefined ? { minSpeechSec: config.engine.enrollMinSpeechSec } : {}),
      pocketsphinxModelDir: config.providers.pocketsphinxModelDir,
      engine: config.providers.offlineTts,
      logger,
    });
    const lists = config.providers;
    offline = [lists.stt, lists.chat, lists.tts, lists.clone].every((l) => l.length === 1 && l[0] === 'local');
    if (offline) {
      providers = local;
    } else {
      const [{ createCloudProviders }, { createResilientProviders, orderProviders }] = await Promise.all([
        import('./providers/cloud.js'),
        import('./providers/resilient.js'),
      ]);
      const cloud = createCloudProviders(
        {
          ...(config.elevenlabs ? { elevenlabs: { ...config.elevenlabs, ...(config.engine.enrollMinSpeechSec !== undefined ? { minSpeechSec: config.engine.enrollMinSpeechSec } : {}) } } : {}),
          ...(config.replicate ? { replicate: config.replicate } : {}),
          ...(config.gemini ? { gemini: config.gemini } : {}),
        },
        {
          logger,
          saveReference: (ownerKey, wav) => store.blobs.put(ownerKey, wav, 'reference'),
          loadReference: (blobKey) => store.blobs.get(blobKey),
          deleteReference: (blobKey) => store.blobs.delete(blobKey),
        },
      );
      const resilient = createResilientProviders(
        {
          stt: orderProviders('STT_PROVIDERS', lists.stt, { ...cloud.stt, local: local.stt }),
          chat: orderProviders('CHAT_PROVIDERS', lists.chat, { ...cloud.chat, local: local.chat }),
          tts: orderProviders('TTS_PROVIDERS', lists.tts, { ...cloud.tts, local: local.tts }),
          cloner: orderProviders('CLONE_PROVIDERS', lists.clone, { ...cloud.cloner, local: local.cloner }),
        },
        { logger: logger.child({ component: 'providers' }) },
      );
      providers = resilient;
      closeProviders = () => resilient.close();
      if (lists.memoryRetrieval === 'auto') embedder = cloud.embeddings.gemini;
    }
  }
  const { DEFAULT_UNIT_PRICES } = await import('./providers/cloud.js');
  const usage = new UsageMeter(store.kv, { prices: DEFAULT_UNIT_PRICES, limits: config.budgets });
  const engine = new Engine({
    usage,
    ...(queue ? { queue } : {}),
    store,
    providers,
    ...(embedder ? { embedder } : {}),
    logger,
    ...(options.observer ? { observer: options.observer } : {}),
    settings: { ...config.engine, limits: config.limits, operators: config.operators, ...webAppUrlOf(config) },
  });
  const whatsappIntervalMs = config.whatsapp?.minSendIntervalMs;
  const broadcasts = new BroadcastService({
    engine,
    logger,
    usage,
    ...(whatsappIntervalMs ? { pace: { whatsapp: { messagesPerSec: 1000 / whatsappIntervalMs, perChatIntervalMs: whatsappIntervalMs } } } : {}),
  });
  engine.registerOperatorCommand(broadcasts.command());
  // The phone line's /phone and /calls (with TWILIO_AUTH_TOKEN); its routes are mounted by the HTTP server.
  setUpPhoneCommands(config, engine);
  // HISTORY_RETENTION_DAYS / AUDIO_RETENTION_DAYS: swept now and hourly.
  const stopRetention = scheduleRetention(store, config.retention, logger);
  return {
    config,
    logger,
    store,
    providers,
    engine,
    broadcasts,
    offline,
    queue,
    urlSigningKey: createHmac('sha256', key).update('voicetwin url signing v1').digest(),
    async close() {
      await broadcasts.stop();
      await stopRetention();
      await engine.stop();
      closeProviders();
      // Encodings in flight finish before the threads stop (a thread killed inside libopus aborts the process).
      await closeAudioWorkers();
      await store.close();
    },
  };
}

/**
 * Opens the job queue the config asks for: BullMQ on `REDIS_URL` (keys prefixed with
 * `<REDIS_NAMESPACE>-jobs`), else the embedded SQLite queue in the data directory. With `dataKey`
 * (32 bytes) every job's data is stored sealed with it.
 * @throws Error naming the Redis URL or the queue file when it cannot be opened
 */
export async function openQueue(config: Config, logger: Logger, dataKey?: Buffer): Promise<JobQueue> {
  if (config.redisUrl) {
    const { BullQueue } = await import('./queue/bullmq.js');
    return BullQueue.open({
      redisUrl: config.redisUrl,
      prefix: `${config.redisNamespace}-jobs`,
      partitions: config.queue.partitions,
      // A broadcast runs for minutes: on a user partition it would hold up those users' turns.
      ownQueueKinds: [BROADCAST_JOB_KIND],
      concurrency: config.queue.concurrency,
      lockDurationMs: config.queue.lockMs,
      logger,
      ...(dataKey ? { dataKey } : {}),
    });
  }
  const { EmbeddedQueue } = await import('./queue/embedded.js');
  return EmbeddedQueue.open({ dataDir: config.dataDir, concurrency: config.queue.concurrency, leaseMs: config.queue.lockMs, logger, ...(dataKey ? { dataKey } : {}) });
}

/**
 * The web app's base URL for `/web` sign-in links: HTTP_PUBLIC_URL, else the configured address
 * of the HTTP server (127.0.0.1 for a wildcard host); none when the server is off or its port is
 * picked at start-up (then `startHttp` sets it once the server listens).
 */
export function webAppUrlOf(config: Config): { webAppUrl?: string } {
  const { http } = config;
  if (http.publicUrl) return { webAppUrl: http.publicUrl };
  if (!http.enabled || http.port === 0) return {};
  const host = http.host === '0.0.0.0' || http.host === '::' ? '127.0.0.1' : http.host.includes(':') ? `[${http.host}]` : http.host;
  return { webAppUrl: `http://${host}:${http.port}` };
}
