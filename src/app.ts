/**
 * The composition root: config → logger → store → providers → engine. Bots are started by
 * `serve` (src/main.ts); the CLI's `demo`, `chat` and `say` use the engine directly.
 */
import type { Config } from './config.js';
import { createLogger, type Logger } from './core/log.js';
import { createStore, loadDataKey } from './core/store/index.js';
import type { Store } from './core/store/types.js';
import type { Providers } from './core/providers.js';
import { Engine, type EngineEvent } from './core/engine.js';

/** A built application: the engine and what it runs on. */
export interface App {
  config: Config;
  logger: Logger;
  store: Store;
  providers: Providers;
  engine: Engine;
  /** True when every capability runs on the offline stack (no API key). */
  offline: boolean;
  /** Stops background work and closes the store. */
  close(): Promise<void>;
}

/**
 * Builds the application from a validated config.
 * @param options.logger use this logger instead of creating one
 * @param options.observer receives engine events (timings, state changes)
 * @param options.providers replace the configured providers (benchmarks, tests)
 * @throws Error when the store cannot be opened (the message names the backend)
 */
export async function buildApp(
  config: Config,
  options: { logger?: Logger; observer?: (event: EngineEvent) => void; providers?: Providers } = {},
): Promise<App> {
  const logger = options.logger ?? createLogger({ level: config.log.level, pretty: config.log.pretty });
  const { key } = await loadDataKey({ dataDir: config.dataDir, ...(config.dataKey ? { envValue: config.dataKey } : {}), logger });
  const store = await createStore({
    backend: config.redisUrl ? 'redis' : 'sqlite',
    dataDir: config.dataDir,
    ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}),
    dataKey: key,
    logger,
  });
  const providers =
    options.providers ??
    (await import('./providers/local/index.js')).createLocalProviders({
      ...(config.engine.enrollMinSpeechSec !== undefined ? { minSpeechSec: config.engine.enrollMinSpeechSec } : {}),
      pocketsphinxModelDir: config.providers.pocketsphinxModelDir,
      logger,
    });
  const offline = !options.providers;
  const engine = new Engine({
    store,
    providers,
    logger,
    ...(options.observer ? { observer: options.observer } : {}),
    settings: {
      limits: config.limits,
      defaultPersona: config.engine.defaultPersona,
      ...(config.engine.enrollMinSpeechSec !== undefined ? { enrollMinSpeechSec: config.engine.enrollMinSpeechSec } : {}),
      insightEvery: config.engine.insightEvery,
      memoryEvery: config.engine.memoryEvery,
      turnConcurrency: config.engine.turnConcurrency,
      seed: config.engine.seed,
      operators: config.operators,
    },
  });
  return {
    config,
    logger,
    store,
    providers,
    engine,
    offline,
    async close() {
      await engine.stop();
      await store.close();
    },
  };
}
