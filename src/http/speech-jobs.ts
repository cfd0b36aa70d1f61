/**
 * Asynchronous speech jobs of the HTTP API (`POST /v1/speech` for long texts, `GET /v1/jobs/{id}`;
 * see docs/http.md): the text is split into pieces of at most `REPLY_MAX_CHARS` at sentence
 * boundaries, each piece is spoken in the person's twin voice (`Engine.speak`), and the pieces are
 * joined (0.25 s apart) into one Ogg/Opus voice note stored encrypted in the blob store.
 *
 * A job runs on the {@link JobQueue} (kind `speech`; its data, which holds the text, is sealed like
 * every job's), keyed by the person so their jobs run in order. Its state is the record
 * `kv:speechjob:<userKey>:<id>` (sealed; no text in it; deleted with the person): state, progress (pieces done / pieces), the result's
 * blob key and duration, the error's user-facing message, and the callback's outcome. Records
 * expire after 7 days; the audio follows `AUDIO_RETENTION_DAYS` (blob kind `tts`).
 *
 * With a `callback_url`, a `POST` is sent when the job ends (done or failed) with the JSON of
 * `GET /v1/jobs/{id}` and the header `VoiceTwin-Signature: t=<unix seconds>,v1=<hex>`, where `v1` is
 * HMAC-SHA256 over `<t>.<raw body>` keyed with the job's `callbackSecret` (returned once in the 202
 * answer), the scheme Stripe documents for webhooks (https://docs.stripe.com/webhooks#verify-manually).
 * Delivery is tried up to 3 times (timeout 10 s each, 1 s then 2 s apart); a 2xx answer counts.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { concatPcm, decodeToPcm, encodeVoiceNote } from '../core/audio/index.js';
import type { Engine } from '../core/engine.js';
import { UserInputError, isUserInputError } from '../core/errors.js';
import type { Job, JobQueue } from '../core/jobs.js';
import type { Logger } from '../core/log.js';
import { chunkSentences } from '../core/text.js';

/** Job kind on the queue. */
export const SPEECH_JOB_KIND = 'speech';
/** How long a job's record is kept, ms (7 days). */
export const SPEECH_JOB_TTL_MS = 7 * 24 * 3600 * 1000;
const CALLBACK_TIMEOUT_MS = 10_000;
const CALLBACK_ATTEMPTS = 3;
const SAMPLE_RATE_HZ = 48_000;
/** A job speaks at most this many pieces of `REPLY_MAX_CHARS` (12 000 characters by default, about 20 minutes). */
export const MAX_SPEECH_JOB_PIECES = 20;

/** The stored state of a speech job (`kv:speechjob:<id>`). */
export interface SpeechJobRecord {
  id: string;
  userKey: string;
  state: 'queued' | 'running' | 'done' | 'failed';
  /** Pieces the text was split into, and how many are spoken. */
  pieces: number;
  piecesDone: number;
  createdAtMs: number;
  finishedAtMs?: number;
  /** The voice note's blob key (done). */
  blobKey?: string;
  durationSec?: number;
  /** The user-facing reason (failed). */
  error?: string;
  callbackUrl?: string;
  /** Key of the callback's signature (hex), returned once at creation. */
  callbackSecret?: string;
  callback?: { state: 'delivered' | 'failed'; attempts: number; status?: number };
  /** Scheme and host the result URL is given under (HTTP_PUBLIC_URL, or the request's own). */
  baseUrl: string;
}

/** What a job carries on the queue. */
interface SpeechJobData {
  [key: string]: unknown;
  id: string;
  userKey: string;
  text: string;
}

/** The public view of a job (also the callback's body). */
export interface SpeechJobView {
  id: string;
  status: SpeechJobRecord['state'];
  /** 0 to 1: pieces spoken / pieces. */
  progress: number;
  createdAt: string;
  finishedAt?: string;
  result?: { url: string; expiresAt: string; durationSec: number; mimeType: string };
  error?: string;
  callback?: SpeechJobRecord['callback'];
}

/**
 * The signature header value of a callback body: `t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
 * @param secretHex the job's `callbackSecret`
 */
export function callbackSignature(secretHex: string, body: string, unixSec: number): string {
  const mac = createHmac('sha256', Buffer.from(secretHex, 'hex')).update(`${unixSec}.${body}`).digest('hex');
  return `t=${unixSec},v1=${mac}`;
}

/** Speech jobs over the engine and its queue; see the module comment. */
export class SpeechJobs {
  constructor(
    private readonly deps: {
      engine: Engine;
      queue: JobQueue;
      /** The signed path (with query) of a stored voice note, e.g. `AudioUrlSigner.sign`. */
      audioUrl: (blobKey: string) => { path: string; expiresAtMs: number };
      logger: Logger;
      fetch?: typeof fetch;
    },
  ) {
    deps.queue.process<SpeechJobData>(SPEECH_JOB_KIND, (job) => this.run(job));
  }

  /**
   * Queues the speech of `text` for `userKey`.
   * @param baseUrl scheme and host of the result URL (no trailing slash)
   * @param callbackUrl an http(s) URL to POST the outcome to
   * @returns the job's view and, with a callback, its signing secret (shown once)
   * @throws UserInputError TEXT_TOO_LONG over {@link MAX_SPEECH_JOB_PIECES} × REPLY_MAX_CHARS
   */
  async create(userKey: string, text: string, baseUrl: string, callbackUrl?: string): Promise<{ view: SpeechJobView; callbackSecret?: string }> {
    const id = randomUUID();
    const max = MAX_SPEECH_JOB_PIECES * this.deps.engine.settings.limits.replyMaxChars;
    if (text.trim().length > max) {
      throw new UserInputError('TEXT_TOO_LONG', `A speech job speaks at most ${max} characters (about ${MAX_SPEECH_JOB_PIECES} minutes). Yours has ${text.trim().length}; split it into several jobs.`);
    }
    const pieces = chunkSentences(text, this.deps.engine.settings.limits.replyMaxChars).length;
    const record: SpeechJobRecord = {
      id,
      userKey,
      state: 'queued',
      pieces,
      piecesDone: 0,
      createdAtMs: Date.now(),
      baseUrl,
      ...(callbackUrl ? { callbackUrl, callbackSecret: randomBytes(32).toString('hex') } : {}),
    };
    await this.save(record);
    await this.deps.queue.enqueue(SPEECH_JOB_KIND, { id, userKey, text } satisfies SpeechJobData, { id: `speech:${id}`, key: userKey, maxAttempts: 2 });
    return { view: this.view(record), ...(record.callbackSecret ? { callbackSecret: record.callbackSecret } : {}) };
  }

  /** The job `id` of `userKey`, undefined when unknown, expired, or someone else's. */
  async get(userKey: string, id: string): Promise<SpeechJobView | undefined> {
    const record = await this.deps.engine.store.kv.get<SpeechJobRecord>(`speechjob:${userKey}:${id}`);
    return record && record.userKey === userKey ? this.view(record) : undefined;
  }

  private save(record: SpeechJobRecord): Promise<void> {
    return this.deps.engine.store.kv.set(`speechjob:${record.userKey}:${record.id}`, record, SPEECH_JOB_TTL_MS);
  }

  private view(r: SpeechJobRecord): SpeechJobView {
    let result: SpeechJobView['result'];
    if (r.state === 'done' && r.blobKey) {
      const signed = this.deps.audioUrl(r.blobKey);
      result = { url: `${r.baseUrl}${signed.path}`, expiresAt: new Date(signed.expiresAtMs).toISOString(), durationSec: r.durationSec ?? 0, mimeType: 'audio/ogg; codecs=opus' };
    }
    return {
      id: r.id,
      status: r.state,
      progress: r.state === 'done' ? 1 : r.pieces > 0 ? r.piecesDone / r.pieces : 0,
      createdAt: new Date(r.createdAtMs).toISOString(),
      ...(r.finishedAtMs ? { finishedAt: new Date(r.finishedAtMs).toISOString() } : {}),
      ...(result ? { result } : {}),
      ...(r.error ? { error: r.error } : {}),
      ...(r.callback ? { callback: r.callback } : {}),
    };
  }

  /** The queue handler: speaks every piece, joins them, stores the voice note, calls back. */
  private async run(job: Job<SpeechJobData>): Promise<void> {
    const { id, userKey, text } = job.data;
    const log = this.deps.logger.child({ jobId: job.id, userKey });
    const kv = this.deps.engine.store.kv;
    let record = await kv.get<SpeechJobRecord>(`speechjob:${userKey}:${id}`);
    if (!record || record.state === 'done' || record.state === 'failed') return; // deleted, expired, or a re-run of a finished job
    const pieces = chunkSentences(text, this.deps.engine.settings.limits.replyMaxChars);
    record = { ...record, state: 'running', pieces: pieces.length, piecesDone: 0 };
    await this.save(record);
    try {
      const pcm = [];
      for (const piece of pieces) {
        const spoken = await this.deps.engine.speak(userKey, piece);
        pcm.push(await decodeToPcm(spoken.voice.oggOpus, { sampleRateHz: SAMPLE_RATE_HZ }));
        record = { ...record, piecesDone: record.piecesDone + 1 };
        await this.save(record);
      }
      const note = await encodeVoiceNote(pcm.length === 1 ? pcm[0]! : concatPcm(pcm));
      const blobKey = await this.deps.engine.store.blobs.put(userKey, note.oggOpus, 'tts');
      record = { ...record, state: 'done', blobKey, durationSec: note.durationSec, finishedAtMs: Date.now() };
      log.info({ pieces: pieces.length, durationSec: note.durationSec, textChars: text.length }, 'speech job done');
    } catch (err) {
      if (!isUserInputError(err) && job.attempt < job.maxAttempts) throw err; // retried by the queue
      record = {
        ...record,
        state: 'failed',
        finishedAtMs: Date.now(),
        error: isUserInputError(err) ? err.userMessage : 'The speech could not be generated; please try again later.',
      };
      if (isUserInputError(err)) log.info({ code: err.code }, 'speech job refused');
      else log.error({ err }, 'speech job failed');
    }
    await this.save(record);
    if (record.callbackUrl && record.callbackSecret) {
      record = { ...record, callback: await this.callBack(record, log) };
      await this.save(record);
    }
  }

  private async callBack(record: SpeechJobRecord, log: Logger): Promise<NonNullable<SpeechJobRecord['callback']>> {
    const doFetch = this.deps.fetch ?? fetch;
    const body = JSON.stringify(this.view(record));
    let status: number | undefined;
    for (let attempt = 1; attempt <= CALLBACK_ATTEMPTS; attempt++) {
      try {
        const res = await doFetch(record.callbackUrl!, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'voicetwin-signature': callbackSignature(record.callbackSecret!, body, Math.floor(Date.now() / 1000)) },
          body,
          signal: AbortSignal.timeout(CALLBACK_TIMEOUT_MS),
          redirect: 'manual',
        });
        status = res.status;
        await res.body?.cancel().catch(() => undefined);
        if (res.ok) return { state: 'delivered', attempts: attempt, status };
      } catch (err) {
        log.warn({ err, attempt }, 'speech job callback failed');
      }
      if (attempt < CALLBACK_ATTEMPTS) await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
    log.warn({ status }, 'speech job callback not delivered');
    return { state: 'failed', attempts: CALLBACK_ATTEMPTS, ...(status !== undefined ? { status } : {}) };
  }
}
