/**
 * One broadcast across every adapter at once, each against its fake: Telegram (grammY → fake Bot
 * API), Discord (discord.js → fake REST and gateway) and WhatsApp (the adapter over the fake
 * whatsapp-web.js client). Each listener gets a native voice note; those with a ready twin voice
 * hear their own voice; each platform is paced on its own lane.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import wwebjs from 'whatsapp-web.js';
import { startTelegramBot, type TelegramBotHandle } from '../../src/bots/telegram/index.js';
import { startDiscordBot, type DiscordBot } from '../../src/bots/discord/index.js';
import { startWhatsAppBot, type WhatsAppBot } from '../../src/bots/whatsapp/index.js';
import { BroadcastService, type BroadcastStatus } from '../../src/core/broadcast/index.js';
import { getOggOpusInfo } from '../../src/core/audio/index.js';
import { silentLogger } from '../../src/core/log.js';
import { FakeTelegramServer } from '../fakes/telegram/server.js';
import { FakeDiscord, MESSAGE_FLAG } from '../fakes/discord/server.js';
import { FakeWhatsAppClient } from '../fakes/whatsapp/fake-client.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { makeReady, speakingProviders, twinVoice, waitFor } from '../core/broadcast/support.js';
import { OPERATOR, seedUsersBulk, userRecord, voicesPerChat } from '../core/broadcast/e2e-support.js';

let app: TestApp;
let telegram: FakeTelegramServer;
let discord: FakeDiscord;
let whatsapp: FakeWhatsAppClient;
let bots: { telegram: TelegramBotHandle; discord: DiscordBot; whatsapp: WhatsAppBot };
let service: BroadcastService;
let waDir: string;
const discordUsers: string[] = [];
const whatsappChats = ['4915100000001@c.us', '4915100000002@c.us', '4915100000003@c.us'];
let status: BroadcastStatus;

beforeAll(async () => {
  telegram = await FakeTelegramServer.start();
  discord = await FakeDiscord.start();
  whatsapp = new FakeWhatsAppClient();
  app = await createTestApp({ env: { OPERATORS: 'telegram:1' }, providers: speakingProviders() });
  for (const name of ['ann', 'bob', 'cat']) discordUsers.push(discord.addUser(name).id);
  const telegramIds = [200_001, 200_002, 200_003, 200_004];
  await seedUsersBulk(app.dataDir, [
    ...telegramIds.map((id) => userRecord('telegram', String(id))),
    ...discordUsers.map((id) => userRecord('discord', id)),
    ...whatsappChats.map((id) => userRecord('whatsapp', id)),
    userRecord('whatsapp', '4915100000009@c.us', { optedOut: true }),
  ]);
  let lastUpdate = 0;
  for (const id of telegramIds) lastUpdate = telegram.sendText('hi', { from: { id, first_name: `T${id}` } }).update_id;
  await fetch(`${telegram.apiRoot}/bot${telegram.token}/getUpdates?offset=${lastUpdate + 1}&timeout=0`);
  // One listener per platform has a ready twin voice.
  await makeReady(app.store, 'telegram:200001', twinVoice('t', 20));
  await makeReady(app.store, `discord:${discordUsers[0]}`, twinVoice('d', 80));
  await makeReady(app.store, `whatsapp:${whatsappChats[0]}`, twinVoice('w', 65));

  waDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-wa-'));
  bots = {
    telegram: await startTelegramBot({ token: telegram.token, engine: app.engine, logger: silentLogger, apiRoot: telegram.apiRoot, pollingTimeoutSec: 1 }),
    discord: await startDiscordBot({ token: discord.token, applicationId: discord.applicationId, guildId: discord.guildId, apiBase: discord.apiBase, engine: app.engine, logger: silentLogger }),
    whatsapp: await startWhatsAppBot({ engine: app.engine, logger: silentLogger, dataDir: waDir, client: whatsapp, minSendIntervalMs: 100, qrOutput: null }),
  };
  await waitFor(() => bots.whatsapp.state === 'ready', 'WhatsApp ready');
  service = new BroadcastService({
    engine: app.engine,
    logger: silentLogger,
    pace: { whatsapp: { messagesPerSec: 10, perChatIntervalMs: 100 }, discord: { messagesPerSec: 10, perChatIntervalMs: 200 } },
  });
  app.engine.registerOperatorCommand(service.command());

  telegram.sendCommand('/broadcast What are you grateful for today?', { from: OPERATOR });
  await waitFor(async () => (await service.status())?.state === 'done', 'the broadcast', 60_000);
  await service.whenIdle();
  status = (await service.status())!;
}, 120_000);

afterAll(async () => {
  await service?.stop();
  await bots?.telegram.stop();
  await bots?.discord.stop();
  await bots?.whatsapp.stop();
  await app?.close();
  await telegram?.close();
  await discord?.close();
  if (waDir) await rm(waDir, { recursive: true, force: true });
});

describe('a broadcast across Telegram, Discord and WhatsApp', () => {
  it('settles every recipient of every platform', () => {
    expect(status.state).toBe('done');
    // 4 Telegram users and the operator, 3 Discord, 3 WhatsApp (+1 opted out).
    expect(status.counts).toMatchObject({ total: 12, sent: 11, failed: 0, skipped: 1, skippedBy: { 'opted out': 1 } });
    expect(status.counts.sentBy).toEqual({ own: 3, operator: 0, default: 8 });
  });

  it('sends a Telegram voice note to each Telegram listener', () => {
    const perChat = voicesPerChat(telegram.calls);
    expect([...perChat.keys()].sort()).toEqual(['1', '200001', '200002', '200003', '200004']);
    expect(Math.max(...perChat.values())).toBe(1);
    const own = telegram.callsTo('sendVoice').find((c) => c.params.chat_id === '200001')!;
    const other = telegram.callsTo('sendVoice').find((c) => c.params.chat_id === '200002')!;
    expect(own.files.voice!.bytes.equals(other.files.voice!.bytes)).toBe(false);
    // Encoded at the offline voice's own rate (flite 16 kHz, espeak-ng 22.05 kHz → 24 kHz), not resampled to 48 kHz.
    expect([16_000, 24_000]).toContain(getOggOpusInfo(own.files.voice!.bytes).inputSampleRateHz);
  });

  it('sends a Discord voice message to each Discord listener’s DMs', () => {
    for (const [i, userId] of discordUsers.entries()) {
      const messages = discord.channelMessages(discord.dmChannelId(userId));
      const voice = messages.filter((m) => ((m.body.flags as number | undefined) ?? 0) & MESSAGE_FLAG.IS_VOICE_MESSAGE);
      expect(voice, `voice messages to Discord user ${i}`).toHaveLength(1);
      const meta = (voice[0]!.body.attachments as Array<{ duration_secs: number; waveform: string }>)[0]!;
      expect(meta.duration_secs).toBeGreaterThan(0.5);
      expect(Buffer.from(meta.waveform, 'base64').length).toBeGreaterThan(0);
      expect(messages.some((m) => m.body.content === 'What are you grateful for today?')).toBe(true);
    }
    const own = discord.channelMessages(discord.dmChannelId(discordUsers[0]!)).find((m) => m.files.length > 0)!;
    const other = discord.channelMessages(discord.dmChannelId(discordUsers[1]!)).find((m) => m.files.length > 0)!;
    expect(own.files[0]!.bytes.equals(other.files[0]!.bytes)).toBe(false);
  });

  it('sends a WhatsApp voice note (ptt, 16 kHz Ogg/Opus) to each WhatsApp listener, at the adapter’s pace', () => {
    for (const chat of whatsappChats) {
      const voices = whatsapp.sentTo(chat).filter((s) => s.content instanceof wwebjs.MessageMedia);
      expect(voices, chat).toHaveLength(1);
      const media = voices[0]!.content as InstanceType<typeof wwebjs.MessageMedia>;
      expect(media.mimetype).toBe('audio/ogg; codecs=opus');
      expect(voices[0]!.options.sendAudioAsVoice).toBe(true);
      expect(getOggOpusInfo(Buffer.from(media.data, 'base64')).inputSampleRateHz).toBe(16_000);
    }
    expect(whatsapp.sentTo('4915100000009@c.us')).toEqual([]);
    // One message at a time, about 100 ms apart (the adapter's send queue; timers may fire a millisecond early).
    const times = whatsapp.sent.map((s) => s.atMs).sort((a, b) => a - b);
    expect(Math.min(...times.slice(1).map((t, i) => t - times[i]!))).toBeGreaterThanOrEqual(98);
  });

  it('reports to the operator in their own chat', () => {
    const texts = telegram.calls.filter((c) => String(c.params.chat_id) === '1' && (c.method === 'sendMessage' || c.method === 'editMessageText')).map((c) => String(c.params.text));
    expect(texts[0]).toMatch(/^Broadcast bc-[0-9a-f]{6} starting: 11 recipients \(1 skipped\)/);
    expect(texts.at(-1)).toContain('Sent: 11 of 12 (default voice 8, own voice 3).');
  });
});
