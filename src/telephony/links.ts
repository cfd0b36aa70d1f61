/**
 * Phone numbers linked to persons, and the one-time codes that link them. A phone number is one
 * more identity of a person: whoever calls from it talks to that person's twin.
 *
 * Records (in the store's key-value repository, sealed at rest like every `kv:` record, see
 * docs/privacy.md):
 * - `phone:link:<e164>` → `{ userKey, linkedAtMs }`: who a caller id belongs to;
 * - `phone:numbers:<userKey>` → `string[]`: the person's linked numbers (for `/phone`, `/delete`);
 * - `phone:code:<code>` → `{ userKey }`, expiring after {@link LINK_CODE_TTL_MS}, and
 *   `phone:code-of:<userKey>` → the person's current code (a new `/phone` replaces it).
 */
import { randomInt } from 'node:crypto';
import type { KeyValueRepository } from '../core/store/types.js';

/** How long a linking code is valid, ms (10 minutes). */
export const LINK_CODE_TTL_MS = 10 * 60 * 1000;
/** Digits in a linking code. */
export const LINK_CODE_DIGITS = 6;

/** A caller id as stored: E.164 (`+` and 7–15 digits, https://www.itu.int/rec/T-REC-E.164). */
export type E164 = string;

interface LinkRecord {
  userKey: string;
  linkedAtMs: number;
}

/**
 * A caller id in E.164 form, or undefined for what is not one (Twilio sends `anonymous`,
 * `+266696687` or an empty `From` for withheld numbers).
 */
export function normaliseE164(raw: string | undefined): E164 | undefined {
  const cleaned = (raw ?? '').replace(/[\s().-]/g, '');
  return /^\+[1-9]\d{6,14}$/.test(cleaned) ? cleaned : undefined;
}

/** A number for logs and messages: the last 4 digits only (`+…0123`). */
export function maskNumber(e164: string): string {
  return `+…${e164.slice(-4)}`;
}

/**
 * Links a caller id to a person (a number already linked to someone else moves to this person).
 * @param e164 the caller id, E.164
 * @param userKey the person, `<channel>:<user id>`
 * @throws RangeError when `e164` is not an E.164 number
 */
export async function linkPhone(store: KeyValueRepository, e164: string, userKey: string, nowMs = Date.now()): Promise<void> {
  const number = normaliseE164(e164);
  if (!number) throw new RangeError('not an E.164 phone number');
  const previous = await store.get<LinkRecord>(`phone:link:${number}`);
  if (previous && previous.userKey !== userKey) {
    await store.update<string[]>(`phone:numbers:${previous.userKey}`, (list) => (list ?? []).filter((n) => n !== number));
  }
  await store.set<LinkRecord>(`phone:link:${number}`, { userKey, linkedAtMs: nowMs });
  await store.update<string[]>(`phone:numbers:${userKey}`, (list) => [...new Set([...(list ?? []), number])]);
}

/**
 * The person a caller id is linked to.
 * @returns their user key, or undefined for an unlinked (or malformed) number
 */
export async function personForCaller(store: KeyValueRepository, e164: string): Promise<string | undefined> {
  const number = normaliseE164(e164);
  if (!number) return undefined;
  return (await store.get<LinkRecord>(`phone:link:${number}`))?.userKey;
}

/**
 * Removes the link of one caller id.
 * @returns true when it was linked
 */
export async function unlinkPhone(store: KeyValueRepository, e164: string): Promise<boolean> {
  const number = normaliseE164(e164);
  if (!number) return false;
  const link = await store.get<LinkRecord>(`phone:link:${number}`);
  if (!link) return false;
  await store.delete(`phone:link:${number}`);
  await store.update<string[]>(`phone:numbers:${link.userKey}`, (list) => (list ?? []).filter((n) => n !== number));
  return true;
}

/** The numbers linked to a person, E.164, in linking order. */
export async function numbersOf(store: KeyValueRepository, userKey: string): Promise<E164[]> {
  return (await store.get<string[]>(`phone:numbers:${userKey}`)) ?? [];
}

/**
 * Removes every number and the pending code of a person (`/delete`).
 * @returns how many records were deleted
 */
export async function deletePhoneLinks(store: KeyValueRepository, userKey: string): Promise<number> {
  let count = 0;
  for (const number of await numbersOf(store, userKey)) {
    const link = await store.get<LinkRecord>(`phone:link:${number}`);
    if (link?.userKey === userKey) {
      await store.delete(`phone:link:${number}`);
      count++;
    }
  }
  await store.delete(`phone:numbers:${userKey}`);
  const code = await store.get<string>(`phone:code-of:${userKey}`);
  if (code) {
    await store.delete(`phone:code:${code}`);
    await store.delete(`phone:code-of:${userKey}`);
    count++;
  }
  return count;
}

/**
 * A new 6-digit one-time code for the person, valid {@link LINK_CODE_TTL_MS}; the person's previous
 * code stops working.
 * @returns the code and when it expires, ms since the epoch
 */
export async function createLinkCode(store: KeyValueRepository, userKey: string, nowMs = Date.now()): Promise<{ code: string; expiresAtMs: number }> {
  const old = await store.get<string>(`phone:code-of:${userKey}`);
  if (old) await store.delete(`phone:code:${old}`);
  for (;;) {
    const code = String(randomInt(0, 10 ** LINK_CODE_DIGITS)).padStart(LINK_CODE_DIGITS, '0');
    let taken = false;
    await store.update<{ userKey: string } | undefined>(
      `phone:code:${code}`,
      (current) => {
        taken = current !== undefined;
        return current ?? { userKey };
      },
      LINK_CODE_TTL_MS,
    );
    if (taken) continue;
    await store.set(`phone:code-of:${userKey}`, code, LINK_CODE_TTL_MS);
    return { code, expiresAtMs: nowMs + LINK_CODE_TTL_MS };
  }
}

/**
 * The code in what a caller typed or said: six digits, also spoken as words ("four two one …");
 * other characters are ignored.
 * @returns the 6-digit code, or undefined when there is none
 */
export function parseSpokenCode(input: string | undefined): string | undefined {
  const words: Record<string, string> = { zero: '0', oh: '0', o: '0', one: '1', two: '2', to: '2', too: '2', three: '3', four: '4', for: '4', five: '5', six: '6', seven: '7', eight: '8', ate: '8', nine: '9' };
  const digits = (input ?? '')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .map((w) => (/^\d+$/.test(w) ? w : (words[w] ?? '')))
    .join('');
  return digits.length === LINK_CODE_DIGITS ? digits : undefined;
}

/**
 * Uses a code once: links `e164` to the code's person and invalidates the code.
 * @returns the person's user key, or undefined when the code is unknown or expired
 * @throws RangeError when `e164` is not an E.164 number
 */
export async function redeemLinkCode(store: KeyValueRepository, code: string, e164: string, nowMs = Date.now()): Promise<string | undefined> {
  if (!/^\d{6}$/.test(code)) return undefined;
  if (!normaliseE164(e164)) throw new RangeError('not an E.164 phone number');
  let claimed: { userKey: string } | undefined;
  // Claimed atomically: two calls typing the same code cannot both use it.
  await store.update<{ userKey: string; usedAtMs?: number } | undefined>(
    `phone:code:${code}`,
    (current) => {
      if (current && current.usedAtMs === undefined) claimed = { userKey: current.userKey };
      return current ? { ...current, usedAtMs: current.usedAtMs ?? nowMs } : { userKey: '', usedAtMs: nowMs };
    },
    60_000,
  );
  if (!claimed) return undefined;
  await store.delete(`phone:code:${code}`);
  await store.delete(`phone:code-of:${claimed.userKey}`);
  await linkPhone(store, e164, claimed.userKey, nowMs);
  return claimed.userKey;
}
