/**
 * The one HTTP server (Fastify, https://fastify.dev/docs/latest/Reference/Server/): health, platform
 * webhooks, the REST API under `/v1`, all with the same limits, timeouts, rate limits, error format
 * and logging.
 *
 * Hardened by default:
 * - binds `127.0.0.1` unless `HTTP_HOST` says otherwise;
 * - body limits per route: 1 MB for JSON (and webhooks), `MAX_AUDIO_BYTES` for audio uploads; a
 *   body whose `Content-Length` is over the limit is answered 413 before it is read, and the
 *   connection is closed so the rest is never read either;
 * - timeouts (Node's `http.Server`, https://nodejs.org/api/http.html#serverheaderstimeout): the
 *   headers must arrive within `headersTimeoutMs`, the whole request within `requestTimeoutMs`
 *   (both answered 408 and closed), and a socket silent for `idleTimeoutMs` is destroyed — so a
 *   slow client is cut off while others are served;
 * - rate limits per IP on every route but the webhooks (which have their secret), and per API key
 *   on authenticated routes (`@fastify/rate-limit`), answered 429 with `Retry-After`;
 * - every error is an RFC 9457 `application/problem+json` document (see `problem.ts`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { Logger } from '../core/log.js';
import type { WebhookRoute } from '../core/types.js';
import { HttpProblem, PROBLEM_CONTENT_TYPE, toProblem } from './problem.js';

/** Largest JSON body accepted by default, bytes (1 MB). */
export const JSON_BODY_LIMIT_BYTES = 1024 * 1024;

/** Settings of the server (`Config['http']`); times in ms, rate limits per minute. */
export interface HttpServerSettings {
  host: string;
  /** 0 picks a free port. */
  port: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  rateLimitPerIp: number;
  rateLimitPerKey: number;
}

/** One readiness check: resolves when the dependency answers, throws otherwise. */
export type HealthCheck = () => Promise<void>;

/** Options of {@link createHttpServer}. */
export interface HttpServerOptions {
  settings: HttpServerSettings;
  logger: Logger;
  /** Readiness checks by name (`store`, `queue`), each given {@link HEALTH_CHECK_TIMEOUT_MS}. */
  health?: Record<string, HealthCheck>;
  /** Registers more routes (the REST API) before the server listens. */
  routes?: (app: FastifyInstance) => Promise<void> | void;
}

/** How long one readiness check may take before it counts as failed, ms. */
export const HEALTH_CHECK_TIMEOUT_MS = 2000;

/** A started server. */
export interface HttpServer {
  /** The Fastify instance (routes, `inject` in tests). */
  readonly app: FastifyInstance;
  /** `http://host:port` it listens on (after {@link listen}). */
  readonly url: string;
  /** Starts listening; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number; url: string }>;
  /**
   * Mounts a platform webhook (also after `listen`): POST `route.path`, authorised from the headers
   * before the body is read.
   * @throws Error when a webhook is already mounted on that path
   */
  mountWebhook(route: WebhookRoute): void;
  /** Stops accepting connections and closes the open ones. */
  close(): Promise<void>;
}

/** The bearer token of a request, if any (`Authorization: Bearer <token>`, RFC 6750 §2.1). */
export function bearerToken(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  const m = header ? /^Bearer\s+([\x21-\x7e]+)\s*$/i.exec(header) : null;
  return m?.[1];
}

/**
 * Builds the server: limits, timeouts, error format, `/health`, the webhook dispatcher and the
 * routes of `options.routes`. Call {@link HttpServer.listen} to start it.
 */
export async function createHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { settings } = options;
  const log = options.logger.child({ component: 'http' });
  const webhooks = new Map<string, WebhookRoute>();
  const app = Fastify({
    bodyLimit: JSON_BODY_LIMIT_BYTES,
    // The logger is ours (pino, redacting); Fastify's per-request lines are replaced by one line per response.
    loggerInstance: log as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: true,
    serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void): Server => {
      const server = createServer(
        {
          headersTimeout: settings.headersTimeoutMs,
          requestTimeout: settings.requestTimeoutMs,
          // How often Node checks the two timeouts above (default 30 s, far too coarse for them).
          connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(settings.headersTimeoutMs / 4))),
          keepAliveTimeout: Math.min(5000, settings.idleTimeoutMs),
        },
        handler,
      );
      // A socket with no activity at all (no byte in either direction) for this long is destroyed.
      server.setTimeout(settings.idleTimeoutMs, (socket) => socket.destroy());
      return server;
    },
  });

  app.setErrorHandler((err, req, reply) => sendProblem(req, reply, err, log));
  app.addHook('onResponse', async (req, reply) => {
    const level = reply.statusCode >= 500 ? 'warn' : 'debug';
    log[level]({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'http request');
  });

  await app.register(rateLimit, {
    global: true,
    max: settings.rateLimitPerIp,
    timeWindow: 60_000,
    keyGenerator: (req) => `ip:${req.ip}`,
    errorResponseBuilder: (_req, context) =>
      new HttpProblem(429, 'RATE_LIMITED', `Too many requests from this address: at most ${context.max} per minute. Retry after ${Math.ceil(context.ttl / 1000)} s.`),
    // The 429 keeps the Retry-After header the plugin sets (https://www.rfc-editor.org/rfc/rfc9110#field.retry-after).
  });

  // Unknown paths count against the per-IP limit too (scanners), as the plugin's docs advise.
  app.setNotFoundHandler({ preHandler: app.rateLimit() }, (req, reply) =>
    sendProblem(req, reply, new HttpProblem(404, 'NOT_FOUND', `There is nothing at ${req.method} ${req.url.split('?')[0]}.`), log),
  );

  app.get('/health', { config: { rateLimit: false } }, async (_req, reply) => {
    const checks: Record<string, { ok: boolean; ms: number; error?: string }> = {};
    await Promise.all(
      Object.entries(options.health ?? {}).map(async ([name, check]) => {
        const t = performance.now();
        try {
          await withTimeout(check(), HEALTH_CHECK_TIMEOUT_MS, `${name} did not answer within ${HEALTH_CHECK_TIMEOUT_MS} ms`);
          checks[name] = { ok: true, ms: Math.round(performance.now() - t) };
        } catch (err) {
          checks[name] = { ok: false, ms: Math.round(performance.now() - t), error: err instanceof Error ? err.message.slice(0, 200) : 'failed' };
        }
      }),
    );
    const ready = Object.values(checks).every((c) => c.ok);
    if (!ready) log.warn({ checks }, 'health: not ready');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'unavailable', live: true, ready, checks });
  });

  // Platform webhooks, mounted at any time: one wildcard route dispatching by path. Static routes
  // (the API) take precedence over it in Fastify's router.
  app.post(
    '/*',
    {
      config: { rateLimit: false },
      bodyLimit: JSON_BODY_LIMIT_BYTES,
      onRequest: async (req) => {
        const route = webhooks.get(req.url.split('?')[0]!);
        if (!route) throw new HttpProblem(404, 'NOT_FOUND', `There is nothing at POST ${req.url.split('?')[0]}.`);
        if (!route.authorize(req.headers)) {
          log.warn({ channel: route.channel }, 'webhook request refused: missing or wrong secret');
          throw new HttpProblem(401, 'UNAUTHORIZED', 'Missing or wrong webhook secret.');
        }
        const declared = Number(req.headers['content-length']);
        if (Number.isFinite(declared) && declared > route.bodyLimitBytes) throw new HttpProblem(413, 'BODY_TOO_LARGE', 'The request body is larger than this endpoint accepts.');
      },
    },
    async (req, reply) => {
      const route = webhooks.get(req.url.split('?')[0]!)!;
      await route.handle(req.body);
      return reply.code(200).send({ ok: true });
    },
  );

  await options.routes?.(app);

  let url = '';
  return {
    app,
    get url() {
      return url;
    },
    async listen() {
      await app.listen({ host: settings.host, port: settings.port });
      const address = app.server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      url = `http://${host}:${address.port}`;
      log.info({ host: address.address, port: address.port }, `HTTP server listening on ${url}`);
      return { host: address.address, port: address.port, url };
    },
    mountWebhook(route) {
      if (webhooks.has(route.path)) throw new Error(`a webhook is already mounted on ${route.path}`);
      webhooks.set(route.path, route);
      log.info({ channel: route.channel, path: route.path }, 'webhook mounted');
    },
    async close() {
      await app.close();
    },
  };
}

/** Sends `err` as a problem document; 5xx causes are logged (the body never carries them). */
function sendProblem(req: FastifyRequest, reply: FastifyReply, err: unknown, log: Logger): FastifyReply {
  const problem = toProblem(err);
  const { headers, ...body } = problem;
  if (problem.status >= 500) log.error({ err, method: req.method, route: req.routeOptions.url }, 'http request failed');
  if (problem.status === 429) {
    const retry = Number(reply.getHeader('retry-after') ?? headers['retry-after']);
    if (Number.isFinite(retry)) body.retryAfterSec = retry;
  }
  // After a 413 the rest of the body is not read: close the connection instead of draining it.
  if (problem.status === 413 || problem.status === 408) reply.header('connection', 'close');
  return reply.code(problem.status).headers(headers).type(PROBLEM_CONTENT_TYPE).send(body);
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
