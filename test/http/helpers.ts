/**
 * Shared pieces of the HTTP tests: server settings with short timeouts, and a validator of
 * responses against the generated OpenAPI document.
 */
import Ajv2020 from 'ajv/dist/2020.js';
import { expect } from 'vitest';
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

/**
 * Validates every JSON response against the operation's response schema in the OpenAPI document
 * (JSON Schema draft 2020-12, the dialect of OpenAPI 3.1), binary responses against their listed
 * media types; fails the test on any mismatch or on a status the document does not list.
 */
export class OpenApiChecker {
  private readonly ajv = new Ajv2020.default({ strict: false, allErrors: true });
  /** Responses checked so far, for the summary assertion. */
  checked = 0;

  constructor(private readonly doc: { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>; components: { schemas: Record<string, unknown> } }) {
    this.ajv.addSchema({ $id: 'components', $defs: doc.components.schemas }, 'components');
  }

  /** Checks `res` (its body is read as JSON or bytes and returned) for operation `method path`. */
  async check(method: string, path: string, res: Response): Promise<{ json?: unknown; bytes?: Buffer }> {
    const op = this.doc.paths[path]?.[method.toLowerCase()];
    expect(op, `${method} ${path} is not in the OpenAPI document`).toBeDefined();
    const spec = op!.responses[String(res.status)] ?? op!.responses.default;
    expect(spec, `${method} ${path} → ${res.status} is not documented`).toBeDefined();
    const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    this.checked++;
    if (res.status === 204) {
      expect(spec!.content).toBeUndefined();
      return {};
    }
    const content = spec!.content ?? {};
    if (type === 'application/json' || type === 'application/problem+json') {
      const json = await res.json();
      const media = content[type];
      expect(media, `${method} ${path} → ${res.status} does not document ${type}`).toBeDefined();
      const schema = JSON.parse(JSON.stringify(media!.schema).replaceAll('#/components/schemas/', 'components#/$defs/')) as object;
      const validate = this.ajv.compile(schema);
      expect(validate(json), `${method} ${path} → ${res.status}: ${this.ajv.errorsText(validate.errors)}`).toBe(true);
      return { json };
    }
    expect(content[type], `${method} ${path} → ${res.status} does not document ${type}`).toBeDefined();
    return { bytes: Buffer.from(await res.arrayBuffer()) };
  }
}
