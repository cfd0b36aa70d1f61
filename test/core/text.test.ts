import { describe, expect, it } from 'vitest';
import { chunkSentences, countOf, splitSentences, tokenize, trimToSentences, splitMessageText } from '../../src/core/text.js';

describe('splitSentences', () => {
  it('splits at sentence ends and keeps the punctuation', () => {
    expect(splitSentences('Hello there. How are you? Fine! Wait… what')).toEqual(['Hello there.', 'How are you?', 'Fine!', 'Wait…', 'what']);
  });

  it('does not split after abbreviations such as "Dr." or inside decimals such as "3.5"', () => {
    expect(splitSentences('Dr. Smith paid 3.5 dollars. Then he left, e.g. quickly. Mrs. Jones stayed.')).toEqual([
      'Dr. Smith paid 3.5 dollars.',
      'Then he left, e.g. quickly.',
      'Mrs. Jones stayed.',
    ]);
  });

  it('splits at line breaks (any convention) and drops whitespace-only pieces', () => {
    expect(splitSentences('first line\r\nsecond line\rthird.  \n\n   \nfourth')).toEqual(['first line', 'second line', 'third.', 'fourth']);
    expect(splitSentences('  \n \n')).toEqual([]);
  });

  it('needs whitespace or the end after the mark', () => {
    expect(splitSentences('See example.com/a?b=1 now.')).toEqual(['See example.com/a?b=1 now.']);
  });
});

describe('chunkSentences', () => {
  it('groups whole sentences up to the character limit', () => {
    expect(chunkSentences('One. Two. Three.', 9)).toEqual(['One. Two.', 'Three.']);
    expect(chunkSentences('One. Two. Three.', 100)).toEqual(['One. Two. Three.']);
  });

  it('keeps every chunk within maxChars and loses no character', () => {
    const text = 'This is a rather long sentence that has to be cut somewhere sensible. Short one. Another fairly long sentence follows here!';
    for (const maxChars of [12, 20, 33, 50]) {
      const chunks = chunkSentences(text, maxChars);
      for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(maxChars);
      expect(chunks.join('').replace(/\s/g, '')).toBe(text.replace(/\s/g, ''));
      for (const chunk of chunks) expect(chunk).toBe(chunk.trim());
    }
  });

  it('cuts a sentence longer than the limit at a space', () => {
    expect(chunkSentences('aaaa bbbb cccc dddd', 10)).toEqual(['aaaa bbbb', 'cccc dddd']);
  });

  it('cuts a word longer than the limit at the limit', () => {
    expect(chunkSentences('abcdefghijklmnopqrstuvwxyz', 10)).toEqual(['abcdefghij', 'klmnopqrst', 'uvwxyz']);
  });

  it('returns nothing for blank text', () => {
    expect(chunkSentences('   ', 10)).toEqual([]);
  });
});

describe('trimToSentences', () => {
  it('returns text within the limit trimmed and unchanged otherwise', () => {
    expect(trimToSentences('  Hello. Bye.  ', 100)).toBe('Hello. Bye.');
  });

  it('ends at the last whole sentence that fits', () => {
    expect(trimToSentences('First one. Second one. Third one.', 22)).toBe('First one. Second one.');
    expect(trimToSentences('First one. Second one. Third one.', 21)).toBe('First one.');
  });

  it('cuts the first sentence at a word boundary with an ellipsis when even it is too long', () => {
    const out = trimToSentences('This sentence is far too long to fit', 20);
    expect(out).toBe('This sentence is…');
    expect(out.length).toBeLessThanOrEqual(20);
    expect(trimToSentences('abcdefghijklmnopqrstuvwxyz', 10)).toBe('abcdefghi…');
  });
});

describe('tokenize', () => {
  it('lower-cases letters and digits of any script, keeping apostrophes inside words', () => {
    expect(tokenize("Hello, WORLD! It's 3 o'clock — café 42")).toEqual(['hello', 'world', "it's", '3', "o'clock", 'café', '42']);
    expect(tokenize('Привет, мир')).toEqual(['привет', 'мир']);
  });

  it('returns an empty list when there are no words', () => {
    expect(tokenize('')).toEqual([]);
    expect(tokenize(' ... !? ')).toEqual([]);
  });
});

describe('splitMessageText', () => {
  it('splits at paragraph, sentence and word breaks in the second half of each window', () => {
    const text = `${'a'.repeat(60)}\n\n${'b'.repeat(30)}. ${'c'.repeat(30)} ${'d'.repeat(20)}`;
    const pieces = splitMessageText(text, 100);
    expect(pieces).toEqual(['a'.repeat(60), `${'b'.repeat(30)}. ${'c'.repeat(30)} ${'d'.repeat(20)}`]);
    const sentences = splitMessageText(`${'x'.repeat(70)}. ${'y'.repeat(50)}`, 100);
    expect(sentences).toEqual([`${'x'.repeat(70)}.`, 'y'.repeat(50)]);
    for (const piece of splitMessageText('word '.repeat(1000), 2000)) expect(piece.length).toBeLessThanOrEqual(2000);
  });

  it('never cuts an emoji (a surrogate pair) in half, at any limit', () => {
    const text = '🙂'.repeat(1500); // 3,000 UTF-16 code units, no spaces
    for (const max of [2000, 999, 4096]) {
      const pieces = splitMessageText(text, max);
      expect(pieces.join('')).toBe(text);
      for (const piece of pieces) {
        expect(piece.length).toBeLessThanOrEqual(max);
        expect(piece).not.toMatch(/^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/);
      }
    }
  });

  it('returns nothing for empty or blank text', () => {
    expect(splitMessageText('', 2000)).toEqual([]);
    expect(splitMessageText('  \n ', 2000)).toEqual([]);
  });
});

describe('countOf', () => {
  it('uses the singular for exactly one and the plural otherwise, including zero and fractions', () => {
    expect(countOf(1, 'voice sample')).toBe('1 voice sample');
    expect(countOf(2, 'voice sample')).toBe('2 voice samples');
    expect(countOf(0, 'voice sample')).toBe('0 voice samples');
    expect(countOf(1.5, 'second')).toBe('1.5 seconds');
    expect(countOf(-1, 'day')).toBe('-1 day');
  });

  it('makes regular plurals of the head noun and accepts an explicit plural', () => {
    expect(countOf(1, 'exchange of conversation')).toBe('1 exchange of conversation');
    expect(countOf(3, 'exchange of conversation')).toBe('3 exchanges of conversation');
    expect(countOf(2, 'day of usage')).toBe('2 days of usage');
    expect(countOf(2, 'memory')).toBe('2 memories');
    expect(countOf(2, 'day')).toBe('2 days');
    expect(countOf(2, 'match')).toBe('2 matches');
    expect(countOf(4, 'recording as WAV')).toBe('4 recordings as WAV');
    expect(countOf(2, 'person', 'people')).toBe('2 people');
    expect(countOf(1, 'person', 'people')).toBe('1 person');
  });

  it('writes thousands separators and refuses non-finite counts', () => {
    expect(countOf(12000, 'character')).toBe('12,000 characters');
    expect(() => countOf(Number.NaN, 'sample')).toThrow(RangeError);
    expect(() => countOf(Infinity, 'sample')).toThrow(RangeError);
  });
});
