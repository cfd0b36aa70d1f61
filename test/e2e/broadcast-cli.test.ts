/**
 * `voicetwin broadcast` end to end: the real command line (a child process over a SQLite data dir)
 * answers a dry run, queues a broadcast (a job on the embedded job queue), shows its status and
 * refuses bad options; a running server on the same store and queue takes the job and sends it; status and cancel from the
 * command line then report on it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BroadcastService } from '../../src/core/broadcast/index.js';
import { silentLogger } from '../../src/core/log.js';
import { createTestApp } from '../helpers/app.js';
import { RecordingSender, speakingProviders, waitFor } from '../core/broadcast/support.js';
import { seedUsersBulk, userRecord } from '../core/broadcast/e2e-support.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const DATA_KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
let dataDir: string;

/** Runs `voicetwin <args>` and resolves with its exit code and output. */
function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli.ts'), ...args], {
      cwd: REPO,
      env: { ...process.env, VOICETWIN_DATA_DIR: dataDir, VOICETWIN_DATA_KEY: DATA_KEY, LOG_LEVEL: 'silent', OPERATORS: 'telegram:1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-cli-broadcast-'));
  await seedUsersBulk(dataDir, [
    ...Array.from({ length: 6 }, (_, i) => userRecord('telegram', String(700 + i))),
    userRecord('telegram', '799', { optedOut: true }),
    userRecord('discord', '123456789012345678'),
  ]);
});

afterAll(async () => {
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('voicetwin broadcast', () => {
  it('dry-runs, queues, hands over to the running server, and reports', { timeout: 120_000 }, async () => {
    const dry = await cli('broadcast', '--dry-run', '--audience', 'telegram', 'Good', 'morning!');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('Dry run, nothing sent. Audience: telegram, voice: own.');
    expect(dry.stdout).toContain('Recipients: 6 (telegram 6); skipped: 1 (opted out 1).');
    expect(dry.stdout).not.toContain('no bot running');

    const bad = await cli('broadcast', '--audience', 'everyone', 'Hi');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("argument 'everyone' is invalid. Allowed choices are all, telegram, discord, whatsapp, ready.");

    const queued = await cli('broadcast', '--audience', 'telegram', '--voice', 'default', 'The twin is back after maintenance.');
    expect(queued.code).toBe(0);
    const id = /Broadcast (bc-[0-9a-f]{6}) queued: 6 recipients \(1 skipped\)/.exec(queued.stdout)?.[1];
    expect(id, queued.stdout + queued.stderr).toBeDefined();
    expect((await cli('broadcast', 'status')).stdout).toContain(`Broadcast ${id} is queued.`);
    const again = await cli('broadcast', 'Another one');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`Broadcast ${id} is not finished yet.`);

    // The server: the app over the same data dir and job queue with a Telegram sender; the queue
    // hands it the broadcast job the command line stored.
    const app = await createTestApp({ dataDir, env: { OPERATORS: 'telegram:1' }, providers: speakingProviders(), start: false });
    const telegram = new RecordingSender('telegram');
    app.engine.registerSender(telegram);
    const service = new BroadcastService({ engine: app.engine, logger: silentLogger });
    try {
      await app.engine.start();
      await service.start();
      await waitFor(async () => (await service.status(id))?.state === 'done', 'the queued broadcast', 60_000);
      expect(telegram.delivered().map((s) => s.chatId).sort()).toEqual(['700', '701', '702', '703', '704', '705']);
      expect(telegram.delivered()[0]!.reply).toMatchObject({ text: 'The twin is back after maintenance.', voice: expect.any(Object) });
    } finally {
      await service.stop();
      await app.close();
    }

    const status = await cli('broadcast', 'status', id!);
    expect(status.stdout).toContain(`Broadcast ${id} finished`);
    expect(status.stdout).toContain('Sent: 6 of 7 (default voice 6).');
    const cancel = await cli('broadcast', 'cancel');
    expect(cancel.code).toBe(1);
    expect(cancel.stdout).toContain('No broadcast is running.');
    const unknown = await cli('broadcast', 'status', 'bc-000000');
    expect(unknown.stdout).toContain('There is no broadcast with id "bc-000000".');
  });
});
