/**
 * Splitting reply text into synthesis requests at sentence boundaries, using the Unicode sentence
 * and word segmentation built into the runtime (`Intl.Segmenter`, UAX #29).
 */

/**
 * Splits `text` into pieces of at most `maxChars` characters: whole sentences packed together
 * while they fit; a longer sentence is cut at a clause mark (, ; : – —) and then between words;
 * only a single word longer than `maxChars` is cut inside.
 * @param maxChars upper bound of one piece (≥ 20)
 * @param locale segmentation locale (default `en`; sentence rules are largely language-neutral)
 * @returns trimmed, non-empty pieces whose concatenation (with spaces) is the text
 */
export function splitForSynthesis(text: string, maxChars = 300, locale = 'en'): string[] {
  if (maxChars < 20) throw new RangeError('maxChars must be at least 20');
  const sentences = [...new Intl.Segmenter(locale, { granularity: 'sentence' }).segment(text)].map((s) => s.segment.trim()).filter(Boolean);
  const pieces: string[] = [];
  let current = '';
  const push = (piece: string): void => {
    if (!current) current = piece;
    else if (current.length + 1 + piece.length <= maxChars) current = `${current} ${piece}`;
    else {
      pieces.push(current);
      current = piece;
    }
  };
  for (const sentence of sentences) {
    if (sentence.length <= maxChars) push(sentence);
    else for (const part of splitLong(sentence, maxChars, locale)) push(part);
  }
  if (current) pieces.push(current);
  return pieces;
}

/** Cuts one over-long sentence at clause marks, then words, then characters. */
function splitLong(sentence: string, maxChars: number, locale: string): string[] {
  const clauses = sentence.split(/(?<=[,;:–—])\s+/);
  const out: string[] = [];
  let current = '';
  const flush = (): void => {
    if (current) out.push(current);
    current = '';
  };
  for (const clause of clauses) {
    const units = clause.length <= maxChars ? [clause] : words(clause, maxChars, locale);
    for (const unit of units) {
      if (!current) current = unit;
      else if (current.length + 1 + unit.length <= maxChars) current = `${current} ${unit}`;
      else {
        flush();
        current = unit;
      }
    }
  }
  flush();
  return out;
}

function words(text: string, maxChars: number, locale: string): string[] {
  const out: string[] = [];
  for (const { segment } of new Intl.Segmenter(locale, { granularity: 'word' }).segment(text)) {
    const word = segment.trim();
    if (!word) continue;
    for (let i = 0; i < word.length; i += maxChars) out.push(word.slice(i, i + maxChars));
  }
  // Re-attach punctuation segments to the word before them ("word ," → "word,").
  const merged: string[] = [];
  for (const w of out) {
    if (merged.length > 0 && /^\p{P}+$/u.test(w) && (merged.at(-1) as string).length + w.length <= maxChars) merged[merged.length - 1] += w;
    else merged.push(w);
  }
  return merged;
}
