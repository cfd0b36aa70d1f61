/**
 * The two ElevenLabs agent webhooks on the real HTTP server, over real sockets.
 *
 * Post-call fixtures are signed by an independent implementation of ElevenLabs' documented scheme
 * (https://elevenlabs.io/docs/agents-platform/workflows/post-call-webhooks#authentication):
 * `openssl dgst -sha256 -hmac` over `<t>.<raw body>`, hex, sent as `t=<t>,v0=<hex>`.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../../src/core/store/types.js';
import { createHttpServer, type HttpServer } from '../../../src/http/server.js';
import { createElevenLabsClient } from '../../../src/providers/elevenlabs/client.js';
import { ElevenLabsVoiceCloner } from '../../../src/providers/elevenlabs/index.js';
import { TemplateChatModel } from '../../../src/providers/local/template.js';
import { registerElevenLabsRoutes, type ElevenLabsRoutes, type ElevenLabsRoutesDeps } from '../../../src/telephony/elevenlabs/routes.js';
import { TEMPORARY_CLONES_KEY, type TemporaryClone } from '../../../src/telephony/elevenlabs/voices.js';
import { callRecordKey, type CallRecord } from '../../../src/telephony/elevenlabs/call-records.js';
import { ElevenLabsFake } from '../../fakes/elevenlabs/server.js';
import { AGENT_ID, API_KEY, addPerson, addSamples, addVoice, captureLogs, openStore } from './helpers.js';

const INITIATION_SECRET = 'initiation-secret-0123456789abcdef';
const POST_CALL_SECRET = 'wsec_0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const CALLER = '+447700900123';

let eleven: ElevenLabsFake;
let store: Store;
let closeStore: () => Promise<void>;
let server: HttpServer;
let routes: ElevenLabsRoutes;
let logs: ReturnType<typeof captureLogs>;
let linked: Map<string, string>;

beforeAll(async () => {
  eleven = await ElevenLabsFake.start({ apiKey: API_KEY });
});

afterAll(async () => {
  await eleven.close();
});

async function start(overrides: Partial<ElevenLabsRoutesDeps> = {}): Promise<void> {
  const connection = { apiKey: API_KEY, baseUrl: eleven.baseUrl };
  server = await createHttpServer({
    settings: { host: '127.0.0.1', port: 0, headersTimeoutMs: 5000, requestTimeoutMs: 10_000, idleTimeoutMs: 10_000, rateLimitPerIp: 1000, rateLimitPerKey: 1000 },
    logger: logs.logger,
    routes: async (app) => {
      routes = await registerElevenLabsRoutes(app, {
        client: createElevenLabsClient(connection),
        store,
        cloner: new ElevenLabsVoiceCloner({ ...connection, minSpeechSec: 3 }),
        lookupCaller: async (e164) => linked.get(e164),
        initiationSecret: INITIATION_SECRET,
        postCallSecret: POST_CALL_SECRET,
        chat: new TemplateChatModel(),
        logger: logs.logger,
        ...overrides,
      });
    },
  });
  await server.listen();
}

beforeEach(async () => {
  ({ store, close: closeStore } = await openStore());
  logs = captureLogs();
  linked = new Map();
});

afterEach(async () => {
  await routes?.whenIdle();
  await server?.close();
  await closeStore();
});

function initiation(body: unknown, headers: Record<string, string> = { 'x-voicetwin-secret': INITIATION_SECRET }): Promise<Response> {
  return fetch(`${server.url}/telephony/elevenlabs/initiation`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/** ElevenLabs' signature, computed by openssl (not by the code under test). */
function sign(secret: string, timestampSec: number, body: Buffer): string {
  const out = execFileSync('openssl', ['dgst', '-sha256', '-hmac', secret, '-hex'], { input: Buffer.concat([Buffer.from(`${timestampSec}.`, 'utf8'), body]) }).toString('utf8');
  const hex = /([0-9a-f]{64})\s*$/.exec(out)?.[1];
  if (!hex) throw new Error(`unexpected openssl output: ${out}`);
  return `t=${timestampSec},v0=${hex}`;
}

function postCall(body: Buffer, signature: string | undefined): Promise<Response> {
  return fetch(`${server.url}/telephony/elevenlabs/post-call`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(signature !== undefined ? { 'elevenlabs-signature': signature } : {}) },
    body,
  });
}

function transcriptionEvent(conversationId: string, dynamicVariables: Record<string, unknown>, lines: { role: string; message: string }[]): Buffer {
  // Pretty-printed with a non-ASCII character: the signature must cover the bytes exactly as sent.
  return Buffer.from(
    JSON.stringify(
      {
        type: 'post_call_transcription',
        event_timestamp: Math.floor(Date.now() / 1000),
        data: {
          agent_id: AGENT_ID,
          conversation_id: conversationId,
          status: 'done',
          transcript: lines.map((l, i) => ({ ...l, time_in_call_secs: i * 4, tool_calls: [], feedback: null })),
          metadata: { start_time_unix_secs: 1_767_225_600, call_duration_secs: 42, phone_call: { direction: 'inbound', external_number: CALLER, type: 'twilio' } },
          analysis: { call_successful: 'success', transcript_summary: 'Café chat.' },
          conversation_initiation_client_data: { dynamic_variables: dynamicVariables },
        },
      },
      null,
      2,
    ),
    'utf8',
  );
}

describe('POST /telephony/elevenlabs/initiation', () => {
  it('refuses a missing or wrong secret header with 403 and logs no body', async () => {
    await start();
    const body = { caller_id: CALLER, agent_id: AGENT_ID, called_number: '+441234567890', call_sid: 'CA0001' };
    const missing = await initiation(body, {});
    expect(missing.status).toBe(403);
    expect(missing.headers.get('content-type')).toContain('application/problem+json');
    const wrong = await initiation(body, { 'x-voicetwin-secret': `${INITIATION_SECRET.slice(0, -1)}x` });
    expect(wrong.status).toBe(403);
    expect(logs.text()).toContain('"reason":"missing"');
    expect(logs.text()).toContain('"reason":"mismatch"');
    expect(logs.text()).not.toContain(CALLER);
  });

  it('returns the conversation initiation client data with the caller’s voice', async () => {
    await start();
    linked.set(CALLER, 'telegram:10');
    await addPerson(store, 'telegram:10', 'Hana', 'reflective');
    await addVoice(store, 'telegram:10', 'elevenlabs', 'kept-hana');
    await store.memories.add('telegram:10', { id: 'b1', text: 'Hana plays the cello', createdAtMs: 5, source: 'explicit' });

    const res = await initiation({ caller_id: CALLER, agent_id: AGENT_ID, called_number: '+441234567890', call_sid: 'CA0002' });
    expect(res.status).toBe(200);
    const json = (await res.json()) as Record<string, unknown> & { dynamic_variables: Record<string, string>; conversation_config_override: Record<string, Record<string, unknown>> };
    expect(json.type).toBe('conversation_initiation_client_data');
    expect(json.conversation_config_override.tts).toEqual({ voice_id: 'kept-hana' });
    expect(json.conversation_config_override.agent).toMatchObject({ first_message: expect.stringMatching(/^Hi Hana/), prompt: { prompt: expect.stringContaining('Style: reflective') } });
    expect(json.dynamic_variables).toMatchObject({ user_name: 'Hana', persona: 'reflective', memories: 'Hana plays the cello' });
    const record = await store.kv.get<CallRecord>(callRecordKey(json.dynamic_variables.voicetwin_call_ref!));
    expect(record).toMatchObject({ userKey: 'telegram:10', callSid: 'CA0002', voiceUse: 'own' });
  });

  it('answers an unlinked caller in the default voice, and starts a clone for a person enrolled elsewhere', async () => {
    await start({ initiationSecretHeader: 'X-Custom-Secret' });
    const unlinked = await initiation({ caller_id: '+15550000000' }, { 'x-custom-secret': INITIATION_SECRET });
    const u = (await unlinked.json()) as { conversation_config_override: Record<string, unknown>; dynamic_variables: Record<string, unknown> };
    expect(u.conversation_config_override.tts).toBeUndefined();
    expect(u.dynamic_variables.user_name).toBe('friend');

    linked.set(CALLER, 'telegram:11');
    await addPerson(store, 'telegram:11', 'Ivo');
    await addSamples(store, 'telegram:11');
    const clonesBefore = eleven.on('clone').length;
    const res = await initiation({ caller_id: CALLER }, { 'x-custom-secret': INITIATION_SECRET });
    const json = (await res.json()) as { conversation_config_override: { agent: { first_message: string }; tts?: unknown } };
    expect(json.conversation_config_override.tts).toBeUndefined();
    expect(json.conversation_config_override.agent.first_message).toContain('preparing your voice for your next call');
    await routes.whenIdle();
    expect(eleven.on('clone')).toHaveLength(clonesBefore + 1);
    const registry = await store.kv.get<TemporaryClone[]>(TEMPORARY_CLONES_KEY);
    expect(registry?.map((c) => c.userKey)).toEqual(['telegram:11']);
  });

  it('refuses a body without caller_id with 400', async () => {
    await start();
    const res = await initiation({ agent_id: AGENT_ID });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toContain('caller_id');
  });
});

describe('POST /telephony/elevenlabs/post-call', () => {
  async function personWithCall(): Promise<string> {
    await addPerson(store, 'telegram:20', 'Juno');
    await addVoice(store, 'telegram:20', 'elevenlabs', 'kept-juno');
    const callRef = 'ref-juno-0001';
    await store.kv.set<CallRecord>(callRecordKey(callRef), { userKey: 'telegram:20', callSid: 'CA0020', voiceUse: 'own', voiceId: 'kept-juno', startedAtMs: 1 });
    return callRef;
  }

  const lines = [
    { role: 'agent', message: "Hi Juno, it's your twin. What's on your mind?" },
    { role: 'user', message: 'My sister is called Maya and I live in Porto.' },
    { role: 'agent', message: 'Porto sounds lovely.' },
  ];

  it('accepts a valid signature: stores the transcript, extracts memories, deletes expired temporary clones only', async () => {
    await start();
    const callRef = await personWithCall();
    // An expired temporary clone of someone else, and a live one: only the first goes.
    eleven.voices.set('temp-expired', { name: 'x', labels: {}, files: [] });
    eleven.voices.set('temp-live', { name: 'y', labels: {}, files: [] });
    eleven.voices.set('kept-juno', { name: 'Juno', labels: {}, files: [] });
    await store.kv.set<TemporaryClone[]>(TEMPORARY_CLONES_KEY, [
      { userKey: 'telegram:99', voiceId: 'temp-expired', createdAtMs: 0, expiresAtMs: Date.now() - 1000 },
      { userKey: 'telegram:98', voiceId: 'temp-live', createdAtMs: 0, expiresAtMs: Date.now() + 3_600_000 },
    ]);
    const body = transcriptionEvent('conv_ok_1', { voicetwin_call_ref: callRef, user_name: 'Juno' }, lines);

    const res = await postCall(body, sign(POST_CALL_SECRET, Math.floor(Date.now() / 1000), body));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, status: 'stored' });
    await routes.whenIdle();

    const history = await store.history.recent('telegram:20', 10);
    expect(history.map((t) => [t.role, t.text])).toEqual([
      ['twin', lines[0]!.message],
      ['user', lines[1]!.message],
      ['twin', lines[2]!.message],
    ]);
    expect(history[1]!.atMs).toBe(1_767_225_600_000 + 4000);
    const memories = (await store.memories.list('telegram:20')).map((m) => m.text).join(' / ');
    expect(memories).toMatch(/Maya/);
    expect(memories).toMatch(/Porto/);
    expect(eleven.voices.has('temp-expired')).toBe(false);
    expect(eleven.voices.has('temp-live')).toBe(true);
    expect(eleven.voices.has('kept-juno')).toBe(true);
    expect((await store.kv.get<TemporaryClone[]>(TEMPORARY_CLONES_KEY))?.map((c) => c.voiceId)).toEqual(['temp-live']);
    expect(logs.text()).not.toContain('Maya');

    // The same event again (ElevenLabs redelivers) is not stored twice.
    const again = await postCall(body, sign(POST_CALL_SECRET, Math.floor(Date.now() / 1000), body));
    expect(await again.json()).toEqual({ ok: true, status: 'duplicate' });
    expect(await store.history.recent('telegram:20', 10)).toHaveLength(3);
  });

  it('deletes the caller’s temporary clone right after the call when configured, never the kept voice', async () => {
    await start({ deleteCloneAfterCall: true });
    await addPerson(store, 'telegram:21', 'Kit');
    eleven.voices.set('temp-kit', { name: 'k', labels: {}, files: [] });
    await store.kv.set<TemporaryClone[]>(TEMPORARY_CLONES_KEY, [{ userKey: 'telegram:21', voiceId: 'temp-kit', createdAtMs: 0, expiresAtMs: Date.now() + 3_600_000 }]);
    linked.set(CALLER, 'telegram:21');
    // No call reference: the person is found by the caller id.
    const body = transcriptionEvent('conv_kit_1', {}, lines);
    const res = await postCall(body, sign(POST_CALL_SECRET, Math.floor(Date.now() / 1000), body));
    expect(await res.json()).toEqual({ ok: true, status: 'stored' });
    await routes.whenIdle();
    expect(eleven.voices.has('temp-kit')).toBe(false);
    expect(await store.kv.get<TemporaryClone[]>(TEMPORARY_CLONES_KEY)).toEqual([]);
  });

  it.each([
    ['tampered body', 'mismatch', (body: Buffer, now: number) => ({ body: Buffer.from(body.toString('utf8').replace('Porto', 'Paris')), signature: sign(POST_CALL_SECRET, now, body) })],
    ['stale timestamp (31 min)', 'stale', (body: Buffer, now: number) => ({ body, signature: sign(POST_CALL_SECRET, now - 31 * 60, body) })],
    ['future timestamp (10 min)', 'future', (body: Buffer, now: number) => ({ body, signature: sign(POST_CALL_SECRET, now + 10 * 60, body) })],
    ['wrong secret', 'mismatch', (body: Buffer, now: number) => ({ body, signature: sign('wsec_not_the_secret', now, body) })],
    ['malformed header', 'malformed', (body: Buffer, now: number) => ({ body, signature: `t=${now},v1=abc` })],
    ['missing header', 'missing', (body: Buffer) => ({ body, signature: undefined })],
  ])('refuses a %s with 403 (%s), stores nothing and logs no body', async (_name, reason, make) => {
    await start();
    const callRef = await personWithCall();
    const original = transcriptionEvent('conv_bad_1', { voicetwin_call_ref: callRef }, lines);
    const { body, signature } = make(original, Math.floor(Date.now() / 1000));
    const res = await postCall(body, signature);
    expect(res.status).toBe(403);
    expect(await store.history.recent('telegram:20', 10)).toEqual([]);
    expect(logs.text()).toContain('webhook request refused');
    expect(logs.text()).toContain(`"reason":"${reason}"`);
    expect(logs.text()).not.toContain('Porto');
    expect(logs.text()).not.toContain('Paris');
  });

  it('accepts a timestamp 29 minutes old and one 1 minute ahead (clock skew)', async () => {
    await start();
    const callRef = await personWithCall();
    const now = Math.floor(Date.now() / 1000);
    const a = transcriptionEvent('conv_edge_1', { voicetwin_call_ref: callRef }, lines);
    expect((await postCall(a, sign(POST_CALL_SECRET, now - 29 * 60, a))).status).toBe(200);
    const b = transcriptionEvent('conv_edge_2', { voicetwin_call_ref: callRef }, lines);
    expect((await postCall(b, sign(POST_CALL_SECRET, now + 60, b))).status).toBe(200);
  });

  it('stores nothing for a person deleted since the call, or an unknown caller', async () => {
    await start();
    await store.kv.set<CallRecord>(callRecordKey('ref-gone-0001'), { userKey: 'telegram:77', voiceUse: 'own', startedAtMs: 1 });
    const gone = transcriptionEvent('conv_gone_1', { voicetwin_call_ref: 'ref-gone-0001' }, lines);
    expect(await (await postCall(gone, sign(POST_CALL_SECRET, Math.floor(Date.now() / 1000), gone))).json()).toEqual({ ok: true, status: 'unknown-caller' });
    const stranger = transcriptionEvent('conv_stranger_1', {}, lines);
    expect(await (await postCall(stranger, sign(POST_CALL_SECRET, Math.floor(Date.now() / 1000), stranger))).json()).toEqual({ ok: true, status: 'unknown-caller' });
    expect(await store.history.recent('telegram:77', 10)).toEqual([]);
  });

  it('refuses everything when no secret is configured', async () => {
    await start({ postCallSecret: undefined });
    const body = transcriptionEvent('conv_x', {}, lines);
    expect((await postCall(body, sign(POST_CALL_SECRET, Math.floor(Date.now() / 1000), body))).status).toBe(403);
    expect(logs.text()).toContain('"reason":"no-secret"');
  });
});
