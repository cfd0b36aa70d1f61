/**
 * One `serve` process of the scale-out benchmark (bench/scale.ts): the real serve (Telegram
 * adapter, queue, engine, voice-note pipeline) with providers that take a realistic, fixed time:
 * STT 300 ms, chat 800 ms, TTS 400 ms per sentence, each a plain wait (no CPU), so throughput
 * measures how the work spreads over processes. Usage: `tsx bench/scale-worker.ts all|worker`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import { serve, type ServeRole } from '../src/main.js';
import type { Providers } from '../src/core/providers.js';
import { zeroLatencyProviders } from './providers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function simulatedProviders(): Providers {
  const dir = mkdtempSync(path.join(tmpdir(), 'voicetwin-bench-tts-'));
  const wavPath = path.join(dir, 'tts.wav');
  spawnSync('espeak-ng', ['-v', 'en-us', '-w', wavPath, '--', 'That sounds like a good plan.']);
  const wav = readFileSync(wavPath);
  rmSync(dir, { recursive: true, force: true });
  const base = zeroLatencyProviders(wav);
  return {
    ...base,
    stt: { ...base.stt, transcribe: async (audio, options) => (await sleep(300), base.stt.transcribe(audio, options)) },
    chat: { ...base.chat, reply: async (request) => (await sleep(800), base.chat.reply(request)) },
    tts: { ...base.tts, synthesize: async (request) => (await sleep(400), base.tts.synthesize(request)) },
  };
}

const role = (process.argv[2] ?? 'all') as ServeRole;
const running = await serve(loadConfig(process.env), { role, providers: simulatedProviders() });
process.once('SIGTERM', () => void running.stop().then(() => process.exit(0)));
