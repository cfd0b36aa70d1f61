import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError, UserInputError } from '../../../src/core/errors.js';
import type { CloneSample, ClonedVoice } from '../../../src/core/providers.js';
import { analyseSample } from '../../../src/core/audio/analysis.js';
import { parseWavHeader } from '../../../src/core/audio/wav.js';
import { ChatterboxCloner, ChatterboxSynthesizer, selectReference, type ReferenceStore } from '../../../src/providers/replicate/index.js';
import { ReplicateFake } from '../../fakes/replicate/server.js';
import { speechPcm16k, wavDurationSec } from '../../fakes/elevenlabs/audio.js';
import { rejection } from '../../helpers/rejection.js';

const TOKEN = 'r8_test_9c0ffee4b1d2e3f4a5b6c7d8';

class MemoryReferences implements ReferenceStore {
  readonly blobs = new Map<string, Buffer>();
  readonly saves: { ownerKey: string; key: string }[] = [];
  async saveReference(ownerKey: string, wav: Buffer): Promise<string> {
    const key = `${ownerKey}/reference/${this.blobs.size + 1}`;
    this.blobs.set(key, wav);
    this.saves.push({ ownerKey, key });
    return key;
  }
  async loadReference(key: string): Promise<Buffer> {
    const wav = this.blobs.get(key);
    if (!wav) throw new Error(`no blob ${key}`);
    return wav;
  }
  async deleteReference(key: string): Promise<void> {
    this.blobs.delete(key);
  }
}

function sample(id: string, pcm: { samples: Int16Array; sampleRateHz: number }): CloneSample {
  return { id, pcm, speechSec: analyseSample(pcm).speechSec };
}

/** Adds white noise at a given peak amplitude (a cheap way to make a sample less clean). */
function noisy(pcm: { samples: Int16Array; sampleRateHz: number }, amplitude: number): { samples: Int16Array; sampleRateHz: number } {
  let seed = 12345;
  const samples = pcm.samples.map((s) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return Math.max(-32768, Math.min(32767, s + Math.round(((seed / 0x7fffffff) * 2 - 1) * amplitude)));
  });
  return { samples, sampleRateHz: pcm.sampleRateHz };
}

let fake: ReplicateFake;
let shortSamples: CloneSample[];
let longSample: CloneSample;

beforeAll(async () => {
  fake = await ReplicateFake.start({ token: TOKEN });
  const texts = [
    'Every morning I walk the dog along the canal before work.',
    'My favourite food is my grandmother’s lentil soup with fresh bread.',
    'I have been learning to play the piano for about three years.',
    'On weekends we often drive to the coast and watch the boats.',
  ];
  const pcms = await Promise.all(texts.map((t) => speechPcm16k(t)));
  shortSamples = pcms.map((pcm, i) => sample(`short-${i}`, i === 1 ? noisy(pcm, 6000) : pcm));
  const long = await speechPcm16k(texts.join(' ') + ' ' + texts.join(' '), { wordsPerMinute: 150 });
  longSample = sample('long', long);
});

afterAll(async () => {
  await fake.close();
});

describe('selectReference', () => {
  it('takes one window of at most 15 s from a long sample, starting on speech', () => {
    const clip = selectReference([longSample]);
    expect(clip.segments).toHaveLength(1);
    expect(clip.durationSec).toBeLessThanOrEqual(15);
    expect(clip.durationSec).toBeGreaterThan(12);
    expect(clip.speechSec).toBeGreaterThanOrEqual(10);
    expect(analyseSample({ samples: clip.pcm.samples.subarray(0, 3200), sampleRateHz: 16_000 }).speechSec).toBeGreaterThan(0.03);
  });

  it('joins the cleanest short samples until ~12 s of speech, leaving the noisy one for last', () => {
    const clip = selectReference(shortSamples);
    expect(clip.durationSec).toBeLessThanOrEqual(15);
    expect(clip.speechSec).toBeGreaterThanOrEqual(8);
    const ids = clip.segments.map((s) => s.sampleId);
    expect(ids.length).toBeGreaterThan(1);
    expect(ids[0]).not.toBe('short-1');
    if (ids.includes('short-1')) expect(ids.at(-1)).toBe('short-1');
  });

  it('refuses less than 5 s of speech', () => {
    const err = (() => {
      try {
        selectReference([shortSamples[0] as CloneSample]);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(UserInputError);
    expect((err as UserInputError).code).toBe('AUDIO_TOO_SHORT');
  });
});

describe('ChatterboxCloner', () => {
  it('stores the reference through the engine’s callback and calls no API', async () => {
    const refs = new MemoryReferences();
    const cloner = new ChatterboxCloner({ apiToken: TOKEN, baseUrl: fake.apiUrl, references: refs });
    const before = fake.requests.length;
    const voice = await cloner.clone({ userId: 'discord:77', samples: [longSample] });
    expect(fake.requests.length).toBe(before);
    expect(refs.saves).toEqual([{ ownerKey: 'discord:77', key: 'discord:77/reference/1' }]);
    expect(voice).toMatchObject({ provider: 'replicate', approximate: false, params: { referenceBlobKey: 'discord:77/reference/1' } });
    const wav = refs.blobs.get('discord:77/reference/1') as Buffer;
    expect(parseWavHeader(wav)).toMatchObject({ sampleRateHz: 16_000, channels: 1, bitsPerSample: 16 });
    expect(cloner.minSpeechSec).toBe(12);
    await cloner.deleteVoice(voice);
    expect(refs.blobs.size).toBe(0);
  });
});

describe('ChatterboxSynthesizer', () => {
  const longText =
    'Thanks for asking about my day. I spent the morning fixing the garden fence, which the storm had knocked over last week. ' +
    'After lunch I called my sister and we talked for an hour about her new job in the city. ' +
    'In the evening I finally finished the novel I had been reading since spring, and the ending surprised me. ' +
    'Tomorrow I want to try the new bakery on the corner. What about you, what are your plans for the weekend?';

  async function voiceWith(refs: MemoryReferences, samples: CloneSample[]): Promise<ClonedVoice> {
    return new ChatterboxCloner({ apiToken: TOKEN, baseUrl: fake.apiUrl, references: refs }).clone({ userId: 'telegram:5', samples });
  }

  it('splits at sentences, runs pieces concurrently (bounded), sends the reference inline and joins the WAVs in order', async () => {
    const refs = new MemoryReferences();
    // A short reference (≤ 256 KiB) goes inline as a data URI.
    const voice = await voiceWith(refs, [sample('a', { samples: longSample.pcm.samples.subarray(0, 16_000 * 7), sampleRateHz: 16_000 })]);
    fake.processingMs = 300;
    fake.maxConcurrent = 0;
    const createdBefore = fake.on('create').length;
    const tts = new ChatterboxSynthesizer({ apiToken: TOKEN, baseUrl: fake.apiUrl, references: refs, concurrency: 2, seed: 42, exaggeration: 0.6 });
    const out = await tts.synthesize({ text: longText, voice });

    const creates = fake.on('create').slice(createdBefore);
    expect(creates.length).toBe(out.pieces);
    expect(out.pieces).toBeGreaterThanOrEqual(2);
    expect(fake.maxConcurrent).toBe(2);
    for (const c of creates) {
      expect(c.path).toBe('/v1/models/resemble-ai/chatterbox/predictions');
      expect(c.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(c.headers.prefer).toBe('wait=30');
      const input = c.json?.input as Record<string, unknown>;
      expect(String(input.prompt).length).toBeLessThanOrEqual(300);
      expect(input).toMatchObject({ seed: 42, exaggeration: 0.6 });
      expect(String(input.audio_prompt)).toMatch(/^data:audio\/wav;base64,/);
    }
    const prompts = creates.map((c) => String((c.json?.input as { prompt: string }).prompt));
    // Requests run concurrently, so they may arrive in any order; in text order they must rebuild the reply.
    const inTextOrder = [...prompts].sort((a, b) => longText.indexOf(a) - longText.indexOf(b));
    expect(inTextOrder.join(' ')).toBe(longText);
    const predictions = [...fake.predictions.values()].slice(-out.pieces);
    const reference = refs.blobs.get(voice.params.referenceBlobKey as string);
    for (const p of predictions) expect(p.referenceBytes?.equals(reference as Buffer)).toBe(true);

    // One float WAV at 24 kHz whose length is the pieces' plus the pauses between them.
    const header = parseWavHeader(out.bytes);
    expect(header).toMatchObject({ subFormat: 3, sampleRateHz: 24_000, channels: 1, bitsPerSample: 32 });
    const pieceSec = await Promise.all(predictions.map(async (p) => wavDurationSec(Buffer.from(await (await fetch(p.output as string)).arrayBuffer()))));
    const expectedSec = pieceSec.reduce((a, b) => a + b, 0) + 0.15 * (out.pieces - 1);
    expect(wavDurationSec(out.bytes)).toBeCloseTo(expectedSec, 2);
    expect(out.characters).toBe(longText.length);
  });

  it('uploads a large reference once through the Files API and polls predictions that outlast the held request', async () => {
    const refs = new MemoryReferences();
    const voice = await voiceWith(refs, [longSample]);
    expect((refs.blobs.get(voice.params.referenceBlobKey as string) as Buffer).length).toBeGreaterThan(256 * 1024);
    fake.processingMs = 1_300;
    const filesBefore = fake.on('files').length;
    const getsBefore = fake.on('get').length;
    const tts = new ChatterboxSynthesizer({ apiToken: TOKEN, baseUrl: fake.apiUrl, references: refs, waitSec: 1, pollIntervalMs: 100 });
    await tts.synthesize({ text: 'First sentence here. Second one follows.', voice });
    await tts.synthesize({ text: 'And a second reply.', voice });
    expect(fake.on('files').length - filesBefore).toBe(1);
    expect(fake.on('get').length).toBeGreaterThan(getsBefore);
    const input = fake.on('create').at(-1)?.json?.input as Record<string, unknown>;
    expect(String(input.audio_prompt)).toMatch(new RegExp(`^${fake.apiUrl}/files/`));
    fake.processingMs = 50;
  });

  it('cancels the prediction when the caller gives up, and reports failed predictions', async () => {
    const refs = new MemoryReferences();
    const tts = new ChatterboxSynthesizer({ apiToken: TOKEN, baseUrl: fake.apiUrl, references: refs, waitSec: 1, pollIntervalMs: 50 });
    fake.processingMs = 5_000;
    const cancelsBefore = fake.on('cancel').length;
    const aborted = await rejection(tts.synthesize({ text: 'This will take too long.', signal: AbortSignal.timeout(1_300) }));
    expect((aborted as Error).name).toBe('TimeoutError');
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.on('cancel').length).toBe(cancelsBefore + 1);
    expect([...fake.predictions.values()].at(-1)?.status).toBe('canceled');

    fake.processingMs = 50;
    fake.failNextPredictions = 1;
    const failed = await rejection(tts.synthesize({ text: 'Hello.' }));
    expect(failed).toBeInstanceOf(ProviderError);
    expect((failed as ProviderError).message).toContain('failed: CUDA error: out of memory');
    expect((failed as ProviderError).retryable).toBe(true);
  });

  it('maps 429 with Retry-After after one request on the wire, and 401 without leaking the token', async () => {
    const refs = new MemoryReferences();
    const tts = new ChatterboxSynthesizer({ apiToken: TOKEN, baseUrl: fake.apiUrl, references: refs });
    const before = fake.on('create').length;
    fake.inject('create', { status: 429, retryAfterSec: 1 });
    const limited = await rejection(tts.synthesize({ text: 'Hello.' }));
    expect(limited).toMatchObject({ retryable: true, options: { status: 429, retryAfterSec: 1 } });
    expect(fake.on('create').length).toBe(before + 1); // the SDK's own repeats never reached the network

    fake.inject('create', { status: 502 });
    expect(await rejection(tts.synthesize({ text: 'Hello.' }))).toMatchObject({ retryable: true, options: { status: 502 } });

    const bad = new ChatterboxSynthesizer({ apiToken: 'r8_wrong_token_0000', baseUrl: fake.apiUrl, references: refs });
    const auth = await rejection(bad.synthesize({ text: 'Hello.' }));
    expect(auth).toMatchObject({ retryable: false, options: { status: 401 } });
    expect((auth as Error).message).toContain('valid authentication token');
    expect((auth as Error).message).not.toContain('r8_wrong_token_0000');
  });
});
