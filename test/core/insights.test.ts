/**
 * Memory extraction and insights as `insights` jobs on the real embedded queue: enqueued after the
 * turn under an id derived from the message id, run after it, and idempotent per message id — a
 * re-run of the same job (a retry here; a crash re-runs it the same way) stores no memory twice and
 * sends the insight once. Also the store's atomic `addFromMessage` under concurrent calls.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { insightsJobId } from '../../src/core/engine.js';
import type { ChatTurn, Providers } from '../../src/core/providers.js';
import type { ChannelSender, InboundMessage, OutboundReply } from '../../src/core/types.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { speakingProviders } from './broadcast/support.js';

class ConsoleSender implements ChannelSender {
  readonly channel = 'console' as const;
  readonly sent: OutboundReply[] = [];
  async send(_chatId: string, reply: OutboundReply): Promise<void> {
    this.sent.push(reply);
  }
}

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

let seq = 0;
const text = (t: string): InboundMessage => ({ id: `ins-${++seq}`, channel: 'console', chatId: 'c1', userId: 'u1', receivedAtMs: Date.now(), text: t });

/** Providers whose memory extraction returns different facts on every call (as a chat model may). */
function providers(options: { failInsightOnce: boolean }): { providers: Providers; extractCalls: ChatTurn[][]; insightCalls: number } {
  const base = speakingProviders();
  const state = { extractCalls: [] as ChatTurn[][], insightCalls: 0 };
  const chat: Providers['chat'] = {
    name: 'scripted',
    reply: async () => ({ text: 'Nice to hear.' }),
    extractMemories: async (history) => {
      state.extractCalls.push(history);
      const n = state.extractCalls.length;
      return [`fact one from call ${n}`, `fact two from call ${n}`];
    },
    insight: async () => {
      state.insightCalls++;
      if (options.failInsightOnce && state.insightCalls === 1) throw new Error('chat model unavailable');
      return 'You plan ahead.';
    },
  };
  return {
    providers: { ...base, chat },
    get extractCalls() {
      return state.extractCalls;
    },
    get insightCalls() {
      return state.insightCalls;
    },
  };
}

describe('insights jobs', () => {
  it('runs after the turn as its own job, over the history up to that turn', async () => {
    const p = providers({ failInsightOnce: false });
    app = await createTestApp({ providers: p.providers, env: { MEMORY_EVERY: '2', INSIGHT_EVERY: '2' } });
    const sender = new ConsoleSender();
    app.engine.registerSender(sender);
    const first = text('I am planning a trip');
    const second = text('to Porto in May');
    await app.engine.submit(first);
    await app.engine.submit(second);
    await app.engine.whenIdle();
    const kinds = await app.engine.queue!.stats();
    expect(kinds.find((k) => k.kind === 'insights')).toMatchObject({ done: 1, failed: 0 });
    expect(p.extractCalls).toHaveLength(1);
    expect(p.extractCalls[0]!.map((t) => t.messageId)).toEqual([first.id, first.id, second.id, second.id]);
    const memories = await app.store.memories.list('console:u1');
    expect(memories.map((m) => [m.text, m.source, m.sourceMessageId])).toEqual([
      ['fact one from call 1', 'extracted', second.id],
      ['fact two from call 1', 'extracted', second.id],
    ]);
    expect(sender.sent.filter((r) => r.kind === 'insight').map((r) => r.text)).toEqual(['Insight: You plan ahead.']);
    // The job id is derived from the message id: enqueuing it again is a no-op.
    const again = await app.engine.queue!.enqueue('insights', { userKey: 'console:u1', messageId: second.id, address: { channel: 'console', chatId: 'c1' }, memories: true, insight: true }, { id: insightsJobId(second.id), key: 'insights:console:u1' });
    expect(again.created).toBe(false);
  });

  it('a re-run of the same job stores each extracted memory once and sends the insight once', async () => {
    const p = providers({ failInsightOnce: true });
    app = await createTestApp({ providers: p.providers, env: { MEMORY_EVERY: '1', INSIGHT_EVERY: '1' } });
    const sender = new ConsoleSender();
    app.engine.registerSender(sender);
    const message = text('My sister Ana lives in Porto');
    await app.engine.submit(message);
    await app.engine.whenIdle();
    // Attempt 1 stored the memories, then the insight failed; attempt 2 ran the whole job again.
    expect(p.insightCalls).toBe(2);
    expect((await app.engine.queue!.stats()).find((k) => k.kind === 'insights')).toMatchObject({ done: 1, failed: 0 });
    const memories = await app.store.memories.list('console:u1');
    expect(memories.map((m) => m.text)).toEqual(['fact one from call 1', 'fact two from call 1']);
    expect(memories.every((m) => m.sourceMessageId === message.id)).toBe(true);
    expect(p.extractCalls).toHaveLength(1); // the re-run saw the stored memories and did not extract again
    expect(sender.sent.filter((r) => r.kind === 'insight')).toHaveLength(1);
    expect(sender.sent.filter((r) => r.kind === 'answer')).toHaveLength(1);
  });

  it('addFromMessage is atomic: concurrent writes for one message store its memories once', async () => {
    app = await createTestApp({ providers: providers({ failInsightOnce: false }).providers });
    const memories = app.store.memories;
    await memories.add('console:u9', { id: 'aaaa', text: 'an earlier memory', createdAtMs: 1, source: 'explicit' });
    const batch = (n: number) => [
      { id: 'aaaa', text: `first ${n}`, createdAtMs: 2, source: 'extracted' as const },
      { id: 'bbbb', text: `second ${n}`, createdAtMs: 2, source: 'extracted' as const },
    ];
    const results = await Promise.all(Array.from({ length: 8 }, (_, n) => memories.addFromMessage('console:u9', 'msg-1', batch(n))));
    expect(results.filter((r) => r.length > 0)).toHaveLength(1);
    const list = await memories.list('console:u9');
    expect(list).toHaveLength(3);
    expect(new Set(list.map((m) => m.id)).size).toBe(3); // the taken id "aaaa" was replaced
    expect(list.filter((m) => m.sourceMessageId === 'msg-1')).toHaveLength(2);
    expect(await memories.addFromMessage('console:u9', 'msg-2', [])).toEqual([]);
  });
});
