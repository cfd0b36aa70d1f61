/**
 * The `voicetwin` command line: `serve`, `demo`, `chat`, `say`, `status`, `jobs`, `broadcast`, `apikey`, `rotate-key`. Every command has `--help`.
 * Configuration comes from the environment and an optional `.env` (see `.env.example`).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { config as loadDotenv } from 'dotenv';
import { createInterface } from 'node:readline/promises';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, loadConfig, type Config } from './config.js';
import { isPersonaName, PERSONA_NAMES, type PersonaName } from './core/personas.js';
import { DependencyError, isUserInputError } from './core/errors.js';
import type { InboundMessage } from './core/types.js';
import { DataKeyLocationError, FileModeError } from './core/store/index.js';
import { KeyRotationError } from './core/store/key-rotation.js';
import type { BroadcastAudience, BroadcastVoiceMode } from './core/broadcast/index.js';
import type { ApiKeys } from './core/apikeys.js';

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
  .addOption(
    new Option('--role <role>', 'all: receive updates and run jobs; ingress: receive and queue only; worker: run jobs only (both need REDIS_URL)')
      .choices(['all', 'ingress', 'worker'])
      .default('all'),
  )
  .action(async (options: { role: 'all' | 'ingress' | 'worker' }) => {
    const { serve, NoBotConfiguredError, RoleError } = await import('./main.js');
    try {
      const running = await serve(config(), { role: options.role });
      if (running.signIn) process.stdout.write(`${(await import('./main.js')).signInMessage(running.signIn)}\n`);
      const shutdown = async (signal: string): Promise<void> => {
        running.app.logger.info({ signal }, 'shutting down');
        await running.stop();
        process.exit(0);
      };
      process.once('SIGINT', () => void shutdown('SIGINT'));
      process.once('SIGTERM', () => void shutdown('SIGTERM'));
    } catch (err) {
      if (err instanceof NoBotConfiguredError || err instanceof RoleError) {
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
    const app = await buildApp(config(), { queue: false });
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
    const app = await buildApp(config(), { queue: false });
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

program
  .command('status')
  .description('Queue depth, running and failed jobs and latency per kind, read from the store and queue this configuration points at (works beside a running serve).')
  .option('--json', 'print JSON instead of a table')
  .action(async (opts: { json?: boolean }) => {
    const cfg = config();
    const [{ createLogger }, { openQueue }] = await Promise.all([import('./core/log.js'), import('./app.js')]);
    const queue = await openQueue(cfg, createLogger({ level: 'warn' }));
    try {
      const stats = await queue.stats();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ engine: queue.engine, kinds: stats }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`Job queue: ${queue.engine === 'bullmq' ? 'BullMQ on Redis' : 'embedded (SQLite in the data directory)'}\n`);
      if (stats.length === 0) {
        process.stdout.write('No jobs yet.\n');
        return;
      }
      const rows = stats.map((s) => [s.kind, s.queued, s.running, s.done, s.failed, s.latencyMs ? `${s.latencyMs.p50} / ${s.latencyMs.p95} ms (${s.latencyMs.count})` : '-']);
      const header = ['kind', 'queued', 'running', 'done', 'failed', 'latency p50 / p95 (last hour)'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
      for (const row of [header, ...rows]) process.stdout.write(`${row.map((c, i) => String(c).padEnd(widths[i]!)).join('  ')}\n`);
    } finally {
      await queue.close(0);
    }
  });

program
  .command('jobs')
  .description('List jobs: --failed shows the jobs that used up their attempts, kept for inspection.')
  .option('--failed', 'jobs that failed for good (the default and, for now, the only listing)')
  .option('-n, --limit <count>', 'how many, newest first', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('expected a whole number from 1 to 1000');
    return n;
  }, 50)
  .action(async (opts: { failed?: boolean; limit: number }) => {
    const cfg = config();
    const [{ createLogger }, { openQueue }] = await Promise.all([import('./core/log.js'), import('./app.js')]);
    const queue = await openQueue(cfg, createLogger({ level: 'warn' }));
    try {
      const failed = await queue.failed(opts.limit);
      if (failed.length === 0) {
        process.stdout.write('No failed jobs.\n');
        return;
      }
      for (const f of failed) {
        process.stdout.write(`${new Date(f.failedAtMs).toISOString()}  ${f.kind}  ${f.id}  ${f.key}  after ${f.attempts} attempt${f.attempts === 1 ? '' : 's'}: ${f.error}\n`);
      }
    } finally {
      await queue.close(0);
    }
  });

const broadcast = program
  .command('broadcast')
  .description(
    'Send an announcement to every user as a voice note. It is stored as a job on the job queue and sent by the running `voicetwin serve`; ' +
      'follow it with `voicetwin broadcast status`. Quote a text that begins with the word "status" or "cancel".',
  )
  .argument('[text...]', 'the announcement (spoken, so at most REPLY_MAX_CHARS characters)')
  .addOption(new Option('-a, --audience <audience>', 'who receives it').choices(['all', 'telegram', 'discord', 'whatsapp', 'ready']).default('all'))
  .addOption(new Option('-v, --voice <voice>', "each listener's own twin voice, the operator's, or the neutral default voice").choices(['own', 'operator', 'default']).default('own'))
  .option('--operator <key>', 'operator whose twin voice (--voice operator) and synthesis budget are used, e.g. telegram:123 (default: the first of OPERATORS)')
  .option('--each-channel', 'reach people on every chat they linked (default: once, on the chat they used last)')
  .option('--dry-run', 'print the counts, estimated duration and cost; queue nothing')
  .action(async (words: string[], opts: { audience: string; voice: string; operator?: string; dryRun?: boolean; eachChannel?: boolean }) => {
    const [{ buildApp }, broadcasts] = await Promise.all([import('./app.js'), import('./core/broadcast/index.js')]);
    const cfg = config();
    const request = {
      text: words.join(' ').trim(),
      audience: opts.audience as BroadcastAudience,
      voice: opts.voice as BroadcastVoiceMode,
      dryRun: opts.dryRun === true,
      ...(opts.eachChannel ? { eachChannel: true } : {}),
    };
    if (!request.text) throw new InvalidArgumentError('Give the announcement to send, e.g. voicetwin broadcast "The twin is back after maintenance."');
    const operatorKey = opts.operator ?? cfg.operators[0];
    // The broadcast is a job on the queue the running `voicetwin serve` takes its jobs from.
    const app = await buildApp(cfg, { queue: !request.dryRun });
    try {
      if (request.dryRun) {
        const estimate = await app.broadcasts.estimate(request, operatorKey);
        process.stdout.write(`${broadcasts.estimateText(request, estimate, { senders: false })}\n`);
        return;
      }
      const { job, estimate } = await app.broadcasts.create(request, { requestedBy: 'cli', ...(operatorKey ? { operatorKey } : {}) });
      process.stdout.write(
        `Broadcast ${job.id} queued: ${broadcasts.formatCount(estimate.recipients)} recipients (${broadcasts.formatCount(estimate.skipped)} skipped), about ${broadcasts.formatDuration(estimate.durationSec)} once sending starts.\n` +
          'The running `voicetwin serve` sends it (within a few seconds). Follow it with `voicetwin broadcast status`, stop it with `voicetwin broadcast cancel`.\n',
      );
    } finally {
      await app.close();
    }
  });

broadcast
  .command('status')
  .description('Progress of the running broadcast, or the summary of the last one.')
  .argument('[id]', 'broadcast id (default: the running or the last one)')
  .action(async (id: string | undefined) => {
    const [{ buildApp }, { statusText }] = await Promise.all([import('./app.js'), import('./core/broadcast/index.js')]);
    const app = await buildApp(config(), { queue: false });
    try {
      const status = await app.broadcasts.status(id);
      process.stdout.write(`${status ? statusText(status) : id ? `There is no broadcast with id "${id}".` : 'No broadcast has been sent yet.'}\n`);
      if (!status) process.exitCode = 1;
    } finally {
      await app.close();
    }
  });

broadcast
  .command('cancel')
  .description('Stop the running broadcast: nothing more is sent, messages already sent stay sent.')
  .argument('[id]', 'broadcast id (default: the running one)')
  .action(async (id: string | undefined) => {
    const { buildApp } = await import('./app.js');
    const app = await buildApp(config(), { queue: false });
    try {
      const status = await app.broadcasts.cancel(id);
      if (!status) {
        process.stdout.write(`${id ? `There is no broadcast with id "${id}".` : 'No broadcast is running.'}\n`);
        process.exitCode = 1;
      } else if (status.state === 'queued' || status.state === 'running') {
        process.stdout.write(`Cancel requested for broadcast ${status.id}; the running server stops it within a second.\n`);
      } else {
        process.stdout.write(`Broadcast ${status.id} already ended (${status.state}).\n`);
      }
    } finally {
      await app.close();
    }
  });

// --- apikey: API keys of the HTTP API (see docs/http.md) -----------------------------------------
const apikey = program
  .command('apikey')
  .description('Create, list and revoke API keys of the HTTP API (people write /apikey in a chat; this is for operators and the local owner).');
apikey
  .command('create')
  .description('Create a key for a person, e.g. web:owner (the local owner) or telegram:123; the key is printed once.')
  .argument('[person]', 'person key <channel>:<user id>', 'web:owner')
  .option('-l, --label <label>', 'a label to recognise the key by', '')
  .option('--sign-in-code', 'print a one-time sign-in code (15 minutes) instead of a key')
  .action(async (person: string, opts: { label: string; signInCode?: boolean }) => {
    await withApiKeys(async (keys) => {
      if (opts.signInCode) {
        const code = await keys.createSignInCode(person);
        const { webAppUrlOf } = await import('./app.js');
        const { signInLink } = await import('./core/apikeys.js');
        const { webAppUrl } = webAppUrlOf(config());
        process.stdout.write(`One-time sign-in code for ${person} (valid 15 minutes): ${code}\n${webAppUrl ? `Web app sign-in link: ${signInLink(webAppUrl, code)}\n` : ''}`);
        return;
      }
      const { key, record } = await keys.create(person, opts.label);
      process.stdout.write(`API key ${record.id} for ${person} (shown only now; use it as "Authorization: Bearer <key>"):\n${key}\n`);
    });
  });
apikey
  .command('list')
  .description("List a person's keys (ids and labels; the keys themselves are not stored).")
  .argument('[person]', 'person key <channel>:<user id>', 'web:owner')
  .action(async (person: string) => {
    await withApiKeys(async (keys) => {
      const list = await keys.list(person);
      if (list.length === 0) process.stdout.write(`${person} has no API keys.\n`);
      for (const k of list) process.stdout.write(`${k.id}\t${new Date(k.createdAtMs).toISOString()}\t${k.label}\n`);
    });
  });
apikey
  .command('revoke')
  .description('Revoke one key of a person by id.')
  .argument('<person>', 'person key <channel>:<user id>')
  .argument('<id>', 'key id (see list)')
  .action(async (person: string, id: string) => {
    await withApiKeys(async (keys) => {
      if (await keys.revoke(person, id)) process.stdout.write(`API key ${id} of ${person} revoked.\n`);
      else {
        process.stdout.write(`${person} has no API key with id "${id}".\n`);
        process.exitCode = 1;
      }
    });
  });

/** Runs `fn` with the API keys of the configured store (no queue, no bots). */
async function withApiKeys(fn: (keys: ApiKeys) => Promise<void>): Promise<void> {
  const { buildApp } = await import('./app.js');
  const app = await buildApp(config(), { queue: false });
  try {
    await fn(app.engine.apiKeys);
  } finally {
    await app.close();
  }
}

// --- rotate-key: re-encrypt everything under a new data key (see docs/privacy.md) --------------
program
  .command('rotate-key')
  .description(
    'Re-encrypt every stored record, blob and queued job under a new data key. Stop every `voicetwin serve` first (a running one is refused). ' +
      'Resumable: if it is interrupted, run the same command again with the same new key; the store refuses to open until it has finished.',
  )
  .option(
    '--new-key-file <path>',
    'file with the new key (64 hex characters or base64), outside the data directory; generated there (mode 0600) when the file does not exist. ' +
      'Required when the current key comes from VOICETWIN_DATA_KEY or VOICETWIN_DATA_KEY_FILE; without it the local default key ' +
      '(<data dir>/data.key) is replaced by a generated one.',
  )
  .addHelpText(
    'after',
    '\nThe current key is read from the configuration as at start-up (VOICETWIN_DATA_KEY, VOICETWIN_DATA_KEY_FILE or <data dir>/data.key).\n' +
      'Afterwards, configure the new key (e.g. VOICETWIN_DATA_KEY_FILE=<new key file>) before starting again; the old key no longer opens the data.',
  )
  .action(async (opts: { newKeyFile?: string }) => {
    const cfg = config();
    const [{ createLogger }, { rotateDataKey }] = await Promise.all([import('./core/log.js'), import('./rotate-key.js')]);
    const logger = createLogger({ level: 'warn' });
    const labels = { records: 'records', blobs: 'audio blobs', jobs: 'queued jobs' } as const;
    const result = await rotateDataKey(cfg, {
      ...(opts.newKeyFile ? { newKeyFile: opts.newKeyFile } : {}),
      logger,
      onProgress: (phase, handled) => process.stdout.write(`  ${labels[phase]}: ${handled}\n`),
    });
    const line = (what: string, c: { rekeyed: number; current: number }): string =>
      `${what}: ${c.rekeyed} re-encrypted${c.current > 0 ? `, ${c.current} already under the new key` : ''}`;
    process.stdout.write(
      `Data key rotated from key id ${result.fromKeyId} to ${result.toKeyId}${result.resumed ? ' (an interrupted rotation was finished)' : ''}.\n` +
        `${line('Records', result.records)}\n${line('Audio blobs', result.blobs)}\n${line('Queued jobs', result.jobs)}\n` +
        (result.blobs.unknownFolders > 0 ? `${result.blobs.unknownFolders} blob folder(s) belong to no known person and stay under the old key: delete them.\n` : '') +
        (result.newKey.replacesDataDirKey
          ? `The new key replaced ${path.join(cfg.dataDir, 'data.key')}; back it up.\n`
          : `The new key is in ${result.newKey.path}${result.newKey.generated ? ' (generated now; back it up)' : ''}. ` +
            `Set VOICETWIN_DATA_KEY_FILE=${result.newKey.path} (or VOICETWIN_DATA_KEY to its content) before the next start.\n`),
    );
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) process.stderr.write(`Configuration error: ${err.message}\n`);
  else if (err instanceof DependencyError) process.stderr.write(`Missing dependency: ${err.message}\n`);
  else if (isUserInputError(err)) process.stderr.write(`${err.userMessage}\n`);
  else if (err instanceof FileModeError || err instanceof DataKeyLocationError || err instanceof KeyRotationError) process.stderr.write(`voicetwin: ${err.message}\n`);
  else process.stderr.write(`voicetwin: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
