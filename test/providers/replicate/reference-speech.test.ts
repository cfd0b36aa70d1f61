/** Reference selection on real recordings from the shared speech folder (skipped when absent). */
import { expect, it } from 'vitest';
import { decodeToPcm } from '../../../src/core/audio/decode.js';
import { analyseSample } from '../../../src/core/audio/analysis.js';
import type { CloneSample } from '../../../src/core/providers.js';
import { selectReference } from '../../../src/providers/replicate/index.js';
import { describeIfSpeech, readSpeech } from '../../helpers/speech.js';

async function sampleOf(relPath: string): Promise<CloneSample> {
  const pcm = await decodeToPcm(readSpeech(relPath), { sampleRateHz: 16_000 });
  return { id: relPath, pcm, speechSec: analyseSample(pcm).speechSec };
}

describeIfSpeech('selectReference on real speech', () => {
  it('takes ≤ 15 s with ≥ 10 s of speech from one minute of conversational audio, starting on speech', async () => {
    const minute = await sampleOf('silero-vad/test.wav');
    const clip = selectReference([minute]);
    expect(clip.segments).toHaveLength(1);
    expect(clip.durationSec).toBeLessThanOrEqual(15);
    expect(clip.speechSec).toBeGreaterThanOrEqual(10);
    const firstHalfSecond = { samples: clip.pcm.samples.subarray(0, 8_000), sampleRateHz: 16_000 };
    expect(analyseSample(firstHalfSecond).speechSec).toBeGreaterThan(0.1);
  });

  it('joins several short read-speech samples of one speaker into a 10–15 s reference', async () => {
    const samples = await Promise.all(['coqui-tts-ljspeech/LJ001-0004.wav', 'coqui-tts-ljspeech/LJ001-0006.wav', 'coqui-tts-ljspeech/LJ001-0011.wav'].map(sampleOf));
    const clip = selectReference(samples);
    expect(clip.segments.length).toBeGreaterThanOrEqual(2);
    expect(clip.durationSec).toBeGreaterThanOrEqual(10);
    expect(clip.durationSec).toBeLessThanOrEqual(15);
    expect(clip.speechSec).toBeGreaterThanOrEqual(8);
  });
});
