/**
 * Downloads a file a user sent, the two-step way the Bot API documents
 * (https://core.telegram.org/bots/api#getfile): `getFile(file_id)` returns a `file_path`, and the
 * bytes are at `<apiRoot>/file/bot<token>/<file_path>`. A self-hosted `telegram-bot-api` started with
 * `--local` returns an absolute local path instead (https://github.com/tdlib/telegram-bot-api#usage),
 * which is read from disk when this process can see it.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { GrammyError, type Api } from 'grammy';
import { UserInputError } from '../../core/errors.js';

/** What {@link downloadTelegramFile} needs. */
export interface DownloadOptions {
  api: Api;
  /** Bot API root without a trailing slash, e.g. `https://api.telegram.org`. */
  apiRoot: string;
  token: string;
  fileId: string;
  /** Refuse bodies larger than this many bytes; `undefined` for no limit (self-hosted server). */
  maxBytes: number | undefined;
  /** Whether an absolute `file_path` may be read from the local disk (self-hosted `--local` server). */
  allowLocalPath: boolean;
  /** Abort the HTTP download after this many milliseconds. Default 120 000. */
  timeoutMs?: number;
}

const tooLarge = (maxBytes: number | undefined) =>
  new UserInputError(
    'FILE_TOO_LARGE',
    `That file is larger than the ${Math.round((maxBytes ?? 20 * 1024 * 1024) / (1024 * 1024))} MB Telegram lets bots download. Please send a shorter recording.`,
  );

/**
 * Fetches the file's bytes.
 * @throws UserInputError `FILE_TOO_LARGE` when Telegram answers "file is too big" or the body exceeds `maxBytes`.
 * @throws Error when the download fails; the message never contains the bot token.
 */
export async function downloadTelegramFile(options: DownloadOptions): Promise<Buffer> {
  const { api, apiRoot, token, fileId, maxBytes } = options;
  let filePath: string | undefined;
  try {
    filePath = (await api.getFile(fileId)).file_path;
  } catch (err) {
    if (err instanceof GrammyError && err.error_code === 400 && /file is too big/i.test(err.description)) throw tooLarge(maxBytes);
    throw err;
  }
  if (!filePath) throw new Error('Telegram getFile returned no file_path');
  if (options.allowLocalPath && isAbsolute(filePath)) {
    try {
      return await readFile(filePath);
    } catch (err) {
      throw new Error(
        `cannot read ${filePath} written by the local Bot API server; mount its working directory into this process`,
        { cause: err },
      );
    }
  }
  const url = `${apiRoot}/file/bot${token}/${filePath.split('/').map(encodeURIComponent).join('/')}`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 120_000) });
  } catch (err) {
    // undici names the failure ("fetch failed") and puts the socket error in `cause`; neither holds the URL.
    throw new Error(`Telegram file download failed: ${String((err as Error).message).replaceAll(token, '<token>')}`, { cause: err });
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new Error(`Telegram file download failed with HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (maxBytes !== undefined && declared > maxBytes) {
    await res.body.cancel();
    throw tooLarge(maxBytes);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += chunk.byteLength;
    if (maxBytes !== undefined && total > maxBytes) throw tooLarge(maxBytes);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}
