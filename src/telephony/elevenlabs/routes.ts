/**
 * The two ElevenLabs agent webhooks on the shared HTTP server.
 *
 * - `POST /telephony/elevenlabs/initiation`: the conversation initiation ("pre-call") webhook that
 *   ElevenLabs calls for a Twilio number it answers itself. Body `{ caller_id, agent_id,
 *   called_number, call_sid }`; answer `{ type: "conversation_initiation_client_data",
 *   dynamic_variables, conversation_config_override }`
 *   (https://elevenlabs.io/docs/agents-platform/customization/personalization/twilio-personalization).
 *   It is not signed: ElevenLabs sends the secret headers the owner configured with the webhook,
 *   and we compare ours in constant time.
 * - `POST /telephony/elevenlabs/post-call`: the post-call webhook, HMAC-signed
 *   (`ElevenLabs-Signature: t=…,v0=…`, see `signature.ts`), read as raw bytes (the signature covers
 *   them exactly), then handled by {@link PostCallProcessor}.
 *
 * Refused requests answer 403 and are logged with the reason, never with the body.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ChatModel, VoiceCloner } from '../../core/providers.js';
import type { Store } from '../../core/store/types.js';
import { HttpProblem } from '../../http/problem.js';
import { buildClientData, toWire, type VoiceUse } from './overrides.js';
import { AgentVoices } from './voices.js';
import { CALL_RECORD_TTL_MS, callRecordKey, newCallRef, type CallRecord } from './call-records.js';
import { PostCallProcessor, postCallSchema } from './post-call.js';
import { WebhookSignatureError, verifyPostCallSignature } from './signature.js';
import { DEFAULT_INITIATION_SECRET_HEADER } from './config.js';

export { DEFAULT_INITIATION_SECRET_HEADER };

/** Paths of the two webhooks. */
export const INITIATION_PATH = '/telephony/elevenlabs/initiation';
export const POST_CALL_PATH = '/telephony/elevenlabs/post-call';
/** Largest post-call body accepted, bytes (a long call's transcript with analysis). */
export const POST_CALL_BODY_LIMIT_BYTES = 4 * 1024 * 1024;

/** Dependencies of {@link registerElevenLabsRoutes}. */
export interface ElevenLabsRoutesDeps {
  /** SDK client (for `webhooks.constructEvent`). */
  client: ElevenLabsClient;
  store: Store;
  /** ElevenLabs cloner of the agent's account: deletes temporary clones, makes them for pre-call calls. */
  cloner: VoiceCloner;
  /** Finds the person a caller id (E.164) is linked to. */
  lookupCaller: (e164: string) => Promise<string | undefined>;
  /** Value of the initiation webhook's secret header; unset → every initiation request is refused. */
  initiationSecret?: string;
  /** Name of that header (default `x-voicetwin-secret`). */
  initiationSecretHeader?: string;
  /** Shared HMAC secret of the post-call webhook; unset → every post-call request is refused. */
  postCallSecret?: string;
  /** The engine's chat model, for memory extraction after a call. */
  chat?: ChatModel;
  /** Delete a person's temporary clone right after their call (default false). */
  deleteCloneAfterCall?: boolean;
  /** Lifetime of a temporary clone, seconds (default 24 h). */
  cloneCacheSec?: number;
  /** Memories sent with each call (default 3). */
  memoryCount?: number;
  logger: Logger;
  now?: () => number;
}

/** Background work started by the webhooks (tests and shutdown wait for it). */
export interface ElevenLabsRoutes {
  whenIdle(): Promise<void>;
}

const initiationSchema = z.object({
  caller_id: z.string().min(1).max(64),
  agent_id: z.string().max(200).optional(),
  called_number: z.string().max(64).optional(),
  call_sid: z.string().max(64).optional(),
});

/** Constant-time equality of two strings of any lengths (compares SHA-256 digests). */
export function secretsEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}

/**
 * Adds both webhooks to `app` (in their own encapsulated scope, so the raw-body parser applies to
 * the post-call route only). Await it before the server listens.
 */
export async function registerElevenLabsRoutes(app: FastifyInstance, deps: ElevenLabsRoutesDeps): Promise<ElevenLabsRoutes> {
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'telephony', webhook: 'elevenlabs' });
  const voices = new AgentVoices({ store: deps.store, cloner: deps.cloner, logger: log, now, ...(deps.cloneCacheSec !== undefined ? { cacheSec: deps.cloneCacheSec } : {}) });
  const postCall = new PostCallProcessor({
    store: deps.store,
    voices,
    lookupCaller: deps.lookupCaller,
    ...(deps.chat ? { chat: deps.chat } : {}),
    deleteCloneAfterCall: deps.deleteCloneAfterCall ?? false,
    logger: log,
    now,
  });
  const background = new Set<Promise<unknown>>();
  const headerName = (deps.initiationSecretHeader ?? DEFAULT_INITIATION_SECRET_HEADER).toLowerCase();
  if (!deps.initiationSecret) log.warn(`${INITIATION_PATH} refuses every request: no initiation secret is configured`);
  if (!deps.postCallSecret) log.warn(`${POST_CALL_PATH} refuses every request: no post-call webhook secret is configured`);

  const refuse = (req: FastifyRequest, reason: string): never => {
    log.warn({ route: req.routeOptions.url, reason, ip: req.ip }, 'webhook request refused');
    throw new HttpProblem(403, 'FORBIDDEN', 'The webhook secret or signature is missing or wrong.');
  };

  await app.register(async (scope) => {
    scope.post(
      INITIATION_PATH,
      {
        onRequest: async (req) => {
          const given = req.headers[headerName];
          if (!deps.initiationSecret) refuse(req, 'no-secret-configured');
          if (typeof given !== 'string' || !secretsEqual(given, deps.initiationSecret!)) refuse(req, given === undefined ? 'missing' : 'mismatch');
        },
      },
      async (req, reply) => {
        const parsed = initiationSchema.safeParse(req.body);
        if (!parsed.success) throw new HttpProblem(400, 'BAD_REQUEST', 'Expected a JSON body with caller_id (and agent_id, called_number, call_sid).');
        const body = parsed.data;
        const userKey = await deps.lookupCaller(body.caller_id);
        const voice = userKey ? await voices.resolve(userKey) : { kind: 'default' as const };
        let voiceId: string | undefined;
        let voiceUse: VoiceUse = 'default-no-voice';
        if (voice.kind === 'kept' || voice.kind === 'cached') {
          voiceId = voice.voiceId;
          voiceUse = 'own';
        } else if (voice.kind === 'needs-clone' && userKey) {
          // ElevenLabs connects during the dialling period and cannot wait for a clone: prepare it for the next call.
          voiceUse = 'default-preparing';
          const user = await deps.store.users.get(userKey);
          const task = voices.clone(userKey, user?.displayName).catch((err: unknown) => log.warn({ err, personId: userKey }, 'voice clone for the next call failed'));
          background.add(task);
          void task.finally(() => background.delete(task));
        }
        const callRef = newCallRef();
        const record: CallRecord = { ...(userKey ? { userKey } : {}), ...(body.call_sid ? { callSid: body.call_sid } : {}), voiceUse, ...(voiceId ? { voiceId } : {}), startedAtMs: now() };
        await deps.store.kv.set(callRecordKey(callRef), record, CALL_RECORD_TTL_MS);
        const data = await buildClientData({ store: deps.store, userKey, voiceId, voiceUse, callRef, ...(deps.memoryCount !== undefined ? { memoryCount: deps.memoryCount } : {}) });
        log.info({ personId: userKey ?? 'unlinked', voice: voiceUse }, 'conversation initiation data served');
        return reply.code(200).type('application/json').send(toWire(data));
      },
    );
  });

  await app.register(async (scope) => {
    // The signature covers the exact bytes: keep them (this scope only).
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: POST_CALL_BODY_LIMIT_BYTES }, (_req, body, done) => done(null, body));
    scope.post(POST_CALL_PATH, { bodyLimit: POST_CALL_BODY_LIMIT_BYTES }, async (req, reply) => {
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const header = req.headers['elevenlabs-signature'];
      let event: unknown;
      try {
        event = await verifyPostCallSignature(deps.client, raw, typeof header === 'string' ? header : undefined, deps.postCallSecret ?? '', now());
      } catch (err) {
        refuse(req, err instanceof WebhookSignatureError ? err.reason : 'error');
      }
      const parsed = postCallSchema.safeParse(event);
      if (!parsed.success) throw new HttpProblem(400, 'BAD_REQUEST', 'The post-call event does not have the documented shape (type, data.conversation_id, data.transcript).');
      const outcome = await postCall.handle(parsed.data);
      return reply.code(200).send({ ok: true, status: outcome.status });
    });
  });

  return {
    async whenIdle() {
      while (background.size > 0) await Promise.allSettled([...background]);
      await postCall.whenIdle();
    },
  };
}
