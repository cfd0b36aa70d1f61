/**
 * Builds the real offline application (pocketsphinx, espeak-ng preview voice, template chat model,
 * SQLite store) over a temporary data dir, for end-to-end tests of the engine and the adapters.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config.js';
import { buildApp } from '../../src/app.js';
import type { Engine, EngineEvent } from '../../src/core/engine.js';
import type { Store } from '../../src/core/store/types.js';
import type { Providers } from '../../src/core/providers.js';
import { silentLogger } from '../../src/core/log.js';

export interface TestApp {
  engine: Engine;
  store: Store;
  config: Config;
  dataDir: string;
  events: EngineEvent[];
  /** Closes the app and removes the data dir (unless `keepDataDir`). */
  close(): Promise<void>;
}

/**
 * @param options.env extra environment (e.g. `{ ENROLL_MIN_SPEECH_SEC: '8' }`)
 * @param options.dataDir reuse a data dir (restart tests); it is then not removed on close
 * @param options.providers replace the offline providers
 * @param options.start false: the engine is not started (call `engine.start()` once the test has
 *   registered its own job handlers, e.g. a broadcast service); default true
 */
export async function createTestApp(options: { env?: Record<string, string>; dataDir?: string; providers?: Providers; start?: boolean } = {}): Promise<TestApp> {
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'voicetwin-test-')));
  const config = loadConfig({
    VOICETWIN_DATA_DIR: dataDir,
    VOICETWIN_DATA_KEY: '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff',
    LOG_LEVEL: 'silent',
    ...options.env,
  });
  const events: EngineEvent[] = [];
  const app = await buildApp(config, { logger: silentLogger, observer: (e) => events.push(e), ...(options.providers ? { providers: options.providers } : {}) });
  if (options.start !== false) await app.engine.start();
  return {
    engine: app.engine,
    store: app.store,
    config,
    dataDir,
    events,
    async close() {
      await app.close();
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
