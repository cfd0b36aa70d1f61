/**
 * Realtime section of `npm run bench` (`BENCH_SECTIONS=realtime`): text turns over the WebSocket
 * `/v1/realtime` (docs/realtime.md), a real `ws` client against the real server on a free port,
 * through the whole product path (API key, job queue, engine, outbox, per-sentence TTS, Opus
 * encoding, the socket).
 *
 * 1. Zero-latency providers (chat and TTS answer at once): time to the first audio chunk, p50/p95
 *    against the 150 ms goal — our own overhead.
 * 2. Simulated providers: the chat model's first token after 400 ms, then 40 tokens/s (one word a
 *    token, streamed), TTS 300 ms per sentence. Goals: first audio within 1.2× of (first token +
 *    the first sentence's generation + its TTS), and the last audio chunk within 1.15× of the
 *    critical path (first token + the whole generation + the last sentence's TTS, the sentences
 *    before it being synthesised while the model writes).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { loadConfig } from '../src/config.js';
import { buildApp } from '../src/app.js';
import { silentLogger } from '../src/core/log.js';
import type { ChatModel, ChatRequest, Providers, SpeechSynthesizer } from '../src/core/providers.js';
import { createHttpServer } from '../src/http/server.js';
import { registerApi } from '../src/http/api.js';
import { zeroLatencyProviders } from './providers.js';

const ZERO_TURNS = Number(process.env.BENCH_REALTIME_TURNS ?? 40);
const SIMULATED_TURNS = Number(process.env.BENCH_REALTIME_SIMULATED_TURNS ?? 5);
const FIRST_TOKEN_MS = 400;
const TOKENS_PER_SEC = 40;
const TTS_MS = 300;
/** The simulated reply: three sentences; `{n}` makes each sentence of each turn new (no synthesis cache hit). */
const REPLY = 'Turn {n} sounds like a good plan to me. A walk by the river on day {n} is a lovely idea. What matters most to you about turn {n}?';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round((sorted[idx] ?? 0) * 10) / 10;
}

/** Words with their leading space, as chat models stream tokens. */
function tokens(text: string): string[] {
  return text.split(' ').map((w, i) => (i === 0 ? w : ` ${w}`));
}

/** A chat model that streams `REPLY` word by word: first token after `firstTokenMs`, then `tokensPerSec`. */
function streamingChat(firstTokenMs: number, tokensPerSec: number): ChatModel {
  let n = 0;
  const streamReply = async (request: ChatRequest, onDelta: (d: string) => void): Promise<{ text: string }> => {
    const text = REPLY.replaceAll('{n}', String(++n));
    const started = performance.now();
    for (const [i, token] of tokens(text).entries()) {
      // Paced against the start (no drift from timer lateness).
      const due = started + firstTokenMs + (i * 1000) / tokensPerSec - performance.now();
      if (due > 0) await sleep(due);
      request.signal?.throwIfAborted();
      onDelta(token);
    }
    return { text };
  };
  return {
    name: 'simulated',
    reply: (request) => streamReply(request, () => undefined),
    ...(tokensPerSec === Infinity ? {} : { streamReply }),
    extractMemories: async () => [],
    insight: async () => '',
  };
}

/** TTS answering `wav` after `latencyMs`. */
function delayedTts(wav: Buffer, latencyMs: number): SpeechSynthesizer {
  return {
    name: 'simulated',
    synthesize: async ({ text }) => {
      if (latencyMs > 0) await sleep(latencyMs);
      return { bytes: wav, characters: text.length };
    },
  };
}

interface TurnTimes {
  firstAudioMs: number;
  lastAudioMs: number;
  doneMs: number;
  chunks: number;
}

async function runTurns(dir: string, providers: Providers, turns: number, warmup: number): Promise<TurnTimes[]> {
  const dataDir = await mkdtemp(path.join(dir, 'rt-'));
  const config = loadConfig({ VOICETWIN_DATA_DIR: dataDir, VOICETWIN_DATA_KEY: 'ef'.repeat(32), LOG_LEVEL: 'silent', INSIGHT_EVERY: '0', MEMORY_EVERY: '0' });
  const app = await buildApp(config, { logger: silentLogger, providers });
  await app.engine.start();
  const server = await createHttpServer({
    settings: { host: '127.0.0.1', port: 0, headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, idleTimeoutMs: 60_000, rateLimitPerIp: 100_000, rateLimitPerKey: 100_000 },
    logger: silentLogger,
    routes: (f) => registerApi(f, { engine: app.engine, urlSigningKey: randomBytes(32), rateLimitPerKey: 100_000 }),
  });
  const { url } = await server.listen();
  const key = (await app.engine.apiKeys.create('web:bench', 'bench')).key;
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/realtime`, { headers: { authorization: `Bearer ${key}` } });
  const listeners = new Set<(e: { type: string; [k: string]: unknown }) => void>();
  ws.on('message', (data) => {
    const event = JSON.parse(String(data)) as { type: string };
    for (const l of listeners) l(event);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    const l = (e: { type: string }): void => {
      if (e.type !== 'session.created') return;
      listeners.delete(l);
      resolve();
    };
    listeners.add(l);
  });
  const results: TurnTimes[] = [];
  try {
    for (let i = 0; i < warmup + turns; i++) {
      const times = await new Promise<TurnTimes>((resolve, reject) => {
        const t0 = performance.now();
        const out: TurnTimes = { firstAudioMs: 0, lastAudioMs: 0, doneMs: 0, chunks: 0 };
        const l = (e: { type: string; [k: string]: unknown }): void => {
          const at = performance.now() - t0;
          if (e.type === 'response.audio.delta') {
            if (out.chunks === 0) out.firstAudioMs = at;
            out.lastAudioMs = at;
            out.chunks++;
          } else if (e.type === 'error') reject(new Error(JSON.stringify(e)));
          else if (e.type === 'response.done') {
            out.doneMs = at;
            listeners.delete(l);
            resolve(out);
          }
        };
        listeners.add(l);
        ws.send(JSON.stringify({ type: 'conversation.item.create', item: { content: [{ type: 'input_text', text: `How should I spend my weekend, take ${i}?` }] } }));
      });
      if (i >= warmup) results.push(times);
    }
  } finally {
    ws.close();
    await server.close();
    await app.close();
  }
  return results;
}

/** Runs the realtime section; see the module comment. */
export async function benchRealtime(): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'voicetwin-bench-rt-'));
  try {
    const wavPath = path.join(dir, 'sentence.wav');
    const r = spawnSync('espeak-ng', ['-v', 'en-us', '-w', wavPath, '--', 'A walk by the river is a lovely idea for the weekend.']);
    if (r.status !== 0) throw new Error(`espeak-ng failed: ${r.stderr?.toString()}`);
    const wav = await readFile(wavPath);
    const base = zeroLatencyProviders(wav);

    const zero = await runTurns(dir, { ...base, chat: streamingChat(0, Infinity), tts: delayedTts(wav, 0) }, ZERO_TURNS, 3);
    const firstZero = zero.map((t) => t.firstAudioMs);

    const simulated = await runTurns(dir, { ...base, chat: streamingChat(FIRST_TOKEN_MS, TOKENS_PER_SEC), tts: delayedTts(wav, TTS_MS) }, SIMULATED_TURNS, 1);
    const words = tokens(REPLY);
    const tokenMs = 1000 / TOKENS_PER_SEC;
    const firstSentenceTokens = REPLY.indexOf('.') >= 0 ? tokens(REPLY.slice(0, REPLY.indexOf('.') + 1)).length : words.length;
    // The first sentence's last token arrives after (tokens − 1) intervals.
    const firstAudioPathMs = FIRST_TOKEN_MS + (firstSentenceTokens - 1) * tokenMs + TTS_MS;
    const criticalPathMs = FIRST_TOKEN_MS + (words.length - 1) * tokenMs + TTS_MS;
    const firstSim = simulated.map((t) => t.firstAudioMs);
    const lastSim = simulated.map((t) => t.lastAudioMs);
    const firstRatio = percentile(firstSim, 95) / firstAudioPathMs;
    const wholeRatio = percentile(lastSim, 95) / criticalPathMs;
    return {
      zeroLatency: {
        turns: zero.length,
        chunksPerTurn: zero[0]?.chunks,
        firstAudio: { p50Ms: percentile(firstZero, 50), p95Ms: percentile(firstZero, 95), goalP95Ms: 150, met: percentile(firstZero, 95) <= 150 },
        lastAudio: { p50Ms: percentile(zero.map((t) => t.lastAudioMs), 50), p95Ms: percentile(zero.map((t) => t.lastAudioMs), 95) },
        done: { p50Ms: percentile(zero.map((t) => t.doneMs), 50), p95Ms: percentile(zero.map((t) => t.doneMs), 95) },
      },
      simulated: {
        providers: { firstTokenMs: FIRST_TOKEN_MS, tokensPerSec: TOKENS_PER_SEC, ttsMsPerSentence: TTS_MS, replyTokens: words.length, sentences: 3 },
        turns: simulated.length,
        firstAudio: { p50Ms: percentile(firstSim, 50), p95Ms: percentile(firstSim, 95), pathMs: firstAudioPathMs, ratioP95: Math.round(firstRatio * 1000) / 1000, goalRatio: 1.2, met: firstRatio <= 1.2 },
        wholeReply: { p50Ms: percentile(lastSim, 50), p95Ms: percentile(lastSim, 95), criticalPathMs, ratioP95: Math.round(wholeRatio * 1000) / 1000, goalRatio: 1.15, met: wholeRatio <= 1.15 },
        done: { p95Ms: percentile(simulated.map((t) => t.doneMs), 95) },
      },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
