/**
 * One twin across channels: a person owns the voice, persona, memories and history; channel
 * identities (a Telegram user `telegram:42`, a Discord user, a WhatsApp number, a web login) are
 * linked to a person. The model and its guarantees are described in `docs/identity.md`.
 *
 * - A person's key is the user key of the identity the person began with, so every record written
 *   before linking existed is already a person's record: an identity nobody linked is a person of
 *   one identity, and nothing is migrated.
 * - Key-value records (all sealed with the data key, like every `kv:` value):
 *
 * | key                          | value                                                       |
 * |------------------------------|-------------------------------------------------------------|
 * | `identity:<identityKey>`     | `{ personKey }`: the alias of a linked identity             |
 * | `person:<personKey>`         | {@link PersonIdentities}: the identities of a linked person |
 * | `persons:linked`             | keys of the persons with more than one identity (index)     |
 * | `link:code:<sha256(code)>`   | a `/link` code: its person, expiry and redeemer, 10 min TTL |
 * | `link:pending`               | merges started and not finished (resumed at start-up)       |
 * | `link:merged:<personKey>`    | `{ into }`: this person was merged into another one         |
 *
 * - Linking merges the joining person's records into the person who made the code
 *   ({@link Identities.merge}); every step is an atomic store operation and the whole merge is
 *   idempotent, so a merge interrupted by a crash is simply run again.
 */
import { createHash, randomInt } from 'node:crypto';
import type { ApiKeys } from './apikeys.js';
import type { Logger } from './log.js';
import { silentLogger } from './log.js';
import type { ClonedVoice } from './providers.js';
import type { ConsentRecord, KeyValueRepository, ProfileState, Store, UserKey, UserRecord, VoiceProfile } from './store/types.js';
import type { Channel, ChatAddress } from './types.js';
import type { UsageMeter } from './usage.js';

/** How long a `/link` code can be redeemed, ms (10 minutes). */
export const LINK_CODE_TTL_MS = 10 * 60 * 1000;

/** Characters of a link code: no 0/O, 1/I/L look-alikes. 8 of them are 40 bits. */
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const CODE_LENGTH = 8;

const aliasKey = (identityKey: UserKey): string => `identity:${identityKey}`;
const personDocKey = (personKey: UserKey): string => `person:${personKey}`;
const mergedKey = (personKey: UserKey): string => `link:merged:${personKey}`;
const codeKey = (code: string): string => `link:code:${createHash('sha256').update(code).digest('hex')}`;
const LINKED_INDEX = 'persons:linked';
const PENDING = 'link:pending';

/** One channel identity of a person. */
export interface LinkedIdentity {
  /** `<channel>:<platform user id>`, e.g. `telegram:42`. */
  key: UserKey;
  channel: Channel;
  /** The identity's own chat (where a broadcast with `--each-channel` reaches it). */
  address: ChatAddress;
  /** When it joined the person, ms since the epoch (the founding identity: when linking began). */
  linkedAtMs: number;
}

/** `person:<personKey>`: the identities of a person with more than one. */
export interface PersonIdentities {
  personKey: UserKey;
  /** Every identity, the founding one (key = person key) included, in the order they joined. */
  identities: LinkedIdentity[];
}

/** What happened to the voice profiles when two persons were merged. */
export interface VoiceMergeOutcome {
  /** Whose profile the person keeps: the code maker's (`target`), the joiner's (`source`), or none existed. */
  kept: 'target' | 'source' | 'none';
  /** The state of the profile kept. */
  keptState?: ProfileState;
  /** The state of the profile replaced, when there were two. */
  replacedState?: ProfileState;
  /** The replaced profile's cloned voice was deleted at the voice provider. */
  providerVoiceDeleted: boolean;
  /** Seconds of speech of the replaced profile's samples counted toward the kept one (both collecting). */
  speechSecAdded: number;
}

/** The records a merge moved into the person. */
export interface MergeReport {
  source: UserKey;
  target: UserKey;
  historyTurns: number;
  memories: number;
  samples: number;
  usageDays: number;
  apiKeys: number;
  voice: VoiceMergeOutcome;
}

/** Why a link was refused; {@link LinkRefusedError.code}. */
export type LinkRefusal = 'BAD_CODE' | 'CODE_USED' | 'SAME_PERSON' | 'VOICE_BUSY';

/** A `/link` that cannot be done, with the reason. */
export class LinkRefusedError extends Error {
  constructor(
    readonly code: LinkRefusal,
    message: string,
  ) {
    super(message);
    this.name = 'LinkRefusedError';
  }
}

/** Dependencies of {@link Identities}. */
export interface IdentityDeps {
  store: Store;
  apiKeys: ApiKeys;
  /** Usage records move too when usage is metered. */
  usage?: UsageMeter;
  /** Deletes a cloned voice at its provider (the replaced voice of a merge); failures are logged. */
  deleteProviderVoice?: (voice: ClonedVoice) => Promise<void>;
  now?: () => number;
  logger?: Logger;
}

interface CodeRecord {
  personKey: UserKey;
  expiresAtMs: number;
  /** The person who redeemed it (a re-run of the same `/link` may redeem it again). */
  usedBy?: UserKey;
}

interface PendingMerge {
  source: UserKey;
  target: UserKey;
  atMs: number;
}

/** Voice profile states by how much a person would lose if it were replaced. */
const VOICE_RANK: Record<ProfileState, number> = { consent: 0, failed: 1, collecting: 2, processing: 3, ready: 4 };

/** Channels whose chats can receive background messages and broadcasts. */
const MESSAGING_CHANNELS: ReadonlySet<Channel> = new Set(['telegram', 'discord', 'whatsapp']);

/** True for a channel whose chats take background messages (Telegram, Discord, WhatsApp). */
export function isMessagingChannel(channel: Channel): boolean {
  return MESSAGING_CHANNELS.has(channel);
}

/**
 * Every linked person's identities, read from the `persons:linked` index (one read, plus one per
 * linked person). Persons of one identity are not in it. For broadcast audiences.
 */
export async function readLinkedIdentities(kv: KeyValueRepository): Promise<Map<UserKey, LinkedIdentity[]>> {
  const keys = (await kv.get<UserKey[]>(LINKED_INDEX)) ?? [];
  const docs = await Promise.all(keys.map((k) => kv.get<PersonIdentities>(personDocKey(k))));
  const out = new Map<UserKey, LinkedIdentity[]>();
  for (const doc of docs) if (doc && doc.identities.length > 0) out.set(doc.personKey, doc.identities);
  return out;
}

/** The identity of `user`'s own channel (the founding identity of a person), from its user record. */
function foundingIdentity(user: UserRecord, atMs: number): LinkedIdentity {
  const own = user.address.channel === user.channel ? user.address : { channel: user.channel, chatId: user.key.slice(user.channel.length + 1) };
  return { key: user.key, channel: user.channel, address: own, linkedAtMs: atMs };
}

function sameConsent(a: ConsentRecord, b: ConsentRecord): boolean {
  return a.phrase === b.phrase && a.codeWord === b.codeWord && (a.grantedAtMs ?? 0) === (b.grantedAtMs ?? 0) && (a.typedConfirmationAtMs ?? 0) === (b.typedConfirmationAtMs ?? 0);
}

/** Consent worth keeping as evidence: granted, or with a recording. */
function isEvidence(consent: ConsentRecord): boolean {
  return consent.grantedAtMs !== undefined || consent.audioBlobKey !== undefined;
}

/**
 * Resolves channel identities to persons, issues and redeems `/link` codes, merges persons and
 * detaches identities. Every write goes through the store's atomic operations (per-key locks, also
 * across processes on Redis), so it holds on SQLite, Redis and memory alike.
 */
export class Identities {
  private readonly store: Store;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly deps: IdentityDeps) {
    this.store = deps.store;
    this.now = deps.now ?? Date.now;
    this.log = deps.logger ?? silentLogger;
  }

  /** The person an identity (or a person key) acts for: its alias, else itself. One read. */
  async resolve(identityKey: UserKey): Promise<UserKey> {
    return (await this.store.kv.get<{ personKey: UserKey }>(aliasKey(identityKey)))?.personKey ?? identityKey;
  }

  /** The identities of a linked person, in the order they joined; empty for a person of one identity. */
  async identitiesOf(personKey: UserKey): Promise<LinkedIdentity[]> {
    return (await this.store.kv.get<PersonIdentities>(personDocKey(personKey)))?.identities ?? [];
  }

  /** Every user key whose records belong to the person: the person key first, then its other identities. */
  async keysOf(personKey: UserKey): Promise<UserKey[]> {
    return [...new Set([personKey, ...(await this.identitiesOf(personKey)).map((i) => i.key)])];
  }

  /** The person `personKey` was merged into, when it was (a message resolved before the merge finds its data moved on). */
  async mergedInto(personKey: UserKey): Promise<UserKey | undefined> {
    return (await this.store.kv.get<{ into: UserKey }>(mergedKey(personKey)))?.into;
  }

  /**
   * A one-time code for joining another identity to `personKey`, valid {@link LINK_CODE_TTL_MS}:
   * 8 characters, shown as `ABCD-EFGH`; only its SHA-256 is stored.
   */
  async createCode(personKey: UserKey): Promise<string> {
    let code = '';
    for (let i = 0; i < CODE_LENGTH; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
    const record: CodeRecord = { personKey, expiresAtMs: this.now() + LINK_CODE_TTL_MS };
    await this.store.kv.set(codeKey(code), record, LINK_CODE_TTL_MS);
    return `${code.slice(0, 4)}-${code.slice(4)}`;
  }

  /**
   * Joins the person `joiningPerson` (the identity that sent the code, with every identity already
   * linked to it) to the person who made `code`, and merges its records there ({@link merge}).
   * The code is claimed atomically for `joiningPerson` before the merge and deleted after it: a
   * re-run of the same `/link` (after a crash) may use it again, nobody else can.
   * @param code as typed: case, spaces and dashes are ignored
   * @throws LinkRefusedError BAD_CODE (unknown or expired), CODE_USED (redeemed by someone else),
   *   SAME_PERSON (already one person), VOICE_BUSY (a voice is being cloned right now)
   */
  async link(code: string, joiningPerson: UserKey): Promise<MergeReport> {
    const clean = code.toUpperCase().replace(/[^A-Z0-9]/g, '');
    if (clean.length !== CODE_LENGTH) throw new LinkRefusedError('BAD_CODE', 'That link code is unknown or has expired.');
    const slot = codeKey(clean);
    const now = this.now();
    const current = await this.store.kv.get<CodeRecord>(slot);
    const ttlMs = (current?.expiresAtMs ?? 0) - now;
    if (!current || ttlMs <= 0) throw new LinkRefusedError('BAD_CODE', 'That link code is unknown or has expired.');
    const [claimed] = await this.store.kv.updateMany<CodeRecord>(
      [slot],
      ([c]) => [c && (!c.usedBy || c.usedBy === joiningPerson) ? { ...c, usedBy: joiningPerson } : c],
      ttlMs,
    );
    if (!claimed || claimed.expiresAtMs <= now) throw new LinkRefusedError('BAD_CODE', 'That link code is unknown or has expired.');
    if (claimed.usedBy !== joiningPerson) throw new LinkRefusedError('CODE_USED', 'That link code was already used.');
    const target = await this.resolve(claimed.personKey);
    if (target === joiningPerson) throw new LinkRefusedError('SAME_PERSON', 'This chat already belongs to that twin.');
    const [sourceProfile, targetProfile] = await Promise.all([this.store.profiles.get(joiningPerson), this.store.profiles.get(target)]);
    if (sourceProfile?.state === 'processing' || targetProfile?.state === 'processing') {
      throw new LinkRefusedError('VOICE_BUSY', 'A voice is being cloned right now. Send the code again when the clone is ready.');
    }
    const report = await this.merge(joiningPerson, target);
    await this.store.kv.delete(slot);
    return report;
  }

  /**
   * Merges person `source` into person `target`: idempotent, in this order —
   * 1. the merge is recorded in `link:pending` (resumed by {@link resumePending} after a crash);
   * 2. `source` is recorded as merged into `target`, each of its identities is aliased to
   *    `target`, and `target`'s identity list gains them (new messages now reach `target`);
   * 3. history (time order), enrollment samples (their audio re-stored under `target`), memories,
   *    usage and API keys move, each in one atomic store operation that skips what is already there;
   * 4. the voice profiles merge ({@link mergeProfiles});
   * 5. the user records merge (`target`'s settings stay; the last-used address is the newer one)
   *    and `source`'s user record goes (so a broadcast finds the person once);
   * 6. the pending entry goes.
   * A crash anywhere leaves a state from which running the merge again ends the same as one
   * uninterrupted run: nothing lost, nothing twice.
   * @throws TypeError when source and target are the same
   */
  async merge(source: UserKey, target: UserKey): Promise<MergeReport> {
    if (source === target) throw new TypeError('Cannot merge a person into itself');
    const { store } = this;
    const kv = store.kv;
    const atMs = this.now();
    await kv.update<PendingMerge[]>(PENDING, (list = []) => (list.some((p) => p.source === source && p.target === target) ? list : [...list, { source, target, atMs }]));

    // 2. Aliases first: from here on every new message of the source's identities reaches the target.
    const [sourceUser, targetUser] = await Promise.all([store.users.get(source), store.users.get(target)]);
    const sourceIdentities = await this.identitiesOf(source);
    if (sourceIdentities.length === 0 && sourceUser) sourceIdentities.push(foundingIdentity(sourceUser, atMs));
    await kv.set(mergedKey(source), { into: target, atMs });
    for (const identity of sourceIdentities) await kv.set(aliasKey(identity.key), { personKey: target });
    await kv.update<PersonIdentities>(personDocKey(target), (doc) => {
      const identities = doc?.identities ? [...doc.identities] : targetUser ? [foundingIdentity(targetUser, atMs)] : [];
      for (const identity of sourceIdentities) if (!identities.some((i) => i.key === identity.key)) identities.push({ ...identity, linkedAtMs: atMs });
      return { personKey: target, identities };
    });
    await kv.updateMany<UserKey[]>([LINKED_INDEX], ([list = []]) => [[...list.filter((k) => k !== source && k !== target), target]]);
    await kv.delete(personDocKey(source));

    // 3. Records.
    const historyTurns = await store.history.moveInto(source, target);
    await this.rehomeSamples(source, target);
    const samples = await store.samples.moveInto(source, target);
    const memories = await store.memories.moveInto(source, target);
    const usageDays = this.deps.usage ? await this.deps.usage.moveAll(source, target) : 0;
    const apiKeys = await this.deps.apiKeys.moveAll(source, target);

    // 4. Voice.
    const voice = await this.mergeProfiles(source, target);
    await this.dropLeftoverBlobs(source);

    // 5. User records (read again: turns may have updated them meanwhile).
    const [latestSource, latestTarget] = await Promise.all([store.users.get(source), store.users.get(target)]);
    if (latestSource) {
      await store.users.put(mergeUsers(latestTarget, latestSource, target));
      await store.users.delete(source);
    }

    // 6. Done.
    await kv.update<PendingMerge[]>(PENDING, (list = []) => list.filter((p) => !(p.source === source && p.target === target)));
    const report: MergeReport = { source, target, historyTurns, memories, samples, usageDays, apiKeys, voice };
    this.log.info({ historyTurns, memories, samples, usageDays, apiKeys, voiceKept: voice.kept }, 'identities linked: person merged');
    return report;
  }

  /**
   * Finishes the merges a crash interrupted (`link:pending`), oldest first. Call at start-up,
   * before any turn runs.
   * @returns how many were finished
   */
  async resumePending(): Promise<number> {
    const pending = (await this.store.kv.get<PendingMerge[]>(PENDING)) ?? [];
    for (const p of pending) {
      this.log.info({ startedAtMs: p.atMs }, 'resuming an interrupted merge of two persons');
      await this.merge(p.source, p.target);
    }
    return pending.length;
  }

  /**
   * Detaches `identityKey` from its person. The identity starts fresh (a new, empty person with
   * its own key); everything stored stays with the person it leaves. The founding identity (whose
   * key is the person key) cannot leave: its key holds the person's records.
   * @returns `detached` with the person left, `founding` for the founding identity of a linked
   *   person, `not-linked` when the identity is a person of its own
   */
  async unlink(identityKey: UserKey): Promise<{ result: 'detached'; personKey: UserKey } | { result: 'founding' | 'not-linked' }> {
    const { store } = this;
    const personKey = await this.resolve(identityKey);
    if (personKey === identityKey) return { result: (await this.identitiesOf(personKey)).length > 1 ? 'founding' : 'not-linked' };
    const leaving = (await this.identitiesOf(personKey)).find((i) => i.key === identityKey);
    const doc = await store.kv.update<PersonIdentities>(personDocKey(personKey), (current) => ({
      personKey,
      identities: (current?.identities ?? []).filter((i) => i.key !== identityKey),
    }));
    await store.kv.delete(aliasKey(identityKey));
    // A fresh person with this key must not be taken for the person once merged under it.
    await store.kv.delete(mergedKey(identityKey));
    if (doc.identities.length <= 1) {
      await store.kv.delete(personDocKey(personKey));
      await store.kv.updateMany<UserKey[]>([LINKED_INDEX], ([list = []]) => {
        const next = list.filter((k) => k !== personKey);
        return [next.length > 0 ? next : undefined];
      });
    }
    // Background messages no longer go to the detached chat.
    const user = await store.users.get(personKey);
    const left = doc.identities.find((i) => i.key === personKey) ?? doc.identities.at(-1);
    const wasThere = user && leaving && user.address.channel === leaving.address.channel && user.address.chatId === leaving.address.chatId;
    if (user && wasThere && left) await store.users.put({ ...user, address: left.address, updatedAtMs: this.now() });
    this.log.info({ identitiesLeft: doc.identities.length }, 'identity unlinked from its person');
    return { result: 'detached', personKey };
  }

  /**
   * Records the chat an identity of a linked person now writes from (its entry in the person's
   * identity list). Does nothing for a person of one identity.
   */
  async noteAddress(personKey: UserKey, identityKey: UserKey, address: ChatAddress): Promise<void> {
    if (!(await this.store.kv.get<PersonIdentities>(personDocKey(personKey)))) return;
    await this.store.kv.update<PersonIdentities>(personDocKey(personKey), (doc) => ({
      personKey,
      identities: (doc?.identities ?? []).map((i) => (i.key === identityKey ? { ...i, address } : i)),
    }));
  }

  /**
   * Deletes the identity records of a deleted person: the aliases and merge marks of `keys`, the
   * identity list, and the person's entry in the linked index. Call after their data is deleted.
   */
  async forgetPerson(personKey: UserKey, keys: readonly UserKey[]): Promise<void> {
    const kv = this.store.kv;
    for (const key of keys) {
      await kv.delete(aliasKey(key));
      await kv.delete(mergedKey(key));
    }
    await kv.delete(personDocKey(personKey));
    await kv.updateMany<UserKey[]>([LINKED_INDEX], ([list]) => {
      if (!list) return [undefined];
      const next = list.filter((k) => k !== personKey);
      return [next.length > 0 ? next : undefined];
    });
  }

  /**
   * Re-stores the audio of `source`'s samples under `target` (blob keys begin with their owner's
   * key, and deletion and unlinking go by owner): the source sample record is pointed at the new
   * blob before the old blob is deleted, so a crash leaves at worst an unreferenced copy under the
   * target, deleted with the person.
   */
  private async rehomeSamples(source: UserKey, target: UserKey): Promise<void> {
    const { blobs, samples } = this.store;
    for (const sample of await samples.list(source)) {
      if (sample.blobKey.startsWith(`${target}/`)) continue;
      const bytes = await blobs.get(sample.blobKey);
      const blobKey = await blobs.put(target, bytes, 'sample');
      await samples.add({ ...sample, blobKey });
      await blobs.delete(sample.blobKey);
    }
  }

  /** Re-stores a profile's consent recordings under `target` (as {@link rehomeSamples} does). */
  private async rehomeConsents(profile: VoiceProfile, target: UserKey): Promise<VoiceProfile> {
    const { blobs, profiles } = this.store;
    const old: string[] = [];
    const move = async (consent: ConsentRecord): Promise<ConsentRecord> => {
      const key = consent.audioBlobKey;
      if (!key || key.startsWith(`${target}/`)) return consent;
      const bytes = await blobs.get(key).catch(() => undefined);
      if (!bytes) return consent;
      old.push(key);
      return { ...consent, audioBlobKey: await blobs.put(target, bytes, 'consent') };
    };
    const consent = await move(profile.consent);
    const priorConsents = profile.priorConsents ? await Promise.all(profile.priorConsents.map(move)) : undefined;
    if (old.length === 0) return profile;
    const updated: VoiceProfile = { ...profile, consent, ...(priorConsents ? { priorConsents } : {}) };
    await profiles.put(updated);
    for (const key of old) await blobs.delete(key).catch(() => undefined);
    return updated;
  }

  /**
   * Deletes what is left under `source`'s blob owner once its records have moved: cached
   * synthesised speech (a cache: a miss synthesises again) and sample or consent audio no record
   * points to any more (copied to the target by an earlier run that stopped before deleting it).
   * Inbound audio of queued turns stays until those turns are done.
   */
  private async dropLeftoverBlobs(source: UserKey): Promise<void> {
    const { blobs, samples, profiles } = this.store;
    const profile = await profiles.get(source);
    const referenced = new Set<string>([
      ...(await samples.list(source)).map((s) => s.blobKey),
      ...[profile?.consent, ...(profile?.priorConsents ?? [])].flatMap((c) => (c?.audioBlobKey ? [c.audioBlobKey] : [])),
    ]);
    for (const key of await blobs.list(source)) {
      const kind = key.slice(source.length + 1).split('/')[0];
      if ((kind === 'tts' || kind === 'sample' || kind === 'consent') && !referenced.has(key)) await blobs.delete(key);
    }
  }

  /**
   * Which voice the person keeps: a `ready` voice wins over one still collecting samples (then
   * `collecting` over `failed` over `consent`); of two in the same state, the code maker's
   * (`target`) wins. The replaced profile's consent record is kept in `priorConsents` (its samples
   * are in the person's sample list), its cloned voice is deleted at the provider, and when both
   * were collecting its speech counts toward the kept one.
   */
  private async mergeProfiles(source: UserKey, target: UserKey): Promise<VoiceMergeOutcome> {
    const { profiles } = this.store;
    const found = await profiles.get(source);
    const targetProfile = await profiles.get(target);
    if (!found) {
      return { kept: targetProfile ? 'target' : 'none', ...(targetProfile ? { keptState: targetProfile.state } : {}), providerVoiceDeleted: false, speechSecAdded: 0 };
    }
    const sourceProfile = await this.rehomeConsents(found, target);
    const sourceWins = !targetProfile || VOICE_RANK[sourceProfile.state] > VOICE_RANK[targetProfile.state];
    const keep = sourceWins ? sourceProfile : targetProfile;
    const lose = sourceWins ? targetProfile : sourceProfile;
    const priors = [...(keep.priorConsents ?? [])];
    const alreadyMerged = lose ? sameConsent(lose.consent, keep.consent) || priors.some((c) => sameConsent(c, lose.consent)) : true;
    let speechSecAdded = 0;
    if (lose && !alreadyMerged) {
      for (const c of [lose.consent, ...(lose.priorConsents ?? [])]) if (isEvidence(c) && !sameConsent(c, keep.consent) && !priors.some((p) => sameConsent(p, c))) priors.push(c);
      if (keep.state === 'collecting' && (lose.state === 'collecting' || lose.state === 'failed') && lose.consent.grantedAtMs !== undefined) speechSecAdded = lose.speechSec;
    }
    const merged: VoiceProfile = {
      ...keep,
      userKey: target,
      speechSec: keep.speechSec + speechSecAdded,
      ...(priors.length > 0 ? { priorConsents: priors } : {}),
      updatedAtMs: this.now(),
    };
    await profiles.put(merged);
    let providerVoiceDeleted = false;
    if (lose?.voice && lose.voice.voiceId !== keep.voice?.voiceId && !alreadyMerged && this.deps.deleteProviderVoice) {
      try {
        await this.deps.deleteProviderVoice(lose.voice);
        providerVoiceDeleted = true;
      } catch (err) {
        this.log.warn({ err }, 'the replaced cloned voice could not be deleted at the provider');
      }
    }
    await profiles.delete(source);
    return {
      kept: sourceWins ? 'source' : 'target',
      keptState: keep.state,
      ...(lose ? { replacedState: lose.state } : {}),
      providerVoiceDeleted,
      speechSecAdded,
    };
  }
}

/**
 * The person's user record after `source` joins `target`: `target`'s persona and settings stay;
 * the last-used address, and whether it is blocked, come from the record used more recently; the
 * message count is the larger (it paces memory extraction and insights; a maximum is the same on a
 * re-run); opted out if either was.
 */
function mergeUsers(target: UserRecord | undefined, source: UserRecord, targetKey: UserKey): UserRecord {
  if (!target) return { ...source, key: targetKey };
  const sourceNewer = source.updatedAtMs > target.updatedAtMs && isMessagingChannel(source.address.channel);
  return {
    ...target,
    address: sourceNewer ? source.address : target.address,
    blocked: sourceNewer ? source.blocked : target.blocked,
    optedOut: target.optedOut || source.optedOut,
    messageCount: Math.max(target.messageCount, source.messageCount),
    createdAtMs: Math.min(target.createdAtMs, source.createdAtMs),
    updatedAtMs: Math.max(target.updatedAtMs, source.updatedAtMs),
    ...(target.displayName || source.displayName ? { displayName: target.displayName ?? source.displayName } : {}),
  };
}
