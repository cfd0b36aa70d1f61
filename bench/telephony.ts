/**
 * Phone line benchmark (`BENCH_SECTIONS=telephony`), on the real HTTP server with the Twilio routes
 * (src/telephony/) and the real app over a temporary SQLite data dir:
 *
 * 1. Inbound-call webhook: signed `POST /telephony/twilio/voice` requests (signatures from
 *    test/fakes/twilio/signature.ts, Twilio's documented algorithm) from 20 linked numbers at once,
 *    several rounds; response time p50/p95 against the 100 ms goal. The unlinked path (the
 *    explanation and `<Gather>`) is measured the same way.
 * 2. Pipeline turn latency with zero-latency providers (bench/providers.ts): the local Media Streams
 *    client (test/fakes/twilio/media-client.ts) speaks 8 kHz μ-law espeak-ng speech at real-time
 *    pace, then silence; measured from the moment the client sent the last frame of speech to the
 *    first reply `media` frame received, p50/p95 against the 700 ms goal. This includes the 500 ms
 *    of silence the end-of-turn detector waits for (src/telephony/vad.ts).
 * 3. Offline STT (pocketsphinx) on the same utterance at 8 kHz, reported separately: ms and
 *    real-time factor.
 *
 * Run alone with `npx tsx bench/telephony.ts`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config.js';
import { buildApp } from '../src/app.js';
import { silentLogger } from '../src/core/log.js';
import { createHttpServer } from '../src/http/server.js';
import { registerTelephony, TWILIO_PATHS } from '../src/telephony/twilio-routes.js';
import { PipelineMode, MEDIA_STREAM_PATH } from '../src/telephony/modes.js';
import { linkPhone } from '../src/telephony/links.js';
import { encodeMulaw, mulawFrames } from '../src/telephony/mulaw.js';
import { levelDbfs } from '../src/telephony/vad.js';
import { decodeMulaw } from '../src/telephony/mulaw.js';
import { wavToPcm } from '../src/core/audio/wav.js';
import { resamplePcm } from '../src/core/audio/resample.js';
import { PocketsphinxSpeechToText } from '../src/providers/local/pocketsphinx.js';
import { postTwilio, voiceParams } from '../test/fakes/twilio/signature.js';
import { FakeTwilioStream } from '../test/fakes/twilio/media-client.js';
import { zeroLatencyProviders } from './providers.js';

const AUTH_TOKEN = 'bench-auth-token';
const PUBLIC = 'https://twin.example.org';
const CONCURRENT_CALLS = Number(process.env.BENCH_PHONE_CONCURRENCY ?? 20);
const ROUNDS = Number(process.env.BENCH_PHONE_ROUNDS ?? 10);
const TURNS = Number(process.env.BENCH_PHONE_TURNS ?? 8);

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! * 10) / 10;
}

function espeakWav(dir: string, name: string, text: string): Promise<Buffer> {
  const file = path.join(dir, `${name}.wav`);
  const r = spawnSync('espeak-ng', ['-v', 'en-us+m1', '-s', '150', '-w', file, '--', text]);
  if (r.status !== 0) throw new Error(`espeak-ng failed: ${r.stderr?.toString()}`);
  return readFile(file);
}

/** Runs the phone benchmark and returns its report. */
export async function benchTelephony(): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'voicetwin-bench-phone-'));
  try {
    const ttsWav = await espeakWav(dir, 'tts', 'Planning ahead sounds good. What matters most to you this weekend?');
    const speech = resamplePcm(wavToPcm(await espeakWav(dir, 'caller', 'I would like to plan my weekend with some friends.')), 8000)!;
    const config = loadConfig({ VOICETWIN_DATA_DIR: path.join(dir, 'data'), VOICETWIN_DATA_KEY: 'cd'.repeat(32), LOG_LEVEL: 'silent', TWILIO_AUTH_TOKEN: AUTH_TOKEN, MEMORY_EVERY: '0', INSIGHT_EVERY: '0' });
    const app = await buildApp(config, { logger: silentLogger, providers: zeroLatencyProviders(ttsWav), queue: false });
    await app.engine.start();
    const turnTimings: Array<{ sttMs: number; chatMs: number; firstAudioMs: number }> = [];
    const server = await createHttpServer({
      settings: { host: '127.0.0.1', port: 0, headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, idleTimeoutMs: 60_000, rateLimitPerIp: 1_000_000, rateLimitPerKey: 1_000_000 },
      logger: silentLogger,
      routes: async (fastify) => {
        await registerTelephony(fastify, {
          engine: app.engine,
          logger: silentLogger,
          authToken: AUTH_TOKEN,
          publicUrl: PUBLIC,
          mode: new PipelineMode(),
          maxCallSec: 3600,
          dailyCallMin: 1440,
          unlinkedCallsPerHour: 1_000_000,
          onTurn: (t) => turnTimings.push(t),
        });
      },
    });
    const { url } = await server.listen();
    try {
      // People with a linked number each.
      const numbers = Array.from({ length: CONCURRENT_CALLS }, (_, i) => `+1415555${String(1000 + i)}`);
      for (const [i, n] of numbers.entries()) {
        await app.engine.person(`web:p${i}`, `Person ${i}`);
        await linkPhone(app.store.kv, n, `web:p${i}`);
      }
      const post = (from: string, sid: string) => postTwilio(`${url}${TWILIO_PATHS.voice}`, voiceParams(sid, from), { authToken: AUTH_TOKEN, signedUrl: `${PUBLIC}${TWILIO_PATHS.voice}` });
      // Warm-up, then rounds of 20 calls at once.
      await Promise.all(numbers.map((n, i) => post(n, `CA${'f'.repeat(30)}${String(i).padStart(2, '0')}`)));
      const linked: number[] = [];
      const unlinked: number[] = [];
      let sid = 0;
      for (let r = 0; r < ROUNDS; r++) {
        const results = await Promise.all(numbers.map((n) => post(n, `CA${(++sid).toString(16).padStart(32, '0')}`)));
        for (const res of results) {
          if (res.status !== 200 || !res.body.includes('<Connect>')) throw new Error(`unexpected answer ${res.status}: ${res.body.slice(0, 200)}`);
          linked.push(res.ms);
        }
        const strangers = await Promise.all(numbers.map((_, i) => post(`+1650555${String(2000 + i)}`, `CA${(++sid).toString(16).padStart(32, '0')}`)));
        for (const res of strangers) unlinked.push(res.ms);
      }

      // Pipeline turns on one call.
      const callSid = `CA${'e'.repeat(32)}`;
      await post(numbers[0]!, callSid);
      const stream = await FakeTwilioStream.open(`${url.replace('http', 'ws')}${MEDIA_STREAM_PATH}`, { authToken: AUTH_TOKEN, signedUrl: `wss://twin.example.org${MEDIA_STREAM_PATH}`, callSid });
      stream.start({ callSid, person: 'web:p0' });
      const allMarksBack = async (): Promise<void> =>
        stream.until(() => {
          const sent = stream.events.filter((e) => e.event === 'mark').length;
          return sent > 0 && stream.marks.length >= sent;
        }, 30_000, 'reply played');
      await stream.until(() => stream.received.length > 0, 10_000, 'greeting');
      await allMarksBack();
      const speechFrames = mulawFrames(encodeMulaw(speech.samples));
      const lastSpeech = speechFrames.reduce((last, f, i) => (levelDbfs(decodeMulaw(f)) > -45 ? i : last), 0);
      const lead = mulawFrames(Buffer.alloc(1600, 0xff));
      const tail = mulawFrames(Buffer.alloc(8000 * 2, 0xff));
      const latencies: number[] = [];
      for (let t = 0; t < TURNS; t++) {
        const before = stream.received.length;
        await stream.play(lead, 1);
        let lastSpeechSentAt = 0;
        const t0 = performance.now();
        for (let i = 0; i < speechFrames.length; i++) {
          stream.media(speechFrames[i]!);
          if (i === lastSpeech) lastSpeechSentAt = performance.now();
          const wait = t0 + (i + 1) * 20 - performance.now();
          if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        }
        const tailDone = stream.play(tail, 1);
        await stream.until(() => stream.received.length > before, 10_000, 'reply audio');
        latencies.push(stream.received[before]!.atMs - lastSpeechSentAt);
        await tailDone;
        await allMarksBack();
      }
      stream.close();

      const stt = new PocketsphinxSpeechToText();
      const sttMs: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        await stt.transcribe(speech);
        sttMs.push(performance.now() - t);
      }
      const speechSec = speech.samples.length / 8000;
      return {
        inboundWebhook: {
          concurrentCalls: CONCURRENT_CALLS,
          rounds: ROUNDS,
          linked: { p50Ms: percentile(linked, 50), p95Ms: percentile(linked, 95), n: linked.length },
          unlinked: { p50Ms: percentile(unlinked, 50), p95Ms: percentile(unlinked, 95), n: unlinked.length },
          goalP95Ms: 100,
          meetsGoal: percentile(linked, 95) <= 100 && percentile(unlinked, 95) <= 100,
        },
        pipelineTurn: {
          what: 'last speech frame sent by the caller → first reply media frame received; zero-latency STT, chat and TTS; includes the 500 ms end-of-turn silence',
          turns: latencies.length,
          endOfSpeechToFirstAudio: { p50Ms: percentile(latencies, 50), p95Ms: percentile(latencies, 95) },
          serverSide: {
            what: 'p95 as the server measures from its last speech frame: transcript ready (includes the end-of-turn silence), chat model, first reply frame sent',
            speechEndToTranscriptMs: percentile(turnTimings.map((t) => t.sttMs), 95),
            chatMs: percentile(turnTimings.map((t) => t.chatMs), 95),
            speechEndToFirstFrameMs: percentile(turnTimings.map((t) => t.firstAudioMs), 95),
          },
          goalP95Ms: 700,
          meetsGoal: percentile(latencies, 95) <= 700,
        },
        offlineStt: { provider: 'pocketsphinx', utteranceSec: Math.round(speechSec * 100) / 100, p50Ms: percentile(sttMs, 50), realTimeFactor: Math.round((percentile(sttMs, 50) / 1000 / speechSec) * 100) / 100 },
      };
    } finally {
      await server.close();
      await app.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${JSON.stringify(await benchTelephony(), null, 2)}\n`);
}
