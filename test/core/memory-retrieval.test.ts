/**
 * Memories chosen by meaning when an embedder is configured, by word overlap otherwise: the pure
 * vector helpers, the retriever over a real SQLite store with an embedder that knows a few
 * concepts, and the whole turn with the real Gemini client against the Gemini fake
 * (test/fakes/gemini/server.ts, https://ai.google.dev/api/embeddings).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/log.js';
import { cosineSimilarity, decodeVector, encodeVector, selectMemoriesByVector } from '../../src/core/memory.js';
import { MemoryRetriever } from '../../src/core/memory-retrieval.js';
import type { MemoryRecord, TextEmbedder } from '../../src/core/providers.js';
import type { OutboundReply, ReplyTarget } from '../../src/core/types.js';
import { createStore } from '../../src/core/store/keyv-store.js';
import type { Store } from '../../src/core/store/types.js';
import { GeminiFake, type GenerateRequest } from '../fakes/gemini/server.js';
import { createTestApp } from '../helpers/app.js';

/** Words that mean the same thing share a dimension; every other word gets its own. */
const CONCEPTS: Record<string, number> = { dog: 0, puppy: 0, pet: 0, rex: 0, sister: 1, sibling: 1, brother: 1, job: 2, work: 2, office: 2, nurse: 2 };
class ConceptEmbedder implements TextEmbedder {
  readonly name = 'concepts';
  readonly model = 'concepts-1';
  readonly dimensions = 64;
  readonly calls: { texts: string[]; taskType: string | undefined }[] = [];
  failing = false;
  async embed(texts: readonly string[], options: { taskType?: string } = {}): Promise<Float32Array[]> {
    this.calls.push({ texts: [...texts], taskType: options.taskType });
    if (this.failing) throw new Error('embeddings unavailable');
    return texts.map((t) => {
      const v = new Float32Array(this.dimensions);
      for (const w of t.toLowerCase().match(/[a-z]+/g) ?? []) {
        const dim = CONCEPTS[w];
        if (dim !== undefined) v[dim]! += 3;
        else v[3 + ([...w].reduce((h, c) => h * 31 + c.charCodeAt(0), 7) % (this.dimensions - 3))]! += 0.2;
      }
      const norm = Math.hypot(...v) || 1;
      return v.map((x) => x / norm);
    });
  }
}

const memory = (id: string, text: string, createdAtMs = 1): MemoryRecord => ({ id, text, createdAtMs, source: 'explicit' });

describe('vector helpers', () => {
  it('round-trips a vector through its base64 form and measures cosine similarity', () => {
    const v = Float32Array.from([0.6, -0.8, 0]);
    const back = decodeVector(encodeVector(v))!;
    expect([...back].map((x) => Math.round(x * 1000) / 1000)).toEqual([0.6, -0.8, 0]);
    expect(cosineSimilarity(v, v)).toBeCloseTo(1, 6);
    expect(cosineSimilarity(v, Float32Array.from([0.8, 0.6, 0]))).toBeCloseTo(0, 6);
    expect(cosineSimilarity(v, Float32Array.from([1, 0]))).toBe(0);
    expect(decodeVector('abc')).toBeUndefined();
  });

  it('keeps memories above the threshold, of the same model, most similar first', () => {
    const a = { ...memory('a', 'a'), vector: encodeVector(Float32Array.from([1, 0])), vectorModel: 'm' };
    const b = { ...memory('b', 'b'), vector: encodeVector(Float32Array.from([0.8, 0.6])), vectorModel: 'm' };
    const c = { ...memory('c', 'c'), vector: encodeVector(Float32Array.from([0, 1])), vectorModel: 'm' };
    const other = { ...memory('d', 'd'), vector: encodeVector(Float32Array.from([1, 0])), vectorModel: 'other' };
    const picked = selectMemoriesByVector([c, b, a, other, memory('e', 'e')], Float32Array.from([1, 0]), 'm', 3, 0.5);
    expect(picked.map((m) => m.id)).toEqual(['a', 'b']);
  });
});

describe('MemoryRetriever over a SQLite store', () => {
  let store: Store;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'vt-memret-'));
    store = await createStore({ backend: 'sqlite', dataDir, dataKey: randomBytes(32) });
  });
  afterAll(async () => {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('finds a memory by meaning where no word is shared, and stores each memory’s vector once', async () => {
    const user = 'telegram:501';
    await store.memories.add(user, memory('m1', 'I have a dog called Rex', 1));
    await store.memories.add(user, memory('m2', 'My sister lives in Lisbon', 2));
    await store.memories.add(user, memory('m3', 'I work as a nurse', 3));
    const embedder = new ConceptEmbedder();
    const retriever = new MemoryRetriever({ memories: store.memories, embedder, logger: silentLogger });

    const first = await retriever.select(user, await store.memories.list(user), 'How is my puppy doing?', 3);
    expect(first.method).toBe('vector');
    expect(first.memories.map((m) => m.id)).toEqual(['m1']);
    // One query embedding and one batch of the three memories, with the task types Gemini defines.
    expect(embedder.calls.map((c) => [c.taskType, c.texts.length])).toEqual(expect.arrayContaining([['RETRIEVAL_QUERY', 1], ['RETRIEVAL_DOCUMENT', 3]]));
    const stored = await store.memories.list(user);
    expect(stored.every((m) => m.vectorModel === 'concepts-1' && decodeVector(m.vector!)?.length === 64)).toBe(true);

    embedder.calls.length = 0;
    const second = await retriever.select(user, stored, 'Tell me about my brother', 3);
    expect(second.memories.map((m) => m.id)).toEqual(['m2']);
    expect(embedder.calls).toEqual([{ texts: ['Tell me about my brother'], taskType: 'RETRIEVAL_QUERY' }]);
  });

  it('does not bring back a memory forgotten while its vector was computed', async () => {
    const user = 'telegram:502';
    await store.memories.add(user, memory('f1', 'My office is on the third floor'));
    const listed = await store.memories.list(user);
    await store.memories.remove(user, 'f1');
    await new MemoryRetriever({ memories: store.memories, embedder: new ConceptEmbedder(), logger: silentLogger }).select(user, listed, 'work', 3);
    expect(await store.memories.list(user)).toEqual([]);
  });

  it('falls back to word overlap when the embedder fails', async () => {
    const user = 'telegram:503';
    await store.memories.add(user, memory('w1', 'My sister is called Ana'));
    const embedder = new ConceptEmbedder();
    embedder.failing = true;
    const out = await new MemoryRetriever({ memories: store.memories, embedder, logger: silentLogger }).select(user, await store.memories.list(user), 'what is my sister called', 3);
    expect(out).toMatchObject({ method: 'words', memories: [{ id: 'w1' }] });
  });

  it('chooses by word overlap without an embedder', async () => {
    const user = 'telegram:504';
    await store.memories.add(user, memory('n1', 'I have a dog called Rex'));
    const retriever = new MemoryRetriever({ memories: store.memories, logger: silentLogger });
    expect(retriever.semantic).toBe(false);
    const out = await retriever.select(user, await store.memories.list(user), 'How is my puppy doing?', 3);
    expect(out).toEqual({ method: 'words', memories: [] });
  });
});

describe('a turn with Gemini embeddings', () => {
  let gemini: GeminiFake;
  beforeAll(async () => {
    gemini = await GeminiFake.start({ apiKey: 'gm-test-key' });
  });
  afterAll(() => gemini.close());
  const apps: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  const replies: OutboundReply[] = [];
  const target: ReplyTarget = { reply: async (r) => void replies.push(r), activity: async () => undefined, status: async () => async () => undefined };
  const env = { GEMINI_API_KEY: 'gm-test-key', GEMINI_BASE_URL: '', MEMORY_EVERY: '0', INSIGHT_EVERY: '0', TTS_PROVIDERS: 'local', STT_PROVIDERS: 'local', CLONE_PROVIDERS: 'local' };

  it('embeds memories and the turn through the Gemini API and sends the chosen memory to the chat model', async () => {
    const app = await createTestApp({ env: { ...env, GEMINI_BASE_URL: gemini.baseUrl } });
    apps.push(app);
    expect(app.engine.memoryRetriever.semantic).toBe(true);
    const msg = (id: string, text: string) => ({ id, channel: 'console' as const, chatId: 'c', userId: 'u', receivedAtMs: Date.now(), text });
    await app.engine.handle({ ...msg('r1', '/remember my sister is called Ana'), command: { name: 'remember', args: 'my sister is called Ana' } }, target);
    await app.engine.handle({ ...msg('r2', '/remember I was born in Porto'), command: { name: 'remember', args: 'I was born in Porto' } }, target);
    gemini.requests.length = 0;
    await app.engine.handle(msg('t1', 'What is my sister called?'), target);
    expect(replies.at(-1)!.kind).toBe('answer');
    const embedTasks = gemini.requests
      .filter((r) => r.route === 'batchEmbed' || r.route === 'embed')
      .flatMap((r) => ((r.json?.requests as { taskType?: string }[] | undefined) ?? [r.json as { taskType?: string }]).map((q) => q.taskType));
    expect(embedTasks).toEqual(expect.arrayContaining(['RETRIEVAL_QUERY', 'RETRIEVAL_DOCUMENT']));
    const chat = gemini.requests.find((r) => r.route === 'generate')!.json as GenerateRequest;
    const prompt = JSON.stringify(chat);
    expect(prompt).toContain('my sister is called Ana');
    expect(prompt).not.toContain('born in Porto');
    const stored = await app.engine.store.memories.list('console:u');
    expect(stored.map((m) => m.vectorModel)).toEqual(['gemini-embedding-001', 'gemini-embedding-001']);
  });

  it('uses word overlap when MEMORY_RETRIEVAL=words', async () => {
    const app = await createTestApp({ env: { ...env, GEMINI_BASE_URL: gemini.baseUrl, MEMORY_RETRIEVAL: 'words' } });
    apps.push(app);
    expect(app.engine.memoryRetriever.semantic).toBe(false);
  });
});
