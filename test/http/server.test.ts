/**
 * The HTTP server's hardening over real sockets: health and readiness, 401 before the body is
 * read, 413 without reading the body, slow clients cut off by the header/request timeouts while
 * other requests are served, 429 with Retry-After, problem+json errors.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServer, type HttpServerSettings } from '../../src/http/server.js';
import { silentLogger } from '../../src/core/log.js';
import type { WebhookRoute } from '../../src/core/types.js';
import { TEST_HTTP_SETTINGS } from './helpers.js';

const servers: HttpServer[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await s.close();
});

async function start(settings: Partial<HttpServerSettings> = {}, health?: Record<string, () => Promise<void>>): Promise<{ server: HttpServer; url: string; port: number }> {
  const server = await createHttpServer({ settings: { ...TEST_HTTP_SETTINGS, ...settings }, logger: silentLogger, ...(health ? { health } : {}) });
  servers.push(server);
  const { url, port } = await server.listen();
  return { server, url, port };
}

function hook(overrides: Partial<WebhookRoute> = {}): WebhookRoute & { bodies: unknown[] } {
  const bodies: unknown[] = [];
  return {
    channel: 'telegram',
    path: '/hook',
    bodyLimitBytes: 1024 * 1024,
    authorize: (headers) => headers['x-secret'] === 'right',
    handle: async (body) => void bodies.push(body),
    bodies,
    ...overrides,
  };
}

/** Opens a raw TCP connection; `received` collects what the server sends, `closed` resolves on close. */
async function rawConnection(port: number): Promise<{ socket: Socket; received: () => string; closed: Promise<number> }> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  const opened = performance.now();
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - opened)));
  return { socket, received: () => data, closed };
}

describe('HTTP server', () => {
  it('reports liveness and readiness of its dependencies', async () => {
    let storeUp = true;
    const { url } = await start({}, { store: async () => {
        if (!storeUp) throw new Error("down");
      }, queue: async () => undefined });
    const ok = await fetch(`${url}/health`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'ok', live: true, ready: true, checks: { store: { ok: true }, queue: { ok: true } } });
    storeUp = false;
    const down = await fetch(`${url}/health`);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ ready: false, checks: { store: { ok: false }, queue: { ok: true } } });
  });

  it('answers unknown paths with a problem document', async () => {
    const { url } = await start();
    const res = await fetch(`${url}/nowhere`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ type: 'about:blank', title: 'Not Found', status: 404, code: 'NOT_FOUND' });
  });

  it('refuses a webhook request with a missing or wrong secret (401) and accepts the right one', async () => {
    const { server, url } = await start();
    const route = hook();
    server.mountWebhook(route);
    const post = (headers: Record<string, string>) => fetch(`${url}/hook`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"update_id":1}' });
    expect((await post({})).status).toBe(401);
    const wrong = await post({ 'x-secret': 'wrong' });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    expect(route.bodies).toHaveLength(0);
    expect((await post({ 'x-secret': 'right' })).status).toBe(200);
    expect(route.bodies).toEqual([{ update_id: 1 }]);
  });

  it('answers 500 when the webhook could not store the update, so the platform sends it again', async () => {
    const { server, url } = await start();
    server.mountWebhook(hook({ handle: () => Promise.reject(new Error('store down')) }));
    const res = await fetch(`${url}/hook`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-secret': 'right' }, body: '{}' });
    expect(res.status).toBe(500);
    expect(JSON.stringify(await res.json())).not.toMatch(/store down/);
  });

  it('answers 413 to a body over the limit without reading it, and closes the connection', async () => {
    const { server, port } = await start();
    const route = hook();
    server.mountWebhook(route);
    const declared = 100 * 1024 * 1024;
    const conn = await rawConnection(port);
    conn.socket.write(`POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Secret: right\r\nContent-Length: ${declared}\r\n\r\n`);
    conn.socket.write('{"a":"' + 'x'.repeat(16 * 1024));
    await conn.closed;
    expect(conn.received()).toMatch(/^HTTP\/1\.1 413 /);
    expect(conn.received()).toMatch(/content-type: application\/problem\+json/i);
    expect(route.bodies).toHaveLength(0);
    // A chunked body (no Content-Length) is counted as it arrives and cut at the limit.
    const chunked = await rawConnection(port);
    chunked.socket.write('POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Secret: right\r\nTransfer-Encoding: chunked\r\n\r\n');
    const piece = 'x'.repeat(256 * 1024);
    let sent = 0;
    while (!chunked.socket.destroyed && sent < 8 * 1024 * 1024 && !/^HTTP/.test(chunked.received())) {
      chunked.socket.write(`${piece.length.toString(16)}\r\n${piece}\r\n`);
      sent += piece.length;
      await new Promise((r) => setTimeout(r, 5));
    }
    await chunked.closed;
    expect(chunked.received()).toMatch(/^HTTP\/1\.1 413 /);
    expect(sent).toBeLessThan(8 * 1024 * 1024);
  });

  it('cuts off a client that sends its headers too slowly while serving others', async () => {
    const headersTimeoutMs = 1000;
    const { url, port } = await start({ headersTimeoutMs, requestTimeoutMs: 3000 });
    const slow = await rawConnection(port);
    slow.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n');
    // Keep trickling header bytes so the idle timeout never fires; only the headers timeout can.
    const trickle = setInterval(() => slow.socket.writable && slow.socket.write('X-A: b\r\n'), 100);
    try {
      const others = await Promise.all([1, 2, 3].map(() => fetch(`${url}/health`)));
      expect(others.map((r) => r.status)).toEqual([200, 200, 200]);
      const closedAfterMs = await slow.closed;
      // Node checks the timeouts every headersTimeout/4 (see createHttpServer): allow that plus slack.
      expect(closedAfterMs).toBeLessThan(headersTimeoutMs * 2.5);
      expect(slow.received()).toMatch(/^HTTP\/1\.1 408 |^$/);
    } finally {
      clearInterval(trickle);
    }
  });

  it('cuts off a client that trickles its body past the request timeout', async () => {
    const requestTimeoutMs = 1500;
    const { server, url, port } = await start({ headersTimeoutMs: 1000, requestTimeoutMs, idleTimeoutMs: 3000 });
    server.mountWebhook(hook());
    const slow = await rawConnection(port);
    slow.socket.write('POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Secret: right\r\nContent-Length: 100000\r\n\r\n{');
    const trickle = setInterval(() => slow.socket.writable && slow.socket.write(' '), 100);
    try {
      expect((await fetch(`${url}/health`)).status).toBe(200);
      const closedAfterMs = await slow.closed;
      expect(closedAfterMs).toBeLessThan(requestTimeoutMs * 2);
    } finally {
      clearInterval(trickle);
    }
  });

  it('destroys a connection that stays silent past the idle timeout', async () => {
    const { port } = await start({ idleTimeoutMs: 800, headersTimeoutMs: 5000, requestTimeoutMs: 10_000 });
    const silent = await rawConnection(port);
    expect(await silent.closed).toBeLessThan(800 * 3);
  });

  it('limits requests per IP with 429 and Retry-After', async () => {
    const { url } = await start({ rateLimitPerIp: 3 });
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${url}/nowhere`);
      statuses.push(res.status);
      if (res.status === 429) limited ??= res;
      else await res.arrayBuffer();
    }
    expect(statuses).toEqual([404, 404, 404, 429, 429]);
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited!.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await limited!.json()).toMatchObject({ status: 429, code: 'RATE_LIMITED' });
  });
});
