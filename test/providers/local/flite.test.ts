import { describe, expect, it } from 'vitest';
import { analyseSample } from '../../../src/core/audio/analysis.js';
import { parseWavHeader } from '../../../src/core/audio/wav.js';
import { ProviderError } from '../../../src/core/errors.js';
import type { ClonedVoice } from '../../../src/core/providers.js';
import { fliteArgs, parseFliteParams } from '../../../src/providers/local/flite.js';
import { PocketsphinxSpeechToText } from '../../../src/providers/local/pocketsphinx.js';
import { LocalSpeechSynthesizer, offlineTtsEngine } from '../../../src/providers/local/synthesizer.js';
import { toPcm } from '../../helpers/audio.js';
import { wordErrorRate } from './wer.js';

const tts = new LocalSpeechSynthesizer({ engine: 'flite' });

function localVoice(params: Record<string, unknown>): ClonedVoice {
  return { provider: 'local', voiceId: 'flite:test', params, approximate: true, label: 'test voice' };
}

function analyse(bytes: Buffer) {
  return analyseSample(toPcm(bytes, 16000));
}

const TEXT = 'The weather was lovely today, so we walked along the river and talked for hours about the garden.';

describe('LocalSpeechSynthesizer with flite', () => {
  it('speaks words the offline recogniser can read back (round-trip word error rate at most 30%)', { timeout: 180_000 }, async () => {
    const stt = new PocketsphinxSpeechToText({ maxConcurrent: 2 });
    const sentences = ['Thanks for telling me about your day.', 'Tomorrow you could take a short walk before work.', 'Reading a good book before bed can help you sleep.'];
    for (const params of [undefined, { fliteVoice: 'awb', f0TargetHz: 110 }, { fliteVoice: 'slt', f0TargetHz: 220 }]) {
      let edits = 0;
      let words = 0;
      for (const text of sentences) {
        const out = await tts.synthesize({ text, ...(params ? { voice: localVoice(params) } : {}) });
        const heard = await stt.transcribe(toPcm(out.bytes, 16000));
        const score = wordErrorRate(text, heard.text);
        edits += score.edits;
        words += score.words;
      }
      expect(edits / words, `voice ${JSON.stringify(params ?? 'default')}`).toBeLessThanOrEqual(0.3);
    }
  });

  it('returns a 16 kHz mono WAV with speech in the default voice and counts code points', async () => {
    const text = 'Hello! This is your twin speaking, in the default offline voice. 😀';
    const out = await tts.synthesize({ text });
    expect(out.characters).toBe([...text].length);
    expect(parseWavHeader(out.bytes)).toMatchObject({ sampleRateHz: 16000, channels: 1, bitsPerSample: 16 });
    const analysis = analyse(out.bytes);
    expect(analysis.speechSec).toBeGreaterThan(2);
    expect(analysis.voicedRatio).toBeGreaterThan(0.3);
    expect(analysis.medianF0Hz).toBeGreaterThan(80);
  });

  it('passes any text safely: no shell, no options, nothing left in the argument list', async () => {
    const tricky = '-voice slt --help $(rm -rf /) `echo hi` "quoted" & <b>bold</b> ; | café';
    const out = await tts.synthesize({ text: tricky });
    expect(analyse(out.bytes).speechSec).toBeGreaterThan(2);
    const args = fliteArgs({ fliteVoice: 'slt', f0TargetHz: 200, durationStretch: 1.2 }, '/tmp/x/text.txt', '/tmp/x/speech.wav');
    expect(args).toEqual(['-voice', 'slt', '--setf', 'int_f0_target_mean=200.0', '--setf', 'duration_stretch=1.200', '-f', '/tmp/x/text.txt', '-o', '/tmp/x/speech.wav']);
  });

  it('follows the pitch target of a local voice (within 10%; the cloner fit closes the rest)', async () => {
    let previous = 0;
    for (const [fliteVoice, f0TargetHz] of [['awb', 90], ['awb', 140], ['slt', 180], ['slt', 260]] as const) {
      const f0 = analyse((await tts.synthesize({ text: TEXT, voice: localVoice({ fliteVoice, f0TargetHz }) })).bytes).medianF0Hz!;
      expect(Math.abs(f0 / f0TargetHz - 1), `${fliteVoice} at ${f0TargetHz} Hz measured ${f0} Hz`).toBeLessThan(0.1);
      expect(f0).toBeGreaterThan(previous);
      previous = f0;
    }
  });

  it('slows down and speeds up with durationStretch', async () => {
    const slow = analyse((await tts.synthesize({ text: TEXT, voice: localVoice({ fliteVoice: 'slt', durationStretch: 1.5 }) })).bytes);
    const fast = analyse((await tts.synthesize({ text: TEXT, voice: localVoice({ fliteVoice: 'slt', durationStretch: 0.7 }) })).bytes);
    expect(slow.durationSec).toBeGreaterThan(fast.durationSec * 1.8);
    expect(slow.syllableRatePerSec).toBeLessThan(fast.syllableRatePerSec);
  });

  it('uses espeak-ng for languages other than English, keeping the voice’s espeak-ng settings', async () => {
    const voice = localVoice({ fliteVoice: 'slt', f0TargetHz: 210, espeakVoice: 'en-us+f3', pitch: 55, speedWpm: 160 });
    const hindi = await tts.synthesize({ text: 'नमस्ते, आप कैसे हैं?', voice, languageCode: 'hi-IN' });
    expect(parseWavHeader(hindi.bytes)?.sampleRateHz).toBe(22050);
    expect(analyse(hindi.bytes).speechSec).toBeGreaterThan(0.8);
    const english = await tts.synthesize({ text: 'Hello there.', voice, languageCode: 'en-GB' });
    expect(parseWavHeader(english.bytes)?.sampleRateHz).toBe(16000);
  });

  it('speaks voices made before flite (espeak-ng settings only) with espeak-ng', async () => {
    const out = await tts.synthesize({ text: 'Hello there.', voice: localVoice({ espeakVoice: 'en-us+m3', pitch: 40, speedWpm: 150 }) });
    expect(parseWavHeader(out.bytes)?.sampleRateHz).toBe(22050);
  });

  it('falls back to espeak-ng when flite is missing, and when the engine is espeak-ng', async () => {
    const missing = new LocalSpeechSynthesizer({ engine: 'flite', fliteBinaryPath: '/nonexistent/flite' });
    const first = await missing.synthesize({ text: 'Hello there, still speaking.' });
    expect(parseWavHeader(first.bytes)?.sampleRateHz).toBe(22050);
    expect(analyse(first.bytes).speechSec).toBeGreaterThan(0.8);
    const espeak = new LocalSpeechSynthesizer({ engine: 'espeak-ng' });
    expect(parseWavHeader((await espeak.synthesize({ text: 'Hello there.' })).bytes)?.sampleRateHz).toBe(22050);
  });

  it('uses the default voice for a voice of another provider', async () => {
    const text = 'Same words, same default voice.';
    const plain = await tts.synthesize({ text });
    const foreign = await tts.synthesize({ text, voice: { provider: 'elevenlabs', voiceId: 'abc', params: {}, approximate: false, label: 'x' } });
    expect(foreign.bytes.equals(plain.bytes)).toBe(true);
  });

  it('throws ProviderError for blank text, silent output and invalid voice parameters; honours abort', async () => {
    await expect(tts.synthesize({ text: '   ' })).rejects.toBeInstanceOf(ProviderError);
    await expect(tts.synthesize({ text: '...' })).rejects.toThrow(/no audible speech/);
    for (const params of [{ fliteVoice: '--help' }, { fliteVoice: 'kal' }, { fliteVoice: 'slt', f0TargetHz: 900 }, { fliteVoice: 'awb', durationStretch: 0 }, { fliteVoice: 'slt', f0TargetHz: '120' }]) {
      await expect(tts.synthesize({ text: 'hello', voice: localVoice(params) })).rejects.toThrow(/invalid flite voice parameter/);
    }
    await expect(tts.synthesize({ text: 'hello', signal: AbortSignal.abort(new Error('stop')) })).rejects.toThrow('stop');
  });
});

describe('flite helpers', () => {
  it('parses voice parameters and the engine setting', () => {
    expect(parseFliteParams({ fliteVoice: 'awb', f0TargetHz: 118.4, durationStretch: 1.1, espeakVoice: 'en-us+m3' })).toEqual({ fliteVoice: 'awb', f0TargetHz: 118.4, durationStretch: 1.1 });
    expect(offlineTtsEngine(undefined)).toBe('flite');
    expect(offlineTtsEngine('')).toBe('flite');
    expect(offlineTtsEngine('eSpeak-NG')).toBe('espeak-ng');
    expect(() => offlineTtsEngine('rhvoice')).toThrow(/OFFLINE_TTS must be flite or espeak-ng/);
  });
});
