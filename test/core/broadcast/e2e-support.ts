/**
 * End-to-end support: the real app (SQLite store, real engine) with the real Telegram adapter
 * (grammY, flood-control transformer, auto-retry) against the local fake Bot API server, users
 * seeded in bulk, and checks on the timestamps the fake recorded.
 */
import path from 'node:path';
import { Keyv } from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import { startTelegramBot, type TelegramBotHandle, type TelegramBotOptions } from '../../../src/bots/telegram/index.js';
import { THROTTLED_METHODS } from '../../../src/bots/telegram/throttle.js';
import { BroadcastService, type BroadcastServiceOptions } from '../../../src/core/broadcast/index.js';
import { SQLITE_FILE } from '../../../src/core/store/index.js';
import { USERS_INDEX_CHUNK_KEYS } from '../../../src/core/store/keyv-store.js';
import type { UserRecord } from '../../../src/core/store/types.js';
import type { Channel } from '../../../src/core/types.js';
import { silentLogger, type Logger } from '../../../src/core/log.js';
import { FakeTelegramServer, type FakeUser, type RecordedCall } from '../../fakes/telegram/server.js';
import { createTestApp, type TestApp } from '../../helpers/app.js';
import { speakingProviders } from './support.js';

/** A user record as the engine would create it on the first message. */
export function userRecord(channel: Channel, id: string, overrides: Partial<UserRecord> = {}): UserRecord {
  return {
    key: `${channel}:${id}`,
    channel,
    address: { channel, chatId: id },
    displayName: `User ${id}`,
    persona: 'supportive',
    sendTextWithVoice: true,
    optedOut: false,
    blocked: false,
    messageCount: 1,
    createdAtMs: Date.now(),
    updatedAtMs: Date.now(),
    ...overrides,
  };
}

/**
 * Writes users straight into the SQLite store of `dataDir`, in the key layout documented in
 * src/core/store/keyv-store.ts (`voicetwin:user:<key>` records plus the chunked users index
 * `voicetwin:users:chunks` / `voicetwin:users:chunk:<i>`), in a few large writes. Adding users one
 * by one through `UserRepository.put` costs a handful of reads and writes each, which is fine for
 * users arriving one by one but slow for a 10,000-user fixture.
 */
export async function seedUsersBulk(dataDir: string, users: UserRecord[]): Promise<void> {
  const sqlite = new KeyvSqlite({ uri: `sqlite://${path.join(dataDir, SQLITE_FILE)}`, table: 'keyv', busyTimeout: 5000 });
  const keyv = new Keyv({ store: sqlite, namespace: undefined, useKeyPrefix: false });
  sqlite.namespace = undefined;
  let count = (await keyv.get<number>('voicetwin:users:chunks')) ?? 0;
  let last = count > 0 ? ((await keyv.get<string[]>(`voicetwin:users:chunk:${count - 1}`)) ?? []) : [];
  if (count === 0) count = 1;
  for (const user of users) {
    await keyv.set(`voicetwin:user:${user.key}`, user);
    if (last.length === USERS_INDEX_CHUNK_KEYS) {
      await keyv.set(`voicetwin:users:chunk:${count - 1}`, last);
      last = [];
      count++;
    }
    last.push(user.key);
  }
  await keyv.set(`voicetwin:users:chunk:${count - 1}`, last);
  await keyv.set('voicetwin:users:chunks', count);
  await keyv.disconnect();
}

/** The operator of the Telegram harness (OPERATORS=telegram:1). */
export const OPERATOR: FakeUser = { id: 1, first_name: 'Olga', last_name: 'Operator' };

export interface TelegramHarness {
  fake: FakeTelegramServer;
  app: TestApp;
  bot: TelegramBotHandle;
  service: BroadcastService;
  /** The operator types `/broadcast <args>` in their private chat with the bot. */
  operatorSays(args: string): void;
  close(): Promise<void>;
}

/**
 * Starts the fake Bot API, the real app over a fresh SQLite data dir with `userCount` Telegram
 * users (chat ids from `firstChatId`) known to both the store and the fake, the real Telegram
 * adapter, and a broadcast service registered as the engine's `/broadcast` command.
 */
export async function startTelegramHarness(options: {
  userCount: number;
  firstChatId?: number;
  users?: (i: number) => Partial<UserRecord>;
  service?: Partial<BroadcastServiceOptions>;
  bot?: Partial<TelegramBotOptions>;
  logger?: Logger;
  dataDir?: string;
}): Promise<TelegramHarness> {
  const fake = await FakeTelegramServer.start();
  const first = options.firstChatId ?? 100_000;
  const app = await createTestApp({ env: { OPERATORS: 'telegram:1' }, providers: speakingProviders(), ...(options.dataDir ? { dataDir: options.dataDir } : {}) });
  const users = Array.from({ length: options.userCount }, (_, i) => userRecord('telegram', String(first + i), options.users?.(i)));
  await seedUsersBulk(app.dataDir, users);
  // The fake only delivers to chats it has seen: each user says hello once. Those updates are
  // confirmed (getUpdates with a higher offset) so the bot starts with an empty queue.
  let lastUpdateId = 0;
  for (let i = 0; i < options.userCount; i++) lastUpdateId = fake.sendText('hi', { from: { id: first + i, first_name: `U${i}` } }).update_id;
  if (options.userCount > 0) await fetch(`${fake.apiRoot}/bot${fake.token}/getUpdates?offset=${lastUpdateId + 1}&timeout=0`);
  fake.calls.length = 0;
  const bot = await startTelegramBot({ token: fake.token, engine: app.engine, logger: options.logger ?? silentLogger, apiRoot: fake.apiRoot, pollingTimeoutSec: 1, ...options.bot });
  const service = new BroadcastService({ engine: app.engine, logger: options.logger ?? silentLogger, ...options.service });
  app.engine.registerOperatorCommand(service.command());
  return {
    fake,
    app,
    bot,
    service,
    operatorSays: (args) => void fake.sendCommand(`/broadcast ${args}`.trim(), { from: OPERATOR }),
    async close() {
      await service.stop();
      await bot.stop();
      await app.close();
      await fake.close();
    },
  };
}

/** Calls that put a message into a chat (they count against Telegram's limits). */
export function messageCalls(calls: readonly RecordedCall[]): RecordedCall[] {
  return calls.filter((c) => THROTTLED_METHODS.has(c.method));
}

/** Successful `sendVoice` calls per chat id. */
export function voicesPerChat(calls: readonly RecordedCall[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of calls) if (c.method === 'sendVoice' && c.status === 200) out.set(String(c.params.chat_id), (out.get(String(c.params.chat_id)) ?? 0) + 1);
  return out;
}

/** Pace of the kill-and-resume test, in the killed process and after the restart alike. */
export const KILL_TEST_SERVICE: Partial<BroadcastServiceOptions> = {
  pace: { telegram: { messagesPerSec: 150, perChatIntervalMs: 100, maxInFlight: 16 } },
  checkpointIntervalMs: 200,
};
/** The adapter's throttle opened up to the test's pace. */
export const KILL_TEST_BOT_THROTTLE = { globalPerSecond: 150, privateChatIntervalMs: 100 };
