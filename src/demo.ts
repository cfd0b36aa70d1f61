/**
 * The offline walkthrough behind `voicetwin demo`: enroll a voice from speech clips (given paths, or
 * clips generated with espeak-ng), then a voice turn and a text turn; every reply voice note is
 * written to the output folder, with transcripts, persona and timings printed.
 */
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { Config } from './config.js';
import type { OfflineTtsEngine } from './providers/local/synthesizer.js';
import { buildApp } from './app.js';
import type { EngineEvent, TurnTimings } from './core/engine.js';
import type { InboundMessage } from './core/types.js';
import type { PersonaName } from './core/personas.js';
import { createLogger } from './core/log.js';
import { ConsoleChannel } from './bots/console.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Speech clips to enroll from (any container ffmpeg reads); generated with espeak-ng when empty. */
  samplePaths: string[];
  /** Voice note for the voice turn; default: a generated question. */
  turnPath?: string;
  /** Output folder for reply voice notes. */
  outDir: string;
  persona: PersonaName;
  /** Keep the demo's data dir (default: a temporary one, removed afterwards). */
  dataDir?: string;
  /** Where to print. */
  write?: (line: string) => void;
}

/** What the demo produced, for tests and scripts. */
export interface DemoResult {
  voiceNotes: string[];
  transcripts: string[];
  turns: Array<{ input: 'voice' | 'text'; transcript: string; replyText: string; persona: PersonaName; timings: TurnTimings }>;
  profileState: string;
  voiceLabel?: string;
}

const GENERATED_SAMPLES = [
  'Hello, this is me recording a few sentences so that my twin can learn how I sound. I usually speak at an easy pace.',
  'Yesterday I walked along the river after work. The weather was mild and the light over the water was beautiful.',
  'I am working on a small project at home, a garden with tomatoes, basil and a few flowers for the bees.',
  'On weekends I like to cook for my friends. We talk for hours about books, music and where we want to travel next.',
];

/**
 * The demo's first line on the offline stack, naming the engines in plain words: PocketSphinx
 * listens (English), a template chat model answers, and the offline voice of `engine` (Flite, or
 * eSpeak NG when `OFFLINE_TTS=espeak-ng`) speaks, with eSpeak NG for Hindi and other languages.
 */
export function offlineBanner(engine: OfflineTtsEngine): string {
  const english = engine === 'flite' ? 'the Flite computer voice' : 'the eSpeak NG computer voice';
  return (
    'VoiceTwin offline demo, no accounts or API keys: PocketSphinx turns your English voice notes into text, ' +
    `a built-in template chat model writes the replies, and ${english} speaks them, tuned to your pitch and pace ` +
    '(eSpeak NG speaks Hindi and other languages). It is a preview of your twin, not a copy of your own voice.'
  );
}

/**
 * Runs the demo end to end on the offline stack.
 * @throws DependencyError when ffmpeg, espeak-ng or pocketsphinx is missing
 */
export async function runDemo(config: Config, options: DemoOptions): Promise<DemoResult> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'voicetwin-demo-')));
  const workDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-demo-clips-'));
  const turns: DemoResult['turns'] = [];
  const observer = (e: EngineEvent): void => {
    if (e.type === 'turn') turns.push({ input: e.input, transcript: e.transcript, replyText: e.replyText, persona: e.persona, timings: e.timings });
  };
  const app = await buildApp(
    { ...config, dataDir, redisUrl: undefined, log: { ...config.log, level: config.log.level === 'info' ? 'warn' : config.log.level } } as Config,
    { observer, queue: false, logger: createLogger({ level: config.log.level === 'info' ? 'warn' : config.log.level, pretty: true }) },
  );
  await mkdir(options.outDir, { recursive: true });
  const channel = new ConsoleChannel({ outDir: options.outDir, prefix: 'reply', write, showActivity: false });
  app.engine.registerSender(channel);
  await app.engine.start();
  let n = 0;
  const send = async (partial: Partial<InboundMessage>, label: string): Promise<void> => {
    write(`\nyou: ${label}`);
    await app.engine.handle(
      { id: `console:demo:${++n}`, channel: 'console', chatId: 'demo', userId: 'demo', displayName: 'Demo', receivedAtMs: Date.now(), ...partial },
      channel,
    );
  };
  const voice = (bytes: Buffer): InboundMessage['audio'] => ({ bytes, isVoiceNote: true, declaredSizeBytes: bytes.length });
  try {
    write(
      app.offline
        ? offlineBanner(config.providers.offlineTts)
        : 'VoiceTwin demo with the configured providers.',
    );
    write(`Data dir: ${dataDir}\nReply voice notes: ${options.outDir}`);
    await send({ command: { name: 'start', args: '' } }, '/start');
    await send({ command: { name: 'style', args: options.persona } }, `/style ${options.persona}`);
    await send({ command: { name: 'enroll', args: '' } }, '/enroll');
    const profile0 = await app.store.profiles.get('console:demo');
    const phrase = profile0?.consent.phrase ?? '';
    const clips: Buffer[] = [];
    if (options.samplePaths.length > 0) {
      for (const p of options.samplePaths) clips.push(await readFile(p));
    } else {
      write('\n(no clips given: generating speech with espeak-ng as the "user")');
      for (const [i, text] of GENERATED_SAMPLES.entries()) clips.push(await espeakWav(text, path.join(workDir, `sample-${i}.wav`)));
    }
    const consentClip = options.samplePaths.length > 0 ? clips[0]! : await espeakWav(phrase, path.join(workDir, 'consent.wav'));
    await send({ audio: voice(consentClip) }, `[voice note: reading the consent phrase "${phrase}"]`);
    await send({ text: 'I AGREE' }, 'I AGREE');
    for (let i = 0; i < clips.length * 4; i++) {
      const state = (await app.store.profiles.get('console:demo'))?.state;
      if (state !== 'collecting') break;
      const clip = clips[i % clips.length]!;
      await send({ audio: voice(clip) }, `[voice note: enrollment sample ${i + 1}${options.samplePaths.length ? ` ${path.basename(options.samplePaths[i % clips.length]!)}` : ''}]`);
    }
    await app.engine.whenIdle();
    const profile = await app.store.profiles.get('console:demo');
    const turnClip = options.turnPath
      ? await readFile(options.turnPath)
      : await espeakWav('I feel a bit tired today, but I want to finish my garden project this week.', path.join(workDir, 'turn.wav'));
    await send({ audio: voice(turnClip) }, `[voice note${options.turnPath ? ` ${path.basename(options.turnPath)}` : ': "I feel a bit tired today, but I want to finish my garden project this week."'}]`);
    await send({ text: 'What should I focus on tomorrow morning?' }, 'What should I focus on tomorrow morning?');
    await app.engine.whenIdle();
    write('\nSummary');
    for (const t of turns) {
      const ms = Object.entries(t.timings)
        .map(([k, v]) => `${k.replace('Ms', '')} ${Math.round(v)} ms`)
        .join(', ');
      write(`- ${t.input} turn (${t.persona}): heard "${t.transcript}"\n  timings: ${ms}`);
    }
    const voiceNotes = channel.records.flatMap((r) => (r.voicePath ? [r.voicePath] : []));
    write(`- profile: ${profile?.state ?? 'none'}${profile?.voice ? ` (${profile.voice.label})` : ''}`);
    write(`- ${voiceNotes.length} voice notes written to ${options.outDir}`);
    await writeFile(path.join(options.outDir, 'transcript.json'), JSON.stringify({ turns, voiceNotes }, null, 2));
    return {
      voiceNotes,
      transcripts: turns.map((t) => t.transcript),
      turns,
      profileState: profile?.state ?? 'none',
      ...(profile?.voice ? { voiceLabel: profile.voice.label } : {}),
    };
  } finally {
    await app.close();
    await rm(workDir, { recursive: true, force: true });
    if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
  }
}

/** Speaks `text` with espeak-ng into a WAV file and returns its bytes. */
async function espeakWav(text: string, file: string): Promise<Buffer> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('espeak-ng', ['-v', 'en-us', '-s', '160', '-w', file, '--', text], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`espeak-ng exited ${code}: ${err}`))));
  });
  return readFile(file);
}
