/**
 * The conversation engine: one {@link InboundMessage} in, {@link OutboundReply}s out. It owns every
 * product decision (commands, enrollment, chat turns, memories, insights); adapters only map and
 * render. Platform- and vendor-neutral: providers come in through the interfaces of `providers.ts`.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from './log.js';
import { silentLogger } from './log.js';
import { isUserInputError, UserInputError } from './errors.js';
import type {
  AudioRef,
  Channel,
  ChannelSender,
  CommandInfo,
  ConversationEngine,
  InboundAudio,
  InboundMessage,
  MediaFetcher,
  OutboundReply,
  ReplyTarget,
} from './types.js';
import type { Job, JobQueue } from './jobs.js';
import { OutboxTarget } from './outbox.js';
import type { ClonedVoice, MemoryRecord, PcmAudio, Providers } from './providers.js';
import type { Store, UserRecord, VoiceProfile } from './store/types.js';
import { PERSONA_NAMES, PERSONAS, isPersonaName, renderSystemPrompt, type PersonaName } from './personas.js';
import { KeyedSerialQueue } from './queue.js';
import { isDuplicateMemory, selectMemories } from './memory.js';
import { trimToSentences } from './text.js';
import { checkAudio, checkDeclared, decodeToPcm } from './audio/index.js';
import { Enrollment } from './enrollment.js';
import type { UsageMeter } from './usage.js';
import { VoiceRenderer } from './voice.js';
import { DOCUMENT_LIMIT_BYTES, buildPersonalExport } from './export.js';
import { ApiKeys } from './apikeys.js';
import { Identities, LinkRefusedError, LINK_CODE_TTL_MS, isMessagingChannel, type MergeReport } from './identity.js';
import type { VoiceNote } from './types.js';

/** Limits on what the engine accepts and says. */
export interface EngineLimits {
  /** Largest audio accepted, bytes (MAX_AUDIO_BYTES, default 20 MiB = 20971520). */
  maxAudioBytes: number;
  /** Longest chat-turn voice note, seconds (MAX_TURN_AUDIO_SEC, default 600). */
  maxTurnAudioSec: number;
  /** Longest enrollment sample, seconds (MAX_SAMPLE_AUDIO_SEC, default 180). */
  maxSampleAudioSec: number;
  /** Longest text message accepted, characters (MAX_TEXT_CHARS, default 4000). */
  maxTextChars: number;
  /** Longest reply, characters; keeps the voice note under about 60 s (REPLY_MAX_CHARS, default 600). */
  replyMaxChars: number;
}

/** Engine settings; sizes in bytes, durations in seconds. */
export interface EngineSettings {
  limits: EngineLimits;
  defaultPersona: PersonaName;
  /** Seconds of speech needed before cloning; default: the cloner's `minSpeechSec`. */
  enrollMinSpeechSec?: number;
  /** An insight every N user messages (0 = never). */
  insightEvery: number;
  /** Memory extraction every N user messages (0 = never). */
  memoryEvery: number;
  /** Users processed at once. */
  turnConcurrency: number;
  /** Seconds after which a running clone is announced as slow; replies use the default voice meanwhile. */
  cloneTimeoutSec: number;
  /** Chat model seed (template model determinism). */
  seed: number;
  /** Operators as `<channel>:<user id>`. */
  operators: string[];
  /** Voice-note sample rate per channel, Hz (default 48 kHz; WhatsApp 16 kHz for mobile playback). */
  voiceSampleRateHz?: Partial<Record<Channel, number>>;
}

/** Default settings (the documented defaults of `.env.example`). */
export const DEFAULT_ENGINE_SETTINGS: EngineSettings = {
  limits: { maxAudioBytes: 20 * 1024 * 1024, maxTurnAudioSec: 600, maxSampleAudioSec: 180, maxTextChars: 4000, replyMaxChars: 600 },
  defaultPersona: 'supportive',
  insightEvery: 5,
  memoryEvery: 3,
  turnConcurrency: 4,
  cloneTimeoutSec: 35,
  seed: 7,
  operators: [],
};

/** Stage timings of one chat turn, milliseconds. */
export interface TurnTimings {
  decodeMs: number;
  sttMs: number;
  chatMs: number;
  ttsMs: number;
  encodeMs: number;
  storeMs: number;
  totalMs: number;
}

/** Events the engine reports to an observer (CLI timings, benchmarks, tests). */
export type EngineEvent =
  | { type: 'turn'; userKey: string; input: 'voice' | 'text'; transcript: string; replyText: string; persona: PersonaName; timings: TurnTimings }
  | { type: 'sample'; userKey: string; speechSec: number; totalSpeechSec: number }
  | { type: 'profile'; userKey: string; state: VoiceProfile['state'] }
  | { type: 'duplicate'; messageId: string };

/** The commands, in menu order. */
export const COMMANDS: readonly CommandInfo[] = [
  { name: 'start', description: 'Meet your twin and see how it works' },
  { name: 'enroll', description: 'Clone your voice from a few voice notes (asks for consent first)' },
  { name: 'status', description: 'Your voice profile, persona and what is stored' },
  { name: 'style', description: 'Choose how your twin talks', args: '<name>' },
  { name: 'styles', description: 'List the personas' },
  { name: 'say', description: 'Hear a text spoken in your twin voice', args: '<text>' },
  { name: 'remember', description: 'Tell your twin something to remember', args: '<text>' },
  { name: 'memories', description: 'List what your twin remembers' },
  { name: 'forget', description: 'Forget one memory, or all of them', args: '<id|all>' },
  { name: 'text', description: 'Send the text with each voice reply, or not', args: '<on|off>' },
  { name: 'stop', description: 'Stop receiving announcements' },
  { name: 'export', description: 'Get a copy of everything stored about you (a zip file)' },
  { name: 'link', description: 'One twin across your chats: get a code here, send /link CODE from another chat', args: '[code]' },
  { name: 'unlink', description: 'Detach this chat from the twin it was linked to (it starts fresh)' },
  { name: 'apikey', description: 'Keys for the HTTP API and web app: create, list, revoke', args: '<create [label]|list|revoke id>' },
  { name: 'delete', description: 'Delete all your data and your cloned voice' },
  { name: 'help', description: 'What you can do' },
];

/** Aliases accepted for commands. */
const ALIASES: Record<string, string> = { unsubscribe: 'stop', persona: 'style', personas: 'styles', speak: 'say' };

/** Label attached to replies spoken by a voice that only approximates the user. */
export const APPROXIMATION_NOTE = 'Offline preview voice: a flite synthetic voice set to your pitch and pace, not a neural clone.';

/** What an operator command receives. */
export interface OperatorCommandContext {
  user: UserRecord;
  message: InboundMessage;
  /** Text after the command name, trimmed. */
  args: string;
  target: ReplyTarget;
  log: Logger;
}

/** A command only operators (config `OPERATORS`) may run, e.g. `broadcast`. */
export interface OperatorCommand {
  info: CommandInfo & { operatorOnly: true };
  run(context: OperatorCommandContext): Promise<void>;
}

/** Options of {@link Engine}. */
export interface EngineOptions {
  store: Store;
  providers: Providers;
  settings?: Partial<EngineSettings>;
  logger?: Logger;
  observer?: (event: EngineEvent) => void;
  /** Clock, ms since the epoch (tests). */
  now?: () => number;
  /** Usage accounting and per-user daily budgets; none → unmetered. */
  usage?: UsageMeter;
  /**
   * The durable job queue: `submit` stores turns as jobs, and clone jobs run on it. Without one,
   * `submit` handles messages in this process (tests, the terminal chat).
   */
  queue?: JobQueue;
}

/** Job kinds the engine runs. */
export const JOB_KINDS = { turn: 'turn', clone: 'clone' } as const;

/** What a `turn` job carries: the inbound message as plain data. */
interface TurnJobData extends Record<string, unknown> {
  message: InboundMessage;
  /** Blob key of audio stored at intake, deleted when the job is done. */
  inboxBlobKey?: string;
}

/** What a `clone` job carries. */
interface CloneJobData extends Record<string, unknown> {
  jobId: string;
}

/**
 * The conversation engine.
 *
 * Lifecycle: construct, `registerSender` per adapter, `start()` (resumes background jobs left by a
 * crash), then `handle` messages; `whenIdle()` waits for background work; `stop()` waits and stops.
 */
export class Engine implements ConversationEngine {
  private commandList: CommandInfo[] = [...COMMANDS];
  private readonly operatorCommands = new Map<string, OperatorCommand>();
  readonly settings: EngineSettings;
  readonly store: Store;
  readonly providers: Providers;
  private readonly logger: Logger;
  private readonly observer: (event: EngineEvent) => void;
  private readonly serial: KeyedSerialQueue;
  private readonly senders = new Map<Channel, ChannelSender>();
  private readonly fetchers = new Map<Channel, MediaFetcher>();
  /** Live reply targets of messages submitted in this process, used when this process runs the job. */
  private readonly liveTargets = new Map<string, ReplyTarget>();
  readonly queue: JobQueue | undefined;
  private readonly background = new Set<Promise<unknown>>();
  private readonly enrollment: Enrollment;
  readonly voice: VoiceRenderer;
  readonly usage: UsageMeter | undefined;
  readonly now: () => number;
  /** Per-person API keys and sign-in codes (`/apikey`, the HTTP API). */
  readonly apiKeys: ApiKeys;
  /** Channel identities linked to persons (`/link`, `/unlink`; see docs/identity.md). */
  readonly identities: Identities;

  constructor(options: EngineOptions) {
    this.store = options.store;
    this.providers = options.providers;
    this.settings = { ...DEFAULT_ENGINE_SETTINGS, ...options.settings, limits: { ...DEFAULT_ENGINE_SETTINGS.limits, ...options.settings?.limits } };
    this.logger = options.logger ?? silentLogger;
    this.observer = options.observer ?? (() => undefined);
    this.now = options.now ?? Date.now;
    this.usage = options.usage;
    this.queue = options.queue;
    this.serial = new KeyedSerialQueue(this.settings.turnConcurrency);
    this.apiKeys = new ApiKeys(this.store.kv, this.now);
    const cloner = this.providers.cloner;
    this.identities = new Identities({
      store: this.store,
      apiKeys: this.apiKeys,
      ...(this.usage ? { usage: this.usage } : {}),
      ...(cloner.deleteVoice ? { deleteProviderVoice: (voice: ClonedVoice) => cloner.deleteVoice!(voice) } : {}),
      now: this.now,
      logger: this.logger,
    });
    this.voice = new VoiceRenderer({ store: this.store, tts: this.providers.tts, logger: this.logger, sampleRates: this.settings.voiceSampleRateHz });
    this.enrollment = new Enrollment({
      store: this.store,
      providers: this.providers,
      logger: this.logger,
      now: this.now,
      requiredSpeechSec: this.settings.enrollMinSpeechSec ?? this.providers.cloner.minSpeechSec,
      maxSampleAudioSec: this.settings.limits.maxSampleAudioSec,
      cloneTimeoutSec: this.settings.cloneTimeoutSec,
      maxAudioBytes: this.settings.limits.maxAudioBytes,
      observer: (e) => this.observer(e),
      notify: (user, reply) => this.notify(user, reply),
      runClone: (jobId, userKey) => this.runClone(jobId, userKey),
      speak: (user, text, voice) => this.voice.render(user.key, text, voice, user.address.channel),
      receive: (audio, maxDurationSec) => this.receiveAudio(audio, maxDurationSec),
    });
  }

  /** Commands for menus, in display order (operator commands last, flagged `operatorOnly`). */
  get commands(): readonly CommandInfo[] {
    return this.commandList;
  }

  /** Registers the sender of a channel for replies outside a turn. */
  registerSender(sender: ChannelSender): void {
    this.senders.set(sender.channel, sender);
  }

  /** The registered sender of a channel, if any (broadcasts, background replies). */
  senderFor(channel: Channel): ChannelSender | undefined {
    return this.senders.get(channel);
  }

  /** Adds a command that only operators may run; everyone else is refused and the attempt logged. */
  registerOperatorCommand(command: OperatorCommand): void {
    this.operatorCommands.set(command.info.name, command);
    this.commandList = [...this.commandList.filter((c) => c.name !== command.info.name), command.info];
  }

  /** True when the user (`<channel>:<user id>`) is listed in `OPERATORS`. */
  isOperator(userKey: string): boolean {
    return this.settings.operators.includes(userKey);
  }

  /** Registers how to fetch a channel's audio references (see {@link AudioRef}). */
  registerMediaFetcher(channel: Channel, fetcher: MediaFetcher): void {
    this.fetchers.set(channel, fetcher);
  }

  /**
   * Starts running jobs: with a queue, registers the turn and clone handlers and starts the queue
   * (which first recovers the jobs of a crashed process); without one, resumes clone jobs left
   * unfinished by a crash or restart.
   * @param options.worker false for an ingress-only process, which stores jobs but runs none
   */
  async start(options: { worker?: boolean } = {}): Promise<void> {
    if (options.worker !== false) await this.identities.resumePending();
    if (this.queue) {
      if (options.worker === false) return;
      this.queue.process<TurnJobData>(JOB_KINDS.turn, (job) => this.runTurnJob(job));
      this.queue.process<CloneJobData>(JOB_KINDS.clone, (job) => this.enrollment.runCloneJob(job.data.jobId));
      await this.queue.start();
      return;
    }
    const jobs = await this.store.jobs.listUnfinished();
    for (const job of jobs) {
      if (job.kind === 'clone' && job.userKey) {
        this.logger.info({ jobId: job.id, userKey: job.userKey }, 'resuming clone job');
        this.track(this.enrollment.runCloneJob(job.id));
      }
    }
  }

  /** Resolves when no background work (queued or running jobs of this process, cloning, insights) is left. */
  async whenIdle(): Promise<void> {
    for (;;) {
      if (this.queue) await this.queue.whenIdle();
      if (this.background.size === 0) return;
      await Promise.allSettled([...this.background]);
    }
  }

  /** Stops taking jobs; running ones finish within `graceMs` or return to the queue. */
  async stop(graceMs?: number): Promise<void> {
    if (this.queue) await this.queue.close(graceMs);
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  /** Handles one inbound message in this process, to completion; see {@link ConversationEngine.handle}. */
  async handle(message: InboundMessage, target: ReplyTarget): Promise<void> {
    const userKey = userKeyOf(message);
    const log = this.logger.child({ channel: message.channel, chatId: message.chatId, messageId: message.id });
    // Queue first (synchronously, so arrival order is kept), then drop redeliveries.
    await this.serial.run(userKey, async () => {
      if (!(await this.store.dedupe.claim(message.id))) {
        log.info('duplicate inbound message dropped');
        this.observer({ type: 'duplicate', messageId: message.id });
        return;
      }
      await this.process(message, target, log, true);
    });
  }

  /**
   * Stores the message as a durable `turn` job (see {@link ConversationEngine.submit}). Audio
   * delivered as bytes is kept encrypted in the blob store until the job is done; audio behind a
   * platform reference is fetched by the worker.
   */
  async submit(message: InboundMessage, target?: ReplyTarget): Promise<boolean> {
    if (!this.queue) {
      try {
        await this.handle(message, target ?? this.senderTarget(message.channel, message.chatId));
      } finally {
        await settle(target, this.logger);
      }
      return true;
    }
    // Keyed by the person, so a person's turns keep their order whichever channel they come from.
    const userKey = await this.personOf(message);
    const log = this.logger.child({ channel: message.channel, chatId: message.chatId, messageId: message.id });
    const { message: plain, inboxBlobKey } = await this.toPlain(message, userKey);
    if (target) this.liveTargets.set(message.id, target);
    let created: boolean;
    try {
      ({ created } = await this.queue.enqueue(JOB_KINDS.turn, { message: plain, ...(inboxBlobKey ? { inboxBlobKey } : {}) } satisfies TurnJobData, { id: message.id, key: userKey }));
    } catch (err) {
      this.liveTargets.delete(message.id);
      if (inboxBlobKey) await this.store.blobs.delete(inboxBlobKey).catch(() => undefined);
      throw err;
    }
    if (!created) {
      this.liveTargets.delete(message.id);
      await settle(target, log);
      if (inboxBlobKey) await this.store.blobs.delete(inboxBlobKey).catch(() => undefined);
      log.info('duplicate inbound message dropped');
      this.observer({ type: 'duplicate', messageId: message.id });
    }
    return created;
  }

  /** The message as JSON-safe data: audio bytes go to an encrypted inbox blob, closures are dropped. */
  private async toPlain(message: InboundMessage, userKey: string): Promise<{ message: InboundMessage; inboxBlobKey?: string }> {
    const audio = message.audio;
    if (!audio) return { message };
    const { bytes, download, ...rest } = audio;
    if (audio.ref) return { message: { ...message, audio: rest } };
    // No reference any process can use: keep the bytes (fetched now if need be) until the job is done.
    checkDeclared(
      { ...(audio.declaredSizeBytes !== undefined ? { sizeBytes: audio.declaredSizeBytes } : {}) },
      { maxBytes: Math.min(this.settings.limits.maxAudioBytes, audio.platformMaxBytes ?? Infinity), maxDurationSec: Infinity },
    );
    const data = bytes ?? (download ? await download() : undefined);
    if (!data) return { message: { ...message, audio: rest } };
    const blobKey = await this.store.blobs.put(userKey, data, 'inbox');
    const ref: AudioRef = { kind: 'blob', blobKey };
    return { message: { ...message, audio: { ...rest, ref } }, inboxBlobKey: blobKey };
  }

  /** Runs one `turn` job: the message through {@link process}, replies through the outbox. */
  private async runTurnJob(job: Job<TurnJobData>): Promise<void> {
    const message = this.hydrate(job.data.message);
    const log = this.logger.child({ channel: message.channel, chatId: message.chatId, messageId: message.id, jobId: job.id, attempt: job.attempt });
    const live = this.liveTargets.get(message.id);
    const base = live ?? this.senderTarget(message.channel, message.chatId);
    const target = new OutboxTarget(this.store.kv, message.id, base, log);
    const last = job.attempt >= job.maxAttempts;
    let retrying = false;
    try {
      await this.process(message, target, log, last);
    } catch (err) {
      retrying = true;
      throw err;
    } finally {
      // The live target stays for a retry in this process; otherwise the handling is over.
      if (!retrying) {
        this.liveTargets.delete(message.id);
        await settle(live, log);
      }
    }
    if (job.data.inboxBlobKey) await this.store.blobs.delete(job.data.inboxBlobKey).catch((err: unknown) => log.warn({ err }, 'inbox audio not deleted'));
  }

  /** Gives a deserialised message's audio a `download` from its reference. */
  private hydrate(message: InboundMessage): InboundMessage {
    const ref = message.audio?.ref;
    if (!message.audio || !ref) return message;
    const download = async (): Promise<Buffer> => {
      if (ref.kind === 'blob') return this.store.blobs.get(ref.blobKey);
      const fetcher = this.fetchers.get(ref.channel);
      if (!fetcher) throw new Error(`no media fetcher registered for ${ref.channel} in this process`);
      return fetcher(ref, message.audio?.declaredSizeBytes);
    };
    return { ...message, audio: { ...message.audio, download } };
  }

  /** A reply target for a chat built from the channel's sender (any process, after a restart). */
  private senderTarget(channel: Channel, chatId: string): ReplyTarget {
    const sender = this.senders.get(channel);
    if (!sender) throw new Error(`no sender registered for ${channel} in this process`);
    if (sender.target) return sender.target(chatId);
    return {
      reply: (reply) => sender.send(chatId, reply),
      activity: async () => undefined,
      status: async (text) => {
        await sender.send(chatId, { kind: 'status', text });
        return (next) => sender.send(chatId, { kind: 'status', text: next });
      },
    };
  }

  /**
   * Routes a message and answers every failure: user errors with their message; unexpected errors
   * with an apology when `final` (otherwise they propagate, so the job is retried).
   */
  private async process(message: InboundMessage, target: ReplyTarget, log: Logger, final: boolean): Promise<void> {
    let person: string | undefined;
    try {
      person = await this.personOf(message);
      await this.route(message, target, log, person);
    } catch (err) {
      if (isUserInputError(err)) {
        log.info({ code: err.code, details: err.details }, 'user input refused');
        await safeReply(target, { kind: 'error', text: err.userMessage }, log);
      } else if (!final) {
        log.warn({ err }, 'turn failed; it will be retried');
        throw err;
      } else {
        log.error({ err }, 'turn failed');
        await safeReply(target, { kind: 'error', text: 'Sorry, something went wrong on my side. Nothing you stored was lost; please try again in a moment.' }, log);
      }
    }
    // The person was merged into another while this message ran: what it stored moves on too.
    if (person && message.command?.name.toLowerCase() !== 'link') {
      const into = await this.identities.mergedInto(person);
      if (into) await this.identities.merge(person, into);
    }
  }

  /** The person a message acts for: the API key's person or the sender's identity, through its link. */
  private personOf(message: InboundMessage): Promise<string> {
    return this.identities.resolve(userKeyOf(message));
  }

  private async route(message: InboundMessage, target: ReplyTarget, log: Logger, person: string): Promise<void> {
    const user = await this.ensureUser(message, person);
    if (message.action) return this.handleAction(user, message.action, target, message);
    if (message.command) return this.handleCommand(user, message, target, log);
    if (message.audio) {
      const profile = await this.store.profiles.get(user.key);
      if (profile && profile.state !== 'consent' && profile.state !== 'collecting' && (await this.enrollment.isSample(user.key, message.id))) {
        log.info('message was already taken as an enrollment sample by an earlier run');
        return;
      }
      if (profile && (profile.state === 'consent' || profile.state === 'collecting')) {
        return this.enrollment.acceptVoiceNote(user, profile, message, target);
      }
      return this.chatTurn(user, message, target, log);
    }
    const text = (message.text ?? '').trim();
    const profile = await this.store.profiles.get(user.key);
    if (profile?.state === 'consent' && /^\s*i\s+agree\b/i.test(text)) {
      return this.enrollment.confirmTyped(user, profile, target);
    }
    return this.chatTurn(user, message, target, log);
  }

  /**
   * The person's user record, created on their first message. Its `address` is where background
   * replies and broadcasts go: the chat the person last wrote from on a messaging channel (a linked
   * identity moves it; a message through an API key, on the web, does not).
   */
  private async ensureUser(message: InboundMessage, key: string): Promise<UserRecord> {
    const now = this.now();
    const existing = await this.store.users.get(key);
    const viaApiKey = message.personKey !== undefined;
    if (existing && existing.channel !== message.channel && (viaApiKey || !isMessagingChannel(message.channel))) return existing;
    if (existing && existing.channel !== message.channel) {
      const moved = existing.blocked || existing.address.channel !== message.channel || existing.address.chatId !== message.chatId;
      if (!moved) return existing;
      const updated: UserRecord = { ...existing, blocked: false, address: { channel: message.channel, chatId: message.chatId }, updatedAtMs: now };
      await this.store.users.put(updated);
      await this.identities.noteAddress(key, `${message.channel}:${message.userId}`, updated.address);
      return updated;
    }
    if (existing) {
      // A user who writes again has evidently unblocked the bot.
      const changed =
        existing.blocked || existing.address.channel !== message.channel || existing.address.chatId !== message.chatId || (message.displayName && existing.displayName !== message.displayName);
      if (!changed) return existing;
      const updated: UserRecord = {
        ...existing,
        blocked: false,
        address: { channel: message.channel, chatId: message.chatId },
        ...(message.displayName ? { displayName: message.displayName } : {}),
        updatedAtMs: now,
      };
      await this.store.users.put(updated);
      return updated;
    }
    const user: UserRecord = {
      key,
      channel: message.channel,
      address: { channel: message.channel, chatId: message.chatId },
      ...(message.displayName ? { displayName: message.displayName } : {}),
      persona: this.settings.defaultPersona,
      sendTextWithVoice: true,
      optedOut: false,
      blocked: false,
      messageCount: 0,
      createdAtMs: now,
      updatedAtMs: now,
    };
    await this.store.users.put(user);
    return user;
  }

  private async handleCommand(user: UserRecord, message: InboundMessage, target: ReplyTarget, log: Logger): Promise<void> {
    const rawName = message.command!.name.toLowerCase();
    const name = ALIASES[rawName] ?? rawName;
    const args = message.command!.args.trim();
    switch (name) {
      case 'start':
        if (user.optedOut) await this.store.users.put({ ...user, optedOut: false, updatedAtMs: this.now() });
        return target.reply({ kind: 'info', text: this.welcomeText(user) });
      case 'help':
        return target.reply({ kind: 'info', text: this.helpText(user) });
      case 'enroll': {
        // `/enroll` with audio attached (Discord's attachment option) is a sample once enrollment is under way.
        const profile = message.audio ? await this.store.profiles.get(user.key) : undefined;
        if (profile && (profile.state === 'consent' || profile.state === 'collecting')) {
          return this.enrollment.acceptVoiceNote(user, profile, message, target);
        }
        return this.enrollment.begin(user, target);
      }
      case 'status':
        return target.reply({ kind: 'info', text: await this.statusText(user), ephemeral: true });
      case 'styles':
        return target.reply(this.personaPicker(user));
      case 'style': {
        if (!args) return target.reply(this.personaPicker(user));
        return this.setPersona(user, args.toLowerCase(), target);
      }
      case 'remember':
        return this.remember(user, args, target, message.id);
      case 'memories':
        return target.reply({ kind: 'info', text: await this.memoriesText(user), ephemeral: true });
      case 'forget':
        return this.forget(user, args, target);
      case 'say':
        return this.say(user, args, target, message.channel);
      case 'text': {
        const v = args.toLowerCase();
        if (v !== 'on' && v !== 'off') throw new UserInputError('BAD_ARGUMENT', 'Use /text on to get the text with each voice reply, or /text off for voice only.');
        await this.store.users.put({ ...user, sendTextWithVoice: v === 'on', updatedAtMs: this.now() });
        return target.reply({ kind: 'info', text: v === 'on' ? 'Voice replies now come with their text.' : 'Voice replies now come without their text.' });
      }
      case 'stop':
        await this.store.users.put({ ...user, optedOut: true, updatedAtMs: this.now() });
        return target.reply({ kind: 'info', text: 'You will no longer receive announcements. Send /start to receive them again. Your twin still answers you.' });
      case 'export':
        return this.exportEverything(user, message.channel, target, log);
      case 'link':
        return this.linkCommand(user, args, target);
      case 'unlink':
        return this.unlinkCommand(message, target);
      case 'apikey':
        return this.apiKeyCommand(user, args, target);
      case 'delete':
        return target.reply({
          kind: 'info',
          ephemeral: true,
          text: 'This deletes everything I store about you: your voice samples, your cloned voice, your conversation, your memories and your usage records. It cannot be undone.',
          buttons: [[{ label: 'Delete everything', data: 'delete:confirm' }, { label: 'Keep my data', data: 'delete:cancel' }]],
        });
      default: {
        const operatorCommand = this.operatorCommands.get(name);
        if (operatorCommand) {
          if (!this.isOperator(user.key) && !this.isOperator(`${message.channel}:${message.userId}`)) {
            log.warn({ command: name, userKey: user.key }, 'operator command refused: not an operator');
            throw new UserInputError('FORBIDDEN', `/${name} is only for the operators of this VoiceTwin.`);
          }
          return operatorCommand.run({ user, message, args, target, log });
        }
        log.info({ commandChars: rawName.length }, 'unknown command'); // what the user typed is message text: not logged
        throw new UserInputError('UNKNOWN_COMMAND', `I don't know the command /${rawName}. Send /help to see what I can do.`);
      }
    }
  }

  private async handleAction(user: UserRecord, action: string, target: ReplyTarget, message: InboundMessage): Promise<void> {
    const [kind, value = ''] = action.split(':', 2) as [string, string?];
    switch (kind) {
      case 'style':
        return this.setPersona(user, value, target);
      case 'consent': {
        const profile = await this.store.profiles.get(user.key);
        if (value === 'agree') {
          if (!profile || profile.state !== 'consent') throw new UserInputError('NO_CONSENT', 'There is no consent waiting for you. Send /enroll to start.');
          return this.enrollment.confirmTyped(user, profile, target);
        }
        if (value === 'cancel') return this.enrollment.cancel(user, target);
        break;
      }
      case 'enroll':
        if (value === 'restart') return this.enrollment.restart(user, target);
        break;
      case 'delete':
        if (value === 'confirm') return this.deleteEverything(user, target);
        if (value === 'cancel') return target.reply({ kind: 'info', text: 'Nothing was deleted.', ephemeral: true });
        break;
    }
    this.logger.warn({ action, messageId: message.id }, 'unknown action');
    throw new UserInputError('BAD_ARGUMENT', 'That button has expired. Send /help to see what you can do.');
  }

  /** `/link` (a code for another chat) and `/link <code>` (join the person who made it). */
  private async linkCommand(user: UserRecord, args: string, target: ReplyTarget): Promise<void> {
    if (!args) {
      const code = await this.identities.createCode(user.key);
      return target.reply({
        kind: 'info',
        ephemeral: true,
        text:
          `Your link code: ${code}
` +
          `Within ${LINK_CODE_TTL_MS / 60_000} minutes, send "/link ${code}" from your other chat (Telegram, Discord, WhatsApp), or enter it in the web app. ` +
          'That chat then talks to this same twin: its conversation, memories, voice samples and usage move here. ' +
          'If both have a voice, a ready voice wins over one still collecting samples; of two alike, the voice of this chat is kept. The code works once.',
      });
    }
    const { text } = await this.linkWithCode(user.key, args);
    await target.reply({ kind: 'info', text });
  }

  /**
   * Joins the person `personKey` (with all its identities and records) to the person who made
   * `code` with `/link`; for `/link <code>` and `POST /v1/link`.
   * @returns what was merged, and the text telling the person (which voice was kept and why)
   * @throws UserInputError BAD_LINK_CODE (unknown, expired or used), ALREADY_LINKED, BUSY (a voice
   *   is being cloned)
   */
  async linkWithCode(personKey: string, code: string): Promise<{ report: MergeReport; text: string }> {
    let report: MergeReport;
    try {
      report = await this.identities.link(code, personKey);
    } catch (err) {
      if (!(err instanceof LinkRefusedError)) throw err;
      switch (err.code) {
        case 'BAD_CODE':
          throw new UserInputError('BAD_LINK_CODE', `That link code is unknown or has expired (a code lasts ${LINK_CODE_TTL_MS / 60_000} minutes). Send /link in the chat you want to join for a new one.`);
        case 'CODE_USED':
          throw new UserInputError('BAD_LINK_CODE', 'That link code was already used. Send /link in the other chat for a new one.');
        case 'SAME_PERSON':
          throw new UserInputError('ALREADY_LINKED', 'This chat already talks to that twin: there is nothing to link.');
        case 'VOICE_BUSY':
          throw new UserInputError('BUSY', 'A voice is being cloned right now. Send the code again once the clone is ready (see /status).');
      }
    }
    return { report, text: linkSummary(report) };
  }

  /** `/unlink`: detaches the sender's identity from its person; it starts fresh. */
  private async unlinkCommand(message: InboundMessage, target: ReplyTarget): Promise<void> {
    if (message.personKey !== undefined) {
      throw new UserInputError('BAD_ARGUMENT', 'Here you act through an API key of your twin. To cut this device off, revoke its key (/apikey list, /apikey revoke <id>).');
    }
    const outcome = await this.identities.unlink(`${message.channel}:${message.userId}`);
    switch (outcome.result) {
      case 'not-linked':
        throw new UserInputError('NOT_LINKED', 'This chat is not linked to another one. /link gives a code to link it.');
      case 'founding':
        throw new UserInputError('BAD_ARGUMENT', 'Your twin began in this chat, so its records live here and it cannot be detached. Send /unlink from your other chats to detach them.');
      case 'detached':
        return target.reply({
          kind: 'info',
          text: 'This chat is detached and starts fresh, as a new twin. Your conversation, memories and voice stay with the twin in your other chats (send /link there for a code to join again).',
        });
    }
  }

  /** `/apikey create [label]`, `/apikey list`, `/apikey revoke <id>`. */
  private async apiKeyCommand(user: UserRecord, args: string, target: ReplyTarget): Promise<void> {
    const [verb = 'list', ...rest] = args.split(/\s+/).filter(Boolean);
    switch (verb.toLowerCase()) {
      case 'create': {
        let created;
        try {
          created = await this.apiKeys.create(user.key, rest.join(' '));
        } catch (err) {
          throw new UserInputError('BAD_ARGUMENT', err instanceof Error ? `${err.message}.` : 'The key could not be created.');
        }
        return target.reply({
          kind: 'info',
          ephemeral: true,
          text: `Your new API key (id ${created.record.id}); it is shown only this once, so copy it now and delete this message:\n${created.key}\nUse it as "Authorization: Bearer <key>" with the HTTP API. /apikey revoke ${created.record.id} disables it.`,
        });
      }
      case 'list': {
        const keys = await this.apiKeys.list(user.key);
        if (keys.length === 0) return target.reply({ kind: 'info', ephemeral: true, text: 'You have no API keys. /apikey create [label] makes one.' });
        const lines = keys.map((k) => `${k.id}${k.label ? ` (${k.label})` : ''}, created ${new Date(k.createdAtMs).toISOString().slice(0, 10)}`);
        return target.reply({ kind: 'info', ephemeral: true, text: `Your API keys:\n${lines.join('\n')}` });
      }
      case 'revoke': {
        const id = (rest[0] ?? '').toLowerCase();
        if (!id) throw new UserInputError('BAD_ARGUMENT', 'Say which key to revoke: /apikey revoke <id> (see /apikey list).');
        if (!(await this.apiKeys.revoke(user.key, id))) throw new UserInputError('BAD_ARGUMENT', `You have no API key with id "${id.slice(0, 20)}". See /apikey list.`);
        return target.reply({ kind: 'info', ephemeral: true, text: `API key ${id} revoked.` });
      }
      default:
        throw new UserInputError('BAD_ARGUMENT', 'Use /apikey create [label], /apikey list or /apikey revoke <id>.');
    }
  }

  /**
   * The person record of `userKey`, created for the web channel when there is none yet (a web
   * sign-in of the local owner). Used by the HTTP API.
   */
  async person(userKey: string, displayName?: string): Promise<UserRecord> {
    const existing = await this.store.users.get(userKey);
    if (existing) return existing;
    const [channel, ...id] = userKey.split(':');
    const userId = id.join(':');
    if (channel !== 'web' || !userId) throw new UserInputError('FORBIDDEN', 'This key belongs to a person who no longer exists.');
    return this.ensureUser({ id: `web:person:${userId}`, channel: 'web', chatId: userId, userId, receivedAtMs: this.now(), ...(displayName ? { displayName } : {}) }, userKey);
  }

  /**
   * Speaks `text` in the person's twin voice (the default voice before enrollment): budget checked,
   * usage recorded. For the HTTP API's `POST /v1/speech`.
   * @throws UserInputError EMPTY_TEXT, TEXT_TOO_LONG (over REPLY_MAX_CHARS), BUDGET_EXCEEDED
   */
  async speak(userKey: string, text: string): Promise<{ voice: VoiceNote; label?: string; approximate: boolean }> {
    const user = await this.person(userKey);
    const clean = this.checkText(text, 'Give a text to speak.');
    if (clean.length > this.settings.limits.replyMaxChars) {
      throw new UserInputError('TEXT_TOO_LONG', `I can say at most ${this.settings.limits.replyMaxChars} characters at once (about a minute of speech). Yours has ${clean.length}.`);
    }
    await this.usage?.checkBudget(user.key, ['tts']);
    const profile = await this.store.profiles.get(user.key);
    const voice = profile?.state === 'ready' ? profile.voice : undefined;
    const note = await this.voice.render(user.key, clean, voice, 'web');
    for (const s of note.synthesized) await this.record(user.key, { provider: s.provider, ttsChars: s.characters }, this.logger);
    const label = this.voiceCaption(user, clean, voice).voiceLabel;
    return { voice: note.voice, approximate: voice?.approximate ?? false, ...(label ? { label } : {}) };
  }

  /**
   * Transcribes audio for a person (budget checked, usage recorded). For `POST /v1/transcriptions`.
   * @throws UserInputError for audio that is too large, too long, unsupported or empty
   */
  async transcribe(userKey: string, audio: InboundAudio, languageHint?: string): Promise<{ text: string; durationSec: number; languageCode?: string }> {
    const user = await this.person(userKey);
    await this.usage?.checkBudget(user.key, ['stt']);
    const pcm = await this.receiveAudio(audio, this.settings.limits.maxTurnAudioSec);
    const transcript = await this.providers.stt.transcribe(pcm, languageHint ? { languageHint } : {});
    await this.record(user.key, { provider: transcript.provider ?? this.providers.stt.name, sttSec: transcript.durationSec }, this.logger);
    return { text: transcript.text.trim(), durationSec: transcript.durationSec, ...(transcript.languageCode ? { languageCode: transcript.languageCode } : {}) };
  }

  /**
   * Stores an explicit memory for a person (as `/remember` does).
   * @returns the memory, or the existing one when it is a duplicate
   * @throws UserInputError EMPTY_TEXT, TEXT_TOO_LONG (over 500 characters)
   */
  async addMemory(userKey: string, text: string): Promise<MemoryRecord> {
    const user = await this.person(userKey);
    const clean = text.trim();
    if (!clean) throw new UserInputError('EMPTY_TEXT', 'Tell me what to remember.');
    if (clean.length > 500) throw new UserInputError('TEXT_TOO_LONG', 'A memory can be at most 500 characters. Try a shorter sentence.');
    const existing = await this.store.memories.list(user.key);
    const duplicate = existing.find((m) => isDuplicateMemory(clean, [m]));
    if (duplicate) return duplicate;
    const memory: MemoryRecord = { id: newMemoryId(existing), text: clean, createdAtMs: this.now(), source: 'explicit' };
    await this.store.memories.add(user.key, memory);
    return memory;
  }

  /**
   * Sets a person's persona.
   * @throws UserInputError BAD_ARGUMENT for an unknown persona name
   */
  async setPersonaOf(userKey: string, name: string): Promise<UserRecord> {
    const user = await this.person(userKey);
    if (!isPersonaName(name)) throw new UserInputError('BAD_ARGUMENT', `There is no persona called "${name.slice(0, 40)}". Choose one of: ${PERSONA_NAMES.join(', ')}.`);
    const updated = { ...user, persona: name, updatedAtMs: this.now() };
    await this.store.users.put(updated);
    return updated;
  }

  /**
   * Deletes a person's voice: the provider-side voice, samples, consent and profile (not the
   * conversation or memories). For `DELETE /v1/voice`.
   * @returns false when there was no voice profile
   */
  async deleteVoice(userKey: string): Promise<boolean> {
    const profile = await this.store.profiles.get(userKey);
    if (!profile) return false;
    if (profile.voice && this.providers.cloner.deleteVoice) {
      try {
        await this.providers.cloner.deleteVoice(profile.voice);
      } catch (err) {
        this.logger.warn({ err, userKey }, 'provider voice deletion failed; local voice data is deleted anyway');
      }
    }
    const samples = await this.store.samples.list(userKey);
    for (const sample of samples) await this.store.blobs.delete(sample.blobKey).catch(() => undefined);
    if (profile.consent.audioBlobKey) await this.store.blobs.delete(profile.consent.audioBlobKey).catch(() => undefined);
    await this.store.samples.deleteAll(userKey);
    await this.store.profiles.delete(userKey);
    return true;
  }

  private personaPicker(user: UserRecord): OutboundReply {
    const lines = PERSONA_NAMES.map((p) => `${p === user.persona ? '• ' : '  '}${p}: ${PERSONAS[p].description}`);
    const buttons = [PERSONA_NAMES.slice(0, 3), PERSONA_NAMES.slice(3)].map((row) => row.map((p) => ({ label: p, data: `style:${p}` })));
    return { kind: 'info', text: `Choose how your twin talks (now: ${user.persona}).\n${lines.join('\n')}`, buttons };
  }

  private async setPersona(user: UserRecord, name: string, target: ReplyTarget): Promise<void> {
    if (!isPersonaName(name)) {
      throw new UserInputError('BAD_ARGUMENT', `There is no persona called "${name.slice(0, 40)}". Choose one of: ${PERSONA_NAMES.join(', ')}.`);
    }
    await this.store.users.put({ ...user, persona: name, updatedAtMs: this.now() });
    await target.reply({ kind: 'info', text: `Your twin is now ${name}: ${PERSONAS[name].description}` });
  }

  private async remember(user: UserRecord, text: string, target: ReplyTarget, messageId: string): Promise<void> {
    const clean = text.trim();
    if (!clean) throw new UserInputError('EMPTY_TEXT', 'Tell me what to remember, for example: /remember my sister is called Ana.');
    if (clean.length > 500) throw new UserInputError('TEXT_TOO_LONG', 'A memory can be at most 500 characters. Try a shorter sentence.');
    const existing = await this.store.memories.list(user.key);
    const stored = existing.find((m) => m.sourceMessageId === messageId);
    if (stored) return target.reply({ kind: 'info', text: `I'll remember that (id ${stored.id}).` });
    if (isDuplicateMemory(clean, existing)) return target.reply({ kind: 'info', text: 'I already remember that.' });
    const memory: MemoryRecord = { id: newMemoryId(existing), text: clean, createdAtMs: this.now(), source: 'explicit', sourceMessageId: messageId };
    await this.store.memories.add(user.key, memory);
    await target.reply({ kind: 'info', text: `I'll remember that (id ${memory.id}).` });
  }

  private async memoriesText(user: UserRecord): Promise<string> {
    const memories = await this.store.memories.list(user.key);
    if (memories.length === 0) return 'I don\'t remember anything about you yet. Tell me with /remember, or just talk to me.';
    const lines = memories.map((m) => `${m.id}: ${m.text}${m.source === 'extracted' ? ' (from our chats)' : ''}`);
    return `What I remember (forget one with /forget <id>, or all with /forget all):\n${lines.join('\n')}`;
  }

  private async forget(user: UserRecord, args: string, target: ReplyTarget): Promise<void> {
    const id = args.trim().toLowerCase();
    if (!id) throw new UserInputError('BAD_ARGUMENT', 'Say which memory to forget: /forget <id> (see /memories), or /forget all.');
    if (id === 'all') {
      const count = (await this.store.memories.list(user.key)).length;
      await this.store.memories.deleteAll(user.key);
      return target.reply({ kind: 'info', text: `Forgotten: ${count} ${count === 1 ? 'memory' : 'memories'}.` });
    }
    if (!(await this.store.memories.remove(user.key, id))) {
      throw new UserInputError('BAD_ARGUMENT', `I have no memory with id "${id.slice(0, 20)}". See /memories for the ids.`);
    }
    await target.reply({ kind: 'info', text: `Forgotten memory ${id}.` });
  }

  private async say(user: UserRecord, text: string, target: ReplyTarget, channel: Channel): Promise<void> {
    const clean = this.checkText(text, 'Tell me what to say, for example: /say good morning!');
    if (clean.length > this.settings.limits.replyMaxChars) {
      throw new UserInputError('TEXT_TOO_LONG', `I can say at most ${this.settings.limits.replyMaxChars} characters at once (about a minute of speech). Yours has ${clean.length}.`);
    }
    await this.usage?.checkBudget(user.key, ['tts']);
    await target.activity('record_voice');
    const profile = await this.store.profiles.get(user.key);
    const voice = profile?.state === 'ready' ? profile.voice : undefined;
    const note = await this.voice.render(user.key, clean, voice, channel);
    for (const s of note.synthesized) await this.record(user.key, { provider: s.provider, ttsChars: s.characters }, this.logger);
    await target.reply({ kind: 'answer', voice: note.voice, ...this.voiceCaption(user, clean, voice) });
  }

  private checkText(text: string | undefined, emptyMessage: string): string {
    const clean = (text ?? '').trim();
    if (!clean) throw new UserInputError('EMPTY_TEXT', emptyMessage);
    if (clean.length > this.settings.limits.maxTextChars) {
      throw new UserInputError(
        'TEXT_TOO_LONG',
        `Your message has ${clean.length.toLocaleString('en-US')} characters; I can take at most ${this.settings.limits.maxTextChars.toLocaleString('en-US')}. Please send a shorter message, or split it.`,
      );
    }
    return clean;
  }

  /** Caption fields for a voice reply: the text per the user's setting, plus an honest label. */
  private voiceCaption(user: UserRecord, text: string, voice: ClonedVoice | undefined): Pick<OutboundReply, 'text' | 'sendTextWithVoice' | 'voiceLabel'> {
    const label = voice ? (voice.approximate ? APPROXIMATION_NOTE : undefined) : 'Default voice: send /enroll to hear your twin in your own voice.';
    if (!label) return { text, sendTextWithVoice: user.sendTextWithVoice };
    return {
      text: user.sendTextWithVoice ? `${text}\n\n(${label})` : `(${label})`,
      sendTextWithVoice: true,
      voiceLabel: label,
    };
  }

  private async chatTurn(user: UserRecord, message: InboundMessage, target: ReplyTarget, log: Logger): Promise<void> {
    const started = performance.now();
    const timings: TurnTimings = { decodeMs: 0, sttMs: 0, chatMs: 0, ttsMs: 0, encodeMs: 0, storeMs: 0, totalMs: 0 };
    let userText: string;
    let input: 'voice' | 'text';
    if (message.audio) {
      input = 'voice';
      await this.usage?.checkBudget(user.key, ['stt']);
      await target.activity('typing');
      const pcm = await this.receiveAudio(message.audio, this.settings.limits.maxTurnAudioSec, timings);
      const t = performance.now();
      const transcript = await this.providers.stt.transcribe(pcm, message.languageCode ? { languageHint: message.languageCode } : {});
      timings.sttMs = performance.now() - t;
      await this.record(user.key, { provider: transcript.provider ?? this.providers.stt.name, sttSec: transcript.durationSec }, log);
      userText = transcript.text.trim();
      if (!userText) throw new UserInputError('NO_SPEECH', "I couldn't make out any words in that voice note. Could you say it again, a little closer to the microphone?");
    } else {
      input = 'text';
      userText = this.checkText(message.text, 'I understand voice notes and text, but this message had neither. Send me a voice note or write to me.');
    }
    await target.activity('record_voice');
    let t = performance.now();
    const [history, memories, profile] = await Promise.all([
      this.store.history.recent(user.key, 12),
      this.store.memories.list(user.key),
      this.store.profiles.get(user.key),
    ]);
    timings.storeMs += performance.now() - t;
    const relevant = selectMemories(memories, userText, 3);
    t = performance.now();
    const response = await this.providers.chat.reply({
      persona: user.persona,
      systemPrompt: renderSystemPrompt(user.persona, user.displayName),
      history,
      memories: relevant,
      userText,
      ...(user.displayName ? { userName: user.displayName } : {}),
      maxChars: this.settings.limits.replyMaxChars,
      seed: this.settings.seed + user.messageCount,
    });
    timings.chatMs = performance.now() - t;
    if (response.usage) await this.record(user.key, { provider: response.provider ?? this.providers.chat.name, ...response.usage }, log);
    const replyText = trimToSentences(response.text, this.settings.limits.replyMaxChars) || 'I hear you.';
    const voice = profile?.state === 'ready' ? profile.voice : undefined;
    const budgetNote = await this.ttsBudgetNote(user.key);
    const note = budgetNote ? undefined : await this.voice.render(user.key, replyText, voice, message.channel);
    if (note) {
      timings.ttsMs = note.synthMs;
      timings.encodeMs = note.encodeMs;
      for (const s of note.synthesized) await this.record(user.key, { provider: s.provider, ttsChars: s.characters }, log);
    }
    t = performance.now();
    const now = this.now();
    let updated: UserRecord = user;
    // A re-run of the same job (after a crash) finds its turn already in the history: store it once.
    if (!history.some((turn) => turn.messageId === message.id)) {
      await this.store.history.append(
        user.key,
        { role: 'user', text: userText, atMs: now, messageId: message.id },
        { role: 'twin', text: replyText, atMs: now, messageId: message.id },
      );
      updated = { ...user, messageCount: user.messageCount + 1, updatedAtMs: now };
      await this.store.users.put(updated);
    }
    timings.storeMs += performance.now() - t;
    const heard = input === 'voice' ? `You said: "${userText}"\n\n` : '';
    if (note) {
      const caption = this.voiceCaption(updated, `${heard}${replyText}`, voice);
      await target.reply({ kind: 'answer', voice: note.voice, ...caption });
    } else {
      await target.reply({ kind: 'answer', text: `${heard}${replyText}\n\n(${budgetNote})` });
    }
    timings.totalMs = performance.now() - started;
    log.info({ input, persona: user.persona, timings: roundTimings(timings) }, 'chat turn answered');
    this.observer({ type: 'turn', userKey: user.key, input, transcript: userText, replyText, persona: user.persona, timings });
    await this.afterTurn(updated, target, log);
  }

  /** Adds a provider call to the user's usage; accounting failures are logged, never shown. */
  private async record(userKey: string, event: Parameters<UsageMeter['record']>[1], log: Logger): Promise<void> {
    if (!this.usage) return;
    try {
      await this.usage.record(userKey, event);
    } catch (err) {
      log.warn({ err }, 'usage accounting failed');
    }
  }

  /** The user-facing reason when today's spoken-reply budget is used up, else undefined. */
  private async ttsBudgetNote(userKey: string): Promise<string | undefined> {
    try {
      await this.usage?.checkBudget(userKey, ['tts']);
      return undefined;
    } catch (err) {
      if (isUserInputError(err) && err.code === 'BUDGET_EXCEEDED') return err.userMessage;
      throw err;
    }
  }

  /** Checks declared metadata, downloads, checks the bytes and decodes to 16 kHz mono PCM. */
  async receiveAudio(audio: InboundAudio, maxDurationSec: number, timings?: TurnTimings): Promise<PcmAudio> {
    const limits = { maxBytes: Math.min(this.settings.limits.maxAudioBytes, audio.platformMaxBytes ?? Infinity), maxDurationSec };
    checkDeclared({ ...(audio.declaredSizeBytes !== undefined ? { sizeBytes: audio.declaredSizeBytes } : {}), ...(audio.declaredDurationSec !== undefined ? { durationSec: audio.declaredDurationSec } : {}) }, limits);
    const bytes = audio.bytes ?? (audio.download ? await audio.download() : undefined);
    if (!bytes || bytes.length === 0) throw new UserInputError('EMPTY_AUDIO', 'That voice note arrived empty. Please record it again.');
    const t = performance.now();
    await checkAudio(bytes, limits);
    const pcm = await decodeToPcm(bytes, { sampleRateHz: 16000, maxDurationSec });
    if (timings) timings.decodeMs = performance.now() - t;
    return pcm;
  }

  /** Memory extraction and insights every few messages; failures are logged, never shown. */
  private async afterTurn(user: UserRecord, target: ReplyTarget, log: Logger): Promise<void> {
    const { memoryEvery, insightEvery } = this.settings;
    if (memoryEvery > 0 && user.messageCount % memoryEvery === 0) {
      try {
        const history = await this.store.history.recent(user.key, memoryEvery * 2);
        const known = await this.store.memories.list(user.key);
        const facts = await this.providers.chat.extractMemories(history, known);
        for (const fact of facts.slice(0, 5)) {
          const current = await this.store.memories.list(user.key);
          if (isDuplicateMemory(fact, current)) continue;
          await this.store.memories.add(user.key, { id: newMemoryId(current), text: fact, createdAtMs: this.now(), source: 'extracted' });
        }
        if (facts.length) log.info({ count: facts.length }, 'memories extracted');
      } catch (err) {
        log.warn({ err }, 'memory extraction failed');
      }
    }
    if (insightEvery > 0 && user.messageCount % insightEvery === 0) {
      try {
        const history = await this.store.history.recent(user.key, insightEvery * 2);
        const insight = (await this.providers.chat.insight(history, user.persona)).trim();
        if (insight) await target.reply({ kind: 'insight', text: `Insight: ${insight}` });
      } catch (err) {
        log.warn({ err }, 'insight failed');
      }
    }
  }

  /**
   * `/export`: sends the person a ZIP of everything stored about them (see `export.ts`). When the
   * archive with audio is over the channel's document limit, an archive without audio is sent and
   * the reply says so; when even that is too large, the reply says that instead.
   */
  private async exportEverything(user: UserRecord, channel: Channel, target: ReplyTarget, log: Logger): Promise<void> {
    const limit = DOCUMENT_LIMIT_BYTES[channel];
    await target.activity('typing');
    const identities = await this.identities.identitiesOf(user.key);
    const deps = { store: this.store, now: this.now, ...(this.usage ? { usage: this.usage } : {}), ...(identities.length > 0 ? { identities } : {}) };
    let built = await buildPersonalExport(deps, user.key);
    let note = '';
    if (built.bytes.length > limit && built.audioFiles > 0) {
      const fullBytes = built.bytes.length;
      built = await buildPersonalExport(deps, user.key, { includeAudio: false });
      note = ` The ${built.document.samples.length} voice samples and the consent recording are left out: with them the file is ${(fullBytes / 1e6).toFixed(1)} MB, over the ${(limit / 1e6).toFixed(0)} MB this platform lets me send.`;
    }
    log.info({ sizeBytes: built.bytes.length, audioFiles: built.audioFiles, historyTurns: built.document.history.length }, 'personal data export built');
    if (built.bytes.length > limit) {
      throw new UserInputError('EXPORT_TOO_LARGE', `Your export is ${(built.bytes.length / 1e6).toFixed(1)} MB, over the ${(limit / 1e6).toFixed(0)} MB this platform lets me send. Send /forget all to make it smaller, or ask the operator for it.`);
    }
    const d = built.document;
    await target.reply({
      kind: 'info',
      ephemeral: true,
      text: `Everything I store about you: your profile and consent record, ${d.history.length} conversation turns, ${d.memories.length} memories, ${d.usage.length} days of usage${built.audioFiles > 0 ? `, ${built.audioFiles} recordings as WAV` : ''}.${note}`,
      document: { bytes: built.bytes, fileName: built.fileName, mimeType: 'application/zip' },
    });
  }

  private async deleteEverything(user: UserRecord, target: ReplyTarget): Promise<void> {
    const summary = await this.store.summarize(user.key);
    const voice = summary.profile?.voice;
    if (voice && this.providers.cloner.deleteVoice) {
      try {
        await this.providers.cloner.deleteVoice(voice);
      } catch (err) {
        this.logger.warn({ err, userKey: user.key }, 'provider voice deletion failed; local data is deleted anyway');
      }
    }
    // Every identity of the person: their records (left by a message in flight while they were
    // linked, or from before), jobs, usage and API keys go too.
    const keys = await this.identities.keysOf(user.key);
    // Queued and finished jobs keyed by the person: their turns (which carry the messages) and clone jobs.
    let messageIds: string[] = [];
    if (this.queue?.forget) {
      try {
        messageIds = await this.queue.forget(keys.flatMap((k) => [k, `clone:${k}`]));
      } catch (err) {
        this.logger.warn({ err, userKey: user.key }, 'could not delete the queued jobs of a deleted user');
      }
    }
    for (const [i, key] of keys.entries()) await this.store.deleteUser(key, i === 0 ? { messageIds } : {});
    for (const key of keys) await this.apiKeys.revokeAll(key);
    await this.identities.forgetPerson(user.key, keys);
    await target.reply({
      kind: 'info',
      ephemeral: true,
      text: `Deleted: ${summary.samples.length} voice samples, ${voice ? 'your cloned voice, ' : ''}${summary.historyTurns} conversation turns, ${summary.memories.length} memories, your usage records and queued messages${keys.length > 1 ? `, on all ${keys.length} linked chats` : ''}. Send /start whenever you want to begin again.`,
    });
  }

  private welcomeText(user: UserRecord): string {
    const name = user.displayName ? `, ${user.displayName}` : '';
    return [
      `Hi${name}! I'm your VoiceTwin: an AI twin that answers you in your own voice.`,
      '1. Send /enroll to clone your voice (I ask for your consent first, then a few voice notes).',
      '2. Then talk to me with voice notes or text; I answer with a voice note.',
      '3. /style changes how I talk; /remember tells me something to keep in mind.',
      'Your voice is personal data: it is stored encrypted, and /delete removes everything.',
    ].join('\n');
  }

  private helpText(user: UserRecord): string {
    const operator = this.isOperator(user.key);
    const lines = this.commandList.filter((c) => !c.operatorOnly || operator).map((c) => `/${c.name}${c.args ? ` ${c.args}` : ''}: ${c.description}`);
    return `Send me a voice note or text and I answer in your twin voice.\n${lines.join('\n')}`;
  }

  private async statusText(user: UserRecord): Promise<string> {
    const summary = await this.store.summarize(user.key);
    const p = summary.profile;
    const lines: string[] = [];
    if (!p) lines.push('Voice: not enrolled. Send /enroll to clone your voice.');
    else if (p.state === 'ready' && p.voice) lines.push(`Voice: ready (${p.voice.label}).`);
    else if (p.state === 'consent') lines.push('Voice: waiting for your consent (see /enroll).');
    else if (p.state === 'collecting') lines.push(`Voice: collecting samples, ${p.speechSec.toFixed(1)} s of ${p.requiredSpeechSec} s of speech.`);
    else if (p.state === 'processing') lines.push('Voice: being cloned right now.');
    else lines.push(`Voice: cloning failed (${p.failureReason ?? 'unknown reason'}). Send /enroll to try again.`);
    if (p?.voice?.approximate) lines.push(APPROXIMATION_NOTE);
    lines.push(`Persona: ${user.persona}. Text with voice replies: ${user.sendTextWithVoice ? 'on' : 'off'}.`);
    lines.push(
      `Stored: ${summary.samples.length} samples, ${summary.historyTurns} conversation turns, ${summary.memories.length} memories (storage: ${this.store.backend}, encrypted at rest).`,
    );
    lines.push(`Providers: speech-to-text ${this.providers.stt.name}, chat ${this.providers.chat.name}, voice ${this.providers.tts.name}.`);
    if (this.usage) {
      const { total } = await this.usage.today(user.key);
      const limits = this.usage.budget;
      const of = (limit: number | undefined, unit: string): string => (limit === undefined ? '' : ` of ${limit.toLocaleString('en-US')}${unit}`);
      lines.push(
        `Today: ${total.ttsChars.toLocaleString('en-US')}${of(limits.dailyTtsChars, '')} characters spoken, ${Math.round(total.sttSec)}${of(limits.dailySttSec, '')} s transcribed, about $${total.costUsd.toFixed(3)}${limits.dailyCostUsd !== undefined ? ` of $${limits.dailyCostUsd.toFixed(2)}` : ''}.`,
      );
    }
    return lines.join('\n');
  }

  /** Sends a reply to a user outside a turn through the channel's registered sender. */
  private async notify(user: UserRecord, reply: OutboundReply): Promise<void> {
    const sender = this.senders.get(user.address.channel);
    if (!sender) {
      this.logger.warn({ userKey: user.key }, 'no sender registered for channel; background reply dropped');
      return;
    }
    await sender.send(user.address.chatId, reply);
  }

  /** Runs a persisted clone job: on the queue when there is one, else in the background here. */
  private async runClone(jobId: string, userKey: string): Promise<void> {
    if (this.queue) {
      await this.queue.enqueue(JOB_KINDS.clone, { jobId } satisfies CloneJobData, { id: `clone:${jobId}`, key: `clone:${userKey}`, maxAttempts: 2 });
      return;
    }
    this.track(this.enrollment.runCloneJob(jobId));
  }

  private track<T>(promise: Promise<T>): void {
    const p = promise.catch((err: unknown) => this.logger.error({ err }, 'background job failed'));
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }
}

/** The key of the person a message acts for: its `personKey`, else `<channel>:<userId>`. */
export function userKeyOf(message: InboundMessage): string {
  return message.personKey ?? `${message.channel}:${message.userId}`;
}

/** What a person is told after `/link <code>`: what moved, and which voice was kept and why. */
export function linkSummary(report: MergeReport): string {
  const n = (count: number, one: string, many: string): string => `${count} ${count === 1 ? one : many}`;
  const moved = [
    n(report.historyTurns, 'conversation turn', 'conversation turns'),
    n(report.memories, 'memory', 'memories'),
    n(report.samples, 'voice sample', 'voice samples'),
    n(report.usageDays, 'day of usage', 'days of usage'),
    n(report.apiKeys, 'API key', 'API keys'),
  ].join(', ');
  const v = report.voice;
  const where = (side: 'target' | 'source'): string => (side === 'target' ? 'the chat that made the code' : 'this chat');
  let voice: string;
  if (v.kept === 'none') voice = 'Neither had a voice profile yet: send /enroll to clone your voice.';
  else if (!v.replacedState) voice = `Voice: the ${v.keptState} voice profile of ${where(v.kept)} is now used everywhere.`;
  else {
    const other = v.kept === 'target' ? 'source' : 'target';
    voice =
      `Voice: the ${v.keptState} voice of ${where(v.kept)} is kept and the ${v.replacedState} one of ${where(other)} is replaced ` +
      '(a ready voice wins over one still collecting samples; of two alike, the voice of the chat that made the code is kept). ' +
      `Its samples and consent record stay with your data${v.speechSecAdded > 0 ? `, and its ${v.speechSecAdded.toFixed(1)} s of speech count toward your voice` : ''}` +
      `${v.providerVoiceDeleted ? '; its cloned voice was deleted at the voice provider' : ''}.`;
  }
  return `Linked: this chat now talks to the same twin as your other chats. Moved into it: ${moved}.
${voice}
/unlink detaches this chat again.`;
}

/** Calls a target's `settle` hook, if any; a failure is logged, never thrown. */
async function settle(target: ReplyTarget | undefined, log: Logger): Promise<void> {
  if (!target?.settle) return;
  try {
    await target.settle();
  } catch (err) {
    log.warn({ err }, 'reply target could not be settled');
  }
}

async function safeReply(target: ReplyTarget, reply: OutboundReply, log: Logger): Promise<void> {
  try {
    await target.reply(reply);
  } catch (err) {
    log.error({ err }, 'could not deliver reply');
  }
}

function newMemoryId(existing: MemoryRecord[]): string {
  for (;;) {
    const id = randomBytes(2).toString('hex');
    if (!existing.some((m) => m.id === id)) return id;
  }
}

function roundTimings(t: TurnTimings): Record<string, number> {
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round(v)]));
}
