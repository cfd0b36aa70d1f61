import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AudioToolError, runTool } from '../../../src/core/audio/process.js';
import { DependencyError } from '../../../src/core/errors.js';

const dir = mkdtempSync(path.join(tmpdir(), 'voicetwin-process-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitForPid(file: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    try {
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (pid > 0) return pid;
    } catch {
      // not written yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('child never wrote its pid');
}

describe('runTool', () => {
  it('feeds stdin, collects stdout, keeps stderr and reports a non-zero exit without throwing', async () => {
    const result = await runTool('sh', ['-c', 'cat; echo oops >&2; exit 3'], { input: Buffer.from('hello'), timeoutMs: 5000 });
    expect(result.stdout.toString()).toBe('hello');
    expect(result.stderr).toContain('oops');
    expect(result.exitCode).toBe(3);
  });

  it('tolerates a child that exits before reading all its input (EPIPE)', async () => {
    const result = await runTool('sh', ['-c', 'head -c 10'], { input: Buffer.alloc(8 * 1024 * 1024, 1), timeoutMs: 5000 });
    expect(result.stdout.length).toBe(10);
    expect(result.exitCode).toBe(0);
  });

  it('kills the child on timeout and rejects with AudioToolError', async () => {
    const pidFile = path.join(dir, 'timeout.pid');
    const started = Date.now();
    const run = runTool('sh', ['-c', `echo $$ > ${pidFile}; echo working >&2; exec sleep 30`], { timeoutMs: 300, label: 'sleeper' });
    await expect(run).rejects.toThrow(AudioToolError);
    await expect(run).rejects.toThrow(/sleeper timed out after 300 ms: working/);
    expect(Date.now() - started).toBeLessThan(5000);
    const pid = await waitForPid(pidFile);
    await new Promise((r) => setTimeout(r, 100));
    expect(isAlive(pid)).toBe(false);
  });

  it('kills the child when the signal aborts and rejects with the abort reason', async () => {
    const pidFile = path.join(dir, 'abort.pid');
    const controller = new AbortController();
    const run = runTool('sh', ['-c', `echo $$ > ${pidFile}; exec sleep 30`], { timeoutMs: 10_000, signal: controller.signal });
    const pid = await waitForPid(pidFile);
    controller.abort(new Error('user went away'));
    await expect(run).rejects.toThrow('user went away');
    await new Promise((r) => setTimeout(r, 100));
    expect(isAlive(pid)).toBe(false);
    const aborted = AbortSignal.abort();
    await expect(runTool('true', [], { timeoutMs: 1000, signal: aborted })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('turns a missing binary into a DependencyError with an install hint', async () => {
    const run = runTool('/nonexistent/ffmpeg', ['-version'], { timeoutMs: 1000, label: 'ffmpeg' });
    await expect(run).rejects.toThrow(DependencyError);
    await expect(run).rejects.toThrow(/apt-get install ffmpeg/);
  });

  it('stops a child whose output exceeds the cap', async () => {
    const run = runTool('sh', ['-c', 'exec cat /dev/zero'], { timeoutMs: 5000, maxStdoutBytes: 1024 * 1024 });
    await expect(run).rejects.toThrow(/more than 1048576 bytes/);
  });
});
