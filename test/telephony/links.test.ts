import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeHarness } from '../core/store/harness.js';
import type { StoreHarness } from '../core/store/contract.js';
import type { Store } from '../../src/core/store/types.js';
import { createLinkCode, deletePhoneLinks, linkPhone, LINK_CODE_TTL_MS, normaliseE164, numbersOf, parseSpokenCode, personForCaller, redeemLinkCode, unlinkPhone } from '../../src/telephony/links.js';

let harness: StoreHarness;
let store: Store;
beforeEach(async () => {
  harness = await makeHarness('sqlite');
  store = await harness.open();
});
afterEach(async () => harness.cleanup());

describe('phone links', () => {
  it('normalises E.164 and refuses withheld or malformed caller ids', () => {
    expect(normaliseE164('+1 (415) 555-0123')).toBe('+14155550123');
    expect(normaliseE164('anonymous')).toBeUndefined();
    expect(normaliseE164('')).toBeUndefined();
    expect(normaliseE164('+0123456789')).toBeUndefined();
  });

  it('links, finds, moves and unlinks a number', async () => {
    await linkPhone(store.kv, '+14155550123', 'telegram:1');
    expect(await personForCaller(store.kv, '+14155550123')).toBe('telegram:1');
    expect(await personForCaller(store.kv, '+14155550124')).toBeUndefined();
    // Linking the same number to another person moves it.
    await linkPhone(store.kv, '+14155550123', 'discord:2');
    expect(await personForCaller(store.kv, '+14155550123')).toBe('discord:2');
    expect(await numbersOf(store.kv, 'telegram:1')).toEqual([]);
    expect(await numbersOf(store.kv, 'discord:2')).toEqual(['+14155550123']);
    expect(await unlinkPhone(store.kv, '+14155550123')).toBe(true);
    expect(await unlinkPhone(store.kv, '+14155550123')).toBe(false);
    expect(await personForCaller(store.kv, '+14155550123')).toBeUndefined();
    await expect(linkPhone(store.kv, 'anonymous', 'x:1')).rejects.toThrow(RangeError);
  });

  it('a 6-digit code links once, and a new code replaces the old one', async () => {
    const first = await createLinkCode(store.kv, 'telegram:1', 1000);
    expect(first.code).toMatch(/^\d{6}$/);
    expect(first.expiresAtMs).toBe(1000 + LINK_CODE_TTL_MS);
    const second = await createLinkCode(store.kv, 'telegram:1');
    if (second.code !== first.code) expect(await redeemLinkCode(store.kv, first.code, '+14155550123')).toBeUndefined();
    expect(await redeemLinkCode(store.kv, second.code, '+14155550123')).toBe('telegram:1');
    expect(await personForCaller(store.kv, '+14155550123')).toBe('telegram:1');
    // Used: a second caller cannot use it again.
    expect(await redeemLinkCode(store.kv, second.code, '+14155550199')).toBeUndefined();
    expect(await personForCaller(store.kv, '+14155550199')).toBeUndefined();
  });

  it('two calls racing with one code: exactly one is linked', async () => {
    const { code } = await createLinkCode(store.kv, 'telegram:1');
    const results = await Promise.all(['+14155550001', '+14155550002', '+14155550003'].map((n) => redeemLinkCode(store.kv, code, n)));
    expect(results.filter((r) => r === 'telegram:1')).toHaveLength(1);
  });

  it('reads codes typed or spoken', () => {
    expect(parseSpokenCode('123456')).toBe('123456');
    expect(parseSpokenCode('one two three, four five six.')).toBe('123456');
    expect(parseSpokenCode('4 2 oh 9 nine 1')).toBe('420991');
    expect(parseSpokenCode('12345')).toBeUndefined();
    expect(parseSpokenCode('my code is 1234567')).toBeUndefined();
    expect(parseSpokenCode(undefined)).toBeUndefined();
  });

  it('deletePhoneLinks removes the numbers and the pending code of one person only', async () => {
    await linkPhone(store.kv, '+14155550123', 'telegram:1');
    await linkPhone(store.kv, '+14155550124', 'telegram:1');
    await linkPhone(store.kv, '+14155550125', 'telegram:2');
    const { code } = await createLinkCode(store.kv, 'telegram:1');
    expect(await deletePhoneLinks(store.kv, 'telegram:1')).toBe(3);
    expect(await personForCaller(store.kv, '+14155550123')).toBeUndefined();
    expect(await personForCaller(store.kv, '+14155550125')).toBe('telegram:2');
    expect(await redeemLinkCode(store.kv, code, '+14155550126')).toBeUndefined();
  });
});
