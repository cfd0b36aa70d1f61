/**
 * Builds store harnesses for the contract suite: a fresh temporary data directory per test, a
 * fixed data key, and cleanup that closes every store opened and removes the directory.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStore, type CreateStoreOptions } from '../../../src/core/store/keyv-store.js';
import type { Store } from '../../../src/core/store/types.js';
import type { StoreHarness } from './contract.js';

/**
 * @param backend the backend to open
 * @param extra options merged into every createStore call (redisUrl, namespace)
 * @param afterClose runs after every store is closed (e.g. delete the Redis namespace's keys)
 */
export async function makeHarness(
  backend: CreateStoreOptions['backend'],
  extra: Partial<CreateStoreOptions> = {},
  afterClose?: (namespaces: string[]) => Promise<void>,
): Promise<StoreHarness> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `voicetwin-store-${backend}-`));
  const dataKey = randomBytes(32);
  const opened: Store[] = [];
  const namespaces = new Set<string>([extra.namespace ?? 'voicetwin']);
  return {
    dataDir,
    dataKey,
    async open(options = {}) {
      const namespace = options.namespace ?? extra.namespace;
      if (namespace) namespaces.add(namespace);
      const store = await createStore({
        backend,
        dataDir,
        dataKey: options.dataKey ?? dataKey,
        ...extra,
        ...(namespace ? { namespace } : {}),
        ...(options.historyMaxTurns ? { historyMaxTurns: options.historyMaxTurns } : {}),
      });
      opened.push(store);
      return store;
    },
    async cleanup() {
      await Promise.all(opened.map((s) => s.close()));
      if (afterClose) await afterClose([...namespaces]);
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}
