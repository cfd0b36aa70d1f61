/**
 * The realtime WebSocket API (`/v1/realtime`, docs/realtime.md) with a real `ws` client against
 * the real server on a free port: the offline application (pocketsphinx, template chat model,
 * offline TTS, SQLite, the embedded job queue) for text and voice turns, and a second application
 * whose chat model streams slowly (sentence by sentence) for interruption.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createHttpServer, type HttpServer } from '../../src/http/server.js';
import { registerApi } from '../../src/http/api.js';
import type { RealtimeOptions } from '../../src/http/realtime.js';
import { silentLogger } from '../../src/core/log.js';
import { splitSentences } from '../../src/core/text.js';
import type { ChatModel, ChatRequest, Providers, SpeechSynthesizer } from '../../src/core/providers.js';
import { createLocalProviders } from '../../src/providers/local/index.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { ffprobeJson, makeSpeechWav, toPcm, toWebm } from '../helpers/audio.js';
import { TEST_HTTP_SETTINGS } from './helpers.js';

/** A server event as received (shapes are asserted per test). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Event = { type: string; [k: string]: any };

interface Running {
  app: TestApp;
  server: HttpServer;
  wsUrl: string;
  key: string;
  userKey: string;
}

async function start(options: { providers?: Providers; realtime?: Partial<Omit<RealtimeOptions, 'engine' | 'logger' | 'authenticate'>> } = {}): Promise<Running> {
  const app = await createTestApp({ env: { INSIGHT_EVERY: '0', MEMORY_EVERY: '0' }, ...(options.providers ? { providers: options.providers } : {}) });
  const server = await createHttpServer({
    settings: TEST_HTTP_SETTINGS,
    logger: silentLogger,
    routes: (f) => registerApi(f, { engine: app.engine, urlSigningKey: randomBytes(32), rateLimitPerKey: 10_000, ...(options.realtime ? { realtime: options.realtime } : {}) }),
  });
  const { url } = await server.listen();
  const userKey = `web:rt-${randomBytes(4).toString('hex')}`;
  const key = (await app.engine.apiKeys.create(userKey, 'realtime tests')).key;
  return { app, server, wsUrl: `${url.replace(/^http/, 'ws')}/v1/realtime`, key, userKey };
}

/** A connected client that records every server event. */
class Client {
  readonly events: Event[] = [];
  private waiters: { match: (e: Event) => boolean; resolve: (e: Event) => void }[] = [];
  closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const event = JSON.parse(String(data)) as Event;
      event.receivedAtMs = performance.now();
      this.events.push(event);
      for (const w of [...this.waiters]) {
        if (w.match(event)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(event);
        }
      }
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  }

  static async open(run: Running, init: { headers?: Record<string, string>; protocols?: string[]; autoPong?: boolean } = {}): Promise<Client> {
    const ws = new WebSocket(run.wsUrl, init.protocols ?? [], { headers: init.headers ?? { authorization: `Bearer ${run.key}` }, ...(init.autoPong === false ? { autoPong: false } : {}) });
    const client = new Client(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    await client.next((e) => e.type === 'session.created');
    return client;
  }

  send(event: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(event));
  }

  /** The first event (already received or future) that matches. */
  next(match: (e: Event) => boolean, timeoutMs = 30_000): Promise<Event> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching event within ${timeoutMs} ms; got ${this.events.map((e) => e.type).join(', ')}`)), timeoutMs);
      this.waiters.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
    });
  }

  of(responseId: string, type: string): Event[] {
    return this.events.filter((e) => e.type === type && (e.response_id === responseId || e.response?.id === responseId));
  }

  close(): void {
    this.ws.close();
  }
}

/** The HTTP status of a refused upgrade. */
function refusedStatus(url: string, init: { headers?: Record<string, string>; protocols?: string[] }): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, init.protocols ?? [], { headers: init.headers ?? {} });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => reject(new Error('the connection was accepted')));
    ws.once('error', () => undefined);
  });
}

let main: Running;

beforeAll(async () => {
  main = await start({ realtime: { maxMessageBytes: 256 * 1024, pingIntervalMs: 300 } });
}, 60_000);

afterAll(async () => {
  await main?.server.close();
  await main?.app.close();
});

describe('realtime WebSocket: connection', () => {
  it('refuses an upgrade without a key or with an unknown key (401), and a plain GET (426)', async () => {
    expect(await refusedStatus(main.wsUrl, {})).toBe(401);
    expect(await refusedStatus(main.wsUrl, { headers: { authorization: `Bearer vt_00000000_${'A'.repeat(43)}` } })).toBe(401);
    expect(await refusedStatus(main.wsUrl, { protocols: ['voicetwin.realtime.v1', `bearer.vt_00000000_${'A'.repeat(43)}`] })).toBe(401);
    const plain = await fetch(main.wsUrl.replace(/^ws/, 'http'), { headers: { authorization: `Bearer ${main.key}` } });
    expect(plain.status).toBe(426);
    expect(await plain.json()).toMatchObject({ code: 'UPGRADE_REQUIRED' });
  });

  it('accepts the key as a bearer.<key> subprotocol (for browsers) and selects voicetwin.realtime.v1', async () => {
    const client = await Client.open(main, { headers: {}, protocols: ['voicetwin.realtime.v1', `bearer.${main.key}`] });
    expect(client.ws.protocol).toBe('voicetwin.realtime.v1');
    const created = client.events.find((e) => e.type === 'session.created')!;
    expect(created.session).toMatchObject({ input_audio_format: 'pcm16', output_audio_format: { codec: 'opus', sample_rate_hz: 48000 }, limits: { max_message_bytes: 256 * 1024 } });
    client.close();
  });

  it('answers ping with pong, sends WebSocket pings, and terminates a client that does not answer them', async () => {
    const client = await Client.open(main);
    let pings = 0;
    client.ws.on('ping', () => pings++);
    client.send({ type: 'ping', id: 'p-1' });
    expect(await client.next((e) => e.type === 'pong')).toMatchObject({ id: 'p-1' });
    await new Promise((r) => setTimeout(r, 800));
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    client.close();

    const silent = await Client.open(main, { autoPong: false });
    const t = Date.now();
    const closed = await silent.closed;
    expect(closed.code).toBe(1006); // terminated, no close frame
    expect(Date.now() - t).toBeLessThan(2000);
  });

  it('closes the connection with 1009 on a message over the size limit, and explains bad events', async () => {
    const client = await Client.open(main);
    client.send({ type: 'nonsense' });
    expect((await client.next((e) => e.type === 'error')).error).toMatchObject({ code: 'UNKNOWN_EVENT' });
    client.send({ type: 'conversation.item.create', event_id: 'e1', item: { content: [] } });
    expect((await client.next((e) => e.type === 'error' && e.error.event_id === 'e1')).error).toMatchObject({ code: 'VALIDATION', type: 'invalid_request_error' });
    client.ws.send('not json');
    expect((await client.next((e) => e.type === 'error' && e.error.code === 'INVALID_JSON')).error.message).toMatch(/JSON/);
    client.send({ type: 'input_audio_buffer.commit', event_id: 'e2' });
    expect((await client.next((e) => e.type === 'error' && e.error.event_id === 'e2')).error.code).toBe('INPUT_AUDIO_BUFFER_EMPTY');
    client.send({ type: 'input_audio_buffer.append', audio: Buffer.alloc(300 * 1024).toString('base64') });
    const closed = await client.closed;
    expect(closed.code).toBe(1009);
  });
});

/** Runs one text turn and returns its events, up to response.done. */
async function textTurn(client: Client, text: string): Promise<{ id: string; done: Event }> {
  const before = client.events.length;
  client.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
  const created = await client.next((e) => e.type === 'response.created' && client.events.indexOf(e) >= before);
  const done = await client.next((e) => e.type === 'response.done' && e.response.id === created.response.id, 60_000);
  return { id: created.response.id as string, done };
}

describe('realtime WebSocket: turns on the offline stack', () => {
  it('a text turn streams the reply text and one decodable Ogg/Opus chunk per sentence, and is stored like any turn', async () => {
    const client = await Client.open(main);
    const { id, done } = await textTurn(client, 'I had a long day at work and I feel tired. What should I do tonight?');
    expect(done.response.status).toBe('completed');
    expect(client.events.some((e) => e.type.startsWith('conversation.item.input_audio_transcription'))).toBe(false);
    const deltas = client.of(id, 'response.text.delta').map((e) => e.delta as string);
    const textDone = client.of(id, 'response.text.done')[0]!;
    expect(deltas.join('').trim().startsWith(textDone.text.slice(0, 20))).toBe(true);
    // A person without a ready voice hears the default voice, labelled as the engine labels it.
    expect(textDone.voice_label).toMatch(/Default voice/);
    const chunks = client.of(id, 'response.audio.delta');
    const sentences = splitSentences(textDone.text);
    expect(sentences.length).toBeGreaterThanOrEqual(2);
    expect(chunks.map((c) => c.text)).toEqual(sentences);
    expect(chunks.map((c) => c.index)).toEqual(sentences.map((_, i) => i));
    for (const chunk of chunks) {
      const bytes = Buffer.from(chunk.delta as string, 'base64');
      expect(bytes.subarray(0, 4).toString('latin1')).toBe('OggS');
      const probe = ffprobeJson(bytes);
      expect(probe.streams[0]).toMatchObject({ codec_name: 'opus', channels: 1 });
      const sec = Number(probe.format.duration);
      expect(Math.abs(sec - chunk.duration_sec)).toBeLessThan(0.1);
      // Speech runs at roughly 8–25 characters per second.
      expect(sec).toBeGreaterThan((chunk.text as string).length / 30);
      expect(sec).toBeLessThan((chunk.text as string).length / 5 + 1);
    }
    const audioDone = client.of(id, 'response.audio.done')[0]!;
    expect(audioDone.chunks).toBe(chunks.length);
    const turns = await main.app.store.history.recent(main.userKey, 10);
    expect(turns.at(-2)).toMatchObject({ role: 'user', text: 'I had a long day at work and I feel tired. What should I do tonight?' });
    expect(turns.at(-1)).toMatchObject({ role: 'twin', text: textDone.text });
    client.close();
  }, 60_000);

  it('voice turns: 16 kHz PCM frames and streamed WebM/Opus chunks give a final transcript and a spoken reply', async () => {
    const wav = makeSpeechWav('Hello twin, I would like to plan my weekend with my friends.', { speedWpm: 140 });
    // What the same recogniser hears in the same audio sent whole (the REST path).
    const expected = (await main.app.engine.transcribe(main.userKey, { bytes: wav, isVoiceNote: true })).text;
    expect(expected.split(' ').length).toBeGreaterThanOrEqual(3);
    const pcm = toPcm(wav, 16000);
    const pcmBytes = Buffer.from(pcm.samples.buffer, pcm.samples.byteOffset, pcm.samples.byteLength);
    const client = await Client.open(main);
    for (let i = 0; i < pcmBytes.length; i += 3200) client.send({ type: 'input_audio_buffer.append', audio: pcmBytes.subarray(i, i + 3200).toString('base64') });
    client.send({ type: 'input_audio_buffer.commit' });
    const committed = await client.next((e) => e.type === 'input_audio_buffer.committed');
    const transcript = await client.next((e) => e.type === 'conversation.item.input_audio_transcription.completed', 120_000);
    expect(transcript.item_id).toBe(committed.item_id);
    expect(transcript.transcript).toBe(expected);
    const created = await client.next((e) => e.type === 'response.created' && e.response.item_id === committed.item_id);
    const done = await client.next((e) => e.type === 'response.done' && e.response.id === created.response.id, 120_000);
    expect(done.response.status).toBe('completed');
    expect(client.of(created.response.id, 'response.audio.delta').length).toBeGreaterThanOrEqual(1);

    // Browsers' MediaRecorder: WebM/Opus in pieces, as binary messages.
    client.send({ type: 'session.update', session: { input_audio_format: 'encoded', language: 'en' } });
    expect((await client.next((e) => e.type === 'session.updated')).session).toMatchObject({ input_audio_format: 'encoded', language: 'en' });
    const webm = toWebm(wav);
    for (let i = 0; i < webm.length; i += 4000) client.ws.send(webm.subarray(i, i + 4000));
    client.send({ type: 'input_audio_buffer.commit' });
    const second = await client.next((e) => e.type === 'input_audio_buffer.committed' && e.item_id !== committed.item_id);
    const heard = await client.next((e) => e.type === 'conversation.item.input_audio_transcription.completed' && e.item_id === second.item_id, 120_000);
    // WebM/Opus is lossy: the recogniser may hear a word differently, but most words are the same.
    const words = new Set(expected.split(' '));
    const same = (heard.transcript as string).split(' ').filter((w) => words.has(w)).length;
    expect(same).toBeGreaterThanOrEqual(Math.ceil(words.size / 2));
    await client.next((e) => e.type === 'response.done' && e.response.item_id === second.item_id, 120_000);
    const turns = await main.app.store.history.recent(main.userKey, 20);
    expect(turns.filter((t) => t.role === 'user').map((t) => t.text)).toEqual(expect.arrayContaining([expected, heard.transcript]));
    client.close();
  }, 300_000);

  it('answers what the engine refuses with its user-facing message, and sets the persona', async () => {
    const client = await Client.open(main);
    const long = 'word '.repeat(1000);
    const { done } = await textTurn(client, long);
    expect(done.response.status).toBe('failed');
    const error = client.events.find((e) => e.type === 'error' && e.error.response_id === done.response.id)!;
    expect(error.error).toMatchObject({ code: 'TEXT_TOO_LONG', type: 'invalid_request_error' });
    expect(error.error.message).toMatch(/at most 4,000/);
    client.send({ type: 'session.update', session: { persona: 'coaching' } });
    expect((await client.next((e) => e.type === 'session.updated')).session.persona).toBe('coaching');
    expect((await main.app.store.users.get(main.userKey))?.persona).toBe('coaching');
    client.close();
  }, 60_000);
});

/** A chat model that writes one sentence every `sentenceMs` (streamed), counting what it was asked. */
class SlowStreamingChat implements ChatModel {
  readonly name = 'slow';
  constructor(
    private readonly sentences: string[],
    private readonly sentenceMs: number,
  ) {}
  async reply(request: ChatRequest): Promise<{ text: string }> {
    return { text: await this.streamReply(request, () => undefined).then((r) => r.text) };
  }
  async streamReply(request: ChatRequest, onDelta: (d: string) => void): Promise<{ text: string }> {
    let text = '';
    for (const s of this.sentences) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, this.sentenceMs);
        request.signal?.addEventListener('abort', () => (clearTimeout(timer), reject(request.signal?.reason)), { once: true });
      });
      const piece = `${text ? ' ' : ''}${s}`;
      text += piece;
      onDelta(piece);
    }
    return { text };
  }
  async extractMemories(): Promise<string[]> {
    return [];
  }
  async insight(): Promise<string> {
    return '';
  }
}

describe('realtime WebSocket: interruption', () => {
  let slow: Running;
  let synthesized: string[];
  const SENTENCES = [
    'First we slow down.',
    'Then we breathe in.',
    'Then we breathe out.',
    'Then we rest a while.',
    'Then we stand up.',
    'Then we stretch.',
    'Then we look around.',
    'Then we smile.',
    'Then we drink water.',
    'And then we walk on.',
  ];

  beforeAll(async () => {
    const local = createLocalProviders();
    synthesized = [];
    const tts: SpeechSynthesizer = { name: local.tts.name, synthesize: async (r) => (synthesized.push(r.text), local.tts.synthesize(r)) };
    slow = await start({ providers: { ...local, tts, chat: new SlowStreamingChat(SENTENCES, 250) } });
  }, 60_000);

  afterAll(async () => {
    await slow?.server.close();
    await slow?.app.close();
  });

  it('response.cancel stops the model, the synthesis and every further audio chunk; the heard part is stored', async () => {
    const client = await Client.open(slow);
    client.send({ type: 'conversation.item.create', item: { content: [{ type: 'input_text', text: 'Help me calm down please' }] } });
    const created = await client.next((e) => e.type === 'response.created');
    const first = await client.next((e) => e.type === 'response.audio.delta');
    expect(first).toMatchObject({ index: 0, text: SENTENCES[0] });
    client.send({ type: 'response.cancel' });
    const done = await client.next((e) => e.type === 'response.done' && e.response.id === created.response.id);
    expect(done.response.status).toBe('cancelled');
    const synthesizedAtCancel = synthesized.length;
    const chunksAtCancel = client.of(created.response.id, 'response.audio.delta').length;
    await new Promise((r) => setTimeout(r, 1500));
    expect(client.of(created.response.id, 'response.audio.delta').length).toBe(chunksAtCancel);
    expect(client.of(created.response.id, 'response.text.done')).toHaveLength(0);
    // Once the cancel is confirmed, no further sentence goes to TTS.
    expect(synthesized.length).toBe(synthesizedAtCancel);
    await slow.app.engine.whenIdle();
    const turns = await slow.app.store.history.recent(slow.userKey, 10);
    expect(turns[0]).toMatchObject({ role: 'user', text: 'Help me calm down please' });
    const twin = turns.find((t) => t.role === 'twin');
    expect(twin?.text.startsWith(SENTENCES[0]!)).toBe(true);
    expect(twin?.text).not.toContain(SENTENCES.at(-1));
    client.close();
  }, 60_000);

  it('the first sentence is heard while the model is still writing', async () => {
    const client = await Client.open(slow);
    const t = performance.now();
    const { id } = await textTurn(client, 'Tell me how to rest');
    const total = performance.now() - t;
    const chunks = client.of(id, 'response.audio.delta');
    expect(chunks.map((c) => c.text)).toEqual(SENTENCES);
    // The model alone takes 10 × 250 ms; chunks that waited for the whole text would all arrive after it.
    expect(total).toBeGreaterThan(2500);
    const firstAudioMs = chunks[0]!.receivedAtMs - t;
    const lastDeltaMs = client.of(id, 'response.text.delta').at(-1)!.receivedAtMs - t;
    expect(firstAudioMs).toBeLessThan(lastDeltaMs);
    expect(firstAudioMs).toBeLessThan(2000);
    client.close();
  }, 60_000);
});
