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
  ReplyStream,
  StreamedAnswer,
  ChannelSender,
  ChatAddress,
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
import type { ChatRequest, ChatTurn, ClonedVoice, MemoryRecord, PcmAudio, Providers, TextEmbedder } from './providers.js';
import type { Store, UserRecord, VoiceProfile } from './store/types.js';
import { PERSONA_NAMES, PERSONAS, isPersonaName, renderSystemPrompt, type PersonaName } from './personas.js';
import { KeyedSerialQueue } from './queue.js';
import { isDuplicateMemory } from './memory.js';
import { MemoryRetriever } from './memory-retrieval.js';
import { countOf, trimToSentences } from './text.js';
import { APPROXIMATION_NOTE, DEFAULT_VOICE_NOTE, FALLBACK_VOICE_NOTE, describeVoice } from './wording.js';
import {
  LANGUAGE_NAMES,
  detectTextLanguage,
  detectTranscriptLanguage,
  parseLanguagePreference,
  replyLanguage,
  type ReplyLanguage,
} from './language.js';
import { SentenceBuffer, streamChatReply } from './streaming.js';
import { checkAudio, checkDeclared, decodeToPcm } from './audio/index.js';
import { Enrollment } from './enrollment.js';
import type { UsageMeter } from './usage.js';
import { VoiceRenderer } from './voice.js';
import { DOCUMENT_LIMIT_BYTES, buildPersonalExport } from './export.js';
import { ApiKeys, SIGN_IN_CODE_TTL_MS, signInLink } from './apikeys.js';
import { wordErrorRate } from './wer.js';
import type { RenderedVoice } from './voice.js';
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
  /** Cosine similarity a memory needs to be chosen by meaning (with an embedder), default 0.6. */
  memoryMinSimilarity?: number;
  /** Users processed at once. */
  turnConcurrency: number;
  /** Seconds after which a running clone is announced as slow; replies use the default voice meanwhile. */
  cloneTimeoutSec: number;
  /** Chat model seed (template model determinism). */
  seed: number;
  /**
   * Reply fidelity check (VERIFY_REPLIES, default false): each spoken reply in a person's cloned
   * voice is transcribed by the configured recogniser and compared with its text; above
   * `verifyMaxWer` it is re-synthesised once in the fallback (default) voice, and both are logged.
   */
  verifyReplies: boolean;
  /** Word error rate above which a reply is re-synthesised (VERIFY_REPLIES_MAX_WER, default 0.5). */
  verifyMaxWer: number;
  /** Operators as `<channel>:<user id>`. */
  operators: string[];
  /** Voice-note sample rate per channel, Hz (default 48 kHz; WhatsApp 16 kHz for mobile playback). */
  voiceSampleRateHz?: Partial<Record<Channel, number>>;
  /**
   * Base URL of the web app (HTTP_PUBLIC_URL, else the address the HTTP server listens on), for
   * the sign-in links `/web` sends; unset when no web app is served (then `/web` sends the code only).
   */
  webAppUrl?: string;
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
  verifyReplies: false,
  verifyMaxWer: 0.5,
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
  { name: 'status', description: 'Your voice, persona and what is stored (/status details for the technical side)', args: '[details]' },
  { name: 'style', description: 'Choose how your twin talks', args: '<name>' },
  { name: 'styles', description: 'List the personas' },
  { name: 'say', description: 'Hear a text spoken in your twin voice', args: '<text>' },
  { name: 'remember', description: 'Tell your twin something to remember', args: '<text>' },
  { name: 'memories', description: 'List what your twin remembers' },
  { name: 'forget', description: 'Forget one memory, or all of them', args: '<id|all>' },
  { name: 'text', description: 'Send the text with each voice reply, or not', args: '<on|off>' },
  { name: 'language', description: 'The language I answer in: English, Hindi, Hinglish, or auto to follow yours', args: '<en|hi|hinglish|auto>' },
  { name: 'stop', description: 'Stop receiving announcements' },
  { name: 'export', description: 'Get a copy of everything stored about you (a zip file)' },
  { name: 'link', description: 'One twin across your chats: get a code here, send /link CODE from another chat', args: '[code]' },
  { name: 'unlink', description: 'Detach this chat from the twin it was linked to (it starts fresh)' },
  { name: 'apikey', description: 'Keys for the HTTP API and web app: create, list, revoke', args: '<create [label]|list|revoke id>' },
  { name: 'web', description: 'A one-time link to talk to your twin in the browser' },
  { name: 'delete', description: 'Delete all your data and your cloned voice' },
  { name: 'help', description: 'What you can do' },
];

/** Aliases accepted for commands. */
const ALIASES: Record<string, string> = { unsubscribe: 'stop', persona: 'style', personas: 'styles', speak: 'say', lang: 'language', bhasha: 'language' };

/** Told when a reply in the cloned voice failed the fidelity check and the fallback voice spoke it. */
export const UNCLEAR_VOICE_NOTE = 'My copy of your voice came out unclear this time, so this reply is in the standard voice.';

/** Told when a Hindi or Hinglish voice note reaches a recogniser that only knows English. */
export const HINDI_VOICE_UNSUPPORTED =
  "I can't understand Hindi voice notes here: the speech recogniser on this server only knows English, so I would only guess at your words. " +
  'Please type your message instead (Hindi, Hinglish and English are all fine), or ask whoever runs this VoiceTwin to set up a cloud recogniser (ElevenLabs or Gemini). ' +
  'If you spoke English, send /language en and try again.';

export { APPROXIMATION_NOTE, DEFAULT_VOICE_NOTE, FALLBACK_VOICE_NOTE } from './wording.js';

/** Key-value key set while a person is being answered in the fallback voice (told once per outage). */
const FALLBACK_TOLD_KEY = (userKey: string): string => `voice-fallback-told:${userKey}`;
/** How long a told outage is remembered, ms (a day: an outage longer than that is told again). */
const FALLBACK_TOLD_TTL_MS = 24 * 3600 * 1000;

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

/** What a {@link ChatCommand} receives. */
export interface ChatCommandContext {
  user: UserRecord;
  message: InboundMessage;
  /** Text after the command name, trimmed. */
  args: string;
  target: ReplyTarget;
  log: Logger;
}

/**
 * A command any person may run, added by a feature outside the engine (the phone line's `/phone`
 * and `/calls`). Errors the user caused are thrown as {@link UserInputError}.
 */
export interface ChatCommand {
  info: CommandInfo;
  run(context: ChatCommandContext): Promise<void>;
}

/**
 * Deletes what a feature outside the engine stores about a person (their call log, their linked
 * phone numbers), called by `/delete` before the store's own records go.
 * @returns how many records were deleted, for the log
 */
export type DeletionHook = (userKey: string) => Promise<number>;

/** What {@link Engine.spokenTurn} answers. */
export interface SpokenTurnReply {
  /** The twin's reply, trimmed to whole sentences within REPLY_MAX_CHARS. */
  replyText: string;
  /** The person's cloned voice when their profile is ready, else undefined (the default voice). */
  voice?: ClonedVoice;
  persona: PersonaName;
  /** Time the chat model took, ms. */
  chatMs: number;
}

/** Options of {@link Engine}. */
export interface EngineOptions {
  /** Embeds memories and turns, to choose memories by meaning; without it, by word overlap. */
  embedder?: TextEmbedder;
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

/** What {@link Engine.deletePerson} deleted. */
export interface DeletionSummary {
  samples: number;
  /** True when a cloned voice existed. */
  voice: boolean;
  /** The provider-side voice: deleted, deletion failed (logged; local data deleted anyway), or none to delete. */
  providerVoice: 'deleted' | 'failed' | 'none';
  historyTurns: number;
  memories: number;
  /** Audio blobs (samples, consent recording, turn audio, synthesis cache). */
  blobs: number;
  /** Jobs removed from the queue. */
  jobs: number;
  /** Channel identities of the person whose records were deleted (1 when none were linked). */
  identities: number;
}

/** Job kinds the engine runs. */
export const JOB_KINDS = { turn: 'turn', clone: 'clone', insights: 'insights' } as const;

/** The `insights` job of the turn answering inbound message `messageId` (one per message). */
export function insightsJobId(messageId: string): string {
  return `insights:${messageId}`;
}

/**
 * What an `insights` job carries: memory extraction and/or an insight after the turn that
 * answered `messageId`, enqueued by that turn (see docs/queue.md).
 */
export interface InsightsJobData extends Record<string, unknown> {
  userKey: string;
  /** The turn's inbound message id: the job id is derived from it and its extracted memories carry it. */
  messageId: string;
  /** Where the insight is sent (the chat of the turn). */
  address: ChatAddress;
  /** Extract memories from the recent history (every `memoryEvery` messages). */
  memories: boolean;
  /** Send an insight (every `insightEvery` messages). */
  insight: boolean;
}

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
  private readonly chatCommands = new Map<string, ChatCommand>();
  private readonly deletionHooks = new Map<string, DeletionHook>();
  private readonly exportSectionReaders = new Map<string, (personKey: string) => Promise<unknown>>();
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
  private exportLink: ((userKey: string) => { url: string; expiresAtMs: number }) | undefined;
  /** Per-person API keys and sign-in codes (`/apikey`, the HTTP API). */
  readonly apiKeys: ApiKeys;
  /** Chooses the memories a chat turn carries. */
  readonly memoryRetriever: MemoryRetriever;
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
    this.memoryRetriever = new MemoryRetriever({
      memories: this.store.memories,
      embedder: options.embedder,
      logger: this.logger,
      ...(this.settings.memoryMinSimilarity !== undefined ? { minSimilarity: this.settings.memoryMinSimilarity } : {}),
    });
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
  /**
   * Lets `/export` offer a download link when the archive is over the channel's document limit
   * (the HTTP server registers this when `HTTP_PUBLIC_URL` is set). `link(userKey)` returns an
   * absolute URL that serves the person's full export until `expiresAtMs`.
   */
  setExportLinks(link: ((userKey: string) => { url: string; expiresAtMs: number }) | undefined): void {
    this.exportLink = link;
  }

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

  /**
   * Adds a command every person may run (shown in menus and `/help` before `/delete`).
   * @throws Error when a built-in command already has that name
   */
  registerCommand(command: ChatCommand): void {
    if (COMMANDS.some((c) => c.name === command.info.name)) throw new Error(`/${command.info.name} is a built-in command`);
    this.chatCommands.set(command.info.name, command);
    const rest = this.commandList.filter((c) => c.name !== command.info.name);
    const at = rest.findIndex((c) => c.name === 'delete');
    this.commandList = at < 0 ? [...rest, command.info] : [...rest.slice(0, at), command.info, ...rest.slice(at)];
  }

  /** Registers what `/delete` must also delete (`name` is for the log). */
  registerDeletionHook(name: string, hook: DeletionHook): void {
    this.deletionHooks.set(name, hook);
  }

  /**
   * Registers what `/export` (and `GET /v1/export`) must also include: `read(personKey)` gives a
   * JSON-safe value put under `sections.<name>` of the export document (e.g. `calls`).
   */
  registerExportSection(name: string, read: (personKey: string) => Promise<unknown>): void {
    this.exportSectionReaders.set(name, read);
  }

  /** The registered export sections of a person (see {@link registerExportSection}); empty ones left out. */
  async exportSections(personKey: string): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const [name, read] of this.exportSectionReaders) {
      const value = await read(personKey);
      if (value !== undefined && !(Array.isArray(value) && value.length === 0)) out[name] = value;
    }
    return out;
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
      this.queue.process<InsightsJobData>(JOB_KINDS.insights, (job) => this.runInsightsJob(job));
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
        // `details` may hold what the user sent (a heard phrase, a file name): only the code is logged.
        log.info({ code: err.code }, 'user input refused');
        await safeReply(target, { kind: 'error', text: err.userMessage, code: err.code }, log);
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
        return target.reply({ kind: 'info', text: await this.statusText(user, /^details?$/i.test(args)), ephemeral: true });
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
      case 'language':
        return this.setLanguage(user, args, target);
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
      case 'web':
        return this.webSignIn(user, target);
      case 'delete':
        return target.reply({
          kind: 'info',
          ephemeral: true,
          text: 'This deletes everything I store about you: your voice samples, your cloned voice, your conversation, your memories and your usage records. It cannot be undone.',
          buttons: [[{ label: 'Delete everything', data: 'delete:confirm' }, { label: 'Keep my data', data: 'delete:cancel' }]],
        });
      default: {
        const chatCommand = this.chatCommands.get(name);
        if (chatCommand) return chatCommand.run({ user, message, args, target, log });
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

  /**
   * Points the `/web` sign-in links at `url` (the HTTP server calls it once it listens, when
   * HTTP_PUBLIC_URL is unset, so a free port picked at start-up is the one linked).
   */
  setWebAppUrl(url: string): void {
    this.settings.webAppUrl = url;
  }

  /** `/web`: a one-time sign-in code for the person, as a link to the web app when it is served. */
  private async webSignIn(user: UserRecord, target: ReplyTarget): Promise<void> {
    const code = await this.apiKeys.createSignInCode(user.key);
    const minutes = Math.round(SIGN_IN_CODE_TTL_MS / 60_000);
    const base = this.settings.webAppUrl;
    const text = base
      ? `Open this link to talk to your twin in your browser (it works once, for ${minutes} minutes, and signs that browser in as you):\n${signInLink(base, code)}\nOr enter the code ${code} on the sign-in page. Do not share it: whoever uses it can act as you.`
      : `Your one-time sign-in code for the VoiceTwin web app (it works once, for ${minutes} minutes): ${code}\nEnter it on the web app's sign-in page. Do not share it: whoever uses it can act as you.`;
    return target.reply({ kind: 'info', ephemeral: true, text });
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
   * One turn of a live spoken conversation (a phone call) whose speech was already transcribed:
   * the person's persona, recent history and relevant memories go to the chat model like in any
   * chat turn; the exchange is stored in their history (once per `messageId`), usage is recorded
   * and memory extraction runs every MEMORY_EVERY messages. Synthesis is left to the caller, which
   * streams it.
   * @param userKey an existing person
   * @param userText what the person said
   * @param options.messageId unique id of this turn, e.g. `phone:<call sid>:<n>`
   * @param options.sttSec seconds of audio transcribed, for usage accounting
   * @throws UserInputError FORBIDDEN when the person does not exist, EMPTY_TEXT, TEXT_TOO_LONG
   */
  async spokenTurn(userKey: string, userText: string, options: { messageId: string; sttSec?: number; sttProvider?: string }): Promise<SpokenTurnReply> {
    const user = await this.store.users.get(userKey);
    if (!user) throw new UserInputError('FORBIDDEN', 'This phone number belongs to a person who no longer exists.');
    const text = this.checkText(userText, 'I did not hear anything.');
    const log = this.logger.child({ channel: 'phone', personId: userKey, messageId: options.messageId });
    if (options.sttSec) await this.record(userKey, { provider: options.sttProvider ?? this.providers.stt.name, sttSec: options.sttSec }, log);
    const [history, memories, profile] = await Promise.all([this.store.history.recent(userKey, 12), this.store.memories.list(userKey), this.store.profiles.get(userKey)]);
    const t = performance.now();
    const response = await this.providers.chat.reply({
      persona: user.persona,
      systemPrompt: renderSystemPrompt(user.persona, user.displayName),
      history,
      memories: (await this.memoryRetriever.select(userKey, memories, text, 3)).memories,
      userText: text,
      ...(user.displayName ? { userName: user.displayName } : {}),
      maxChars: this.settings.limits.replyMaxChars,
      seed: this.settings.seed + user.messageCount,
    });
    const chatMs = performance.now() - t;
    if (response.usage) await this.record(userKey, { provider: response.provider ?? this.providers.chat.name, ...response.usage }, log);
    const replyText = trimToSentences(response.text, this.settings.limits.replyMaxChars) || 'I hear you.';
    const voice = profile?.state === 'ready' ? profile.voice : undefined;
    let updated = user;
    if (!history.some((turn) => turn.messageId === options.messageId)) {
      const now = this.now();
      await this.store.history.append(userKey, { role: 'user', text, atMs: now, messageId: options.messageId }, { role: 'twin', text: replyText, atMs: now, messageId: options.messageId });
      updated = { ...user, messageCount: user.messageCount + 1, updatedAtMs: now };
      await this.store.users.put(updated);
    }
    // Memory extraction as after any turn; no insight is sent for a spoken call turn.
    const quiet: ReplyTarget = { reply: async () => undefined, activity: async () => undefined, status: async () => async () => undefined };
    const asMessage = { id: options.messageId, channel: user.address.channel, chatId: user.address.chatId, userId: userKey, receivedAtMs: this.now() } as InboundMessage;
    this.track(this.afterTurn(updated, asMessage, quiet, log, { insight: false }));
    return { replyText, persona: user.persona, chatMs, ...(voice ? { voice } : {}) };
  }

  /** Adds synthesis or transcription to a person's daily usage (a phone call's TTS); never throws. */
  async recordUsage(userKey: string, event: Parameters<UsageMeter['record']>[1]): Promise<void> {
    await this.record(userKey, event, this.logger);
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
      return target.reply({ kind: 'info', text: `Forgotten: ${countOf(count, 'memory')}.` });
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
    const note = await this.voice.render(user.key, clean, voice, channel, { language: detectTextLanguage(clean) });
    for (const s of note.synthesized) await this.record(user.key, { provider: s.provider, ttsChars: s.characters }, this.logger);
    const notice = await this.fallbackNotice(user.key, voice, note.fallback, this.logger);
    await target.reply({ kind: 'answer', voice: note.voice, ...this.voiceCaption(user, clean, voice, notice) });
  }

  /** `/language en|hi|hinglish|auto`; with no argument, says the current setting. */
  private async setLanguage(user: UserRecord, args: string, target: ReplyTarget): Promise<void> {
    const current = user.language ?? 'auto';
    const usage = 'Send /language en, /language hi, /language hinglish, or /language auto to follow the language you write or speak in.';
    if (!args) {
      const now = current === 'auto' ? `auto (${user.lastLanguage ? `now ${LANGUAGE_NAMES[user.lastLanguage]}` : 'English until you write otherwise'})` : LANGUAGE_NAMES[current];
      return target.reply({ kind: 'info', text: `I answer in: ${now}. ${usage}` });
    }
    const wanted = parseLanguagePreference(args);
    if (!wanted) throw new UserInputError('BAD_ARGUMENT', `I don't know the language "${args.slice(0, 30)}". ${usage}`);
    await this.store.users.put({ ...user, language: wanted, updatedAtMs: this.now() });
    const said: Record<typeof wanted, string> = {
      auto: 'I now answer in the language you write or speak in: English, Hindi or Hinglish.',
      en: 'I now answer in English.',
      hi: 'अब मैं हिंदी में जवाब दूँगा। (I now answer in Hindi.)',
      hinglish: 'Theek hai, ab main Hinglish mein jawab dunga. (I now answer in Hinglish.)',
    };
    const offlineNote = wanted === 'hi' || wanted === 'hinglish' ? this.hindiSpeechNote() : '';
    return target.reply({ kind: 'info', text: `${said[wanted]}${offlineNote}` });
  }

  /** A sentence saying Hindi voice notes cannot be understood here, when the recogniser lacks Hindi. */
  private hindiSpeechNote(): string {
    const languages = this.providers.stt.languages;
    return languages && !languages.includes('hi') ? ' Voice notes in Hindi cannot be understood on this server yet: please type them.' : '';
  }

  /**
   * True when the person talks Hindi or Hinglish: by their `/language` setting, else by what they
   * last wrote or said, else by the platform's language (Telegram `language_code`).
   */
  private speaksHindi(user: UserRecord, message: InboundMessage): boolean {
    const setting = user.language ?? 'auto';
    if (setting !== 'auto') return setting === 'hi' || setting === 'hinglish';
    if (user.lastLanguage) return user.lastLanguage !== 'en';
    return message.languageCode?.toLowerCase().split('-')[0] === 'hi';
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

  /**
   * {@link FALLBACK_VOICE_NOTE} when a reply meant for the person's own voice was spoken by the
   * fallback voice and they have not been told during this outage; undefined otherwise. A reply
   * in their own voice ends the outage, so the next one is told again.
   */
  private async fallbackNotice(userKey: string, voice: ClonedVoice | undefined, fallback: boolean, log: Logger): Promise<string | undefined> {
    if (!voice) return undefined;
    const key = FALLBACK_TOLD_KEY(userKey);
    try {
      if (!fallback) {
        if (await this.store.kv.get<boolean>(key)) await this.store.kv.delete(key);
        return undefined;
      }
      log.warn({ provider: voice.provider }, 'reply spoken by the fallback voice instead of the cloned voice');
      if (await this.store.kv.get<boolean>(key)) return undefined;
      await this.store.kv.set(key, true, FALLBACK_TOLD_TTL_MS);
    } catch (err) {
      log.warn({ err }, 'fallback-voice notice state unavailable');
      if (!fallback) return undefined;
    }
    return FALLBACK_VOICE_NOTE;
  }

  /**
   * Caption fields for a voice reply: the text per the user's setting, plus an honest label (the
   * fallback-voice notice when given, else the preview-voice or default-voice label).
   */
  private voiceCaption(user: UserRecord, text: string, voice: ClonedVoice | undefined, notice?: string): Pick<OutboundReply, 'text' | 'sendTextWithVoice' | 'voiceLabel'> {
    const label = notice ?? (voice ? (voice.approximate ? APPROXIMATION_NOTE : undefined) : DEFAULT_VOICE_NOTE);
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
    const stream = target.stream;
    let userText: string;
    let input: 'voice' | 'text';
    let detected: ReplyLanguage | undefined;
    if (message.audio) {
      input = 'voice';
      await this.usage?.checkBudget(user.key, ['stt']);
      await target.activity('typing');
      const pcm = await this.receiveAudio(message.audio, this.settings.limits.maxTurnAudioSec, timings);
      const t = performance.now();
      const transcript = await this.providers.stt.transcribe(pcm, {
        ...(message.languageCode ? { languageHint: message.languageCode } : {}),
        ...(stream ? { onPartial: (text: string) => stream.transcript(text, false) } : {}),
      });
      timings.sttMs = performance.now() - t;
      await this.record(user.key, { provider: transcript.provider ?? this.providers.stt.name, sttSec: transcript.durationSec }, log);
      userText = transcript.text.trim();
      // A recogniser without Hindi turns Hindi speech into English-sounding nonsense: say so instead.
      const recogniserLanguages = transcript.languages ?? (transcript.provider === undefined ? this.providers.stt.languages : undefined);
      if (recogniserLanguages && !recogniserLanguages.includes('hi') && this.speaksHindi(user, message)) {
        log.info({ provider: transcript.provider ?? this.providers.stt.name }, 'Hindi voice note refused: the recogniser has no Hindi');
        throw new UserInputError('LANGUAGE_UNSUPPORTED', HINDI_VOICE_UNSUPPORTED);
      }
      if (!userText) throw new UserInputError('NO_SPEECH', "I couldn't make out any words in that voice note. Could you say it again, a little closer to the microphone?");
      detected = detectTranscriptLanguage(userText, transcript.languageCode);
      stream?.transcript(userText, true);
    } else {
      input = 'text';
      userText = this.checkText(message.text, 'I understand voice notes and text, but this message had neither. Send me a voice note or write to me.');
      detected = detectTextLanguage(userText);
    }
    const language = replyLanguage(user.language, detected, user.lastLanguage);
    await target.activity('record_voice');
    let t = performance.now();
    const [history, memories, profile] = await Promise.all([
      this.store.history.recent(user.key, 12),
      this.store.memories.list(user.key),
      this.store.profiles.get(user.key),
    ]);
    timings.storeMs += performance.now() - t;
    const { memories: relevant, method: memoryMethod } = await this.memoryRetriever.select(user.key, memories, userText, 3);
    if (relevant.length) log.debug({ memories: relevant.length, method: memoryMethod }, 'memories chosen for the reply');
    const request: ChatRequest = {
      persona: user.persona,
      systemPrompt: renderSystemPrompt(user.persona, user.displayName),
      history,
      memories: relevant,
      userText,
      ...(user.displayName ? { userName: user.displayName } : {}),
      maxChars: this.settings.limits.replyMaxChars,
      seed: this.settings.seed + user.messageCount,
      ...(language !== 'en' ? { language } : {}),
    };
    const voice = profile?.state === 'ready' ? profile.voice : undefined;
    const budgetNote = await this.ttsBudgetNote(user.key);
    let replyText: string;
    let note: Awaited<ReturnType<VoiceRenderer['render']>> | undefined;
    let streamed: StreamedAnswer | undefined;
    let unclear = false;
    if (stream) {
      const answer = await this.streamAnswer(user.key, request, budgetNote ? undefined : { voice, language }, stream, timings, log);
      replyText = answer.text;
      streamed = answer.streamed;
    } else {
      t = performance.now();
      const response = await this.providers.chat.reply(request);
      timings.chatMs = performance.now() - t;
      if (response.usage) await this.record(user.key, { provider: response.provider ?? this.providers.chat.name, ...response.usage }, log);
      replyText = trimToSentences(response.text, this.settings.limits.replyMaxChars) || 'I hear you.';
      note = budgetNote ? undefined : await this.voice.render(user.key, replyText, voice, message.channel, { language });
      if (note && voice && this.settings.verifyReplies) ({ note, unclear } = await this.verifyReply(user, replyText, note, voice, language, log));
      if (note) {
        timings.ttsMs = note.synthMs;
        timings.encodeMs = note.encodeMs;
        for (const s of note.synthesized) await this.record(user.key, { provider: s.provider, ttsChars: s.characters }, log);
      }
    }
    t = performance.now();
    const now = this.now();
    let updated: UserRecord = user;
    // A re-run of the same job (after a crash) finds its turn already in the history: store it once.
    if (!history.some((turn) => turn.messageId === message.id)) {
      // An interrupted answer is stored as far as it was heard (nothing when not one sentence was).
      const twin = replyText ? [{ role: 'twin' as const, text: replyText, atMs: now, messageId: message.id }] : [];
      await this.store.history.append(user.key, { role: 'user', text: userText, atMs: now, messageId: message.id }, ...twin);
      updated = { ...user, messageCount: user.messageCount + 1, updatedAtMs: now, ...(detected ? { lastLanguage: detected } : {}) };
      await this.store.users.put(updated);
    }
    timings.storeMs += performance.now() - t;
    const heard = input === 'voice' ? `You said: "${userText}"\n\n` : '';
    if (streamed) {
      // The transcript and the audio went out through the stream: the answer closes it.
      const label = budgetNote ?? this.voiceCaption(updated, replyText, voice).voiceLabel;
      await target.reply({ kind: 'answer', text: replyText, streamed, ...(label ? { voiceLabel: label } : {}) });
    } else if (note) {
      const notice = unclear ? UNCLEAR_VOICE_NOTE : await this.fallbackNotice(user.key, voice, note.fallback, log);
      const caption = this.voiceCaption(updated, `${heard}${replyText}`, voice, notice);
      await target.reply({ kind: 'answer', voice: note.voice, ...caption });
    } else {
      await target.reply({ kind: 'answer', text: `${heard}${replyText}\n\n(${budgetNote})` });
    }
    timings.totalMs = performance.now() - started;
    log.info({ input, persona: user.persona, language, timings: roundTimings(timings), ...(streamed ? { streamed: { chunks: streamed.chunks, interrupted: streamed.interrupted } } : {}) }, 'chat turn answered');
    this.observer({ type: 'turn', userKey: user.key, input, transcript: userText, replyText, persona: user.persona, timings });
    await this.afterTurn(updated, message, target, log);
  }

  /**
   * The fidelity check of {@link EngineSettings.verifyReplies}: transcribes the rendered reply and
   * compares it with `text`; above `verifyMaxWer` renders it once more in the fallback (default)
   * voice. Skipped when the recogniser does not know the reply's language. A failing check is
   * logged and the reply kept as it was.
   * @returns the note to send, and whether it was re-synthesised
   */
  private async verifyReply(
    user: UserRecord,
    text: string,
    note: RenderedVoice,
    voice: ClonedVoice,
    language: ReplyLanguage,
    log: Logger,
  ): Promise<{ note: RenderedVoice; unclear: boolean }> {
    const userKey = user.key;
    const known = this.providers.stt.languages;
    if (known && !known.includes(language === 'en' ? 'en' : 'hi')) return { note, unclear: false };
    try {
      const pcm = await decodeToPcm(note.voice.oggOpus, { sampleRateHz: 16000 });
      const heard = await this.providers.stt.transcribe(pcm, language === 'en' ? {} : { languageHint: 'hi' });
      await this.record(userKey, { provider: heard.provider ?? this.providers.stt.name, sttSec: heard.durationSec }, log);
      const { wer, words } = wordErrorRate(text, heard.text);
      const checked = { wer: Math.round(wer * 1000) / 1000, words, maxWer: this.settings.verifyMaxWer, voiceProvider: voice.provider };
      if (wer <= this.settings.verifyMaxWer) {
        log.info(checked, 'reply fidelity checked');
        return { note, unclear: false };
      }
      log.warn(checked, 'reply failed the fidelity check; re-synthesising it in the fallback voice');
      const again = await this.voice.render(userKey, text, undefined, user.channel, { language });
      for (const s of again.synthesized) await this.record(userKey, { provider: s.provider, ttsChars: s.characters }, log);
      return { note: again, unclear: true };
    } catch (err) {
      log.warn({ err }, 'reply fidelity check failed; the reply is sent as it was');
      return { note, unclear: false };
    }
  }

  /**
   * The answer of a streamed chat turn: the chat model is streamed, its text deltas go to
   * `stream.textDelta`, and each sentence is synthesised as soon as it is complete (concurrently
   * with the model and with the other sentences, through the synthesis cache) and handed to
   * `stream.audio` in order. The reply stops at REPLY_MAX_CHARS (at a sentence end; the model is
   * stopped there). When `stream.signal` aborts, the model is stopped and no further sentence is
   * synthesised or delivered.
   * @param speech undefined when no audio is made (today's TTS budget is used up)
   * @returns the reply text (when interrupted: the sentences whose audio was delivered, or the
   *   text written so far when no audio is made) and how the stream went
   * @throws ProviderError when the chat model or a synthesis fails (not after an interruption)
   */
  private async streamAnswer(
    userKey: string,
    request: ChatRequest,
    speech: { voice: ClonedVoice | undefined; language?: ReplyLanguage } | undefined,
    stream: ReplyStream,
    timings: TurnTimings,
    log: Logger,
  ): Promise<{ text: string; streamed: StreamedAnswer }> {
    const maxChars = this.settings.limits.replyMaxChars;
    const model = new AbortController();
    const interrupt = (): void => model.abort(stream.signal.reason);
    if (stream.signal.aborted) interrupt();
    else stream.signal.addEventListener('abort', interrupt, { once: true });
    const sentences: string[] = [];
    const delivered: string[] = [];
    const streamed: StreamedAnswer = { chunks: 0, durationSec: 0, interrupted: false };
    let chars = 0;
    let full = false;
    let failure: unknown;
    let delivery: Promise<void> = Promise.resolve();
    let previous: Promise<unknown> | undefined;
    const synthesized: Array<{ provider: string; characters: number }> = [];
    const t0 = performance.now();
    const take = (raw: string): void => {
      if (full || model.signal.aborted) return;
      let sentence = raw;
      const next = chars + (sentences.length > 0 ? 1 : 0) + sentence.length;
      if (next > maxChars) {
        full = true;
        model.abort(new Error('reply length reached'));
        if (sentences.length > 0) return;
        sentence = trimToSentences(sentence, maxChars);
      }
      chars += (sentences.length > 0 ? 1 : 0) + sentence.length;
      const index = sentences.push(sentence) - 1;
      if (!speech) return;
      const rendered = this.voice.render(userKey, sentence, speech.voice, 'web', { language: speech.language, signal: stream.signal, ...(previous ? { encodeAfter: previous } : {}) });
      rendered.catch(() => undefined); // awaited in order below; a failure is kept there
      previous = rendered;
      delivery = delivery.then(async () => {
        if (stream.signal.aborted || failure) return;
        let note: Awaited<typeof rendered>;
        try {
          note = await rendered;
        } catch (err) {
          if (stream.signal.aborted) return; // interrupted while it was being made
          failure ??= err;
          model.abort(err);
          return;
        }
        timings.ttsMs += note.synthMs;
        timings.encodeMs += note.encodeMs;
        synthesized.push(...note.synthesized);
        if (stream.signal.aborted) return;
        await stream.audio({ index, text: sentence, voice: note.voice });
        delivered.push(sentence);
        streamed.chunks++;
        streamed.durationSec += note.voice.durationSec;
      });
    };
    const buffer = new SentenceBuffer();
    try {
      const reply = await streamChatReply(this.providers.chat, { ...request, signal: model.signal }, (delta) => {
        if (full || model.signal.aborted) return;
        stream.textDelta(delta);
        for (const sentence of buffer.push(delta)) take(sentence);
      });
      if (reply.usage) await this.record(userKey, { provider: reply.provider ?? this.providers.chat.name, ...reply.usage }, log);
    } catch (err) {
      // Stopped on purpose (interrupted, or the reply is long enough): keep what was made.
      if (!model.signal.aborted || failure) throw failure ?? err;
    } finally {
      timings.chatMs = performance.now() - t0;
    }
    const rest = buffer.flush();
    if (rest) take(rest);
    if (sentences.length === 0 && !stream.signal.aborted) {
      stream.textDelta('I hear you.');
      take('I hear you.');
    }
    try {
      await delivery;
    } finally {
      stream.signal.removeEventListener('abort', interrupt);
      for (const s of synthesized) await this.record(userKey, { provider: s.provider, ttsChars: s.characters }, log);
    }
    if (failure) throw failure;
    streamed.interrupted = stream.signal.aborted;
    const text = streamed.interrupted && speech ? delivered.join(' ') : sentences.join(' ');
    return { text, streamed };
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

  /**
   * Memory extraction and insights every few messages: with a queue, an `insights` job (id
   * {@link insightsJobId}, ordering key `insights:<user key>`, so it never delays the person's next
   * turn); without one, here and now, with failures logged, never shown.
   * @throws Error when the queue cannot store the job (the turn job is retried; its sent parts are not repeated)
   */
  private async afterTurn(user: UserRecord, message: InboundMessage, target: ReplyTarget, log: Logger, options: { insight?: boolean } = {}): Promise<void> {
    const { memoryEvery, insightEvery } = this.settings;
    const data: InsightsJobData = {
      userKey: user.key,
      messageId: message.id,
      address: { channel: message.channel, chatId: message.chatId },
      memories: memoryEvery > 0 && user.messageCount % memoryEvery === 0,
      insight: options.insight !== false && insightEvery > 0 && user.messageCount % insightEvery === 0,
    };
    if (!data.memories && !data.insight) return;
    if (this.queue) {
      await this.queue.enqueue(JOB_KINDS.insights, data, { id: insightsJobId(message.id), key: `insights:${user.key}`, maxAttempts: 3 });
      return;
    }
    try {
      await this.runInsights(data, () => target, log);
    } catch (err) {
      log.warn({ err }, 'memory extraction or insight failed');
    }
  }

  /** Runs one `insights` job; the insight goes through the outbox under the job id, so it is sent once. */
  private async runInsightsJob(job: Job<InsightsJobData>): Promise<void> {
    const { address, messageId } = job.data;
    const log = this.logger.child({ channel: address.channel, chatId: address.chatId, messageId, jobId: job.id, attempt: job.attempt });
    let target: ReplyTarget | undefined;
    await this.runInsights(job.data, () => (target ??= new OutboxTarget(this.store.kv, job.id, this.senderTarget(address.channel, address.chatId), log)), log);
  }

  /**
   * Extracts memories and/or sends an insight for the turn of `data.messageId`, over the history
   * up to that turn. Idempotent per message id: the extracted memories are stored in one atomic
   * write that stores nothing when memories from that message exist (a re-run), and a re-run
   * skips the extraction then.
   * @throws Error from the chat model or the store (the job is retried)
   */
  private async runInsights(data: InsightsJobData, target: () => ReplyTarget, log: Logger): Promise<void> {
    const user = await this.store.users.get(data.userKey);
    if (!user) return;
    const { memoryEvery, insightEvery } = this.settings;
    if (data.memories && memoryEvery > 0) {
      const known = await this.store.memories.list(user.key);
      if (known.some((m) => m.sourceMessageId === data.messageId)) {
        log.info('memories of this message were stored by an earlier run; skipped');
      } else {
        const history = await this.historyUpTo(user.key, data.messageId, memoryEvery * 2);
        const facts = await this.providers.chat.extractMemories(history, known);
        const fresh: MemoryRecord[] = [];
        for (const fact of facts.slice(0, 5)) {
          const text = fact.trim();
          if (!text || isDuplicateMemory(text, [...known, ...fresh])) continue;
          fresh.push({ id: newMemoryId([...known, ...fresh]), text, createdAtMs: this.now(), source: 'extracted', sourceMessageId: data.messageId });
        }
        const stored = await this.store.memories.addFromMessage(user.key, data.messageId, fresh);
        if (facts.length) log.info({ count: facts.length, stored: stored.length }, 'memories extracted');
      }
    }
    if (data.insight && insightEvery > 0) {
      const history = await this.historyUpTo(user.key, data.messageId, insightEvery * 2);
      const insight = (await this.providers.chat.insight(history, user.persona)).trim();
      if (insight) await target().reply({ kind: 'insight', text: `Insight: ${insight}` });
    }
  }

  /**
   * The last `limit` history turns ending with the turns of `messageId` (later turns, stored by
   * the person's next messages meanwhile, are left out); the last `limit` when it is not found.
   */
  private async historyUpTo(userKey: string, messageId: string, limit: number): Promise<ChatTurn[]> {
    const turns = await this.store.history.recent(userKey, limit + 16);
    let end = turns.length;
    while (end > 0 && turns[end - 1]!.messageId !== messageId) end--;
    return (end > 0 ? turns.slice(0, end) : turns).slice(-limit);
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
    const sections = await this.exportSections(user.key);
    const deps = { store: this.store, now: this.now, sections, ...(this.usage ? { usage: this.usage } : {}), ...(identities.length > 0 ? { identities } : {}) };
    let built = await buildPersonalExport(deps, user.key);
    let note = '';
    const link = built.bytes.length > limit ? this.exportLink?.(user.key) : undefined;
    const linkText = link
      ? ` The whole archive, recordings included, can be downloaded until ${new Date(link.expiresAtMs).toISOString().slice(11, 16)} UTC (anyone with the link can, so do not share it): ${link.url}`
      : '';
    if (built.bytes.length > limit && built.audioFiles > 0) {
      const fullBytes = built.bytes.length;
      built = await buildPersonalExport(deps, user.key, { includeAudio: false });
      note = ` Your ${countOf(built.document.samples.length, 'voice sample')} and the consent recording are left out: with them the file is ${(fullBytes / 1e6).toFixed(1)} MB, over the ${(limit / 1e6).toFixed(0)} MB this platform lets me send.`;
    }
    log.info({ sizeBytes: built.bytes.length, audioFiles: built.audioFiles, historyTurns: built.document.history.length, downloadLink: Boolean(link) }, 'personal data export built');
    const d = built.document;
    const contents = `your profile and consent record, ${countOf(exchanges(d.history.length), 'exchange of conversation')}, ${countOf(d.memories.length, 'memory')}, ${countOf(d.usage.length, 'day of usage')}`;
    if (built.bytes.length > limit) {
      if (link) {
        await target.reply({ kind: 'info', ephemeral: true, text: `Everything I store about you (${contents}) is too large for this platform to send as a file.${linkText}` });
        return;
      }
      throw new UserInputError('EXPORT_TOO_LARGE', `Your export is ${(built.bytes.length / 1e6).toFixed(1)} MB, over the ${(limit / 1e6).toFixed(0)} MB this platform lets me send. Send /forget all to make it smaller, or ask the operator for it.`);
    }
    await target.reply({
      kind: 'info',
      ephemeral: true,
      text: `Everything I store about you: ${contents}${built.audioFiles > 0 ? `, ${countOf(built.audioFiles, 'recording')} (WAV files)` : ''}.${note}${linkText}`,
      document: { bytes: built.bytes, fileName: built.fileName, mimeType: 'application/zip' },
    });
  }

  /**
   * Deletes everything of a person (`/delete`, `DELETE /v1/me`): the cloned voice at the provider
   * (a failure there is logged and reported, local deletion goes on), their queued and finished
   * jobs, every record and blob (`Store.deleteUser`), their outbox records and their API keys.
   * Idempotent.
   * @returns what was deleted
   */
  async deletePerson(userKey: string): Promise<DeletionSummary> {
    const summary = await this.store.summarize(userKey);
    const voice = summary.profile?.voice;
    let providerVoice: DeletionSummary['providerVoice'] = 'none';
    if (voice && this.providers.cloner.deleteVoice) {
      try {
        await this.providers.cloner.deleteVoice(voice);
        providerVoice = 'deleted';
      } catch (err) {
        providerVoice = 'failed';
        this.logger.warn({ err, userKey }, 'provider voice deletion failed; local data is deleted anyway');
      }
    }
    // Every identity of the person: their records (left by a message in flight while they were
    // linked, or from before), jobs, usage and API keys go too.
    const keys = await this.identities.keysOf(userKey);
    // Queued and finished jobs keyed by the person: their turns (which carry the messages) and clone jobs.
    let messageIds: string[] = [];
    if (this.queue?.forget) {
      try {
        messageIds = await this.queue.forget(keys.flatMap((k) => [k, `clone:${k}`, `insights:${k}`]));
      } catch (err) {
        this.logger.warn({ err, userKey }, 'could not delete the queued jobs of a deleted user');
      }
    }
    for (const [name, hook] of this.deletionHooks) {
      let count = 0;
      for (const key of keys) count += await hook(key);
      this.logger.info({ userKey, records: count, feature: name }, 'deleted feature records of a user');
    }
    for (const [i, key] of keys.entries()) await this.store.deleteUser(key, i === 0 ? { messageIds } : {});
    for (const key of keys) await this.apiKeys.revokeAll(key);
    await this.identities.forgetPerson(userKey, keys);
    return {
      samples: summary.samples.length,
      voice: Boolean(voice),
      providerVoice,
      historyTurns: summary.historyTurns,
      memories: summary.memories.length,
      blobs: summary.blobKeys.length,
      jobs: messageIds.length,
      identities: keys.length,
    };
  }

  private async deleteEverything(user: UserRecord, target: ReplyTarget): Promise<void> {
    const d = await this.deletePerson(user.key);
    await target.reply({
      kind: 'info',
      ephemeral: true,
      text: `Deleted: ${countOf(d.samples, 'voice sample')}, ${d.voice ? 'your cloned voice, ' : ''}${countOf(exchanges(d.historyTurns), 'exchange of conversation')}, ${countOf(d.memories, 'memory')}, your usage records and any messages still waiting to be answered${d.identities > 1 ? `, on all ${d.identities} linked chats` : ''}. Send /start whenever you want to begin again.`,
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

  /**
   * `/status`: the voice, persona, what is stored and today's use in plain words; with `details`
   * (`/status details`) the technical side: voice label, providers, storage and exact cost.
   */
  private async statusText(user: UserRecord, details = false): Promise<string> {
    const summary = await this.store.summarize(user.key);
    const p = summary.profile;
    const lines: string[] = [];
    if (!p) lines.push('Voice: not set up yet. Send /enroll to clone your voice.');
    else if (p.state === 'ready' && p.voice) lines.push(p.voice.approximate ? `Voice: ready. ${APPROXIMATION_NOTE}` : `Voice: ready, ${describeVoice(p.voice)}.`);
    else if (p.state === 'consent') lines.push('Voice: waiting for your consent (see /enroll).');
    else if (p.state === 'collecting') lines.push(`Voice: collecting voice notes, ${countOf(Math.floor(p.speechSec), 'second')} of the ${p.requiredSpeechSec} seconds of speech I need.`);
    else if (p.state === 'processing') lines.push('Voice: being cloned right now.');
    else lines.push('Voice: cloning did not work. Send /enroll to try again.');
    lines.push(`Persona: ${user.persona}. Text with voice replies: ${user.sendTextWithVoice ? 'on' : 'off'}.`);
    lines.push(
      `Stored, encrypted: ${countOf(summary.samples.length, 'voice sample')}, ${countOf(exchanges(summary.historyTurns), 'exchange of conversation')} and ${countOf(summary.memories.length, 'memory')}.`,
    );
    const today = this.usage ? await this.usage.today(user.key) : undefined;
    if (today && this.usage) {
      const { total } = today;
      const limits = this.usage.budget;
      const of = (limit: number | undefined): string => (limit === undefined ? '' : ` of ${limit.toLocaleString('en-US')}`);
      const parts = [`${total.ttsChars.toLocaleString('en-US')}${of(limits.dailyTtsChars)} characters spoken`, `${Math.round(total.sttSec).toLocaleString('en-US')}${of(limits.dailySttSec)} seconds of voice notes listened to`];
      // Cost is shown when it counts: a daily limit is set, or at least a cent was spent.
      if (limits.dailyCostUsd !== undefined) parts.push(`about $${total.costUsd.toFixed(2)} of your $${limits.dailyCostUsd.toFixed(2)} spent`);
      else if (total.costUsd >= 0.005) parts.push(`about $${total.costUsd.toFixed(2)} spent`);
      lines.push(`Today: ${parts.join(', ')}.`);
    }
    if (!details) {
      lines.push('Send /status details for the technical details.');
      return lines.join('\n');
    }
    lines.push('', 'Technical details:');
    if (p?.voice) lines.push(`- voice: ${p.voice.label} (provider ${p.voice.provider})`);
    if (p) lines.push(`- enrollment: ${p.state}, ${p.speechSec.toFixed(1)} s of ${p.requiredSpeechSec} s of speech${p.failureReason ? `; last failure: ${p.failureReason}` : ''}`);
    lines.push(`- speech-to-text: ${this.providers.stt.name}${this.providers.stt.reliable ? '' : ' (offline, English only, not reliable enough to check the consent phrase word by word)'}`);
    lines.push(`- chat model: ${this.providers.chat.name}; text-to-speech: ${this.providers.tts.name}; voice cloning: ${this.providers.cloner.name}`);
    lines.push(`- storage: ${this.store.backend}, encrypted at rest; ${countOf(summary.historyTurns, 'conversation turn')} (yours and mine)`);
    if (today) lines.push(`- today (UTC): ${today.total.ttsChars} TTS characters, ${today.total.sttSec.toFixed(1)} s STT, $${today.total.costUsd.toFixed(4)} estimated`);
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

/** Exchanges (a message and its answer) in a history of `turns` turns, which are stored in pairs. */
function exchanges(turns: number): number {
  return Math.ceil(turns / 2);
}

function roundTimings(t: TurnTimings): Record<string, number> {
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round(v)]));
}
