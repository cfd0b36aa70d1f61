/**
 * The realtime WebSocket API, `GET /v1/realtime` (protocol: docs/realtime.md). A client streams
 * text or microphone audio in; the server answers with the transcript, the reply text as the chat
 * model writes it, and the reply audio one Ogg/Opus chunk per sentence as soon as that sentence
 * is synthesised. Event names follow the OpenAI Realtime API
 * (https://platform.openai.com/docs/api-reference/realtime-client-events and
 * https://platform.openai.com/docs/api-reference/realtime-server-events).
 *
 * Every turn goes through the engine like any other web turn (`engine.submit`: a job, the
 * outbox, history and memories, consent and enrollment rules); the connection is the turn's
 * reply target and offers the engine a {@link ReplyStream}.
 *
 * Transport rules: API key as `Authorization: Bearer <key>` or, for browsers (which cannot set
 * headers on a WebSocket), as the subprotocol `bearer.<key>` offered next to
 * {@link REALTIME_SUBPROTOCOL}; messages over `maxMessageBytes` close the connection with 1009
 * (ws `maxPayload`); a WebSocket ping every `pingIntervalMs`, and a connection that has not
 * answered the previous one is terminated; audio is not sent while more than `highWaterBytes`
 * wait in the socket's buffer (text deltas are held and merged meanwhile), and a client that does
 * not read for `drainTimeoutMs` is disconnected (1008).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import websocket from '@fastify/websocket';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import type { Engine } from '../core/engine.js';
import { isUserInputError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { PERSONA_NAMES } from '../core/personas.js';
import { pcmToWav } from '../core/audio/index.js';
import type { ChatActivity, InboundMessage, OutboundReply, ReplyStream, ReplyTarget, VoiceChunk } from '../core/types.js';
import { HttpProblem } from './problem.js';
import { bearerToken } from './server.js';
import type { AuthedRequest } from './openapi.js';
import { webInboundMessage } from './web-channel.js';

/** Path of the realtime API. */
export const REALTIME_PATH = '/v1/realtime';
/** The subprotocol the server selects (a browser must offer it next to `bearer.<key>`). */
export const REALTIME_SUBPROTOCOL = 'voicetwin.realtime.v1';
/** Sample rate of the PCM frames a client may send (`input_audio_format: "pcm16"`), Hz. */
export const PCM_INPUT_RATE_HZ = 16000;

/** Options of {@link registerRealtime}; sizes in bytes, times in ms. */
export interface RealtimeOptions {
  engine: Engine;
  logger: Logger;
  /** Authenticates the upgrade request (sets `userKey`, `apiKeyId`) and applies the per-key rate limit. */
  authenticate: onRequestHookHandler[];
  /** Largest WebSocket message accepted (default 1 MiB); larger ones close the connection with 1009. */
  maxMessageBytes?: number;
  /** WebSocket ping interval (default 20 000); a connection silent for two intervals is terminated. */
  pingIntervalMs?: number;
  /** Bytes waiting in the socket buffer above which audio waits and text deltas are held (default 1 MiB). */
  highWaterBytes?: number;
  /** How long audio may wait for the client to read before it is disconnected (default 30 000). */
  drainTimeoutMs?: number;
  /** Open connections per person (default 4); more are answered 429 before the upgrade. */
  maxConnectionsPerPerson?: number;
  /** How long a response may take before it is failed with `TURN_TIMEOUT` (default 120 000). */
  turnTimeoutMs?: number;
}

/** Defaults of {@link RealtimeOptions}. */
export const REALTIME_DEFAULTS: Settings = {
  maxMessageBytes: 1024 * 1024,
  pingIntervalMs: 20_000,
  highWaterBytes: 1024 * 1024,
  drainTimeoutMs: 30_000,
  maxConnectionsPerPerson: 4,
  turnTimeoutMs: 120_000,
};

const EventId = z.string().max(64).optional();
const Persona = z.enum(PERSONA_NAMES as unknown as [string, ...string[]]);
/** Client events (docs/realtime.md). */
const ClientEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('session.update'),
    event_id: EventId,
    session: z.object({
      persona: Persona.optional(),
      input_audio_format: z.enum(['pcm16', 'encoded']).optional(),
      language: z.string().regex(/^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$/).optional(),
    }),
  }),
  z.object({
    type: z.literal('conversation.item.create'),
    event_id: EventId,
    item: z.object({
      type: z.literal('message').optional(),
      role: z.literal('user').optional(),
      content: z.array(z.object({ type: z.literal('input_text'), text: z.string().min(1) })).length(1),
    }),
  }),
  z.object({ type: z.literal('input_audio_buffer.append'), event_id: EventId, audio: z.string().min(1) }),
  z.object({ type: z.literal('input_audio_buffer.commit'), event_id: EventId }),
  z.object({ type: z.literal('input_audio_buffer.clear'), event_id: EventId }),
  z.object({ type: z.literal('response.cancel'), event_id: EventId }),
  z.object({ type: z.literal('ping'), event_id: EventId, id: z.string().max(64).optional() }),
]);
type ClientEvent = z.infer<typeof ClientEvent>;

/**
 * Registers `@fastify/websocket` and the `GET /v1/realtime` route. A plain GET (no upgrade) is
 * answered 426; a missing or wrong key 401 (before the upgrade); too many connections 429.
 */
export async function registerRealtime(app: FastifyInstance, options: RealtimeOptions): Promise<void> {
  const { engine: _engine, logger: _logger, authenticate: _authenticate, ...given } = options;
  const settings: Settings = { ...REALTIME_DEFAULTS, ...definedOnly(given) };
  const log = options.logger.child({ component: 'realtime' });
  const open = new Map<string, number>();
  // Registered once per server (it listens to the server's `upgrade` event); the phone line's
  // media stream reuses it.
  if (app.hasDecorator('websocketServer')) throw new Error('@fastify/websocket is already registered: register the realtime API first');
  await app.register(websocket, {
    options: {
      maxPayload: settings.maxMessageBytes,
      // Select our subprotocol; never echo `bearer.<key>` back.
      handleProtocols: (protocols) => (protocols.has(REALTIME_SUBPROTOCOL) ? REALTIME_SUBPROTOCOL : false),
    },
  });
  const authorize: onRequestHookHandler = async (req) => {
    if (!bearerToken(req)) {
      const token = subprotocolToken(req);
      if (token) req.headers.authorization = `Bearer ${token}`;
    }
  };
  const limitConnections: onRequestHookHandler = async (req) => {
    const userKey = (req as AuthedRequest).userKey ?? '';
    if ((open.get(userKey) ?? 0) >= settings.maxConnectionsPerPerson) {
      throw new HttpProblem(429, 'TOO_MANY_CONNECTIONS', `At most ${settings.maxConnectionsPerPerson} realtime connections per person are open at once. Close one first.`, { 'retry-after': '5' });
    }
  };
  app.route({
    method: 'GET',
    url: REALTIME_PATH,
    onRequest: [authorize, ...options.authenticate, limitConnections],
    handler: async () => {
      throw new HttpProblem(426, 'UPGRADE_REQUIRED', `${REALTIME_PATH} is a WebSocket endpoint: connect with a WebSocket client (see docs/realtime.md).`, { upgrade: 'websocket' });
    },
    wsHandler: (socket, req) => {
      const userKey = (req as AuthedRequest).userKey!;
      open.set(userKey, (open.get(userKey) ?? 0) + 1);
      const session = new RealtimeSession(socket, userKey, options.engine, settings, log.child({ userKey }));
      socket.once('close', () => {
        const n = (open.get(userKey) ?? 1) - 1;
        if (n > 0) open.set(userKey, n);
        else open.delete(userKey);
      });
      void session.start();
    },
  });
}

/** The API key in a `bearer.<key>` subprotocol of the upgrade request, if any. */
function subprotocolToken(req: FastifyRequest): string | undefined {
  const header = req.headers['sec-websocket-protocol'];
  const offered = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map((p) => p.trim());
  return offered.find((p) => p.startsWith('bearer.'))?.slice('bearer.'.length) || undefined;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

type Settings = Required<Pick<RealtimeOptions, 'maxMessageBytes' | 'pingIntervalMs' | 'highWaterBytes' | 'drainTimeoutMs' | 'maxConnectionsPerPerson' | 'turnTimeoutMs'>>;
type ServerEvent = { type: string } & Record<string, unknown>;

/** One WebSocket connection: its input audio buffer, its session settings and its responses. */
class RealtimeSession {
  readonly id = `sess_${randomUUID()}`;
  #events = 0;
  #inputFormat: 'pcm16' | 'encoded' = 'pcm16';
  #language: string | undefined;
  #audio: Buffer[] = [];
  #audioBytes = 0;
  readonly #responses = new Set<RealtimeResponse>();
  #alive = true;
  #pinger: NodeJS.Timeout | undefined;

  constructor(
    readonly ws: WebSocket,
    readonly userKey: string,
    readonly engine: Engine,
    readonly settings: Settings,
    readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const { ws } = this;
    ws.on('message', (data, isBinary) => void this.#onMessage(data as Buffer | Buffer[], isBinary));
    ws.on('pong', () => (this.#alive = true));
    ws.on('close', (code) => {
      clearInterval(this.#pinger);
      for (const r of this.#responses) r.cancel('closed');
      this.log.info({ code }, 'realtime connection closed');
    });
    ws.on('error', (err) => this.log.warn({ err }, 'realtime connection error'));
    this.#pinger = setInterval(() => {
      if (!this.#alive) {
        this.log.info('realtime connection did not answer a ping: terminated');
        ws.terminate();
        return;
      }
      this.#alive = false;
      ws.ping();
    }, this.settings.pingIntervalMs);
    this.#pinger.unref();
    let persona: string;
    try {
      persona = (await this.engine.person(this.userKey)).persona;
    } catch (err) {
      this.error(isUserInputError(err) ? err.code : 'INTERNAL', isUserInputError(err) ? err.userMessage : 'The session could not be opened.');
      ws.close(1008, 'unknown person');
      return;
    }
    this.log.info('realtime connection opened');
    this.send({ type: 'session.created', session: this.describe(persona) });
  }

  /** The session as `session.created` / `session.updated` describe it. */
  describe(persona: string): Record<string, unknown> {
    const limits = this.engine.settings.limits;
    return {
      id: this.id,
      persona,
      input_audio_format: this.#inputFormat,
      input_audio_sample_rate_hz: PCM_INPUT_RATE_HZ,
      ...(this.#language ? { language: this.#language } : {}),
      output_audio_format: { container: 'ogg', codec: 'opus', mime_type: 'audio/ogg; codecs=opus', channels: 1, sample_rate_hz: 48000, chunking: 'sentence' },
      limits: { max_message_bytes: this.settings.maxMessageBytes, max_audio_bytes: limits.maxAudioBytes, max_audio_sec: limits.maxTurnAudioSec, max_text_chars: limits.maxTextChars, max_reply_chars: limits.replyMaxChars },
    };
  }

  /** Sends a server event (with an `event_id`); false when the connection is no longer open. */
  send(event: ServerEvent): boolean {
    if (this.ws.readyState !== this.ws.OPEN) return false;
    this.ws.send(JSON.stringify({ event_id: `evt_${++this.#events}`, ...event }));
    return true;
  }

  /** An `error` event; `type` is `invalid_request_error` for what the client can fix, else `server_error`. */
  error(code: string, message: string, extra: Record<string, unknown> = {}, type: 'invalid_request_error' | 'server_error' = 'invalid_request_error'): void {
    this.send({ type: 'error', error: { type, code, message, ...extra } });
  }

  /** True when the socket buffer is over the high-water mark. */
  get congested(): boolean {
    return this.ws.bufferedAmount > this.settings.highWaterBytes;
  }

  /**
   * Waits until the socket buffer is below the high-water mark; disconnects a client that does
   * not read within `drainTimeoutMs`.
   * @returns false when the connection is gone (nothing should be sent)
   */
  async drained(): Promise<boolean> {
    const started = Date.now();
    while (this.congested && this.ws.readyState === this.ws.OPEN) {
      if (Date.now() - started > this.settings.drainTimeoutMs) {
        this.log.warn({ bufferedBytes: this.ws.bufferedAmount }, 'realtime client does not read: disconnected');
        this.ws.close(1008, 'client too slow to read');
        return false;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.ws.readyState === this.ws.OPEN;
  }

  async #onMessage(data: Buffer | Buffer[], isBinary: boolean): Promise<void> {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : data;
    if (isBinary) return this.#append(bytes);
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch {
      return this.error('INVALID_JSON', 'Each text message must be one JSON event (see docs/realtime.md).');
    }
    const result = ClientEvent.safeParse(parsed);
    if (!result.success) {
      const type = (parsed as { type?: unknown } | null)?.type;
      const issue = result.error.issues[0];
      const eventId = (parsed as { event_id?: unknown } | null)?.event_id;
      const extra = typeof eventId === 'string' ? { event_id: eventId.slice(0, 64) } : {};
      if (typeof type !== 'string' || !ClientEvent.options.some((o) => o.shape.type.value === type)) {
        return this.error('UNKNOWN_EVENT', `Unknown event type ${JSON.stringify(String(type).slice(0, 60))}. Known: ${ClientEvent.options.map((o) => o.shape.type.value).join(', ')}.`, extra);
      }
      return this.error('VALIDATION', `Invalid ${type} event: ${issue ? `${issue.path.join('.') || 'event'}: ${issue.message}` : 'bad shape'}.`, extra);
    }
    try {
      await this.#handle(result.data);
    } catch (err) {
      this.log.error({ err, event: result.data.type }, 'realtime event failed');
      this.error('INTERNAL', 'Something went wrong on our side; please try again.', result.data.event_id ? { event_id: result.data.event_id } : {}, 'server_error');
    }
  }

  async #handle(event: ClientEvent): Promise<void> {
    const ref: Record<string, string> = event.event_id ? { event_id: event.event_id } : {};
    switch (event.type) {
      case 'ping':
        this.send({ type: 'pong', ...(event.id !== undefined ? { id: event.id } : {}) });
        return;
      case 'session.update': {
        const { persona, input_audio_format: format, language } = event.session;
        if (format && format !== this.#inputFormat && this.#audioBytes > 0) {
          return this.error('AUDIO_BUFFER_NOT_EMPTY', 'Commit or clear the audio buffer before changing input_audio_format.', ref);
        }
        let current: string;
        try {
          current = persona ? (await this.engine.setPersonaOf(this.userKey, persona)).persona : (await this.engine.person(this.userKey)).persona;
        } catch (err) {
          if (isUserInputError(err)) return this.error(err.code, err.userMessage, ref);
          throw err;
        }
        if (format) this.#inputFormat = format;
        if (language) this.#language = language;
        this.send({ type: 'session.updated', session: this.describe(current) });
        return;
      }
      case 'input_audio_buffer.append':
        return this.#append(Buffer.from(event.audio, 'base64'), ref);
      case 'input_audio_buffer.clear':
        this.#audio = [];
        this.#audioBytes = 0;
        this.send({ type: 'input_audio_buffer.cleared' });
        return;
      case 'input_audio_buffer.commit': {
        if (this.#audioBytes === 0) return this.error('INPUT_AUDIO_BUFFER_EMPTY', 'There is no audio to commit: send input_audio_buffer.append first.', ref);
        let bytes: Buffer = Buffer.concat(this.#audio);
        this.#audio = [];
        this.#audioBytes = 0;
        if (this.#inputFormat === 'pcm16') {
          if (bytes.length % 2 !== 0) return this.error('BAD_PCM', 'pcm16 audio is 16-bit samples: the buffer must have an even number of bytes.', ref);
          const samples = new Int16Array(bytes.length / 2);
          for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(i * 2);
          bytes = pcmToWav({ samples, sampleRateHz: PCM_INPUT_RATE_HZ });
        }
        const itemId = `item_${randomUUID()}`;
        this.send({ type: 'input_audio_buffer.committed', item_id: itemId });
        return this.#respond({ audio: { bytes, declaredSizeBytes: bytes.length, isVoiceNote: true } }, itemId);
      }
      case 'conversation.item.create': {
        const text = event.item.content[0]!.text;
        const m = text.startsWith('/') ? /^\/(\w+)\s*([\s\S]*)$/.exec(text) : null;
        const itemId = `item_${randomUUID()}`;
        return this.#respond(m ? { command: { name: m[1]!, args: m[2]! } } : { text }, itemId);
      }
      case 'response.cancel': {
        const running = [...this.#responses];
        if (running.length === 0) return this.error('NO_ACTIVE_RESPONSE', 'There is no reply to cancel.', ref);
        for (const r of running) r.cancel('client');
        return;
      }
    }
  }

  #append(bytes: Buffer, ref: Record<string, string> = {}): void {
    const max = this.engine.settings.limits.maxAudioBytes;
    if (this.#audioBytes + bytes.length > max) {
      this.#audio = [];
      this.#audioBytes = 0;
      return this.error('AUDIO_TOO_LARGE', `The audio of one utterance can be at most ${(max / 1024 / 1024).toFixed(0)} MiB; the buffer was cleared. Commit shorter utterances.`, ref);
    }
    if (bytes.length === 0) return;
    this.#audio.push(bytes);
    this.#audioBytes += bytes.length;
  }

  /** Starts a response to one user input: submitted to the engine with this connection as its target. */
  async #respond(partial: Partial<InboundMessage>, itemId: string): Promise<void> {
    const response = new RealtimeResponse(this, itemId);
    this.#responses.add(response);
    response.finished.finally(() => this.#responses.delete(response)).catch(() => undefined);
    this.send({ type: 'response.created', response: { id: response.id, status: 'in_progress', item_id: itemId } });
    const message = webInboundMessage(this.userKey, `web:rt:${randomUUID()}`, { ...partial, ...(this.#language ? { languageCode: this.#language } : {}) });
    try {
      await this.engine.submit(message, response);
    } catch (err) {
      if (isUserInputError(err)) response.fail(err.code, err.userMessage);
      else {
        this.log.error({ err }, 'realtime turn could not be stored');
        response.fail('INTERNAL', 'Your message could not be taken right now; please try again.', 'server_error');
      }
    }
  }
}

/** One response: the reply target (with a stream) of one submitted message. */
class RealtimeResponse implements ReplyTarget {
  readonly id = `resp_${randomUUID()}`;
  readonly stream: ReplyStream;
  readonly finished: Promise<void>;
  readonly #controller = new AbortController();
  #resolve!: () => void;
  #status: 'in_progress' | 'completed' | 'cancelled' | 'failed' = 'in_progress';
  #held = '';
  #timer: NodeJS.Timeout;
  #chunks = 0;
  #doneSent = false;

  constructor(
    private readonly session: RealtimeSession,
    private readonly itemId: string,
  ) {
    this.finished = new Promise((resolve) => (this.#resolve = resolve));
    this.#timer = setTimeout(() => this.fail('TURN_TIMEOUT', 'Your twin is taking too long to answer; please try again.', 'server_error'), session.settings.turnTimeoutMs);
    this.#timer.unref();
    this.stream = {
      signal: this.#controller.signal,
      transcript: (text, final) => {
        if (this.#status !== 'in_progress') return;
        const type = final ? 'conversation.item.input_audio_transcription.completed' : 'conversation.item.input_audio_transcription.delta';
        this.session.send({ type, item_id: this.itemId, transcript: text });
      },
      textDelta: (delta) => {
        if (this.#status !== 'in_progress') return;
        this.#held += delta;
        if (!this.session.congested) this.#flushText();
      },
      audio: (chunk) => this.#sendAudio(chunk),
    };
  }

  #flushText(): void {
    if (!this.#held) return;
    this.session.send({ type: 'response.text.delta', response_id: this.id, delta: this.#held });
    this.#held = '';
  }

  async #sendAudio(chunk: VoiceChunk): Promise<void> {
    if (this.#status !== 'in_progress') return;
    if (!(await this.session.drained()) || this.#status !== 'in_progress') return;
    this.#flushText();
    this.#chunks++;
    this.session.send({
      type: 'response.audio.delta',
      response_id: this.id,
      index: chunk.index,
      text: chunk.text,
      mime_type: chunk.voice.mimeType,
      sample_rate_hz: chunk.voice.sampleRateHz,
      duration_sec: Math.round(chunk.voice.durationSec * 1000) / 1000,
      delta: chunk.voice.oggOpus.toString('base64'),
    });
  }

  async reply(reply: OutboundReply): Promise<void> {
    if (this.#status !== 'in_progress') return;
    if (reply.kind === 'error') {
      this.#status = 'failed';
      this.session.error(reply.code ?? 'TURN_FAILED', reply.text ?? 'Something went wrong.', { response_id: this.id }, reply.code ? 'invalid_request_error' : 'server_error');
      return;
    }
    if (reply.streamed) {
      this.#flushText();
      this.session.send({ type: 'response.audio.done', response_id: this.id, chunks: reply.streamed.chunks, duration_sec: Math.round(reply.streamed.durationSec * 1000) / 1000 });
      this.session.send({ type: 'response.text.done', response_id: this.id, kind: reply.kind, text: reply.text ?? '', ...(reply.voiceLabel ? { voice_label: reply.voiceLabel } : {}) });
      return;
    }
    if (reply.voice) {
      await this.#sendAudio({ index: this.#chunks, text: reply.text ?? '', voice: reply.voice });
      this.session.send({ type: 'response.audio.done', response_id: this.id, chunks: this.#chunks, duration_sec: Math.round(reply.voice.durationSec * 1000) / 1000 });
    }
    if (reply.text || reply.buttons?.length) {
      this.session.send({
        type: 'response.text.done',
        response_id: this.id,
        kind: reply.kind,
        text: reply.text ?? '',
        ...(reply.voiceLabel ? { voice_label: reply.voiceLabel } : {}),
        ...(reply.buttons?.length ? { buttons: reply.buttons } : {}),
      });
    }
  }

  async activity(_kind: ChatActivity): Promise<void> {}

  async status(text: string): Promise<(text: string) => Promise<void>> {
    const send = async (t: string): Promise<void> => {
      if (this.#status === 'in_progress') this.session.send({ type: 'response.text.done', response_id: this.id, kind: 'status', text: t });
    };
    await send(text);
    return send;
  }

  /** The job is over: `response.done` (unless it was cancelled or failed earlier). */
  async settle(): Promise<void> {
    if (this.#status === 'in_progress') this.#status = 'completed';
    if (this.#status !== 'cancelled') this.#done();
    this.#finish();
  }

  /** Interrupts: no further event of this response is sent; the engine stops making audio. */
  cancel(reason: 'client' | 'closed'): void {
    if (this.#status !== 'in_progress') return;
    this.#status = 'cancelled';
    this.#controller.abort(new Error(`response cancelled (${reason})`));
    if (reason === 'client') this.#done();
    this.#finish();
  }

  /** Fails the response with an error event and `response.done` (status failed). */
  fail(code: string, message: string, type: 'invalid_request_error' | 'server_error' = 'invalid_request_error'): void {
    if (this.#status !== 'in_progress') return;
    this.#status = 'failed';
    this.#controller.abort(new Error(`response failed (${code})`));
    this.session.error(code, message, { response_id: this.id }, type);
    this.#done();
    this.#finish();
  }

  #done(): void {
    if (this.#doneSent) return;
    this.#doneSent = true;
    this.session.send({ type: 'response.done', response: { id: this.id, status: this.#status, item_id: this.itemId, audio_chunks: this.#chunks } });
  }

  #finish(): void {
    clearTimeout(this.#timer);
    this.#resolve();
  }
}
