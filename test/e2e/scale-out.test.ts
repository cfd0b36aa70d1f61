/**
 * Several `voicetwin serve` processes on one Redis behave like one: one process polls Telegram
 * (`--role all`), two more run jobs only (`--role worker`); messages for the same users arrive at
 * once and are spread over all three by the queue. Checked afterwards, from the store: no write
 * lost (memories, message counters, history, users index, usage totals), no per-user order
 * inversion in the history, every message answered exactly once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { FakeTelegramServer } from '../fakes/telegram/server.js';
import { createStore } from '../../src/core/store/index.js';
import { redisAvailable, REDIS_URL } from '../helpers/redis.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const DATA_KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
const USERS = Array.from({ length: 8 }, (_, i) => 4101 + i);
const PER_USER = 9;
const isRemember = (n: number) => n % 3 === 1;
const FACTS = ['my sister is called Ana', 'I play the cello on Sundays', 'my dog Rex loves the beach'];

const children = new Set<ChildProcess>();
afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
});

describe.skipIf(!(await redisAvailable()))('three processes on one Redis', () => {
  it('lose no write, keep each user in order and answer every message once', { timeout: 300_000 }, async () => {
    const fake = await FakeTelegramServer.start();
    const dataDirs: string[] = [];
    const namespace = `vt-scale-${randomBytes(4).toString('hex')}`;
    const logFile = path.join(tmpdir(), `${namespace}.log`);
    const log = createWriteStream(logFile);
    // One data dir for all: with Redis the encrypted audio blobs must be on one shared volume.
    const dataDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-scale-'));
    dataDirs.push(dataDir);
    const start = async (role: 'all' | 'worker'): Promise<ChildProcess> => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli.ts'), 'serve', '--role', role], {
        cwd: REPO,
        env: {
          ...process.env,
          TELEGRAM_BOT_TOKEN: fake.token,
          TELEGRAM_API_ROOT: fake.apiRoot,
          VOICETWIN_DATA_DIR: dataDir,
          VOICETWIN_DATA_KEY: DATA_KEY,
          REDIS_URL,
          REDIS_NAMESPACE: namespace,
          LOG_LEVEL: 'info',
          INSIGHT_EVERY: '0',
          MEMORY_EVERY: '0',
          AUDIO_WORKERS: '0',
          QUEUE_CONCURRENCY: '2',
          QUEUE_PARTITIONS: '8',
          // The HTTP server of the 'all' process on a free port.
          HTTP_PORT: '0',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.pipe(log, { end: false });
      child.stderr!.pipe(log, { end: false });
      children.add(child);
      return child;
    };
    let passed = false;
    try {
      const workers = [await start('worker'), await start('worker')];
      const ingress = await start('all');
      await fake.waitUntil(() => fake.callsTo('setMyCommands').length > 0, 60_000, 'the polling process');
      for (let n = 0; n < PER_USER; n++) {
        for (const id of USERS) {
          const from = { id, first_name: `User${id}` };
          if (isRemember(n)) fake.sendCommand(`/remember ${FACTS[Math.floor(n / 3)]}, ${id}`, { from });
          else fake.sendText(`message ${n} from ${id}`, { from });
        }
      }
      const texts = Array.from({ length: PER_USER }, (_, n) => n).filter((n) => !isRemember(n));
      const remembers = PER_USER - texts.length;
      const answers = (id: number) => ({
        voice: fake.callsTo('sendVoice').filter((c) => String(c.params.chat_id) === String(id)).length,
        remembered: fake.callsTo('sendMessage').filter((c) => String(c.params.chat_id) === String(id) && /I'll remember that/.test(String(c.params.text))).length,
      });
      await fake
        .waitUntil(() => USERS.every((id) => answers(id).voice >= texts.length && answers(id).remembered >= remembers), 200_000, 'every answer')
        .catch((err: unknown) => {
          throw new Error(`${String(err)}: ${JSON.stringify(USERS.map(answers))}; log ${logFile}`);
        });
      await new Promise((r) => setTimeout(r, 1000));
      for (const id of USERS) expect(answers(id), `user ${id}`).toEqual({ voice: texts.length, remembered: remembers });
      // The work was shared: every process ran turns.
      for (const child of [...workers, ingress]) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
        children.delete(child);
      }

      const store = await createStore({ backend: 'redis', redisUrl: REDIS_URL, namespace, dataDir: dataDirs[0]!, dataKey: Buffer.from(DATA_KEY, 'hex') });
      try {
        const listed = (await store.users.list()).map((u) => u.key).sort();
        expect(listed).toEqual(USERS.map((id) => `telegram:${id}`).sort());
        let userCostSum = 0;
        for (const id of USERS) {
          const key = `telegram:${id}`;
          const user = await store.users.get(key);
          expect(user?.messageCount, key).toBe(texts.length);
          const history = (await store.history.recent(key, 100)).filter((t) => t.role === 'user').map((t) => Number(/message (\d+)/.exec(t.text)?.[1]));
          expect(history, `${key} history in order`).toEqual(texts);
          const memories = (await store.memories.list(key)).map((m) => m.text).sort();
          expect(memories).toEqual(FACTS.slice(0, remembers).map((f) => `${f}, ${id}`).sort());
          const day = new Date().toISOString().slice(0, 10);
          const usage = await store.kv.get<{ total: { calls: number; ttsChars: number } }>(`usage:${day}:${key}`);
          expect(usage?.total.ttsChars, `${key} usage`).toBeGreaterThan(0);
          userCostSum += usage!.total.ttsChars;
        }
        const day = new Date().toISOString().slice(0, 10);
        const everyone = await store.kv.get<{ total: { ttsChars: number } }>(`usage:${day}:*`);
        // The all-users total is updated by every process: it equals the sum only if no increment was lost.
        expect(everyone?.total.ttsChars).toBe(userCostSum);
      } finally {
        await store.close();
      }
      const logText = await import('node:fs/promises').then((fs) => fs.readFile(logFile, 'utf8'));
      const pids = new Set([...logText.matchAll(/"pid":(\d+)[^\n]*"msg":"chat turn answered"/g)].map((m) => m[1]));
      expect(pids.size, 'processes that answered turns').toBe(3);
      passed = true;
    } finally {
      log.end();
      if (passed) await unlink(logFile).catch(() => undefined);
      await fake.close();
      for (const d of dataDirs) await rm(d, { recursive: true, force: true });
    }
  });
});
