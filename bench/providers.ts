/**
 * Providers for benchmarks that measure VoiceTwin's own work: each of the four provider interfaces
 * of src/core/providers.ts answers at once, so provider time is ~0 and what remains is the
 * pipeline, the store and the channel adapter.
 */
import type { ChatModel, Providers, SpeechSynthesizer, SpeechToText, VoiceCloner } from '../src/core/providers.js';

/**
 * Zero-latency providers: STT returns a fixed transcript (its `durationSec` is the input's length in
 * seconds), the chat model a fixed answer numbered per call, TTS returns `ttsWav` unchanged (a
 * prepared WAV, e.g. espeak-ng output; `characters` is the text length) and the cloner a fixed voice.
 * Nothing throws.
 */
export function zeroLatencyProviders(ttsWav: Buffer): Providers {
  const stt: SpeechToText = {
    name: 'zero',
    reliable: true,
    transcribe: async (audio) => ({ text: 'I would like to plan my weekend with friends', durationSec: audio.samples.length / audio.sampleRateHz }),
  };
  let n = 0;
  const chat: ChatModel = {
    name: 'zero',
    reply: async () => ({ text: `Planning ahead sounds good, and a walk by the river is a lovely idea. What matters most to you this weekend, number ${++n}?` }),
    extractMemories: async () => [],
    insight: async () => 'You come back to rest and friends.',
  };
  const tts: SpeechSynthesizer = { name: 'zero', synthesize: async ({ text }) => ({ bytes: ttsWav, characters: text.length }) };
  const cloner: VoiceCloner = { name: 'zero', minSpeechSec: 1, clone: async () => ({ provider: 'zero', voiceId: 'v', params: {}, approximate: true, label: 'zero' }) };
  return { stt, chat, tts, cloner };
}
