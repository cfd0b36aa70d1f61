/**
 * Streaming helpers: the sentence buffer that feeds per-sentence TTS, the one-piece fallback for
 * chat models that do not stream, and the resilient chat chain's streamed reply (fallback only
 * before the first delta).
 */
import { describe, expect, it } from 'vitest';
import { SentenceBuffer, streamChatReply } from '../../src/core/streaming.js';
import { splitSentences } from '../../src/core/text.js';
import { ProviderError } from '../../src/core/errors.js';
import type { ChatModel, ChatRequest } from '../../src/core/providers.js';
import { ResilientChatModel } from '../../src/providers/resilient.js';

const request: ChatRequest = { persona: 'supportive', systemPrompt: 'be kind', history: [], memories: [], userText: 'hi', maxChars: 600 };

function model(name: string, behaviour: { text?: string; failBefore?: boolean; failAfterDeltas?: number; stream?: boolean }): ChatModel & { calls: number } {
  const m = {
    name,
    calls: 0,
    reply: async () => {
      m.calls++;
      if (behaviour.failBefore) throw new ProviderError(name, 'HTTP 503', { retryable: true, status: 503 });
      return { text: behaviour.text ?? '' };
    },
    extractMemories: async () => [],
    insight: async () => '',
    ...(behaviour.stream === false
      ? {}
      : {
          streamReply: async (_r: ChatRequest, onDelta: (d: string) => void) => {
            m.calls++;
            if (behaviour.failBefore) throw new ProviderError(name, 'HTTP 503', { retryable: true, status: 503 });
            const words = (behaviour.text ?? '').split(/(?<= )/);
            for (const [i, w] of words.entries()) {
              if (behaviour.failAfterDeltas !== undefined && i === behaviour.failAfterDeltas) throw new ProviderError(name, 'HTTP 500 midway', { retryable: true, status: 500 });
              onDelta(w);
            }
            return { text: behaviour.text ?? '' };
          },
        }),
  };
  return m;
}

describe('SentenceBuffer', () => {
  it('gives each sentence once its following whitespace arrives, with the rules of splitSentences', () => {
    const text = 'Dr. Lee paid 3.5 dollars. Really?! Yes…\nNew line here. And the end';
    const buffer = new SentenceBuffer();
    const got: string[] = [];
    for (const ch of text) got.push(...buffer.push(ch));
    got.push(buffer.flush());
    expect(got).toEqual(splitSentences(text));
    const b = new SentenceBuffer();
    expect(b.push('It cost 3.')).toEqual([]);
    expect(b.push('5 euros. ')).toEqual(['It cost 3.5 euros.']);
    expect(b.push('Next')).toEqual([]);
    expect(b.flush()).toBe('Next');
    expect(b.flush()).toBe('');
  });
});

describe('streamChatReply', () => {
  it('streams natively, or hands a non-streaming model’s reply over as one delta', async () => {
    const native: string[] = [];
    await streamChatReply(model('a', { text: 'one two three' }), request, (d) => native.push(d));
    expect(native).toEqual(['one ', 'two ', 'three']);
    const whole: string[] = [];
    const reply = await streamChatReply(model('b', { text: 'All at once.', stream: false }), request, (d) => whole.push(d));
    expect(whole).toEqual(['All at once.']);
    expect(reply.text).toBe('All at once.');
  });
});

describe('ResilientChatModel.streamReply', () => {
  const fast = { retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 2, timeoutMs: 2000 } };

  it('falls back to the next model when the first fails before writing anything', async () => {
    const first = model('first', { failBefore: true });
    const second = model('second', { text: 'Hello there friend.' });
    const chain = new ResilientChatModel([first, second], fast);
    const deltas: string[] = [];
    const reply = await chain.streamReply(request, (d) => deltas.push(d));
    expect(reply.provider).toBe('second');
    expect(deltas.join('')).toBe('Hello there friend.');
    expect(first.calls).toBe(2); // one retry, then the fallback
    chain.close();
  });

  it('does not retry or fall back once a model has started writing (no text twice)', async () => {
    const first = model('first', { text: 'one two three four', failAfterDeltas: 2 });
    const second = model('second', { text: 'Other answer.' });
    const chain = new ResilientChatModel([first, second], fast);
    const deltas: string[] = [];
    await expect(chain.streamReply(request, (d) => deltas.push(d))).rejects.toThrow(/midway/);
    expect(deltas).toEqual(['one ', 'two ']);
    expect(first.calls).toBe(1);
    expect(second.calls).toBe(0);
    chain.close();
  });
});
