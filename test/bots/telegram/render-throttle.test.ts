import { describe, expect, it } from 'vitest';
import { MAX_MESSAGE_CHARS, inlineKeyboard, splitText, voiceDurationParam } from '../../../src/bots/telegram/render.js';
import { SendThrottle, throttleTransformer } from '../../../src/bots/telegram/throttle.js';
import { menuCommands } from '../../../src/bots/telegram/index.js';
import { TEST_COMMANDS } from './recording-engine.js';

describe('splitText', () => {
  it('keeps short text whole', () => {
    expect(splitText('hello')).toEqual(['hello']);
  });

  it('splits long text into ≤ 4096-character pieces at paragraph, then word boundaries, losing no words', () => {
    const paragraph = 'word '.repeat(700).trim(); // 3499 chars
    const text = `${paragraph}\n\n${paragraph}\n\n${paragraph}`;
    const pieces = splitText(text);
    expect(pieces.length).toBe(3);
    for (const piece of pieces) expect(piece.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS);
    expect(pieces[0]).toBe(paragraph);
    expect(pieces.join(' ').split(/\s+/).length).toBe(2100);
  });

  it('cuts text without spaces at the limit and never splits a surrogate pair', () => {
    const text = 'a'.repeat(4095) + '😀' + 'b'.repeat(10);
    const pieces = splitText(text);
    expect(pieces[0]).toBe('a'.repeat(4095));
    expect(pieces[1]).toBe('😀' + 'b'.repeat(10));
  });
});

describe('inlineKeyboard', () => {
  it('maps rows of buttons to callback buttons', () => {
    expect(inlineKeyboard([[{ label: 'Coaching', data: 'persona:coaching' }], [{ label: 'Yes', data: 'consent:yes' }, { label: 'No', data: 'consent:no' }]])).toEqual({
      inline_keyboard: [
        [{ text: 'Coaching', callback_data: 'persona:coaching' }],
        [
          { text: 'Yes', callback_data: 'consent:yes' },
          { text: 'No', callback_data: 'consent:no' },
        ],
      ],
    });
    expect(inlineKeyboard(undefined)).toBeUndefined();
    expect(inlineKeyboard([[]])).toBeUndefined();
  });

  it('refuses callback data over 64 bytes (counted in UTF-8)', () => {
    expect(() => inlineKeyboard([[{ label: 'x', data: 'é'.repeat(33) }]])).toThrow(/66 bytes/);
    expect(() => inlineKeyboard([[{ label: 'x', data: 'é'.repeat(32) }]])).not.toThrow();
  });
});

describe('voiceDurationParam', () => {
  it('rounds to whole seconds, at least 1', () => {
    expect(voiceDurationParam(4.49)).toBe(4);
    expect(voiceDurationParam(4.5)).toBe(5);
    expect(voiceDurationParam(0.2)).toBe(1);
  });
});

describe('menuCommands', () => {
  it('lists the engine’s commands without operator-only ones', () => {
    expect(menuCommands(TEST_COMMANDS)).toEqual([
      { command: 'start', description: 'Say hello and see what I can do' },
      { command: 'enroll', description: 'Clone your voice from a few voice notes' },
      { command: 'style', description: 'Pick how your twin talks' },
    ]);
    expect(menuCommands([{ name: 'Bad-Name', description: 'x' }])).toEqual([]);
  });
});

describe('SendThrottle', () => {
  it('spaces calls to one chat by the interval and keeps their order', async () => {
    const throttle = new SendThrottle({ privateChatIntervalMs: 150, globalPerSecond: 1000 });
    const starts: [number, number][] = [];
    await Promise.all([1, 2, 3].map((n) => throttle.run('42', async () => void starts.push([n, Date.now()]))));
    expect(starts.map(([n]) => n)).toEqual([1, 2, 3]);
    expect(starts[1]![1] - starts[0]![1]).toBeGreaterThanOrEqual(145);
    expect(starts[2]![1] - starts[1]![1]).toBeGreaterThanOrEqual(145);
  });

  it('uses the longer group interval for negative chat ids and does not hold other chats back', async () => {
    const throttle = new SendThrottle({ privateChatIntervalMs: 50, groupChatIntervalMs: 300, globalPerSecond: 1000 });
    const at: Record<string, number[]> = { group: [], a: [], b: [] };
    const t0 = Date.now();
    await Promise.all([
      throttle.run('-1001', async () => void at.group!.push(Date.now() - t0)),
      throttle.run('-1001', async () => void at.group!.push(Date.now() - t0)),
      throttle.run('7', async () => void at.a!.push(Date.now() - t0)),
      throttle.run('8', async () => void at.b!.push(Date.now() - t0)),
    ]);
    expect(at.group![1]! - at.group![0]!).toBeGreaterThanOrEqual(295);
    expect(at.a![0]!).toBeLessThan(at.group![1]!);
    expect(at.b![0]!).toBeLessThan(at.group![1]!);
  });

  it('never starts more than the global rate in any one-second window', async () => {
    const throttle = new SendThrottle({ privateChatIntervalMs: 0, globalPerSecond: 20 });
    const starts: number[] = [];
    await Promise.all(Array.from({ length: 30 }, (_, i) => throttle.run(String(i), async () => void starts.push(Date.now()))));
    starts.sort((a, b) => a - b);
    for (let i = 20; i < starts.length; i++) expect(starts[i]! - starts[i - 20]!).toBeGreaterThanOrEqual(950);
  });

  it('the transformer paces only message methods', async () => {
    const throttle = new SendThrottle({ privateChatIntervalMs: 600 });
    const transformer = throttleTransformer(throttle);
    const calls: string[] = [];
    const prev = (async (method: string) => {
      calls.push(method);
      return { ok: true, result: true };
    }) as Parameters<typeof transformer>[0];
    await transformer(prev, 'sendMessage', { chat_id: 5, text: 'a' } as never);
    // A second message to chat 5 waits 600 ms; chat actions and callback answers go straight through.
    await transformer(prev, 'sendChatAction', { chat_id: 5, action: 'typing' } as never);
    await transformer(prev, 'answerCallbackQuery', { callback_query_id: 'q' } as never);
    await transformer(prev, 'getFile', { file_id: 'f' } as never);
    expect(calls).toEqual(['sendMessage', 'sendChatAction', 'answerCallbackQuery', 'getFile']);
    const pending = transformer(prev, 'sendMessage', { chat_id: 5, text: 'b' } as never);
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toHaveLength(4);
    await pending;
    expect(calls).toEqual(['sendMessage', 'sendChatAction', 'answerCallbackQuery', 'getFile', 'sendMessage']);
  });
});
