/**
 * A local Twilio REST API for the one request the ElevenLabs phone mode makes: updating a live call
 * with new TwiML.
 *
 * - `POST /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json`, form-encoded (`Twiml`, `Url`,
 *   `Method`, `Status`) → the Call resource as JSON
 *   https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource
 * - HTTP Basic authentication with the Account SID and auth token
 *   https://www.twilio.com/docs/usage/requests-to-twilio
 * - Errors as `{ code, message, more_info, status }`: 401 `20003` (authenticate), 404 `20404` (no
 *   such call), 400 `21220` (the call is not in progress, e.g. the caller hung up)
 *   https://www.twilio.com/docs/api/errors/20404, https://www.twilio.com/docs/api/errors/21220
 *
 * The real `twilio` client reaches it through a custom `httpClient` (see {@link LocalTwilioHttpClient}).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient.js';
import type * as ResponseModule from 'twilio/lib/http/response.js';

type TwilioResponse<T> = ResponseModule.default<T>;

/** One call update as received. */
export interface CallUpdate {
  callSid: string;
  params: Record<string, string>;
  atMs: number;
}

/** The fake. Start with {@link TwilioCallsFake.start}; add live calls with {@link TwilioCallsFake.addCall}. */
export class TwilioCallsFake {
  readonly updates: CallUpdate[] = [];
  /** Requests refused (auth, unknown call, call not in progress), with their status. */
  readonly refused: { path: string; status: number }[] = [];
  private readonly calls = new Map<string, { status: 'in-progress' | 'completed'; from: string; to: string }>();
  private readonly waiters: (() => void)[] = [];
  private server!: Server;
  baseUrl = '';

  private constructor(
    readonly accountSid: string,
    readonly authToken: string,
  ) {}

  static async start(options: { accountSid: string; authToken: string }): Promise<TwilioCallsFake> {
    const fake = new TwilioCallsFake(options.accountSid, options.authToken);
    fake.server = createServer((req, res) => {
      fake.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 20500, message: String(err), status: 500 }));
      });
    });
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.baseUrl = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  /** A call that is in progress (updates to it succeed). */
  addCall(callSid: string, from = '+15005550006', to = '+15005550001'): void {
    this.calls.set(callSid, { status: 'in-progress', from, to });
  }

  /** The caller hangs up: later updates answer 21220. */
  hangUp(callSid: string): void {
    const call = this.calls.get(callSid);
    if (call) call.status = 'completed';
  }

  /** Resolves at the next update (or at once when `count` updates already arrived). */
  async waitForUpdates(count: number, timeoutMs = 10_000): Promise<CallUpdate[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.updates.length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} call updates, got ${this.updates.length}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.updates;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = new URL(req.url ?? '/', this.baseUrl).pathname;
    const error = (status: number, code: number, message: string): void => {
      this.refused.push({ path, status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }));
    };
    const expected = `Basic ${Buffer.from(`${this.accountSid}:${this.authToken}`).toString('base64')}`;
    if (req.headers.authorization !== expected) return error(401, 20003, 'Authenticate');
    const match = /^\/2010-04-01\/Accounts\/([^/]+)\/Calls\/([^/]+)\.json$/.exec(path);
    if (req.method !== 'POST' || !match || match[1] !== this.accountSid) return error(404, 20404, `The requested resource ${path} was not found`);
    const callSid = decodeURIComponent(match[2]!);
    const call = this.calls.get(callSid);
    if (!call) return error(404, 20404, `The requested resource ${path} was not found`);
    if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return error(400, 20001, 'Content-Type must be application/x-www-form-urlencoded');
    const params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    if (call.status !== 'in-progress') return error(400, 21220, 'Call is not in-progress. Cannot redirect.');
    if (!params.Twiml && !params.Url && !params.Status) return error(400, 21201, 'No TwiML, Url or Status given');
    this.updates.push({ callSid, params, atMs: Date.now() });
    for (const wake of this.waiters.splice(0)) wake();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        sid: callSid,
        account_sid: this.accountSid,
        status: call.status,
        from: call.from,
        to: call.to,
        direction: 'inbound',
        api_version: '2010-04-01',
        uri: `/2010-04-01/Accounts/${this.accountSid}/Calls/${callSid}.json`,
      }),
    );
  }
}

/**
 * The `twilio` package's own HTTP client, with every request to `https://api.twilio.com` sent to
 * a local base URL instead. A custom `httpClient` is the documented way to change how the helper
 * library makes its requests
 * (https://github.com/twilio/twilio-node/blob/main/advanced-examples/custom-http-client.md);
 * authentication, form encoding and response parsing stay the library's.
 */
export class LocalTwilioHttpClient extends twilio.RequestClient {
  constructor(private readonly baseUrl: string) {
    super();
  }

  override request<TData>(opts: RequestClient.RequestOptions<TData>): Promise<TwilioResponse<TData>> {
    const uri = new URL(opts.uri);
    const local = new URL(this.baseUrl);
    uri.protocol = local.protocol;
    uri.host = local.host;
    return super.request<TData>({ ...opts, uri: uri.href });
  }
}

/** A real `twilio` client talking to the fake. */
export function twilioClientFor(fake: TwilioCallsFake): twilio.Twilio {
  return twilio(fake.accountSid, fake.authToken, { httpClient: new LocalTwilioHttpClient(fake.baseUrl) });
}
