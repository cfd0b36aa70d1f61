/**
 * The slice of the whatsapp-web.js `Client` the WhatsApp adapter uses, and the factory that builds
 * the real client: `LocalAuth` under the data dir, a system Chromium, no browser download.
 *
 * whatsapp-web.js is an unofficial client: it drives WhatsApp Web (https://web.whatsapp.com/) in a
 * headless Chromium through puppeteer. API reference: https://docs.wwebjs.dev/Client.html,
 * guide: https://wwebjs.dev/guide/.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import wwebjs from 'whatsapp-web.js';
import type { Message, MessageMedia, MessageSendOptions } from 'whatsapp-web.js';
import { DependencyError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { ensurePrivateDir, ensurePrivateFile, restrictUmask, securePrivateTree } from '../../core/store/file-modes.js';

/** A chat as the adapter uses it (whatsapp-web.js `Chat`: https://docs.wwebjs.dev/Chat.html). */
export interface WhatsAppChatLike {
  /** Shows "recording audio…" to the other side for about 25 s, or until a message is sent. */
  sendStateRecording(): Promise<unknown>;
  /** Shows "typing…" to the other side for about 25 s. */
  sendStateTyping(): Promise<unknown>;
  /** Stops "typing…"/"recording…" at once. */
  clearState(): Promise<unknown>;
}

/** A listener of a client event; its arguments are the event's payload (typed per event, as Node's EventEmitter does). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type WhatsAppListener = (...args: any[]) => void;

/**
 * What the adapter needs from a whatsapp-web.js `Client`; the real client satisfies it, tests
 * inject a fake emitting the same events (`qr`, `authenticated`, `auth_failure`, `ready`,
 * `change_state`, `disconnected`, `loading_screen`, `message`).
 */
export interface WhatsAppClientLike {
  /** Connection info once `ready`: `wid._serialized` is the linked account's id (`…@c.us`). */
  info?: { wid?: { _serialized: string } } | null;
  on(event: string, listener: WhatsAppListener): unknown;
  removeListener(event: string, listener: WhatsAppListener): unknown;
  /** Launches the browser and opens WhatsApp Web; resolves once the page is injected (QR shown or session restored). */
  initialize(): Promise<void>;
  /** Closes the browser; the session on disk stays. */
  destroy(): Promise<void>;
  /**
   * Sends a text or media message. Resolves to the sent `Message`, or `undefined` when WhatsApp
   * Web has no such chat (whatsapp-web.js `Client.sendMessage`).
   */
  sendMessage(chatId: string, content: string | MessageMedia, options?: MessageSendOptions): Promise<Message | undefined>;
  /** The chat with this id, or `undefined` when unknown. */
  getChatById(chatId: string): Promise<WhatsAppChatLike | undefined>;
  /** LID and phone-number ids of users (used to recognise mentions of the bot under either id). */
  getContactLidAndPhone?(userIds: string[]): Promise<Array<{ lid?: string; pn?: string }>>;
}

/** Where Chromium is looked for when neither an explicit path nor `PUPPETEER_EXECUTABLE_PATH` is given. */
export const CHROMIUM_CANDIDATE_PATHS = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome-stable',
  '/usr/bin/google-chrome',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
] as const;

/**
 * Finds the Chromium executable: `explicitPath`, else `PUPPETEER_EXECUTABLE_PATH`, else the first of
 * {@link CHROMIUM_CANDIDATE_PATHS} that exists.
 * @throws DependencyError when the chosen path does not exist or no Chromium is found.
 */
export function resolveChromiumPath(explicitPath?: string, env: NodeJS.ProcessEnv = process.env): string {
  const hint =
    'install Chromium (Debian/Ubuntu: `apt-get install chromium`) and set PUPPETEER_EXECUTABLE_PATH to its path; ' +
    'npm installs use PUPPETEER_SKIP_DOWNLOAD=1, so puppeteer ships no browser of its own';
  const chosen = explicitPath || env.PUPPETEER_EXECUTABLE_PATH;
  if (chosen) {
    if (!existsSync(chosen)) throw new DependencyError('chromium', `${chosen} does not exist: ${hint}`);
    return chosen;
  }
  const found = CHROMIUM_CANDIDATE_PATHS.find((candidate) => existsSync(candidate));
  if (!found) throw new DependencyError('chromium', hint);
  return found;
}

/**
 * Chromium flags: headless-server friendly, and no background traffic of the browser's own
 * (component updates, sync, field trials), so the only connection is WhatsApp Web's.
 * `--no-sandbox` only when running as root, where Chromium refuses to start with its sandbox.
 */
export function chromiumArgs(isRoot = process.getuid?.() === 0): string[] {
  return [
    ...(isRoot ? ['--no-sandbox', '--disable-setuid-sandbox'] : []),
    '--disable-dev-shm-usage',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-default-apps',
    '--no-first-run',
    '--no-default-browser-check',
    '--mute-audio',
  ];
}

/** Paths under the data dir that the WhatsApp client uses. */
export interface WhatsAppPaths {
  /** `LocalAuth` dataPath: the Chromium profile holding the linked session (`<dataDir>/whatsapp-session`). */
  sessionDir: string;
  /** whatsapp-web.js `LocalWebCache` of WhatsApp Web's index page, by version (`<dataDir>/whatsapp-web-cache`). */
  webCacheDir: string;
  /** Latest QR code as a PNG, for headless servers (`<dataDir>/whatsapp-qr.png`); removed once linked. */
  qrPngPath: string;
}

/** The paths of {@link WhatsAppPaths} for a data dir. */
export function whatsAppPaths(dataDir: string): WhatsAppPaths {
  return {
    sessionDir: path.join(dataDir, 'whatsapp-session'),
    webCacheDir: path.join(dataDir, 'whatsapp-web-cache'),
    qrPngPath: path.join(dataDir, 'whatsapp-qr.png'),
  };
}

/** `LocalAuth`'s profile folder inside the session dir (its `session` name without a client id). */
export const LOCAL_AUTH_PROFILE_DIR = 'session';

/**
 * Makes what the WhatsApp client keeps on disk owner-only before it starts: the data dir, the
 * session dir (the linked account's Chromium profile: whoever copies it is logged in as that
 * number) and the web cache folders 0700 with every file below 0600, the QR PNG 0600. The profile
 * folder is created 0700 here so that `LocalAuth` finds it private. Chromium creates some profile
 * files with the process umask (under the usual 022: `Last Version`, `Variations`,
 * `DevToolsActivePort` 0644), and so does the library's web cache, so the process umask is set to
 * 077 (see `restrictUmask`).
 * @throws FileModeError when an entry is reachable by others and not ours to fix
 */
export async function secureWhatsAppFiles(dataDir: string, logger?: Logger): Promise<void> {
  const paths = whatsAppPaths(dataDir);
  restrictUmask();
  await ensurePrivateDir(dataDir);
  await ensurePrivateDir(path.join(paths.sessionDir, LOCAL_AUTH_PROFILE_DIR));
  await securePrivateTree(paths.sessionDir, logger);
  await securePrivateTree(paths.webCacheDir, logger);
  await ensurePrivateFile(paths.qrPngPath);
}

/**
 * Builds the real whatsapp-web.js client.
 *
 * - `LocalAuth({ dataPath: <dataDir>/whatsapp-session })`: the browser profile persists, so a
 *   restart restores the session without a new QR scan (https://wwebjs.dev/guide/creating-your-bot/authentication.html).
 * - `webVersionCache: { type: 'local', path: <dataDir>/whatsapp-web-cache }`: the library's cache of
 *   WhatsApp Web's page lives in the data dir, not in the working directory.
 * - puppeteer launches `chromiumPath` headless (no browser download: PUPPETEER_SKIP_DOWNLOAD).
 *
 * @throws DependencyError when no Chromium is found (see {@link resolveChromiumPath}).
 */
export function createWhatsAppClient(options: { dataDir: string; chromiumPath?: string }): WhatsAppClientLike {
  const executablePath = resolveChromiumPath(options.chromiumPath);
  const paths = whatsAppPaths(options.dataDir);
  return new wwebjs.Client({
    authStrategy: new wwebjs.LocalAuth({ dataPath: paths.sessionDir }),
    webVersionCache: { type: 'local', path: paths.webCacheDir },
    puppeteer: { executablePath, headless: true, args: chromiumArgs() },
  });
}
