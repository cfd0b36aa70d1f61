/**
 * The broadcast service: the `/broadcast` operator command, dry-run estimates, job creation with
 * an audience snapshot, status and cancel (also for broadcasts queued by `voicetwin broadcast`
 * from another process).
 *
 * A broadcast runs as one `broadcast` job on the {@link JobQueue} (job id `broadcast:<id>`,
 * ordering key `broadcast`, so broadcasts run one at a time across processes, in the order they
 * were queued). The queue makes it durable: a process killed while running it (`kill -9`) leaves
 * the job to the queue's crash recovery, and the run resumes from the broadcast's checkpoint and
 * per-recipient records (see runner.ts and journal.ts). A graceful stop pauses the run at a
 * checkpoint and hands the job back to the queue (the handler throws, so it is retried).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { UserInputError } from '../errors.js';
import type { OperatorCommand, OperatorCommandContext } from '../engine.js';
import type { JobRecord, UserRecord } from '../store/types.js';
import type { Job, JobQueue } from '../jobs.js';
import type { Channel, ChatAddress } from '../types.js';
import { estimateCostUsd, type UnitPrices, type UsageMeter } from '../usage.js';
import { readLinkedIdentities, type LinkedIdentity } from '../identity.js';
import { BROADCAST_USAGE, parseBroadcastCommand } from './command.js';
import { estimateText, formatCount, formatDuration, statusText } from './format.js';
import { BroadcastJournal, DEFAULT_RETENTION_MS } from './journal.js';
import { DEFAULT_CHANNEL_PACE, DEFAULT_HEADROOM, RateLimiter, systemClock, type BroadcastClock, type ChannelPace } from './pacing.js';
import { BroadcastRun, type BroadcastEngine, type ProgressEditor, type RunnerDeps } from './runner.js';
import {
  BROADCAST_CHANNELS,
  countRecord,
  emptyCounts,
  isBroadcastChannel,
  sumCounts,
  type AudienceEntry,
  type BroadcastChannel,
  type BroadcastEstimate,
  type BroadcastJobData,
  type BroadcastRequest,
  type BroadcastStatus,
  type LaneCheckpoint,
  type SkipReason,
} from './types.js';

/** Options of {@link BroadcastService}; durations in ms unless named otherwise. */
export interface BroadcastServiceOptions {
  engine: BroadcastEngine;
  logger?: Logger;
  /** Counts synthesised characters against the operator and enforces their daily TTS budget. */
  usage?: UsageMeter;
  /** Unit prices by provider name, for the dry-run cost estimate. */
  prices?: Record<string, UnitPrices>;
  /** Per-channel pace overrides (see {@link DEFAULT_CHANNEL_PACE}). */
  pace?: Partial<Record<Channel, Partial<ChannelPace>>>;
  /** Widening of the spacing beyond each limit, a fraction (default 0.02). */
  headroom?: number;
  clock?: BroadcastClock;
  /** Own-voice syntheses at once (default 2). */
  synthesisConcurrency?: number;
  /** Recipients prepared ahead of the sends (default 64). */
  lookahead?: number;
  /** Checkpoint and cancel-flag check interval (default 1000). */
  checkpointIntervalMs?: number;
  /** Progress message update interval (default 3000). */
  progressIntervalMs?: number;
  /**
   * The job queue broadcasts run on; default the engine's. Without one, broadcasts can be
   * estimated, read and cancelled but not created (`create` throws).
   */
  queue?: JobQueue;
  /** How long a job waits for a channel's bot to register its sender (default 60 000). */
  senderWaitMs?: number;
  /** Re-sends after a rate-limit answer per recipient (default 3). */
  maxRateLimitRetries?: number;
  /** How long recipient records are kept (default 30 days). */
  retentionMs?: number;
  /** Seconds one own-voice synthesis is assumed to take, for the duration estimate (default 1.5). */
  estimatedRenderSec?: number;
}

/** Who asked for a broadcast and where its progress goes. */
export interface BroadcastOrigin {
  /** User key of the operator, or `cli`. */
  requestedBy: string;
  /** Whose twin voice `--voice operator` uses and whose budget synthesis counts against. */
  operatorKey?: string;
  progressAddress?: ChatAddress;
}

interface Snapshot {
  lanes: Map<BroadcastChannel, AudienceEntry[]>;
  estimate: BroadcastEstimate;
}

const PROFILE_READ_BATCH = 64;

/** Job kind of a broadcast on the {@link JobQueue}. */
export const BROADCAST_JOB_KIND = 'broadcast';
/** Ordering key of every broadcast job: one broadcast runs at a time, in the order they were queued. */
export const BROADCAST_JOB_KEY = 'broadcast';
/**
 * Attempts of a broadcast job. A graceful stop and a crash each use one (the run resumes from its
 * checkpoint every time), so the bound is generous: a job interrupted this often ends failed.
 */
export const BROADCAST_JOB_ATTEMPTS = 25;

/** What a `broadcast` queue job carries: the id of the broadcast's job record (`bc-…`). */
export interface BroadcastQueueJobData extends Record<string, unknown> {
  broadcastId: string;
}

/** The queue job id of a broadcast. */
export function broadcastQueueJobId(broadcastId: string): string {
  return `broadcast:${broadcastId}`;
}

/** Operator broadcasts over every registered channel. See docs/broadcast.md. */
export class BroadcastService {
  private readonly engine: BroadcastEngine;
  private readonly log: Logger;
  private readonly clock: BroadcastClock;
  private readonly limiters = new Map<Channel, RateLimiter>();
  private readonly deps: RunnerDeps;
  private readonly queue: JobQueue | undefined;
  /** Progress editors of broadcasts asked for in a chat handled by this process, by broadcast id. */
  private readonly editors = new Map<string, ProgressEditor>();
  private current: BroadcastRun | undefined;
  private active: Promise<void> | undefined;
  private stopping = false;

  constructor(private readonly options: BroadcastServiceOptions) {
    this.engine = options.engine;
    this.log = (options.logger ?? silentLogger).child({ component: 'broadcast' });
    this.clock = options.clock ?? systemClock;
    this.deps = {
      engine: this.engine,
      logger: this.log,
      clock: this.clock,
      limiterFor: (channel) => this.limiterFor(channel),
      paceFor: (channel) => this.paceFor(channel),
      usage: options.usage,
      synthesisConcurrency: options.synthesisConcurrency ?? 2,
      lookahead: options.lookahead ?? 64,
      checkpointIntervalMs: options.checkpointIntervalMs ?? 1000,
      progressIntervalMs: options.progressIntervalMs ?? 3000,
      senderWaitMs: options.senderWaitMs ?? 60_000,
      maxRateLimitRetries: options.maxRateLimitRetries ?? 3,
      retentionMs: options.retentionMs ?? DEFAULT_RETENTION_MS,
    };
    this.queue = options.queue ?? this.engine.queue;
    // Registered at once, so a worker never takes a broadcast job before it has the handler.
    this.registerHandler();
  }

  /** Makes this service the handler of `broadcast` jobs on its queue. */
  private registerHandler(): void {
    this.queue?.process<BroadcastQueueJobData>(BROADCAST_JOB_KIND, (job) => this.runJob(job));
  }

  /** The pace of a channel: defaults with the configured overrides. */
  paceFor(channel: Channel): ChannelPace {
    return { ...DEFAULT_CHANNEL_PACE[channel], ...this.options.pace?.[channel] };
  }

  /** The channel's limiter, shared by every broadcast message of this process (sends, progress edits). */
  limiterFor(channel: Channel): RateLimiter {
    let limiter = this.limiters.get(channel);
    if (!limiter) {
      limiter = new RateLimiter(this.paceFor(channel), { headroom: this.options.headroom ?? DEFAULT_HEADROOM, clock: this.clock });
      this.limiters.set(channel, limiter);
    }
    return limiter;
  }

  /** The `/broadcast` operator command to register with the engine. */
  command(): OperatorCommand {
    return {
      info: { name: 'broadcast', description: 'Send an announcement to every user as a voice note (operators)', args: '[options] <text> | status | cancel', operatorOnly: true },
      run: (context) => this.runCommand(context),
    };
  }

  private async runCommand({ user, message, args, target, log }: OperatorCommandContext): Promise<void> {
    const command = parseBroadcastCommand(args);
    switch (command.action) {
      case 'help':
        return target.reply({ kind: 'info', text: BROADCAST_USAGE });
      case 'status': {
        const status = await this.status(command.id);
        return target.reply({ kind: 'info', text: status ? statusText(status) : noBroadcastText(command.id) });
      }
      case 'cancel': {
        const status = await this.cancel(command.id);
        if (!status) return target.reply({ kind: 'info', text: command.id ? noBroadcastText(command.id) : 'No broadcast is running.' });
        const done = status.state === 'done' || status.state === 'failed' || status.state === 'cancelled';
        return target.reply({
          kind: 'info',
          text: done ? `Broadcast ${status.id} already ended (${status.state}).` : `Cancelling broadcast ${status.id}: nothing more is sent; messages already sent stay sent. The summary follows.`,
        });
      }
      case 'send': {
        const { request } = command;
        if (request.dryRun) {
          const estimate = await this.estimate(request, user.key);
          log.info({ audience: request.audience, voice: request.voice, recipients: estimate.recipients, durationSec: estimate.durationSec }, 'broadcast dry run');
          return target.reply({ kind: 'info', text: estimateText(request, estimate) });
        }
        const { job, estimate } = await this.persist(request, { requestedBy: user.key, operatorKey: user.key, progressAddress: { channel: message.channel, chatId: message.chatId } });
        log.info({ jobId: job.id, recipients: estimate.recipients, skipped: estimate.skipped, audience: request.audience, voice: request.voice }, 'broadcast started');
        let editor: ProgressEditor | undefined;
        try {
          editor = await target.status(
            `Broadcast ${job.id} starting: ${formatCount(estimate.recipients)} recipients (${formatCount(estimate.skipped)} skipped), about ${formatDuration(estimate.durationSec)}. /broadcast status or /broadcast cancel.`,
          );
        } catch (err) {
          log.warn({ err }, 'could not send the broadcast progress message');
        }
        await this.enqueue(job.id, editor);
        return;
      }
    }
  }

  /**
   * Counts the audience and estimates duration and cost; stores and sends nothing.
   * @throws UserInputError as {@link create} would for the same request
   */
  async estimate(request: BroadcastRequest, operatorKey?: string): Promise<BroadcastEstimate> {
    await this.validate(request, operatorKey);
    return (await this.snapshot(request)).estimate;
  }

  /**
   * Snapshots the audience, persists a `queued` broadcast and puts its job on the queue: whichever
   * process runs `broadcast` jobs (this one, or a running `voicetwin serve` on the same store and
   * queue) sends it, after any broadcast queued before it.
   *
   * @param options.progress edits the operator's progress message, when this process runs the job
   * @throws UserInputError `TEXT_TOO_LONG` / `EMPTY_TEXT` for the text, `NOT_READY` for
   *   `--voice operator` without a ready twin voice, `BUSY` while another broadcast is unfinished,
   *   `BAD_ARGUMENT` when nobody in the audience can be reached
   * @throws Error when the service has no job queue, or the queue cannot store the job
   */
  async create(request: BroadcastRequest, origin: BroadcastOrigin, options: { progress?: ProgressEditor } = {}): Promise<{ job: JobRecord; estimate: BroadcastEstimate }> {
    const created = await this.persist(request, origin);
    await this.enqueue(created.job.id, options.progress);
    return created;
  }

  /** Validates, snapshots and stores the broadcast's record (`queued`); does not enqueue it. */
  private async persist(request: BroadcastRequest, origin: BroadcastOrigin): Promise<{ job: JobRecord; estimate: BroadcastEstimate }> {
    if (!this.queue) throw new Error('Broadcasts run on the job queue, and this process has none (it was built without a queue).');
    await this.validate(request, origin.operatorKey);
    const busy = (await this.engine.store.jobs.listUnfinished()).find((j) => j.kind === 'broadcast');
    if (busy) {
      throw new UserInputError('BUSY', `Broadcast ${busy.id} is not finished yet. Wait for it (see its status) or cancel it, then try again.`);
    }
    const { lanes, estimate } = await this.snapshot(request);
    if (estimate.recipients === 0) {
      throw new UserInputError('BAD_ARGUMENT', `Nobody in the audience "${request.audience}" can receive it (${formatCount(estimate.skipped)} skipped: opted out or blocked).`);
    }
    const id = `bc-${randomBytes(3).toString('hex')}`;
    const journal = new BroadcastJournal(this.engine.store.kv, id, this.deps.retentionMs);
    const checkpoints: Partial<Record<BroadcastChannel, LaneCheckpoint>> = {};
    for (const [channel, entries] of lanes) {
      const counts = emptyCounts(entries.length);
      for (const e of entries) if (e.skip) countRecord(counts, { state: 'skipped', atMs: 0, reason: e.skip });
      checkpoints[channel] = { count: entries.length, chunks: await journal.writeAudience(channel, entries), dispatched: 0, open: [], counts };
    }
    const now = this.engine.now();
    const data: BroadcastJobData = {
      version: 1,
      text: request.text,
      audience: request.audience,
      voice: request.voice,
      ...(request.eachChannel ? { eachChannel: true } : {}),
      requestedBy: origin.requestedBy,
      ...(origin.operatorKey ? { operatorKey: origin.operatorKey } : {}),
      ...(origin.progressAddress ? { progressAddress: origin.progressAddress } : {}),
      lanes: checkpoints,
      estimate,
      inFlightAtCrash: 0,
      resumes: 0,
    };
    const job: JobRecord = { id, kind: 'broadcast', state: 'queued', data, createdAtMs: now, updatedAtMs: now };
    await this.engine.store.jobs.put(job);
    await BroadcastJournal.remember(this.engine.store.kv, id);
    this.log.info({ jobId: id, requestedBy: origin.requestedBy, recipients: estimate.recipients, skipped: estimate.skipped, audience: request.audience, voice: request.voice }, 'broadcast queued');
    return { job, estimate };
  }

  /** Puts the broadcast's job on the queue (a no-op when it is there already). */
  private async enqueue(broadcastId: string, progress?: ProgressEditor): Promise<void> {
    if (!this.queue) throw new Error('Broadcasts run on the job queue, and this process has none.');
    if (progress) this.editors.set(broadcastId, progress);
    try {
      await this.queue.enqueue(BROADCAST_JOB_KIND, { broadcastId } satisfies BroadcastQueueJobData, {
        id: broadcastQueueJobId(broadcastId),
        key: BROADCAST_JOB_KEY,
        maxAttempts: BROADCAST_JOB_ATTEMPTS,
      });
    } catch (err) {
      this.editors.delete(broadcastId);
      throw err;
    }
  }

  private async validate(request: BroadcastRequest, operatorKey: string | undefined): Promise<void> {
    const text = request.text.trim();
    if (!text) throw new UserInputError('EMPTY_TEXT', 'The broadcast text is empty. Write the announcement after the options.');
    const max = this.engine.settings.limits.replyMaxChars;
    if (text.length > max) {
      throw new UserInputError('TEXT_TOO_LONG', `A broadcast is spoken, so it can be at most ${formatCount(max)} characters (about a minute of speech). Yours has ${formatCount(text.length)}.`);
    }
    if (request.voice === 'operator') {
      const profile = operatorKey ? await this.engine.store.profiles.get(operatorKey) : undefined;
      if (profile?.state !== 'ready' || !profile.voice) {
        throw new UserInputError('NOT_READY', 'Your twin voice is not ready yet (send /enroll), so --voice operator cannot be used. Use --voice own or --voice default.');
      }
    }
  }

  /** Reads every user once and builds each lane's recipients in first-seen order. */
  private async snapshot(request: BroadcastRequest): Promise<Snapshot> {
    const channels: readonly BroadcastChannel[] = isBroadcastChannelName(request.audience) ? [request.audience] : BROADCAST_CHANNELS;
    // A person is reached once, on the chat they used last; with --each-channel once per channel they linked.
    const linked = await readLinkedIdentities(this.engine.store.kv);
    const targets: { user: UserRecord; channel: BroadcastChannel; chatId: string }[] = [];
    const users: UserRecord[] = [];
    for (const user of await this.engine.store.users.list()) {
      const candidates = broadcastAddresses(user, linked.get(user.key)).filter((a) => channels.includes(a.channel));
      if (candidates.length === 0) continue;
      users.push(user);
      for (const a of request.eachChannel ? candidates : candidates.slice(0, 1)) targets.push({ user, channel: a.channel, chatId: a.chatId });
    }
    const needProfiles = request.audience === 'ready' || request.voice === 'own';
    const ready = new Set<string>();
    if (needProfiles) {
      for (let i = 0; i < users.length; i += PROFILE_READ_BATCH) {
        const batch = users.slice(i, i + PROFILE_READ_BATCH);
        const profiles = await Promise.all(batch.map((u) => this.engine.store.profiles.get(u.key)));
        profiles.forEach((p, j) => {
          if (p?.state === 'ready' && p.voice) ready.add(batch[j]!.key);
        });
      }
    }
    const lanes = new Map<BroadcastChannel, AudienceEntry[]>();
    const seen = new Set<string>();
    const skippedBy: Partial<Record<SkipReason, number>> = {};
    const byChannel: BroadcastEstimate['byChannel'] = {};
    let recipients = 0;
    let ownVoices = 0;
    for (const { user, channel, chatId } of targets) {
      if (request.audience === 'ready' && !ready.has(user.key)) continue;
      const address = `${channel}:${chatId}`;
      const skip: SkipReason | undefined = seen.has(address) ? 'duplicate address' : user.optedOut ? 'opted out' : user.blocked ? 'blocked' : undefined;
      seen.add(address);
      const entry: AudienceEntry = { userKey: user.key, chatId, ...(skip ? { skip } : {}) };
      let lane = lanes.get(channel);
      if (!lane) lanes.set(channel, (lane = []));
      lane.push(entry);
      const stats = (byChannel[channel] ??= { recipients: 0, skipped: 0, ownVoices: 0, senderRegistered: this.engine.senderFor(channel) !== undefined });
      if (skip) {
        stats.skipped++;
        skippedBy[skip] = (skippedBy[skip] ?? 0) + 1;
        continue;
      }
      stats.recipients++;
      recipients++;
      if (request.voice === 'own' && ready.has(user.key)) {
        stats.ownVoices++;
        ownVoices++;
      }
    }
    let sendSec = 0;
    for (const [channel, stats] of Object.entries(byChannel)) {
      const perRecipient = this.paceFor(channel as Channel).voiceWithCaption ? 1 : 2;
      sendSec = Math.max(sendSec, (stats.recipients * perRecipient) / this.limiterFor(channel as Channel).effectivePerSec);
    }
    const synthSec = (ownVoices * (this.options.estimatedRenderSec ?? 1.5)) / Math.max(1, this.deps.synthesisConcurrency);
    const sharedVoice = request.voice !== 'own' || ownVoices < recipients ? 1 : 0;
    const ttsChars = recipients > 0 ? request.text.trim().length * (ownVoices + sharedVoice) : 0;
    const ttsProvider = this.engine.providers.tts.name;
    const price = this.options.prices?.[ttsProvider];
    const estimate: BroadcastEstimate = {
      recipients,
      skipped: Object.values(skippedBy).reduce((a, b) => a + (b ?? 0), 0),
      skippedBy,
      byChannel,
      ownVoices,
      durationSec: Math.max(sendSec, synthSec),
      ttsChars,
      ttsProvider,
      ...(price ? { costUsd: estimateCostUsd({ provider: ttsProvider, ttsChars }, price) } : {}),
    };
    return { lanes, estimate: { ...estimate } };
  }

  /**
   * Runs one `broadcast` queue job: the broadcast to its end (or to a cancel). Returns when the
   * broadcast is finished (done, cancelled or failed: a failure of the broadcast itself is in its
   * record and reported to the operator, not retried).
   * @throws Error when it was paused by {@link stop} (or this process is stopping), so the queue
   *   keeps the job and it resumes from the checkpoint in the next process that runs it
   */
  private async runJob(job: Job<BroadcastQueueJobData>): Promise<void> {
    const id = job.data.broadcastId;
    if (this.stopping) throw new Error(`broadcast ${id} not started: broadcasts are stopping in this process; the job returns to the queue`);
    const record = await this.engine.store.jobs.get(id);
    if (record?.kind !== 'broadcast') {
      this.log.warn({ jobId: id }, 'broadcast job without its broadcast record (deleted or expired); nothing to send');
      return;
    }
    // Finished by an earlier run whose end the queue did not record (a crash right after it).
    if (record.state !== 'queued' && record.state !== 'running') return;
    this.log.info({ jobId: id, state: record.state, attempt: job.attempt }, record.state === 'running' ? 'resuming broadcast' : 'running queued broadcast');
    const run = new BroadcastRun(this.deps, record, this.editors.get(id));
    if (await new BroadcastJournal(this.engine.store.kv, id).cancelRequested()) run.cancel();
    this.current = run;
    const running = run.run();
    this.active = running;
    try {
      await running;
    } finally {
      this.current = undefined;
      this.active = undefined;
      this.editors.delete(id);
    }
    if (run.paused) throw new Error(`broadcast ${id} paused for shutdown; it resumes from its checkpoint`);
  }

  /**
   * Makes this service the handler of `broadcast` jobs (as its constructor does), puts any
   * unfinished broadcast whose job is missing back on the queue (a process stopped between
   * storing a broadcast and queueing it), and starts the queue (a no-op when the engine started
   * it). Broadcasts left running by a crash resume through the queue's own recovery.
   */
  async start(): Promise<void> {
    if (!this.queue) return;
    this.stopping = false;
    this.registerHandler();
    for (const job of await this.engine.store.jobs.listUnfinished()) {
      if (job.kind !== 'broadcast') continue;
      await this.enqueue(job.id).catch((err: unknown) => this.log.warn({ err, jobId: job.id }, 'could not queue an unfinished broadcast'));
    }
    await this.queue.start();
  }

  /**
   * Stops dispatching, lets sends in flight finish and checkpoints; the running broadcast's job
   * goes back to the queue and resumes where it stopped. Call before the queue is closed.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.current?.stop();
    await this.active;
  }

  /** Resolves when no job of this process's queue is waiting or running (broadcasts included). */
  async whenIdle(): Promise<void> {
    await this.queue?.whenIdle();
  }

  /** The broadcast `id`, or the unfinished one, or the latest; undefined when there is none. */
  async status(id?: string): Promise<BroadcastStatus | undefined> {
    const job = await this.findJob(id);
    if (!job) return undefined;
    const status = this.current?.id === job.id ? this.current.status() : statusOfJob(job);
    if ((status.state === 'queued' || status.state === 'running') && (await new BroadcastJournal(this.engine.store.kv, job.id).cancelRequested())) {
      status.cancelRequested = true;
    }
    return status;
  }

  /**
   * Cancels the broadcast `id` (default: the unfinished one), in this process or the one running
   * it (through a flag in the store, checked every second).
   * @returns its status, or undefined when there is no such broadcast
   */
  async cancel(id?: string): Promise<BroadcastStatus | undefined> {
    const job = await this.findJob(id, true);
    if (!job) return undefined;
    if (job.state !== 'queued' && job.state !== 'running') return statusOfJob(job);
    await new BroadcastJournal(this.engine.store.kv, job.id, this.deps.retentionMs).requestCancel();
    this.log.info({ jobId: job.id }, 'broadcast cancel requested');
    if (this.current?.id === job.id) {
      this.current.cancel();
      return this.current.status();
    }
    return statusOfJob(job);
  }

  private async findJob(id: string | undefined, unfinishedOnly = false): Promise<JobRecord | undefined> {
    const jobs = this.engine.store.jobs;
    if (id) {
      const job = await jobs.get(id);
      return job?.kind === 'broadcast' ? job : undefined;
    }
    const open = (await jobs.listUnfinished()).filter((j) => j.kind === 'broadcast');
    if (open.length > 0) return open[open.length - 1];
    if (unfinishedOnly) return undefined;
    const latest = (await BroadcastJournal.recent(this.engine.store.kv)).at(-1);
    return latest ? jobs.get(latest) : undefined;
  }
}

function isBroadcastChannelName(value: string): value is BroadcastChannel {
  return (BROADCAST_CHANNELS as readonly string[]).includes(value);
}

function noBroadcastText(id: string | undefined): string {
  return id ? `There is no broadcast with id "${id.slice(0, 20)}".` : 'No broadcast has been sent yet.';
}

/** Figures of a job from its last checkpoint (for a job not running in this process). */
export function statusOfJob(job: JobRecord): BroadcastStatus {
  const data = job.data as BroadcastJobData;
  const lanes = Object.values(data.lanes);
  const counts = sumCounts(lanes.map((l) => l.counts));
  const inFlight = lanes.reduce((n, l) => n + l.open.length, 0);
  return {
    id: job.id,
    state: job.state,
    text: data.text,
    audience: data.audience,
    voice: data.voice,
    counts,
    inFlight,
    remaining: Math.max(0, counts.total - counts.sent - counts.failed - counts.skipped - inFlight),
    createdAtMs: job.createdAtMs,
    ...(data.startedAtMs !== undefined ? { startedAtMs: data.startedAtMs } : {}),
    ...(data.finishedAtMs !== undefined ? { finishedAtMs: data.finishedAtMs } : {}),
    inFlightAtCrash: data.inFlightAtCrash,
    budgetExhausted: data.budgetExhausted === true,
    ...(job.error ? { error: job.error } : {}),
  };
}

/**
 * The chats a broadcast can reach a person on, preferred first, one per channel: the chat they
 * used last (`user.address`), then their linked identities' chats, most recently linked first.
 * A person of one identity has just their own chat.
 */
function broadcastAddresses(user: UserRecord, identities: LinkedIdentity[] | undefined): { channel: BroadcastChannel; chatId: string }[] {
  const all: ChatAddress[] = [user.address, ...(identities ?? []).slice().sort((a, b) => b.linkedAtMs - a.linkedAtMs).map((i) => i.address)];
  if (!identities) all.splice(1);
  const out: { channel: BroadcastChannel; chatId: string }[] = [];
  for (const a of all) {
    if (!isBroadcastChannel(a.channel) || out.some((o) => o.channel === a.channel)) continue;
    out.push({ channel: a.channel, chatId: a.chatId });
  }
  return out;
}
