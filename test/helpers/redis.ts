/**
 * The Redis the tests use: `VOICETWIN_TEST_REDIS_URL`, else 127.0.0.1:6379 (started by `.ci/run`).
 * Suites that need it skip with a message when it does not answer.
 */
import net from 'node:net';

export const REDIS_URL = process.env.VOICETWIN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

let answer: Promise<boolean> | undefined;

/** True when Redis answers PING within a second; otherwise prints why the Redis tests skip. */
export function redisAvailable(): Promise<boolean> {
  answer ??= new Promise<boolean>((resolve) => {
    const url = new URL(REDIS_URL);
    const socket = net.connect({ host: url.hostname, port: Number(url.port || 6379) });
    const done = (ok: boolean) => {
      socket.destroy();
      if (!ok) console.warn(`Redis tests skipped: no Redis answers at ${REDIS_URL} (run .ci/run, or set VOICETWIN_TEST_REDIS_URL)`);
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => done(d.toString().startsWith('+PONG')));
  });
  return answer;
}
