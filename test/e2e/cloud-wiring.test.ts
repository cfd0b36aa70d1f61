/**
 * The composition root with cloud keys: the engine talks to ElevenLabs and Gemini (local fakes that
 * speak their wire formats, see test/fakes/) through the resilient provider chains, and falls back
 * to the offline stack when the vendor fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutboundReply, ReplyTarget } from '../../src/core/types.js';
import { getOggOpusInfo } from '../../src/core/audio/index.js';
import { ElevenLabsFake, PREMADE_VOICE_IDS } from '../fakes/elevenlabs/server.js';
import { GeminiFake } from '../fakes/gemini/server.js';
import { createTestApp } from '../helpers/app.js';

const replies: OutboundReply[] = [];
const target: ReplyTarget = {
  reply: async (r) => void replies.push(r),
  activity: async () => undefined,
  status: async () => async () => undefined,
};

let eleven: ElevenLabsFake;
let gemini: GeminiFake;
beforeAll(async () => {
  eleven = await ElevenLabsFake.start({ apiKey: 'el-test-key' });
  gemini = await GeminiFake.start({ apiKey: 'gm-test-key' });
});
afterAll(async () => {
  await eleven.close();
  await gemini.close();
});

describe('buildApp with cloud providers', () => {
  it('answers a text turn with Gemini and speaks it with ElevenLabs, falling back to espeak-ng on a 500', async () => {
    gemini.respond = (req) => (JSON.stringify(req).includes('plan my week') ? 'Start with one small step on Monday morning.' : undefined);
    const app = await createTestApp({
      env: {
        ELEVENLABS_API_KEY: 'el-test-key',
        ELEVENLABS_BASE_URL: eleven.baseUrl,
        ELEVENLABS_DEFAULT_VOICE_ID: PREMADE_VOICE_IDS[0]!,
        GEMINI_API_KEY: 'gm-test-key',
        GEMINI_BASE_URL: gemini.baseUrl,
        MEMORY_EVERY: '0',
        INSIGHT_EVERY: '0',
      },
    });
    try {
      expect(app.engine.providers.chat.name).toMatch(/gemini/);
      await app.engine.handle({ id: 'w1', channel: 'console', chatId: 'c', userId: 'u', receivedAtMs: Date.now(), text: 'Help me plan my week' }, target);
      const first = replies.at(-1)!;
      expect(first.kind).toBe('answer');
      expect(first.text).toContain('Start with one small step on Monday morning.');
      expect(gemini.requests.filter((r) => r.route === 'generate').length).toBeGreaterThan(0);
      expect(eleven.on('tts').length).toBeGreaterThan(0);
      expect(getOggOpusInfo(first.voice!.oggOpus).channels).toBe(1);

      eleven.inject('tts', { status: 500 }, 10);
      await app.engine.handle({ id: 'w2', channel: 'console', chatId: 'c', userId: 'u', receivedAtMs: Date.now(), text: 'Help me plan my week again please' }, target);
      const second = replies.at(-1)!;
      expect(second.kind).toBe('answer');
      expect(second.voice!.durationSec).toBeGreaterThan(0.5);
    } finally {
      await app.close();
    }
  });
});
