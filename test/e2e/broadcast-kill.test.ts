/**
 * Kill and resume: a VoiceTwin process (test/core/broadcast/kill-child.ts: real app, SQLite,
 * real Telegram adapter) runs a broadcast through the fake Bot API and is killed with SIGKILL at
 * a random point; a new process over the same data dir resumes it. No recipient may get the voice
 * note twice, and every recipient who got none must be reported (in flight at the crash).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTelegramBot } from '../../src/bots/telegram/index.js';
import { BroadcastJournal, BroadcastService } from '../../src/core/broadcast/index.js';
import { silentLogger } from '../../src/core/log.js';
import { FakeTelegramServer } from '../fakes/telegram/server.js';
import { createTestApp } from '../helpers/app.js';
import { speakingProviders, waitFor } from '../core/broadcast/support.js';
import { KILL_TEST_BOT_THROTTLE, KILL_TEST_SERVICE, OPERATOR, seedUsersBulk, userRecord, voicesPerChat } from '../core/broadcast/e2e-support.js';

const CHILD = fileURLToPath(new URL('../core/broadcast/kill-child.ts', import.meta.url));
const USERS = 800;
const FIRST = 300_000;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

async function startChild(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(async () => void child.kill('SIGKILL'));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the VoiceTwin process exited (${code}) before it was ready:\n${stderr}`)));
  });
  return child;
}

describe('a broadcast killed with SIGKILL and resumed', () => {
  it('sends nobody twice, and reports every recipient it missed', { timeout: 120_000 }, async () => {
    const fake = await FakeTelegramServer.start();
    cleanups.push(() => fake.close());
    const dataDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-kill-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    await seedUsersBulk(dataDir, Array.from({ length: USERS }, (_, i) => userRecord('telegram', String(FIRST + i))));
    let lastUpdate = 0;
    for (let i = 0; i < USERS; i++) lastUpdate = fake.sendText('hi', { from: { id: FIRST + i, first_name: `K${i}` } }).update_id;
    await fetch(`${fake.apiRoot}/bot${fake.token}/getUpdates?offset=${lastUpdate + 1}&timeout=0`);

    const child = await startChild({ BROADCAST_DATA_DIR: dataDir, TELEGRAM_API_ROOT: fake.apiRoot, TELEGRAM_TOKEN: fake.token });
    fake.sendCommand('/broadcast --voice default Still there? This survives a crash.', { from: OPERATOR });
    const killAt = 20 + Math.floor(Math.random() * (USERS - 100));
    await fake.waitUntil(() => fake.callsTo('sendVoice').length >= killAt, 60_000, `${killAt} voice notes`);
    child.kill('SIGKILL');
    await once(child, 'exit');
    const beforeRestart = fake.callsTo('sendVoice').length;
    expect(beforeRestart, `killed after ${killAt} voice notes`).toBeLessThan(USERS);

    // A new process over the same data dir: the app, the adapter, the broadcast service.
    // The engine starts (and the queue recovers the killed process's broadcast job) once this
    // service is the handler of broadcast jobs.
    const app = await createTestApp({ dataDir, env: { OPERATORS: 'telegram:1' }, providers: speakingProviders(), start: false });
    const bot = await startTelegramBot({ token: fake.token, engine: app.engine, logger: silentLogger, apiRoot: fake.apiRoot, pollingTimeoutSec: 1, throttle: KILL_TEST_BOT_THROTTLE });
    const service = new BroadcastService({ engine: app.engine, logger: silentLogger, ...KILL_TEST_SERVICE });
    cleanups.push(async () => {
      await service.stop();
      await bot.stop();
      await app.close();
    });
    await app.engine.start();
    await service.start();
    await waitFor(async () => (await service.status())?.state === 'done', 'the resumed broadcast', 60_000);
    await service.whenIdle();
    const status = (await service.status())!;

    const inFlight = status.counts.failedBy['in flight at crash'] ?? 0;
    const context = `killed after ${killAt} voice notes; ${inFlight} in flight`;
    expect(status.counts, context).toMatchObject({ total: USERS + 1, failed: inFlight, skipped: 0 });
    expect(status.counts.sent + inFlight, context).toBe(USERS + 1);
    expect(status.inFlightAtCrash).toBe(inFlight);
    expect(inFlight, context).toBeLessThanOrEqual(16 + 1);

    const perChat = voicesPerChat(fake.calls);
    expect(Math.max(...perChat.values()), `no duplicate (${context})`).toBe(1);
    const journal = new BroadcastJournal(app.store.kv, status.id);
    const missed: string[] = [];
    for (let i = 0; i < USERS + 1; i++) {
      const entry = await journal.entry('telegram', i);
      const record = await journal.record('telegram', i);
      expect(record?.state, `recipient ${entry.chatId} settled`).toMatch(/^(sent|failed)$/);
      if (!perChat.has(entry.chatId)) {
        missed.push(entry.chatId);
        expect(record, `recipient ${entry.chatId} got nothing, so it must be reported (${context})`).toMatchObject({ state: 'failed', category: 'in flight at crash' });
      }
    }
    expect(missed.length).toBeLessThanOrEqual(inFlight);
    // The operator is told about the restart and the in-flight messages.
    const toOperator = fake.calls.filter((c) => c.method === 'sendMessage' && String(c.params.chat_id) === '1').map((c) => String(c.params.text));
    expect(toOperator.some((t) => t.includes('resumed after a restart'))).toBe(true);
    expect(toOperator.at(-1)).toContain(`Sent: ${status.counts.sent} of ${USERS + 1}`);
  });
});
