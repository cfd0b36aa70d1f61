/**
 * A local stand-in for Twilio's side of a bidirectional Media Stream (`<Connect><Stream>`), speaking
 * the messages of https://www.twilio.com/docs/voice/media-streams/websocket-messages:
 * - sends `connected`, `start` (streamSid, callSid, tracks, `mediaFormat` audio/x-mulaw 8000 Hz mono,
 *   `customParameters`), `media` (track `inbound`, chunk, timestamp, base64 payload of 20 ms μ-law),
 *   `stop`, every message with an increasing `sequenceNumber`;
 * - receives `media`, `mark` and `clear` from the server and plays them like Twilio: audio is
 *   buffered and played in real time, each `mark` is echoed back once the audio sent before it has
 *   played, a `clear` drops the buffered audio and echoes the pending marks at once.
 * The upgrade carries `X-Twilio-Signature` over the wss URL (https://www.twilio.com/docs/usage/security).
 */
import WebSocket from 'ws';
import { twilioSignature } from './signature.js';

export interface ReceivedMedia {
  /** μ-law bytes of the frame. */
  bytes: Buffer;
  /** performance.now() when it arrived. */
  atMs: number;
}

export class FakeTwilioStream {
  readonly received: ReceivedMedia[] = [];
  readonly marks: Array<{ name: string; atMs: number }> = [];
  readonly clears: number[] = [];
  readonly events: Array<{ event: string; atMs: number }> = [];
  closed: { code: number; reason: string } | undefined;
  private seq = 0;
  private chunk = 0;
  private playoutEndMs = 0;
  private readonly pendingMarks = new Map<string, NodeJS.Timeout>();
  readonly streamSid = 'MZ' + 'a'.repeat(32);

  private constructor(
    private readonly ws: WebSocket,
    private readonly callSid: string,
  ) {
    ws.on('message', (data) => this.onMessage(String(data)));
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const t of this.pendingMarks.values()) clearTimeout(t);
    });
  }

  /**
   * Opens the socket like Twilio does.
   * @param localUrl where to connect (`ws://127.0.0.1:port/telephony/twilio/media`)
   * @param signedUrl the URL Twilio would have requested (the `url` of `<Stream>`)
   */
  static async open(localUrl: string, options: { authToken: string; signedUrl?: string; signature?: string; callSid: string }): Promise<FakeTwilioStream> {
    const ws = new WebSocket(localUrl, { headers: { 'x-twilio-signature': options.signature ?? twilioSignature(options.authToken, options.signedUrl ?? localUrl) } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
    return new FakeTwilioStream(ws, options.callSid);
  }

  /** `connected` then `start` with the custom parameters of the TwiML `<Stream>`. */
  start(customParameters: Record<string, string>, mediaFormat = { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 }): void {
    this.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    this.send({
      event: 'start',
      sequenceNumber: String(++this.seq),
      start: { accountSid: 'AC' + '0'.repeat(32), streamSid: this.streamSid, callSid: this.callSid, tracks: ['inbound'], mediaFormat, customParameters },
      streamSid: this.streamSid,
    });
  }

  /** One 20 ms frame of caller audio (160 μ-law bytes). */
  media(frame: Buffer): void {
    this.chunk++;
    this.send({ event: 'media', sequenceNumber: String(++this.seq), media: { track: 'inbound', chunk: String(this.chunk), timestamp: String(this.chunk * 20), payload: frame.toString('base64') }, streamSid: this.streamSid });
  }

  /**
   * Sends caller audio frame by frame.
   * @param pace 1 = real time (20 ms per frame), 0 = as fast as possible
   */
  async play(frames: Buffer[], pace = 1): Promise<void> {
    const t0 = performance.now();
    for (let i = 0; i < frames.length; i++) {
      this.media(frames[i]!);
      if (pace > 0) {
        const due = t0 + (i + 1) * 20 * pace;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      } else if (i % 50 === 49) {
        await new Promise((r) => setImmediate(r));
      }
    }
  }

  stop(): void {
    this.send({ event: 'stop', sequenceNumber: String(++this.seq), streamSid: this.streamSid, stop: { accountSid: 'AC' + '0'.repeat(32), callSid: this.callSid } });
  }

  close(): void {
    this.ws.close();
  }

  /** Waits until `check` holds (polling every 10 ms). */
  async until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!check()) {
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** All μ-law bytes received, concatenated. */
  audio(from = 0): Buffer {
    return Buffer.concat(this.received.slice(from).map((m) => m.bytes));
  }

  private onMessage(raw: string): void {
    const msg = JSON.parse(raw) as { event: string; streamSid?: string; media?: { payload: string }; mark?: { name: string } };
    const now = performance.now();
    this.events.push({ event: msg.event, atMs: now });
    if (msg.streamSid !== this.streamSid) throw new Error(`message for another stream: ${msg.streamSid}`);
    if (msg.event === 'media') {
      const bytes = Buffer.from(msg.media!.payload, 'base64');
      this.received.push({ bytes, atMs: now });
      this.playoutEndMs = Math.max(this.playoutEndMs, now) + (bytes.length / 8000) * 1000;
    } else if (msg.event === 'mark') {
      const name = msg.mark!.name;
      const timer = setTimeout(() => this.echoMark(name), Math.max(0, this.playoutEndMs - now));
      this.pendingMarks.set(name, timer);
    } else if (msg.event === 'clear') {
      this.clears.push(now);
      this.playoutEndMs = now;
      for (const [name, timer] of this.pendingMarks) {
        clearTimeout(timer);
        this.echoMark(name);
      }
    }
  }

  private echoMark(name: string): void {
    this.pendingMarks.delete(name);
    this.marks.push({ name, atMs: performance.now() });
    this.send({ event: 'mark', sequenceNumber: String(++this.seq), streamSid: this.streamSid, mark: { name } });
  }

  private send(message: Record<string, unknown>): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }
}
