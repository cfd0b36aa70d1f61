/**
 * A local Replicate API for tests, following the HTTP API reference
 * (https://replicate.com/docs/reference/http) and the predictions guide
 * (https://replicate.com/docs/topics/predictions/create-a-prediction):
 *
 * - `POST /v1/models/{owner}/{name}/predictions` `{ input }` → 201 prediction object
 *   (`id`, `model`, `version`, `input`, `status` starting|processing|succeeded|failed|canceled,
 *   `output`, `error`, `logs`, `metrics.predict_time`, `urls.get|cancel|stream|web`, timestamps).
 *   `Prefer: wait[=n]` (sync mode) holds the request up to n seconds (default 60) and returns the
 *   prediction as it stands then.
 * - `GET /v1/predictions/{id}`, `POST /v1/predictions/{id}/cancel`
 * - `POST /v1/files` (multipart `content`, `metadata`) → 201 file object with `urls.get`;
 *   `GET /v1/files/{id}`, `GET /v1/files/{id}/download`
 * - `GET /v1/models/{owner}/{name}` → model object
 *
 * Authentication: `Authorization: Bearer <token>`. Errors are problem details
 * (`application/problem+json`: `{ title, detail, status }`), 429 carries `Retry-After`.
 * Inputs follow `resemble-ai/chatterbox` (https://replicate.com/resemble-ai/chatterbox/api):
 * `prompt` (required), `audio_prompt` (URL or data URI), `exaggeration` 0.25–2, `cfg_weight`
 * 0.2–1, `temperature` 0.05–5, `seed`; the output is the URI of a WAV file. Output files are
 * served without authentication, as `replicate.delivery` URLs are.
 *
 * Audio is real: espeak-ng speech of the prompt, resampled by ffmpeg to 24 kHz (Chatterbox's
 * output rate), as 16-bit or 32-bit float WAV.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { espeakWav, toWav } from '../elevenlabs/audio.js';

export type ReplicateRoute = 'create' | 'get' | 'cancel' | 'files' | 'file' | 'model' | 'delivery';

export interface ReplicateFault {
  status: number;
  title?: string;
  detail?: string;
  retryAfterSec?: number;
  delayMs?: number;
}

export interface ReplicateRequest {
  route: ReplicateRoute | 'unknown';
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  json?: Record<string, unknown>;
  status?: number;
}

/** A prediction as the fake keeps it. */
export interface FakePrediction {
  id: string;
  model: string;
  input: Record<string, unknown>;
  status: 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled';
  output: string | null;
  error: string | null;
  createdAt: string;
  completedAt?: string;
  /** Bytes of the reference audio the prediction received (decoded data URI or uploaded file). */
  referenceBytes?: Buffer;
  readyAtMs: number;
  willFail: boolean;
}

const WAV_RATE_HZ = 24_000;

function problem(status: number, title: string, detail: string): { title: string; detail: string; status: number } {
  return { title, detail, status };
}

export class ReplicateFake {
  readonly requests: ReplicateRequest[] = [];
  readonly predictions = new Map<string, FakePrediction>();
  readonly files = new Map<string, { bytes: Buffer; contentType: string; name: string }>();
  /** How long a prediction runs, ms. */
  processingMs = 50;
  /** Predictions that will end `failed` (counted down). */
  failNextPredictions = 0;
  /** Sample format of output WAVs. */
  outputCodec: 'pcm_s16le' | 'pcm_f32le' = 'pcm_f32le';
  /** Highest number of predictions running at once (for concurrency checks). */
  maxConcurrent = 0;
  private readonly faults = new Map<ReplicateRoute, ReplicateFault[]>();
  private readonly outputs = new Map<string, Promise<Buffer>>();
  private server!: Server;
  baseUrl = '';

  private constructor(readonly token: string) {}

  static async start(options: { token: string }): Promise<ReplicateFake> {
    const fake = new ReplicateFake(options.token);
    fake.server = createServer((req, res) => {
      fake.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/problem+json' });
        res.end(JSON.stringify(problem(500, 'Internal Server Error', String(err))));
      });
    });
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.baseUrl = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  /** API root the SDK should use (`baseUrl` of the Replicate client). */
  get apiUrl(): string {
    return `${this.baseUrl}/v1`;
  }

  inject(route: ReplicateRoute, fault: ReplicateFault, times = 1): void {
    const queue = this.faults.get(route) ?? [];
    for (let i = 0; i < times; i++) queue.push(fault);
    this.faults.set(route, queue);
  }

  on(route: ReplicateRoute): ReplicateRequest[] {
    return this.requests.filter((r) => r.route === route);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private route(method: string, path: string): ReplicateRoute | 'unknown' {
    if (method === 'POST' && /^\/v1\/models\/[^/]+\/[^/]+\/predictions$/.test(path)) return 'create';
    if (method === 'GET' && /^\/v1\/predictions\/[^/]+$/.test(path)) return 'get';
    if (method === 'POST' && /^\/v1\/predictions\/[^/]+\/cancel$/.test(path)) return 'cancel';
    if (method === 'POST' && path === '/v1/files') return 'files';
    if (method === 'GET' && /^\/v1\/files\/[^/]+(\/download)?$/.test(path)) return 'file';
    if (method === 'GET' && /^\/v1\/models\/[^/]+\/[^/]+$/.test(path)) return 'model';
    if (method === 'GET' && /^\/delivery\/[^/]+\/output\.wav$/.test(path)) return 'delivery';
    return 'unknown';
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const route = this.route(req.method ?? 'GET', url.pathname);
    const record: ReplicateRequest = { route, method: req.method ?? 'GET', path: url.pathname, headers: req.headers };
    this.requests.push(record);
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      if (res.destroyed) return;
      const type = status >= 400 ? 'application/problem+json' : 'application/json';
      res.writeHead(status, { 'content-type': type, ...headers });
      res.end(JSON.stringify(payload));
    };

    if (route !== 'delivery' && req.headers.authorization !== `Bearer ${this.token}`) {
      return send(401, problem(401, 'Unauthenticated', 'You did not pass a valid authentication token'));
    }
    if (route === 'unknown') return send(404, problem(404, 'Not found', 'The requested resource could not be found.'));
    const fault = this.faults.get(route)?.shift();
    if (fault) {
      if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
      const headers: Record<string, string> = fault.retryAfterSec !== undefined ? { 'retry-after': String(fault.retryAfterSec) } : {};
      const title = fault.title ?? (fault.status === 429 ? 'Request was throttled.' : 'Server error');
      const detail = fault.detail ?? (fault.status === 429 ? `Request was throttled. Expected available in ${fault.retryAfterSec ?? 1} second.` : 'Injected failure');
      return send(fault.status, problem(fault.status, title, detail), headers);
    }
    const contentType = req.headers['content-type'] ?? '';
    if (contentType.startsWith('application/json') && body.length > 0) record.json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;

    switch (route) {
      case 'model': {
        const [, , , owner, name] = url.pathname.split('/');
        return send(200, { url: `https://replicate.com/${owner}/${name}`, owner, name, description: 'fake model', visibility: 'public', latest_version: { id: 'f'.repeat(64), created_at: new Date().toISOString() } });
      }
      case 'files':
        return this.createFile(contentType, body, send);
      case 'file': {
        const [, , , id, download] = url.pathname.split('/');
        const file = this.files.get(id ?? '');
        if (!file) return send(404, problem(404, 'Not found', 'File not found'));
        if (!download) return send(200, this.fileObject(id as string, file));
        record.status = 200;
        res.writeHead(200, { 'content-type': file.contentType });
        return void res.end(file.bytes);
      }
      case 'delivery': {
        const id = url.pathname.split('/')[2] ?? '';
        const output = this.outputs.get(id);
        if (!output) return send(404, problem(404, 'Not found', 'Output not found'));
        const bytes = await output;
        record.status = 200;
        res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': String(bytes.length) });
        return void res.end(bytes);
      }
      case 'create':
        return this.createPrediction(url, req, record, send);
      case 'get': {
        const prediction = this.predictions.get(url.pathname.split('/')[3] ?? '');
        if (!prediction) return send(404, problem(404, 'Not found', 'Prediction not found'));
        return send(200, this.view(prediction));
      }
      case 'cancel': {
        const prediction = this.predictions.get(url.pathname.split('/')[3] ?? '');
        if (!prediction) return send(404, problem(404, 'Not found', 'Prediction not found'));
        this.settle(prediction);
        if (prediction.status === 'starting' || prediction.status === 'processing') {
          prediction.status = 'canceled';
          prediction.completedAt = new Date().toISOString();
        }
        return send(200, this.view(prediction));
      }
    }
  }

  private async createFile(contentType: string, body: Buffer, send: (s: number, p: unknown) => void): Promise<void> {
    if (!contentType.startsWith('multipart/form-data')) return send(415, problem(415, 'Unsupported Media Type', 'Expected multipart/form-data'));
    const form = await new Request('http://fake/', { method: 'POST', headers: { 'content-type': contentType }, body }).formData();
    const content = form.get('content');
    if (!content || typeof content === 'string') return send(422, problem(422, 'Invalid request', 'content is required'));
    const id = randomBytes(12).toString('hex');
    const file = { bytes: Buffer.from(await content.arrayBuffer()), contentType: content.type || 'application/octet-stream', name: content.name };
    this.files.set(id, file);
    send(201, this.fileObject(id, file));
  }

  private fileObject(id: string, file: { bytes: Buffer; contentType: string; name: string }): Record<string, unknown> {
    return {
      id,
      name: file.name,
      content_type: file.contentType,
      size: file.bytes.length,
      etag: id,
      checksums: {},
      metadata: {},
      created_at: new Date().toISOString(),
      expires_at: new Date(Date.now() + 86_400_000).toISOString(),
      urls: { get: `${this.apiUrl}/files/${id}` },
    };
  }

  private async createPrediction(url: URL, req: IncomingMessage, record: ReplicateRequest, send: (s: number, p: unknown, h?: Record<string, string>) => void): Promise<void> {
    const [, , , owner, name] = url.pathname.split('/');
    const input = (record.json?.input ?? {}) as Record<string, unknown>;
    const invalid: string[] = [];
    if (typeof input.prompt !== 'string' || input.prompt.length === 0) invalid.push('prompt is required');
    const range = (field: string, min: number, max: number): void => {
      const v = input[field];
      if (v !== undefined && (typeof v !== 'number' || v < min || v > max)) invalid.push(`${field} must be between ${min} and ${max}`);
    };
    range('exaggeration', 0.25, 2);
    range('cfg_weight', 0.2, 1);
    range('temperature', 0.05, 5);
    let referenceBytes: Buffer | undefined;
    if (input.audio_prompt !== undefined) {
      const ref = String(input.audio_prompt);
      const dataUri = /^data:([^;,]+)?;base64,(.*)$/s.exec(ref);
      if (dataUri) referenceBytes = Buffer.from(dataUri[2] ?? '', 'base64');
      else if (ref.startsWith(`${this.apiUrl}/files/`)) referenceBytes = this.files.get(ref.slice(`${this.apiUrl}/files/`.length))?.bytes;
      if (!referenceBytes) invalid.push('audio_prompt could not be fetched');
      else if (referenceBytes.subarray(0, 4).toString('latin1') !== 'RIFF') invalid.push('audio_prompt is not a WAV file');
    }
    if (invalid.length > 0) {
      return send(422, { ...problem(422, 'Input validation failed', invalid.map((m) => `- input: ${m}`).join('\n')), invalid_fields: invalid.map((description) => ({ type: 'invalid', field: 'input', description })) });
    }
    const id = randomBytes(10).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, 'x').slice(0, 26);
    const prediction: FakePrediction = {
      id,
      model: `${owner}/${name}`,
      input,
      status: 'starting',
      output: null,
      error: null,
      createdAt: new Date().toISOString(),
      referenceBytes,
      readyAtMs: Date.now() + this.processingMs,
      willFail: this.failNextPredictions > 0,
    };
    if (prediction.willFail) this.failNextPredictions--;
    this.predictions.set(id, prediction);
    this.outputs.set(id, espeakWav(String(input.prompt)).then((wav) => toWav(wav, WAV_RATE_HZ, this.outputCodec)));
    const running = [...this.predictions.values()].filter((p) => p.readyAtMs > Date.now() && p.status !== 'canceled').length;
    this.maxConcurrent = Math.max(this.maxConcurrent, running);

    const prefer = /^wait(?:=(\d+))?$/.exec(String(req.headers.prefer ?? ''));
    if (prefer) {
      const holdMs = Math.min(Number(prefer[1] ?? 60) * 1000, Math.max(0, prediction.readyAtMs - Date.now()));
      await new Promise((r) => setTimeout(r, holdMs));
      if (!prediction.willFail) await this.outputs.get(id);
    }
    this.settle(prediction);
    send(201, this.view(prediction), { location: `${this.apiUrl}/predictions/${id}` });
  }

  /** Moves a prediction to its final state once its time has come. */
  private settle(p: FakePrediction): void {
    if (p.status === 'canceled' || p.status === 'succeeded' || p.status === 'failed') return;
    if (Date.now() < p.readyAtMs) {
      p.status = 'processing';
      return;
    }
    p.completedAt = new Date().toISOString();
    if (p.willFail) {
      p.status = 'failed';
      p.error = 'CUDA error: out of memory';
    } else {
      p.status = 'succeeded';
      p.output = `${this.baseUrl}/delivery/${p.id}/output.wav`;
    }
  }

  private view(p: FakePrediction): Record<string, unknown> {
    this.settle(p);
    return {
      id: p.id,
      model: p.model,
      version: 'hidden',
      input: p.input,
      logs: '',
      output: p.output,
      data_removed: false,
      error: p.error,
      source: 'api',
      status: p.status,
      created_at: p.createdAt,
      started_at: p.createdAt,
      completed_at: p.completedAt ?? null,
      urls: {
        cancel: `${this.apiUrl}/predictions/${p.id}/cancel`,
        get: `${this.apiUrl}/predictions/${p.id}`,
        stream: `${this.baseUrl}/stream/${p.id}`,
        web: `https://replicate.com/p/${p.id}`,
      },
      metrics: p.status === 'succeeded' ? { predict_time: this.processingMs / 1000, total_time: this.processingMs / 1000 } : {},
    };
  }
}
