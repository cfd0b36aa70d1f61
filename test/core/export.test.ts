/**
 * `/export` round trip: the engine's archive unzips (Info-ZIP agrees), its JSON holds the person's
 * profile, consent record, history, memories and usage, and its WAV files decode to exactly the
 * PCM of the stored samples and consent recording. Over a platform's limit, audio is left out and
 * the reply says so.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../src/core/engine.js';
import { pcmToWav, wavToPcm } from '../../src/core/audio/index.js';
import type { PcmAudio, Providers } from '../../src/core/providers.js';
import { createStore } from '../../src/core/store/keyv-store.js';
import type { Store } from '../../src/core/store/types.js';
import type { InboundMessage, OutboundReply, ReplyTarget } from '../../src/core/types.js';
import { UsageMeter } from '../../src/core/usage.js';
import { buildPersonalExport, streamPersonalExport, type ExportDocument } from '../../src/core/export.js';
import { infoZipTest, readZip } from '../helpers/unzip.js';
import { REDIS_URL, redisAvailable } from '../helpers/redis.js';
import { deleteRedisNamespace, redisKeysContaining } from '../helpers/raw-scan.js';

const hasRedis = await redisAvailable();

class Recorder implements ReplyTarget {
  replies: OutboundReply[] = [];
  async reply(r: OutboundReply): Promise<void> {
    this.replies.push(r);
  }
  async activity(): Promise<void> {}
  async status(): Promise<(t: string) => Promise<void>> {
    return async () => undefined;
  }
}

const unused = async (): Promise<never> => {
  throw new Error('not used by /export');
};
const providers: Providers = {
  stt: { name: 'none', reliable: true, transcribe: unused },
  chat: { name: 'none', reply: unused, extractMemories: unused, insight: unused },
  tts: { name: 'none', synthesize: unused },
  cloner: { name: 'none', minSpeechSec: 3, clone: unused },
};

/** A deterministic noisy tone, `seconds` long at 16 kHz; `random` gives white noise (does not deflate). */
function pcm(seconds: number, seed: number, random = false): PcmAudio {
  const samples = new Int16Array(Math.round(seconds * 16000));
  if (random) {
    const bytes = randomBytes(samples.byteLength);
    samples.set(new Int16Array(bytes.buffer, bytes.byteOffset, samples.length));
    return { samples, sampleRateHz: 16000 };
  }
  for (let i = 0; i < samples.length; i++) samples[i] = Math.round(8000 * Math.sin((i * (200 + seed * 37) * 2 * Math.PI) / 16000) + ((i * 7919 * seed) % 200) - 100);
  return { samples, sampleRateHz: 16000 };
}

let store: Store | undefined;
let dataDir: string | undefined;
let namespace: string | undefined;
afterEach(async () => {
  await store?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  if (namespace) await deleteRedisNamespace(REDIS_URL, namespace);
  store = undefined;
  dataDir = undefined;
  namespace = undefined;
});

async function setup(channel: 'telegram' | 'discord', sampleSeconds: number, random = false, backend: 'sqlite' | 'redis' = 'sqlite') {
  dataDir = await mkdtemp(path.join(tmpdir(), 'vt-export-'));
  namespace = backend === 'redis' ? `vt-export-${randomBytes(4).toString('hex')}` : undefined;
  store = await createStore({ backend, dataDir, dataKey: randomBytes(32), ...(namespace ? { redisUrl: REDIS_URL, namespace } : {}) });
  const usage = new UsageMeter(store.kv);
  const engine = new Engine({ store, providers, usage });
  const userKey = `${channel}:77`;
  const marker = `bluebird-${randomBytes(4).toString('hex')}`;
  const audio = [pcm(sampleSeconds, 1, random), pcm(sampleSeconds, 2, random)];
  const consentAudio = pcm(2, 3);
  const consentBlob = await store.blobs.put(userKey, pcmToWav(consentAudio), 'consent');
  await store.users.put({
    key: userKey, channel, address: { channel, chatId: '77' }, displayName: `Ann ${marker}`, persona: 'supportive',
    sendTextWithVoice: false, optedOut: false, blocked: false, messageCount: 3, createdAtMs: 1, updatedAtMs: 1,
  });
  await store.profiles.put({
    userKey, state: 'collecting', speechSec: 4, requiredSpeechSec: 30, updatedAtMs: 2,
    consent: { phrase: 'I agree, code word maple', codeWord: 'maple', heardText: 'i agree code word maple', audioBlobKey: consentBlob, grantedAtMs: 3, method: 'spoken-match' },
  });
  for (const [i, a] of audio.entries()) {
    const blobKey = await store.blobs.put(userKey, pcmToWav(a), 'sample');
    await store.samples.add({ id: `s${i}`, userKey, blobKey, durationSec: sampleSeconds, speechSec: sampleSeconds, loudnessDb: -23, snrDb: 30, sourceMessageId: `m${i}`, createdAtMs: 10 + i });
  }
  await store.history.append(userKey, { role: 'user', text: `hearing ${marker}`, atMs: 20 }, { role: 'twin', text: 'I hear you', atMs: 21 });
  await store.memories.add(userKey, { id: 'ab12', text: `PIN hint ${marker}`, createdAtMs: 22, source: 'explicit' });
  await usage.record(userKey, { provider: 'local', ttsChars: 120 });
  const message: InboundMessage = { id: 'x1', channel, chatId: '77', userId: '77', receivedAtMs: Date.now(), command: { name: 'export', args: '' } };
  return { engine, usage, userKey, marker, audio, consentAudio, message };
}

describe('/export', () => {
  // Without Redis the Redis row is left out (redisAvailable prints why).
  it.each((['sqlite', 'redis'] as const).filter((b) => b === 'sqlite' || hasRedis))('sends a zip whose JSON and WAV files are what is stored (%s store)', async (backend) => {
    const { engine, marker, audio, consentAudio, message } = await setup('telegram', 1.5, false, backend);
    // The person's words are sealed in the backend, and come back in clear only inside the export.
    if (backend === 'redis') expect(await redisKeysContaining(REDIS_URL, namespace!, marker)).toEqual([]);
    const out = new Recorder();
    await engine.handle(message, out);
    const reply = out.replies.at(-1)!;
    expect(reply.document?.mimeType).toBe('application/zip');
    expect(reply.document?.fileName).toMatch(/^voicetwin-export-\d{4}-\d{2}-\d{2}\.zip$/);
    expect(reply.text).toMatch(/your profile and consent record, 1 exchange of conversation, 1 memory, 1 day of usage, 3 recordings \(WAV files\)\./);
    const zip = reply.document!.bytes;
    const tested = infoZipTest(zip);
    if (tested !== undefined) expect(tested).toBe(true);
    const files = readZip(zip);
    const doc = JSON.parse(files.get('voicetwin-export.json')!.toString('utf8')) as ExportDocument;
    expect(doc.user?.displayName).toBe(`Ann ${marker}`);
    expect(doc.profile?.consent).toMatchObject({ phrase: 'I agree, code word maple', heardText: 'i agree code word maple', method: 'spoken-match' });
    expect(doc.history.map((t) => t.text)).toEqual([`hearing ${marker}`, 'I hear you']);
    expect(doc.memories.map((m) => m.text)).toEqual([`PIN hint ${marker}`]);
    expect(doc.usage).toHaveLength(1);
    expect(doc.usage[0]!.total.ttsChars).toBe(120);
    expect(doc.audioIncluded).toBe(true);
    expect(doc.samples.map((s) => s.file)).toEqual(['samples/01-s0.wav', 'samples/02-s1.wav']);
    for (const [i, sample] of doc.samples.entries()) {
      const decoded = wavToPcm(files.get(sample.file!)!);
      expect(decoded.sampleRateHz).toBe(16000);
      expect(Buffer.from(decoded.samples.buffer, decoded.samples.byteOffset, decoded.samples.byteLength)).toEqual(Buffer.from(audio[i]!.samples.buffer));
    }
    const consent = wavToPcm(files.get(doc.consentRecording!)!);
    expect(Array.from(consent.samples)).toEqual(Array.from(consentAudio.samples));
  });

  it('leaves the audio out, and says so, when the archive is over the platform limit', async () => {
    // Two 200 s samples of white noise: 12.8 MB of WAV that deflate cannot shrink, over Discord's 10 MiB.
    const { engine, message } = await setup('discord', 200, true);
    const out = new Recorder();
    await engine.handle(message, out);
    const reply = out.replies.at(-1)!;
    expect(reply.text).toMatch(/Your 2 voice samples and the consent recording are left out: with them the file is [\d.]+ MB, over the 10 MB/);
    const files = readZip(reply.document!.bytes);
    expect([...files.keys()].sort()).toEqual(['README.txt', 'voicetwin-export.json']);
    const doc = JSON.parse(files.get('voicetwin-export.json')!.toString('utf8')) as ExportDocument;
    expect(doc.audioIncluded).toBe(false);
    expect(doc.samples).toHaveLength(2);
    expect(reply.text).not.toMatch(/download/);
  });

  it('over the limit with a download link configured: the reply offers the link to the full archive', async () => {
    const { engine, message } = await setup('discord', 200, true);
    const asked: string[] = [];
    engine.setExportLinks((userKey) => {
      asked.push(userKey);
      return { url: `https://twin.example/v1/export/abc?exp=1&sig=x`, expiresAtMs: Date.UTC(2026, 0, 1, 12, 30) };
    });
    const out = new Recorder();
    await engine.handle(message, out);
    const reply = out.replies.at(-1)!;
    expect(asked).toEqual(['discord:77']);
    expect(reply.text).toMatch(/left out: with them the file is [\d.]+ MB/);
    expect(reply.text).toMatch(/can be downloaded until 12:30 UTC .*: https:\/\/twin\.example\/v1\/export\/abc\?exp=1&sig=x$/);
    expect([...readZip(reply.document!.bytes).keys()].sort()).toEqual(['README.txt', 'voicetwin-export.json']);
  });

  it('streams the same archive as it builds: same files, same bytes in each', async () => {
    const { usage, userKey } = await setup('telegram', 1.5);
    const deps = { store: store!, usage, now: () => 1_760_000_000_000 };
    const built = await buildPersonalExport(deps, userKey);
    const streamed = await streamPersonalExport(deps, userKey);
    const chunks: Buffer[] = [];
    for await (const chunk of streamed.chunks) chunks.push(Buffer.from(chunk));
    expect(chunks.length).toBeGreaterThan(1);
    const zip = Buffer.concat(chunks);
    const tested = infoZipTest(zip);
    if (tested !== undefined) expect(tested).toBe(true);
    const a = readZip(built.bytes);
    const b = readZip(zip);
    expect([...b.keys()]).toEqual([...a.keys()]);
    expect(b.size).toBe(5);
    for (const [name, bytes] of a) expect(b.get(name)!.equals(bytes), name).toBe(true);
    expect(streamed.fileName).toBe(built.fileName);
  });
});
