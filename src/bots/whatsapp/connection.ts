/**
 * The life of the WhatsApp Web connection: start the client, show the QR code, log every state
 * change, and reconnect with exponential backoff when the browser fails to start or WhatsApp
 * disconnects.
 *
 * Events and payloads are whatsapp-web.js's (https://docs.wwebjs.dev/Client.html#event:qr and
 * siblings): `qr` (payload string), `authenticated`, `auth_failure` (message), `ready`,
 * `change_state` (WAState), `disconnected` (WAState or `"LOGOUT"`), `loading_screen` (percent).
 * WAState values: `src/util/Constants.js` of whatsapp-web.js.
 */
import type { Logger } from '../../core/log.js';
import type { WhatsAppClientLike, WhatsAppListener } from './client.js';
import { removeQrPng, renderQrForTerminal, writeQrPng } from './qr.js';

/** Where the connection stands; every change is logged. */
export type WhatsAppConnectionState =
  | 'idle'
  | 'starting'
  | 'qr'
  | 'authenticated'
  | 'ready'
  | 'disconnected'
  | 'banned'
  | 'stopped';

/** Backoff between reconnection attempts: `initialDelayMs · 2^(attempt−1)`, at most `maxDelayMs`. */
export interface ReconnectBackoff {
  initialDelayMs: number;
  maxDelayMs: number;
}

/** Default backoff: 2 s, 4 s, 8 s … up to 5 minutes. */
export const DEFAULT_RECONNECT_BACKOFF: ReconnectBackoff = { initialDelayMs: 2_000, maxDelayMs: 300_000 };

/** Default bound on one `initialize()` (browser launch + loading WhatsApp Web), ms. */
export const DEFAULT_STARTUP_TIMEOUT_MS = 120_000;

/** WAStates after which reconnecting is pointless: WhatsApp blocked the account. */
const BANNED_STATES = new Set(['TOS_BLOCK', 'SMB_TOS_BLOCK']);

/** Options of {@link WhatsAppConnection}. */
export interface WhatsAppConnectionOptions {
  logger: Logger;
  /** PNG written on every `qr` event. */
  qrPngPath: string;
  /** Session directory, named in log lines so operators know what to delete to unlink. */
  sessionDir: string;
  /** Where the terminal QR code is printed; `null` prints none. Default `process.stdout`. */
  qrOutput?: NodeJS.WritableStream | null;
  reconnect?: ReconnectBackoff;
  /** Bound on one `initialize()`, ms; on expiry the browser is closed and a retry scheduled. */
  startupTimeoutMs?: number;
  /** Called on every `ready` (after a restart or reconnect too). Errors are logged. */
  onReady?: () => Promise<void> | void;
}

/** Turns an `initialize()` failure into one sentence an operator can act on. */
export function describeStartupError(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const firstLine = text.split('\n')[0] ?? text;
  const net = /net::(ERR_[A-Z_]+)/.exec(text);
  if (net) {
    return `cannot reach https://web.whatsapp.com/ (${net[1]}): check this server's internet connection, DNS and proxy`;
  }
  if (/Failed to launch the browser process|Could not find Chrom|spawn .*ENOENT|Browser was not found/i.test(text)) {
    return `Chromium failed to start (${firstLine}); install Chromium and point PUPPETEER_EXECUTABLE_PATH at it`;
  }
  if (text === 'auth timeout') return 'WhatsApp Web did not finish loading in time (whatsapp-web.js "auth timeout")';
  return firstLine;
}

class StartupTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`WhatsApp Web did not load within ${Math.round(timeoutMs / 1000)} s`);
  }
}

/**
 * Drives one whatsapp-web.js client: `start()` once, `stop()` once. Attempts are numbered; each
 * failure closes the browser and schedules the next attempt with backoff; `ready` resets it.
 */
export class WhatsAppConnection {
  private currentState: WhatsAppConnectionState = 'idle';
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private connecting: Promise<void> | undefined;
  private stopped = false;
  private readonly listeners: Array<[string, WhatsAppListener]> = [];
  private readonly stateListeners = new Set<(state: WhatsAppConnectionState) => void>();
  private readonly backoff: ReconnectBackoff;
  private readonly startupTimeoutMs: number;

  constructor(
    private readonly client: WhatsAppClientLike,
    private readonly options: WhatsAppConnectionOptions,
  ) {
    this.backoff = options.reconnect ?? DEFAULT_RECONNECT_BACKOFF;
    this.startupTimeoutMs = options.startupTimeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS;
  }

  /** The current state. */
  get state(): WhatsAppConnectionState {
    return this.currentState;
  }

  /** Calls `listener` on every state change; returns a function that unsubscribes. */
  onStateChange(listener: (state: WhatsAppConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Wires the client's events and starts the first attempt (in the background). */
  start(): void {
    const log = this.options.logger;
    this.listen('qr', (payload: string) => void this.onQr(payload));
    this.listen('authenticated', () => {
      this.setState('authenticated', 'linked session accepted');
      removeQrPng(this.options.qrPngPath).catch((err: unknown) => log.warn({ err }, 'could not remove the WhatsApp QR PNG'));
    });
    this.listen('auth_failure', (message: unknown) => {
      log.error(
        { event: 'auth_failure', reason: String(message), sessionDir: this.options.sessionDir },
        'WhatsApp could not restore the saved session; if this repeats, delete the session directory and link again by QR',
      );
    });
    this.listen('ready', () => {
      this.attempt = 0;
      this.setState('ready', 'connected to WhatsApp Web');
      void Promise.resolve()
        .then(() => this.options.onReady?.())
        .catch((err: unknown) => log.error({ err }, 'WhatsApp ready handler failed'));
    });
    this.listen('change_state', (waState: unknown) => {
      log.info({ event: 'change_state', waState: String(waState) }, `WhatsApp Web state: ${String(waState)}`);
    });
    this.listen('loading_screen', (percent: unknown) => {
      log.debug({ event: 'loading_screen', percent }, 'WhatsApp Web loading');
    });
    this.listen('disconnected', (reason: unknown) => this.onDisconnected(String(reason)));
    this.connecting = this.connect();
  }

  /** Stops reconnecting, waits (bounded) for a running attempt, and closes the browser. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    for (const [event, listener] of this.listeners) this.client.removeListener(event, listener);
    if (this.connecting) await Promise.race([this.connecting, delay(10_000)]);
    await this.destroyClient();
    this.setState('stopped', 'WhatsApp client stopped');
  }

  private listen(event: string, listener: WhatsAppListener): void {
    this.client.on(event, listener);
    this.listeners.push([event, listener]);
  }

  private setState(state: WhatsAppConnectionState, message: string, extra: Record<string, unknown> = {}): void {
    const previous = this.currentState;
    this.currentState = state;
    const level = state === 'banned' ? 'error' : state === 'disconnected' ? 'warn' : 'info';
    this.options.logger[level]({ event: 'whatsapp_state', state, previous, ...extra }, message);
    for (const listener of this.stateListeners) listener(state);
  }

  private async onQr(payload: string): Promise<void> {
    const log = this.options.logger;
    try {
      const sizeBytes = await writeQrPng(payload, this.options.qrPngPath);
      this.setState('qr', 'scan the QR code with WhatsApp on your phone: Settings → Linked devices → Link a device', {
        qrPngPath: this.options.qrPngPath,
        sizeBytes,
      });
    } catch (err) {
      this.setState('qr', 'scan the QR code printed in the terminal with WhatsApp (Linked devices)');
      log.error({ err, qrPngPath: this.options.qrPngPath }, 'could not write the WhatsApp QR PNG');
    }
    const output = this.options.qrOutput === undefined ? process.stdout : this.options.qrOutput;
    if (output) output.write(`\nWhatsApp: scan this QR code (Linked devices → Link a device)\n${await renderQrForTerminal(payload)}\n`);
  }

  private onDisconnected(reason: string): void {
    if (this.stopped) return;
    if (BANNED_STATES.has(reason)) {
      this.setState(
        'banned',
        'WhatsApp blocked this account (terms-of-service block); not reconnecting. See docs/whatsapp.md about the risks of unofficial clients',
        { reason },
      );
      return;
    }
    const hint =
      reason === 'LOGOUT'
        ? 'the device was unlinked from the phone; the saved session is removed and a new QR code will be shown'
        : 'WhatsApp Web disconnected';
    this.setState('disconnected', hint, { reason });
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer || this.currentState === 'banned') return;
    const delayMs = Math.min(this.backoff.maxDelayMs, this.backoff.initialDelayMs * 2 ** Math.max(0, this.attempt - 1));
    this.options.logger.info({ event: 'reconnect_scheduled', delayMs, attempt: this.attempt + 1 }, `reconnecting to WhatsApp in ${Math.round(delayMs / 100) / 10} s`);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stopped) return;
      this.connecting = this.destroyClient().then(() => this.connect());
    }, delayMs);
    this.reconnectTimer.unref?.();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.attempt += 1;
    this.setState('starting', 'starting the WhatsApp Web client (headless Chromium)', { attempt: this.attempt });
    const initializing = this.client.initialize();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StartupTimeoutError(this.startupTimeoutMs)), this.startupTimeoutMs);
    });
    try {
      await Promise.race([initializing, timeout]);
    } catch (err) {
      initializing.catch(() => undefined);
      if (this.stopped) return;
      this.options.logger.error(
        { event: 'startup_failed', attempt: this.attempt, error: err instanceof Error ? err.message : String(err) },
        `WhatsApp client failed to start: ${describeStartupError(err)}`,
      );
      await this.destroyClient();
      this.currentState = 'disconnected';
      this.scheduleReconnect();
      return;
    } finally {
      clearTimeout(timer);
    }
    if (this.stopped) await this.destroyClient();
  }

  private async destroyClient(): Promise<void> {
    try {
      await Promise.race([this.client.destroy(), delay(10_000)]);
    } catch (err) {
      this.options.logger.debug({ err }, 'closing the WhatsApp client failed');
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}
