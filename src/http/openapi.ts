/**
 * One description per REST route, used twice: to register the Fastify route (requests validated
 * with the route's zod schemas) and to generate the OpenAPI 3.1 document (`GET /v1/openapi.json`)
 * from the same schemas, through zod 4's JSON Schema output (draft 2020-12, the dialect of
 * OpenAPI 3.1: https://spec.openapis.org/oas/v3.1.0#schema-object).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { z } from 'zod';
import { HttpProblem, PROBLEM_CONTENT_TYPE } from './problem.js';

/** A response of a route: JSON described by `schema`, or binary `contentTypes`, or nothing (204). */
export interface RouteResponse {
  description: string;
  schema?: z.ZodType;
  /** Binary media types (audio); the body is described as a binary string. */
  contentTypes?: string[];
}

/** What a handler receives. */
export interface RouteContext<B, Q> {
  req: FastifyRequest;
  reply: FastifyReply;
  /** The validated JSON body, or the raw bytes of an audio upload. */
  body: B;
  query: Q;
  params: Record<string, string>;
  /** The authenticated person (routes with `auth`). */
  userKey: string;
}

/** One REST route. `path` uses OpenAPI's `{param}` syntax. */
export interface ApiRoute<B = unknown, Q = unknown> {
  method: 'get' | 'post' | 'put' | 'delete';
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  /** Needs `Authorization: Bearer <API key>`. */
  auth: boolean;
  /** JSON request body schema. */
  body?: z.ZodType<B>;
  /** Accepts a raw audio body (any `audio/*` or `application/octet-stream`) up to `MAX_AUDIO_BYTES`; with `body` too, either. */
  audioBody?: boolean;
  /** Accepts `multipart/form-data` with one audio file field `audio` (and small text fields), read by the handler. */
  multipart?: { fields: Record<string, string> };
  query?: z.ZodType<Q>;
  responses: Record<number, RouteResponse>;
  handler(ctx: RouteContext<B, Q>): Promise<unknown>;
}

/** The problem document schema (RFC 9457), shared by every error response. */
export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    code: z.string().optional(),
    retryAfterSec: z.number().optional(),
  })
  .meta({ description: 'RFC 9457 problem details' });

/** Defines a route with its types inferred from the schemas. */
export function route<B = undefined, Q = Record<string, never>>(r: ApiRoute<B, Q>): ApiRoute<B, Q> {
  return r;
}

/**
 * Registers routes on Fastify: JSON bodies and queries validated with zod (400 problem on
 * failure), `auth` routes behind `authenticate` (which sets the user key or throws 401).
 */
export function registerRoutes(
  app: FastifyInstance,
  routes: ApiRoute<never, never>[] | ApiRoute[],
  options: { authenticate: onRequestHookHandler[]; audioBodyLimitBytes: number; jsonBodyLimitBytes: number },
): void {
  for (const r of routes as ApiRoute[]) {
    app.route({
      method: r.method.toUpperCase() as 'GET',
      url: r.path.replace(/\{(\w+)\}/g, ':$1'),
      bodyLimit: r.audioBody ? options.audioBodyLimitBytes : options.jsonBodyLimitBytes,
      onRequest: [
        ...(r.auth ? options.authenticate : []),
        async (req) => {
          // A JSON body on a route that also takes audio keeps the JSON limit.
          const declared = Number(req.headers['content-length']);
          if (r.audioBody && isJson(req) && declared > options.jsonBodyLimitBytes) throw new HttpProblem(413, 'BODY_TOO_LARGE', 'A JSON body may be at most 1 MB.');
          // Multipart bodies are streamed to the handler: refuse an announced oversize one unread.
          if (r.multipart && declared > options.audioBodyLimitBytes + 64 * 1024) throw new HttpProblem(413, 'BODY_TOO_LARGE', 'The upload is larger than MAX_AUDIO_BYTES.');
        },
      ],
      handler: async (req, reply) => {
        let body: unknown;
        if (r.multipart) body = undefined;
        else if (r.audioBody && Buffer.isBuffer(req.body)) body = req.body;
        else if (r.body) body = parse(r.body, req.body ?? {}, 'body');
        else if (r.audioBody) throw new HttpProblem(415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the audio as the request body with an audio/* Content-Type.');
        const query = r.query ? parse(r.query, req.query ?? {}, 'query') : {};
        const result = await r.handler({ req, reply, body, query, params: req.params as Record<string, string>, userKey: (req as AuthedRequest).userKey ?? '' });
        if (reply.sent) return reply;
        if (result === undefined) return reply.code(reply.statusCode === 200 ? 204 : reply.statusCode).send();
        return reply.send(result);
      },
    });
  }
}

/** A request after authentication. */
export interface AuthedRequest extends FastifyRequest {
  userKey?: string;
  apiKeyId?: string;
}

function isJson(req: FastifyRequest): boolean {
  return /^application\/json/i.test(req.headers['content-type'] ?? '');
}

function parse<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const at = issue.path.length ? `${where}.${issue.path.join('.')}` : where;
  throw new HttpProblem(400, 'VALIDATION', `${at}: ${issue.message}`);
}

/**
 * The OpenAPI 3.1 document of `routes`: paths, operations, request bodies, responses (every
 * operation also lists the shared problem response for errors), bearer security.
 */
export function openApiDocument(routes: ApiRoute<never, never>[] | ApiRoute[], info: { title: string; version: string; description: string }): Record<string, unknown> {
  const schemas: Record<string, unknown> = {};
  const toSchema = (schema: z.ZodType, io: 'input' | 'output'): unknown => {
    const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any', reused: 'inline' }) as Record<string, unknown>;
    delete json.$schema;
    return json;
  };
  schemas.Problem = toSchema(ProblemSchema, 'output');
  const problem = { description: 'An error (RFC 9457 problem details)', content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: '#/components/schemas/Problem' } } } };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes as ApiRoute[]) {
    const params = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const queryParams: unknown[] = [];
    if (r.query) {
      const q = toSchema(r.query, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {})) queryParams.push({ name, in: 'query', required: q.required?.includes(name) ?? false, schema });
    }
    const content: Record<string, unknown> = {};
    if (r.body) content['application/json'] = { schema: toSchema(r.body, 'input') };
    if (r.audioBody) content['audio/*'] = { schema: { type: 'string', contentMediaType: 'audio/*' } };
    if (r.multipart) {
      content['multipart/form-data'] = {
        schema: {
          type: 'object',
          properties: { audio: { type: 'string', contentMediaType: 'audio/*', description: 'the recording' }, ...Object.fromEntries(Object.entries(r.multipart.fields).map(([k, d]) => [k, { type: 'string', description: d }])) },
        },
      };
    }
    const responses: Record<string, unknown> = {};
    for (const [status, res] of Object.entries(r.responses)) {
      const c: Record<string, unknown> = {};
      if (res.schema) c['application/json'] = { schema: toSchema(res.schema, 'output') };
      for (const type of res.contentTypes ?? []) c[type] = { schema: { type: 'string', contentMediaType: type } };
      responses[status] = { description: res.description, ...(Object.keys(c).length ? { content: c } : {}) };
    }
    responses.default = problem;
    (paths[r.path] ??= {})[r.method] = {
      operationId: r.operationId,
      summary: r.summary,
      tags: [r.tag],
      ...(params.length || queryParams.length ? { parameters: [...params, ...queryParams] } : {}),
      ...(Object.keys(content).length ? { requestBody: { required: !r.multipart, content } } : {}),
      responses,
      security: r.auth ? [{ apiKey: [] }] : [],
    };
  }
  return {
    openapi: '3.1.0',
    info,
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: '/' }],
    paths,
    components: {
      schemas,
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'A VoiceTwin API key: /apikey create in any chat, voicetwin apikey create, or the web sign-in.' } },
    },
  };
}

/** A small HTML reference of the document (no scripts, no external assets). */
export function referencePage(doc: Record<string, unknown>): string {
  const esc = (s: unknown): string => String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const paths = doc.paths as Record<string, Record<string, { summary: string; security: unknown[]; requestBody?: { content: Record<string, { schema: unknown }> }; responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }> }>>;
  const sections = Object.entries(paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => {
      const body = op.requestBody ? Object.entries(op.requestBody.content).map(([t, c]) => `<h4>Request: ${esc(t)}</h4><pre>${esc(JSON.stringify(c.schema, null, 2))}</pre>`).join('') : '';
      const responses = Object.entries(op.responses)
        .map(([status, r]) => `<h4>${esc(status)}: ${esc(r.description)}</h4>${r.content ? Object.entries(r.content).map(([t, c]) => `<p>${esc(t)}</p><pre>${esc(JSON.stringify(c.schema, null, 2))}</pre>`).join('') : ''}`)
        .join('');
      return `<section><h3><code>${esc(method.toUpperCase())} ${esc(path)}</code></h3><p>${esc(op.summary)}${op.security.length ? ' <em>(API key)</em>' : ''}</p>${body}${responses}</section>`;
    }),
  );
  const info = doc.info as { title: string; description: string; version: string };
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(info.title)}</title><style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem}pre{background:#f4f4f4;padding:.5rem;overflow:auto;font-size:.8rem}section{border-top:1px solid #ddd}</style></head><body><h1>${esc(info.title)} ${esc(info.version)}</h1><p>${esc(info.description)}</p><p>Machine-readable: <a href="/v1/openapi.json">/v1/openapi.json</a> (OpenAPI 3.1).</p>${sections.join('')}</body></html>`;
}
