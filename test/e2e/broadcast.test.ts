/**
 * Broadcasts end to end through the real Telegram adapter (grammY with its flood-control
 * transformer and auto-retry) against the local fake Bot API server, on the real app and SQLite
 * store: 10,000 recipients at a scaled limit, Telegram's real limits on 200, 429 and 403 on the
 * wire, the operator-only command and the dry run. Limits are checked on the timestamps the fake
 * server recorded. How close the achieved rate comes to the limit is measured by bench/broadcast.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TELEGRAM_ERRORS } from '../fakes/telegram/server.js';
import { maxInWindow, minGapPerKey, waitFor } from '../core/broadcast/support.js';
import { OPERATOR, messageCalls, startTelegramHarness, voicesPerChat, type TelegramHarness } from '../core/broadcast/e2e-support.js';

const harnesses: TelegramHarness[] = [];
afterEach(async () => {
  while (harnesses.length) await harnesses.pop()!.close();
});

async function harness(options: Parameters<typeof startTelegramHarness>[0]): Promise<TelegramHarness> {
  const h = await startTelegramHarness(options);
  harnesses.push(h);
  return h;
}

/** Waits until the broadcast started by the operator's command has ended; returns its status. */
async function broadcastEnded(h: TelegramHarness, timeoutMs: number) {
  await waitFor(async () => (await h.service.status()) !== undefined, 'the broadcast to start', 20_000);
  await waitFor(async () => ['done', 'cancelled', 'failed'].includes((await h.service.status())!.state), 'the broadcast to end', timeoutMs);
  await h.service.whenIdle();
  return (await h.service.status())!;
}

function operatorTexts(h: TelegramHarness): string[] {
  return h.fake.calls.filter((c) => (c.method === 'sendMessage' || c.method === 'editMessageText') && String(c.params.chat_id) === String(OPERATOR.id)).map((c) => String(c.params.text));
}

describe('broadcast through the Telegram adapter and the fake Bot API', () => {
  it('reaches 10,000 recipients, each once and settled, never above the (scaled) limits', { timeout: 180_000 }, async () => {
    // Telegram's 30/s would take 333 s; the limiter is the same code at any rate, so this runs at
    // 300/s overall and 10/s per chat, and the adapter's own throttle is opened up to match.
    const h = await harness({
      userCount: 10_000,
      service: { pace: { telegram: { messagesPerSec: 300, perChatIntervalMs: 100, maxInFlight: 32 } } },
      bot: { throttle: { globalPerSecond: 300, privateChatIntervalMs: 100 } },
    });
    h.operatorSays('--voice default Hi!');
    const status = await broadcastEnded(h, 150_000);

    expect(status.state).toBe('done');
    expect(status.counts).toMatchObject({ total: 10_001, sent: 10_001, failed: 0, skipped: 0 });
    expect(status.remaining + status.inFlight).toBe(0);
    const perChat = voicesPerChat(h.fake.calls);
    expect(perChat.size).toBe(10_001);
    expect(Math.max(...perChat.values())).toBe(1);
    const messages = messageCalls(h.fake.calls);
    expect(maxInWindow(messages.map((c) => c.atMs), 1000)).toBeLessThanOrEqual(300);
    expect(minGapPerKey(messages.map((c) => ({ key: String(c.params.chat_id), atMs: c.atMs })))).toBeGreaterThanOrEqual(100);
    const texts = operatorTexts(h);
    expect(texts[0]).toMatch(/^Broadcast bc-[0-9a-f]{6} starting: 10,001 recipients/);
    expect(texts.some((t) => /\d+ of 10,001 sent · 0 failed · 0 skipped · [\d,]+ remaining · ETA/.test(t))).toBe(true);
    expect(texts.at(-1)).toMatch(/finished after .*\nSent: 10,001 of 10,001 \(default voice 10,001\)\./);
  });

  it("keeps Telegram's real limits: at most 30 messages per second and one per second per chat", { timeout: 60_000 }, async () => {
    const h = await harness({ userCount: 200, service: { progressIntervalMs: 1000 } });
    h.operatorSays('--voice default Good morning from the VoiceTwin team.');
    const status = await broadcastEnded(h, 30_000);
    expect(status.counts).toMatchObject({ total: 201, sent: 201 });
    const messages = messageCalls(h.fake.calls);
    // Everything that put a message in a chat: the voice notes, the operator's progress message, its edits and the summary.
    expect(messages.filter((c) => c.method === 'editMessageText').length).toBeGreaterThan(2);
    expect(maxInWindow(messages.map((c) => c.atMs), 1000)).toBeLessThanOrEqual(30);
    expect(minGapPerKey(messages.map((c) => ({ key: String(c.params.chat_id), atMs: c.atMs })))).toBeGreaterThanOrEqual(1000);
    // The voice note is a native voice message with the text as caption.
    const voice = h.fake.callsTo('sendVoice')[0]!;
    expect(voice.files.voice!.bytes.subarray(0, 4).toString()).toBe('OggS');
    expect(voice.params.caption).toBe('Good morning from the VoiceTwin team.');
  });

  it('honours retry_after on a 429 (the adapter retries) and marks a user who blocked the bot (403)', { timeout: 60_000 }, async () => {
    const h = await harness({ userCount: 40, service: { pace: { telegram: { messagesPerSec: 50, perChatIntervalMs: 100, maxInFlight: 8 } } }, bot: { throttle: { globalPerSecond: 50, privateChatIntervalMs: 100 } } });
    h.fake.blockChat(100_007);
    h.fake.failNext('sendVoice', TELEGRAM_ERRORS.tooManyRequests(1));
    h.operatorSays('--voice default Hello');
    const status = await broadcastEnded(h, 30_000);
    expect(status.counts).toMatchObject({ total: 41, sent: 40, failed: 1, failedBy: { unreachable: 1 } });
    expect((await h.app.store.users.get('telegram:100007'))?.blocked).toBe(true);
    const refused = h.fake.callsTo('sendVoice').find((c) => c.status === 429)!;
    const retry = h.fake.callsTo('sendVoice').find((c) => c.status === 200 && c.params.chat_id === refused.params.chat_id)!;
    expect(retry.atMs - refused.atMs).toBeGreaterThanOrEqual(1000);
    expect(voicesPerChat(h.fake.calls).get(String(refused.params.chat_id))).toBe(1);
    expect(operatorTexts(h).at(-1)).toContain('Failed: 1 (unreachable 1).');

    // The next broadcast skips the user who blocked the bot, without calling Telegram for them.
    const attempts = h.fake.callsTo('sendVoice').filter((c) => String(c.params.chat_id) === '100007').length;
    h.operatorSays('--voice default Hello again');
    await waitFor(async () => (await h.service.status())!.id !== status.id, 'the second broadcast');
    const second = await broadcastEnded(h, 30_000);
    expect(second.counts).toMatchObject({ sent: 40, skipped: 1, skippedBy: { blocked: 1 } });
    expect(h.fake.callsTo('sendVoice').filter((c) => String(c.params.chat_id) === '100007')).toHaveLength(attempts);
  });

  it('pauses the whole channel for retry_after when the adapter hands the 429 back', { timeout: 60_000 }, async () => {
    // With the default settings auto-retry holds a 429 itself and retries that one call after
    // retry_after; with maxDelaySeconds 0 it hands every 429 straight back to the sender.
    const h = await harness({
      userCount: 60,
      service: { pace: { telegram: { messagesPerSec: 50, perChatIntervalMs: 100, maxInFlight: 4 } } },
      bot: { throttle: { globalPerSecond: 50, privateChatIntervalMs: 100 }, retry: { maxDelaySeconds: 0 } },
    });
    h.operatorSays('--voice default Slow down');
    await waitFor(() => h.fake.callsTo('sendVoice').length >= 10, '10 voice notes');
    h.fake.failNext('sendVoice', TELEGRAM_ERRORS.tooManyRequests(2));
    const status = await broadcastEnded(h, 30_000);
    expect(status.counts).toMatchObject({ total: 61, sent: 61, failed: 0 });
    const voices = h.fake.callsTo('sendVoice');
    const refused = voices.find((c) => c.status === 429)!;
    // Sends already past the limiter when the 429 came back may land just after it; nothing later until retry_after passed.
    const during = voices.filter((c) => c.atMs > refused.atMs + 150 && c.atMs < refused.atMs + 2000);
    expect(during).toEqual([]);
    expect(voicesPerChat(h.fake.calls).get(String(refused.params.chat_id))).toBe(1);
    expect(Math.max(...voicesPerChat(h.fake.calls).values())).toBe(1);
  });

  it("refuses a non-operator's /broadcast with nothing queued, and answers the operator's dry run", { timeout: 60_000 }, async () => {
    const h = await harness({ userCount: 30, users: (i) => ({ optedOut: i < 3 }) });
    const stranger = { id: 100_005, first_name: 'Sam' };
    h.fake.sendCommand('/broadcast Buy my course!', { from: stranger });
    const refusal = await h.fake.waitForCall('sendMessage', (c) => String(c.params.chat_id) === String(stranger.id));
    expect(refusal.params.text).toBe('/broadcast is only for the operators of this VoiceTwin.');
    expect(await h.app.store.jobs.listUnfinished()).toEqual([]);
    expect(await h.service.status()).toBeUndefined();

    h.operatorSays('--dry-run --audience telegram What are you grateful for today?');
    const answer = await h.fake.waitForCall('sendMessage', (c) => String(c.params.chat_id) === String(OPERATOR.id));
    expect(String(answer.params.text)).toContain('Dry run, nothing sent.');
    expect(String(answer.params.text)).toContain('Recipients: 28 (telegram 28); skipped: 3 (opted out 3).');
    expect(h.fake.callsTo('sendVoice')).toEqual([]);
    expect(await h.service.status()).toBeUndefined();
    // The operator command is not in the public command menu.
    expect((h.fake.myCommands as Array<{ command: string }>).map((c) => c.command)).not.toContain('broadcast');
  });
});
