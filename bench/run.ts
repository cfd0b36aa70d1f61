/**
 * `npm run bench`: measures the voice-note pipeline and writes a JSON report to
 * `bench/results/latest.json` (and prints it).
 *
 * 1. Pipeline overhead: voice turns on a 10 s voice note with zero-latency providers (STT, chat and
 *    TTS answer at once), so what is measured is our own work: probe + decode, memory selection,
 *    history and store writes, decoding the synthesised audio, joining, Opus encoding. Per stage
 *    p50/p95 ms, and the overhead (total minus provider time) p95 against the 100 ms goal.
 * 2. Throughput: chat turns per second over several users at once with the same providers.
 * 3. Offline stack: a few turns with the real pocketsphinx / template / flite providers, and the
 *    offline voice itself (bench/offline-voice.ts): round-trip word error rate per engine, F0 and
 *    rate matching on real speakers, synthesis real-time factor.
 * 4. Scale-out (bench/scale.ts): turns/s with 1, 2 and 3 serve processes on one Redis, and the
 *    first sign of life (update → first Bot API call for that chat), alone and in a burst of 20.
 * 5. Phone line (bench/telephony.ts): inbound-call webhook p95 under 20 concurrent calls, pipeline
 *    end of caller speech → first reply audio frame p95, offline STT time on telephone audio.
 * 6. Realtime (bench/realtime.ts): text turns over the WebSocket `/v1/realtime`, time to the first
 *    audio chunk with zero-latency providers and, with simulated provider latencies, first audio
 *    and the whole reply against the critical path.
 * 6. Peak RSS of the process (KiB → MiB).
 */
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.js';
import { buildApp } from '../src/app.js';
import type { EngineEvent, TurnTimings } from '../src/core/engine.js';
import type { ChannelSender, OutboundReply, ReplyTarget } from '../src/core/types.js';
import { silentLogger } from '../src/core/log.js';
import { zeroLatencyProviders } from './providers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const TURNS = Number(process.env.BENCH_TURNS ?? 40);
const USERS = Number(process.env.BENCH_USERS ?? 8);
/** Comma-separated sections to run (pipeline, offline, audio, store, telegram, broadcast, scale, telephony, realtime); default all. */
const ALL_SECTIONS = 'pipeline,offline,audio,store,telegram,broadcast,scale,telephony,realtime';
const SECTIONS = new Set((process.env.BENCH_SECTIONS ?? ALL_SECTIONS).split(',').map((s) => s.trim()));

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[idx]! * 100) / 100;
}

function stats(values: number[]): { p50Ms: number; p95Ms: number; n: number } {
  return { p50Ms: percentile(values, 50), p95Ms: percentile(values, 95), n: values.length };
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr?.toString()}`);
}

/** A 10 s Ogg/Opus voice note of espeak-ng speech (padded to exactly 10 s). */
async function makeVoiceNote(dir: string): Promise<Buffer> {
  const wav = path.join(dir, 'speech.wav');
  const ogg = path.join(dir, 'note.ogg');
  run('espeak-ng', ['-v', 'en-us', '-s', '150', '-w', wav, '--', 'I had a long day at work today and I would like to plan my weekend. Maybe a walk by the river, then dinner with friends, and some quiet time to read.']);
  run('ffmpeg', ['-loglevel', 'error', '-y', '-i', wav, '-af', 'apad=whole_dur=10', '-t', '10', '-ac', '1', '-ar', '48000', '-c:a', 'libopus', '-b:a', '32k', ogg]);
  return readFile(ogg);
}

class NullTarget implements ReplyTarget, ChannelSender {
  readonly channel = 'console' as const;
  replies = 0;
  async reply(_r: OutboundReply): Promise<void> {
    this.replies++;
  }
  async activity(): Promise<void> {}
  async status(): Promise<(t: string) => Promise<void>> {
    return async () => undefined;
  }
  async send(): Promise<void> {}
}

async function benchPipeline(dir: string, note: Buffer, ttsWav: Buffer): Promise<Record<string, unknown>> {
  const timings: TurnTimings[] = [];
  const dataDir = await mkdtemp(path.join(dir, 'data-'));
  const config = loadConfig({
    VOICETWIN_DATA_DIR: dataDir,
    VOICETWIN_DATA_KEY: 'ab'.repeat(32),
    LOG_LEVEL: 'silent',
    INSIGHT_EVERY: '0',
    MEMORY_EVERY: '0',
    TURN_CONCURRENCY: '2',
    AUDIO_WORKERS: process.env.AUDIO_WORKERS,
  });
  const app = await buildApp(config, { logger: silentLogger, providers: zeroLatencyProviders(ttsWav), observer: (e: EngineEvent) => e.type === 'turn' && timings.push(e.timings) });
  const target = new NullTarget();
  app.engine.registerSender(target);
  try {
    const voice = (): { bytes: Buffer; isVoiceNote: true } => ({ bytes: note, isVoiceNote: true });
    // Warm-up (JIT, ffmpeg page cache, SQLite).
    for (let i = 0; i < 3; i++) await app.engine.handle({ id: `warm-${i}`, channel: 'console', chatId: 'w', userId: 'w', receivedAtMs: Date.now(), audio: voice() }, target);
    timings.length = 0;
    // How long the event loop is held up (what other chats wait for while a turn is processed).
    const loopDelay = monitorEventLoopDelay({ resolution: 5 });
    loopDelay.enable();
    for (let i = 0; i < TURNS; i++) {
      await app.engine.handle({ id: `seq-${i}`, channel: 'console', chatId: 'u', userId: 'u', receivedAtMs: Date.now(), audio: voice() }, target);
    }
    loopDelay.disable();
    const sequential = [...timings];
    timings.length = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: TURNS }, (_, i) =>
        app.engine.handle({ id: `par-${i}`, channel: 'console', chatId: `u${i % USERS}`, userId: `u${i % USERS}`, receivedAtMs: Date.now(), audio: voice() }, target),
      ),
    );
    const wallSec = (performance.now() - started) / 1000;
    const overhead = sequential.map((t) => t.totalMs - t.sttMs - t.chatMs);
    return {
      voiceNoteSec: 10,
      turns: sequential.length,
      stages: {
        decode: stats(sequential.map((t) => t.decodeMs)),
        stt: stats(sequential.map((t) => t.sttMs)),
        chat: stats(sequential.map((t) => t.chatMs)),
        tts: stats(sequential.map((t) => t.ttsMs)),
        encode: stats(sequential.map((t) => t.encodeMs)),
        store: stats(sequential.map((t) => t.storeMs)),
        total: stats(sequential.map((t) => t.totalMs)),
      },
      overhead: { ...stats(overhead), goalP95Ms: 100, met: percentile(overhead, 95) <= 100 },
      audioWorkers: config.audioWorkers,
      // Event-loop delay beyond the 5 ms sampling interval, ms (nanoseconds in the histogram).
      eventLoopDelay: { p99Ms: Math.round(loopDelay.percentile(99) / 1e4) / 100, maxMs: Math.round(loopDelay.max / 1e4) / 100 },
      throughput: { turns: TURNS, users: USERS, concurrency: 2, wallSec: Math.round(wallSec * 100) / 100, turnsPerSec: Math.round((TURNS / wallSec) * 100) / 100 },
    };
  } finally {
    await app.close();
  }
}

async function benchOffline(dir: string, note: Buffer): Promise<Record<string, unknown>> {
  const timings: TurnTimings[] = [];
  const dataDir = await mkdtemp(path.join(dir, 'offline-'));
  const config = loadConfig({ VOICETWIN_DATA_DIR: dataDir, VOICETWIN_DATA_KEY: 'cd'.repeat(32), LOG_LEVEL: 'silent', INSIGHT_EVERY: '0', MEMORY_EVERY: '0' });
  const app = await buildApp(config, { logger: silentLogger, observer: (e: EngineEvent) => e.type === 'turn' && timings.push(e.timings) });
  const target = new NullTarget();
  try {
    for (let i = 0; i < 3; i++) {
      await app.engine.handle({ id: `off-${i}`, channel: 'console', chatId: 'o', userId: 'o', receivedAtMs: Date.now(), audio: { bytes: note, isVoiceNote: true } }, target);
    }
    return {
      turns: timings.length,
      stages: {
        decode: stats(timings.map((t) => t.decodeMs)),
        stt: stats(timings.map((t) => t.sttMs)),
        chat: stats(timings.map((t) => t.chatMs)),
        tts: stats(timings.map((t) => t.ttsMs)),
        encode: stats(timings.map((t) => t.encodeMs)),
        store: stats(timings.map((t) => t.storeMs)),
        total: stats(timings.map((t) => t.totalMs)),
      },
    };
  } finally {
    await app.close();
  }
}

async function optionalBench(modulePath: string, exportName: string): Promise<unknown> {
  try {
    const mod = (await import(modulePath)) as Record<string, unknown>;
    const fn = mod[exportName];
    return typeof fn === 'function' ? await (fn as () => Promise<unknown>)() : undefined;
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'voicetwin-bench-'));
  try {
    const note = await makeVoiceNote(dir);
    const ttsWavPath = path.join(dir, 'tts.wav');
    run('espeak-ng', ['-v', 'en-us', '-w', ttsWavPath, '--', 'Planning ahead sounds good, and a walk by the river is a lovely idea. What matters most to you this weekend?']);
    const ttsWav = await readFile(ttsWavPath);
    const report: Record<string, unknown> = {
      date: new Date().toISOString(),
      machine: { node: process.version, platform: process.platform, arch: process.arch },
      pipeline: SECTIONS.has('pipeline') ? await benchPipeline(dir, note, ttsWav) : 'skipped',
      offlineStack: SECTIONS.has('offline') ? await benchOffline(dir, note) : 'skipped',
      offlineVoice: SECTIONS.has('offline') ? await optionalBench('./offline-voice.js', 'benchOfflineVoice') : 'skipped',
      audio: SECTIONS.has('audio') ? await optionalBench('./audio.js', 'benchAudio') : 'skipped',
      store: SECTIONS.has('store') ? await optionalBench('./store.js', 'benchStore') : 'skipped',
      telegram: SECTIONS.has('telegram') ? await optionalBench('./telegram.js', 'benchTelegram') : 'skipped',
      broadcast: SECTIONS.has('broadcast') ? await optionalBench('./broadcast.js', 'benchBroadcast') : 'skipped',
      firstSignOfLife: SECTIONS.has('scale') ? await optionalBench('./scale.js', 'benchFirstSignOfLife') : 'skipped',
      scaleOut: SECTIONS.has('scale') ? await optionalBench('./scale.js', 'benchScaleOut') : 'skipped',
      telephony: SECTIONS.has('telephony') ? await optionalBench('./telephony.js', 'benchTelephony') : 'skipped',
      realtime: SECTIONS.has('realtime') ? await optionalBench('./realtime.js', 'benchRealtime') : 'skipped',
    };
    report.peakRssMiB = Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;
    const outDir = path.join(here, 'results');
    await mkdir(outDir, { recursive: true });
    const json = JSON.stringify(report, null, 2);
    const file = path.join(outDir, SECTIONS.size === ALL_SECTIONS.split(',').length ? 'latest.json' : 'partial.json');
    await writeFile(file, json);
    process.stdout.write(`${json}\n\nwritten to ${file}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
