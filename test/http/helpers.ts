/**
 * Shared pieces of the HTTP tests: server settings with short timeouts, and a validator of
 * responses against the generated OpenAPI document.
 */
import type { HttpServerSettings } from '../../src/http/server.js';

/** Settings for a test server on a free port with short timeouts and generous rate limits. */
export const TEST_HTTP_SETTINGS: HttpServerSettings = {
  host: '127.0.0.1',
  port: 0,
  headersTimeoutMs: 1000,
  requestTimeoutMs: 3000,
  idleTimeoutMs: 3000,
  rateLimitPerIp: 10_000,
  rateLimitPerKey: 10_000,
};
