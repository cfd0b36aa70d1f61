/**
 * Per-person API keys for the HTTP API (`Authorization: Bearer vt_…`) and one-time sign-in codes.
 *
 * A key is `vt_<id>_<secret>` (id: 8 hex characters, shown in lists; secret: 32 random bytes,
 * base64url). Only the SHA-256 of the whole key is stored (`apikey:<hash>` in the key-value
 * repository), with the owner's user key, so a stolen database does not give working keys; the key
 * itself is shown once, when it is created. Each owner's list of key ids lives in
 * `apikeys:<user key>`.
 *
 * A sign-in code (8 characters of an unambiguous alphabet) is stored hashed the same way with a
 * TTL and can be redeemed once, for an API key of its owner (the web app's sign-in).
 *
 * Concurrency: the per-person index changes only through the key-value repository's atomic
 * `update` (the limit check and the append are one step, so concurrent creations never exceed
 * {@link MAX_KEYS_PER_PERSON} or lose an entry), and a code is redeemed with its atomic `take`
 * (of concurrent redemptions of one code exactly one gets a key). Both hold across processes on
 * Redis (the store's lease lock).
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import type { KeyValueRepository, UserKey } from './store/types.js';

/** What is stored about one key (never the key itself). */
export interface ApiKeyRecord {
  /** Public id, the middle part of the key (`vt_<id>_…`). */
  id: string;
  /** The person it acts for, e.g. `telegram:42` or `web:owner`. */
  userKey: UserKey;
  /** Free text given at creation ("laptop", "home assistant"). */
  label: string;
  createdAtMs: number;
}

/** How long a sign-in code stays valid, ms (15 minutes). */
export const SIGN_IN_CODE_TTL_MS = 15 * 60 * 1000;

/** Most keys one person may hold at once. */
export const MAX_KEYS_PER_PERSON = 20;

/** One entry of a person's key index (`apikeys:<user key>`). */
interface IndexEntry {
  id: string;
  hash: string;
}

const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** Creates, lists, revokes and verifies API keys and sign-in codes. */
export class ApiKeys {
  constructor(
    private readonly kv: KeyValueRepository,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Creates a key for `userKey`.
   * @returns the key (shown once; only its hash is kept) and its record
   * @throws Error when the person already holds {@link MAX_KEYS_PER_PERSON} keys
   */
  async create(userKey: UserKey, label = ''): Promise<{ key: string; record: ApiKeyRecord }> {
    const id = randomBytes(4).toString('hex');
    const key = `vt_${id}_${randomBytes(32).toString('base64url')}`;
    const record: ApiKeyRecord = { id, userKey, label: label.trim().slice(0, 60), createdAtMs: this.now() };
    const hash = sha256(key);
    // The record first: an index entry always points at a stored record.
    await this.kv.set(`apikey:${hash}`, record);
    try {
      await this.kv.update<IndexEntry[]>(`apikeys:${userKey}`, (index = []) => {
        if (index.length >= MAX_KEYS_PER_PERSON) throw new Error(`at most ${MAX_KEYS_PER_PERSON} API keys per person; revoke one first`);
        return [...index, { id, hash }];
      });
    } catch (err) {
      await this.kv.delete(`apikey:${hash}`);
      throw err;
    }
    return { key, record };
  }

  /** The keys of a person, oldest first. */
  async list(userKey: UserKey): Promise<ApiKeyRecord[]> {
    const records = await Promise.all((await this.index(userKey)).map((e) => this.kv.get<ApiKeyRecord>(`apikey:${e.hash}`)));
    return records.filter((r): r is ApiKeyRecord => r !== undefined);
  }

  /** Revokes one key of a person by id; true when it existed (of concurrent revocations, one). */
  async revoke(userKey: UserKey, id: string): Promise<boolean> {
    let removed: IndexEntry | undefined;
    await this.kv.update<IndexEntry[]>(`apikeys:${userKey}`, (index = []) => {
      removed = index.find((e) => e.id === id);
      return removed ? index.filter((e) => e !== removed) : index;
    });
    if (!removed) return false;
    await this.kv.delete(`apikey:${removed.hash}`);
    return true;
  }

  /** Revokes every key of a person (on `/delete`); returns how many there were. */
  async revokeAll(userKey: UserKey): Promise<number> {
    const index = (await this.kv.take<IndexEntry[]>(`apikeys:${userKey}`)) ?? [];
    await Promise.all(index.map((e) => this.kv.delete(`apikey:${e.hash}`)));
    return index.length;
  }

  /**
   * Gives every key of `source` to `target` (two identities linked into one person): each key's
   * record is re-pointed first, then the target's list gains the ids and the source's list goes, in
   * one atomic step. Idempotent (a re-run after a crash neither loses nor repeats a key); the keys
   * keep working throughout, and a person may then hold more than {@link MAX_KEYS_PER_PERSON}.
   * @returns how many keys were moved
   */
  async moveAll(source: UserKey, target: UserKey): Promise<number> {
    if (source === target) return 0;
    const entries = await this.index(source);
    for (const entry of entries) {
      await this.kv.updateMany<ApiKeyRecord>([`apikey:${entry.hash}`], ([r]) => [r ? { ...r, userKey: target } : undefined]);
    }
    await this.kv.updateMany<{ id: string; hash: string }[]>([`apikeys:${target}`, `apikeys:${source}`], ([into = [], from = []]) => {
      const known = new Set(into.map((e) => e.hash));
      const next = [...into, ...from.filter((e) => !known.has(e.hash))];
      return [next.length > 0 ? next : undefined, undefined];
    });
    return entries.length;
  }

  /** The record of a presented key, or undefined when it is unknown or revoked. */
  async verify(key: string): Promise<ApiKeyRecord | undefined> {
    if (!/^vt_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$/.test(key)) return undefined;
    // The lookup is by hash, so no comparison of secrets happens in JavaScript at all.
    return this.kv.get<ApiKeyRecord>(`apikey:${sha256(key)}`);
  }

  /** A one-time sign-in code for `userKey`, valid {@link SIGN_IN_CODE_TTL_MS}. */
  async createSignInCode(userKey: UserKey): Promise<string> {
    let code = '';
    for (let i = 0; i < 8; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
    await this.kv.set(`signin:${sha256(code)}`, { userKey }, SIGN_IN_CODE_TTL_MS);
    return code;
  }

  /**
   * Redeems a sign-in code (case and dashes ignored) for a new API key labelled `label`.
   * @returns undefined when the code is unknown, expired or already used
   */
  async redeemSignInCode(code: string, label = 'web sign-in'): Promise<{ key: string; record: ApiKeyRecord } | undefined> {
    const clean = code.toUpperCase().replace(/[^A-Z0-9]/g, '');
    if (clean.length !== 8) return undefined;
    // One atomic get-and-delete: of concurrent redemptions of a code, exactly one gets a key.
    const entry = await this.kv.take<{ userKey: UserKey }>(`signin:${sha256(clean)}`);
    if (!entry) return undefined;
    return this.create(entry.userKey, label);
  }

  private async index(userKey: UserKey): Promise<IndexEntry[]> {
    return (await this.kv.get<IndexEntry[]>(`apikeys:${userKey}`)) ?? [];
  }
}

/**
 * The web app's sign-in link for a code: `<base>/?code=<code>` (the app exchanges it for a key and
 * removes it from the address bar). `base` is a URL such as `http://127.0.0.1:8080` or
 * `https://twin.example.com/`; a trailing slash is dropped.
 */
export function signInLink(base: string, code: string): string {
  return `${base.replace(/\/+$/, '')}/?code=${encodeURIComponent(code)}`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
