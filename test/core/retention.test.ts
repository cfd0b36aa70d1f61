import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createStore } from '../../src/core/store/keyv-store.js';
import type { Store } from '../../src/core/store/types.js';
import { SHARED_TTS_OWNER, sweepRetention } from '../../src/core/retention.js';
import { loadConfig } from '../../src/config.js';
import { REDIS_URL, redisAvailable } from '../helpers/redis.js';
import { deleteRedisNamespace } from '../helpers/raw-scan.js';

const hasRedis = await redisAvailable();

const DAY = 86_400_000;
let store: Store | undefined;
let dataDir: string | undefined;
let namespace: string | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  if (namespace) await deleteRedisNamespace(REDIS_URL, namespace);
  namespace = undefined;
});

const dataKey = randomBytes(32);

/** A store on `backend` (Redis: a namespace of its own); `reopen` keeps the same data dir and namespace. */
async function open(backend: 'sqlite' | 'redis', reopen = false): Promise<Store> {
  if (!reopen) {
    dataDir = await mkdtemp(path.join(tmpdir(), 'vt-retention-'));
    namespace = backend === 'redis' ? `vt-retention-${randomBytes(4).toString('hex')}` : undefined;
  }
  store = await createStore({ backend, dataDir: dataDir!, dataKey, ...(namespace ? { redisUrl: REDIS_URL, namespace } : {}) });
  return store;
}

const user = (key: string) => ({
  key, channel: 'telegram' as const, address: { channel: 'telegram' as const, chatId: key.split(':')[1]! }, persona: 'supportive' as const,
  sendTextWithVoice: false, optedOut: false, blocked: false, messageCount: 0, createdAtMs: 1, updatedAtMs: 1,
});

describe.each([
  { backend: 'sqlite' as const, skip: false },
  { backend: 'redis' as const, skip: !hasRedis },
])('retention sweep on $backend', ({ backend, skip }) => {
  it.skipIf(skip)('deletes old turns and old synthesis/turn audio, keeps samples and the consent recording', async () => {
    let s = await open(backend);
    const now = Date.now();
    await s.users.put(user('telegram:1'));
    await s.history.append('telegram:1', { role: 'user', text: 'old', atMs: now - 40 * DAY }, { role: 'twin', text: 'old reply', atMs: now - 31 * DAY }, { role: 'user', text: 'recent', atMs: now - DAY });
    const sample = await s.blobs.put('telegram:1', Buffer.from('sample'), 'sample');
    const consent = await s.blobs.put('telegram:1', Buffer.from('consent'), 'consent');
    const tts = await s.blobs.put('telegram:1', Buffer.from('tts'), 'tts');
    const inbox = await s.blobs.put('telegram:1', Buffer.from('inbox'), 'inbox');
    const shared = await s.blobs.put(SHARED_TTS_OWNER, Buffer.from('shared'), 'tts');

    // Nothing is old enough yet for audio; history older than 30 days goes.
    let result = await sweepRetention(s, { historyDays: 30, audioDays: 7 }, now);
    expect(result).toEqual({ turns: 2, audioBlobs: 0, people: 1 });
    expect((await s.history.recent('telegram:1', 10)).map((t) => t.text)).toEqual(['recent']);

    // Eight days later the synthesis cache and turn audio (also of the shared voice) are past 7 days.
    result = await sweepRetention(s, { historyDays: 30, audioDays: 7 }, now + 8 * DAY);
    expect(result.audioBlobs).toBe(3);
    expect(await s.blobs.list('telegram:1')).toEqual([sample, consent]);
    expect(await s.blobs.list(SHARED_TTS_OWNER)).toEqual([]);
    for (const gone of [tts, inbox, shared]) await expect(s.blobs.get(gone)).rejects.toThrow();

    // Zero keeps everything.
    expect(await sweepRetention(s, { historyDays: 0, audioDays: 0 }, now + 1000 * DAY)).toEqual({ turns: 0, audioBlobs: 0, people: 0 });
    expect(await s.history.recent('telegram:1', 10)).toHaveLength(1);

    // What the sweep removed stays removed in the backend, after a restart.
    await s.close();
    s = await open(backend, true);
    expect((await s.history.recent('telegram:1', 10)).map((t) => t.text)).toEqual(['recent']);
    expect(await s.blobs.list('telegram:1')).toEqual([sample, consent]);
  });
});

describe('retention settings', () => {
  it('reads HISTORY_RETENTION_DAYS and AUDIO_RETENTION_DAYS, defaulting to 0 and 30', () => {
    const base = { VOICETWIN_DATA_DIR: '/tmp/vt-x', VOICETWIN_DATA_KEY: '00'.repeat(32) };
    expect(loadConfig(base).retention).toEqual({ historyDays: 0, audioDays: 30 });
    expect(loadConfig({ ...base, HISTORY_RETENTION_DAYS: '90', AUDIO_RETENTION_DAYS: '0' }).retention).toEqual({ historyDays: 90, audioDays: 0 });
    expect(() => loadConfig({ ...base, HISTORY_RETENTION_DAYS: '-1' })).toThrow(/HISTORY_RETENTION_DAYS/);
  });
});
