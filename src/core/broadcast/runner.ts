/**
 * Runs one persisted broadcast job: one lane per channel, each dispatching its recipients in
 * snapshot order at the channel's pace, with bounded sends in flight and a bounded look-ahead that
 * prepares voice notes (own twin voices synthesised with bounded concurrency).
 *
 * No duplicate, no gap: before a platform call the recipient's record says `sending`; after it,
 * the outcome. A restart reads the checkpoint, settles every `sending` record it finds as
 * `failed: in flight at crash` (delivery unknown, so never re-sent) and goes on with the first
 * recipient that has no record. See journal.ts for the storage layout.
 */
import pLimit, { type LimitFunction } from 'p-limit';
import type { Logger } from '../log.js';
import { APPROXIMATION_NOTE, type Engine } from '../engine.js';
import { isUserInputError } from '../errors.js';
import type { JobRecord } from '../store/types.js';
import type { ClonedVoice } from '../providers.js';
import type { UsageMeter } from '../usage.js';
import type { RenderedVoice } from '../voice.js';
import { RecipientUnavailableError, type Channel, type ChannelSender, type OutboundReply, type VoiceNote } from '../types.js';
import { BroadcastJournal } from './journal.js';
import { retryAfterMs, type BroadcastClock, type ChannelPace, type RateLimiter } from './pacing.js';
import { progressText, summaryText } from './format.js';
import {
  countRecord,
  sumCounts,
  type AudienceEntry,
  type BroadcastChannel,
  type BroadcastCounts,
  type BroadcastJobData,
  type BroadcastStatus,
  type FailureCategory,
  type RecipientRecord,
  type SpokenVoice,
} from './types.js';

/** The parts of the {@link Engine} a broadcast uses. */
export type BroadcastEngine = Pick<Engine, 'store' | 'voice' | 'settings' | 'providers' | 'senderFor' | 'now' | 'isOperator'> & Partial<Pick<Engine, 'queue'>>;

/** What a run needs from the service. */
export interface RunnerDeps {
  engine: BroadcastEngine;
  logger: Logger;
  clock: BroadcastClock;
  limiterFor(channel: Channel): RateLimiter;
  paceFor(channel: Channel): ChannelPace;
  usage?: UsageMeter | undefined;
  /** Own-voice syntheses at once. */
  synthesisConcurrency: number;
  /** Recipients prepared ahead of the dispatcher. */
  lookahead: number;
  checkpointIntervalMs: number;
  progressIntervalMs: number;
  /** How long a lane waits for its channel's sender to be registered, ms. */
  senderWaitMs: number;
  /** Re-sends allowed after a rate-limit answer, per recipient. */
  maxRateLimitRetries: number;
  retentionMs: number;
}

/** Edits the operator's progress message in place. */
export type ProgressEditor = (text: string) => Promise<void>;

interface Lane {
  channel: BroadcastChannel;
  count: number;
  chunks: number;
  /** Every index below has a record or was settled in the snapshot. */
  dispatched: number;
  open: Set<number>;
  counts: BroadcastCounts;
  /** (time ms, settled) samples for the rate and ETA. */
  samples: Array<[number, number]>;
}

type Prepared =
  | { kind: 'presettled'; index: number }
  | { kind: 'settle'; index: number; record: RecipientRecord }
  | { kind: 'send'; index: number; entry: AudienceEntry; reply: OutboundReply; voice: SpokenVoice };

/** Window over which the send rate for the ETA is measured, ms. */
const RATE_WINDOW_MS = 15_000;

function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message || err.name : String(err);
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

function isRecipientUnavailable(err: unknown): err is RecipientUnavailableError {
  return err instanceof RecipientUnavailableError || (err instanceof Error && err.name === 'RecipientUnavailableError');
}

/** Platform messages one voice reply becomes: the voice note, plus the text when it is not its caption. */
export function messagesPerReply(pace: Pick<ChannelPace, 'voiceWithCaption'>, reply: OutboundReply): number {
  const textShown = reply.sendTextWithVoice === true || reply.voiceLabel !== undefined;
  return reply.voice && textShown && !pace.voiceWithCaption ? 2 : 1;
}

function settled(c: BroadcastCounts): number {
  return c.sent + c.failed + c.skipped;
}

/** One broadcast being run by this process (inside its `broadcast` queue job, see service.ts). */
export class BroadcastRun {
  readonly id: string;
  private job: JobRecord;
  private readonly data: BroadcastJobData;
  private readonly journal: BroadcastJournal;
  private readonly lanes: Lane[];
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private readonly synth: LimitFunction;
  private readonly shared = new Map<string, Promise<{ note: VoiceNote; spoken: SpokenVoice }>>();
  private outcome: 'done' | 'cancelled' | 'stopped' | 'failed' = 'done';
  private error: string | undefined;
  private tickChain: Promise<void> = Promise.resolve();
  private lastProgressMs = 0;
  private lastProgressText = '';
  private operatorVoice: ClonedVoice | undefined;

  constructor(
    private readonly deps: RunnerDeps,
    job: JobRecord,
    private progress?: ProgressEditor,
  ) {
    this.id = job.id;
    this.job = job;
    this.data = job.data as BroadcastJobData;
    this.journal = new BroadcastJournal(deps.engine.store.kv, job.id, deps.retentionMs);
    this.log = deps.logger.child({ jobId: job.id });
    this.synth = pLimit(Math.max(1, deps.synthesisConcurrency));
    this.lanes = Object.entries(this.data.lanes).map(([channel, cp]) => ({
      channel: channel as BroadcastChannel,
      count: cp.count,
      chunks: cp.chunks,
      dispatched: cp.dispatched,
      open: new Set(cp.open),
      counts: structuredClone(cp.counts),
      samples: [],
    }));
  }

  /** Stops dispatching; sends in flight finish; the job ends `cancelled`. */
  cancel(): void {
    if (this.outcome === 'done') this.outcome = 'cancelled';
    this.abort.abort(new Error('broadcast cancelled'));
  }

  /** Stops dispatching for a shutdown; sends in flight finish; the job stays `running` and resumes on the next start. */
  stop(): void {
    if (this.outcome === 'done') this.outcome = 'stopped';
    this.abort.abort(new Error('broadcast stopped'));
  }

  /** True once {@link run} returned after a {@link stop}: the broadcast is unfinished and resumes from its checkpoint. */
  get paused(): boolean {
    return this.outcome === 'stopped';
  }

  private get halted(): boolean {
    return this.abort.signal.aborted;
  }

  /** Current figures. */
  status(): BroadcastStatus {
    const counts = sumCounts(this.lanes.map((l) => l.counts));
    const inFlight = this.lanes.reduce((n, l) => n + l.open.size, 0);
    const finished = this.job.state !== 'running' && this.job.state !== 'queued';
    return {
      id: this.id,
      state: this.job.state,
      text: this.data.text,
      audience: this.data.audience,
      voice: this.data.voice,
      counts,
      inFlight,
      remaining: Math.max(0, counts.total - settled(counts) - inFlight),
      ...(finished ? {} : { etaSec: this.etaSec() }),
      createdAtMs: this.job.createdAtMs,
      ...(this.data.startedAtMs !== undefined ? { startedAtMs: this.data.startedAtMs } : {}),
      ...(this.data.finishedAtMs !== undefined ? { finishedAtMs: this.data.finishedAtMs } : {}),
      inFlightAtCrash: this.data.inFlightAtCrash,
      budgetExhausted: this.data.budgetExhausted === true,
      ...(this.job.error ? { error: this.job.error } : {}),
    };
  }

  /** Seconds until every lane is done: remaining over the measured rate, or the configured pace before any measurement. */
  private etaSec(): number {
    let eta = 0;
    const now = this.deps.clock.now();
    for (const lane of this.lanes) {
      const left = lane.count - settled(lane.counts);
      if (left <= 0) continue;
      const first = lane.samples.find(([t]) => t >= now - RATE_WINDOW_MS);
      const last = lane.samples.at(-1);
      const pace = this.deps.paceFor(lane.channel);
      let perSec = this.deps.limiterFor(lane.channel).effectivePerSec / (pace.voiceWithCaption ? 1 : 2);
      if (first && last && last[0] - first[0] >= 2000 && last[1] > first[1]) perSec = ((last[1] - first[1]) * 1000) / (last[0] - first[0]);
      eta = Math.max(eta, left / perSec);
    }
    return eta;
  }

  /**
   * Runs the job to its end (or until {@link stop}/{@link cancel}). Never throws: failures end the
   * job `failed` with the error, logged and reported to the operator.
   */
  async run(): Promise<void> {
    const resumed = this.job.state === 'running';
    const ticker = setInterval(() => this.tick(false), this.deps.checkpointIntervalMs);
    ticker.unref();
    try {
      const crashed = await this.recover();
      if (resumed) {
        this.data.resumes += 1;
        this.log.warn({ inFlightAtCrash: crashed, resumes: this.data.resumes }, 'broadcast resumed after a restart');
      }
      this.data.startedAtMs ??= this.deps.clock.now();
      this.job = { ...this.job, state: 'running' };
      await this.checkpoint();
      if (resumed) {
        await this.notifyOperator(
          `Broadcast ${this.id} resumed after a restart.${crashed > 0 ? ` ${crashed} message(s) were being sent when it stopped; they are reported as failed and not sent again.` : ''}`,
        );
      }
      this.log.info({ lanes: this.lanes.map((l) => ({ channel: l.channel, count: l.count, dispatched: l.dispatched })) }, 'broadcast running');
      await this.prepareOperatorVoice();
      await Promise.all(this.lanes.map((lane) => this.runLane(lane)));
    } catch (err) {
      this.outcome = 'failed';
      this.error = errorText(err);
      this.log.error({ err }, 'broadcast failed');
    } finally {
      clearInterval(ticker);
    }
    await this.finish();
  }

  /** Settles what a crash left behind; returns how many were in flight. */
  private async recover(): Promise<number> {
    let crashed = 0;
    const settle = async (lane: Lane, index: number, record: RecipientRecord | undefined): Promise<void> => {
      if (!record) return;
      let final = record;
      if (record.state === 'sending') {
        final = { state: 'failed', atMs: this.deps.clock.now(), category: 'in flight at crash', reason: 'in flight at crash: delivery unknown, not sent again' };
        await this.journal.writeRecord(lane.channel, index, final);
        crashed++;
      }
      countRecord(lane.counts, final);
    };
    for (const lane of this.lanes) {
      for (const index of [...lane.open]) {
        await settle(lane, index, await this.journal.record(lane.channel, index));
        lane.open.delete(index);
      }
      while (lane.dispatched < lane.count) {
        const entry = await this.journal.entry(lane.channel, lane.dispatched);
        if (!entry.skip) {
          const record = await this.journal.record(lane.channel, lane.dispatched);
          if (!record) break;
          await settle(lane, lane.dispatched, record);
        }
        lane.dispatched++;
      }
    }
    if (crashed > 0) {
      this.data.inFlightAtCrash += crashed;
      this.log.warn({ inFlightAtCrash: crashed }, 'broadcast recipients were in flight at a crash; reported as failed, not re-sent');
    }
    return crashed;
  }

  private async prepareOperatorVoice(): Promise<void> {
    if (this.data.voice !== 'operator') return;
    const key = this.data.operatorKey;
    const profile = key ? await this.deps.engine.store.profiles.get(key) : undefined;
    if (profile?.state === 'ready' && profile.voice) this.operatorVoice = profile.voice;
    else this.log.warn({ operatorKey: key }, "the operator's twin voice is not ready; the default voice is used");
  }

  private async runLane(lane: Lane): Promise<void> {
    if (lane.dispatched >= lane.count) return;
    const sender = await this.waitForSender(lane.channel);
    if (this.halted) return;
    if (!sender) {
      this.log.error({ channel: lane.channel }, 'no sender registered for the channel; its recipients are reported as failed');
      await this.failRemaining(lane, 'no bot running', `no ${lane.channel} bot is running`);
      return;
    }
    const limiter = this.deps.limiterFor(lane.channel);
    const pace = this.deps.paceFor(lane.channel);
    const inflight = new Set<Promise<void>>();
    const ahead: Promise<Prepared>[] = [];
    let next = lane.dispatched;
    const fill = (): void => {
      while (ahead.length < this.deps.lookahead && next < lane.count) {
        const p = this.prepare(lane, next++);
        p.catch(() => undefined);
        ahead.push(p);
      }
    };
    try {
      for (;;) {
        if (this.halted) break;
        fill();
        const pending = ahead.shift();
        if (!pending) break;
        const item = await pending;
        if (this.halted) break;
        if (item.kind === 'presettled') {
          lane.dispatched = item.index + 1;
          continue;
        }
        if (item.kind === 'settle') {
          await this.journal.writeRecord(lane.channel, item.index, item.record);
          countRecord(lane.counts, item.record);
          lane.dispatched = item.index + 1;
          continue;
        }
        while (inflight.size >= pace.maxInFlight) await Promise.race(inflight);
        if (this.halted) break;
        // `sending` is written before waiting for the slot, so the store's latency never sits
        // between the slot and the platform call (which would bunch the calls the platform sees).
        // A crash while waiting reports this one recipient as in flight; a stop or cancel takes
        // the record back, since nothing was sent.
        await this.journal.writeRecord(lane.channel, item.index, { state: 'sending', atMs: this.deps.clock.now(), attempt: 1 });
        try {
          await limiter.acquire(item.entry.chatId, this.abort.signal, messagesPerReply(pace, item.reply));
        } catch (err) {
          await this.journal.deleteRecord(lane.channel, item.index);
          if (this.halted) break;
          throw err;
        }
        lane.open.add(item.index);
        lane.dispatched = item.index + 1;
        const task: Promise<void> = this.send(lane, sender, limiter, item).finally(() => inflight.delete(task));
        inflight.add(task);
      }
    } catch (err) {
      // Stop every lane; what is in flight still settles below.
      if (this.outcome === 'done') this.outcome = 'failed';
      this.error ??= errorText(err);
      this.abort.abort(err);
      this.log.error({ err, channel: lane.channel }, 'broadcast lane failed');
    } finally {
      await Promise.allSettled(inflight);
    }
  }

  private async waitForSender(channel: Channel): Promise<ChannelSender | undefined> {
    const deadline = this.deps.clock.now() + this.deps.senderWaitMs;
    let sender = this.deps.engine.senderFor(channel);
    if (!sender) this.log.info({ channel, waitMs: this.deps.senderWaitMs }, 'waiting for the channel sender to be registered');
    while (!sender && !this.halted && this.deps.clock.now() < deadline) {
      await this.deps.clock.sleep(Math.min(250, this.deps.senderWaitMs), this.abort.signal).catch(() => undefined);
      sender = this.deps.engine.senderFor(channel);
    }
    return sender;
  }

  private async failRemaining(lane: Lane, category: FailureCategory, reason: string): Promise<void> {
    while (lane.dispatched < lane.count && !this.halted) {
      const entry = await this.journal.entry(lane.channel, lane.dispatched);
      if (!entry.skip) {
        const record: RecipientRecord = { state: 'failed', atMs: this.deps.clock.now(), category, reason };
        await this.journal.writeRecord(lane.channel, lane.dispatched, record);
        countRecord(lane.counts, record);
      }
      lane.dispatched++;
    }
  }

  /** Reads the recipient, checks they still want and can get it, and renders the voice note. */
  private async prepare(lane: Lane, index: number): Promise<Prepared> {
    const entry = await this.journal.entry(lane.channel, index);
    if (entry.skip) return { kind: 'presettled', index };
    const now = (): number => this.deps.clock.now();
    const user = await this.deps.engine.store.users.get(entry.userKey);
    if (!user) return { kind: 'settle', index, record: { state: 'skipped', atMs: now(), reason: 'deleted' } };
    if (user.optedOut) return { kind: 'settle', index, record: { state: 'skipped', atMs: now(), reason: 'opted out' } };
    if (user.blocked) return { kind: 'settle', index, record: { state: 'skipped', atMs: now(), reason: 'blocked' } };
    const { note, spoken, approximate } = await this.voiceFor(lane.channel, user.key);
    const reply: OutboundReply = {
      kind: 'info',
      text: this.data.text,
      voice: note,
      sendTextWithVoice: user.sendTextWithVoice,
      ...(approximate ? { voiceLabel: APPROXIMATION_NOTE } : {}),
    };
    return { kind: 'send', index, entry, reply, voice: spoken };
  }

  /** The recipient's own twin voice when asked for and ready (within budget), else the shared voice. */
  private async voiceFor(channel: Channel, userKey: string): Promise<{ note: VoiceNote; spoken: SpokenVoice; approximate?: boolean }> {
    if (this.data.voice === 'own' && !this.data.budgetExhausted) {
      const profile = await this.deps.engine.store.profiles.get(userKey);
      const voice = profile?.state === 'ready' ? profile.voice : undefined;
      if (voice) {
        try {
          const rendered = await this.synth(async () => ((await this.budgetAllows()) ? this.render(userKey, voice, channel) : undefined));
          if (rendered) return { note: rendered.voice, spoken: 'own', approximate: voice.approximate };
        } catch (err) {
          this.log.warn({ err, userKey }, 'own-voice synthesis failed; the default voice is used');
        }
      }
    }
    if (this.data.voice === 'operator' && this.operatorVoice) return this.sharedVoice('operator', channel, this.operatorVoice);
    return this.sharedVoice('default', channel, undefined);
  }

  /** One voice note per (voice, channel) for everyone who hears the same voice; rendered within the synthesis bound. */
  private sharedVoice(spoken: 'operator' | 'default', channel: Channel, voice: ClonedVoice | undefined): Promise<{ note: VoiceNote; spoken: SpokenVoice }> {
    const key = `${spoken}:${channel}`;
    let pending = this.shared.get(key);
    if (!pending) {
      pending = this.synth(() => this.render(this.data.operatorKey ?? 'broadcast', voice, channel)).then((r) => ({ note: r.voice, spoken }));
      pending.catch(() => this.shared.delete(key));
      this.shared.set(key, pending);
    }
    return pending;
  }

  /** Renders through the engine's synthesis cache and counts synthesised characters against the operator. */
  private async render(ownerKey: string, voice: ClonedVoice | undefined, channel: Channel): Promise<RenderedVoice> {
    const rendered = await this.deps.engine.voice.render(ownerKey, this.data.text, voice, channel);
    const usage = this.deps.usage;
    const synthesised = rendered.pieces - rendered.cacheHits;
    if (usage && this.data.operatorKey && synthesised > 0) {
      const ttsChars = Math.round((this.data.text.length * synthesised) / rendered.pieces);
      await usage.record(this.data.operatorKey, { provider: this.deps.engine.providers.tts.name, ttsChars }).catch((err: unknown) => this.log.warn({ err }, 'usage record failed'));
    }
    return rendered;
  }

  /** False once the operator's synthesis budget is used up (then remembered for the rest of the job). */
  private async budgetAllows(): Promise<boolean> {
    const usage = this.deps.usage;
    if (this.data.budgetExhausted) return false;
    if (!usage || !this.data.operatorKey) return true;
    try {
      await usage.checkBudget(this.data.operatorKey, ['tts']);
      return true;
    } catch (err) {
      if (!(isUserInputError(err) && err.code === 'BUDGET_EXCEEDED')) throw err;
      if (!this.data.budgetExhausted) this.log.warn({ operatorKey: this.data.operatorKey }, "operator's synthesis budget reached; the default voice is used from now on");
      this.data.budgetExhausted = true;
      return false;
    }
  }

  /** Sends one voice note, retrying after rate limits only; never rejects. */
  private async send(lane: Lane, sender: ChannelSender, limiter: RateLimiter, item: Extract<Prepared, { kind: 'send' }>): Promise<void> {
    const { chatId, userKey } = item.entry;
    let record: RecipientRecord | undefined;
    for (let attempt = 1; !record; attempt++) {
      try {
        await sender.send(chatId, item.reply);
        record = { state: 'sent', atMs: this.deps.clock.now(), voice: item.voice };
      } catch (err) {
        if (isRecipientUnavailable(err)) {
          record = { state: 'failed', atMs: this.deps.clock.now(), category: 'unreachable', reason: `unreachable: ${err.reason}` };
          await this.markBlocked(userKey);
          break;
        }
        const waitMs = retryAfterMs(err);
        if (waitMs !== undefined && attempt <= this.deps.maxRateLimitRetries) {
          // Nothing was delivered: pause the whole channel for retry_after, then try again.
          limiter.pause(this.deps.clock.now() + waitMs);
          this.log.warn({ channel: lane.channel, chatId, retryAfterMs: waitMs, attempt }, 'rate limited; channel paused for retry_after');
          await limiter.acquire(chatId, undefined, messagesPerReply(this.deps.paceFor(lane.channel), item.reply));
          continue;
        }
        const category: FailureCategory = waitMs !== undefined ? 'rate limited' : 'send error';
        record = { state: 'failed', atMs: this.deps.clock.now(), category, reason: `${category}: ${errorText(err)}` };
        this.log.warn({ channel: lane.channel, chatId, err }, 'broadcast send failed');
      }
    }
    try {
      await this.journal.writeRecord(lane.channel, item.index, record);
    } catch (err) {
      // The outcome is lost; the record still says `sending`, so a restart reports this recipient
      // as in flight and never sends again. A store that fails here stops the whole job.
      if (this.outcome === 'done') this.outcome = 'failed';
      this.error ??= errorText(err);
      this.abort.abort(err);
      this.log.error({ err, channel: lane.channel, chatId }, 'could not record a broadcast outcome; stopping');
      return;
    }
    lane.open.delete(item.index);
    countRecord(lane.counts, record);
  }

  /** Marks a user who blocked the bot, so later broadcasts skip them. */
  private async markBlocked(userKey: string): Promise<void> {
    try {
      const users = this.deps.engine.store.users;
      const user = await users.get(userKey);
      if (user && !user.blocked) await users.put({ ...user, blocked: true, updatedAtMs: this.deps.engine.now() });
    } catch (err) {
      this.log.warn({ err, userKey }, 'could not mark the user as blocked');
    }
  }

  /** Queues a checkpoint (and, when due or `final`, a progress report); ticks never overlap. */
  private tick(final: boolean): Promise<void> {
    this.tickChain = this.tickChain.then(async () => {
      try {
        if (!final && !this.halted && (await this.journal.cancelRequested())) {
          this.log.info('broadcast cancel requested');
          this.cancel();
        }
        const now = this.deps.clock.now();
        for (const lane of this.lanes) {
          lane.samples.push([now, settled(lane.counts)]);
          while (lane.samples.length > 2 && lane.samples[0]![0] < now - RATE_WINDOW_MS) lane.samples.shift();
        }
        await this.checkpoint();
        if (!final && now - this.lastProgressMs >= this.deps.progressIntervalMs) {
          this.lastProgressMs = now;
          await this.reportProgress();
        }
      } catch (err) {
        this.log.warn({ err }, 'broadcast checkpoint failed');
      }
    });
    return this.tickChain;
  }

  private async checkpoint(): Promise<void> {
    for (const lane of this.lanes) {
      this.data.lanes[lane.channel] = { count: lane.count, chunks: lane.chunks, dispatched: lane.dispatched, open: [...lane.open], counts: structuredClone(lane.counts) };
    }
    this.job = { ...this.job, data: this.data, updatedAtMs: this.deps.engine.now(), ...(this.error ? { error: this.error } : {}) };
    await this.deps.engine.store.jobs.put(this.job);
  }

  private async reportProgress(): Promise<void> {
    const status = this.status();
    this.log.info(
      { sent: status.counts.sent, failed: status.counts.failed, skipped: status.counts.skipped, inFlight: status.inFlight, remaining: status.remaining, etaSec: Math.round(status.etaSec ?? 0) },
      'broadcast progress',
    );
    await this.editProgress(progressText(this.id, status));
  }

  /** Edits the progress message, paced like any other message to the operator's chat; failures are logged. */
  private async editProgress(text: string): Promise<void> {
    const editor = this.progress;
    const address = this.data.progressAddress;
    if (!editor || !address || text === this.lastProgressText) return;
    try {
      await this.deps.limiterFor(address.channel).acquire(address.chatId);
      await editor(text);
      this.lastProgressText = text;
    } catch (err) {
      this.log.warn({ err }, 'progress message could not be updated; progress goes to the logs only');
      this.progress = undefined;
    }
  }

  /** Sends a message to the operator outside a turn (resumes, summary); failures are logged. */
  private async notifyOperator(text: string): Promise<void> {
    const address = this.data.progressAddress;
    if (!address) return;
    const sender = this.deps.engine.senderFor(address.channel);
    if (!sender) return;
    try {
      await this.deps.limiterFor(address.channel).acquire(address.chatId);
      await sender.send(address.chatId, { kind: 'status', text });
    } catch (err) {
      this.log.warn({ err }, 'could not send the broadcast message to the operator');
    }
  }

  private async finish(): Promise<void> {
    await this.tickChain;
    if (this.outcome === 'stopped') {
      await this.tick(true);
      this.log.info({ ...this.figures() }, 'broadcast paused for shutdown; it resumes on the next start');
      return;
    }
    this.data.finishedAtMs = this.deps.clock.now();
    this.job = { ...this.job, state: this.outcome === 'cancelled' ? 'cancelled' : this.outcome === 'failed' ? 'failed' : 'done' };
    await this.tick(true);
    const status = this.status();
    const level = this.outcome === 'failed' ? 'error' : 'info';
    this.log[level]({ state: this.job.state, ...this.figures(), durationSec: Math.round(((this.data.finishedAtMs ?? 0) - (this.data.startedAtMs ?? 0)) / 1000) }, 'broadcast finished');
    const summary = summaryText(this.id, status);
    await this.editProgress(progressText(this.id, status));
    await this.notifyOperator(summary);
  }

  private figures(): Record<string, unknown> {
    const s = this.status();
    return {
      total: s.counts.total,
      sent: s.counts.sent,
      failed: s.counts.failed,
      skipped: s.counts.skipped,
      remaining: s.remaining + s.inFlight,
      failedBy: s.counts.failedBy,
      skippedBy: s.counts.skippedBy,
      sentBy: s.counts.sentBy,
      inFlightAtCrash: s.inFlightAtCrash,
    };
  }
}
