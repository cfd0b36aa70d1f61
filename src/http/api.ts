/**
 * The REST API under `/v1` (documented in `docs/http.md`; machine-readable at
 * `GET /v1/openapi.json`, readable at `GET /v1/docs`). Every route is described once in
 * {@link apiRoutes}: the description validates requests and generates the OpenAPI document.
 *
 * Auth: `Authorization: Bearer <API key>` (RFC 6750); a key acts for the person who created it,
 * on any channel. Per-key rate limit on top of the server's per-IP one.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { z } from 'zod';
import type { Engine } from '../core/engine.js';
import { silentLogger, type Logger } from '../core/log.js';
import type { InboundMessage } from '../core/types.js';
import { PERSONA_NAMES, PERSONAS } from '../core/personas.js';
import { decodeToPcm, pcmToWav } from '../core/audio/index.js';
import { audioToolPaths, runTool } from '../core/audio/process.js';
import { Readable } from 'node:stream';
import { createHmac, randomUUID } from 'node:crypto';
import { AudioUrlSigner } from './audio-urls.js';
import { streamPersonalExport } from '../core/export.js';
import { SpeechJobs } from './speech-jobs.js';
import { HttpProblem } from './problem.js';
import { bearerToken, JSON_BODY_LIMIT_BYTES } from './server.js';
import { openApiDocument, referencePage, registerRoutes, route, type ApiRoute, type AuthedRequest } from './openapi.js';
import { WebSender, WebTurnTarget, webInboundMessage, type WebReply } from './web-channel.js';
import { registerRealtime, type RealtimeOptions } from './realtime.js';
import multipart from '@fastify/multipart';

/** Options of {@link registerApi}. */
export interface ApiOptions {
  engine: Engine;
  /** Key for audio URL signatures (derived from the data key). */
  urlSigningKey: Buffer;
  /** Base of absolute URLs (HTTP_PUBLIC_URL); default: the request's own scheme and host. */
  publicUrl?: string;
  /** Requests per minute per API key. */
  rateLimitPerKey: number;
  /** Logger of background work (speech jobs) and of the realtime connections; default silent. */
  logger?: Logger;
  /** How long `POST /v1/turns` waits for the reply before answering 504, ms. Default 120 000. */
  turnTimeoutMs?: number;
  /** Settings of the realtime WebSocket `GET /v1/realtime` (docs/realtime.md); defaults when absent. */
  realtime?: Omit<RealtimeOptions, 'engine' | 'logger' | 'authenticate'>;
}

const AudioSchema = z.object({
  url: z.string().describe('Signed URL of the Ogg/Opus voice note, valid until expiresAt'),
  expiresAt: z.string(),
  durationSec: z.number(),
  mimeType: z.string(),
  waveform: z.array(z.number().int().min(0).max(255)).describe('256 amplitude points for a preview'),
});
const ReplySchema = z.object({
  kind: z.enum(['answer', 'info', 'error', 'status', 'insight']),
  text: z.string().optional(),
  voiceLabel: z.string().optional(),
  audio: AudioSchema.optional(),
  buttons: z.array(z.array(z.object({ label: z.string(), data: z.string() }))).optional(),
});
const TurnRequest = z.object({
  text: z.string().min(1).max(100_000).optional().describe('A message or a command (/remember …, /style coaching)'),
  action: z.string().max(64).optional().describe('The data of a button from an earlier reply'),
});
const TurnResponse = z.object({ id: z.string(), replies: z.array(ReplySchema) });
const MemorySchema = z.object({ id: z.string(), text: z.string(), source: z.enum(['explicit', 'extracted']), createdAt: z.string() });
const ApiKeySchema = z.object({ id: z.string(), label: z.string(), createdAt: z.string() });
const VoiceSchema = z.object({
  state: z.enum(['none', 'consent', 'collecting', 'processing', 'ready', 'failed']),
  speechSec: z.number(),
  requiredSpeechSec: z.number().optional(),
  voiceLabel: z.string().optional(),
  approximate: z.boolean().optional(),
  failureReason: z.string().optional(),
  consentPhrase: z.string().optional().describe('While the state is consent: the sentence to read aloud'),
});
const Persona = z.enum(PERSONA_NAMES as unknown as [string, ...string[]]);

const SpeechJobSchema = z.object({
  id: z.string(),
  status: z.enum(['queued', 'running', 'done', 'failed']),
  progress: z.number().min(0).max(1),
  createdAt: z.string(),
  finishedAt: z.string().optional(),
  result: z.object({ url: z.string(), expiresAt: z.string(), durationSec: z.number(), mimeType: z.string() }).optional(),
  error: z.string().optional().describe("Why it failed (the engine's user-facing message)"),
  callback: z.object({ state: z.enum(['delivered', 'failed']), attempts: z.number().int(), status: z.number().int().optional() }).optional(),
});

/** The media types `POST /v1/speech` can answer, by `Accept`. */
const SPEECH_TYPES = ['audio/ogg', 'audio/mpeg', 'audio/wav'] as const;

/** The route descriptions (also the OpenAPI document). */
export function apiRoutes(
  options: ApiOptions,
  signer: AudioUrlSigner,
  web: WebSender,
  exportSigner: AudioUrlSigner = exportLinkSigner(options.urlSigningKey),
  speechJobs?: SpeechJobs,
): ApiRoute[] {
  const { engine } = options;
  const store = engine.store;
  const base = (req: FastifyRequest): string => options.publicUrl ?? `${req.protocol}://${req.host}`;
  const turnTimeoutMs = options.turnTimeoutMs ?? 120_000;
  /** Runs one message through the engine on the web channel; resolves with its replies. */
  const runTurn = async (userKey: string, partial: Partial<InboundMessage>, baseUrl: string): Promise<{ id: string; replies: WebReply[] }> => {
    const id = randomUUID();
    const message = webInboundMessage(userKey, `web:turn:${id}`, partial);
    const target = new WebTurnTarget(userKey, store.blobs, signer, baseUrl);
    await engine.submit(message, target);
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([target.done.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), turnTimeoutMs)))]);
    clearTimeout(timer);
    if (!finished) throw new HttpProblem(504, 'TURN_TIMEOUT', 'Your twin is taking too long to answer; the reply will arrive as a notice (GET /v1/notices).');
    return { id, replies: target.replies };
  };
  const voiceState = async (userKey: string): Promise<z.infer<typeof VoiceSchema>> => {
    const p = await store.profiles.get(userKey);
    if (!p) return { state: 'none', speechSec: 0 };
    return {
      state: p.state,
      speechSec: p.speechSec,
      requiredSpeechSec: p.requiredSpeechSec,
      ...(p.voice ? { voiceLabel: p.voice.label, approximate: p.voice.approximate ?? false } : {}),
      ...(p.failureReason ? { failureReason: p.failureReason } : {}),
      ...(p.state === 'consent' ? { consentPhrase: p.consent.phrase } : {}),
    };
  };
  /** The uploaded `audio` file and text fields of a multipart request (none when not multipart). */
  const upload = async (req: FastifyRequest): Promise<{ audio?: Buffer; fields: Record<string, string> }> => {
    if (!req.isMultipart()) return { fields: {} };
    const fields: Record<string, string> = {};
    let audio: Buffer | undefined;
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'audio' || audio) throw new HttpProblem(400, 'VALIDATION', 'Send one file, in the field "audio".');
        audio = await part.toBuffer();
      } else fields[part.fieldname] = String(part.value);
    }
    return { ...(audio ? { audio } : {}), fields };
  };
  const asVoiceNote = (audio: Buffer): InboundMessage['audio'] => ({ bytes: audio, declaredSizeBytes: audio.length, isVoiceNote: true });
  const EnrollResponse = z.object({ replies: z.array(ReplySchema), voice: VoiceSchema });
  /** Streams the person's export archive (built as it is sent). */
  const sendExport = async (userKey: string, reply: FastifyReply): Promise<FastifyReply> => {
    const identities = await engine.identities.identitiesOf(userKey);
    const sections = await engine.exportSections(userKey);
    const built = await streamPersonalExport({ store, now: Date.now, sections, ...(engine.usage ? { usage: engine.usage } : {}), ...(identities.length > 0 ? { identities } : {}) }, userKey);
    return reply
      .type('application/zip')
      .header('content-disposition', `attachment; filename="${built.fileName}"`)
      .header('cache-control', 'private, no-store')
      .send(Readable.from(built.chunks));
  };
  const routes = [
    route({
      method: 'post',
      path: '/v1/auth/sign-in',
      operationId: 'signIn',
      summary: 'Exchange a one-time sign-in code (printed by voicetwin serve) for an API key',
      tag: 'auth',
      auth: false,
      body: z.object({ code: z.string().min(4).max(32), label: z.string().max(60).optional() }),
      responses: { 201: { description: 'The new key (shown once)', schema: z.object({ apiKey: z.string(), id: z.string() }) } },
      handler: async ({ body, reply }) => {
        const created = await engine.apiKeys.redeemSignInCode(body.code, body.label ?? 'web sign-in');
        if (!created) throw new HttpProblem(401, 'BAD_SIGN_IN_CODE', 'That sign-in code is unknown, expired or already used.');
        reply.code(201);
        return { apiKey: created.key, id: created.record.id };
      },
    }),
    route({
      method: 'get',
      path: '/v1/apikeys',
      operationId: 'listApiKeys',
      summary: 'Your API keys (ids and labels, never the keys)',
      tag: 'auth',
      auth: true,
      responses: { 200: { description: 'Keys', schema: z.object({ keys: z.array(ApiKeySchema) }) } },
      handler: async ({ userKey }) => ({ keys: (await engine.apiKeys.list(userKey)).map((k) => ({ id: k.id, label: k.label, createdAt: new Date(k.createdAtMs).toISOString() })) }),
    }),
    route({
      method: 'post',
      path: '/v1/apikeys',
      operationId: 'createApiKey',
      summary: 'Create another API key for yourself',
      tag: 'auth',
      auth: true,
      body: z.object({ label: z.string().max(60).optional() }),
      responses: { 201: { description: 'The new key (shown once)', schema: z.object({ apiKey: z.string(), id: z.string() }) } },
      handler: async ({ body, userKey, reply }) => {
        const created = await engine.apiKeys.create(userKey, body.label ?? '').catch((err: unknown) => {
          throw new HttpProblem(409, 'TOO_MANY_KEYS', err instanceof Error ? err.message : 'too many keys');
        });
        reply.code(201);
        return { apiKey: created.key, id: created.record.id };
      },
    }),
    route({
      method: 'delete',
      path: '/v1/apikeys/{id}',
      operationId: 'revokeApiKey',
      summary: 'Revoke one of your API keys',
      tag: 'auth',
      auth: true,
      responses: { 204: { description: 'Revoked' } },
      handler: async ({ params, userKey }) => {
        if (!(await engine.apiKeys.revoke(userKey, params.id ?? ''))) throw new HttpProblem(404, 'NOT_FOUND', 'You have no API key with that id.');
      },
    }),
    route({
      method: 'post',
      path: '/v1/link',
      operationId: 'linkIdentity',
      summary: 'Join your twin to the one of another chat: the code comes from /link in that chat (valid 10 minutes, once); your records move there',
      tag: 'auth',
      auth: true,
      body: z.object({ code: z.string().min(8).max(20).describe('The code /link showed, e.g. ABCD-EFGH') }),
      responses: {
        200: {
          description: 'Linked: what moved, and which voice was kept',
          schema: z.object({
            linked: z.literal(true),
            message: z.string(),
            moved: z.object({ historyTurns: z.number().int(), memories: z.number().int(), samples: z.number().int(), usageDays: z.number().int(), apiKeys: z.number().int() }),
            voiceKept: z.enum(['yours', 'theirs', 'none']),
          }),
        },
      },
      handler: async ({ body, userKey }) => {
        const { report, text } = await engine.linkWithCode(userKey, body.code);
        const { historyTurns, memories, samples, usageDays, apiKeys } = report;
        const voiceKept = report.voice.kept === 'source' ? 'yours' : report.voice.kept === 'target' ? 'theirs' : 'none';
        return { linked: true as const, message: text, moved: { historyTurns, memories, samples, usageDays, apiKeys }, voiceKept };
      },
    }),
    route({
      method: 'post',
      path: '/v1/turns',
      operationId: 'createTurn',
      summary: 'Talk to your twin: text (JSON) or a voice note (audio body) in, its replies (text and a voice note URL) out',
      tag: 'conversation',
      auth: true,
      body: TurnRequest,
      audioBody: true,
      responses: { 200: { description: 'The replies', schema: TurnResponse } },
      handler: async ({ req, body, userKey }) => {
        const message: Partial<InboundMessage> = {};
        if (Buffer.isBuffer(body)) {
          message.audio = { bytes: body, declaredSizeBytes: body.length, isVoiceNote: true, ...(req.headers['content-type'] ? { declaredMime: req.headers['content-type'] } : {}) };
        } else {
          const b = body as z.infer<typeof TurnRequest>;
          if (b.action) message.action = b.action;
          else if (b.text?.startsWith('/')) {
            const m = /^\/(\w+)\s*([\s\S]*)$/.exec(b.text);
            if (m) message.command = { name: m[1]!, args: m[2]! };
            else message.text = b.text;
          } else if (b.text) message.text = b.text;
          else throw new HttpProblem(400, 'VALIDATION', 'Send text, an action, or audio.');
        }
        return runTurn(userKey, message, base(req));
      },
    }),
    route({
      method: 'get',
      path: '/v1/notices',
      operationId: 'takeNotices',
      summary: 'Messages your twin sent outside a request (a finished voice clone), removed once read',
      tag: 'conversation',
      auth: true,
      responses: { 200: { description: 'Notices, oldest first', schema: z.object({ notices: z.array(ReplySchema.extend({ at: z.string() })) }) } },
      handler: async ({ req, userKey }) => ({ notices: userKey.startsWith('web:') ? await web.take(userKey.slice(4), base(req)) : [] }),
    }),
    route({
      method: 'post',
      path: '/v1/speech',
      operationId: 'createSpeech',
      summary: 'Text to speech in your twin voice; Accept picks audio/ogg (Opus, default), audio/mpeg or audio/wav',
      tag: 'voice',
      auth: true,
      body: z.object({
        text: z.string().min(1).max(100_000),
        callback_url: z
          .string()
          .max(2000)
          .regex(/^https?:\/\/[^\s]+$/, 'an http:// or https:// URL')
          .optional()
          .describe('Run as a job and POST its outcome here, signed (VoiceTwin-Signature, see docs/http.md)'),
      }),
      responses: {
        200: { description: 'The speech', contentTypes: [...SPEECH_TYPES] },
        202: {
          description: 'A speech job (texts over REPLY_MAX_CHARS, `Prefer: respond-async`, or a callback_url): poll GET /v1/jobs/{id}',
          schema: SpeechJobSchema.extend({ statusUrl: z.string(), callbackSecret: z.string().optional().describe('Key of the callback signature (hex), shown only now') }),
        },
      },
      handler: async ({ req, reply, body, userKey }) => {
        const prefersAsync = /\brespond-async\b/i.test(String(req.headers.prefer ?? ''));
        if (body.callback_url || prefersAsync || body.text.trim().length > engine.settings.limits.replyMaxChars) {
          if (!speechJobs) throw new HttpProblem(503, 'NO_QUEUE', 'Speech jobs need the job queue, which this server runs without.');
          const created = await speechJobs.create(userKey, body.text, base(req), body.callback_url);
          reply.code(202).header('location', `/v1/jobs/${created.view.id}`);
          return { ...created.view, statusUrl: `${base(req)}/v1/jobs/${created.view.id}`, ...(created.callbackSecret ? { callbackSecret: created.callbackSecret } : {}) };
        }
        const type = pickSpeechType(req.headers.accept);
        if (!type) throw new HttpProblem(406, 'NOT_ACCEPTABLE', `Accept one of ${SPEECH_TYPES.join(', ')}.`);
        const spoken = await engine.speak(userKey, body.text);
        let bytes = spoken.voice.oggOpus;
        if (type === 'audio/wav') bytes = pcmToWav(await decodeToPcm(bytes, { sampleRateHz: 24000 }));
        if (type === 'audio/mpeg') {
          const result = await runTool(audioToolPaths().ffmpeg, ['-hide_banner', '-loglevel', 'error', '-i', 'pipe:0', '-f', 'mp3', '-b:a', '64k', 'pipe:1'], { input: bytes, timeoutMs: 60_000, label: 'ffmpeg mp3' });
          if (result.exitCode !== 0) throw new Error(`ffmpeg mp3 encoding failed: ${result.stderr}`);
          bytes = result.stdout;
        }
        reply.header('x-voice-duration-sec', spoken.voice.durationSec.toFixed(2));
        if (spoken.label) reply.header('x-voice-label', spoken.label.replace(/[^\x20-\x7e]/g, ''));
        return reply.type(type === 'audio/ogg' ? 'audio/ogg; codecs=opus' : type).send(bytes);
      },
    }),
    route({
      method: 'get',
      path: '/v1/jobs/{id}',
      operationId: 'getSpeechJob',
      summary: 'A speech job: status, progress (pieces spoken / pieces), and when done a signed URL of the voice note',
      tag: 'voice',
      auth: true,
      responses: { 200: { description: 'The job', schema: SpeechJobSchema } },
      handler: async ({ params, userKey }) => {
        const job = await speechJobs?.get(userKey, params.id ?? '');
        if (!job) throw new HttpProblem(404, 'NOT_FOUND', 'You have no speech job with that id (jobs are kept 7 days).');
        return job;
      },
    }),
    route({
      method: 'post',
      path: '/v1/transcriptions',
      operationId: 'createTranscription',
      summary: 'Speech to text of an audio body (any common format; the container is sniffed from the bytes)',
      tag: 'voice',
      auth: true,
      audioBody: true,
      query: z.object({ language: z.string().regex(/^[a-zA-Z-]{2,12}$/).optional() }),
      responses: { 200: { description: 'The transcript', schema: z.object({ text: z.string(), durationSec: z.number(), languageCode: z.string().optional() }) } },
      handler: async ({ body, query, userKey }) => {
        const bytes = body as unknown as Buffer;
        return engine.transcribe(userKey, { bytes, declaredSizeBytes: bytes.length, isVoiceNote: false }, query.language);
      },
    }),
    route({
      method: 'get',
      path: '/v1/memories',
      operationId: 'listMemories',
      summary: 'What your twin remembers',
      tag: 'memory',
      auth: true,
      responses: { 200: { description: 'Memories', schema: z.object({ memories: z.array(MemorySchema) }) } },
      handler: async ({ userKey }) => ({
        memories: (await store.memories.list(userKey)).map((m) => ({ id: m.id, text: m.text, source: m.source, createdAt: new Date(m.createdAtMs).toISOString() })),
      }),
    }),
    route({
      method: 'post',
      path: '/v1/memories',
      operationId: 'addMemory',
      summary: 'Tell your twin something to remember',
      tag: 'memory',
      auth: true,
      body: z.object({ text: z.string().min(1).max(500) }),
      responses: { 201: { description: 'The memory (an existing one when it was a duplicate)', schema: MemorySchema } },
      handler: async ({ body, userKey, reply }) => {
        const m = await engine.addMemory(userKey, body.text);
        reply.code(201);
        return { id: m.id, text: m.text, source: m.source, createdAt: new Date(m.createdAtMs).toISOString() };
      },
    }),
    route({
      method: 'delete',
      path: '/v1/memories',
      operationId: 'forgetAllMemories',
      summary: 'Forget every memory',
      tag: 'memory',
      auth: true,
      responses: { 204: { description: 'Forgotten' } },
      handler: async ({ userKey }) => {
        await store.memories.deleteAll(userKey);
      },
    }),
    route({
      method: 'delete',
      path: '/v1/memories/{id}',
      operationId: 'forgetMemory',
      summary: 'Forget one memory',
      tag: 'memory',
      auth: true,
      responses: { 204: { description: 'Forgotten' } },
      handler: async ({ params, userKey }) => {
        if (!(await store.memories.remove(userKey, params.id ?? ''))) throw new HttpProblem(404, 'NOT_FOUND', 'There is no memory with that id.');
      },
    }),
    route({
      method: 'get',
      path: '/v1/persona',
      operationId: 'getPersona',
      summary: 'How your twin talks now, and the personas to choose from',
      tag: 'conversation',
      auth: true,
      responses: {
        200: {
          description: 'The persona in use, the available ones and what each is like',
          schema: z.object({ persona: Persona, available: z.array(Persona), descriptions: z.record(z.string(), z.string()) }),
        },
      },
      handler: async ({ userKey }) => ({
        persona: (await engine.person(userKey)).persona,
        available: [...PERSONA_NAMES],
        descriptions: Object.fromEntries(PERSONA_NAMES.map((name) => [name, PERSONAS[name].description])),
      }),
    }),
    route({
      method: 'put',
      path: '/v1/persona',
      operationId: 'setPersona',
      summary: 'Choose how your twin talks',
      tag: 'conversation',
      auth: true,
      body: z.object({ persona: Persona }),
      responses: { 200: { description: 'The persona now in use', schema: z.object({ persona: Persona, available: z.array(Persona) }) } },
      handler: async ({ body, userKey }) => ({ persona: (await engine.setPersonaOf(userKey, body.persona)).persona, available: [...PERSONA_NAMES] }),
    }),
    route({
      method: 'get',
      path: '/v1/conversations',
      operationId: 'getConversation',
      summary: 'Your conversation with your twin (most recent turns, oldest first)',
      tag: 'conversation',
      auth: true,
      query: z.object({ limit: z.coerce.number().int().min(1).max(500).optional() }),
      responses: {
        200: { description: 'Turns', schema: z.object({ turns: z.array(z.object({ role: z.enum(['user', 'twin']), text: z.string(), at: z.string() })) }) },
      },
      handler: async ({ query, userKey }) => ({
        turns: (await store.history.recent(userKey, query.limit ?? 100)).map((t) => ({ role: t.role, text: t.text, at: new Date(t.atMs).toISOString() })),
      }),
    }),
    route({
      method: 'delete',
      path: '/v1/conversations',
      operationId: 'deleteConversation',
      summary: 'Delete your conversation history',
      tag: 'conversation',
      auth: true,
      responses: { 204: { description: 'Deleted' } },
      handler: async ({ userKey }) => {
        await store.history.deleteAll(userKey);
      },
    }),
    route({
      method: 'post',
      path: '/v1/voice/consent',
      operationId: 'giveConsent',
      summary: 'Consent to cloning: without a file, starts enrollment and returns the phrase to read; then multipart with the recording of the phrase (field audio) and confirm=true (typed confirmation, needed with the offline recogniser)',
      tag: 'voice',
      auth: true,
      multipart: { fields: { confirm: '"true": I agree to have my voice cloned (the typed confirmation)' } },
      responses: { 200: { description: "The engine's replies and the voice profile", schema: EnrollResponse } },
      handler: async ({ req, userKey }) => {
        const { audio, fields } = await upload(req);
        const replies: WebReply[] = [];
        const profile = await store.profiles.get(userKey);
        if (!audio && fields.confirm !== 'true') {
          replies.push(...(await runTurn(userKey, { command: { name: 'enroll', args: '' } }, base(req))).replies);
        } else {
          if (profile?.state !== 'consent') throw new HttpProblem(409, 'NO_CONSENT', 'There is no consent waiting: POST /v1/voice/consent without a file first, to get the phrase.');
          if (audio) replies.push(...(await runTurn(userKey, { audio: asVoiceNote(audio) }, base(req))).replies);
          if (fields.confirm === 'true' && (await store.profiles.get(userKey))?.state === 'consent') {
            replies.push(...(await runTurn(userKey, { action: 'consent:agree' }, base(req))).replies);
          }
        }
        return { replies, voice: await voiceState(userKey) };
      },
    }),
    route({
      method: 'post',
      path: '/v1/voice/samples',
      operationId: 'addVoiceSample',
      summary: 'An enrollment sample (multipart, field audio): checked for speech, loudness and noise, then stored encrypted; cloning starts when enough speech is collected',
      tag: 'voice',
      auth: true,
      multipart: { fields: {} },
      responses: { 200: { description: "The engine's replies and the voice profile", schema: EnrollResponse } },
      handler: async ({ req, userKey }) => {
        const { audio } = await upload(req);
        if (!audio) throw new HttpProblem(400, 'VALIDATION', 'Send the sample as multipart/form-data, in the field "audio".');
        const profile = await store.profiles.get(userKey);
        if (profile?.state !== 'collecting') throw new HttpProblem(409, 'NOT_COLLECTING', profile?.state === 'consent' ? 'Consent first: POST /v1/voice/consent.' : 'Samples are taken while enrollment collects them: start with POST /v1/voice/consent.');
        const { replies } = await runTurn(userKey, { audio: asVoiceNote(audio) }, base(req));
        return { replies, voice: await voiceState(userKey) };
      },
    }),
    route({
      method: 'get',
      path: '/v1/voice',
      operationId: 'getVoice',
      summary: 'Your voice profile: state and speech collected',
      tag: 'voice',
      auth: true,
      responses: { 200: { description: 'The profile', schema: VoiceSchema } },
      handler: async ({ userKey }) => voiceState(userKey),
    }),
    route({
      method: 'delete',
      path: '/v1/voice',
      operationId: 'deleteVoice',
      summary: 'Delete your voice: samples, consent recording, the cloned voice (also at the provider)',
      tag: 'voice',
      auth: true,
      responses: { 204: { description: 'Deleted' } },
      handler: async ({ userKey }) => {
        if (!(await engine.deleteVoice(userKey))) throw new HttpProblem(404, 'NOT_FOUND', 'You have no voice profile.');
      },
    }),
    route({
      method: 'get',
      path: '/v1/export',
      operationId: 'exportEverything',
      summary: 'Everything stored about you as a ZIP archive (the same as /export in a chat): JSON of your profile, consent record, history, memories and usage, your samples and consent recording as WAV; streamed',
      tag: 'privacy',
      auth: true,
      responses: { 200: { description: 'The ZIP archive', contentTypes: ['application/zip'] } },
      handler: async ({ userKey, reply }) => sendExport(userKey, reply),
    }),
    route({
      method: 'get',
      path: '/v1/export/{id}',
      operationId: 'downloadExport',
      summary: 'Your export by signed download link (offered in a chat when the archive is over the platform\'s file limit); built when fetched, valid 15 minutes',
      tag: 'privacy',
      auth: false,
      query: z.object({ exp: z.string(), sig: z.string() }),
      responses: { 200: { description: 'The ZIP archive', contentTypes: ['application/zip'] } },
      handler: async ({ params, query, reply }) => {
        const subject = exportSigner.verify(params.id ?? '', query.exp, query.sig);
        if (!subject?.startsWith('export:')) throw new HttpProblem(403, 'BAD_SIGNATURE', 'This download link is invalid or has expired: send /export again for a new one.');
        const userKey = subject.slice('export:'.length);
        if (!(await store.users.get(userKey)) && !(await store.profiles.get(userKey))) throw new HttpProblem(404, 'NOT_FOUND', 'There is nothing stored about this person any more.');
        return sendExport(userKey, reply);
      },
    }),
    route({
      method: 'delete',
      path: '/v1/me',
      operationId: 'deleteEverything',
      summary: 'Delete everything about you (the same as /delete in a chat): the cloned voice at the provider, samples, consent record and recording, history, memories, usage, queued jobs, outbox records and every API key (this one included)',
      tag: 'privacy',
      auth: true,
      responses: {
        200: {
          description: 'What was deleted; the API key used no longer works',
          schema: z.object({
            samples: z.number().int(),
            voice: z.boolean().describe('a cloned voice existed'),
            providerVoice: z.enum(['deleted', 'failed', 'none']).describe('the voice at the cloning provider: deleted, deletion failed (local data is deleted anyway), or none there'),
            historyTurns: z.number().int(),
            memories: z.number().int(),
            blobs: z.number().int().describe('audio files: samples, consent recording, turn audio, synthesis cache'),
            jobs: z.number().int().describe('jobs removed from the queue'),
            identities: z.number().int().describe('linked channel identities of the person whose records were deleted (1 when none were linked)'),
          }),
        },
      },
      handler: async ({ userKey }) => engine.deletePerson(userKey),
    }),
    route({
      method: 'get',
      path: '/v1/audio/{id}',
      operationId: 'getAudio',
      summary: 'A voice note by signed URL (from a reply); decrypted on the fly',
      tag: 'voice',
      auth: false,
      query: z.object({ exp: z.string(), sig: z.string() }),
      responses: { 200: { description: 'Ogg/Opus audio', contentTypes: ['audio/ogg'] } },
      handler: async ({ params, query, reply }) => {
        const blobKey = signer.verify(params.id ?? '', query.exp, query.sig);
        if (!blobKey) throw new HttpProblem(403, 'BAD_SIGNATURE', 'This audio link is invalid or has expired.');
        const bytes = await store.blobs.get(blobKey).catch(() => {
          throw new HttpProblem(404, 'NOT_FOUND', 'This audio no longer exists.');
        });
        return reply.type('audio/ogg; codecs=opus').header('cache-control', 'private, max-age=600').send(bytes);
      },
    }),
  ];
  return routes as unknown as ApiRoute[];
}

/** How long an export download link stays valid, seconds (15 minutes). */
export const EXPORT_LINK_TTL_SEC = 15 * 60;

/** The signer of export download links `/v1/export/<id>?exp=&sig=`, with its own key derived from the URL signing key. */
export function exportLinkSigner(urlSigningKey: Buffer, now: () => number = Date.now): AudioUrlSigner {
  return new AudioUrlSigner(createHmac('sha256', urlSigningKey).update('voicetwin export links v1').digest(), now, '/v1/export');
}

/** The preferred supported type of an `Accept` header (q-values honoured); undefined when none fits. */
export function pickSpeechType(accept: string | undefined): (typeof SPEECH_TYPES)[number] | undefined {
  if (!accept) return 'audio/ogg';
  const ranges = accept
    .split(',')
    .map((part) => {
      const [range = '', ...params] = part.trim().toLowerCase().split(';');
      const q = Number(params.map((p) => p.trim()).find((p) => p.startsWith('q='))?.slice(2) ?? '1');
      return { range: range.trim(), q: Number.isFinite(q) ? q : 0 };
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q);
  for (const { range } of ranges) {
    if (range === '*/*' || range === 'audio/*' || range === 'audio/opus' || range === 'audio/ogg') return 'audio/ogg';
    if (range === 'audio/mpeg' || range === 'audio/mp3') return 'audio/mpeg';
    if (range === 'audio/wav' || range === 'audio/x-wav' || range === 'audio/wave') return 'audio/wav';
  }
  return undefined;
}

/**
 * Registers the API on the server: raw audio bodies, bearer authentication with a per-key rate
 * limit, the routes, `GET /v1/openapi.json` and `GET /v1/docs`.
 */
export async function registerApi(app: FastifyInstance, options: ApiOptions): Promise<void> {
  const { engine } = options;
  const signer = new AudioUrlSigner(options.urlSigningKey);
  const web = new WebSender(engine.store.kv, engine.store.blobs, signer);
  engine.registerSender(web);
  const maxAudioBytes = engine.settings.limits.maxAudioBytes;
  // Raw audio bodies as Buffers, up to the route's body limit (MAX_AUDIO_BYTES on audio routes, 1 MB elsewhere).
  for (const type of [/^audio\//i, 'application/octet-stream']) app.addContentTypeParser(type, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const authenticate: onRequestHookHandler = async (req) => {
    const token = bearerToken(req);
    const record = token ? await engine.apiKeys.verify(token) : undefined;
    if (!record) throw new HttpProblem(401, 'UNAUTHORIZED', token ? 'This API key is unknown or was revoked.' : 'Send an API key as "Authorization: Bearer <key>" (/apikey create in any chat).', { 'www-authenticate': 'Bearer realm="voicetwin"' });
    // The key acts for its person, through any link made since it was created.
    (req as AuthedRequest).userKey = await engine.identities.resolve(record.userKey);
    (req as AuthedRequest).apiKeyId = record.id;
  };
  const perKey = app.rateLimit({
    max: options.rateLimitPerKey,
    timeWindow: 60_000,
    keyGenerator: (req) => `key:${(req as AuthedRequest).apiKeyId ?? req.ip}`,
    errorResponseBuilder: (_req, context) => new HttpProblem(429, 'RATE_LIMITED', `Too many requests with this API key: at most ${context.max} per minute. Retry after ${Math.ceil(context.ttl / 1000)} s.`),
  });
  await app.register(multipart, { limits: { fileSize: maxAudioBytes, files: 1, fields: 5, fieldSize: 1024, parts: 6 }, throwFileSizeLimit: true });
  await registerRealtime(app, { engine, logger: options.logger ?? silentLogger, authenticate: [authenticate, perKey], ...options.realtime });
  const exportSigner = exportLinkSigner(options.urlSigningKey);
  const publicUrl = options.publicUrl?.replace(/\/+$/, '');
  // A chat export over the platform's file limit gets a download link, when the server is reachable from outside.
  if (publicUrl) {
    engine.setExportLinks((userKey) => {
      const signed = exportSigner.sign(`export:${userKey}`, EXPORT_LINK_TTL_SEC);
      return { url: `${publicUrl}${signed.path}`, expiresAtMs: signed.expiresAtMs };
    });
  }
  const speechJobs = engine.queue ? new SpeechJobs({ engine, queue: engine.queue, audioUrl: (blobKey) => signer.sign(blobKey), logger: (options.logger ?? silentLogger).child({ component: 'speech-jobs' }) }) : undefined;
  const routes = apiRoutes(options, signer, web, exportSigner, speechJobs);
  registerRoutes(app, routes, { authenticate: [authenticate, perKey], audioBodyLimitBytes: maxAudioBytes, jsonBodyLimitBytes: JSON_BODY_LIMIT_BYTES });
  const doc = openApiDocument(routes, {
    title: 'VoiceTwin API',
    version: '1',
    description: 'Talk to your voice twin, manage its voice, persona and memories. Errors are RFC 9457 problem details.',
  });
  const page = referencePage(doc);
  app.get('/v1/openapi.json', async () => doc);
  app.get('/v1/docs', async (_req, reply) => reply.type('text/html; charset=utf-8').send(page));
}
