/**
 * The REST API over real HTTP against the offline application: API keys created in a chat
 * (`/apikey`), used, and revoked; sign-in codes; turns with signed audio URLs; speech in three
 * formats; memories, persona, conversations, voice; body limits and per-key rate limits. Every
 * response is validated against the generated OpenAPI document.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServer } from '../../src/http/server.js';
import { exportLinkSigner, registerApi } from '../../src/http/api.js';
import { pcmToWav } from '../../src/core/audio/index.js';
import type { ExportDocument } from '../../src/core/export.js';
import { infoZipTest, readZip } from '../helpers/unzip.js';
import { silentLogger } from '../../src/core/log.js';
import { ConsoleChannel } from '../../src/bots/console.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { makeSpeechWav, SAMPLE_SENTENCES, toOggOpus } from '../helpers/audio.js';
import { OpenApiChecker, TEST_HTTP_SETTINGS } from './helpers.js';

/** Response bodies, checked against the OpenAPI document rather than typed here. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

let app: TestApp;
let server: HttpServer;
let base: string;
let api: OpenApiChecker;
let key: string;
const signingKey = randomBytes(32);

beforeAll(async () => {
  app = await createTestApp({ env: { MAX_AUDIO_BYTES: '400000', INSIGHT_EVERY: '0', MEMORY_EVERY: '0' } });
  server = await createHttpServer({
    settings: TEST_HTTP_SETTINGS,
    logger: silentLogger,
    routes: (f) => registerApi(f, { engine: app.engine, urlSigningKey: signingKey, rateLimitPerKey: 10_000 }),
  });
  ({ url: base } = await server.listen());
  const doc = (await (await fetch(`${base}/v1/openapi.json`)).json()) as Json;
  api = new OpenApiChecker(doc);
  key = (await app.engine.apiKeys.create('web:tester', 'tests')).key;
}, 60_000);

afterAll(async () => {
  await server?.close();
  await app?.close();
});

const auth = (k = key) => ({ authorization: `Bearer ${k}` });
async function call(method: string, docPath: string, init: { path?: string; body?: unknown; headers?: Record<string, string>; raw?: Buffer } = {}) {
  const headers: Record<string, string> = { ...auth(), ...init.headers };
  let body: Uint8Array | string | undefined;
  if (init.raw) body = new Uint8Array(init.raw);
  else if (init.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(init.body);
  }
  const res = await fetch(`${base}${init.path ?? docPath}`, { method, headers, ...(body ? { body } : {}) });
  const { json, bytes } = await api.check(method, docPath, res);
  return { status: res.status, headers: res.headers, json: json as Json, bytes };
}

describe('REST API', () => {
  it('publishes an OpenAPI 3.1 document and a reference page', async () => {
    const doc = (await (await fetch(`${base}/v1/openapi.json`)).json()) as Json;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/turns', '/v1/speech', '/v1/transcriptions', '/v1/memories', '/v1/persona', '/v1/conversations', '/v1/voice', '/v1/audio/{id}']));
    const page = await fetch(`${base}/v1/docs`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('POST /v1/turns');
  });

  it('refuses requests without a key or with an unknown key (401 problem)', async () => {
    const none = await fetch(`${base}/v1/memories`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    await api.check('GET', '/v1/memories', none);
    const wrong = await call('GET', '/v1/memories', { headers: auth(`vt_00000000_${'A'.repeat(43)}`) });
    expect(wrong.status).toBe(401);
    expect(wrong.json).toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it('creates a key with /apikey in a chat, uses it, and revokes it', async () => {
    const chat = new ConsoleChannel({ outDir: await mkdtemp(path.join(tmpdir(), 'vt-apikey-')), write: () => undefined });
    const say = (text: string, n: number) =>
      app.engine.handle({ id: `console:apikey:${n}`, channel: 'console', chatId: 'ada', userId: 'ada', receivedAtMs: Date.now(), command: { name: 'apikey', args: text } }, chat);
    await say('create laptop', 1);
    const created = /\n(vt_[0-9a-f]{8}_[\w-]{43})\n/.exec(chat.records.at(-1)!.reply.text!);
    expect(created).not.toBeNull();
    const chatKey = created![1]!;
    // The key acts for the chat's person: a memory stored over HTTP is theirs.
    const stored = await call('POST', '/v1/memories', { body: { text: 'my sister is called Ana' }, headers: auth(chatKey) });
    expect(stored.status).toBe(201);
    expect((await app.store.memories.list('console:ada')).map((m) => m.text)).toContain('my sister is called Ana');
    await say('list', 2);
    expect(chat.records.at(-1)!.reply.text).toContain('laptop');
    expect(chat.records.at(-1)!.reply.text).not.toContain(chatKey);
    const id = chatKey.slice(3, 11);
    await say(`revoke ${id}`, 3);
    expect((await call('GET', '/v1/memories', { headers: auth(chatKey) })).status).toBe(401);
    // Only the hash is stored.
    expect(JSON.stringify(await app.store.kv.get(`apikeys:console:ada`))).not.toContain(chatKey);
  });

  it('signs in with a one-time code', async () => {
    const code = await app.engine.apiKeys.createSignInCode('web:owner');
    const res = await call('POST', '/v1/auth/sign-in', { body: { code }, headers: {} });
    expect(res.status).toBe(201);
    const again = await call('POST', '/v1/auth/sign-in', { body: { code }, headers: {} });
    expect(again.status).toBe(401);
    const keys = await call('GET', '/v1/apikeys', { headers: auth(res.json.apiKey) });
    expect(keys.json.keys).toHaveLength(1);
  });

  it('answers a text turn with a reply and a signed, playable voice note URL', async () => {
    const res = await call('POST', '/v1/turns', { body: { text: 'I had a long day at work today.' } });
    expect(res.status).toBe(200);
    const answer = (res.json.replies as { kind: string; text?: string; audio?: { url: string } }[]).find((r) => r.kind === 'answer')!;
    expect(answer.text).toBeTruthy();
    const audio = await fetch(answer.audio!.url);
    const { bytes } = await api.check('GET', '/v1/audio/{id}', audio);
    expect(audio.status).toBe(200);
    expect(bytes!.subarray(0, 4).toString()).toBe('OggS');
    // The link does not reveal whose audio it is.
    expect(Buffer.from(/\/v1\/audio\/([\w-]+)/.exec(answer.audio!.url)![1]!, 'base64url').toString('latin1')).not.toContain('web:tester');
    // A tampered signature or an expired link is refused.
    const tampered = await fetch(answer.audio!.url.replace(/sig=./, 'sig=A'));
    expect(tampered.status).toBe(403);
    await api.check('GET', '/v1/audio/{id}', tampered);
    const expired = await fetch(answer.audio!.url.replace(/exp=\d+/, 'exp=1000'));
    expect(expired.status).toBe(403);
    await expired.arrayBuffer();
    // The turn is in the conversation, then deleted.
    const conv = await call('GET', '/v1/conversations');
    expect(conv.json.turns).toHaveLength(2);
    expect((await call('DELETE', '/v1/conversations')).status).toBe(204);
    expect((await call('GET', '/v1/conversations')).json.turns).toHaveLength(0);
  }, 60_000);

  it('runs chat commands sent as turns, with the engine user-facing errors as problems', async () => {
    const res = await call('POST', '/v1/turns', { body: { text: '/remember I live in Lisbon' } });
    expect(res.json.replies[0]).toMatchObject({ kind: 'info' });
    const tooLong = await call('POST', '/v1/turns', { body: { text: 'x'.repeat(5000) } });
    expect(tooLong.status).toBe(200);
    expect(tooLong.json.replies[0]).toMatchObject({ kind: 'error' });
    // Over REPLY_MAX_CHARS (600) speech becomes a job (below); over 20 times that it is refused.
    const speechTooLong = await call('POST', '/v1/speech', { body: { text: 'word '.repeat(2500) } });
    expect(speechTooLong.status).toBe(422);
    expect(speechTooLong.json).toMatchObject({ code: 'TEXT_TOO_LONG' });
    expect(String(speechTooLong.json.detail)).toMatch(/A speech job speaks at most 12000 characters/);
  }, 60_000);

  it('speaks text as Ogg/Opus, MP3 or WAV by Accept', async () => {
    const ogg = await call('POST', '/v1/speech', { body: { text: 'Good morning.' } });
    expect(ogg.bytes!.subarray(0, 4).toString()).toBe('OggS');
    const wav = await call('POST', '/v1/speech', { body: { text: 'Good morning.' }, headers: { accept: 'audio/wav' } });
    expect(wav.bytes!.subarray(0, 4).toString()).toBe('RIFF');
    const mp3 = await call('POST', '/v1/speech', { body: { text: 'Good morning.' }, headers: { accept: 'audio/mpeg' } });
    expect(mp3.bytes!.subarray(0, 3).toString() === 'ID3' || (mp3.bytes![0] === 0xff && (mp3.bytes![1]! & 0xe0) === 0xe0)).toBe(true);
    const none = await call('POST', '/v1/speech', { body: { text: 'Good morning.' }, headers: { accept: 'text/plain' } });
    expect(none.status).toBe(406);
  }, 60_000);

  it('transcribes an audio body, and refuses one over MAX_AUDIO_BYTES with 413', async () => {
    const wav = makeSpeechWav('hello world');
    const res = await call('POST', '/v1/transcriptions', { raw: wav, headers: { 'content-type': 'audio/wav' } });
    expect(res.status).toBe(200);
    expect(res.json.durationSec).toBeGreaterThan(0);
    const big = await call('POST', '/v1/transcriptions', { raw: Buffer.alloc(500_000), headers: { 'content-type': 'audio/wav' } });
    expect(big.status).toBe(413);
    const json = await call('POST', '/v1/memories', { raw: Buffer.alloc(1_100_000, 0x20), headers: { 'content-type': 'application/json' } });
    expect(json.status).toBe(413);
  }, 60_000);

  it('manages memories, persona and the voice profile', async () => {
    const added = await call('POST', '/v1/memories', { body: { text: 'I play the cello' } });
    const list = await call('GET', '/v1/memories');
    expect(list.json.memories).toEqual(expect.arrayContaining([expect.objectContaining({ id: added.json.id, text: 'I play the cello', source: 'explicit' })]));
    expect((await call('DELETE', '/v1/memories/{id}', { path: `/v1/memories/${added.json.id}` })).status).toBe(204);
    expect((await call('DELETE', '/v1/memories/{id}', { path: `/v1/memories/${added.json.id}` })).status).toBe(404);
    expect((await call('DELETE', '/v1/memories')).status).toBe(204);
    expect((await call('PUT', '/v1/persona', { body: { persona: 'coaching' } })).json).toMatchObject({ persona: 'coaching' });
    const persona = await call('GET', '/v1/persona');
    expect(persona.json).toMatchObject({ persona: 'coaching', available: expect.arrayContaining(['supportive', 'coaching']) });
    expect(persona.json.descriptions.coaching).toBe('Goal-focused; asks what the next step is.');
    const bad = await call('PUT', '/v1/persona', { body: { persona: 'pirate' } });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ code: 'VALIDATION' });
    expect((await call('GET', '/v1/voice')).json).toMatchObject({ state: 'none', speechSec: 0 });
    expect((await call('DELETE', '/v1/voice')).status).toBe(404);
    expect(api.checked).toBeGreaterThan(20);
  });

  it('enrolls over HTTP: consent phrase, spoken consent with typed confirmation, a sample', async () => {
    const enrollKey = (await app.engine.apiKeys.create('web:enroller')).key;
    const form = (audio?: Buffer, fields: Record<string, string> = {}): FormData => {
      const f = new FormData();
      for (const [k, v] of Object.entries(fields)) f.append(k, v);
      if (audio) f.append('audio', new Blob([new Uint8Array(audio)], { type: 'audio/ogg' }), 'clip.ogg');
      return f;
    };
    const post = async (docPath: string, body?: FormData) => {
      const res = await fetch(`${base}${docPath}`, { method: 'POST', headers: auth(enrollKey), ...(body ? { body } : {}) });
      return { status: res.status, json: (await api.check('POST', docPath, res)).json as Json };
    };
    const early = await post('/v1/voice/samples', form(toOggOpus(makeSpeechWav('too early'))));
    expect(early.status).toBe(409);
    const started = await post('/v1/voice/consent');
    expect(started.status).toBe(200);
    expect(started.json.voice.state).toBe('consent');
    expect(started.json.voice.consentPhrase).toMatch(/^I agree that VoiceTwin may clone my voice\. My code word is \w+\.$/);
    const phrase = /"(I agree[^"]+)"/.exec(started.json.replies.map((r: { text?: string }) => r.text ?? '').join('\n'))?.[1] ?? 'I agree that VoiceTwin may clone my voice.';
    const consent = await post('/v1/voice/consent', form(toOggOpus(makeSpeechWav(phrase)), { confirm: 'true' }));
    expect(consent.status).toBe(200);
    expect(consent.json.voice.state, JSON.stringify(consent.json.replies)).toBe('collecting');
    const sample = await post('/v1/voice/samples', form(toOggOpus(makeSpeechWav(SAMPLE_SENTENCES))));
    expect(sample.status).toBe(200);
    expect(sample.json.voice.speechSec).toBeGreaterThan(0);
    const big = await post('/v1/voice/samples', form(Buffer.alloc(450_000)));
    expect(big.status).toBe(413);
  }, 120_000);

  it('links the web person to a chat person with POST /v1/link; the key then acts for the joined person', async () => {
    const webKey = (await app.engine.apiKeys.create('web:linker', 'linker')).key;
    expect((await call('POST', '/v1/memories', { body: { text: 'I keep bees' }, headers: auth(webKey) })).status).toBe(201);
    const texts: string[] = [];
    const target = {
      reply: async (r: { text?: string }) => void texts.push(r.text ?? ''),
      activity: async () => undefined,
      status: async () => async () => undefined,
    };
    await app.engine.handle({ id: 'console:link:1', channel: 'console', chatId: 'bea', userId: 'bea', receivedAtMs: Date.now(), command: { name: 'link', args: '' } }, target);
    const code = /([A-Z0-9]{4}-[A-Z0-9]{4})/.exec(texts.at(-1) ?? '')?.[1];
    expect(code).toBeDefined();
    const bad = await call('POST', '/v1/link', { body: { code: 'ZZZZ-ZZZZ' }, headers: auth(webKey) });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ code: 'BAD_LINK_CODE' });
    const linked = await call('POST', '/v1/link', { body: { code }, headers: auth(webKey) });
    expect(linked.status).toBe(200);
    expect(linked.json).toMatchObject({ linked: true, moved: { memories: 1, apiKeys: 1 }, voiceKept: 'none' });
    expect(linked.json.message).toMatch(/^Linked: /);
    expect((await call('POST', '/v1/link', { body: { code }, headers: auth(webKey) })).status).toBe(400);
    // The same key now acts for the chat's person, who has the memory.
    const memories = await call('GET', '/v1/memories', { headers: auth(webKey) });
    expect(memories.json.memories.map((m: { text: string }) => m.text)).toContain('I keep bees');
    expect((await app.store.memories.list('console:bea')).map((m) => m.text)).toContain('I keep bees');
    expect(await app.store.memories.list('web:linker')).toEqual([]);
  });

  it('limits requests per API key with 429 and Retry-After', async () => {
    const limited = await createHttpServer({
      settings: TEST_HTTP_SETTINGS,
      logger: silentLogger,
      routes: (f) => registerApi(f, { engine: app.engine, urlSigningKey: randomBytes(32), rateLimitPerKey: 2 }),
    });
    try {
      const { url } = await limited.listen();
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 3; i++) {
        last = await fetch(`${url}/v1/voice`, { headers: auth() });
        statuses.push(last.status);
        if (i < 2) await api.check('GET', '/v1/voice', last);
      }
      expect(statuses).toEqual([200, 200, 429]);
      expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
      const { json } = await api.check('GET', '/v1/voice', last!);
      expect(json).toMatchObject({ status: 429, code: 'RATE_LIMITED' });
    } finally {
      await limited.close();
    }
  });

  it('GET /v1/export streams the zip of everything stored; a signed download link serves it without a key', async () => {
    const person = 'web:exporter';
    const exporterKey = (await app.engine.apiKeys.create(person, 'export')).key;
    const marker = `bluebird${randomBytes(5).toString('hex')}`;
    const samples = new Int16Array(16000).map((_, i) => Math.round(6000 * Math.sin(i / 7)));
    const wav = pcmToWav({ samples, sampleRateHz: 16000 });
    const blobKey = await app.store.blobs.put(person, wav, 'sample');
    await app.store.samples.add({ id: 's1', userKey: person, blobKey, durationSec: 1, speechSec: 1, loudnessDb: -20, snrDb: 30, sourceMessageId: 'm1', createdAtMs: 1 });
    await call('POST', '/v1/memories', { body: { text: `PIN hint ${marker}` }, headers: auth(exporterKey) });
    // History written directly: a spoken turn takes seconds with the offline voice on a loaded machine.
    await app.store.history.append(person, { role: 'user', text: `my hearing ${marker}`, atMs: Date.now() }, { role: 'twin', text: 'I hear you', atMs: Date.now() });

    const res = await call('GET', '/v1/export', { headers: auth(exporterKey) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="voicetwin-export-\d{4}-\d{2}-\d{2}\.zip"$/);
    expect(res.headers.get('transfer-encoding')).toBe('chunked'); // streamed, not buffered with a length
    const tested = infoZipTest(res.bytes!);
    if (tested !== undefined) expect(tested).toBe(true);
    const files = readZip(res.bytes!);
    const doc = JSON.parse(files.get('voicetwin-export.json')!.toString('utf8')) as ExportDocument;
    expect(doc.userKey).toBe(person);
    expect(doc.history.map((t) => t.text)).toContain(`my hearing ${marker}`);
    expect(doc.memories.map((m) => m.text)).toEqual([`PIN hint ${marker}`]);
    expect(files.get(doc.samples[0]!.file!)!.equals(wav)).toBe(true);

    // The download link a chat reply offers: no API key needed, only a valid, unexpired signature.
    const signed = exportLinkSigner(signingKey).sign(`export:${person}`);
    const [linkPath, query] = signed.path.split('?') as [string, string];
    const viaLink = await call('GET', '/v1/export/{id}', { path: signed.path, headers: { authorization: '' } });
    expect(viaLink.status).toBe(200);
    expect(readZip(viaLink.bytes!).get(doc.samples[0]!.file!)!.equals(wav)).toBe(true);
    const forged = await call('GET', '/v1/export/{id}', { path: `${linkPath}?${query.replace(/sig=./, 'sig=A')}`, headers: { authorization: '' } });
    expect(forged.status).toBe(403);
    expect(forged.json).toMatchObject({ code: 'BAD_SIGNATURE' });
    const expired = exportLinkSigner(signingKey, () => Date.now() - 3_600_000).sign(`export:${person}`);
    expect((await call('GET', '/v1/export/{id}', { path: expired.path, headers: { authorization: '' } })).status).toBe(403);
    // An audio link signed with the audio signer is not an export link.
    expect((await call('GET', '/v1/export/{id}', { path: `/v1/export/${linkPath.slice('/v1/export/'.length)}?exp=${signed.expiresAtMs / 1000}&sig=${'x'.repeat(43)}`, headers: { authorization: '' } })).status).toBe(403);
  }, 60_000);

  it('DELETE /v1/me deletes everything of the person and revokes their keys', async () => {
    const person = 'web:leaver';
    const leaverKey = (await app.engine.apiKeys.create(person, 'leaving')).key;
    const other = (await app.engine.apiKeys.create(person, 'second')).key;
    await app.store.blobs.put(person, pcmToWav({ samples: new Int16Array(1600), sampleRateHz: 16000 }), 'consent');
    await call('POST', '/v1/memories', { body: { text: 'I live on Elm Street' }, headers: auth(leaverKey) });
    await app.store.history.append(person, { role: 'user', text: 'hello twin', atMs: Date.now() }, { role: 'twin', text: 'hello', atMs: Date.now() });
    await app.store.users.put({
      key: person, channel: 'web', address: { channel: 'web', chatId: 'leaver' }, persona: 'supportive',
      sendTextWithVoice: false, optedOut: false, blocked: false, messageCount: 1, createdAtMs: 1, updatedAtMs: 1,
    });
    await app.store.kv.set(`speechjob:${person}:j1`, { id: 'j1', userKey: person, state: 'done' });
    await app.store.kv.set('speechjob:web:leaver-not:j2', { id: 'j2', userKey: 'web:leaver-not', state: 'done' });
    const before = await app.store.summarize(person);
    expect(before.historyTurns).toBeGreaterThanOrEqual(2);

    const res = await call('DELETE', '/v1/me', { headers: auth(leaverKey) });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ samples: 0, voice: false, providerVoice: 'none', historyTurns: before.historyTurns, memories: 1, blobs: before.blobKeys.length });
    expect(res.json.blobs).toBeGreaterThanOrEqual(1);
    const after = await app.store.summarize(person);
    expect(after).toMatchObject({ samples: [], historyTurns: 0, memories: [], blobKeys: [] });
    expect(after.user).toBeUndefined();
    expect(await app.store.kv.get(`speechjob:${person}:j1`)).toBeUndefined();
    expect(await app.store.kv.get('speechjob:web:leaver-not:j2')).toMatchObject({ id: 'j2' }); // another person's stays
    for (const k of [leaverKey, other]) {
      const gone = await call('GET', '/v1/voice', { headers: auth(k) });
      expect(gone.status).toBe(401);
    }
    // The export link of a deleted person serves nothing.
    const signed = exportLinkSigner(signingKey).sign(`export:${person}`);
    expect((await call('GET', '/v1/export/{id}', { path: signed.path, headers: { authorization: '' } })).status).toBe(404);
  }, 60_000);

  it('runs a long text as a speech job: 202, progress by GET /v1/jobs/{id}, a signed result URL, an HMAC-signed callback', async () => {
    const received: { headers: IncomingHttpHeaders; body: string }[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const port = (receiver.address() as { port: number }).port;
    try {
      const limit = app.engine.settings.limits.replyMaxChars;
      const sentence = 'The river was calm this morning and the boats were still. ';
      const text = sentence.repeat(Math.ceil((limit + 1) / sentence.length)).trim();
      expect(text.length).toBeGreaterThan(limit);
      const bad = await call('POST', '/v1/speech', { body: { text: 'hi', callback_url: 'ftp://example.com/x' } });
      expect(bad.status).toBe(400);

      const created = await call('POST', '/v1/speech', { body: { text, callback_url: `http://127.0.0.1:${port}/done` } });
      expect(created.status).toBe(202);
      expect(created.json).toMatchObject({ status: 'queued', progress: 0 });
      expect(created.headers.get('location')).toBe(`/v1/jobs/${created.json.id}`);
      expect(created.json.callbackSecret).toMatch(/^[0-9a-f]{64}$/);
      const id = created.json.id as string;

      let job: Json;
      const progress: number[] = [];
      const deadline = Date.now() + 90_000;
      do {
        await new Promise((r) => setTimeout(r, 200));
        job = (await call('GET', '/v1/jobs/{id}', { path: `/v1/jobs/${id}` })).json;
        progress.push(job.progress);
      } while (job.status !== 'done' && job.status !== 'failed' && Date.now() < deadline);
      expect(job.status, job.error).toBe('done');
      expect(job.progress).toBe(1);
      expect(progress).toEqual([...progress].sort((a, b) => a - b)); // never goes back
      const audio = await fetch(job.result.url);
      expect(audio.status).toBe(200);
      const ogg = Buffer.from(await audio.arrayBuffer());
      expect(ogg.subarray(0, 4).toString('latin1')).toBe('OggS');
      expect(job.result.durationSec).toBeGreaterThan(2);

      // The callback: the job's JSON, signed with the secret given at creation.
      const until = Date.now() + 10_000;
      while (received.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(received).toHaveLength(1);
      const [{ headers, body }] = received as [{ headers: IncomingHttpHeaders; body: string }];
      expect(headers['content-type']).toBe('application/json');
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(headers['voicetwin-signature']));
      expect(m).not.toBeNull();
      expect(Math.abs(Number(m![1]) - Date.now() / 1000)).toBeLessThan(120);
      expect(m![2]).toBe(createHmac('sha256', Buffer.from(created.json.callbackSecret, 'hex')).update(`${m![1]}.${body}`).digest('hex'));
      expect(JSON.parse(body)).toMatchObject({ id, status: 'done', progress: 1, result: { durationSec: job.result.durationSec } });
      const after = (await call('GET', '/v1/jobs/{id}', { path: `/v1/jobs/${id}` })).json;
      expect(after.callback).toEqual({ state: 'delivered', attempts: 1, status: 204 });

      // Another person's key does not see it.
      const other = (await app.engine.apiKeys.create('web:someone-else')).key;
      expect((await call('GET', '/v1/jobs/{id}', { path: `/v1/jobs/${id}`, headers: auth(other) })).status).toBe(404);
      expect((await call('GET', '/v1/jobs/{id}', { path: '/v1/jobs/no-such-job' })).status).toBe(404);
    } finally {
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  }, 120_000);
});
