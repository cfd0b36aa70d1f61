/**
 * Bench section `offline` (part 2): the offline preview voice, measured.
 *
 * 1. Intelligibility: each engine/voice speaks {@link OFFLINE_SENTENCES} (12 sentences, 124 words),
 *    pocketsphinx (the offline recogniser, US English) decodes each sentence back, and the round-trip
 *    word error rate is reported — a rough proxy for how easy the voice is to understand. Engines:
 *    espeak-ng (the previous preview voice), flite `rms`/`awb`/`slt` at their own settings, and
 *    festival's HTS `slt` when `text2wave` is installed (it is not a dependency).
 * 2. Matching, per real speaker of the shared speech folder (`VOICETWIN_SPEECH_DIR`, default
 *    `../shared/data/speech` next to the repository; the section says so and skips this part when
 *    it is absent): the speaker's median F0 and syllable rate from their clips, the preview voice the
 *    cloner makes from them, and that voice's median F0 and syllable rate on the sentence set (not on
 *    the fit text, so this checks that the fit carries over to other text), with the relative errors
 *    against the goals (F0 within 5%, rate within 10%), plus the voice's round-trip WER (goal ≤ 30%).
 * 3. Speed: synthesis real-time factor (wall-clock seconds of synthesis per second of audio) per
 *    voice, and the clone (fit) time per speaker. Timings depend on the machine's load.
 */
import { normaliseWords, wordEdits } from '../test/providers/local/wer.js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyseSample, concatPcm, decodeToPcm } from '../src/core/audio/index.js';
import type { ClonedVoice, PcmAudio, SpeechSynthesizer } from '../src/core/providers.js';
import { OfflinePreviewCloner, type PreviewVoiceParams } from '../src/providers/local/cloner.js';
import { PocketsphinxSpeechToText } from '../src/providers/local/pocketsphinx.js';
import { LocalSpeechSynthesizer } from '../src/providers/local/synthesizer.js';

/** The fixed sentence set every voice speaks (12 sentences, 124 words). */
export const OFFLINE_SENTENCES = [
  'Thanks for telling me about your day.',
  'It sounds like the meeting went better than you expected.',
  'Tomorrow you could take a short walk before work.',
  'I remember that your sister lives near the river.',
  'What would make this weekend feel restful for you?',
  'Try writing down three small things that went well.',
  'The weather should be warm and sunny on Saturday.',
  'Your new job starts in the middle of next month.',
  'Cooking dinner with friends is a lovely way to relax.',
  'Let us take one step at a time and see how it goes.',
  'Reading a good book before bed can help you sleep.',
  'Call me again tonight if you want to talk it through.',
];

/** Real speakers: clips of one person each, from the shared speech folder's MANIFEST.tsv. */
const SPEAKERS: Record<string, string[]> = {
  'JFK (M, inaugural)': ['openai-whisper/jfk.flac'],
  'LJSpeech (F)': ['LJ001-0001', 'LJ001-0004', 'LJ001-0005', 'LJ001-0006', 'LJ001-0009', 'LJ001-0011'].map((id) => `coqui-tts-ljspeech/${id}.wav`),
  'LibriSpeech 2033 (M)': ['0001', '0003', '0009'].map((id) => `resemblyzer-librispeech/2033-164914-${id}.flac`),
  'LibriSpeech 1998 (F)': ['0001', '0003', '0009'].map((id) => `resemblyzer-librispeech/1998-15444-${id}.flac`),
  'LibriSpeech 1995 (F)': ['wenet/librispeech-1995-1837-0001.wav'],
  'LibriSpeech 2412 (F)': ['lhotse/2412-153948-0000.flac'],
  'speechbrain example5 (M)': ['speechbrain/example5.wav'],
};

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The speech folder: `VOICETWIN_SPEECH_DIR`, else `../shared/data/speech` next to the repository. */
function speechDir(): string {
  return process.env.VOICETWIN_SPEECH_DIR ?? path.resolve(repoRoot, '../shared/data/speech');
}

const round = (value: number, digits = 1): number => Math.round(value * 10 ** digits) / 10 ** digits;

type Speak = (text: string) => Promise<Buffer>;

interface VoiceResult {
  werPct: number;
  medianF0Hz: number;
  syllableRatePerSec: number;
  rtf: number;
  audioSec: number;
}

/** Speaks the sentence set with `speak`, decodes it back, measures F0, rate, WER and RTF. */
async function measureVoice(speak: Speak, stt: PocketsphinxSpeechToText): Promise<VoiceResult> {
  const pcms: PcmAudio[] = [];
  let synthSec = 0;
  for (const sentence of OFFLINE_SENTENCES) {
    const started = performance.now();
    const wav = await speak(sentence);
    synthSec += (performance.now() - started) / 1000;
    pcms.push(await decodeToPcm(wav, { sampleRateHz: 16000 }));
  }
  let errors = 0;
  let total = 0;
  const hypotheses = await Promise.all(pcms.map((pcm) => stt.transcribe(pcm)));
  OFFLINE_SENTENCES.forEach((sentence, i) => {
    const reference = normaliseWords(sentence);
    errors += wordEdits(reference, normaliseWords(hypotheses[i]!.text));
    total += reference.length;
  });
  const joined = concatPcm(pcms, 0.3);
  const analysis = analyseSample(joined);
  const audioSec = pcms.reduce((sum, p) => sum + p.samples.length / p.sampleRateHz, 0);
  return { werPct: round((errors / total) * 100), medianF0Hz: round(analysis.medianF0Hz ?? 0), syllableRatePerSec: round(analysis.syllableRatePerSec, 2), rtf: round(synthSec / audioSec, 3), audioSec: round(audioSec) };
}

function run(command: string, args: string[]): Buffer {
  const result = spawnSync(command, args, { maxBuffer: 1 << 28 });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr.toString().slice(-500)}`);
  return result.stdout;
}

/** festival's HTS slt voice through text2wave, when installed (not a dependency; for comparison only). */
function festivalSpeak(): Speak | undefined {
  if (spawnSync('text2wave', ['-h']).error || !existsSync('/usr/share/festival/voices/us/cmu_us_slt_arctic_hts')) return undefined;
  return async (text) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bench-festival-'));
    try {
      writeFileSync(path.join(dir, 'in.txt'), text);
      run('text2wave', ['-eval', '(voice_cmu_us_slt_arctic_hts)', '-o', path.join(dir, 'out.wav'), path.join(dir, 'in.txt')]);
      return readFileSync(path.join(dir, 'out.wav'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function voice(params: Record<string, unknown>): ClonedVoice {
  return { provider: 'local', voiceId: 'bench', approximate: true, label: 'bench', params };
}

/** Runs the section; see the module comment. */
export async function benchOfflineVoice(): Promise<Record<string, unknown>> {
  const stt = new PocketsphinxSpeechToText({ maxConcurrent: 2 });
  const tts: SpeechSynthesizer = new LocalSpeechSynthesizer({ engine: 'flite' });
  const espeak: SpeechSynthesizer = new LocalSpeechSynthesizer({ engine: 'espeak-ng' });
  const say = (synth: SpeechSynthesizer, params?: Record<string, unknown>): Speak => async (text) => (await synth.synthesize({ text, ...(params ? { voice: voice(params) } : {}) })).bytes;

  const engines: Record<string, Speak> = {
    'espeak-ng en-us (previous default)': say(espeak),
    'flite rms (default voice)': say(tts, { fliteVoice: 'rms' }),
    'flite awb': say(tts, { fliteVoice: 'awb' }),
    'flite slt': say(tts, { fliteVoice: 'slt' }),
  };
  const festival = festivalSpeak();
  if (festival) engines['festival slt HTS'] = festival;
  const engineResults: Record<string, VoiceResult> = {};
  for (const [name, speak] of Object.entries(engines)) engineResults[name] = await measureVoice(speak, stt);

  const dir = speechDir();
  if (!existsSync(path.join(dir, 'MANIFEST.tsv'))) {
    return { sentences: OFFLINE_SENTENCES.length, engines: engineResults, speakers: `skipped: no speech clips at ${dir}; set VOICETWIN_SPEECH_DIR` };
  }
  const cloner = new OfflinePreviewCloner({ engine: 'flite' });
  const speakers: Record<string, unknown> = {};
  let met = 0;
  for (const [name, clips] of Object.entries(SPEAKERS)) {
    if (!clips.every((clip) => existsSync(path.join(dir, clip)))) {
      speakers[name] = 'skipped: clip missing';
      continue;
    }
    const samples = await Promise.all(
      clips.map(async (clip, i) => {
        const pcm = await decodeToPcm(readFileSync(path.join(dir, clip)), { sampleRateHz: 16000 });
        return { id: String(i), pcm, speechSec: analyseSample(pcm).speechSec };
      }),
    );
    const started = performance.now();
    const cloned = await cloner.clone({ userId: name, samples });
    const cloneSec = (performance.now() - started) / 1000;
    const params = cloned.params as unknown as PreviewVoiceParams;
    const result = await measureVoice(say(tts, cloned.params), stt);
    const f0ErrorPct = round((result.medianF0Hz / params.speakerF0Hz - 1) * 100);
    const rateErrorPct = round((result.syllableRatePerSec / params.speakerSyllableRatePerSec - 1) * 100);
    const ok = Math.abs(f0ErrorPct) <= 5 && Math.abs(rateErrorPct) <= 10 && result.werPct <= 30;
    if (ok) met++;
    speakers[name] = {
      speaker: { medianF0Hz: params.speakerF0Hz, syllableRatePerSec: params.speakerSyllableRatePerSec, speechSec: round(samples.reduce((s, x) => s + x.speechSec, 0)) },
      voice: { fliteVoice: params.fliteVoice, f0TargetHz: params.f0TargetHz, durationStretch: params.durationStretch, fitF0Hz: params.fitF0Hz, fitSyllableRatePerSec: params.fitSyllableRatePerSec },
      onSentences: result,
      f0ErrorPct,
      rateErrorPct,
      cloneSec: round(cloneSec, 2),
      goalsMet: ok,
    };
  }
  return {
    sentences: OFFLINE_SENTENCES.length,
    words: OFFLINE_SENTENCES.reduce((sum, s) => sum + normaliseWords(s).length, 0),
    goals: { werPct: 30, f0ErrorPct: 5, rateErrorPct: 10 },
    engines: engineResults,
    speakers,
    speakersMeetingGoals: met,
  };
}
