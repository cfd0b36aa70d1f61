/**
 * The phone line's routes on the shared HTTP server (docs/telephony.md):
 * - `POST /telephony/twilio/voice`: Twilio's voice webhook for an incoming call
 *   (https://www.twilio.com/docs/voice/twiml#twilios-request-to-your-application), answered at once
 *   with TwiML: an unlinked caller hears how to link and a `<Gather>` for the code
 *   (https://www.twilio.com/docs/voice/twiml/gather); a linked one is handed to the {@link CallMode};
 * - `POST /telephony/twilio/link`: the `<Gather>` action (`Digits` or `SpeechResult`);
 * - `POST /telephony/twilio/status`: status callbacks (`CallStatus`, `CallDuration`), recorded in
 *   the call log (https://www.twilio.com/docs/voice/api/call-resource#statuscallback); Twilio does
 *   not read this response's body (error 17583), so it is empty;
 * - `GET /telephony/twilio/media`: the Media Streams WebSocket of the pipeline mode.
 * Every request must carry a valid `X-Twilio-Signature` (https://www.twilio.com/docs/usage/security);
 * a bad one is answered 403 and logged without the body.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import websocket from '@fastify/websocket';
import twilio from 'twilio';
import type { Engine } from '../core/engine.js';
import type { Logger } from '../core/log.js';
import { HttpProblem } from '../http/problem.js';
import { CallLog } from './call-log.js';
import { maskNumber, normaliseE164, parseSpokenCode, personForCaller, redeemLinkCode } from './links.js';
import { MediaSession, type PhoneTurnTimings } from './media-session.js';
import { MEDIA_STREAM_PATH, type CallMode } from './modes.js';
import { isTwilioSignatureValid, publicRequestUrl, TWILIO_SIGNATURE_HEADER } from './twilio-signature.js';
import type { VadSettings } from './vad.js';

/** Paths of the Twilio webhooks. */
export const TWILIO_PATHS = {
  voice: '/telephony/twilio/voice',
  link: '/telephony/twilio/link',
  status: '/telephony/twilio/status',
  media: MEDIA_STREAM_PATH,
} as const;

/** Wrong codes (or silences) accepted in one call before it is ended. */
export const MAX_LINK_ATTEMPTS = 3;

/** Largest Twilio webhook body accepted, bytes (form fields only). */
const FORM_BODY_LIMIT_BYTES = 64 * 1024;

/** Options of {@link registerTelephony}. */
export interface TelephonyOptions {
  engine: Engine;
  logger: Logger;
  /** TWILIO_AUTH_TOKEN: the key of every signature check. */
  authToken: string;
  /** HTTP_PUBLIC_URL: the base URL Twilio calls (signatures cover the URL Twilio requested). */
  publicUrl?: string;
  /** The mode of PHONE_MODE. */
  mode: CallMode;
  maxCallSec: number;
  dailyCallMin: number;
  unlinkedCallsPerHour: number;
  vad?: Partial<VadSettings>;
  /** Called after each answered pipeline turn (benchmarks). */
  onTurn?: (timings: PhoneTurnTimings) => void;
}

/** What {@link registerTelephony} gives back. */
export interface Telephony {
  callLog: CallLog;
  /** Media sessions currently open. */
  readonly openCalls: number;
}

type Form = Record<string, string>;

/** TwiML to send, and records to write once it is sent. */
interface Answer {
  xml: string;
  after?: () => Promise<void>;
}

/**
 * Mounts the Twilio routes in their own scope of `app` (a form-body parser and the WebSocket
 * plugin that do not leak to other routes).
 */
export async function registerTelephony(app: FastifyInstance, options: TelephonyOptions): Promise<Telephony> {
  const log = options.logger.child({ component: 'telephony' });
  const callLog = new CallLog(options.engine.store.kv, options.engine.now);
  const sessions = new Set<MediaSession>();

  // @fastify/websocket listens to the server's `upgrade` event: it must be registered once per
  // server, so the one the realtime API registered (before this) serves the media stream too.
  if (!app.hasDecorator('websocketServer')) await app.register(websocket, { options: { maxPayload: 256 * 1024 } });
  await app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT_BYTES }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });

    const verify = (req: FastifyRequest, params: Form): void => {
      const url = publicRequestUrl(req.url, req.headers, { publicUrl: options.publicUrl, websocket: req.method === 'GET' });
      const header = req.headers[TWILIO_SIGNATURE_HEADER];
      if (!isTwilioSignatureValid(options.authToken, typeof header === 'string' ? header : undefined, url, params)) {
        // The attempt is logged; its body (caller ids, speech) is not.
        log.warn({ path: req.url.split('?')[0], ip: req.ip, signature: header ? 'wrong' : 'missing' }, 'Twilio request refused: bad signature');
        throw new HttpProblem(403, 'FORBIDDEN', 'The X-Twilio-Signature of this request is missing or wrong.');
      }
    };
    const form = (req: FastifyRequest): Form => (req.body && typeof req.body === 'object' ? (req.body as Form) : {});
    const twiml = (reply: FastifyReply, xml: string): FastifyReply => reply.code(200).type('text/xml; charset=utf-8').send(xml);
    const base = (req: FastifyRequest): string => publicRequestUrl('', req.headers, { publicUrl: options.publicUrl });
    const routeConfig = { config: { rateLimit: false as const }, bodyLimit: FORM_BODY_LIMIT_BYTES };

    // The TwiML is sent first; the records the answer implies (the call log entry, the count of an
    // unlinked number) are written right after, so Twilio is not kept waiting on the store.
    scope.post(TWILIO_PATHS.voice, routeConfig, async (req, reply) => {
      const params = form(req);
      verify(req, params);
      const answer = await answerCall(params, base(req));
      twiml(reply, answer.xml);
      await answer.after?.().catch((err: unknown) => log.error({ err }, 'call record not written'));
      return reply;
    });

    scope.post(TWILIO_PATHS.link, routeConfig, async (req, reply) => {
      const params = form(req);
      verify(req, params);
      const answer = await linkFromGather(params, Number((req.query as Record<string, string>).attempt ?? '1'));
      twiml(reply, answer.xml);
      await answer.after?.().catch((err: unknown) => log.error({ err }, 'phone link record not written'));
      return reply;
    });

    scope.post(TWILIO_PATHS.status, routeConfig, async (req, reply) => {
      const params = form(req);
      verify(req, params);
      const status = (params.CallStatus ?? '').toLowerCase();
      if (params.CallSid && /^[a-z-]{1,20}$/.test(status)) {
        const duration = Number(params.CallDuration);
        await callLog.status(params.CallSid, status, Number.isFinite(duration) && params.CallDuration !== undefined ? duration : undefined);
      }
      // Twilio ignores the body of a status callback response (error 17583).
      return reply.code(204).send();
    });

    scope.get(
      TWILIO_PATHS.media,
      {
        websocket: true,
        config: { rateLimit: false },
        preValidation: async (req) => verify(req, {}),
      },
      (socket, req) => {
        const session = new MediaSession(socket, {
          engine: options.engine,
          callLog,
          logger: log.child({ ip: req.ip }),
          maxCallSec: options.maxCallSec,
          dailyCallMin: options.dailyCallMin,
          ...(options.vad ? { vad: options.vad } : {}),
          ...(options.onTurn ? { onTurn: options.onTurn } : {}),
        });
        sessions.add(session);
        // Messages are handled in order, one at a time.
        let chain = Promise.resolve();
        socket.on('message', (data: Buffer, isBinary: boolean) => {
          if (isBinary) return;
          const text = data.toString('utf8');
          chain = chain.then(() => session.onMessage(text)).catch((err: unknown) => log.error({ err }, 'media stream message failed'));
        });
        socket.on('close', () => {
          sessions.delete(session);
          chain = chain.then(() => session.onClose());
        });
      },
    );
  });

  /** The TwiML for the voice webhook, and what to store once it is sent. */
  async function answerCall(params: Form, publicUrl: string): Promise<Answer> {
    const from = normaliseE164(params.From);
    const callSid = params.CallSid ?? '';
    const userKey = from ? await personForCaller(options.engine.store.kv, from) : undefined;
    if (!userKey) return unlinkedAnswer(from, 1, 'Hello! This number is not linked to a VoiceTwin yet.');
    const usedSec = await callLog.secondsToday(userKey);
    if (usedSec >= options.dailyCallMin * 60) {
      log.info({ personId: userKey }, 'call refused: daily minutes used up');
      return { xml: say(`You have used today's ${options.dailyCallMin} minutes on the phone with your twin. Please call again tomorrow, or send a voice note in the chat. Goodbye!`) };
    }
    log.info({ personId: userKey, caller: maskNumber(from!), mode: options.mode.name }, 'incoming call answered');
    const xml = await options.mode.answer({ callSid, from: from!, to: normaliseE164(params.To) ?? params.To ?? '', userKey }, publicUrl);
    return { xml, after: () => callLog.start(userKey, { callSid, from: from!, mode: options.mode.name }) };
  }

  /** The explanation and `<Gather>` for a caller id that is not linked (rate-limited per number). */
  async function unlinkedAnswer(from: string | undefined, attempt: number, intro: string): Promise<Answer> {
    if (!from) return { xml: say('Hello! I can only link a phone number that is shown to me, and yours is withheld. Please call again without hiding your number. Goodbye!') };
    if ((await callLog.unlinkedLeft(from, options.unlinkedCallsPerHour)) <= 0) {
      log.warn({ caller: maskNumber(from) }, 'unlinked caller rate-limited');
      return { xml: say('Too many calls from this number for now. Please try again in an hour. Goodbye!') };
    }
    const response = new twilio.twiml.VoiceResponse();
    const gather = response.gather({
      input: ['dtmf', 'speech'],
      numDigits: 6,
      timeout: 8,
      speechTimeout: 'auto',
      hints: 'zero, one, two, three, four, five, six, seven, eight, nine',
      action: `${TWILIO_PATHS.link}?attempt=${attempt}`,
      method: 'POST',
      actionOnEmptyResult: true,
    });
    gather.say(`${intro} To link it, send slash phone to your twin in any chat. You get a six-digit code. Type it on your keypad or say it now.`);
    response.say('I did not get a code. Goodbye!');
    response.hangup();
    return { xml: response.toString(), after: async () => void (await callLog.allowUnlinked(from, options.unlinkedCallsPerHour)) };
  }

  /** The `<Gather>` action: links the caller id with the code typed or said. */
  async function linkFromGather(params: Form, attempt: number): Promise<Answer> {
    const from = normaliseE164(params.From);
    if (!from) return { xml: say('I can only link a phone number that is shown to me. Goodbye!') };
    const code = parseSpokenCode(params.Digits) ?? parseSpokenCode(params.SpeechResult);
    const userKey = code ? await redeemLinkCode(options.engine.store.kv, code, from) : undefined;
    if (userKey) {
      log.info({ personId: userKey, caller: maskNumber(from) }, 'phone number linked on a call');
      const response = new twilio.twiml.VoiceResponse();
      response.say('Thank you, your number is linked. Connecting you to your twin.');
      response.redirect({ method: 'POST' }, TWILIO_PATHS.voice);
      return { xml: response.toString() };
    }
    log.info({ caller: maskNumber(from), attempt }, 'phone link code refused');
    if (attempt >= MAX_LINK_ATTEMPTS) return { xml: say('That code did not work either. Send slash phone in the chat for a new one, then call again. Goodbye!') };
    return unlinkedAnswer(from, attempt + 1, code ? 'That code is wrong or has expired.' : 'I did not get six digits.');
  }

  return {
    callLog,
    get openCalls() {
      return sessions.size;
    },
  };
}

/** TwiML that says `text` and hangs up. */
function say(text: string): string {
  const response = new twilio.twiml.VoiceResponse();
  response.say(text);
  response.hangup();
  return response.toString();
}
