/**
 * Records and repository contracts for everything VoiceTwin persists. Implemented over keyv
 * (embedded SQLite by default, Redis with `REDIS_URL`) in `keyv-store.ts`; audio bytes go to the
 * encrypted {@link BlobStore}. User keys are `<channel>:<platform user id>`, e.g. `telegram:42`;
 * records are keyed by the person key, the user key of the person's first identity (identities
 * linked later resolve to it, see `docs/identity.md`).
 */
import type { Channel, ChatAddress } from '../types.js';
import type { ChatTurn, ClonedVoice, MemoryRecord } from '../providers.js';
import type { PersonaName } from '../personas.js';
import type { LanguagePreference, ReplyLanguage } from '../language.js';

/** `<channel>:<platform user id>`. */
export type UserKey = string;

/**
 * A person using the twin, keyed by their person key; `channel` is the channel of the identity
 * they began with, `address` the chat they used last (see `docs/identity.md`).
 */
export interface UserRecord {
  key: UserKey;
  channel: Channel;
  /** Where background replies and broadcasts go: the chat the person last wrote from on a messaging channel. */
  address: ChatAddress;
  displayName?: string;
  persona: PersonaName;
  /** Send the reply's text alongside its voice note. */
  sendTextWithVoice: boolean;
  /** Opted out of broadcasts (`/stop`). */
  optedOut: boolean;
  /** The platform says the user blocked the bot (e.g. Telegram 403). */
  blocked: boolean;
  /** Count of user messages, drives memory extraction and insights. */
  messageCount: number;
  /** `/language` setting; absent = `auto` (follow what the person writes or says). */
  language?: LanguagePreference;
  /** The language of the person's last message, as detected (used by `auto`). */
  lastLanguage?: ReplyLanguage;
  createdAtMs: number;
  updatedAtMs: number;
}

/** Enrollment state machine: consent → collecting → processing → ready | failed. */
export type ProfileState = 'consent' | 'collecting' | 'processing' | 'ready' | 'failed';

/** The user's recorded consent to have their voice cloned. */
export interface ConsentRecord {
  /** The phrase shown, with its random code word. */
  phrase: string;
  codeWord: string;
  /** Transcript of the spoken phrase, as heard by the STT. */
  heardText?: string;
  /** Blob key of the spoken consent voice note (kept as evidence, encrypted). */
  audioBlobKey?: string;
  /** Typed confirmation received (needed when the STT is not reliable). */
  typedConfirmationAtMs?: number;
  /** Consent complete; only then are samples accepted. */
  grantedAtMs?: number;
  method?: 'spoken-match' | 'typed-and-spoken';
}

/** A user's voice profile. */
export interface VoiceProfile {
  userKey: UserKey;
  state: ProfileState;
  consent: ConsentRecord;
  /** Total seconds of detected speech over accepted samples. */
  speechSec: number;
  /** Seconds needed by the configured cloner. */
  requiredSpeechSec: number;
  voice?: ClonedVoice;
  /**
   * Consent records of voice profiles this one replaced when two identities were linked
   * (`docs/identity.md`): kept as the consent evidence of the enrollment samples they cover.
   */
  priorConsents?: ConsentRecord[];
  /** Reason for `failed`, shown in `/status`. */
  failureReason?: string;
  updatedAtMs: number;
}

/** An accepted enrollment sample (its audio is in the blob store). */
export interface SampleRecord {
  id: string;
  userKey: UserKey;
  /** Blob key of the normalised 16 kHz mono WAV. */
  blobKey: string;
  durationSec: number;
  speechSec: number;
  /** Loudness in LUFS/dBFS as measured before normalisation. */
  loudnessDb: number;
  snrDb: number;
  sourceMessageId: string;
  createdAtMs: number;
}

/** A persisted background job (clone, broadcast). */
export interface JobRecord {
  id: string;
  kind: 'clone' | 'broadcast';
  userKey?: UserKey;
  state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  /** Job-specific data (JSON-serialisable). */
  data: Record<string, unknown>;
  error?: string;
  createdAtMs: number;
  updatedAtMs: number;
}

/** Users. `list` enumerates every user (broadcast audiences, data export). */
export interface UserRepository {
  get(key: UserKey): Promise<UserRecord | undefined>;
  put(user: UserRecord): Promise<void>;
  delete(key: UserKey): Promise<void>;
  list(): Promise<UserRecord[]>;
}

export interface ProfileRepository {
  get(key: UserKey): Promise<VoiceProfile | undefined>;
  put(profile: VoiceProfile): Promise<void>;
  delete(key: UserKey): Promise<void>;
}

export interface SampleRepository {
  list(key: UserKey): Promise<SampleRecord[]>;
  add(sample: SampleRecord): Promise<void>;
  deleteAll(key: UserKey): Promise<void>;
  /**
   * Moves every sample of `source` into `target`'s list (their `userKey` becomes `target`), as one
   * operation under both lists' locks: samples already in the target (same id) are not added twice,
   * so a re-run after a crash between the two writes duplicates nothing.
   * @returns how many samples were added to the target
   */
  moveInto(source: UserKey, target: UserKey): Promise<number>;
}

/** Conversation history, capped at the most recent `maxTurns` (oldest dropped). */
export interface HistoryRepository {
  recent(key: UserKey, limit: number): Promise<ChatTurn[]>;
  append(key: UserKey, ...turns: ChatTurn[]): Promise<void>;
  /**
   * Deletes the turns older than `beforeMs` (their `atMs`, ms since the epoch).
   * @returns how many turns were deleted
   */
  pruneBefore(key: UserKey, beforeMs: number): Promise<number>;
  deleteAll(key: UserKey): Promise<void>;
  /**
   * Moves every turn of `source` into `target`'s history, the two merged in time order (`atMs`,
   * stable), under both lists' locks; a turn already in the target (same role, time, message id
   * and text) is not added twice. The merged history keeps the newest `maxTurns`.
   * @returns how many turns were added to the target
   */
  moveInto(source: UserKey, target: UserKey): Promise<number>;
}

export interface MemoryRepository {
  list(key: UserKey): Promise<MemoryRecord[]>;
  add(key: UserKey, memory: MemoryRecord): Promise<void>;
  /**
   * Stores the memories extracted from one inbound message in one atomic write, each with
   * `sourceMessageId` set to `messageId`, unless memories from that message are stored already
   * (a re-run of its job after a crash or a retry): then nothing is stored. A memory whose id is
   * taken meanwhile gets a fresh 4-hex id.
   * @returns the memories stored now (empty on a re-run)
   */
  addFromMessage(key: UserKey, messageId: string, memories: readonly MemoryRecord[]): Promise<MemoryRecord[]>;
  /** @returns true when a memory with that id existed */
  remove(key: UserKey, id: string): Promise<boolean>;
  /**
   * Stores embeddings on existing memories (by id) in one atomic update; ids no longer there are
   * skipped, so a memory forgotten meanwhile is not brought back.
   * @returns how many memories were updated
   */
  setVectors(key: UserKey, vectors: ReadonlyMap<string, { vector: string; model: string }>): Promise<number>;
  deleteAll(key: UserKey): Promise<void>;
  /**
   * Moves every memory of `source` into `target`'s list under both lists' locks. A memory with the
   * same text and creation time as one in the target is already there (a re-run) and is skipped; a
   * source memory whose short id is taken in the target gets a fresh id.
   * @returns how many memories were added to the target
   */
  moveInto(source: UserKey, target: UserKey): Promise<number>;
}

export interface JobRepository {
  get(id: string): Promise<JobRecord | undefined>;
  put(job: JobRecord): Promise<void>;
  /** Jobs not in a final state (`queued` or `running`), for resuming after a restart. */
  listUnfinished(): Promise<JobRecord[]>;
  deleteForUser(key: UserKey): Promise<void>;
}

/**
 * Inbound message ids already handled (redelivered updates are dropped).
 * `claim` is atomic per process: it returns false when the id was claimed before.
 */
export interface DedupeRepository {
  claim(messageId: string, ttlMs?: number): Promise<boolean>;
}

/** Small keyed values (synthesis cache index, counters). */
export interface KeyValueRepository {
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Atomic read-modify-write (counters, totals): `fn` maps the current value to the new one while
   * the key is locked, across processes on Redis. `fn` must be synchronous and pure.
   * @returns the value stored
   */
  update<T>(key: string, fn: (current: T | undefined) => T, ttlMs?: number): Promise<T>;
  /**
   * Atomic get-and-delete under the key's lock (across processes on Redis): of concurrent callers
   * exactly one gets the value (one-time codes).
   * @returns the value, or undefined when there was none (or another caller took it)
   */
  take<T>(key: string): Promise<T | undefined>;
  /**
   * Atomic read-modify-write of several keys: every key is locked (in sorted order, so two calls
   * never wait on each other forever; across processes on Redis), `fn` maps the current values to
   * the new ones (`undefined` deletes the key), and the writes happen in the order of `keys`.
   * Not a transaction: a crash can stop between two writes, so callers make `fn` idempotent.
   * `fn` must be synchronous and pure.
   * @param ttlMs expiry of the values written, ms; omitted means none
   */
  updateMany<T>(keys: readonly string[], fn: (current: (T | undefined)[]) => (T | undefined)[], ttlMs?: number): Promise<(T | undefined)[]>;
}

/**
 * Audio bytes on disk, encrypted at rest with AES-256-GCM (random 12-byte IV per blob, 16-byte tag).
 * Keys are opaque; a blob key begins with the owner's user key so a user's blobs can be deleted.
 */
export interface BlobStore {
  /** @returns the blob key */
  put(ownerKey: UserKey, bytes: Buffer, kind: 'sample' | 'consent' | 'reference' | 'tts' | 'inbox'): Promise<string>;
  /** @throws Error when the blob is missing or fails authentication (tampered, wrong key) */
  get(blobKey: string): Promise<Buffer>;
  delete(blobKey: string): Promise<void>;
  /** Blob keys owned by a user. */
  list(ownerKey: UserKey): Promise<string[]>;
  deleteAll(ownerKey: UserKey): Promise<number>;
}

/** A summary of what is stored for one user (`/status`, data export). */
export interface UserDataSummary {
  user?: UserRecord;
  profile?: VoiceProfile;
  samples: SampleRecord[];
  historyTurns: number;
  memories: MemoryRecord[];
  blobKeys: string[];
}

/** All repositories over one backend. */
export interface Store {
  readonly backend: 'sqlite' | 'redis' | 'memory';
  users: UserRepository;
  profiles: ProfileRepository;
  samples: SampleRepository;
  history: HistoryRepository;
  memories: MemoryRepository;
  jobs: JobRepository;
  dedupe: DedupeRepository;
  kv: KeyValueRepository;
  blobs: BlobStore;
  /** Everything stored for a user. */
  summarize(key: UserKey): Promise<UserDataSummary>;
  /**
   * Deletes every record and blob of a user, their usage records and the outbox records of
   * `options.messageIds` (their inbound messages); SQLite zeroes deleted rows and truncates its WAL.
   */
  deleteUser(key: UserKey, options?: { messageIds?: readonly string[] }): Promise<void>;
  close(): Promise<void>;
}
