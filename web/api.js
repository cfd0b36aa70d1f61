// The REST API client of the web app (docs/http.md). Every error becomes an ApiError whose
// message is the problem document's `detail` (RFC 9457), the same words the chats use.

const KEY_STORAGE = 'voicetwin.apiKey';

/** An error answered by the API: `status`, stable `code`, and a message a person can read. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** The stored API key, or null. */
export function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

/** Stores (or, with null, removes) the API key. */
export function storeKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // Private mode without storage: the key lives only as long as the page.
  }
}

/** Turns a failed response into an ApiError with the best message available. */
async function toError(res) {
  let detail = '';
  let code = '';
  try {
    const type = res.headers.get('content-type') || '';
    if (type.includes('json')) {
      const body = await res.json();
      detail = typeof body.detail === 'string' ? body.detail : typeof body.title === 'string' ? body.title : '';
      code = typeof body.code === 'string' ? body.code : '';
    }
  } catch {
    // Not JSON: fall through to the status line.
  }
  if (!detail) detail = res.status === 0 ? 'The server did not answer.' : `The server answered ${res.status} ${res.statusText || ''}`.trim() + '.';
  if (res.status === 429 && res.headers.get('retry-after') && !/retry/i.test(detail)) detail += ` Try again in ${res.headers.get('retry-after')} s.`;
  return new ApiError(res.status, code, detail);
}

/**
 * Calls the API.
 * @param {string} method
 * @param {string} path e.g. '/v1/voice'
 * @param {{ json?: unknown, body?: Blob | FormData, key?: string | null }} [options]
 * @returns {Promise<any>} the parsed JSON body (undefined for 204)
 * @throws {ApiError} on any error status, or when the server cannot be reached (status 0)
 */
export async function call(method, path, options = {}) {
  const headers = {};
  const key = options.key === undefined ? storedKey() : options.key;
  if (key) headers.authorization = `Bearer ${key}`;
  let body;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.body instanceof Blob) {
    headers['content-type'] = options.body.type || 'application/octet-stream';
    body = options.body;
  } else if (options.body) body = options.body;
  let res;
  try {
    res = await fetch(path, { method, headers, body, credentials: 'omit', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The VoiceTwin server cannot be reached. Is it still running?');
  }
  if (!res.ok) throw await toError(res);
  if (res.status === 204) return undefined;
  return res.json();
}

/**
 * Downloads an authenticated file (`GET /v1/export`).
 * @param {string} path
 * @returns {Promise<{ blob: Blob, fileName: string }>} the body and the name from Content-Disposition
 * @throws {ApiError} on any error status, or when the server cannot be reached (status 0)
 */
export async function download(path) {
  const key = storedKey();
  let res;
  try {
    res = await fetch(path, { headers: key ? { authorization: `Bearer ${key}` } : {}, credentials: 'omit', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The VoiceTwin server cannot be reached. Is it still running?');
  }
  if (!res.ok) throw await toError(res);
  const disposition = res.headers.get('content-disposition') ?? '';
  const fileName = /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? 'voicetwin-export.zip';
  return { blob: await res.blob(), fileName };
}

/** Fetches the bytes of a signed audio URL. @throws {ApiError} */
export async function fetchAudio(url) {
  let res;
  try {
    res = await fetch(url, { credentials: 'omit' });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The voice note could not be downloaded.');
  }
  if (!res.ok) throw await toError(res);
  return res.arrayBuffer();
}

/** Exchanges a one-time sign-in code for an API key (stored). @returns {Promise<string>} the key */
export async function signIn(code) {
  const clean = String(code).trim();
  if (!clean) throw new ApiError(400, 'VALIDATION', 'Enter the sign-in code.');
  const label = `web app (${navigator.userAgent.includes('Mobile') ? 'phone' : 'browser'})`;
  const { apiKey } = await call('POST', '/v1/auth/sign-in', { json: { code: clean, label }, key: null });
  storeKey(apiKey);
  return apiKey;
}
