/**
 * The broadcast service over the real engine (real voice rendering with ffmpeg, memory store) and
 * recording channel senders: pacing, recipient states, 403/429, crash and resume, cancel, voices,
 * budget, opt-out, dry run and the operator-only command.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { APPROXIMATION_NOTE } from '../../../src/core/engine.js';
import { BroadcastJournal, BroadcastService, type BroadcastServiceOptions, type BroadcastStatus, type RecipientRecord } from '../../../src/core/broadcast/index.js';
import type { Store } from '../../../src/core/store/types.js';
import { RecipientUnavailableError, type InboundMessage, type OutboundReply, type ReplyTarget } from '../../../src/core/types.js';
import { UsageMeter } from '../../../src/core/usage.js';
import {
  RecordingSender,
  crashableStore,
  engineOver,
  makeEngine,
  makeReady,
  maxInWindow,
  memoryStore,
  openQueue,
  seedUsers,
  twinVoice,
  waitFor,
} from './support.js';

/** The operator's chat, as a reply target that records replies, status messages and their edits. */
class OperatorChat implements ReplyTarget {
  replies: OutboundReply[] = [];
  statuses: string[] = [];
  edits: string[] = [];
  async reply(reply: OutboundReply): Promise<void> {
    this.replies.push(reply);
  }
  async activity(): Promise<void> {}
  async status(text: string): Promise<(text: string) => Promise<void>> {
    this.statuses.push(text);
    return async (next) => void this.edits.push(next);
  }
  lastText(): string {
    return this.replies.at(-1)?.text ?? '';
  }
}

const FAST = { telegram: { messagesPerSec: 400, perChatIntervalMs: 100, maxInFlight: 16 }, discord: { messagesPerSec: 200, perChatIntervalMs: 100, maxInFlight: 4 } };

interface Harness {
  store: Store;
  engine: ReturnType<typeof makeEngine>;
  tg: RecordingSender;
  service: BroadcastService;
  operator: OperatorChat;
  say(args: string, userId?: string, target?: ReplyTarget): Promise<void>;
  command(name: string, userId: string, target?: ReplyTarget): Promise<void>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

let messageNo = 0;
/** A memory store, the embedded job queue beside it, an engine and the service; `start` false leaves the queue stopped. */
async function harness(options: Partial<BroadcastServiceOptions> = {}, start = true): Promise<Harness> {
  const { store, dataDir, close } = await memoryStore();
  const engine = makeEngine(store, {}, await openQueue(dataDir));
  const tg = new RecordingSender('telegram');
  engine.registerSender(tg);
  const service = new BroadcastService({ engine, pace: FAST, checkpointIntervalMs: 50, progressIntervalMs: 100, ...options });
  engine.registerOperatorCommand(service.command());
  cleanups.push(async () => {
    await service.stop();
    await engine.stop();
    await close();
  });
  if (start) await service.start();
  const operator = new OperatorChat();
  const command = async (name: string, userId: string, target: ReplyTarget = operator, args = ''): Promise<void> => {
    const message: InboundMessage = { id: `test:${++messageNo}`, channel: 'telegram', chatId: userId, userId, receivedAtMs: Date.now(), command: { name, args } };
    await engine.handle(message, target);
  };
  return {
    store,
    engine,
    tg,
    service,
    operator,
    say: (args, userId = '1', target = operator) => command('broadcast', userId, target, args),
    command: (name, userId, target) => command(name, userId, target),
  };
}

/** Every recipient record of the job's telegram lane, by chat id. */
async function records(store: Store, jobId: string, count: number, channel: 'telegram' | 'discord' = 'telegram'): Promise<Map<string, RecipientRecord | undefined>> {
  const journal = new BroadcastJournal(store.kv, jobId);
  const out = new Map<string, RecipientRecord | undefined>();
  for (let i = 0; i < count; i++) {
    const entry = await journal.entry(channel, i);
    out.set(entry.chatId, entry.skip ? { state: 'skipped', atMs: 0, reason: entry.skip } : await journal.record(channel, i));
  }
  return out;
}

function voiceSends(tg: RecordingSender) {
  return tg.delivered().filter((s) => s.reply.voice);
}

async function finished(service: BroadcastService): Promise<BroadcastStatus> {
  await service.whenIdle();
  const status = await service.status();
  expect(status).toBeDefined();
  return status!;
}

describe('broadcast service', () => {
  it('sends each recipient one voice note at the configured pace and ends with every recipient settled', async () => {
    const h = await harness();
    await seedUsers(h.store, 'telegram', 300, 1000, { optedOut: (i) => i % 50 === 7, blocked: (i) => i % 75 === 3 });
    await h.say('--voice default Hello everyone, the twin got an update.');
    expect(h.operator.statuses[0]).toMatch(/^Broadcast bc-[0-9a-f]{6} starting: 291 recipients \(10 skipped\)/);
    const status = await finished(h.service);

    expect(status.state).toBe('done');
    expect(status.counts).toMatchObject({ total: 301, sent: 291, failed: 0, skipped: 10, skippedBy: { 'opted out': 6, blocked: 4 }, sentBy: { default: 291 } });
    expect(status.remaining + status.inFlight).toBe(0);
    const sends = voiceSends(h.tg);
    const perChat = new Map<string, number>();
    for (const s of sends) perChat.set(s.chatId, (perChat.get(s.chatId) ?? 0) + 1);
    expect(sends).toHaveLength(291);
    expect(Math.max(...perChat.values())).toBe(1);
    expect(maxInWindow(sends.map((s) => s.atMs), 1000)).toBeLessThanOrEqual(400);
    // Every recipient has a final record; the skipped are exactly the opted-out and blocked users.
    const states = await records(h.store, status.id, 301);
    expect([...states.values()].every((r) => r && r.state !== 'sending')).toBe(true);
    expect([...states.entries()].filter(([, r]) => r?.state === 'skipped').map(([chat]) => Number(chat) - 1000).sort((a, b) => a - b)).toEqual([3, 7, 57, 78, 107, 153, 157, 207, 228, 257]);
    // The voice note is real Ogg/Opus with the text as caption, per the user's setting.
    const first = sends[0]!.reply;
    expect(first.voice!.oggOpus.subarray(0, 4).toString()).toBe('OggS');
    expect(first.voice!.durationSec).toBeGreaterThan(1);
    expect(first).toMatchObject({ text: 'Hello everyone, the twin got an update.', sendTextWithVoice: true });
    // One synthesis for everyone (the default voice, cached), not one per recipient.
    expect(h.engine.providers.synthCalls).toHaveLength(1);
    // Progress went to the operator's message and a summary followed.
    expect(h.operator.edits.at(-1)).toMatch(/291 of 301 sent · 0 failed · 10 skipped · 0 remaining/);
    const summary = h.tg.delivered().find((s) => s.chatId === '1' && s.reply.kind === 'status')!.reply.text!;
    expect(summary).toContain('finished');
    expect(summary).toContain('Sent: 291 of 301 (default voice 291).');
    expect(summary).toContain('Skipped: 10 (opted out 6, blocked 4).');
  });

  it('answers a dry run with counts, duration and cost, and stores and sends nothing', async () => {
    const h = await harness({ prices: { 'test-espeak': { ttsUsdPer1kChars: 0.3 } } });
    await seedUsers(h.store, 'telegram', 100, 1000, { optedOut: (i) => i < 10 });
    for (let i = 20; i < 25; i++) await makeReady(h.store, `telegram:${1000 + i}`, twinVoice(String(i), 30 + i));
    await h.say('--dry-run --audience telegram Good morning!');
    const text = h.operator.lastText();
    expect(text).toContain('Dry run, nothing sent. Audience: telegram, voice: own.');
    expect(text).toContain('Recipients: 91 (telegram 91); skipped: 10 (opted out 10).');
    expect(text).toContain('Own twin voice: 5;');
    expect(text).toMatch(/Synthesis: at most 78 characters with test-espeak, about \$0\.02\./);
    const estimate = await h.service.estimate({ text: 'Good morning!', audience: 'telegram', voice: 'own', dryRun: true });
    // 91 sends at 400/s with 2 % headroom, or 5 syntheses of ~1.5 s two at a time: whichever is longer.
    expect(estimate.durationSec).toBeCloseTo(Math.max(91 / (400 / 1.02), (5 * 1.5) / 2), 5);
    expect(estimate.ttsChars).toBe('Good morning!'.length * 6);
    expect(h.tg.sends).toHaveLength(0);
    expect(h.engine.providers.synthCalls).toHaveLength(0);
    expect(await h.store.jobs.listUnfinished()).toEqual([]);
    expect(await h.service.status()).toBeUndefined();
  });

  it("refuses a non-operator's /broadcast, logs nothing as queued and sends nothing", async () => {
    const h = await harness();
    await seedUsers(h.store, 'telegram', 5, 1000);
    const stranger = new OperatorChat();
    await h.say('Hello all', '2', stranger);
    expect(stranger.replies).toEqual([{ kind: 'error', code: 'FORBIDDEN', text: '/broadcast is only for the operators of this VoiceTwin.' }]);
    await h.say('status', '2', stranger);
    expect(stranger.replies[1]).toMatchObject({ kind: 'error' });
    await h.service.whenIdle();
    expect(await h.store.jobs.listUnfinished()).toEqual([]);
    expect(await BroadcastJournal.recent(h.store.kv)).toEqual([]);
    expect(h.tg.sends).toHaveLength(0);
  });

  it('marks a recipient who blocked the bot (403) and skips them in the next broadcast', async () => {
    const h = await harness();
    await seedUsers(h.store, 'telegram', 20, 1000);
    h.tg.script = (chatId) => {
      if (chatId === '1005') throw new RecipientUnavailableError('telegram', chatId, 'Forbidden: bot was blocked by the user');
    };
    await h.say('--voice default First announcement');
    const first = await finished(h.service);
    expect(first.counts).toMatchObject({ sent: 20, failed: 1, failedBy: { unreachable: 1 } });
    expect((await h.store.users.get('telegram:1005'))?.blocked).toBe(true);
    const record = (await records(h.store, first.id, 21)).get('1005');
    expect(record).toMatchObject({ state: 'failed', category: 'unreachable', reason: 'unreachable: Forbidden: bot was blocked by the user' });

    const attemptsBefore = h.tg.sends.filter((s) => s.chatId === '1005').length;
    await h.say('--voice default Second announcement');
    const second = await finished(h.service);
    expect(second.id).not.toBe(first.id);
    expect(second.counts).toMatchObject({ sent: 20, failed: 0, skipped: 1, skippedBy: { blocked: 1 } });
    expect(h.tg.sends.filter((s) => s.chatId === '1005')).toHaveLength(attemptsBefore);
  });

  it('pauses the channel for retry_after on a 429 and sends that recipient once afterwards', async () => {
    const h = await harness({ pace: { telegram: { messagesPerSec: 100, perChatIntervalMs: 100, maxInFlight: 4 } } });
    await seedUsers(h.store, 'telegram', 60, 1000);
    h.tg.script = (chatId, attempt) => {
      if (chatId === '1010' && attempt === 1) {
        throw Object.assign(new Error('Call to sendVoice failed! (429: Too Many Requests: retry after 1)'), { error_code: 429, parameters: { retry_after: 1 } });
      }
    };
    await h.say('--voice default Rate limits are real');
    const status = await finished(h.service);
    expect(status.counts).toMatchObject({ sent: 61, failed: 0 });
    const refused = h.tg.sends.find((s) => s.chatId === '1010' && s.outcome !== 'delivered')!;
    const retried = h.tg.delivered().filter((s) => s.chatId === '1010');
    expect(retried).toHaveLength(1);
    expect(retried[0]!.atMs - refused.atMs).toBeGreaterThanOrEqual(1000);
    // Nothing else started during the pause (bar sends whose slot was granted before the 429 arrived).
    const duringPause = h.tg.sends.filter((s) => s.atMs > refused.atMs + 50 && s.atMs < refused.atMs + 1000);
    expect(duringPause).toEqual([]);
  });

  it('gives up on a recipient still rate limited after the allowed retries', async () => {
    const h = await harness({ maxRateLimitRetries: 1 });
    await seedUsers(h.store, 'telegram', 3, 1000);
    h.tg.script = (chatId) => {
      if (chatId === '1001') throw Object.assign(new Error('429'), { retryAfterSec: 0.2 });
    };
    await h.say('--voice default Hi');
    const status = await finished(h.service);
    expect(status.counts).toMatchObject({ sent: 3, failed: 1, failedBy: { 'rate limited': 1 } });
    expect(h.tg.sends.filter((s) => s.chatId === '1001')).toHaveLength(2);
  });

  it('does not re-send after an error of unknown outcome', async () => {
    const h = await harness();
    await seedUsers(h.store, 'telegram', 3, 1000);
    h.tg.script = (chatId) => {
      if (chatId === '1002') throw new Error('socket hang up');
    };
    await h.say('--voice default Hi');
    const status = await finished(h.service);
    expect(status.counts).toMatchObject({ sent: 3, failed: 1, failedBy: { 'send error': 1 } });
    expect(h.tg.sends.filter((s) => s.chatId === '1002')).toHaveLength(1);
  });

  it.each([3, 97, 240])('resumes after a crash (at send %i): no duplicate, and only the reported in-flight recipients missed', async (crashAfter) => {
    const h = await harness();
    const users = await seedUsers(h.store, 'telegram', 250, 1000);
    h.tg.latencyMs = 15;
    const crashable = crashableStore(h.store);
    const options = { pace: { telegram: { messagesPerSec: 300, perChatIntervalMs: 100, maxInFlight: 8 } }, checkpointIntervalMs: 50 };
    // The doomed process and the revived one share a queue file, each with its own connection.
    const queueDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-broadcast-queue-'));
    cleanups.push(() => rm(queueDir, { recursive: true, force: true }));
    const doomedQueue = await openQueue(queueDir);
    const doomed = new BroadcastService({ engine: engineOver(h.engine, crashable.store), queue: doomedQueue, ...options });
    await doomed.start();
    await doomed.create({ text: 'Before and after a crash', audience: 'all', voice: 'default', dryRun: false }, { requestedBy: 'telegram:1', operatorKey: 'telegram:1', progressAddress: { channel: 'telegram', chatId: '1' } });
    await waitFor(() => voiceSends(h.tg).length >= crashAfter, `${crashAfter} sends`);
    crashable.crash();
    await new Promise((resolve) => setTimeout(resolve, 100)); // sends already on the wire complete
    const beforeRestart = voiceSends(h.tg).length;
    expect(beforeRestart).toBeLessThan(250);
    // The dead process's lease ends: its running broadcast job returns to the queue (its handler
    // stays stuck on the crashed store, as a killed process would).
    await doomedQueue.close(0);

    const revivedQueue = await openQueue(queueDir);
    const revived = new BroadcastService({ engine: h.engine, queue: revivedQueue, ...options });
    cleanups.push(async () => {
      await revived.stop();
      await revivedQueue.close();
    });
    await revived.start();
    await revived.whenIdle();
    const status = (await revived.status())!;
    expect(status.state).toBe('done');
    const inFlight = status.counts.failedBy['in flight at crash'] ?? 0;
    expect(status.inFlightAtCrash).toBe(inFlight);
    expect(inFlight).toBeLessThanOrEqual(8 + 1); // the sends in flight, and the one waiting for its slot
    expect(status.counts.sent + status.counts.failed + status.counts.skipped).toBe(status.counts.total);

    const delivered = new Map<string, number>();
    for (const s of voiceSends(h.tg)) delivered.set(s.chatId, (delivered.get(s.chatId) ?? 0) + 1);
    expect(Math.max(...delivered.values())).toBe(1); // no duplicate
    const states = await records(h.store, status.id, 250);
    const missed = users.map((u) => u.address.chatId).filter((chat) => !delivered.has(chat));
    for (const chat of missed) expect(states.get(chat)).toMatchObject({ state: 'failed', category: 'in flight at crash' }); // no silent gap
    expect(missed.length).toBeLessThanOrEqual(inFlight);
    // The operator hears about the restart and the in-flight messages.
    const toOperator = h.tg.delivered().filter((s) => s.chatId === '1' && s.reply.kind === 'status').map((s) => s.reply.text);
    expect(toOperator[0]).toMatch(/resumed after a restart/);
    if (inFlight > 0) expect(toOperator.at(-1)).toContain('were being sent when the service stopped');
  });

  it('stops dispatching on /broadcast cancel; what was sent stays sent and the rest is reported', async () => {
    const h = await harness({ pace: { telegram: { messagesPerSec: 100, perChatIntervalMs: 100, maxInFlight: 4 } } });
    await seedUsers(h.store, 'telegram', 300, 1000);
    await h.say('--voice default This will be cut short');
    await waitFor(() => voiceSends(h.tg).length >= 30, '30 sends');
    await h.say('cancel');
    expect(h.operator.lastText()).toMatch(/^Cancelling broadcast bc-/);
    const status = await finished(h.service);
    const sentAtEnd = voiceSends(h.tg).length;
    expect(status.state).toBe('cancelled');
    expect(status.counts.sent).toBe(sentAtEnd);
    expect(sentAtEnd).toBeLessThan(200);
    expect(status.remaining).toBe(301 - sentAtEnd);
    await h.say('status');
    expect(h.operator.lastText()).toContain('was cancelled');
    expect(h.operator.lastText()).toContain(`Not sent: ${301 - sentAtEnd}.`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(voiceSends(h.tg)).toHaveLength(sentAtEnd);
  });

  it('speaks in each listener’s own twin voice with bounded, cached synthesis and the default voice for the rest', async () => {
    const h = await harness({ synthesisConcurrency: 2 });
    await seedUsers(h.store, 'telegram', 8, 1000);
    await makeReady(h.store, 'telegram:1001', twinVoice('a', 20));
    await makeReady(h.store, 'telegram:1002', twinVoice('b', 60, true));
    await makeReady(h.store, 'telegram:1003', twinVoice('c', 90));
    await makeReady(h.store, 'telegram:1004', twinVoice('d', 75));
    let active = 0;
    let peak = 0;
    const tts = h.engine.providers.tts;
    const synthesize = tts.synthesize.bind(tts);
    tts.synthesize = async (request) => {
      peak = Math.max(peak, ++active);
      await new Promise((resolve) => setTimeout(resolve, 40));
      try {
        return await synthesize(request);
      } finally {
        active--;
      }
    };
    await h.say('What are you grateful for today?');
    const status = await finished(h.service);
    expect(status.counts.sentBy).toEqual({ own: 4, operator: 0, default: 5 });
    expect(peak).toBeLessThanOrEqual(2);
    const byChat = new Map(voiceSends(h.tg).map((s) => [s.chatId, s.reply]));
    const defaultBytes = byChat.get('1000')!.voice!.oggOpus;
    for (const chat of ['1001', '1002', '1003', '1004']) expect(byChat.get(chat)!.voice!.oggOpus.equals(defaultBytes)).toBe(false);
    expect(byChat.get('1005')!.voice!.oggOpus.equals(defaultBytes)).toBe(true);
    expect(byChat.get('1002')!.voiceLabel).toBe(APPROXIMATION_NOTE);
    expect(byChat.get('1001')!.voiceLabel).toBeUndefined();
    expect(h.engine.providers.synthCalls.map((c) => c.voiceId ?? 'default').sort()).toEqual(['default', 'v-a', 'v-b', 'v-c', 'v-d']);

    // The same text again comes from the synthesis cache: no new synthesis.
    await h.say('What are you grateful for today?');
    await finished(h.service);
    expect(h.engine.providers.synthCalls).toHaveLength(5);
  });

  it("counts synthesis against the operator's budget and falls back to the default voice when it runs out", async () => {
    const text = 'A daily prompt for everyone.';
    const { store, dataDir } = await memoryStore().then((m) => (cleanups.push(m.close), m));
    const usage = new UsageMeter(store.kv, { limits: { dailyTtsChars: text.length * 2 } });
    const engine = makeEngine(store, {}, await openQueue(dataDir));
    const tg = new RecordingSender('telegram');
    engine.registerSender(tg);
    const service = new BroadcastService({ engine, usage, pace: FAST, synthesisConcurrency: 1 });
    cleanups.push(async () => {
      await service.stop();
      await engine.stop();
    });
    await service.start();
    await seedUsers(store, 'telegram', 6, 1000);
    for (let i = 0; i < 6; i++) await makeReady(store, `telegram:${1000 + i}`, twinVoice(String(i), 10 + i * 15));
    await service.create({ text, audience: 'all', voice: 'own', dryRun: false }, { requestedBy: 'telegram:9', operatorKey: 'telegram:9' });
    const status = await finished(service);
    expect(status.budgetExhausted).toBe(true);
    expect(status.counts.sentBy.own).toBe(2);
    expect(status.counts.sentBy.default).toBe(4);
    expect((await usage.today('telegram:9')).total.ttsChars).toBe(text.length * 3); // two own voices and the default voice
    expect((await usage.today('telegram:1000')).total.ttsChars).toBe(0);
  });

  it("speaks in the operator's twin voice when asked, and refuses that while it is not ready", async () => {
    const h = await harness();
    await seedUsers(h.store, 'telegram', 4, 1000);
    await h.say('--voice operator From me to you');
    expect(h.operator.replies.at(-1)).toMatchObject({ kind: 'error', text: expect.stringContaining('Your twin voice is not ready') });
    await makeReady(h.store, 'telegram:1', twinVoice('op', 35));
    await h.say('--voice operator From me to you');
    const status = await finished(h.service);
    expect(status.counts.sentBy).toEqual({ own: 0, operator: 5, default: 0 });
    expect(h.engine.providers.synthCalls.map((c) => c.voiceId)).toEqual(['v-op']);
  });

  it('honours /stop and /unsubscribe after the snapshot, and /start to hear broadcasts again', async () => {
    const h = await harness({}, false);
    await seedUsers(h.store, 'telegram', 3, 1000);
    const user = new OperatorChat();
    const { job } = await h.service.create({ text: 'Queued first', audience: 'all', voice: 'default', dryRun: false }, { requestedBy: 'cli' });
    await h.command('stop', '1001', user);
    expect(user.lastText()).toContain('You will no longer receive announcements');
    await h.command('unsubscribe', '1002', user);
    expect((await h.store.users.get('telegram:1002'))?.optedOut).toBe(true);
    await h.service.start();
    const first = await finished(h.service);
    expect(first.id).toBe(job.id);
    expect(first.counts).toMatchObject({ sent: 1, skipped: 2, skippedBy: { 'opted out': 2 } });

    await h.command('start', '1001', user);
    expect((await h.store.users.get('telegram:1001'))?.optedOut).toBe(false);
    await h.say('--voice default Welcome back');
    const second = await finished(h.service);
    expect(second.counts).toMatchObject({ sent: 3, skipped: 1, skippedBy: { 'opted out': 1 } });
    expect(voiceSends(h.tg).filter((s) => s.chatId === '1001').map((s) => s.reply.text)).toEqual(['Welcome back']);
  });

  it('refuses a second broadcast while one runs, and texts too long to speak', async () => {
    const h = await harness({ pace: { telegram: { messagesPerSec: 20, perChatIntervalMs: 100, maxInFlight: 2 } } });
    await seedUsers(h.store, 'telegram', 40, 1000);
    await h.say('--voice default One at a time');
    await h.say('--voice default Another one');
    expect(h.operator.replies.at(-1)).toMatchObject({ kind: 'error', text: expect.stringMatching(/^Broadcast bc-[0-9a-f]+ is not finished yet/) });
    await h.say('x'.repeat(601));
    expect(h.operator.replies.at(-1)).toMatchObject({ kind: 'error', text: expect.stringContaining('at most 600 characters') });
    // The broadcast is a queue job: it is `queued` until the queue hands it to the service.
    await waitFor(async () => (await h.service.status())?.state === 'running', 'the broadcast job to start');
    await h.say('status');
    expect(h.operator.lastText()).toMatch(/^Broadcast bc-[0-9a-f]+: \d+ of 41 sent/);
    await h.say('cancel');
    await finished(h.service);
  });

  it('reports the recipients of a channel without a running bot as failed', async () => {
    const h = await harness({ senderWaitMs: 100 });
    await seedUsers(h.store, 'telegram', 2, 1000);
    await seedUsers(h.store, 'discord', 3, 5000);
    await h.say('--dry-run --voice default Hello');
    expect(h.operator.lastText()).toContain('discord 3 (no bot running for it!)');
    await h.say('--voice default Hello');
    const status = await finished(h.service);
    expect(status.counts).toMatchObject({ total: 6, sent: 3, failed: 3, failedBy: { 'no bot running': 3 } });
  });
});
