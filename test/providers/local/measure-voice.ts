/**
 * Measures the offline preview voice on the real speakers of the shared speech folder: the
 * speaker's median F0 and syllable rate, the espeak-ng settings chosen, and the median F0 and
 * syllable rate of the preview voice speaking a fixed reply; plus espeak-ng synthesis latency
 * (wall clock per call, for a short and a long reply, median of 5).
 *
 * Run: `npx tsx test/providers/local/measure-voice.ts`
 */
import { analyseSample } from '../../../src/core/audio/analysis.js';
import type { CloneSample } from '../../../src/core/providers.js';
import { EspeakPreviewCloner, type PreviewVoiceParams } from '../../../src/providers/local/cloner.js';
import { EspeakSpeechSynthesizer } from '../../../src/providers/local/espeak.js';
import { toPcm } from '../../helpers/audio.js';
import { clipsAvailable, readClip } from './clips.js';

const REPLY =
  'Thanks for telling me about your day. It sounds like the meeting went better than you expected, and I am glad. ' +
  'Tomorrow you could take a short walk before work and see how that feels.';

const SPEAKERS: Record<string, string[]> = {
  'JFK (M, inaugural)': ['openai-whisper/jfk.flac'],
  'LJSpeech (F)': ['LJ001-0001', 'LJ001-0004', 'LJ001-0005', 'LJ001-0006', 'LJ001-0009', 'LJ001-0011'].map((id) => `coqui-tts-ljspeech/${id}.wav`),
  'LibriSpeech 2033 (M)': ['0001', '0003', '0009'].map((id) => `resemblyzer-librispeech/2033-164914-${id}.flac`),
  'LibriSpeech 1998 (F)': ['0001', '0003', '0009'].map((id) => `resemblyzer-librispeech/1998-15444-${id}.flac`),
  'speechbrain example5 (M)': ['speechbrain/example5.wav'],
};

async function main(): Promise<void> {
  const cloner = new EspeakPreviewCloner();
  const tts = new EspeakSpeechSynthesizer();
  if (clipsAvailable()) {
    for (const [name, paths] of Object.entries(SPEAKERS)) {
      const samples: CloneSample[] = paths.map((p, i) => {
        const pcm = toPcm(readClip(p));
        return { id: String(i), pcm, speechSec: analyseSample(pcm).speechSec };
      });
      const voice = await cloner.clone({ userId: name, samples });
      const params = voice.params as unknown as PreviewVoiceParams;
      const out = analyseSample(toPcm((await tts.synthesize({ text: REPLY, voice })).bytes));
      const error = ((out.medianF0Hz! - params.speakerF0Hz) / params.speakerF0Hz) * 100;
      console.log(
        `${name.padEnd(26)} speaker ${params.speakerF0Hz.toFixed(0)} Hz ${params.speakerSyllableRatePerSec.toFixed(2)} syl/s → ${params.espeakVoice} -p ${params.pitch} -s ${params.speedWpm}` +
          ` → voice ${out.medianF0Hz!.toFixed(0)} Hz (${error >= 0 ? '+' : ''}${error.toFixed(0)}%) ${out.syllableRatePerSec.toFixed(2)} syl/s`,
      );
    }
  }
  for (const text of ['I hear you.', REPLY, `${REPLY} ${REPLY} ${REPLY}`]) {
    const times: number[] = [];
    let audioSec = 0;
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const out = await tts.synthesize({ text, voice: { provider: 'local', voiceId: 'x', approximate: true, label: '', params: { espeakVoice: 'en-us+f3', pitch: 55, speedWpm: 160 } } });
      times.push(performance.now() - started);
      audioSec = (out.bytes.length - 44) / 2 / 22050;
    }
    times.sort((a, b) => a - b);
    console.log(`synthesis of ${text.length} characters (${audioSec.toFixed(1)} s of audio): median ${times[2]!.toFixed(0)} ms`);
  }
}

await main();
