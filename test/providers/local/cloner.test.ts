import { describe, expect, it } from 'vitest';
import { analyseSample } from '../../../src/core/audio/analysis.js';
import { ProviderError } from '../../../src/core/errors.js';
import type { CloneSample, ClonedVoice, PcmAudio } from '../../../src/core/providers.js';
import { expectedF0Hz, FIT_MIN_DURATION_STRETCH, pitchForF0, speedForSyllableRate, variantForF0 } from '../../../src/providers/local/calibration.js';
import { FIT_TEXT, OfflinePreviewCloner, type PreviewVoiceParams } from '../../../src/providers/local/cloner.js';
import { LocalSpeechSynthesizer } from '../../../src/providers/local/synthesizer.js';
import { makeSpeechWav, toPcm } from '../../helpers/audio.js';
import { describeIfSpeech, readSpeech } from '../../helpers/speech.js';

const cloner = new OfflinePreviewCloner({ engine: 'flite' });
const tts = new LocalSpeechSynthesizer({ engine: 'flite' });

/** A reply long enough for stable pitch and rate measurements (about 17 s); other words than the fit text. */
const REPLY_TEXT =
  'Thanks for telling me about your day. It sounds like the meeting went better than you expected, and I am glad. ' +
  'Tomorrow you could take a short walk before work and see how that feels. ' +
  'I remember that your sister lives near the river, so maybe you could visit her on Sunday. ' +
  'Cooking dinner with friends is a lovely way to relax after a busy week. Let me know what you decide.';

function samples(pcms: PcmAudio[]): CloneSample[] {
  return pcms.map((pcm, i) => ({ id: `s${i}`, pcm, speechSec: analyseSample(pcm).speechSec }));
}

/** Median F0 (Hz) and syllable rate of `voice` speaking REPLY_TEXT, measured the same way as the speaker. */
async function voiceTraits(voice: ClonedVoice): Promise<{ f0Hz: number; rate: number }> {
  const out = await tts.synthesize({ text: REPLY_TEXT, voice });
  const analysis = analyseSample(toPcm(out.bytes, 16000));
  return { f0Hz: analysis.medianF0Hz!, rate: analysis.syllableRatePerSec };
}

/** Asserts that `voice` speaks REPLY_TEXT within 5% of the speaker's F0 and 10% of their rate. */
async function expectMatched(name: string, voice: ClonedVoice): Promise<void> {
  const params = voice.params as unknown as PreviewVoiceParams;
  const { f0Hz, rate } = await voiceTraits(voice);
  const where = `${name}: speaker ${params.speakerF0Hz} Hz ${params.speakerSyllableRatePerSec} syl/s, voice ${f0Hz.toFixed(1)} Hz ${rate.toFixed(2)} syl/s`;
  expect(Math.abs(f0Hz / params.speakerF0Hz - 1), where).toBeLessThan(0.05);
  expect(Math.abs(rate / params.speakerSyllableRatePerSec - 1), where).toBeLessThan(0.1);
}

describe('calibration tables', () => {
  it('inverts the pitch and rate tables monotonically and clamps to espeak-ng ranges', () => {
    expect(variantForF0(110)).toBe('en-us+m3');
    expect(variantForF0(210)).toBe('en-us+f3');
    expect(pitchForF0('en-us+m3', 104.9)).toBe(50);
    expect(pitchForF0('en-us+f3', 206.9)).toBe(50);
    expect(pitchForF0('en-us+m3', 40)).toBe(0);
    expect(pitchForF0('en-us+f3', 500)).toBe(99);
    expect(expectedF0Hz('en-us+m3', pitchForF0('en-us+m3', 120))).toBeCloseTo(120, -1);
    expect(speedForSyllableRate('en-us+m3', 4.67)).toBe(175);
    expect(speedForSyllableRate('en-us+f3', 2)).toBe(80);
    expect(speedForSyllableRate('en-us+f3', 20)).toBe(450);
    let previous = 0;
    for (let rate = 2.5; rate <= 8.5; rate += 0.5) {
      const wpm = speedForSyllableRate('en-us+m3', rate);
      expect(wpm).toBeGreaterThanOrEqual(previous);
      previous = wpm;
    }
  });
});

describe('OfflinePreviewCloner on generated speakers', () => {
  // Two synthetic "speakers" with known settings within the range of ordinary speech (about
  // 85 Hz and 3.8 syllables/s; 210 Hz and 4.8 syllables/s): a low slow voice and a high fast one.
  const lowSlow = [
    toPcm(makeSpeechWav('My name is Sam and I grew up near the coast, where the wind never stops.', { voice: 'en-us+m1', pitch: 40, speedWpm: 140 })),
    toPcm(makeSpeechWav('Every morning I walk the dog before breakfast and listen to the radio.', { voice: 'en-us+m1', pitch: 40, speedWpm: 140 })),
  ];
  const highFast = [
    toPcm(makeSpeechWav('My name is Alex and I grew up in the city, where nothing is ever quiet.', { voice: 'en-us+f2', pitch: 60, speedWpm: 170 })),
    toPcm(makeSpeechWav('Every evening I cook something new and call my sister for a chat.', { voice: 'en-us+f2', pitch: 60, speedWpm: 170 })),
  ];

  it('labels the voice honestly as an approximation with a stable id', async () => {
    const voice = await cloner.clone({ userId: 'u1', samples: samples(lowSlow) });
    const params = voice.params as unknown as PreviewVoiceParams;
    expect(voice).toMatchObject({ provider: 'local', approximate: true });
    expect(voice.voiceId).toMatch(/^flite:[0-9a-f]{12}$/);
    expect(voice.label).toBe(
      `offline preview voice (flite ${params.fliteVoice}, ${Math.round(params.speakerF0Hz)} Hz, ${params.speakerSyllableRatePerSec.toFixed(1)} syllables/s) — an approximation, not a neural clone`,
    );
    expect((await cloner.clone({ userId: 'u1', samples: samples(lowSlow) })).voiceId).toBe(voice.voiceId);
    expect((await cloner.clone({ userId: 'u2', samples: samples(lowSlow) })).voiceId).not.toBe(voice.voiceId);
    expect(cloner.minSpeechSec).toBe(20);
    expect(new OfflinePreviewCloner({ minSpeechSec: 8 }).minSpeechSec).toBe(8);
  });

  it('chooses the voice by pitch: lower speaker → male awb, higher → female slt, each with espeak-ng fallback settings', async () => {
    const low = (await cloner.clone({ userId: 'u', samples: samples(lowSlow) })).params as unknown as PreviewVoiceParams;
    const high = (await cloner.clone({ userId: 'u', samples: samples(highFast) })).params as unknown as PreviewVoiceParams;
    expect(low.fliteVoice).toBe('awb');
    expect(high.fliteVoice).toBe('slt');
    expect(low.f0TargetHz!).toBeLessThan(high.f0TargetHz!);
    // The faster speaker gets the shorter durations.
    expect(high.durationStretch!).toBeLessThan(low.durationStretch!);
    expect(low.espeakVoice).toBe('en-us+m3');
    expect(high.espeakVoice).toBe('en-us+f3');
    expect(low.speedWpm).toBeLessThan(high.speedWpm);
  });

  it('speaks other text than the fit text within 5% of each speaker’s F0 and 10% of their syllable rate', async () => {
    expect(REPLY_TEXT).not.toBe(FIT_TEXT);
    await expectMatched('low slow', await cloner.clone({ userId: 'u', samples: samples(lowSlow) }));
    await expectMatched('high fast', await cloner.clone({ userId: 'u', samples: samples(highFast) }));
  });

  it('keeps a very fast speaker intelligible: the duration stretch stops at its floor', async () => {
    const veryFast = [toPcm(makeSpeechWav('My name is Alex and I grew up in the city, where nothing is ever quiet.', { voice: 'en-us+f2', pitch: 60, speedWpm: 280 }))];
    const params = (await cloner.clone({ userId: 'u', samples: samples(veryFast) })).params as unknown as PreviewVoiceParams;
    expect(params.speakerSyllableRatePerSec).toBeGreaterThan(5.5);
    expect(params.durationStretch).toBe(FIT_MIN_DURATION_STRETCH);
  });

  it('makes an espeak-ng voice when flite is missing or the engine is espeak-ng', async () => {
    for (const other of [new OfflinePreviewCloner({ engine: 'flite', fliteBinaryPath: '/nonexistent/flite' }), new OfflinePreviewCloner({ engine: 'espeak-ng' })]) {
      const voice = await other.clone({ userId: 'u', samples: samples(lowSlow) });
      const params = voice.params as unknown as PreviewVoiceParams;
      expect(voice.voiceId).toMatch(/^espeak:[0-9a-f]{12}$/);
      expect(voice.label).toBe(`offline preview voice (espeak-ng, ${Math.round(params.speakerF0Hz)} Hz, ${params.speedWpm} wpm) — an approximation, not a neural clone`);
      expect(params.fliteVoice).toBeUndefined();
      // espeak-ng still follows the pitch within its calibration's reach.
      const out = await new LocalSpeechSynthesizer({ engine: 'espeak-ng' }).synthesize({ text: REPLY_TEXT, voice });
      const f0 = analyseSample(toPcm(out.bytes, 16000)).medianF0Hz!;
      expect(Math.abs(f0 / params.speakerF0Hz - 1)).toBeLessThan(0.25);
    }
  });

  it('refuses samples without voiced speech and an empty sample list', async () => {
    await expect(cloner.clone({ userId: 'u', samples: [] })).rejects.toBeInstanceOf(ProviderError);
    const silence: PcmAudio = { samples: new Int16Array(16000 * 3), sampleRateHz: 16000 };
    await expect(cloner.clone({ userId: 'u', samples: samples([silence]) })).rejects.toThrow(/no voiced speech/);
    await expect(cloner.clone({ userId: 'u', samples: samples(lowSlow), signal: AbortSignal.abort(new Error('gone')) })).rejects.toThrow('gone');
  });
});

describeIfSpeech('OfflinePreviewCloner on real speakers', () => {
  const lj = ['LJ001-0001', 'LJ001-0004', 'LJ001-0005', 'LJ001-0006', 'LJ001-0009', 'LJ001-0011'].map((id) => toPcm(readSpeech(`coqui-tts-ljspeech/${id}.wav`)));
  const libriMale = ['0001', '0003', '0009'].map((id) => toPcm(readSpeech(`resemblyzer-librispeech/2033-164914-${id}.flac`)));
  const libriFemale = ['0001', '0003', '0009'].map((id) => toPcm(readSpeech(`resemblyzer-librispeech/1998-15444-${id}.flac`)));
  const jfk = [toPcm(readSpeech('openai-whisper/jfk.flac'))];

  it('gives a male LibriSpeech reader (2033) the male voice at a lower pitch than the female LJSpeech reader', async () => {
    const male = (await cloner.clone({ userId: 'm', samples: samples(libriMale) })).params as unknown as PreviewVoiceParams;
    const female = (await cloner.clone({ userId: 'f', samples: samples(lj) })).params as unknown as PreviewVoiceParams;
    expect(male.fliteVoice).toBe('awb');
    expect(female.fliteVoice).toBe('slt');
    expect(male.speakerF0Hz).toBeLessThan(female.speakerF0Hz);
    expect(male.f0TargetHz!).toBeLessThan(female.f0TargetHz!);
  });

  it('matches JFK, LJSpeech and LibriSpeech 2033 and 1998 within 5% in F0 and 10% in rate on other text', async () => {
    for (const [name, pcms] of [['jfk', jfk], ['lj', lj], ['2033', libriMale], ['1998', libriFemale]] as const) {
      await expectMatched(name, await cloner.clone({ userId: name, samples: samples([...pcms]) }));
    }
  });

  it('measures the JFK clip as high-pitched (declaimed outdoors, about 234 Hz) and slower than LJSpeech', async () => {
    // The inaugural clip is shouted: its median F0 is above LJSpeech's, so by pitch it gets the
    // higher voice. Slower delivery shows up as a longer duration stretch.
    const jfkParams = (await cloner.clone({ userId: 'jfk', samples: samples(jfk) })).params as unknown as PreviewVoiceParams;
    const ljParams = (await cloner.clone({ userId: 'lj', samples: samples(lj) })).params as unknown as PreviewVoiceParams;
    expect(jfkParams.speakerF0Hz).toBeGreaterThan(200);
    expect(jfkParams.speakerSyllableRatePerSec).toBeLessThan(ljParams.speakerSyllableRatePerSec);
    expect(jfkParams.durationStretch!).toBeGreaterThan(ljParams.durationStretch!);
  });
});
