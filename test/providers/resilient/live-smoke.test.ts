/**
 * Live smoke test against the real vendor APIs. Each vendor's suite runs only when its key is in
 * the environment (`ELEVENLABS_API_KEY`, `REPLICATE_API_TOKEN`, `GEMINI_API_KEY`) and is skipped
 * with a message otherwise. It spends a few cents at most: ~60 characters of TTS, a few seconds
 * of STT, one short Chatterbox prediction, two small Gemini calls.
 *
 *   ELEVENLABS_API_KEY=… GEMINI_API_KEY=… npx vitest run test/providers/resilient/live-smoke.test.ts
 */
import { describe, expect, it } from 'vitest';
import { decodeToPcm } from '../../../src/core/audio/decode.js';
import { sniffContainer } from '../../../src/core/audio/sniff.js';
import { ElevenLabsSpeechToText, ElevenLabsSynthesizer } from '../../../src/providers/elevenlabs/index.js';
import { GeminiChatModel, GeminiSpeechToText } from '../../../src/providers/gemini/index.js';
import { ChatterboxSynthesizer } from '../../../src/providers/replicate/index.js';
import { renderSystemPrompt } from '../../../src/core/personas.js';
import { speechPcm16k } from '../../fakes/elevenlabs/audio.js';

const env = process.env;
const skipped = (name: string, variable: string): string => `${name} [skipped: set ${variable} to run against the real API]`;
const words = (text: string): string[] => text.toLowerCase().match(/[a-z]+/g) ?? [];

const elevenKey = env.ELEVENLABS_API_KEY;
describe.skipIf(!elevenKey)(elevenKey ? 'ElevenLabs live' : skipped('ElevenLabs live', 'ELEVENLABS_API_KEY'), () => {
  it('speaks a sentence as Ogg/Opus and Scribe transcribes it back', { timeout: 120_000 }, async () => {
    const sentence = 'The weather is lovely today.';
    const tts = new ElevenLabsSynthesizer({ apiKey: elevenKey as string, defaultVoiceId: env.ELEVENLABS_VOICE_ID ?? 'JBFqnCBsd6RMkjVDRZzb' });
    const audio = await tts.synthesize({ text: sentence });
    expect(audio.container).toBe('ogg');
    const stt = new ElevenLabsSpeechToText({ apiKey: elevenKey as string });
    const transcript = await stt.transcribe(await decodeToPcm(audio.bytes, { sampleRateHz: 16_000 }));
    expect(words(transcript.text)).toEqual(expect.arrayContaining(['weather', 'lovely']));
  });
});

const geminiKey = env.GEMINI_API_KEY;
describe.skipIf(!geminiKey)(geminiKey ? 'Gemini live' : skipped('Gemini live', 'GEMINI_API_KEY'), () => {
  it('answers in persona and transcribes a short voice note', { timeout: 120_000 }, async () => {
    const chat = new GeminiChatModel({ apiKey: geminiKey as string });
    const reply = await chat.reply({ persona: 'supportive', systemPrompt: renderSystemPrompt('supportive', 'Sam'), history: [], memories: [], userText: 'I passed my driving test!', maxChars: 300 });
    expect(reply.text.length).toBeGreaterThan(5);
    expect(reply.text.length).toBeLessThanOrEqual(300);
    const stt = new GeminiSpeechToText({ apiKey: geminiKey as string });
    const transcript = await stt.transcribe(await speechPcm16k('Please remind me to buy milk.'));
    expect(words(transcript.text)).toEqual(expect.arrayContaining(['remind', 'milk']));
  });
});

const replicateToken = env.REPLICATE_API_TOKEN;
describe.skipIf(!replicateToken)(replicateToken ? 'Replicate live' : skipped('Replicate live', 'REPLICATE_API_TOKEN'), () => {
  it('runs one Chatterbox prediction and returns a WAV', { timeout: 300_000 }, async () => {
    const tts = new ChatterboxSynthesizer({
      apiToken: replicateToken as string,
      references: {
        saveReference: async () => 'unused',
        loadReference: async () => Buffer.alloc(0),
      },
    });
    const out = await tts.synthesize({ text: 'Hello from the live smoke test.', signal: AbortSignal.timeout(280_000) });
    expect(sniffContainer(out.bytes)).toBe('wav');
  });
});
