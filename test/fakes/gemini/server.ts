/**
 * A local Gemini API (Google AI, `generativelanguage.googleapis.com`) for tests, following the
 * API reference https://ai.google.dev/api:
 *
 * - `POST /v1beta/models/{model}:generateContent` (https://ai.google.dev/api/generate-content):
 *   `{ contents: [{ role: user|model, parts: [{ text } | { inlineData: { mimeType, data } }] }],
 *   systemInstruction: { parts }, generationConfig: { temperature, maxOutputTokens, seed,
 *   responseMimeType, responseSchema, thinkingConfig } }` →
 *   `{ candidates: [{ content: { role: "model", parts: [{ text }] }, finishReason, index }],
 *   usageMetadata: { promptTokenCount, candidatesTokenCount, totalTokenCount }, modelVersion, responseId }`
 * - `POST /v1beta/models/{model}:streamGenerateContent?alt=sse`
 *   (https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent): the same
 *   request; the answer as server-sent events, `data: <GenerateContentResponse>` each, the text
 *   split over the events (a few words each), `finishReason` and `usageMetadata` on the last
 * - `POST /v1beta/models/{model}:embedContent` and `:batchEmbedContents`
 *   (https://ai.google.dev/api/embeddings) → `{ embedding: { values } }` / `{ embeddings: [{ values }] }`
 * - `GET /v1beta/models/{model}` (https://ai.google.dev/api/models#method:-models.get)
 *
 * Authentication: the `x-goog-api-key` header (https://ai.google.dev/api#authentication).
 * Errors are `google.rpc.Status` bodies `{ error: { code, message, status, details } }`
 * (https://ai.google.dev/gemini-api/docs/troubleshooting#error-codes): an invalid key is
 * 400 INVALID_ARGUMENT with `ErrorInfo.reason = API_KEY_INVALID`; 429 RESOURCE_EXHAUSTED carries
 * `google.rpc.RetryInfo.retryDelay` (https://cloud.google.com/apis/design/errors#error_details);
 * 503 UNAVAILABLE is "The model is overloaded".
 *
 * Audio counts 32 tokens per second (https://ai.google.dev/gemini-api/docs/audio#technical-details).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

export type GeminiRoute = 'generate' | 'stream' | 'embed' | 'batchEmbed' | 'model';

export interface GeminiFault {
  status: number;
  /** google.rpc code name, e.g. RESOURCE_EXHAUSTED. */
  rpcStatus?: string;
  message?: string;
  /** Put into a RetryInfo detail as `"<n>s"`. */
  retryDelaySec?: number;
  delayMs?: number;
}

/** The parts of a generateContent request the fake and tests look at. */
export interface GenerateRequest {
  contents?: { role?: string; parts?: { text?: string; inlineData?: { mimeType: string; data: string } }[] }[];
  systemInstruction?: { parts?: { text?: string }[] };
  generationConfig?: {
    temperature?: number;
    maxOutputTokens?: number;
    seed?: number;
    responseMimeType?: string;
    responseSchema?: Schema;
    thinkingConfig?: { thinkingBudget?: number };
  };
}

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  required?: string[];
}

export interface GeminiRequest {
  route: GeminiRoute | 'unknown';
  method: string;
  path: string;
  model?: string;
  headers: IncomingMessage['headers'];
  json?: Record<string, unknown>;
  status?: number;
}

const STATUS_NAMES: Record<number, string> = { 400: 'INVALID_ARGUMENT', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED' };

function rpcError(code: number, message: string, status = STATUS_NAMES[code] ?? 'UNKNOWN', details: unknown[] = []): { error: { code: number; message: string; status: string; details?: unknown[] } } {
  return { error: { code, message, status, ...(details.length > 0 ? { details } : {}) } };
}

/** A value matching a (Gemini OpenAPI-subset) response schema, with string leaves from `fill`. */
function instanceOf(schema: Schema | undefined, fill: (path: string) => string, path = ''): unknown {
  switch (schema?.type?.toUpperCase()) {
    case 'OBJECT':
      return Object.fromEntries(Object.entries(schema?.properties ?? {}).map(([k, s]) => [k, instanceOf(s, fill, path ? `${path}.${k}` : k)]));
    case 'ARRAY':
      return [instanceOf(schema?.items, fill, `${path}[0]`)];
    case 'INTEGER':
    case 'NUMBER':
      return 1;
    case 'BOOLEAN':
      return true;
    default:
      return fill(path);
  }
}

/** A deterministic unit vector from the words of `text` (similar texts get similar vectors). */
export function fakeEmbedding(text: string, dimensions: number): number[] {
  const v = new Array<number>(dimensions).fill(0);
  for (const word of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
    const h = createHash('sha256').update(word).digest();
    for (let i = 0; i < 4; i++) {
      const j = h.readUInt32LE(i * 4) % dimensions;
      v[j] = (v[j] ?? 0) + ((h[16 + i] ?? 0) % 2 === 0 ? 1 : -1);
    }
  }
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => x / norm);
}

/** The parts of a generateContent answer that the streamed form splits. */
interface StreamPayload {
  candidates?: { content: { role: string; parts: { text: string }[] }; finishReason: string; index: number }[];
  usageMetadata?: unknown;
  modelVersion?: string;
  responseId?: string;
}

export class GeminiFake {
  readonly requests: GeminiRequest[] = [];
  /** What the "model" answers to a generateContent request; undefined → the default answer. */
  respond: ((request: GenerateRequest) => string | undefined) | undefined;
  /** What the "model" hears in audio parts. */
  sttText = '';
  /** Language the "model" says the audio is in. */
  sttLanguageCode = 'en';
  /** Answer with no candidate and `promptFeedback.blockReason` (a blocked prompt). */
  blockNext = false;
  /** Words per server-sent event of a streamed answer, and the pause between events, ms. */
  streamWordsPerEvent = 3;
  streamEventDelayMs = 0;
  private readonly faults = new Map<GeminiRoute, GeminiFault[]>();
  private server!: Server;
  baseUrl = '';

  private constructor(readonly apiKey: string) {}

  static async start(options: { apiKey: string }): Promise<GeminiFake> {
    const fake = new GeminiFake(options.apiKey);
    fake.server = createServer((req, res) => {
      fake.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify(rpcError(500, String(err))));
      });
    });
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.baseUrl = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  inject(route: GeminiRoute, fault: GeminiFault, times = 1): void {
    const queue = this.faults.get(route) ?? [];
    for (let i = 0; i < times; i++) queue.push(fault);
    this.faults.set(route, queue);
  }

  on(route: GeminiRoute): GeminiRequest[] {
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
    const match = /^\/v1beta\/models\/([^/:]+)(?::(generateContent|streamGenerateContent|embedContent|batchEmbedContents))?$/.exec(url.pathname);
    const action = match?.[2];
    const route: GeminiRoute | 'unknown' = !match
      ? 'unknown'
      : action === 'generateContent' && req.method === 'POST'
        ? 'generate'
        : action === 'streamGenerateContent' && req.method === 'POST' && url.searchParams.get('alt') === 'sse'
          ? 'stream'
        : action === 'embedContent' && req.method === 'POST'
          ? 'embed'
          : action === 'batchEmbedContents' && req.method === 'POST'
            ? 'batchEmbed'
            : !action && req.method === 'GET'
              ? 'model'
              : 'unknown';
    const record: GeminiRequest = { route, method: req.method ?? 'GET', path: url.pathname, model: match?.[1], headers: req.headers };
    this.requests.push(record);
    const send = (status: number, payload: unknown): void => {
      record.status = status;
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
      res.end(JSON.stringify(payload));
    };
    const key = req.headers['x-goog-api-key'] ?? url.searchParams.get('key');
    if (!key) return send(403, rpcError(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."));
    if (key !== this.apiKey) {
      return send(400, rpcError(400, 'API key not valid. Please pass a valid API key.', 'INVALID_ARGUMENT', [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com' }]));
    }
    if (route === 'unknown') return send(404, rpcError(404, `Unknown path ${url.pathname}`));
    const fault = this.faults.get(route)?.shift();
    if (fault) {
      if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
      const details = fault.retryDelaySec !== undefined ? [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${fault.retryDelaySec}s` }] : [];
      const defaults: Record<number, string> = { 429: 'You exceeded your current quota, please check your plan and billing details.', 503: 'The model is overloaded. Please try again later.' };
      return send(fault.status, rpcError(fault.status, fault.message ?? defaults[fault.status] ?? 'Injected failure', fault.rpcStatus, details));
    }
    if (body.length > 0) {
      try {
        record.json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      } catch {
        return send(400, rpcError(400, 'Invalid JSON payload received.'));
      }
    }
    const model = match?.[1] ?? '';
    switch (route) {
      case 'model':
        return send(200, { name: `models/${model}`, version: '001', displayName: model, inputTokenLimit: 1_048_576, outputTokenLimit: 65_536, supportedGenerationMethods: ['generateContent', 'countTokens'] });
      case 'generate':
        return this.generate(model, record.json as GenerateRequest | undefined, send);
      case 'stream':
        return this.generate(model, record.json as GenerateRequest | undefined, (status, payload) => {
          if (status !== 200) return send(status, payload);
          void this.streamEvents(res, record, payload as StreamPayload);
        });
      case 'embed': {
        const request = record.json as { content?: { parts?: { text?: string }[] }; outputDimensionality?: number };
        const text = (request.content?.parts ?? []).map((p) => p.text ?? '').join(' ');
        return send(200, { embedding: { values: fakeEmbedding(text, request.outputDimensionality ?? 3072) } });
      }
      case 'batchEmbed': {
        const requests = (record.json?.requests ?? []) as { model?: string; content?: { parts?: { text?: string }[] }; outputDimensionality?: number; taskType?: string }[];
        if (requests.length === 0 || requests.length > 100) return send(400, rpcError(400, '* BatchEmbedContentsRequest.requests: must contain between 1 and 100 requests'));
        if (requests.some((r) => r.model !== `models/${model}`)) return send(400, rpcError(400, 'Model in each request must match the batch model.'));
        return send(200, {
          embeddings: requests.map((r) => ({ values: fakeEmbedding((r.content?.parts ?? []).map((p) => p.text ?? '').join(' '), r.outputDimensionality ?? 3072) })),
        });
      }
    }
  }

  /** Writes a generateContent answer as server-sent events, its text a few words per event. */
  private async streamEvents(res: ServerResponse, record: GeminiRequest, payload: StreamPayload): Promise<void> {
    record.status = 200;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const candidate = payload.candidates?.[0];
    const words = (candidate?.content.parts[0]?.text ?? '').split(/(?<=\s)/);
    const pieces: string[] = [];
    for (let i = 0; i < words.length; i += this.streamWordsPerEvent) pieces.push(words.slice(i, i + this.streamWordsPerEvent).join(''));
    if (!candidate) pieces.push('');
    for (const [i, text] of pieces.entries()) {
      if (i > 0 && this.streamEventDelayMs > 0) await new Promise((r) => setTimeout(r, this.streamEventDelayMs));
      if (res.destroyed) return;
      const last = i === pieces.length - 1;
      const event = candidate
        ? { candidates: [{ content: { role: 'model', parts: [{ text }] }, index: 0, ...(last ? { finishReason: candidate.finishReason } : {}) }], ...(last ? { usageMetadata: payload.usageMetadata } : {}), modelVersion: payload.modelVersion, responseId: payload.responseId }
        : payload;
      res.write(`data: ${JSON.stringify(event)}\r\n\r\n`);
    }
    res.end();
  }

  private generate(model: string, request: GenerateRequest | undefined, send: (s: number, p: unknown) => void): void {
    const contents = request?.contents ?? [];
    if (contents.length === 0) return send(400, rpcError(400, '* GenerateContentRequest.contents: contents is not specified'));
    for (const [i, c] of contents.entries()) {
      if (c.role !== 'user' && c.role !== 'model') return send(400, rpcError(400, `* GenerateContentRequest.contents[${i}].role: must be user or model`));
      if (!c.parts || c.parts.length === 0) return send(400, rpcError(400, `* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.`));
    }
    if (contents.at(-1)?.role !== 'user') return send(400, rpcError(400, 'Please ensure that the last turn is a user turn.'));
    let promptTokens = 0;
    let hasAudio = false;
    const partsOf = (c: { parts?: { text?: string; inlineData?: { mimeType: string; data: string } }[] }) => c.parts ?? [];
    for (const c of [...contents, request?.systemInstruction ?? {}]) {
      for (const p of partsOf(c)) {
        if (p.text) promptTokens += Math.ceil(p.text.length / 4);
        if (p.inlineData) {
          const bytes = Buffer.from(p.inlineData.data, 'base64');
          if (p.inlineData.mimeType === 'audio/wav') {
            if (bytes.subarray(0, 4).toString('latin1') !== 'RIFF') return send(400, rpcError(400, 'Request contains an invalid argument.'));
            promptTokens += Math.ceil(((bytes.length - 44) / bytes.readUInt32LE(28)) * 32);
            hasAudio = true;
          }
        }
      }
    }
    if (this.blockNext) {
      this.blockNext = false;
      return send(200, { promptFeedback: { blockReason: 'SAFETY', safetyRatings: [] }, usageMetadata: { promptTokenCount: promptTokens, totalTokenCount: promptTokens }, modelVersion: model });
    }
    const config = request?.generationConfig ?? {};
    const lastUser = (contents.at(-1)?.parts ?? []).map((p) => p.text ?? '').join(' ');
    let text = this.respond?.(request as GenerateRequest);
    if (text === undefined) {
      // A transcription request hears `sttText`; other string fields are filled with their path.
      const fill = (path: string): string => (hasAudio && path === 'text' ? this.sttText : hasAudio && path === 'languageCode' ? this.sttLanguageCode : `fake ${path}`);
      if (config.responseMimeType === 'application/json') text = JSON.stringify(instanceOf(config.responseSchema, fill));
      else if (hasAudio) text = this.sttText;
      else text = `I hear you: ${lastUser}`;
    }
    const outputTokens = Math.ceil(text.length / 4);
    let finishReason = 'STOP';
    if (config.maxOutputTokens !== undefined && outputTokens > config.maxOutputTokens) {
      text = text.slice(0, config.maxOutputTokens * 4);
      finishReason = 'MAX_TOKENS';
    }
    send(200, {
      candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason, index: 0 }],
      usageMetadata: { promptTokenCount: promptTokens, candidatesTokenCount: Math.ceil(text.length / 4), totalTokenCount: promptTokens + Math.ceil(text.length / 4) },
      modelVersion: model,
      responseId: randomBytes(9).toString('base64url'),
    });
  }
}
