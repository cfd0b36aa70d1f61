import { describe, expect, it } from 'vitest';
import { analyseSample } from '../../../src/core/audio/analysis.js';
import { parseWavHeader, wavToPcm } from '../../../src/core/audio/wav.js';
import { DependencyError, ProviderError } from '../../../src/core/errors.js';
import type { ClonedVoice } from '../../../src/core/providers.js';
import { EspeakSpeechSynthesizer, espeakArgs, fixStreamedWavSizes, parseEspeakParams } from '../../../src/providers/local/espeak.js';
import { toPcm } from '../../helpers/audio.js';

const tts = new EspeakSpeechSynthesizer();

function localVoice(params: Record<string, unknown>): ClonedVoice {
  return { provider: 'local', voiceId: 'espeak:test', params, approximate: true, label: 'test voice' };
}

/** Analysis of synthesised WAV bytes at 16 kHz. */
function analyse(bytes: Buffer) {
  return analyseSample(toPcm(bytes, 16000));
}

describe('EspeakSpeechSynthesizer', () => {
  it('returns a valid WAV with speech in the default voice, and counts characters', async () => {
    const text = 'Hello! This is your twin speaking, in the default offline voice.';
    const out = await tts.synthesize({ text });
    expect(out.characters).toBe(text.length);
    const header = parseWavHeader(out.bytes);
    expect(header).toMatchObject({ sampleRateHz: 22050, channels: 1, bitsPerSample: 16 });
    // The RIFF and data sizes are real, not espeak-ng's streaming placeholders.
    expect(out.bytes.readUInt32LE(4)).toBe(out.bytes.length - 8);
    const pcm = wavToPcm(out.bytes);
    expect(pcm.samples.length * 2 + 44).toBe(out.bytes.length);
    const analysis = analyse(out.bytes);
    expect(analysis.durationSec).toBeGreaterThan(2.5);
    expect(analysis.speechSec).toBeGreaterThan(2);
    expect(analysis.voicedRatio).toBeGreaterThan(0.3);
  });

  it('counts characters as code points and passes any text safely (no shell, no options)', async () => {
    const tricky = '-v de --version $(rm -rf /) `echo hi` "quoted" & <b>bold</b> ; | 😀 café';
    const out = await tts.synthesize({ text: tricky });
    expect(out.characters).toBe([...tricky].length);
    expect(analyse(out.bytes).speechSec).toBeGreaterThan(2);
  });

  it('speaks with the pitch and speed of a local voice', async () => {
    const text = 'The weather was lovely today, so we walked along the river and talked for hours.';
    const low = analyse((await tts.synthesize({ text, voice: localVoice({ espeakVoice: 'en-us+m3', pitch: 20, speedWpm: 130 }) })).bytes);
    const high = analyse((await tts.synthesize({ text, voice: localVoice({ espeakVoice: 'en-us+f3', pitch: 80, speedWpm: 260 }) })).bytes);
    expect(low.medianF0Hz!).toBeLessThan(100);
    expect(high.medianF0Hz!).toBeGreaterThan(220);
    expect(high.durationSec).toBeLessThan(low.durationSec * 0.7);
  });

  it('narrows or widens intonation with pitchRange through SSML, escaping markup in the text', async () => {
    const text = 'Is this <really> flat & level? Yes, it is! Then tell me, why does it rise and fall so much?';
    const flat = await tts.synthesize({ text, voice: localVoice({ espeakVoice: 'en-us+m3', pitchRange: 0 }) });
    const wide = await tts.synthesize({ text, voice: localVoice({ espeakVoice: 'en-us+m3', pitchRange: 99 }) });
    const flatAnalysis = analyse(flat.bytes);
    const wideAnalysis = analyse(wide.bytes);
    // Markup characters were escaped, so the whole text was spoken (not swallowed as tags).
    expect(flatAnalysis.speechSec).toBeGreaterThan(4);
    expect(flatAnalysis.pitchStability).toBeGreaterThan(wideAnalysis.pitchStability + 0.2);
  });

  it('uses the default voice for a voice of another provider', async () => {
    const text = 'Same words, same default voice.';
    const plain = await tts.synthesize({ text });
    const foreign = await tts.synthesize({ text, voice: { provider: 'elevenlabs', voiceId: 'abc', params: {}, approximate: false, label: 'x' } });
    expect(foreign.bytes.equals(plain.bytes)).toBe(true);
  });

  it('switches language when espeak-ng has it and keeps the voice otherwise', async () => {
    const text = 'Guten Morgen, wie geht es dir heute?';
    const voice = localVoice({ espeakVoice: 'en-us+f3', pitch: 50 });
    const english = await tts.synthesize({ text, voice });
    const german = await tts.synthesize({ text, voice, languageCode: 'de-DE' });
    const unknown = await tts.synthesize({ text, voice, languageCode: 'tlh' });
    const englishSameRegion = await tts.synthesize({ text, voice, languageCode: 'en-US' });
    expect(german.bytes.equals(english.bytes)).toBe(false);
    expect(unknown.bytes.equals(english.bytes)).toBe(true);
    expect(englishSameRegion.bytes.equals(english.bytes)).toBe(true);
  });

  it('throws ProviderError for blank text, silent output and invalid voice parameters', async () => {
    await expect(tts.synthesize({ text: '   ' })).rejects.toBeInstanceOf(ProviderError);
    await expect(tts.synthesize({ text: '...' })).rejects.toThrow(/no audible speech/);
    for (const params of [{ espeakVoice: '--version' }, { espeakVoice: 'en-us; rm -rf /' }, { espeakVoice: 'en-us', pitch: 120 }, { espeakVoice: 'en-us', speedWpm: 20 }, {}]) {
      await expect(tts.synthesize({ text: 'hello', voice: localVoice(params) })).rejects.toThrow(/invalid espeak-ng voice parameter/);
    }
  });

  it('throws DependencyError with the install hint when espeak-ng is missing', async () => {
    const missing = new EspeakSpeechSynthesizer({ binaryPath: '/nonexistent/espeak-ng' });
    const err = await missing.synthesize({ text: 'hello' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DependencyError);
    expect((err as DependencyError).message).toMatch(/espeak-ng is not available: install espeak-ng: `apt-get install espeak-ng`/);
  });

  it('honours abort', async () => {
    await expect(tts.synthesize({ text: 'hello', signal: AbortSignal.abort(new Error('stop')) })).rejects.toThrow('stop');
  });
});

describe('espeak-ng helpers', () => {
  it('parses and validates voice parameters', () => {
    expect(parseEspeakParams({ espeakVoice: 'en-us+m3', pitch: 41.6, speedWpm: 150, pitchRange: 30, speakerF0Hz: 120 })).toEqual({ espeakVoice: 'en-us+m3', pitch: 42, speedWpm: 150, pitchRange: 30 });
    expect(() => parseEspeakParams({ espeakVoice: 'en-us', pitchRange: -1 })).toThrow(ProviderError);
    expect(espeakArgs({ espeakVoice: 'en-us+f3', pitch: 60, speedWpm: 170 })).toEqual(['--stdout', '--stdin', '-b', '1', '-v', 'en-us+f3', '-p', '60', '-s', '170']);
    expect(espeakArgs({ espeakVoice: 'en-us', pitchRange: 20 })).toContain('-m');
    expect(espeakArgs({ espeakVoice: 'en-us', pitchRange: 50 })).not.toContain('-m');
  });

  it('fixes the sizes of a streamed WAV and rejects non-WAV bytes', () => {
    const streamed = Buffer.alloc(44 + 10);
    streamed.write('RIFF', 0, 'latin1');
    streamed.writeUInt32LE(0x7ffff000, 4);
    streamed.write('WAVEfmt ', 8, 'latin1');
    streamed.writeUInt32LE(16, 16);
    streamed.write('data', 36, 'latin1');
    streamed.writeUInt32LE(0x7ffff000, 40);
    const fixed = fixStreamedWavSizes(Buffer.concat([streamed, Buffer.from([1])]))!;
    expect(fixed.length).toBe(54);
    expect(fixed.readUInt32LE(4)).toBe(46);
    expect(fixed.readUInt32LE(40)).toBe(10);
    expect(fixStreamedWavSizes(Buffer.from('OggS and more bytes here'))).toBeUndefined();
  });
});
