import { describe, expect, it } from 'vitest';
import { splitForSynthesis } from '../../../src/providers/replicate/text.js';

describe('splitForSynthesis', () => {
  it('packs whole sentences up to the limit and keeps every word in order', () => {
    const text = 'Hello there. How are you today? I hope the weather is kind to you! Dr. Smith said hi.';
    const pieces = splitForSynthesis(text, 40);
    for (const p of pieces) expect(p.length).toBeLessThanOrEqual(40);
    expect(pieces.join(' ').split(/\s+/)).toEqual(text.split(/\s+/));
    expect(pieces[0]).toBe('Hello there. How are you today?');
    expect(splitForSynthesis(text, 300)).toEqual([text]);
  });

  it('cuts an over-long sentence at clauses, then between words, never inside a word', () => {
    const clause = 'this clause has a good number of words in it';
    const sentence = `${Array.from({ length: 12 }, () => clause).join(', ')}.`;
    const pieces = splitForSynthesis(sentence, 100);
    expect(pieces.length).toBeGreaterThan(4);
    for (const p of pieces) expect(p.length).toBeLessThanOrEqual(100);
    expect(pieces.join(' ').replace(/\s+/g, ' ')).toBe(sentence);
    const noCommas = 'word '.repeat(80).trim();
    const words = splitForSynthesis(noCommas, 50);
    for (const p of words) expect(p.split(' ').every((w) => w === 'word')).toBe(true);
  });

  it('returns nothing for blank text and splits Hindi sentences at the danda', () => {
    expect(splitForSynthesis('   ')).toEqual([]);
    const hindi = 'नमस्ते, आप कैसे हैं? मैं ठीक हूँ। आज मौसम अच्छा है।';
    const pieces = splitForSynthesis(hindi, 20);
    expect(pieces[0]).toBe('नमस्ते, आप कैसे हैं?');
    expect(pieces.join(' ')).toBe(hindi);
  });
});
