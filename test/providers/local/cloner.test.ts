import { describe, expect, it } from 'vitest';
import { analyseSample } from '../../../src/core/audio/analysis.js';
import { ProviderError } from '../../../src/core/errors.js';
import type { CloneSample, ClonedVoice, PcmAudio } from '../../../src/core/providers.js';
import { expectedF0Hz, pitchForF0, speedForSyllableRate, variantForF0 } from '../../../src/providers/local/calibration.js';
import { EspeakPreviewCloner, type PreviewVoiceParams } from '../../../src/providers/local/cloner.js';
import { EspeakSpeechSynthesizer } from '../../../src/providers/local/espeak.js';
import { makeSpeechWav, toPcm } from '../../helpers/audio.js';
import { describeIfSpeech, readSpeech } from '../../helpers/speech.js';

const cloner = new EspeakPreviewCloner();
const tts = new EspeakSpeechSynthesizer();

/** A reply long enough for a stable pitch measurement (about 8 s). */
const REPLY_TEXT =
  'Thanks for telling me about your day. It sounds like the meeting went better than you expected, and I am glad. ' +
  'Tomorrow you could take a short walk before work and see how that feels.';

function samples(pcms: PcmAudio[]): CloneSample[] {
  return pcms.map((pcm, i) => ({ id: `s${i}`, pcm, speechSec: analyseSample(pcm).speechSec }));
}

/** Median F0 (Hz) of `voice` speaking REPLY_TEXT, measured the same way as the speaker. */
async function voiceF0Hz(voice: ClonedVoice): Promise<number> {
  const out = await tts.synthesize({ text: REPLY_TEXT, voice });
  return analyseSample(toPcm(out.bytes, 16000)).medianF0Hz!;
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

describe('EspeakPreviewCloner on generated speakers', () => {
  // Two synthetic "speakers" with known settings: a low slow voice and a high fast one.
  const lowSlow = [
    toPcm(makeSpeechWav('My name is Sam and I grew up near the coast, where the wind never stops.', { voice: 'en-us+m1', pitch: 25, speedWpm: 130 })),
    toPcm(makeSpeechWav('Every morning I walk the dog before breakfast and listen to the radio.', { voice: 'en-us+m1', pitch: 25, speedWpm: 130 })),
  ];
  const highFast = [
    toPcm(makeSpeechWav('My name is Alex and I grew up in the city, where nothing is ever quiet.', { voice: 'en-us+f2', pitch: 70, speedWpm: 230 })),
    toPcm(makeSpeechWav('Every evening I cook something new and call my sister for a chat.', { voice: 'en-us+f2', pitch: 70, speedWpm: 230 })),
  ];

  it('labels the voice honestly as an approximation with a stable id', async () => {
    const voice = await cloner.clone({ userId: 'u1', samples: samples(lowSlow) });
    const params = voice.params as unknown as PreviewVoiceParams;
    expect(voice).toMatchObject({ provider: 'local', approximate: true });
    expect(voice.voiceId).toMatch(/^espeak:[0-9a-f]{12}$/);
    expect(voice.label).toBe(`offline preview voice (espeak-ng, ${Math.round(params.speakerF0Hz)} Hz, ${params.speedWpm} wpm) — an approximation, not a neural clone`);
    expect((await cloner.clone({ userId: 'u1', samples: samples(lowSlow) })).voiceId).toBe(voice.voiceId);
    expect((await cloner.clone({ userId: 'u2', samples: samples(lowSlow) })).voiceId).not.toBe(voice.voiceId);
    expect(cloner.minSpeechSec).toBe(20);
    expect(new EspeakPreviewCloner({ minSpeechSec: 8 }).minSpeechSec).toBe(8);
  });

  it('follows pitch and rate: lower and slower speaker → lower pitch, male variant, fewer wpm', async () => {
    const low = (await cloner.clone({ userId: 'u', samples: samples(lowSlow) })).params as unknown as PreviewVoiceParams;
    const high = (await cloner.clone({ userId: 'u', samples: samples(highFast) })).params as unknown as PreviewVoiceParams;
    expect(low.espeakVoice).toBe('en-us+m3');
    expect(high.espeakVoice).toBe('en-us+f3');
    expect(low.speakerF0Hz).toBeLessThan(high.speakerF0Hz);
    expect(low.speedWpm).toBeLessThan(high.speedWpm);
    // The chosen rate lands near the rate the samples were spoken at (same engine, other variant).
    expect(low.speedWpm).toBeGreaterThan(130 * 0.75);
    expect(low.speedWpm).toBeLessThan(130 * 1.25);
    expect(high.speedWpm).toBeGreaterThan(230 * 0.75);
    expect(high.speedWpm).toBeLessThan(230 * 1.25);
  });

  it('speaks at the measured pitch of each speaker (within ±25%)', async () => {
    for (const pcms of [lowSlow, highFast]) {
      const voice = await cloner.clone({ userId: 'u', samples: samples(pcms) });
      const target = (voice.params as unknown as PreviewVoiceParams).speakerF0Hz;
      const actual = await voiceF0Hz(voice);
      expect(Math.abs(actual - target) / target, `speaker ${target} Hz, voice ${actual} Hz`).toBeLessThan(0.25);
    }
  });

  it('refuses samples without voiced speech and an empty sample list', async () => {
    await expect(cloner.clone({ userId: 'u', samples: [] })).rejects.toBeInstanceOf(ProviderError);
    const silence: PcmAudio = { samples: new Int16Array(16000 * 3), sampleRateHz: 16000 };
    await expect(cloner.clone({ userId: 'u', samples: samples([silence]) })).rejects.toThrow(/no voiced speech/);
    await expect(cloner.clone({ userId: 'u', samples: samples(lowSlow), signal: AbortSignal.abort(new Error('gone')) })).rejects.toThrow('gone');
  });
});

describeIfSpeech('EspeakPreviewCloner on real speakers', () => {
  const lj = ['LJ001-0001', 'LJ001-0004', 'LJ001-0005', 'LJ001-0006', 'LJ001-0009', 'LJ001-0011'].map((id) => toPcm(readSpeech(`coqui-tts-ljspeech/${id}.wav`)));
  const libriMale = ['0001', '0003', '0009'].map((id) => toPcm(readSpeech(`resemblyzer-librispeech/2033-164914-${id}.flac`)));
  const jfk = [toPcm(readSpeech('openai-whisper/jfk.flac'))];

  it('gives a male LibriSpeech reader (2033) a lower, male-variant voice than the female LJSpeech reader', async () => {
    const male = (await cloner.clone({ userId: 'm', samples: samples(libriMale) })).params as unknown as PreviewVoiceParams;
    const female = (await cloner.clone({ userId: 'f', samples: samples(lj) })).params as unknown as PreviewVoiceParams;
    expect(male.espeakVoice).toBe('en-us+m3');
    expect(female.espeakVoice).toBe('en-us+f3');
    expect(male.speakerF0Hz).toBeLessThan(female.speakerF0Hz);
    expect(expectedF0Hz(male.espeakVoice, male.pitch)).toBeLessThan(expectedF0Hz(female.espeakVoice, female.pitch));
  });

  it('matches JFK, LJSpeech and LibriSpeech 2033 in pitch within ±25%', async () => {
    for (const [name, pcms] of [['jfk', jfk], ['lj', lj], ['2033', libriMale]] as const) {
      const voice = await cloner.clone({ userId: name, samples: samples([...pcms]) });
      const target = (voice.params as unknown as PreviewVoiceParams).speakerF0Hz;
      const actual = await voiceF0Hz(voice);
      expect(Math.abs(actual - target) / target, `${name}: speaker ${target} Hz, voice ${actual} Hz`).toBeLessThan(0.25);
    }
  });

  it('measures the JFK clip as high-pitched (declaimed outdoors, about 234 Hz) and slow', async () => {
    // The inaugural clip is shouted: its median F0 is above LJSpeech's, so by pitch it gets the
    // higher variant. Slower delivery than LJSpeech shows up as fewer words per minute.
    const jfkParams = (await cloner.clone({ userId: 'jfk', samples: samples(jfk) })).params as unknown as PreviewVoiceParams;
    const ljParams = (await cloner.clone({ userId: 'lj', samples: samples(lj) })).params as unknown as PreviewVoiceParams;
    expect(jfkParams.speakerF0Hz).toBeGreaterThan(200);
    expect(jfkParams.speedWpm).toBeLessThan(ljParams.speedWpm);
  });
});
