import { describe, expect, it } from 'vitest';
import { offlineBanner } from '../src/demo.js';

describe('offlineBanner', () => {
  it('names the offline engines that actually speak, in plain words', () => {
    const flite = offlineBanner('flite');
    expect(flite).toMatch(/^VoiceTwin offline demo, no accounts or API keys: /);
    expect(flite).toContain('PocketSphinx turns your English voice notes into text');
    expect(flite).toContain('the Flite computer voice speaks them, tuned to your pitch and pace');
    expect(flite).toContain('eSpeak NG speaks Hindi and other languages');
    expect(flite).not.toMatch(/espeak-ng preview voice|neural|approximation/);
    const espeak = offlineBanner('espeak-ng');
    expect(espeak).toContain('the eSpeak NG computer voice speaks them');
    expect(espeak).not.toContain('Flite');
  });
});
