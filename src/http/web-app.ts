/**
 * The browser web app (`web/` at the repository root: plain HTML, CSS and ES modules, no build
 * step), served by the HTTP server at `/` and `/web/<file>`.
 *
 * Only the files of {@link WEB_APP_FILES} are served — a fixed list, so no request path ever
 * reaches the file system — each read once at start-up and kept in memory with a strong ETag
 * (SHA-256 of the bytes). Every response carries:
 * - `Content-Security-Policy`: scripts, styles, fetches and media from this origin only (plus
 *   `blob:` media for recordings played back in place), no inline script, no framing
 *   (https://www.w3.org/TR/CSP3/);
 * - `Cache-Control: no-cache` with the ETag, so a browser revalidates each file (304 when it is
 *   unchanged) and a new version is picked up at once — there is no build step to put hashes in
 *   file names;
 * - `Referrer-Policy: no-referrer` (the sign-in link carries a one-time code in its query),
 *   `X-Content-Type-Options: nosniff`, `Permissions-Policy: microphone=(self)`.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** The folder of the web app's files. */
export const WEB_APP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');

/** Files served, by URL path → file name in {@link WEB_APP_DIR} and media type. */
export const WEB_APP_FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/web/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
  '/web/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/web/api.js': { file: 'api.js', type: 'text/javascript; charset=utf-8' },
  '/web/audio.js': { file: 'audio.js', type: 'text/javascript; charset=utf-8' },
  '/web/recorder.js': { file: 'recorder.js', type: 'text/javascript; charset=utf-8' },
  '/web/icon.svg': { file: 'icon.svg', type: 'image/svg+xml' },
};

/** The Content-Security-Policy of every web app response. */
export const WEB_APP_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "media-src 'self' blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers common to every web app response. */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': WEB_APP_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'permissions-policy': 'microphone=(self), camera=(), geolocation=()',
  'cross-origin-opener-policy': 'same-origin',
};

/**
 * Registers the web app's routes (`GET` and `HEAD` of each file of {@link WEB_APP_FILES}).
 * @param options.dir folder to read the files from (default {@link WEB_APP_DIR})
 * @throws Error (ENOENT) when a listed file is missing from the folder
 */
export async function registerWebApp(app: FastifyInstance, options: { dir?: string } = {}): Promise<void> {
  const dir = options.dir ?? WEB_APP_DIR;
  const files = await Promise.all(
    Object.entries(WEB_APP_FILES).map(async ([urlPath, { file, type }]) => {
      const bytes = await readFile(path.join(dir, file));
      const etag = `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 27)}"`;
      return { urlPath, bytes, type, etag };
    }),
  );
  for (const { urlPath, bytes, type, etag } of files) {
    const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      reply.headers(SECURITY_HEADERS).header('cache-control', 'no-cache').header('etag', etag);
      if (ifNoneMatch(req.headers['if-none-match'], etag)) return reply.code(304).send();
      return reply.type(type).send(bytes);
    };
    app.get(urlPath, handler);
  }
}

/** True when an `If-None-Match` header (RFC 9110 §13.1.2) matches `etag`. */
function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === etag || t === '*');
}
