/**
 * Shared set-up of the ElevenLabs phone tests: a SQLite store in a temporary dir, people with and
 * without voices, enrollment samples made of real (espeak-ng) speech, and a log capture.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createStore } from '../../../src/core/store/keyv-store.js';
import type { Store, UserRecord } from '../../../src/core/store/types.js';
import type { PersonaName } from '../../../src/core/personas.js';
import { pcmToWav } from '../../../src/core/audio/wav.js';
import { createLogger } from '../../../src/core/log.js';
import { speechPcm16k } from '../../fakes/elevenlabs/audio.js';

export const API_KEY = 'xi-test-9c1d2e3f4a5b6c7d8e9f';
export const AGENT_ID = 'agent_01testtwin';
export const ACCOUNT_SID = `AC${'a1'.repeat(16)}`;
export const AUTH_TOKEN = 'twilio-auth-token-for-tests-0001';

export async function openStore(): Promise<{ store: Store; close: () => Promise<void> }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'vt-phone-el-'));
  const store = await createStore({ backend: 'sqlite', dataDir, dataKey: randomBytes(32) });
  return {
    store,
    async close() {
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Adds a person (Telegram user) with a name and persona. */
export async function addPerson(store: Store, key: string, displayName: string, persona: PersonaName = 'coaching'): Promise<UserRecord> {
  const [, id] = key.split(':');
  const user: UserRecord = {
    key, channel: 'telegram', address: { channel: 'telegram', chatId: id! }, displayName, persona,
    sendTextWithVoice: false, optedOut: false, blocked: false, messageCount: 0, createdAtMs: 1, updatedAtMs: 1,
  };
  await store.users.put(user);
  return user;
}

/** A ready voice profile with `provider`'s voice. */
export async function addVoice(store: Store, key: string, provider: string, voiceId: string): Promise<void> {
  await store.profiles.put({
    userKey: key, state: 'ready', consent: { phrase: 'I agree', codeWord: 'otter', grantedAtMs: 1, method: 'spoken-match' },
    speechSec: 30, requiredSpeechSec: 12, voice: { provider, voiceId, params: {}, approximate: provider === 'local', label: provider }, updatedAtMs: 1,
  });
}

const SAMPLE_TEXTS = [
  'The quick brown fox jumps over the lazy dog near the river bank.',
  'She sells sea shells by the sea shore on a sunny afternoon.',
];

/** Stores enrollment samples of real speech (16 kHz WAV, encrypted) for `key`. @returns their PCM */
export async function addSamples(store: Store, key: string): Promise<Int16Array[]> {
  const out: Int16Array[] = [];
  for (const [i, text] of SAMPLE_TEXTS.entries()) {
    const pcm = await speechPcm16k(text);
    const blobKey = await store.blobs.put(key, pcmToWav(pcm), 'sample');
    const durationSec = pcm.samples.length / pcm.sampleRateHz;
    await store.samples.add({ id: `s${i}`, userKey: key, blobKey, durationSec, speechSec: durationSec, loudnessDb: -20, snrDb: 30, sourceMessageId: `m${i}`, createdAtMs: 1 });
    out.push(pcm.samples);
  }
  return out;
}

/** A logger writing JSON lines to memory. */
export function captureLogs(): { logger: ReturnType<typeof createLogger>; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { logger: createLogger({ level: 'trace', destination }), text: () => chunks.join('') };
}
