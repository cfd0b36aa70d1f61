/**
 * Scale-out and first sign of life.
 *
 * 1. `scaleOut`: 1, 2 and 3 `serve` processes on one Redis (BullMQ queue), the first with
 *    `--role all` (it polls the fake Bot API), the others `--role worker`. Providers take a
 *    realistic, fixed time (bench/scale-worker.ts: STT 300 ms, chat 800 ms, TTS 400 ms per
 *    sentence), so the figure is how well jobs spread over processes: turns/s over a batch of
 *    voice notes sent at once, and the speed-up against one process (goal ≥ 1.8× with two).
 * 2. `firstSignOfLife`: in this process, the Telegram adapter with the engine and the embedded
 *    queue, zero-latency providers: from an update's arrival at the fake (a long poll is waiting,
 *    so it is delivered at once) to the first Bot API call for that chat (the "typing" chat
 *    action), for voice notes one at a time and for a burst of 20 users at once (goal p95 ≤ 100 ms).
 *
 * Run alone with `BENCH_SECTIONS=scale npm run bench`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.js';
import { buildApp } from '../src/app.js';
import { startTelegramBot } from '../src/bots/telegram/index.js';
import { silentLogger } from '../src/core/log.js';
import { FakeTelegramServer } from '../test/fakes/telegram/server.js';
import { zeroLatencyProviders } from './providers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const DATA_KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! * 10) / 10;
}

/** A short Ogg/Opus voice note of espeak-ng speech. */
async function voiceNote(dir: string): Promise<{ bytes: Buffer; wav: Buffer }> {
  const wav = path.join(dir, 'speech.wav');
  const ogg = path.join(dir, 'note.ogg');
  spawnSync('espeak-ng', ['-v', 'en-us', '-w', wav, '--', 'I would like to plan my weekend with friends.']);
  spawnSync('ffmpeg', ['-loglevel', 'error', '-y', '-i', wav, '-ac', '1', '-ar', '48000', '-c:a', 'libopus', '-b:a', '32k', ogg]);
  return { bytes: await readFile(ogg), wav: await readFile(wav) };
}

/** Turns/s with `processes` serve processes on one Redis. */
async function runScale(processes: number, note: Buffer, users: number, perUser: number): Promise<{ processes: number; turns: number; seconds: number; turnsPerSec: number }> {
  const fake = await FakeTelegramServer.start();
  const namespace = `vt-bench-${randomBytes(4).toString('hex')}`;
  // One data dir for every process: with Redis the audio blobs must be on a shared volume.
  const dataDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-bench-scale-'));
  const dirs = [dataDir];
  const children: ChildProcess[] = [];
  try {
    const start = async (role: 'all' | 'worker'): Promise<void> => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'scale-worker.ts'), role], {
        env: {
          ...process.env,
          TELEGRAM_BOT_TOKEN: fake.token,
          TELEGRAM_API_ROOT: fake.apiRoot,
          VOICETWIN_DATA_DIR: dataDir,
          VOICETWIN_DATA_KEY: DATA_KEY,
          REDIS_URL,
          REDIS_NAMESPACE: namespace,
          LOG_LEVEL: 'warn',
          INSIGHT_EVERY: '0',
          MEMORY_EVERY: '0',
          AUDIO_WORKERS: '0',
          QUEUE_CONCURRENCY: '4',
          QUEUE_PARTITIONS: '32',
          // The HTTP server (health, API) of the 'all' process on a free port, never a clash with 8080.
          HTTP_PORT: '0',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      children.push(child);
    };
    for (let i = 1; i < processes; i++) await start('worker');
    await start('all');
    await fake.waitUntil(() => fake.callsTo('setMyCommands').length > 0, 60_000, 'serve to start');
    await new Promise((r) => setTimeout(r, 1500));
    const startedMs = Date.now();
    for (let n = 0; n < perUser; n++) {
      for (let u = 0; u < users; u++) fake.sendVoice(note, { from: { id: 5000 + u, first_name: `U${u}` }, durationSec: 3 });
    }
    const total = users * perUser;
    await fake.waitUntil(() => fake.callsTo('sendVoice').length >= total, 600_000, 'every reply');
    const seconds = (Math.max(...fake.callsTo('sendVoice').map((c) => c.atMs)) - startedMs) / 1000;
    return { processes, turns: total, seconds: Math.round(seconds * 10) / 10, turnsPerSec: Math.round((total / seconds) * 100) / 100 };
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(undefined) : c.once('exit', r)))));
    await fake.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
}

/** Section 1: turns/s with 1, 2 and 3 processes. */
export async function benchScaleOut(): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'voicetwin-bench-'));
  try {
    const { bytes } = await voiceNote(dir);
    const users = Number(process.env.BENCH_SCALE_USERS ?? 48);
    const perUser = Number(process.env.BENCH_SCALE_TURNS ?? 2);
    const runs = [];
    for (const n of [1, 2, 3]) runs.push(await runScale(n, bytes, users, perUser));
    const one = runs[0]!.turnsPerSec;
    return {
      providers: 'STT 300 ms, chat 800 ms, TTS 400 ms per sentence (fixed waits)',
      perProcessConcurrency: 4,
      partitions: 32,
      runs,
      speedUp: Object.fromEntries(runs.map((r) => [`${r.processes}`, Math.round((r.turnsPerSec / one) * 100) / 100])),
      goal: 'two processes ≥ 1.8× one',
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Section 2: update arrival → first Bot API call for that chat. */
export async function benchFirstSignOfLife(): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'voicetwin-bench-'));
  const fake = await FakeTelegramServer.start();
  const { bytes, wav } = await voiceNote(dir);
  const app = await buildApp(loadConfig({ VOICETWIN_DATA_DIR: path.join(dir, 'data'), VOICETWIN_DATA_KEY: DATA_KEY, LOG_LEVEL: 'silent', INSIGHT_EVERY: '0', MEMORY_EVERY: '0' }), {
    providers: zeroLatencyProviders(wav),
    logger: silentLogger,
  });
  const bot = await startTelegramBot({ token: fake.token, engine: app.engine, logger: silentLogger, apiRoot: fake.apiRoot });
  await app.engine.start();
  const firstCall = (chatId: number, afterMs: number) => fake.calls.find((c) => c.atMs >= afterMs && String(c.params.chat_id) === String(chatId))?.atMs;
  const measure = async (chatIds: number[]): Promise<number[]> => {
    const sentAt = new Map<number, number>();
    for (const id of chatIds) {
      sentAt.set(id, Date.now());
      fake.sendVoice(bytes, { from: { id, first_name: `U${id}` }, durationSec: 3 });
    }
    await fake.waitUntil(() => chatIds.every((id) => firstCall(id, sentAt.get(id)!) !== undefined), 60_000, 'first calls');
    const delays = chatIds.map((id) => firstCall(id, sentAt.get(id)!)! - sentAt.get(id)!);
    await fake.waitUntil(() => chatIds.every((id) => fake.callsTo('sendVoice').some((c) => String(c.params.chat_id) === String(id) && c.atMs >= sentAt.get(id)!)), 120_000, 'replies');
    return delays;
  };
  try {
    await measure([6999]); // warm-up
    const single: number[] = [];
    for (let i = 0; i < 20; i++) single.push(...(await measure([6000 + i])));
    const burst: number[] = [];
    for (let round = 0; round < 3; round++) burst.push(...(await measure(Array.from({ length: 20 }, (_, i) => 6100 + round * 20 + i))));
    return {
      oneAtATime: { p50Ms: percentile(single, 50), p95Ms: percentile(single, 95), n: single.length },
      burstOf20: { p50Ms: percentile(burst, 50), p95Ms: percentile(burst, 95), n: burst.length },
      goal: 'p95 ≤ 100 ms',
    };
  } finally {
    await bot.stop();
    await app.close();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  }
}
