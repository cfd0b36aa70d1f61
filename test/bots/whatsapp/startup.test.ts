/**
 * Starts the real whatsapp-web.js `Client` in the system Chromium. WhatsApp Web cannot be reached
 * from here, so: (1) a plain start must fail cleanly, say why, close the browser and never hang;
 * (2) with a fake WhatsApp Web page in the library's own version cache, the real client gets as
 * far as emitting `qr` and `authenticated`, which proves the browser starts and the events are wired.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import wwebjs from 'whatsapp-web.js';
import { describe, expect, it } from 'vitest';
import { createWhatsAppClient, startWhatsAppBot, whatsAppPaths } from '../../../src/bots/whatsapp/index.js';
import { fakeWhatsAppWebIndexHtml } from '../../fakes/whatsapp/web-page.js';
import { captureLogs, RecordingEngine, tempDataDir, waitUntil } from './support.js';

const CHROMIUM = process.env.PUPPETEER_EXECUTABLE_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !process.env.CI) {
  console.warn(`[whatsapp start-up] skipped: no Chromium at ${CHROMIUM} (install it: apt-get install chromium); CI runs these tests`);
}

/** Chromium processes whose command line names `dir` (the profile of one test). */
async function chromiumProcessesUsing(dir: string): Promise<number> {
  try {
    const { stdout } = await promisify(execFile)('pgrep', ['-f', dir]);
    return stdout.split('\n').filter(Boolean).length;
  } catch (err) {
    if ((err as { code?: unknown }).code === 1) return 0; // pgrep exits 1 when nothing matches
    throw err; // pgrep missing (procps) or broken: do not pass silently
  }
}

/** Entries under `root` (root included, symbolic links skipped) with any group or other permission bit. */
async function entriesReachableByOthers(root: string): Promise<string[]> {
  const open: string[] = [];
  for (const entry of ['', ...(await readdir(root, { recursive: true }))]) {
    const stats = await lstat(path.join(root, entry));
    if (!stats.isSymbolicLink() && (stats.mode & 0o077) !== 0) open.push(`${entry || '.'} ${(stats.mode & 0o777).toString(8)}`);
  }
  return open;
}

const WEB_VERSION = (wwebjs as unknown as { DefaultOptions: { webVersion: string } }).DefaultOptions.webVersion;

describe.skipIf(!haveChromium && !process.env.CI)('WhatsApp client start-up with the system Chromium', () => {
  it('fails cleanly without the internet: says why, closes the browser, does not hang', { timeout: 90_000 }, async () => {
    const data = await tempDataDir();
    const logs = captureLogs();
    const bot = await startWhatsAppBot({
      engine: new RecordingEngine(),
      logger: logs.logger,
      dataDir: data.dir,
      chromiumPath: CHROMIUM,
      qrOutput: null,
      startupTimeoutMs: 45_000,
      reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
    });
    try {
      await waitUntil(() => logs.lines.some((l) => l.event === 'startup_failed') || bot.state === 'qr', 'start-up to fail or show a QR', 60_000);
      const failure = logs.lines.find((l) => l.event === 'startup_failed');
      if (failure) {
        // The browser launched (a Chromium profile exists under the session dir) and failed on the network.
        expect(failure.msg).toMatch(/^WhatsApp client failed to start: (cannot reach https:\/\/web\.whatsapp\.com\/ \(ERR_[A-Z_]+\)|WhatsApp Web did not load within 45 s)/);
        expect(existsSync(path.join(whatsAppPaths(data.dir).sessionDir, 'session', 'Local State'))).toBe(true);
        await waitUntil(() => logs.lines.some((l) => l.event === 'reconnect_scheduled' && l.delayMs === 60_000), 'a retry to be scheduled', 15_000);
        expect(await chromiumProcessesUsing(data.dir)).toBe(0);
      }
    } finally {
      await bot.stop();
    }
    expect(bot.state).toBe('stopped');
    expect(await chromiumProcessesUsing(data.dir)).toBe(0);
    await data.remove();
  });

  it('retries a failed start on the same client: the next attempt launches the browser again', { timeout: 90_000 }, async () => {
    const data = await tempDataDir();
    const paths = whatsAppPaths(data.dir);
    const logs = captureLogs();
    const bot = await startWhatsAppBot({
      engine: new RecordingEngine(),
      logger: logs.logger,
      dataDir: data.dir,
      client: createWhatsAppClient({ dataDir: data.dir, chromiumPath: CHROMIUM }),
      qrOutput: null,
      startupTimeoutMs: 45_000,
      reconnect: { initialDelayMs: 1_000, maxDelayMs: 1_000 },
    });
    try {
      await waitUntil(() => logs.lines.some((l) => l.event === 'startup_failed') || bot.state === 'qr', 'the first attempt to end', 60_000);
      // From now on WhatsApp Web "loads" (from the version cache): the retry must get to the QR code.
      await mkdir(paths.webCacheDir, { recursive: true });
      await writeFile(path.join(paths.webCacheDir, `${WEB_VERSION}.html`), fakeWhatsAppWebIndexHtml(WEB_VERSION));
      await waitUntil(() => bot.state === 'qr', 'the QR code on a later attempt', 60_000);
      expect(existsSync(paths.qrPngPath)).toBe(true);
    } finally {
      await bot.stop();
    }
    expect(await chromiumProcessesUsing(data.dir)).toBe(0);
    await data.remove();
  });

  it('emits qr and authenticated through the real client (fake WhatsApp Web page from the version cache)', { timeout: 90_000 }, async () => {
    const data = await tempDataDir();
    const paths = whatsAppPaths(data.dir);
    await mkdir(paths.webCacheDir, { recursive: true });
    await writeFile(path.join(paths.webCacheDir, `${WEB_VERSION}.html`), fakeWhatsAppWebIndexHtml(WEB_VERSION));
    const logs = captureLogs();
    const client = createWhatsAppClient({ dataDir: data.dir, chromiumPath: CHROMIUM });
    const qrPayloads: string[] = [];
    client.on('qr', (payload: string) => qrPayloads.push(payload));
    const bot = await startWhatsAppBot({
      engine: new RecordingEngine(),
      logger: logs.logger,
      dataDir: data.dir,
      client,
      qrOutput: null,
      startupTimeoutMs: 45_000,
      reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
    });
    try {
      await waitUntil(() => bot.state === 'qr' || logs.lines.some((l) => l.event === 'startup_failed'), 'the QR code', 60_000);
      expect(logs.lines.find((l) => l.event === 'startup_failed')).toBeUndefined();
      expect(bot.state).toBe('qr');
      // The payload the library built from the page: ref, noise key, identity key, ADV secret, platform.
      expect(qrPayloads[0]).toMatch(/^2@[A-Za-z0-9+/=]+,[A-Za-z0-9+/=]{44},[A-Za-z0-9+/=]{44},[A-Za-z0-9+/=]+,CHROME$/);
      const png = await readFile(paths.qrPngPath);
      expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
      // Chromium's profile (the linked session), the web cache and the QR code: owner-only.
      const open = await entriesReachableByOthers(data.dir);
      expect(open).toEqual([]);
      expect(existsSync(path.join(paths.sessionDir, 'session', 'Local State'))).toBe(true);
      expect(logs.text()).not.toContain(qrPayloads[0]!);

      // What WhatsApp Web does after a successful scan; the library then emits `authenticated`.
      const page = (client as InstanceType<typeof wwebjs.Client>).pupPage!;
      const deadline = Date.now() + 20_000;
      while (!(await page.evaluate('window.__fakeWhatsApp.clientListening()'))) {
        if (Date.now() > deadline) throw new Error('the client never subscribed to WhatsApp Web sync events');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await page.evaluate('window.__fakeWhatsApp.sync()');
      await waitUntil(() => bot.state === 'authenticated', 'authenticated', 20_000);
      await expect.poll(() => stat(paths.qrPngPath).then(() => 'exists', () => 'gone')).toBe('gone');
      const states = logs.lines.filter((l) => l.event === 'whatsapp_state').map((l) => l.state);
      expect(states).toEqual(['starting', 'qr', 'authenticated']);
    } finally {
      await bot.stop();
    }
    expect(await chromiumProcessesUsing(data.dir)).toBe(0);
    await data.remove();
  });
});
