/**
 * Broadcast benchmark: how close a broadcast comes to the allowed send rate, and how much memory
 * the process needs for 10,000 recipients.
 *
 * Each scenario seeds N Telegram users in a fresh SQLite store, starts the fake Bot API server
 * (test/fakes/telegram, no added latency) in this process, and runs the broadcasting VoiceTwin
 * process as a child (the real app, the real grammY adapter with its throttle opened to the
 * scenario's rate, the broadcast service), so its peak RSS is its own. The achieved rate is
 * measured on the timestamps the fake server recorded: (N − 1) / (last − first voice note).
 *
 * Scenarios (environment overrides in brackets):
 * - `telegram30`: Telegram's real limits, 30 messages/s and 1/s per chat, 1,500 recipients
 *   [BENCH_BROADCAST_REAL_RECIPIENTS];
 * - `scaled10k`: 10,000 recipients [BENCH_BROADCAST_RECIPIENTS] at 300 messages/s
 *   [BENCH_BROADCAST_SCALED_RATE] (at 30/s it would take 5.5 minutes), for the peak RSS.
 *
 * Goal: achieved rate ≥ 0.95 of the allowed rate. The limiter spaces sends 3 % wider than the limit
 * and warms up over the first second (see src/core/broadcast/pacing.ts), so 0.97 is the ceiling on
 * long runs; on a loaded machine it also moves slots after stalls (`limiterLateWakes`).
 *
 * Run alone with `npx tsx bench/broadcast.ts`; `bench/run.ts` calls {@link benchBroadcast}.
 * BENCH_BROADCAST_CPU_PROF=<dir> writes a CPU profile of the broadcasting process there.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config.js';
import { buildApp } from '../src/app.js';
import { startTelegramBot } from '../src/bots/telegram/index.js';
import { BroadcastService, type BroadcastStatus } from '../src/core/broadcast/index.js';
import { silentLogger } from '../src/core/log.js';
import { FakeTelegramServer } from '../test/fakes/telegram/server.js';
import { maxInWindow, minGapPerKey, speakingProviders } from '../test/core/broadcast/support.js';
import { messageCalls, seedUsersBulk, userRecord, voicesPerChat } from '../test/core/broadcast/e2e-support.js';

const THIS_FILE = fileURLToPath(import.meta.url);
const CHILD_FLAG = '--broadcast-bench-child';
const DATA_KEY = 'ef'.repeat(32);
const FIRST_CHAT_ID = 500_000;
const TEXT = 'Good morning! What are you grateful for today?';
const GOAL_FRACTION = 0.95;

interface Scenario {
  name: string;
  recipients: number;
  messagesPerSec: number;
  perChatIntervalMs: number;
  maxInFlight: number;
}

/** What the broadcasting child reports. */
interface ChildReport {
  status: BroadcastStatus;
  peakRssKiB: number;
  snapshotMs: number;
  runMs: number;
  /** Slots the limiter moved because the process was stalled (a loaded machine). */
  lateWakes: number;
  /** Largest V8 heap in use seen (sampled every 250 ms), and after a full GC at the end, KiB. */
  peakHeapUsedKiB: number;
  heapAfterGcKiB: number;
  /** Heap in use after a full GC once half of the recipients were sent, KiB (retention check). */
  heapMidwayAfterGcKiB: number;
}

function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** The broadcasting process: app, adapter and broadcast service over the parent's data dir and fake. */
async function runChild(): Promise<void> {
  const input = JSON.parse(process.env.VOICETWIN_BENCH_BROADCAST ?? '{}') as { dataDir: string; apiRoot: string; token: string; scenario: Scenario };
  const { scenario } = input;
  const config = loadConfig({ VOICETWIN_DATA_DIR: input.dataDir, VOICETWIN_DATA_KEY: DATA_KEY, LOG_LEVEL: 'silent', OPERATORS: 'telegram:1' });
  const app = await buildApp(config, { logger: silentLogger, providers: speakingProviders() });
  const bot = await startTelegramBot({
    token: input.token,
    engine: app.engine,
    logger: silentLogger,
    apiRoot: input.apiRoot,
    pollingTimeoutSec: 1,
    throttle: { globalPerSecond: scenario.messagesPerSec, privateChatIntervalMs: scenario.perChatIntervalMs },
  });
  const service = new BroadcastService({
    engine: app.engine,
    logger: silentLogger,
    pace: { telegram: { messagesPerSec: scenario.messagesPerSec, perChatIntervalMs: scenario.perChatIntervalMs, maxInFlight: scenario.maxInFlight } },
  });
  const gc = (globalThis as { gc?: () => void }).gc;
  let peakHeapUsed = 0;
  let heapMidway = 0;
  const sampler = setInterval(() => {
    peakHeapUsed = Math.max(peakHeapUsed, process.memoryUsage().heapUsed);
  }, 250);
  const started = Date.now();
  await service.create({ text: TEXT, audience: 'telegram', voice: 'default', dryRun: false }, { requestedBy: 'bench' });
  const snapshotMs = Date.now() - started;
  const midway = setInterval(() => {
    void service.status().then((s) => {
      if (!s || heapMidway > 0 || s.counts.sent < scenario.recipients / 2) return;
      gc?.();
      heapMidway = process.memoryUsage().heapUsed;
    });
  }, 500);
  await service.whenIdle();
  clearInterval(sampler);
  clearInterval(midway);
  const status = (await service.status())!;
  gc?.();
  const report: ChildReport = {
    status,
    peakRssKiB: process.resourceUsage().maxRSS,
    snapshotMs,
    runMs: Date.now() - started,
    lateWakes: service.limiterFor('telegram').lateWakes,
    peakHeapUsedKiB: Math.round(peakHeapUsed / 1024),
    heapAfterGcKiB: Math.round(process.memoryUsage().heapUsed / 1024),
    heapMidwayAfterGcKiB: Math.round(heapMidway / 1024),
  };
  process.send!(report);
  await service.stop();
  await bot.stop();
  await app.close();
}

async function runScenario(scenario: Scenario): Promise<Record<string, unknown>> {
  const fake = await FakeTelegramServer.start();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-bench-broadcast-'));
  try {
    await seedUsersBulk(
      dataDir,
      Array.from({ length: scenario.recipients }, (_, i) => userRecord('telegram', String(FIRST_CHAT_ID + i))),
    );
    let lastUpdate = 0;
    for (let i = 0; i < scenario.recipients; i++) lastUpdate = fake.sendText('hi', { from: { id: FIRST_CHAT_ID + i, first_name: `B${i}` } }).update_id;
    await fetch(`${fake.apiRoot}/bot${fake.token}/getUpdates?offset=${lastUpdate + 1}&timeout=0`);
    fake.calls.length = 0;

    const child = fork(THIS_FILE, [CHILD_FLAG], {
      execArgv: ['--import', 'tsx', '--expose-gc', ...(process.env.BENCH_BROADCAST_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_BROADCAST_CPU_PROF] : [])],
      env: { ...process.env, VOICETWIN_BENCH_BROADCAST: JSON.stringify({ dataDir, apiRoot: fake.apiRoot, token: fake.token, scenario }) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const [report] = (await Promise.race([
      once(child, 'message'),
      once(child, 'exit').then(([code]) => {
        throw new Error(`the broadcasting process exited (${String(code)}) without a report`);
      }),
    ])) as [ChildReport];
    await once(child, 'exit');

    const voices = fake.callsTo('sendVoice').filter((c) => c.status === 200);
    const times = voices.map((c) => c.atMs).sort((a, b) => a - b);
    const spanSec = (times.at(-1)! - times[0]!) / 1000;
    const achievedPerSec = (times.length - 1) / spanSec;
    const fraction = achievedPerSec / scenario.messagesPerSec;
    const messages = messageCalls(fake.calls);
    const perChat = voicesPerChat(fake.calls);
    const chatGap = minGapPerKey(messages.map((c) => ({ key: String(c.params.chat_id), atMs: c.atMs })));
    return {
      recipients: scenario.recipients,
      allowedPerSec: scenario.messagesPerSec,
      perChatIntervalMs: scenario.perChatIntervalMs,
      achievedPerSec: round(achievedPerSec, 2),
      fractionOfAllowed: round(fraction),
      goal: GOAL_FRACTION,
      met: fraction >= GOAL_FRACTION,
      sendSpanSec: round(spanSec, 2),
      maxMessagesInAnySecond: maxInWindow(messages.map((c) => c.atMs), 1000),
      // Each recipient gets one message, so there is no per-chat gap unless something was sent twice.
      minPerChatGapMs: Number.isFinite(chatGap) ? chatGap : null,
      voiceNotesDelivered: voices.length,
      duplicates: [...perChat.values()].filter((n) => n > 1).length,
      settled: report.status.counts.sent + report.status.counts.failed + report.status.counts.skipped,
      state: report.status.state,
      limiterLateWakes: report.lateWakes,
      snapshotMs: report.snapshotMs,
      totalSec: round(report.runMs / 1000, 2),
      peakRssMiB: round(report.peakRssKiB / 1024, 1),
      peakHeapUsedMiB: round(report.peakHeapUsedKiB / 1024, 1),
      heapAfterGcMidwayMiB: round(report.heapMidwayAfterGcKiB / 1024, 1),
      heapAfterGcAtEndMiB: round(report.heapAfterGcKiB / 1024, 1),
    };
  } finally {
    await fake.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * Runs the broadcast scenarios (see the module comment).
 * @returns per scenario: allowed and achieved rate (messages/s), their ratio against the 0.95 goal,
 *   the densest one-second window and the smallest per-chat gap seen by the server, duplicates,
 *   settled recipients, snapshot and total time, and the broadcasting process's peak RSS (MiB)
 */
export async function benchBroadcast(): Promise<Record<string, unknown>> {
  const env = process.env;
  const scenarios: Scenario[] = [
    { name: 'telegram30', recipients: Number(env.BENCH_BROADCAST_REAL_RECIPIENTS ?? 1500), messagesPerSec: 30, perChatIntervalMs: 1000, maxInFlight: 32 },
    { name: 'scaled10k', recipients: Number(env.BENCH_BROADCAST_RECIPIENTS ?? 10_000), messagesPerSec: Number(env.BENCH_BROADCAST_SCALED_RATE ?? 300), perChatIntervalMs: 100, maxInFlight: 64 },
  ];
  const out: Record<string, unknown> = {};
  for (const scenario of scenarios) out[scenario.name] = await runScenario(scenario);
  return out;
}

if (process.argv.includes(CHILD_FLAG)) {
  await runChild();
} else if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.stdout.write(`${JSON.stringify(await benchBroadcast(), null, 2)}\n`);
}
