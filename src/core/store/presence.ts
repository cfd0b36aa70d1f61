/**
 * Presence of running servers: every `voicetwin serve` keeps a record `kv:presence:serve:<host>:<pid>`
 * with a 30-second expiry, renewed every 10 seconds and deleted when it stops. Maintenance that must
 * not run beside a server (`voicetwin rotate-key`) looks for live records.
 */
import os from 'node:os';
import type { KeyValueRepository } from './types.js';

/** Key prefix of the presence records in the key-value repository. */
export const SERVE_PRESENCE_PREFIX = 'presence:serve:';
/** Lifetime of a presence record, ms. */
export const PRESENCE_TTL_MS = 30_000;
const RENEW_EVERY_MS = 10_000;

/** What a presence record holds. */
export interface ServePresence {
  host: string;
  pid: number;
  startedAtMs: number;
}

/**
 * Writes this process's presence record now and every 10 s.
 * @returns a function that stops renewing and deletes the record
 */
export async function startServePresence(kv: KeyValueRepository): Promise<() => Promise<void>> {
  const key = `${SERVE_PRESENCE_PREFIX}${os.hostname()}:${process.pid}`;
  const value: ServePresence = { host: os.hostname(), pid: process.pid, startedAtMs: Date.now() };
  await kv.set(key, value, PRESENCE_TTL_MS);
  const timer = setInterval(() => void kv.set(key, value, PRESENCE_TTL_MS).catch(() => undefined), RENEW_EVERY_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await kv.delete(key).catch(() => undefined);
  };
}

/**
 * Whether a presence record names a live process: its expiry is in the future and, when it is on
 * this host, its process still exists (`kill(pid, 0)`; a crashed server's record is ignored).
 * @param rest the record key after {@link SERVE_PRESENCE_PREFIX}: `<host>:<pid>`
 * @param expiresMs the record's expiry (epoch ms), undefined when it has none
 */
export function presenceIsLive(rest: string, expiresMs: number | undefined, nowMs = Date.now()): boolean {
  if (expiresMs !== undefined && expiresMs <= nowMs) return false;
  const sep = rest.lastIndexOf(':');
  const host = rest.slice(0, sep);
  const pid = Number(rest.slice(sep + 1));
  if (host !== os.hostname() || !Number.isInteger(pid) || pid <= 0) return true;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
