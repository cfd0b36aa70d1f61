/**
 * The `voicetwin` command line: `serve`, `demo`, `chat`, `say`. Every command has `--help`.
 * Configuration comes from the environment and an optional `.env` (see `.env.example`).
 */
import { Command, InvalidArgumentError } from 'commander';
import { config as loadDotenv } from 'dotenv';
import { createInterface } from 'node:readline/promises';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, loadConfig, type Config } from './config.js';
import { isPersonaName, PERSONA_NAMES, type PersonaName } from './core/personas.js';
import { DependencyError, isUserInputError } from './core/errors.js';
import type { InboundMessage } from './core/types.js';

loadDotenv({ quiet: true });

function config(): Config {
  return loadConfig(process.env);
}

function persona(value: string): PersonaName {
  const v = value.toLowerCase();
  if (!isPersonaName(v)) throw new InvalidArgumentError(`expected one of ${PERSONA_NAMES.join(', ')}`);
  return v;
}

const program = new Command()
  .name('voicetwin')
  .description('Clone your own voice and talk to an AI twin that answers in it.')
  .showHelpAfterError('(run with --help for usage)')
  .addHelpText('after', '\nConfiguration: environment variables or a .env file; see .env.example.');

program
  .command('serve')
  .description('Start the configured bots (Telegram, Discord, WhatsApp) and serve until stopped.')
  .action(async () => {
    const { serve, NoBotConfiguredError } = await import('./main.js');
    try {
      const running = await serve(config());
      const shutdown = async (signal: string): Promise<void> => {
        running.app.logger.info({ signal }, 'shutting down');
        await running.stop();
        process.exit(0);
      };
      process.once('SIGINT', () => void shutdown('SIGINT'));
      process.once('SIGTERM', () => void shutdown('SIGTERM'));
    } catch (err) {
      if (err instanceof NoBotConfiguredError) {
        process.stderr.write(`${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
  });

program
  .command('demo')
  .description('Offline walkthrough: enroll a voice from speech clips, then a voice turn and a text turn; reply voice notes go to --out.')
  .argument('[samples...]', 'speech clips to enroll from (WAV, MP3, Ogg, FLAC, M4A, WebM); generated with espeak-ng when none are given')
  .option('-o, --out <dir>', 'folder for the reply voice notes', 'out/demo')
  .option('-t, --turn <file>', 'voice note for the voice turn (default: a generated question)')
  .option('-p, --persona <name>', `persona: ${PERSONA_NAMES.join(', ')}`, persona, 'supportive' as PersonaName)
  .option('--data-dir <dir>', 'keep the demo data in this folder (default: a temporary folder, removed afterwards)')
  .action(async (samples: string[], opts: { out: string; turn?: string; persona: PersonaName; dataDir?: string }) => {
    const { runDemo } = await import('./demo.js');
    const { checkAudioTools } = await import('./core/audio/index.js');
    const { checkLocalTools } = await import('./providers/local/index.js');
    await checkAudioTools();
    await checkLocalTools();
    const result = await runDemo(config(), {
      samplePaths: samples.map((s) => path.resolve(s)),
      ...(opts.turn ? { turnPath: path.resolve(opts.turn) } : {}),
      outDir: path.resolve(opts.out),
      persona: opts.persona,
      ...(opts.dataDir ? { dataDir: path.resolve(opts.dataDir) } : {}),
    });
    if (result.profileState !== 'ready') {
      process.stderr.write(`The voice profile ended in state "${result.profileState}"; see the messages above.\n`);
      process.exitCode = 1;
    }
  });

program
  .command('chat')
  .description('Talk to your twin in the terminal: type text, /voice <path> to send a voice note, /quit to leave. Commands such as /enroll and /style work as in the bots.')
  .option('-o, --out <dir>', 'folder for reply voice notes', 'out/chat')
  .option('-u, --user <id>', 'console user id (keeps separate profiles)', 'local')
  .action(async (opts: { out: string; user: string }) => {
    const [{ buildApp }, { ConsoleChannel }, { checkAudioTools }] = await Promise.all([import('./app.js'), import('./bots/console.js'), import('./core/audio/index.js')]);
    await checkAudioTools();
    const app = await buildApp(config());
    const channel = new ConsoleChannel({ outDir: path.resolve(opts.out), prefix: 'chat', showActivity: true });
    app.engine.registerSender(channel);
    await app.engine.start();
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
    process.stdout.write(`VoiceTwin chat (${app.offline ? 'offline stack' : 'configured providers'}). Type /help for commands, /voice <path> for a voice note, /quit to leave.\n`);
    let n = 0;
    for await (const line of rl) {
      const text = line.trim();
      if (text === '/quit' || text === '/exit') break;
      const base: InboundMessage = { id: `console:${opts.user}:${Date.now()}:${++n}`, channel: 'console', chatId: opts.user, userId: opts.user, receivedAtMs: Date.now() };
      let message: InboundMessage;
      if (text.startsWith('/voice')) {
        const file = text.slice('/voice'.length).trim();
        if (!file) {
          process.stdout.write('Usage: /voice <path to an audio file>\n');
          continue;
        }
        let bytes: Buffer;
        try {
          bytes = await readFile(path.resolve(file));
        } catch {
          process.stdout.write(`Cannot read ${file}.\n`);
          continue;
        }
        message = { ...base, audio: { bytes, isVoiceNote: true, declaredSizeBytes: bytes.length } };
      } else if (text.startsWith('/')) {
        const [name = '', ...rest] = text.slice(1).split(/\s+/);
        message = { ...base, command: { name, args: rest.join(' ') } };
      } else {
        message = { ...base, text };
      }
      await app.engine.handle(message, channel);
    }
    rl.close();
    await app.close();
  });

program
  .command('say')
  .description('Speak a text in your twin voice (or the default voice) and write the voice note to a file.')
  .argument('<text...>', 'what to say')
  .option('-o, --out <file>', 'where to write the Ogg/Opus voice note', 'out/say.ogg')
  .option('-u, --user <id>', 'console user whose voice to use', 'local')
  .action(async (words: string[], opts: { out: string; user: string }) => {
    const [{ buildApp }, { checkAudioTools }] = await Promise.all([import('./app.js'), import('./core/audio/index.js')]);
    await checkAudioTools();
    const app = await buildApp(config());
    try {
      const text = words.join(' ').trim();
      if (!text) throw new Error('Nothing to say: give the text to speak, e.g. voicetwin say "good morning"');
      const profile = await app.store.profiles.get(`console:${opts.user}`);
      const voice = profile?.state === 'ready' ? profile.voice : undefined;
      const rendered = await app.engine.voice.render(`console:${opts.user}`, text, voice, 'console');
      const file = path.resolve(opts.out);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, rendered.voice.oggOpus);
      process.stdout.write(`${file} (${rendered.voice.durationSec.toFixed(2)} s, ${voice ? voice.label : 'default voice: enroll with `voicetwin chat` then /enroll'})\n`);
    } finally {
      await app.close();
    }
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) process.stderr.write(`Configuration error: ${err.message}\n`);
  else if (err instanceof DependencyError) process.stderr.write(`Missing dependency: ${err.message}\n`);
  else if (isUserInputError(err)) process.stderr.write(`${err.userMessage}\n`);
  else process.stderr.write(`voicetwin: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
