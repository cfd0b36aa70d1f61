/**
 * Telegram benchmark: many users sending voice notes at once through the real grammY adapter.
 *
 * The fake Bot API server (test/fakes/telegram/server.ts, no added latency) runs in this process;
 * the real app (SQLite store over a temporary data dir, the real engine and voice-note pipeline) is
 * built with zero-latency providers (bench/providers.ts), and `startTelegramBot` long-polls the fake
 * with its production flood control (1 message/s per chat, 30/s overall; src/bots/telegram/throttle.ts).
 *
 * Each simulated user sends an espeak-ng voice note (Ogg/Opus, made once), waits for the bot's
 * `sendVoice`, then sends the next, so all users are in flight at once (a closed loop: the time to a
 * reply includes waiting behind the other users' turns, about users / turns per second). Latency is measured on the
 * fake's recorded timestamps: from the update's delivery in a `getUpdates` response (the later of the
 * poll's arrival and the update's enqueueing, since a waiting poll is answered the moment an update
 * arrives) to the arrival of the matching `sendVoice` request. Throughput is completed turns over
 * the whole measured run (first voice note sent → last `sendVoice` received).
 *
 * The outbound throttle bounds throughput: at most 30 messages/s overall, and one per second per chat.
 * The report gives the achieved fraction of 30/s. The fake, the bot, the engine and the ffmpeg
 * children (probe, decode, Opus encode per turn) share this machine's cores.
 *
 * Run alone with `npx tsx bench/telegram.ts`; `bench/run.ts` calls {@link benchTelegram}.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config.js';
import { buildApp, type App } from '../src/app.js';
import { startTelegramBot, type TelegramBotHandle } from '../src/bots/telegram/index.js';
import { THROTTLED_METHODS } from '../src/bots/telegram/throttle.js';
import type { EngineEvent, TurnTimings } from '../src/core/engine.js';
import { silentLogger } from '../src/core/log.js';
import { FakeTelegramServer, type FakeUser, type RecordedCall } from '../test/fakes/telegram/server.js';
import { zeroLatencyProviders } from './providers.js';

/** Telegram's overall limit the adapter keeps to, messages/s (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this). */
const ALLOWED_PER_SEC = 30;
/** Telegram's per-chat limit the adapter keeps to: one message per second in a private chat (same FAQ). */
const PER_CHAT_INTERVAL_MS = 1000;
const DEFAULT_USERS = 60;
/** The issue asks for at least this many simulated users. */
const MIN_USERS = 50;
const DEFAULT_TURNS_PER_USER = 2;
/** A user whose reply has not arrived after this long gives up (the turn counts as failed). */
const TURN_TIMEOUT_MS = 60_000;
/**
 * No user starts a new turn after this long into the measured run, so the scenario stays near 90 s on
 * a slow or busy machine (the turns in flight still finish); the report counts the turns left out.
 */
const SEND_BUDGET_MS = 25_000;
const FIRST_USER_ID = 700_000;
const WARM_UP_USER_ID = 699_999;
const DATA_KEY = '5a'.repeat(32);
const SPEECH =
  'Hi there, I just got back from a long walk by the river. Could you help me plan a quiet weekend with a few friends and some time to read?';
const TTS_TEXT = 'Planning ahead sounds good, and a walk by the river is a lovely idea. What matters most to you this weekend?';

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr?.toString() ?? `exit ${String(r.status)}`}`);
  return r.stdout.toString();
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function stats(values: number[]): { p50Ms: number; p95Ms: number; maxMs: number; n: number } {
  return { p50Ms: round(percentile(values, 50), 1), p95Ms: round(percentile(values, 95), 1), maxMs: round(Math.max(0, ...values), 1), n: values.length };
}

/** Most timestamps (ms) inside any window of `windowMs`. */
function maxInWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let lo = 0, hi = 0; hi < sorted.length; hi++) {
    while (sorted[hi]! - sorted[lo]! >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

/** The voice note every user sends: espeak-ng speech as Ogg/Opus mono 48 kHz, and its length in seconds. */
function makeVoiceNote(dir: string): { path: string; durationSec: number } {
  const wav = path.join(dir, 'speech.wav');
  const ogg = path.join(dir, 'note.ogg');
  run('espeak-ng', ['-v', 'en-us', '-s', '150', '-w', wav, '--', SPEECH]);
  run('ffmpeg', ['-loglevel', 'error', '-y', '-i', wav, '-ac', '1', '-ar', '48000', '-c:a', 'libopus', '-b:a', '32k', ogg]);
  const durationSec = Number(run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', ogg]).trim());
  return { path: ogg, durationSec };
}

/** A sendVoice to a chat that the fake accepted. */
interface DeliveredVoice {
  chatId: number;
  atMs: number;
}

/**
 * Watches the fake's call log incrementally and resolves each chat's waiter on its next accepted
 * `sendVoice` (so waiting costs O(new calls), not a scan of the whole log per user).
 */
class ReplyWatcher {
  private scanned = 0;
  private readonly waiters = new Map<number, () => void>();
  readonly delivered: DeliveredVoice[] = [];

  constructor(private readonly fake: FakeTelegramServer) {}

  /** Resolves on the next accepted `sendVoice` to `chatId` after this call, or false after `timeoutMs`. */
  next(chatId: number, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(chatId);
        resolve(false);
      }, timeoutMs);
      this.waiters.set(chatId, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Reads the calls recorded since the last scan; returns nothing so it can serve as a wait condition. */
  scan(): void {
    const calls = this.fake.calls;
    for (; this.scanned < calls.length; this.scanned++) {
      const call = calls[this.scanned]!;
      if (call.method !== 'sendVoice' || call.status !== 200) continue;
      const chatId = Number(call.params.chat_id);
      this.delivered.push({ chatId, atMs: call.atMs });
      const waiter = this.waiters.get(chatId);
      this.waiters.delete(chatId);
      waiter?.();
    }
  }
}

/**
 * When each update left the fake: the later of the `getUpdates` request's arrival and the update's
 * enqueueing, for the first successful `getUpdates` whose result carried it.
 */
function deliveryTimes(calls: RecordedCall[], enqueuedAtMs: Map<number, number>): Map<number, number> {
  const delivered = new Map<number, number>();
  for (const call of calls) {
    if (call.method !== 'getUpdates' || !call.response.ok) continue;
    for (const update of call.response.result as { update_id: number }[]) {
      const enqueued = enqueuedAtMs.get(update.update_id);
      if (enqueued === undefined || delivered.has(update.update_id)) continue;
      delivered.set(update.update_id, Math.max(call.atMs, enqueued));
    }
  }
  return delivered;
}

/**
 * Runs the Telegram scenario (see the module comment).
 *
 * @param options.users simulated users in flight at once; default 60, at least 50
 * @param options.turnsPerUser voice notes each user sends, each after the previous reply; default 2
 *   (no new turn starts after 25 s of measuring; those are counted in `turnsLeftOutForTime`)
 * @returns `{ users, turnsPerUser, voiceNoteSec, voiceNoteBytes, turnConcurrency, completedTurns,
 *   turnsLeftOutForTime, wallSec, turnsPerSec,
 *   throttle: { allowedPerSec, perChatIntervalMs, fractionOfAllowed, maxMessagesInAnySecond,
 *   minPerChatGapMs }, latency: { deliveryToSendVoice, enqueueToDelivery, engineTurn (p50/p95/max ms),
 *   engineStagesP50Ms },
 *   errors: { total, failedTurns, errorReplies, apiErrors }, peakRssMiB (process maxRSS),
 *   scenarioPeakRssMiB (RSS sampled every 100 ms during the run) }`
 * @throws RangeError when `users` < 50 or `turnsPerUser` < 1 (or not integers); Error when espeak-ng,
 *   ffmpeg or ffprobe fail, or the bot cannot start against the fake server
 */
export async function benchTelegram(options: { users?: number; turnsPerUser?: number } = {}): Promise<Record<string, unknown>> {
  const users = options.users ?? DEFAULT_USERS;
  const turnsPerUser = options.turnsPerUser ?? DEFAULT_TURNS_PER_USER;
  if (!Number.isInteger(users) || users < MIN_USERS) throw new RangeError(`users must be an integer ≥ ${MIN_USERS}, got ${users}`);
  if (!Number.isInteger(turnsPerUser) || turnsPerUser < 1) throw new RangeError(`turnsPerUser must be an integer ≥ 1, got ${turnsPerUser}`);

  const dir = await mkdtemp(path.join(tmpdir(), 'voicetwin-bench-telegram-'));
  let fake: FakeTelegramServer | undefined;
  let app: App | undefined;
  let bot: TelegramBotHandle | undefined;
  try {
    const voiceNote = makeVoiceNote(dir);
    const note = await readFile(voiceNote.path);
    const ttsWavPath = path.join(dir, 'tts.wav');
    run('espeak-ng', ['-v', 'en-us', '-w', ttsWavPath, '--', TTS_TEXT]);
    const ttsWav = await readFile(ttsWavPath);

    fake = await FakeTelegramServer.start();
    const turnTimings: TurnTimings[] = [];
    let measuring = false;
    const config = loadConfig({
      VOICETWIN_DATA_DIR: path.join(dir, 'data'),
      VOICETWIN_DATA_KEY: DATA_KEY,
      LOG_LEVEL: 'silent',
      INSIGHT_EVERY: '0',
      MEMORY_EVERY: '0',
    });
    app = await buildApp(config, {
      providers: zeroLatencyProviders(ttsWav),
      logger: silentLogger,
      observer: (e: EngineEvent) => {
        if (measuring && e.type === 'turn') turnTimings.push(e.timings);
      },
    });
    await app.engine.start();
    bot = await startTelegramBot({ token: fake.token, engine: app.engine, logger: silentLogger, apiRoot: fake.apiRoot });

    const watcher = new ReplyWatcher(fake);
    const stopWatching = (() => {
      let done = false;
      const watching = fake.waitUntil(
        () => {
          watcher.scan();
          return done;
        },
        24 * 3600_000,
        'the run to end',
      );
      return async () => {
        done = true;
        watcher.scan();
        await watching;
      };
    })();
    const enqueuedAtMs = new Map<number, number>();
    const turns: { updateId: number; chatId: number; index: number }[] = [];
    const fakeServer = fake;
    const sendNote = (from: FakeUser): number => {
      const atMs = Date.now();
      const { update_id } = fakeServer.sendVoice(note, { from, durationSec: voiceNote.durationSec });
      enqueuedAtMs.set(update_id, atMs);
      return update_id;
    };

    // Warm-up turn (JIT, ffmpeg binaries in the page cache, SQLite), not measured.
    const warmUp = watcher.next(WARM_UP_USER_ID, TURN_TIMEOUT_MS);
    sendNote({ id: WARM_UP_USER_ID, first_name: 'Warm' });
    if (!(await warmUp)) throw new Error('the warm-up voice note got no sendVoice reply');

    let failedTurns = 0;
    let turnsLeftOut = 0;
    let peakRss = process.memoryUsage.rss();
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 100);
    const callsBefore = fake.calls.length;
    measuring = true;
    const startedMs = Date.now();
    await Promise.all(
      Array.from({ length: users }, async (_, u) => {
        const from: FakeUser = { id: FIRST_USER_ID + u, first_name: `User${u}`, language_code: 'en' };
        for (let index = 0; index < turnsPerUser; index++) {
          if (Date.now() - startedMs > SEND_BUDGET_MS) {
            turnsLeftOut += turnsPerUser - index;
            return;
          }
          const reply = watcher.next(from.id, TURN_TIMEOUT_MS);
          turns.push({ updateId: sendNote(from), chatId: from.id, index });
          if (!(await reply)) {
            failedTurns += turnsPerUser - index;
            return;
          }
        }
      }),
    );
    measuring = false;
    clearInterval(sampler);
    await stopWatching();

    const calls = fake.calls.slice(callsBefore);
    const userIds = (id: unknown) => Number(id) >= FIRST_USER_ID;
    const voices = watcher.delivered.filter((v) => userIds(v.chatId) && v.atMs >= startedMs);
    const endMs = voices.length > 0 ? Math.max(...voices.map((v) => v.atMs)) : Date.now();
    const wallSec = (endMs - startedMs) / 1000;
    const turnsPerSec = voices.length / wallSec;

    // The k-th accepted sendVoice to a chat answers that user's k-th voice note (users wait for each reply).
    const voicesByChat = new Map<number, number[]>();
    for (const v of voices) voicesByChat.set(v.chatId, [...(voicesByChat.get(v.chatId) ?? []), v.atMs]);
    const delivered = deliveryTimes(fake.calls, enqueuedAtMs);
    const deliveryToSendVoice: number[] = [];
    const enqueueToDelivery: number[] = [];
    for (const turn of turns) {
      const sentAt = voicesByChat.get(turn.chatId)?.[turn.index];
      const deliveredAt = delivered.get(turn.updateId);
      if (deliveredAt !== undefined) enqueueToDelivery.push(deliveredAt - enqueuedAtMs.get(turn.updateId)!);
      if (sentAt !== undefined && deliveredAt !== undefined) deliveryToSendVoice.push(sentAt - deliveredAt);
    }

    const messages = calls.filter((c) => THROTTLED_METHODS.has(c.method) && c.status === 200);
    let minChatGapMs = Infinity;
    const lastByChat = new Map<string, number>();
    for (const c of [...messages].sort((a, b) => a.atMs - b.atMs)) {
      const chat = String(c.params.chat_id);
      const last = lastByChat.get(chat);
      if (last !== undefined) minChatGapMs = Math.min(minChatGapMs, c.atMs - last);
      lastByChat.set(chat, c.atMs);
    }
    const errorReplies = calls.filter((c) => c.method === 'sendMessage' && userIds(c.params.chat_id)).length;
    const apiErrors: Record<string, number> = {};
    for (const c of calls) if (c.status !== 200 && c.status !== 0) apiErrors[c.method] = (apiErrors[c.method] ?? 0) + 1;
    const apiErrorCount = Object.values(apiErrors).reduce((a, b) => a + b, 0);

    return {
      users,
      turnsPerUser,
      voiceNoteSec: round(voiceNote.durationSec, 2),
      voiceNoteBytes: note.length,
      turnConcurrency: config.engine.turnConcurrency,
      completedTurns: voices.length,
      turnsLeftOutForTime: turnsLeftOut,
      wallSec: round(wallSec),
      turnsPerSec: round(turnsPerSec),
      throttle: {
        allowedPerSec: ALLOWED_PER_SEC,
        perChatIntervalMs: PER_CHAT_INTERVAL_MS,
        fractionOfAllowed: round(turnsPerSec / ALLOWED_PER_SEC, 3),
        maxMessagesInAnySecond: maxInWindow(messages.map((c) => c.atMs), 1000),
        minPerChatGapMs: Number.isFinite(minChatGapMs) ? minChatGapMs : null,
      },
      latency: {
        deliveryToSendVoice: stats(deliveryToSendVoice),
        enqueueToDelivery: stats(enqueueToDelivery),
        engineTurn: stats(turnTimings.map((t) => t.totalMs)),
        engineStagesP50Ms: Object.fromEntries(
          (['decodeMs', 'sttMs', 'chatMs', 'ttsMs', 'encodeMs', 'storeMs'] as const).map((k) => [k, round(percentile(turnTimings.map((t) => t[k]), 50), 1)]),
        ),
      },
      // Closed loop: every user waits for its reply, so the time to a reply is about users / turnsPerSec.
      errors: { total: failedTurns + errorReplies + apiErrorCount, failedTurns, errorReplies, apiErrors },
      peakRssMiB: round(process.resourceUsage().maxRSS / 1024, 1),
      scenarioPeakRssMiB: round(peakRss / 1024 / 1024, 1),
    };
  } finally {
    await bot?.stop();
    await app?.engine.whenIdle();
    await app?.close();
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.stdout.write(`${JSON.stringify(await benchTelegram(), null, 2)}\n`);
}
