import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../../src/core/errors.js';
import { renderSystemPrompt } from '../../../src/core/personas.js';
import type { ChatRequest, ChatTurn } from '../../../src/core/providers.js';
import { pcmToWav } from '../../../src/core/audio/wav.js';
import { GeminiChatModel, GeminiEmbeddings, GeminiSpeechToText, fitToLength, toContents } from '../../../src/providers/gemini/index.js';
import { GeminiFake, type GenerateRequest } from '../../fakes/gemini/server.js';
import { speechPcm16k } from '../../fakes/elevenlabs/audio.js';
import { rejection } from '../../helpers/rejection.js';

const API_KEY = 'AIzaTest-7d3c2b1a0f9e8d7c6b5a';

let fake: GeminiFake;
beforeAll(async () => {
  fake = await GeminiFake.start({ apiKey: API_KEY });
});
afterAll(async () => {
  await fake.close();
});

const history: ChatTurn[] = [
  { role: 'user', text: 'I had a rough day at work.', atMs: 1 },
  { role: 'twin', text: 'I am sorry to hear that.', atMs: 2 },
  { role: 'twin', text: 'Want to talk about it?', atMs: 3 },
];

function chatRequest(overrides: Partial<ChatRequest> = {}): ChatRequest {
  return {
    persona: 'supportive',
    systemPrompt: renderSystemPrompt('supportive', 'Ada'),
    history,
    memories: [
      { id: 'a1', text: 'Works as a nurse.', createdAtMs: 1, source: 'extracted' },
      { id: 'b2', text: 'Has a cat called Miso.', createdAtMs: 2, source: 'explicit' },
    ],
    userText: 'My manager yelled at me.',
    userName: 'Ada',
    maxChars: 400,
    seed: 7,
    ...overrides,
  };
}

describe('GeminiChatModel (generateContent)', () => {
  it('sends the persona and memories as system instruction and the history as alternating contents', async () => {
    const chat = new GeminiChatModel({ apiKey: API_KEY, baseUrl: fake.baseUrl });
    fake.respond = () => '**Oh Ada**, that sounds hard. Take a breath; you did nothing wrong.';
    const reply = await chat.reply(chatRequest());
    fake.respond = undefined;

    const req = fake.on('generate').at(-1);
    expect(req?.path).toBe('/v1beta/models/gemini-2.5-flash:generateContent');
    expect(req?.headers['x-goog-api-key']).toBe(API_KEY);
    const body = req?.json as GenerateRequest;
    const system = body.systemInstruction?.parts?.[0]?.text ?? '';
    expect(system).toContain('You are the AI twin of Ada');
    expect(system).toContain('- Works as a nurse.');
    expect(system).toContain('- Has a cat called Miso.');
    expect(system).toContain('at most 400 characters');
    expect(body.contents?.map((c) => [c.role, c.parts?.map((p) => p.text)])).toEqual([
      ['user', ['I had a rough day at work.']],
      ['model', ['I am sorry to hear that.', 'Want to talk about it?']],
      ['user', ['My manager yelled at me.']],
    ]);
    expect(body.generationConfig).toMatchObject({ temperature: 0.8, maxOutputTokens: 200, seed: 7, thinkingConfig: { thinkingBudget: 0 } });
    expect(reply.text).toBe('Oh Ada, that sounds hard. Take a breath; you did nothing wrong.');
    expect(reply.usage.inputTokens).toBeGreaterThan(50);
    expect(reply.usage.outputTokens).toBeGreaterThan(5);
  });

  it('keeps replies within maxChars at a sentence end, and reports blocked prompts', async () => {
    const chat = new GeminiChatModel({ apiKey: API_KEY, baseUrl: fake.baseUrl });
    fake.respond = () => 'First sentence is here. Second sentence is a little longer than that. Third one.';
    const reply = await chat.reply(chatRequest({ maxChars: 60 }));
    fake.respond = undefined;
    expect(reply.text).toBe('First sentence is here.');

    fake.blockNext = true;
    const blocked = await rejection(chat.reply(chatRequest()));
    expect(blocked).toBeInstanceOf(ProviderError);
    expect((blocked as ProviderError).message).toContain('blocked (SAFETY)');
    expect((blocked as ProviderError).retryable).toBe(false);
  });

  it('extracts memories with a JSON response schema and drops known ones', async () => {
    const chat = new GeminiChatModel({ apiKey: API_KEY, baseUrl: fake.baseUrl });
    fake.respond = () => JSON.stringify({ memories: ['Works as a nurse.', 'Has a manager who yells.', '  ', 'Lives in Leeds.'] });
    const memories = await chat.extractMemories(history, chatRequest().memories);
    fake.respond = undefined;
    const body = fake.on('generate').at(-1)?.json as GenerateRequest;
    expect(body.generationConfig?.responseMimeType).toBe('application/json');
    expect(body.generationConfig?.responseSchema).toMatchObject({ type: 'OBJECT', properties: { memories: { type: 'ARRAY', items: { type: 'STRING' } } }, required: ['memories'] });
    expect(body.contents?.[0]?.parts?.[0]?.text).toContain('User: I had a rough day at work.');
    expect(memories).toEqual(['Has a manager who yells.', 'Lives in Leeds.']);

    fake.respond = () => 'not json at all';
    const bad = await rejection(chat.extractMemories(history, []));
    fake.respond = undefined;
    expect(bad).toMatchObject({ retryable: true });
    expect((bad as Error).message).toContain('not JSON');
  });

  it('writes an insight in the persona’s style as structured output', async () => {
    const chat = new GeminiChatModel({ apiKey: API_KEY, baseUrl: fake.baseUrl });
    fake.respond = (req) => JSON.stringify({ insight: req.systemInstruction?.parts?.[0]?.text?.includes('coaching') ? 'You keep naming your **next step**.' : 'wrong persona' });
    const insight = await chat.insight(history, 'coaching');
    fake.respond = undefined;
    expect(insight).toBe('You keep naming your next step.');
    expect((fake.on('generate').at(-1)?.json as GenerateRequest).generationConfig?.responseSchema).toMatchObject({ properties: { insight: { type: 'STRING' } } });
  });
});

describe('GeminiSpeechToText (inline audio)', () => {
  it('sends the voice note as inline audio/wav with an instruction and parses text and language', async () => {
    const pcm = await speechPcm16k('Remind me to call my mother tomorrow.');
    fake.sttText = 'Remind me to call my mother tomorrow.';
    const stt = new GeminiSpeechToText({ apiKey: API_KEY, baseUrl: fake.baseUrl });
    const transcript = await stt.transcribe(pcm, { languageHint: 'en-GB' });

    const body = fake.on('generate').at(-1)?.json as GenerateRequest;
    const parts = body.contents?.[0]?.parts ?? [];
    expect(parts[0]?.text).toContain('Transcribe');
    expect(parts[0]?.text).toContain('en-GB');
    expect(parts[1]?.inlineData?.mimeType).toBe('audio/wav');
    expect(Buffer.from(parts[1]?.inlineData?.data ?? '', 'base64').equals(pcmToWav(pcm))).toBe(true);
    expect(body.generationConfig).toMatchObject({ temperature: 0, responseMimeType: 'application/json' });
    expect(transcript).toMatchObject({ text: 'Remind me to call my mother tomorrow.', languageCode: 'en' });
    expect(transcript.durationSec).toBeCloseTo(pcm.samples.length / 16_000, 5);
    expect(transcript.usage.inputTokens).toBeGreaterThanOrEqual(Math.floor(transcript.durationSec * 32));
    expect(stt.reliable).toBe(true);
  });
});

describe('GeminiEmbeddings (batchEmbedContents)', () => {
  it('embeds in batches of 100 with the configured dimensions as unit vectors', async () => {
    const embedder = new GeminiEmbeddings({ apiKey: API_KEY, baseUrl: fake.baseUrl });
    const texts = Array.from({ length: 150 }, (_, i) => `memory number ${i}`);
    texts[0] = 'I love my dog Rex';
    texts[1] = 'my dog Rex loves walks';
    texts[2] = 'the stock market fell today';
    const before = fake.on('batchEmbed').length;
    const vectors = await embedder.embed(texts, { taskType: 'RETRIEVAL_DOCUMENT' });
    const calls = fake.on('batchEmbed').slice(before);
    expect(calls.map((c) => (c.json?.requests as unknown[]).length)).toEqual([100, 50]);
    expect((calls[0]?.json?.requests as Record<string, unknown>[])[0]).toMatchObject({ model: 'models/gemini-embedding-001', outputDimensionality: 768, taskType: 'RETRIEVAL_DOCUMENT' });
    expect(vectors).toHaveLength(150);
    const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * (b[i] ?? 0), 0);
    const [dog, walks, stocks] = vectors as [Float32Array, Float32Array, Float32Array];
    expect(dot(dog, dog)).toBeCloseTo(1, 4);
    expect(dot(dog, walks)).toBeGreaterThan(dot(dog, stocks));
  });
});

describe('Gemini error classification', () => {
  it('maps an invalid key to an authentication failure without leaking it', async () => {
    const chat = new GeminiChatModel({ apiKey: 'AIzaWrongKey-000000', baseUrl: fake.baseUrl });
    const err = await rejection(chat.reply(chatRequest()));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ retryable: false, options: { status: 401 } });
    expect((err as Error).message).toContain('API_KEY_INVALID');
    expect((err as Error).message).not.toContain('AIzaWrongKey-000000');
  });

  it('reads RetryInfo on 429, marks 503 retryable, and makes one request per call', async () => {
    const chat = new GeminiChatModel({ apiKey: API_KEY, baseUrl: fake.baseUrl });
    const before = fake.on('generate').length;
    fake.inject('generate', { status: 429, retryDelaySec: 2 });
    expect(await rejection(chat.reply(chatRequest()))).toMatchObject({ retryable: true, options: { status: 429, retryAfterSec: 2 } });
    fake.inject('generate', { status: 503 });
    const overloaded = await rejection(chat.reply(chatRequest()));
    expect(overloaded).toMatchObject({ retryable: true, options: { status: 503 } });
    expect((overloaded as Error).message).toContain('overloaded');
    expect(fake.on('generate').length).toBe(before + 2);
    await chat.probe(AbortSignal.timeout(5_000));
    expect(fake.on('model').at(-1)?.path).toBe('/v1beta/models/gemini-2.5-flash');
  });
});

describe('helpers', () => {
  it('merges same-role turns and cuts text at sentence ends', () => {
    expect(toContents([{ role: 'twin', text: 'Hi', atMs: 0 }], 'Hello')).toEqual([
      { role: 'model', parts: [{ text: 'Hi' }] },
      { role: 'user', parts: [{ text: 'Hello' }] },
    ]);
    expect(fitToLength('One two three four five six seven', 15)).toBe('One two three…');
  });
});

describe('GeminiChatModel.streamReply (streamGenerateContent, server-sent events)', () => {
  it('hands the text over in pieces as the events arrive, stripped of markdown, and resolves with the whole reply and usage', async () => {
    const chat = new GeminiChatModel({ apiKey: API_KEY, baseUrl: fake.baseUrl });
    fake.respond = () => '**Oh Ada**, that sounds hard. Take a breath; you did nothing wrong. Tomorrow is a new day.';
    fake.streamWordsPerEvent = 2;
    fake.streamEventDelayMs = 30;
    const deltas: { text: string; atMs: number }[] = [];
    const t = performance.now();
    try {
      const reply = await chat.streamReply(chatRequest(), (text) => deltas.push({ text, atMs: performance.now() - t }));
      const req = fake.on('stream').at(-1);
      expect(req?.path).toBe('/v1beta/models/gemini-2.5-flash:streamGenerateContent');
      expect((req?.json as GenerateRequest).systemInstruction?.parts?.[0]?.text).toContain('at most 400 characters');
      expect(reply.text).toBe('Oh Ada, that sounds hard. Take a breath; you did nothing wrong. Tomorrow is a new day.');
      expect(deltas.map((d) => d.text).join('')).toBe(reply.text);
      expect(deltas.length).toBeGreaterThan(3);
      // The first words came long before the last event (≈ 8 events × 30 ms).
      expect(deltas[0]!.atMs).toBeLessThan(deltas.at(-1)!.atMs - 100);
      expect(reply.usage.outputTokens).toBeGreaterThan(0);
    } finally {
      fake.respond = undefined;
      fake.streamWordsPerEvent = 3;
      fake.streamEventDelayMs = 0;
    }
  });

  it('maps an error before the stream (503) to a retryable ProviderError, and an aborted request stops the stream', async () => {
    const chat = new GeminiChatModel({ apiKey: API_KEY, baseUrl: fake.baseUrl });
    fake.inject('stream', { status: 503 });
    const err = await rejection(chat.streamReply(chatRequest(), () => undefined));
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).retryable).toBe(true);

    fake.respond = () => 'one two three four five six seven eight nine ten eleven twelve.';
    fake.streamWordsPerEvent = 1;
    fake.streamEventDelayMs = 50;
    const controller = new AbortController();
    const deltas: string[] = [];
    try {
      const pending = chat.streamReply(chatRequest({ signal: controller.signal }), (d) => {
        deltas.push(d);
        if (deltas.length === 2) controller.abort(new Error('interrupted'));
      });
      await expect(pending).rejects.toThrow();
      expect(deltas.join('')).not.toContain('twelve');
    } finally {
      fake.respond = undefined;
      fake.streamWordsPerEvent = 3;
      fake.streamEventDelayMs = 0;
    }
  });
});
