/**
 * Measures espeak-ng's own output to calibrate the offline preview voice
 * (src/providers/local/calibration.ts holds the resulting tables).
 *
 * Method: espeak-ng speaks CALIBRATION_TEXT (three ordinary sentences, 44 words) to WAV at its
 * native 22.05 kHz; ffmpeg resamples it to 16 kHz mono; `analyseSample` (src/core/audio, the same
 * analysis the cloner runs on enrollment samples) measures the median F0 of voiced speech frames
 * and the syllable-nucleus rate per second of speech.
 * - Pitch: for each variant (`en-us+m3`, `en-us+f3`) at the default speed (175 wpm), `-p` from 0 to
 *   99 in steps of 10 (plus 99).
 * - Rate: for the neutral `en-us` voice at `-p 50`, `-s` from 80 to 450 words per minute.
 *
 * Run: `npx tsx test/providers/local/calibrate-espeak.ts` (needs espeak-ng and ffmpeg).
 */
import { spawnSync } from 'node:child_process';
import { analyseSample } from '../../../src/core/audio/analysis.js';
import { wavToPcm } from '../../../src/core/audio/wav.js';

/** The text every calibration run speaks. */
export const CALIBRATION_TEXT =
  'Yesterday I walked along the river with my sister, and we talked about the garden, the weather and our plans for the summer. ' +
  'She thinks we should travel north this year. I would rather stay at home, read a few good books and finally learn to cook properly.';

function run(command: string, args: string[], input?: Buffer): Buffer {
  const result = spawnSync(command, args, { input, maxBuffer: 1 << 28 });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr.toString()}`);
  return result.stdout;
}

/** Median F0 (Hz) and syllable rate (per second of speech) of espeak-ng speaking `text` with `args`. */
export function measureEspeak(args: string[], text = CALIBRATION_TEXT): { medianF0Hz: number; syllableRatePerSec: number } {
  const wav = run('espeak-ng', ['--stdout', ...args, '--', text]);
  const wav16k = run('ffmpeg', ['-v', 'error', '-nostdin', '-i', 'pipe:0', '-ac', '1', '-ar', '16000', '-f', 'wav', 'pipe:1'], wav);
  const analysis = analyseSample(wavToPcm(wav16k));
  return { medianF0Hz: analysis.medianF0Hz ?? 0, syllableRatePerSec: analysis.syllableRatePerSec };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const variant of ['en-us+m3', 'en-us+f3']) {
    const rows: string[] = [];
    for (const pitch of [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99]) {
      const m = measureEspeak(['-v', variant, '-p', String(pitch)]);
      rows.push(`[${pitch}, ${m.medianF0Hz.toFixed(1)}]`);
    }
    console.log(`${variant} pitch → medianF0Hz: ${rows.join(', ')}`);
  }
  for (const variant of ['en-us+m3', 'en-us+f3']) {
    const rows: string[] = [];
    for (const speedWpm of [80, 100, 120, 140, 160, 175, 200, 225, 250, 300, 350, 400, 450]) {
      const m = measureEspeak(['-v', variant, '-p', '50', '-s', String(speedWpm)]);
      rows.push(`[${speedWpm}, ${m.syllableRatePerSec.toFixed(2)}]`);
    }
    console.log(`${variant} speedWpm → syllableRatePerSec: ${rows.join(', ')}`);
  }
}
