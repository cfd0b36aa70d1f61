/**
 * Crash safety of `voicetwin serve` as a real child process against the fake Bot API: 5 users send
 * 12 messages each (text turns and /remember), the process is killed with SIGKILL three times at
 * random moments while it works and started again. No message may be answered twice; every
 * /remember and every history turn is stored exactly once; a reply may be lost only where a kill
 * fell between its outbox record and its request (at most one per kill, each one visible as a part
 * left "sending"), which is the outbox's documented at-most-once window. In polling mode and in
 * webhook mode (the fake re-sends an update that was not answered 2XX, as Telegram does), on the
 * embedded SQLite queue and on Redis.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { FakeTelegramServer } from '../fakes/telegram/server.js';
import { createStore } from '../../src/core/store/index.js';
import { redisAvailable, REDIS_URL } from '../helpers/redis.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const DATA_KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
const USERS = [3101, 3102, 3103, 3104, 3105];
const PER_USER = 12;
/** Every third message of a user is a /remember. */
const isRemember = (n: number) => n % 3 === 2;
const FACTS = ['my sister is called Ana', 'I play the cello on Sundays', 'my dog Rex loves the beach', 'I work as a nurse in Lyon'];
const NAMES = ['Ada', 'Ben', 'Cleo', 'Dan', 'Eve'];
/** The n-th message's fact for a user: distinct words, so none is taken for a repeat of another. */
const fact = (n: number, id: number) => `${FACTS[Math.floor(n / 3)]}, says ${NAMES[USERS.indexOf(id)]}`;

/** A deterministic random source, so a failing run can be repeated (seed printed on failure). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

interface Scenario {
  name: string;
  mode: 'polling' | 'webhook';
  redis: boolean;
}

const children = new Set<ChildProcess>();
afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
});

async function runScenario(scenario: Scenario): Promise<void> {
  const seed = Number.parseInt(randomBytes(4).toString('hex'), 16);
  const random = rng(seed);
  const fake = await FakeTelegramServer.start({ webhookRetry: { intervalMs: 300, maxAttempts: 400 } });
  const dataDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-crash-'));
  const namespace = `vt-crash-${randomBytes(4).toString('hex')}`;
  const port = scenario.mode === 'webhook' ? await freePort() : 0;
  const logFile = path.join(tmpdir(), `${namespace}-serve.log`);
  const log = createWriteStream(logFile);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TELEGRAM_BOT_TOKEN: fake.token,
    TELEGRAM_API_ROOT: fake.apiRoot,
    VOICETWIN_DATA_DIR: dataDir,
    VOICETWIN_DATA_KEY: DATA_KEY,
    LOG_LEVEL: 'info',
    INSIGHT_EVERY: '0',
    MEMORY_EVERY: '0',
    AUDIO_WORKERS: '0',
    QUEUE_LOCK_MS: '2000',
    HTTP_PORT: scenario.mode === 'webhook' ? String(port) : '0',
    ...(scenario.redis ? { REDIS_URL, REDIS_NAMESPACE: namespace } : {}),
    ...(scenario.mode === 'webhook'
      ? { TELEGRAM_WEBHOOK_URL: `http://127.0.0.1:${port}/telegram`, TELEGRAM_WEBHOOK_SECRET: 'crash-test-secret' }
      : {}),
  };
  const ready = () => (scenario.mode === 'webhook' ? fake.callsTo('setWebhook').length : fake.callsTo('setMyCommands').length);
  const start = async (): Promise<ChildProcess> => {
    const before = ready();
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli.ts'), 'serve'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    children.add(child);
    await fake.waitUntil(() => ready() > before, 60_000, 'serve to start');
    return child;
  };
  const kill = async (child: ChildProcess): Promise<void> => {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    children.delete(child);
  };
  const answers = (chatId: number) => ({
    voice: fake.callsTo('sendVoice').filter((c) => String(c.params.chat_id) === String(chatId) && c.status === 200).length,
    remembered: fake.callsTo('sendMessage').filter((c) => String(c.params.chat_id) === String(chatId) && /I'll remember that/.test(String(c.params.text))).length,
  });
  const sent = () => fake.callsTo('sendVoice').length + fake.callsTo('sendMessage').length;
  const updates = new Map<number, number[]>();
  const send = (from: number, to: number) => {
    for (let n = from; n < to; n++) {
      for (const id of USERS) {
        const user = { id, first_name: `User${id}` };
        const update = isRemember(n) ? fake.sendCommand(`/remember ${fact(n, id)}`, { from: user }) : fake.sendText(`message ${n} from ${id}: how are you today?`, { from: user });
        updates.set(id, [...(updates.get(id) ?? []), update.update_id]);
      }
    }
  };

  let passed = false;
  try {
    send(0, PER_USER / 2);
    let child = await start();
    for (let k = 0; k < 3; k++) {
      // Let it work a little (a few replies, or up to a few seconds), then kill it mid-flight.
      const target = sent() + 1 + Math.floor(random() * 6);
      await fake.waitUntil(() => sent() >= target, 4000 + random() * 4000, 'progress').catch(() => undefined);
      await new Promise((r) => setTimeout(r, random() * 400));
      await kill(child);
      if (k === 0) send(PER_USER / 2, PER_USER);
      child = await start();
    }
    const remembers = Array.from({ length: PER_USER }, (_, n) => n).filter(isRemember).length;
    const texts = PER_USER - remembers;
    // Every answer, or (see below) all but parts cut off by a kill between their outbox record and their request.
    await fake.waitUntil(() => USERS.every((id) => answers(id).voice >= texts && answers(id).remembered >= remembers), 90_000, 'every answer').catch(() => undefined);
    // Anything sent twice would arrive now.
    await new Promise((r) => setTimeout(r, 1500));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    children.delete(child);
    const missing = USERS.reduce((sum, id) => sum + (texts - answers(id).voice) + (remembers - answers(id).remembered), 0);
    for (const id of USERS) {
      const got = answers(id);
      // Never twice.
      expect(got.voice, `user ${id} voice replies (seed ${seed}, log ${logFile})`).toBeLessThanOrEqual(texts);
      expect(got.remembered, `user ${id} /remember replies (seed ${seed}, log ${logFile})`).toBeLessThanOrEqual(remembers);
    }

    const store = await createStore({
      backend: scenario.redis ? 'redis' : 'sqlite',
      dataDir,
      dataKey: Buffer.from(DATA_KEY, 'hex'),
      ...(scenario.redis ? { redisUrl: REDIS_URL, namespace } : {}),
    });
    try {
      for (const id of USERS) {
        const memories = (await store.memories.list(`telegram:${id}`)).map((m) => m.text).sort();
        const expected = Array.from({ length: PER_USER }, (_, n) => n)
          .filter(isRemember)
          .map((n) => fact(n, id))
          .sort();
        expect(memories, `memories of ${id} (seed ${seed})`).toEqual(expected);
        const history = await store.history.recent(`telegram:${id}`, 100);
        expect(history.filter((t) => t.role === 'user')).toHaveLength(texts);
      }
      // A reply part is lost only when a kill fell between its outbox record ("sending") and its
      // request (the documented at-most-once window, milliseconds wide): at most one per kill, and
      // each one left a part that never became "sent".
      let cutOff = 0;
      for (const id of USERS) {
        for (const updateId of updates.get(id) ?? []) {
          const part = await store.kv.get<{ state: string }>(`outbox:telegram:update:${updateId}:0`);
          if (part?.state === 'sending') cutOff++;
        }
      }
      expect(missing, `lost replies (seed ${seed}, log ${logFile})`).toBeLessThanOrEqual(Math.min(3, cutOff));
    } finally {
      await store.close();
    }
    passed = true;
  } finally {
    log.end();
    // The server log is kept for a failing run only (its path is in the error).
    if (passed) await unlink(logFile).catch(() => undefined);
    await fake.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

describe('kill -9 while serving (embedded SQLite queue)', () => {
  it('polling: never answers twice, loses a reply only in the outbox send window, stores every /remember once', { timeout: 300_000 }, () => runScenario({ name: 'sqlite polling', mode: 'polling', redis: false }));
  it('webhook: never answers twice, loses a reply only in the outbox send window, stores every /remember once', { timeout: 300_000 }, () => runScenario({ name: 'sqlite webhook', mode: 'webhook', redis: false }));
});

describe.skipIf(!(await redisAvailable()))('kill -9 while serving (BullMQ on Redis)', () => {
  it('polling: never answers twice, loses a reply only in the outbox send window, stores every /remember once', { timeout: 300_000 }, () => runScenario({ name: 'redis polling', mode: 'polling', redis: true }));
});
