/**
 * A phone line for tests: the real offline application (or given providers) with the Twilio
 * routes on the real HTTP server, a log captured as JSON lines, and helpers to talk to the twin in
 * a chat (for `/phone`, `/calls`, `/delete`) and to place calls.
 */
import { Writable } from 'node:stream';
import { createLogger } from '../../src/core/log.js';
import { createHttpServer, type HttpServer } from '../../src/http/server.js';
import { registerTelephony, TWILIO_PATHS, type Telephony, type TelephonyOptions } from '../../src/telephony/twilio-routes.js';
import { PipelineMode } from '../../src/telephony/modes.js';
import type { InboundMessage, OutboundReply, ReplyTarget } from '../../src/core/types.js';
import type { Providers } from '../../src/core/providers.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { TEST_HTTP_SETTINGS } from '../http/helpers.js';
import { postTwilio, voiceParams } from '../fakes/twilio/signature.js';

export const AUTH_TOKEN = 'test-auth-token-0123456789abcdef';
export const LINE_NUMBER = '+15005550006';

export interface PhoneHarness {
  app: TestApp;
  server: HttpServer;
  telephony: Telephony;
  /** http://127.0.0.1:port */
  localUrl: string;
  /** The URL Twilio is configured with (HTTP_PUBLIC_URL), or the local URL. */
  publicUrl: string;
  /** Log lines written so far (JSON). */
  logs: string[];
  /** Sends a chat message or command as `console:<userId>`; resolves with the replies' texts. */
  chat(userId: string, text: string, action?: string): Promise<string[]>;
  /** POSTs a signed webhook to one of the Twilio paths. */
  post(path: string, params: Record<string, string>, options?: { signature?: string; signedUrl?: string }): Promise<{ status: number; body: string; ms: number }>;
  /** Places a call from `from`: the voice webhook's TwiML. */
  call(callSid: string, from: string): Promise<{ status: number; body: string; ms: number }>;
  /** Links `from` to `console:<userId>` the way a person does: /phone, call, type the code. */
  linkByDtmf(userId: string, from: string): Promise<void>;
  close(): Promise<void>;
}

let seq = 0;

export async function createPhoneHarness(
  options: { publicUrl?: string; providers?: Providers; env?: Record<string, string>; telephony?: Partial<TelephonyOptions> } = {},
): Promise<PhoneHarness> {
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const logger = createLogger({ level: 'debug', destination, secrets: [AUTH_TOKEN] });
  const app = await createTestApp({
    env: { TWILIO_AUTH_TOKEN: AUTH_TOKEN, TWILIO_PHONE_NUMBER: LINE_NUMBER, MEMORY_EVERY: '0', INSIGHT_EVERY: '0', ...options.env },
    ...(options.providers ? { providers: options.providers } : {}),
  });
  let telephony!: Telephony;
  const server = await createHttpServer({
    settings: TEST_HTTP_SETTINGS,
    logger,
    routes: async (fastify) => {
      telephony = await registerTelephony(fastify, {
        engine: app.engine,
        logger,
        authToken: AUTH_TOKEN,
        ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
        mode: new PipelineMode(),
        maxCallSec: 900,
        dailyCallMin: 30,
        unlinkedCallsPerHour: 5,
        ...options.telephony,
      });
    },
  });
  const { url: localUrl } = await server.listen();
  const publicUrl = options.publicUrl ?? localUrl;
  const harness: PhoneHarness = {
    app,
    server,
    telephony,
    localUrl,
    publicUrl,
    logs,
    async chat(userId, text, action) {
      const texts: string[] = [];
      const target: ReplyTarget = {
        reply: async (r: OutboundReply) => void texts.push(r.text ?? ''),
        activity: async () => undefined,
        status: async (t) => {
          texts.push(t);
          return async (t2) => void texts.push(t2);
        },
      };
      const m = /^\/(\w+)\s*(.*)$/s.exec(text);
      const message: InboundMessage = {
        id: `console:test:${++seq}:${Date.now()}`,
        channel: 'console',
        chatId: userId,
        userId,
        displayName: 'Ada Lovelace',
        receivedAtMs: Date.now(),
        ...(action ? { action } : m ? { command: { name: m[1]!, args: m[2]! } } : { text }),
      };
      await app.engine.handle(message, target);
      return texts;
    },
    post(path, params, o = {}) {
      return postTwilio(`${localUrl}${path}`, params, { authToken: AUTH_TOKEN, signedUrl: o.signedUrl ?? `${publicUrl}${path}`, ...(o.signature ? { signature: o.signature } : {}) });
    },
    call(callSid, from) {
      return harness.post(TWILIO_PATHS.voice, voiceParams(callSid, from, LINE_NUMBER));
    },
    async linkByDtmf(userId, from) {
      const [text] = await harness.chat(userId, '/phone');
      const code = /(\d{3}) (\d{3})/.exec(text ?? '')!.slice(1).join('');
      const callSid = `CA${'1'.repeat(30)}${String(++seq).padStart(2, '0')}`.slice(0, 34);
      await harness.call(callSid, from);
      const linked = await harness.post(`${TWILIO_PATHS.link}?attempt=1`, voiceParams(callSid, from, LINE_NUMBER, { Digits: code }));
      if (!/linked/.test(linked.body)) throw new Error(`linking failed: ${linked.body}`);
    },
    async close() {
      await server.close();
      await app.close();
    },
  };
  return harness;
}

/** A Twilio-looking call sid (`CA` + 32 hex). */
export function callSid(n: number): string {
  return `CA${n.toString(16).padStart(32, '0')}`;
}
