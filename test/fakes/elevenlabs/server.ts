/**
 * A local ElevenLabs API for tests, speaking the wire format of the official API reference:
 *
 * - `POST /v1/voices/add` (multipart: `name`, one `files` part per sample, `labels` JSON,
 *   `remove_background_noise`, `description`) → `{ voice_id, requires_verification }`
 *   https://elevenlabs.io/docs/api-reference/voices/ivc/create
 * - `DELETE /v1/voices/{voice_id}` → `{ status: "ok" }`
 *   https://elevenlabs.io/docs/api-reference/voices/delete
 * - `POST /v1/text-to-speech/{voice_id}?output_format=…` (JSON `text`, `model_id`,
 *   `language_code`, `voice_settings`, `seed`) → audio bytes in the requested format
 *   https://elevenlabs.io/docs/api-reference/text-to-speech/convert
 * - `POST /v1/speech-to-text` (multipart `model_id`, `file`, `file_format`, `language_code`) →
 *   `{ language_code, language_probability, text, words[], audio_duration_secs }`
 *   https://elevenlabs.io/docs/api-reference/speech-to-text/convert
 * - `GET /v1/models` → `[{ model_id, … }]` https://elevenlabs.io/docs/api-reference/models/list
 * - `POST /v1/convai/twilio/register-call` (JSON `agent_id`, `from_number`, `to_number`,
 *   `direction`, `conversation_initiation_client_data`) → TwiML that connects the call to the agent
 *   over a `<Connect><Stream>` https://elevenlabs.io/docs/api-reference/twilio/register-call
 *
 * Authentication is the `xi-api-key` header (https://elevenlabs.io/docs/api-reference/authentication).
 * Errors use the documented `{ "detail": { "status", "message" } }` body: 401 `invalid_api_key`,
 * 401 `quota_exceeded`, 400 `voice_not_found` / `max_character_limit_exceeded`
 * (https://help.elevenlabs.io/hc/en-us/articles/19572237925521), 429
 * `too_many_concurrent_requests` / `system_busy` (https://help.elevenlabs.io/hc/en-us/articles/19571824571921),
 * and FastAPI-style 422 `{ "detail": [{ loc, msg, type }] }` for validation errors.
 *
 * Audio is real: espeak-ng speech encoded by ffmpeg to Ogg/Opus or MP3.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { espeakWav, toMp3, toOggOpus } from './audio.js';

/** Routes faults can be injected into. */
export type ElevenLabsRoute = 'clone' | 'delete' | 'tts' | 'stt' | 'models' | 'register-call';

/** A failure the fake answers with instead of the normal response. */
export interface ElevenLabsFault {
  status: number;
  /** `detail.status`, e.g. `system_busy`, `quota_exceeded`. */
  detailStatus?: string;
  message?: string;
  /** Sent as `Retry-After` (seconds). */
  retryAfterSec?: number;
  /** Wait this long before answering (to trigger client timeouts). */
  delayMs?: number;
  /** After the delay, answer normally instead of with an error (a slow success). */
  passThrough?: boolean;
}

/** A multipart file part as received. */
export interface ReceivedFile {
  field: string;
  filename: string;
  contentType: string;
  bytes: Buffer;
}

/** One request as the fake saw it. */
export interface ElevenLabsRequest {
  route: ElevenLabsRoute | 'unknown';
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  json?: Record<string, unknown>;
  fields?: Record<string, string[]>;
  files?: ReceivedFile[];
  /** Status the fake answered. */
  status?: number;
}

const MODELS: Record<string, { maxChars: number; languageCode: boolean }> = {
  eleven_flash_v2_5: { maxChars: 40_000, languageCode: true },
  eleven_turbo_v2_5: { maxChars: 40_000, languageCode: true },
  eleven_multilingual_v2: { maxChars: 10_000, languageCode: false },
  eleven_v3: { maxChars: 5_000, languageCode: true },
};
const STT_MODELS = ['scribe_v1', 'scribe_v2'];
/** Premade voices every account has (ids as listed by GET /v1/voices). */
export const PREMADE_VOICE_IDS = ['JBFqnCBsd6RMkjVDRZzb', '21m00Tcm4TlvDq8ikWAM'];

function detail(status: string, message: string): { detail: { status: string; message: string } } {
  return { detail: { status, message } };
}

function validation(field: string, msg: string): { detail: { loc: string[]; msg: string; type: string }[] } {
  return { detail: [{ loc: ['body', field], msg, type: 'missing' }] };
}

/** Sniffs the container of uploaded audio by its magic bytes. */
function looksLikeAudio(bytes: Buffer): boolean {
  const head = bytes.subarray(0, 4).toString('latin1');
  return head === 'RIFF' || head === 'OggS' || head === 'fLaC' || head.startsWith('ID3') || (bytes[0] === 0xff && ((bytes[1] ?? 0) & 0xe0) === 0xe0);
}

/** The fake server. Start with {@link ElevenLabsFake.start}. */
export class ElevenLabsFake {
  readonly requests: ElevenLabsRequest[] = [];
  /** Voices created through `/v1/voices/add`, by voice id. */
  readonly voices = new Map<string, { name: string; labels: Record<string, string>; files: ReceivedFile[] }>();
  /** Agents that exist (`register-call` answers 404 `agent_not_found` for any other id). */
  readonly agents = new Set<string>();
  /** Calls registered through `register-call`, in order, with the TwiML returned. */
  readonly registeredCalls: { body: Record<string, unknown>; twiml: string }[] = [];
  /** Text the fake "recognises" in any uploaded audio. */
  sttText = '';
  /** Language the fake reports (ISO 639-3, as Scribe does). */
  sttLanguageCode = 'eng';
  /** `mp3` makes TTS answer MP3 whatever format was asked (a misbehaving provider). */
  ttsAudio: 'requested' | 'mp3' | 'empty' = 'requested';
  private readonly faults = new Map<ElevenLabsRoute, ElevenLabsFault[]>();
  private readonly audioCache = new Map<string, Buffer>();
  private server!: Server;
  baseUrl = '';

  private constructor(readonly apiKey: string) {}

  /** Starts on a free port of 127.0.0.1. */
  static async start(options: { apiKey: string }): Promise<ElevenLabsFake> {
    const fake = new ElevenLabsFake(options.apiKey);
    fake.server = createServer((req, res) => {
      fake.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify(detail('internal_error', String(err))));
      });
    });
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.baseUrl = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  /** Queues `times` faults on a route; they are used before normal answers, in order. */
  inject(route: ElevenLabsRoute, fault: ElevenLabsFault, times = 1): void {
    const queue = this.faults.get(route) ?? [];
    for (let i = 0; i < times; i++) queue.push(fault);
    this.faults.set(route, queue);
  }

  /** Requests on one route. */
  on(route: ElevenLabsRoute): ElevenLabsRequest[] {
    return this.requests.filter((r) => r.route === route);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const route = this.route(req.method ?? 'GET', url.pathname);
    const record: ElevenLabsRequest = { route, method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers };
    this.requests.push(record);
    const contentType = req.headers['content-type'] ?? '';
    if (contentType.startsWith('application/json') && body.length > 0) record.json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    if (contentType.startsWith('multipart/form-data')) {
      const form = await new Request('http://fake/', { method: 'POST', headers: { 'content-type': contentType }, body }).formData();
      record.fields = {};
      record.files = [];
      for (const [field, value] of form.entries()) {
        if (typeof value === 'string') (record.fields[field] ??= []).push(value);
        else record.files.push({ field, filename: value.name, contentType: value.type, bytes: Buffer.from(await value.arrayBuffer()) });
      }
    }
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(payload));
    };

    if (req.headers['xi-api-key'] !== this.apiKey) return send(401, detail('invalid_api_key', 'Invalid API key'));
    if (route === 'unknown') return send(404, { detail: 'Not Found' });
    const fault = this.faults.get(route)?.shift();
    if (fault?.passThrough) {
      await new Promise((r) => setTimeout(r, fault.delayMs ?? 0));
    } else if (fault) {
      if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
      const headers: Record<string, string> = fault.retryAfterSec !== undefined ? { 'retry-after': String(fault.retryAfterSec) } : {};
      const defaults: Record<number, string> = { 401: 'quota_exceeded', 429: 'system_busy', 500: 'internal_error', 503: 'service_unavailable' };
      const status = fault.detailStatus ?? defaults[fault.status] ?? 'error';
      if (res.destroyed) return;
      return send(fault.status, detail(status, fault.message ?? `Injected ${status}`), headers);
    }

    switch (route) {
      case 'models':
        return send(200, Object.keys(MODELS).map((model_id) => ({ model_id, name: model_id, can_do_text_to_speech: true })));
      case 'clone':
        return this.clone(record, send);
      case 'delete': {
        const voiceId = decodeURIComponent(url.pathname.split('/')[3] ?? '');
        if (!this.voices.delete(voiceId)) return send(400, detail('voice_not_found', `A voice with voice_id ${voiceId} does not exist.`));
        return send(200, { status: 'ok' });
      }
      case 'tts':
        return this.tts(record, url, res, send);
      case 'stt':
        return this.stt(record, send);
      case 'register-call':
        return this.registerCall(record, res, send);
    }
  }

  private route(method: string, path: string): ElevenLabsRoute | 'unknown' {
    if (method === 'GET' && path === '/v1/models') return 'models';
    if (method === 'POST' && path === '/v1/voices/add') return 'clone';
    if (method === 'DELETE' && /^\/v1\/voices\/[^/]+$/.test(path)) return 'delete';
    if (method === 'POST' && /^\/v1\/text-to-speech\/[^/]+$/.test(path)) return 'tts';
    if (method === 'POST' && path === '/v1/speech-to-text') return 'stt';
    if (method === 'POST' && path === '/v1/convai/twilio/register-call') return 'register-call';
    return 'unknown';
  }

  private registerCall(record: ElevenLabsRequest, res: ServerResponse, send: (s: number, p: unknown) => void): void {
    const json = record.json ?? {};
    for (const field of ['agent_id', 'from_number', 'to_number']) {
      if (typeof json[field] !== 'string' || json[field] === '') return send(422, validation(field, 'Field required'));
    }
    if (json.direction !== undefined && json.direction !== 'inbound' && json.direction !== 'outbound') {
      return send(422, { detail: [{ loc: ['body', 'direction'], msg: "Input should be 'inbound' or 'outbound'", type: 'enum' }] });
    }
    if (!this.agents.has(json.agent_id as string)) return send(404, detail('agent_not_found', `Agent ${String(json.agent_id)} not found.`));
    const conversationId = `conv_${randomBytes(12).toString('hex')}`;
    const twiml =
      '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>' +
      `<Stream url="wss://api.elevenlabs.io/v1/convai/conversation/twilio?agent_id=${encodeURIComponent(json.agent_id as string)}&amp;conversation_id=${conversationId}"/>` +
      '</Connect></Response>';
    this.registeredCalls.push({ body: json, twiml });
    record.status = 200;
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(twiml);
  }

  private clone(record: ElevenLabsRequest, send: (s: number, p: unknown) => void): void {
    const name = record.fields?.name?.[0];
    const files = (record.files ?? []).filter((f) => f.field === 'files');
    if (!name) return send(422, validation('name', 'Field required'));
    if (files.length === 0) return send(422, validation('files', 'Field required'));
    if (files.some((f) => f.bytes.length === 0 || !looksLikeAudio(f.bytes))) {
      return send(400, detail('invalid_audio', 'One or more uploaded files are not valid audio.'));
    }
    const labels = record.fields?.labels?.[0] ? (JSON.parse(record.fields.labels[0]) as Record<string, string>) : {};
    const voiceId = randomBytes(10).toString('base64url').slice(0, 20);
    this.voices.set(voiceId, { name, labels, files });
    send(200, { voice_id: voiceId, requires_verification: false });
  }

  private async tts(record: ElevenLabsRequest, url: URL, res: ServerResponse, send: (s: number, p: unknown) => void): Promise<void> {
    const voiceId = decodeURIComponent(url.pathname.split('/')[3] ?? '');
    const json = record.json ?? {};
    const text = typeof json.text === 'string' ? json.text : undefined;
    if (text === undefined) return send(422, validation('text', 'Field required'));
    const modelId = typeof json.model_id === 'string' ? json.model_id : 'eleven_multilingual_v2';
    const model = MODELS[modelId];
    if (!model) return send(400, detail('model_not_found', `Model ${modelId} does not exist.`));
    if (!this.voices.has(voiceId) && !PREMADE_VOICE_IDS.includes(voiceId)) {
      return send(400, detail('voice_not_found', `A voice with voice_id ${voiceId} was not found.`));
    }
    if (text.length > model.maxChars) {
      return send(400, detail('max_character_limit_exceeded', `This request's text has ${text.length} characters and exceeds the character limit of ${model.maxChars} characters.`));
    }
    const format = url.searchParams.get('output_format') ?? 'mp3_44100_128';
    const match = /^(mp3|opus)_(\d+)_(\d+)$/.exec(format);
    if (!match || (match[1] === 'opus' && match[2] !== '48000')) {
      return send(422, { detail: [{ loc: ['query', 'output_format'], msg: `Unsupported output format ${format}`, type: 'enum' }] });
    }
    const kbps = Number(match[3]);
    const codec = this.ttsAudio === 'mp3' ? 'mp3' : (match[1] as 'mp3' | 'opus');
    const bytes = this.ttsAudio === 'empty' ? Buffer.alloc(0) : await this.audio(text, codec, kbps);
    record.status = 200;
    res.writeHead(200, {
      'content-type': codec === 'mp3' ? 'audio/mpeg' : 'audio/ogg',
      'request-id': randomBytes(8).toString('hex'),
      'x-character-count': String(text.length),
    });
    res.end(bytes);
  }

  private async audio(text: string, codec: 'mp3' | 'opus', kbps: number): Promise<Buffer> {
    const key = `${codec}:${kbps}:${text}`;
    let bytes = this.audioCache.get(key);
    if (!bytes) {
      const wav = await espeakWav(text);
      bytes = codec === 'mp3' ? await toMp3(wav, kbps) : await toOggOpus(wav, kbps);
      this.audioCache.set(key, bytes);
    }
    return bytes;
  }

  private stt(record: ElevenLabsRequest, send: (s: number, p: unknown) => void): void {
    const modelId = record.fields?.model_id?.[0];
    if (!modelId) return send(422, validation('model_id', 'Field required'));
    if (!STT_MODELS.includes(modelId)) return send(400, detail('model_not_found', `Model ${modelId} does not exist.`));
    const file = record.files?.find((f) => f.field === 'file');
    if (!file) return send(422, validation('file', 'Either file or cloud_storage_url must be provided.'));
    const fileFormat = record.fields?.file_format?.[0] ?? 'other';
    let durationSec: number;
    if (fileFormat === 'pcm_s16le_16') {
      durationSec = file.bytes.length / 32_000;
    } else if (file.bytes.subarray(0, 4).toString('latin1') === 'RIFF') {
      durationSec = (file.bytes.length - 44) / file.bytes.readUInt32LE(28);
    } else {
      return send(400, detail('invalid_audio', 'Could not decode the uploaded file.'));
    }
    if (durationSec < 0.1) return send(400, detail('audio_too_short', 'Audio must be at least 100 ms long.'));
    const words = this.sttText.split(/\s+/).filter(Boolean);
    const step = durationSec / Math.max(1, words.length);
    send(200, {
      language_code: this.sttLanguageCode,
      language_probability: 0.97,
      text: this.sttText,
      words: words.map((text, i) => ({ text, start: i * step, end: (i + 1) * step, type: 'word', speaker_id: 'speaker_0', logprob: -0.1 })),
      audio_duration_secs: durationSec,
      transcription_id: randomBytes(8).toString('hex'),
    });
  }
}
