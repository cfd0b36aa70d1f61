/**
 * Text helpers for replies: sentence splitting for concurrent synthesis, trimming to a character
 * budget at a sentence boundary, and splitting long text into chat messages.
 */

/** Abbreviations that end with a period but do not end a sentence. */
const ABBREVIATIONS = new Set(['mr', 'mrs', 'ms', 'dr', 'prof', 'sr', 'jr', 'st', 'vs', 'etc', 'e.g', 'i.e', 'approx', 'no']);

/**
 * Splits text into sentences (., !, ?, …, and line breaks), keeping punctuation; abbreviations such as
 * "Dr." and decimals such as "3.5" do not split. Whitespace-only pieces are dropped.
 */
export function splitSentences(text: string): string[] {
  const out: string[] = [];
  const normalized = text.replace(/\r\n?/g, '\n');
  let start = 0;
  for (let i = 0; i < normalized.length; i++) {
    const ch = normalized[i]!;
    const next = normalized[i + 1];
    let boundary = false;
    if (ch === '\n') boundary = true;
    else if ('.!?…'.includes(ch) && (next === undefined || /\s/.test(next))) {
      if (ch === '.') {
        const word = /([\p{L}.]+)$/u.exec(normalized.slice(start, i))?.[1]?.toLowerCase() ?? '';
        boundary = !ABBREVIATIONS.has(word);
      } else boundary = true;
    }
    if (boundary) {
      const piece = normalized.slice(start, i + 1).trim();
      if (piece) out.push(piece);
      start = i + 1;
    }
  }
  const rest = normalized.slice(start).trim();
  if (rest) out.push(rest);
  return out;
}

/**
 * Groups sentences into chunks of at most `maxChars` (a sentence longer than that is cut at a word
 * boundary), so each chunk can be synthesised on its own and the chunks joined.
 */
export function chunkSentences(text: string, maxChars: number): string[] {
  const chunks: string[] = [];
  let current = '';
  for (const sentence of splitSentences(text)) {
    for (const part of cutLong(sentence, maxChars)) {
      if (current && current.length + 1 + part.length > maxChars) {
        chunks.push(current);
        current = part;
      } else current = current ? `${current} ${part}` : part;
    }
  }
  if (current) chunks.push(current);
  return chunks;
}

function cutLong(sentence: string, maxChars: number): string[] {
  if (sentence.length <= maxChars) return [sentence];
  const out: string[] = [];
  let rest = sentence;
  while (rest.length > maxChars) {
    let cut = rest.lastIndexOf(' ', maxChars);
    if (cut < maxChars / 2) cut = maxChars;
    out.push(rest.slice(0, cut).trim());
    rest = rest.slice(cut).trim();
  }
  if (rest) out.push(rest);
  return out;
}

/**
 * Trims text to at most `maxChars`, ending at the last whole sentence that fits (or a word boundary
 * with an ellipsis when even the first sentence is too long).
 */
export function trimToSentences(text: string, maxChars: number): string {
  const clean = text.trim();
  if (clean.length <= maxChars) return clean;
  let out = '';
  for (const sentence of splitSentences(clean)) {
    const candidate = out ? `${out} ${sentence}` : sentence;
    if (candidate.length > maxChars) break;
    out = candidate;
  }
  if (out) return out;
  const cut = clean.lastIndexOf(' ', maxChars - 1);
  return `${clean.slice(0, cut > maxChars / 2 ? cut : maxChars - 1).trim()}…`;
}

/** Lower-case word tokens (letters and digits, any script). */
export function tokenize(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
}

/**
 * Splits `text` into chat messages of at most `maxChars` UTF-16 code units (which also bounds
 * Telegram's character count and Discord's 2,000-character content), preferring paragraph, line,
 * sentence and word boundaries in the second half of each window, and never cutting a surrogate
 * pair. Empty or whitespace-only pieces are dropped.
 * @returns the pieces in order; `[]` for empty or whitespace-only text
 */
export function splitMessageText(text: string, maxChars: number): string[] {
  const pieces: string[] = [];
  let rest = text;
  while (rest.length > maxChars) {
    const window = rest.slice(0, maxChars);
    const minCut = Math.floor(maxChars / 2);
    let cut = -1;
    for (const separator of ['\n\n', '\n', '. ', '! ', '? ', ' ']) {
      const at = window.lastIndexOf(separator);
      if (at >= minCut) {
        cut = at + separator.length;
        break;
      }
    }
    if (cut < 0) {
      cut = maxChars;
      const code = rest.charCodeAt(cut - 1);
      if (code >= 0xd800 && code <= 0xdbff) cut -= 1; // keep a surrogate pair together
    }
    pieces.push(rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
  }
  pieces.push(rest);
  return pieces.filter((piece) => piece.trim() !== '');
}

/**
 * A count with its noun in the right number: `countOf(1, 'voice sample')` → "1 voice sample",
 * `countOf(2, 'voice sample')` → "2 voice samples", `countOf(3, 'memory', 'memories')` → "3 memories",
 * `countOf(1, 'exchange of conversation')` → "1 exchange of conversation". Without `plural`, the
 * noun before any "of/in/on/for/as" phrase takes a regular English plural ("day of usage" → "days of
 * usage", "match" → "matches", "memory" → "memories"); give `plural` for irregular nouns. The
 * number is written with en-US thousands separators ("1,200 voice samples").
 * @param n a finite number; only exactly 1 (and -1) take the singular
 * @throws RangeError when `n` is not finite
 */
export function countOf(n: number, singular: string, plural?: string): string {
  if (!Number.isFinite(n)) throw new RangeError(`countOf needs a finite number, not ${n}`);
  const noun = Math.abs(n) === 1 ? singular : (plural ?? pluralOf(singular));
  return `${n.toLocaleString('en-US')} ${noun}`;
}

/** Regular English plural of a noun phrase: its last word before any "of/in/on/for/as" phrase. */
function pluralOf(phrase: string): string {
  const ofAt = phrase.search(/\s(of|in|on|for|as)\s/);
  const head = ofAt >= 0 ? phrase.slice(0, ofAt) : phrase;
  const tail = ofAt >= 0 ? phrase.slice(ofAt) : '';
  const plural = /(s|x|z|ch|sh)$/i.test(head) ? `${head}es` : /[^aeiou]y$/i.test(head) ? `${head.slice(0, -1)}ies` : `${head}s`;
  return plural + tail;
}
