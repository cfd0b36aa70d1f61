/**
 * Small English text tools for the template persona engine: word lists, pronoun swapping
 * ("I" → "you"), key-phrase and mood detection. Rule-based and deterministic; no model.
 */
import { tokenize } from '../../core/text.js';

/** Function words that never make a topic. */
export const STOP_WORDS = new Set(
  (
    "a an and are as at be been being but by can could did do does doing done don't for from get got had has have having he her " +
    "here hers him his how i i'd i'll i'm i've if im in into is isn't it it's its just me might more most much must my myself " +
    'no nor not now of off on once only or other our ours out over own really same she should so some such than that that\'s the ' +
    'their theirs them then there these they this those through to too under until up very was wasn\'t we were what when where ' +
    'which while who whom why will with would you your yours yourself yeah yes okay ok oh um uh well also still even ever every ' +
    'something anything nothing everything thing things lot lots today tomorrow yesterday tonight always never maybe ' +
    'think know want feel feeling felt like going gonna make made need needs said say says tell told'
  ).split(' '),
);

/** Words that carry a heavy mood (counted by insights, echoed by the supportive and reflective personas). */
export const NEGATIVE_WORDS = new Set(
  (
    'sad unhappy tired exhausted stressed stressful stress anxious anxiety worried worry worrying afraid scared angry upset lonely alone ' +
    'depressed overwhelmed frustrated annoyed hurt sick ill bored nervous hopeless lost confused stuck hate awful terrible ' +
    'bad worse worst difficult hard miserable down exhausting sleepless panic pain grief crying cried fear'
  ).split(' '),
);

/** Words that carry a light or good mood. */
export const POSITIVE_WORDS = new Set(
  (
    'happy glad excited great good proud grateful thankful calm relaxed love loved wonderful amazing fantastic joy fun ' +
    'hopeful better fine awesome cheerful delighted thrilled peaceful lucky brilliant excellent enjoy enjoyed enjoying'
  ).split(' '),
);

const NEGATORS = new Set(['not', "don't", 'dont', "didn't", 'never', "isn't", "wasn't", "aren't", 'no', "can't", 'cannot']);

/** First-person ↔ second-person word swaps for mirroring (`I'm` → `you're`, `your` → `my`). */
const SWAPS: Record<string, string> = {
  i: 'you',
  me: 'you',
  my: 'your',
  mine: 'yours',
  myself: 'yourself',
  "i'm": "you're",
  im: "you're",
  "i've": "you've",
  "i'll": "you'll",
  "i'd": "you'd",
  we: 'you',
  us: 'you',
  our: 'your',
  ours: 'yours',
  ourselves: 'yourselves',
  your: 'my',
  yours: 'mine',
  yourself: 'myself',
  "you're": "I'm",
  "you've": "I've",
  "you'll": "I'll",
  "you'd": "I'd",
};

/**
 * Mirrors a phrase: first person becomes second person and the other way round
 * (`I am worried about my exam` → `you are worried about your exam`, `you helped me` → `I helped you`).
 * Verb agreement is fixed for `am`/`are`/`was`/`were` right after the swapped pronoun.
 */
export function swapPerson(text: string): string {
  const parts = text.split(/(\s+)/);
  const out: string[] = [];
  let previous = '';
  let wordIndex = 0;
  for (const part of parts) {
    if (/^\s+$/.test(part) || part === '') {
      out.push(part);
      continue;
    }
    const match = /^([^\p{L}']*)([\p{L}']+)([^\p{L}']*)$/u.exec(part);
    if (!match) {
      out.push(part);
      previous = '';
      wordIndex++;
      continue;
    }
    const [, lead, word, trail] = match as unknown as [string, string, string, string];
    const lower = word.toLowerCase().replace('’', "'");
    let swapped: string | undefined;
    if (lower === 'you') swapped = wordIndex === 0 || previous === '' || /^(and|but|if|when|because|so|that)$/.test(previous) ? 'I' : 'you';
    else if (lower === 'am' && previous === 'i') swapped = 'are';
    else if (lower === 'are' && previous === 'you') swapped = 'am';
    else if (lower === 'was' && previous === 'i') swapped = 'were';
    else if (lower === 'were' && previous === 'you') swapped = 'was';
    else swapped = SWAPS[lower];
    // "you" as an object after a verb or preposition reads "me".
    if (lower === 'you' && swapped === 'you') swapped = 'me';
    out.push(`${lead}${swapped ?? word}${trail}`);
    previous = trail ? '' : lower;
    wordIndex++;
  }
  return out.join('').replace(/\bi\b/g, 'I');
}

/** The text with whitespace collapsed and trimmed, at most `maxChars` characters (cut at a word). */
export function normaliseText(text: string, maxChars = 2000): string {
  const clean = text.replace(/\s+/g, ' ').trim();
  if (clean.length <= maxChars) return clean;
  const cut = clean.lastIndexOf(' ', maxChars);
  return clean.slice(0, cut > maxChars / 2 ? cut : maxChars);
}

/** True when `text` contains Latin letters (the templates only reshape English-like text). */
export function hasLatinWords(text: string): boolean {
  return /\p{Script=Latin}{2,}/u.test(text);
}

/** Mood of a text: counts of heavy and light words, with `not`/`never` just before a word flipping it. */
export function moodOf(text: string): { negative: string[]; positive: string[] } {
  const words = tokenize(text);
  const negative: string[] = [];
  const positive: string[] = [];
  words.forEach((word, i) => {
    const negated = i > 0 && NEGATORS.has(words[i - 1]!) || (i > 1 && NEGATORS.has(words[i - 2]!) && words[i - 1] === 'very');
    if (NEGATIVE_WORDS.has(word)) (negated ? positive : negative).push(negated ? `not ${word}` : word);
    else if (POSITIVE_WORDS.has(word)) (negated ? negative : positive).push(negated ? `not ${word}` : word);
  });
  return { negative, positive };
}

/** Content words of a text: lower case, not function words, at least 3 letters, apostrophes trimmed. */
export function contentWords(text: string): string[] {
  return tokenize(text)
    .map((w) => w.replace(/^'+|'+$/g, '').replace(/'s$/, ''))
    .filter((w) => w.length >= 3 && /\p{L}/u.test(w) && !STOP_WORDS.has(w));
}

/**
 * A crude stem for comparing words: one suffix (`ing`, `ed`, `es`, `s`) and then a final `e`
 * removed while at least three letters remain (`lives`, `living`, `live` → `liv`).
 */
export function stem(word: string): string {
  let w = word.toLowerCase();
  const suffix = /(ing|ed|es|s)$/.exec(w);
  if (suffix && w.length - suffix[0].length >= 3 && !w.endsWith('ss')) w = w.slice(0, -suffix[0].length);
  if (w.endsWith('e') && w.length > 3) w = w.slice(0, -1);
  return w;
}

/**
 * The phrase a text is most about, in the listener's perspective:
 * 1. a possessive phrase (`my new job` → `your new job`), up to two words before a function word;
 * 2. the object of `about` (`worried about the move` → `the move`);
 * 3. the longest content word that is not a mood word, preferring words `boost` contains
 *    (recurring words from the conversation).
 * Undefined when the text has no usable word.
 */
export function keyPhrase(text: string, boost: ReadonlySet<string> = new Set()): string | undefined {
  const possessive = /\bmy\s+([\p{L}'-]+)(?:\s+([\p{L}'-]+))?/iu.exec(text);
  if (possessive) {
    const first = possessive[1]!;
    const second = possessive[2];
    const firstLower = first.toLowerCase();
    const secondIsNoun = second !== undefined && !STOP_WORDS.has(second.toLowerCase()) && isNounLike(second) && !second.toLowerCase().endsWith('ing');
    if (MODIFIERS.has(firstLower)) {
      // "my new job" keeps the adjective; "my best" alone is no topic.
      if (secondIsNoun) return `your ${first} ${second}`;
    } else if (!STOP_WORDS.has(firstLower) && firstLower !== 'own') {
      // "my girlfriend left" stops at the noun; "my stupid car" drops the other adjective.
      if (isNounLike(first) && !TIME_WORDS.has(firstLower)) return `your ${first}`;
      if (secondIsNoun && !TIME_WORDS.has(second!.toLowerCase())) return `your ${second}`;
    }
  }
  const about = /\babout\s+((?:the|a|an|this|that|our|my)\s+)?([\p{L}'-]{3,})/iu.exec(text);
  if (about && !STOP_WORDS.has(about[2]!.toLowerCase()) && isNounLike(about[2]!) && !/ing$/i.test(about[2]!) && !TIME_WORDS.has(about[2]!.toLowerCase())) {
    const det = about[1]?.trim().toLowerCase();
    return `${det ? `${swapPerson(det)} ` : ''}${about[2]}`;
  }
  // The fallback only takes words that can head a noun phrase: no adjectives, adverbs or past
  // participles ("the established"), no time words ("with this weekend").
  const candidates = contentWords(text).filter((w) => !NEGATIVE_WORDS.has(w) && !POSITIVE_WORDS.has(w) && !VERBS.has(w) && !TIME_WORDS.has(w) && isNounLike(w));
  if (candidates.length === 0) return undefined;
  let best = candidates[0]!;
  let bestScore = -Infinity;
  for (const word of candidates) {
    const score = word.length + (boost.has(stem(word)) ? 6 : 0);
    if (score > bestScore) {
      best = word;
      bestScore = score;
    }
  }
  // A gerund is a noun phrase on its own ("cooking"); other words keep the article the user gave
  // them ("a joke"), else get "the".
  if (best.endsWith('ing') && best.length > 5) return best;
  const article = new RegExp(`\\b(a|an|the|this|that|our)\\s+${best}\\b`, 'i').exec(text)?.[1]?.toLowerCase();
  return `${article ? swapPerson(article) : 'the'} ${best}`;
}

/** Time expressions: a reply cannot handle them like a thing ("take this weekend one step at a time"). */
const TIME_WORDS = new Set(
  ('weekend weekends week weeks month months year years day days morning mornings evening evenings afternoon afternoons night nights ' +
    'summer winter spring autumn fall monday tuesday wednesday thursday friday saturday sunday tonight lately recently').split(' '),
);

/** Common adjectives and adverbs without a telling suffix, which never head a topic. */
const NOT_NOUNS = new Set(
  ('stupid pretty busy sunny noisy crazy easy lazy silly funny healthy heavy ready sorry tiny windy rainy cloudy messy weird strange ' +
    'nice sure able late early real whole different important possible impossible honest quiet loud free full empty alright enough ' +
    'quite rather huge big small little large long short high low young old new same other certain normal serious perfect ' +
    'expensive cheap simple special single entire again already almost soon away together alone decide understand remember forget ' +
    'believe manage handle finish choose').split(' '),
);

/** Real nouns with an adjective-like ending, kept by {@link isNounLike}. */
const SUFFIX_NOUNS = new Set(
  ('family bed shed need seed speed feed weed reed breed table vegetable cable fable stable olive relative detective executive ' +
    'motive objective initiative perspective archive handful reply supply assembly rally bully jelly belly holly ally').split(' '),
);

/**
 * True when `word` can plausibly head a noun phrase: not in a list of common adjectives, adverbs
 * and verbs, and without an adjective, adverb or participle ending (`-ed`, `-ly`, `-ous`, `-ful`,
 * `-ive`, `-able`, `-ible`, `-less`), except listed nouns with such endings (`family`, `bed`).
 */
export function isNounLike(word: string): boolean {
  const w = word.toLowerCase().replace(/'s$/, '');
  if (SUFFIX_NOUNS.has(w)) return true;
  if (NOT_NOUNS.has(w)) return false;
  return !/(?:.{2}ed|ly|ous|ful|ive|able|ible|less)$/.test(w);
}

/** Adjectives that stay with the noun after "my" ("my new job"). */
const MODIFIERS = new Set(
  'new old best little big first last younger older current next whole favourite favorite dear late ex former future home'.split(' '),
);

/** Common verbs that are not topics when they are the longest word ("help", "plan", "tell"). */
const VERBS = new Set(
  'help plan tell give show ask let try keep start stop call come take find look work talk speak wait hope wish guess mean seem'.split(' '),
);

/** Question words and auxiliaries; a pronoun after one of them is part of a question. */
const QUESTION_WORDS = new Set(
  'what why how when where who which whom whose should shall could would can do does did is are am will may might must have has'.split(' '),
);

/**
 * The first clause of `text` spoken in the first person (`I …`, `I'm …`, `my … is …`), mirrored
 * into the second person, at most `maxWords` words and without closing punctuation;
 * undefined when no clause is in the first person.
 */
export function mirrorClause(text: string, maxWords = 14): string | undefined {
  const clauses = text.split(/[.!?;:,\n]+|\s+-\s+/).map((c) => c.trim()).filter(Boolean);
  for (const clause of clauses) {
    const start = /\b(i|i'm|i’m|im|i've|i'd|i'll|my)\b/i.exec(clause);
    if (!start) continue;
    // "What should I cook" puts the pronoun after an auxiliary: a question, not a statement to mirror.
    const before = clause.slice(0, start.index).toLowerCase().split(/\s+/).filter(Boolean);
    if (before.some((w) => QUESTION_WORDS.has(w.replace(/[^a-z']/g, '')))) continue;
    const words = clause.slice(start.index).split(/\s+/).slice(0, maxWords);
    const mirrored = swapPerson(words.join(' ')).replace(/[,;:\s]+$/, '');
    if (mirrored.split(' ').length >= 2) return mirrored;
  }
  return undefined;
}

/** Rewrites a stored memory so it can follow "I remember": second person, no final period, first letter lower case. */
export function memoryAsClause(text: string): string {
  let clause = normaliseText(text, 300).replace(/[.!?\s]+$/, '');
  clause = clause.replace(/^(the user|user)\s+/i, '');
  if (/^(i|i'm|my|me|i've)\b/i.test(clause)) clause = swapPerson(clause);
  else if (/^(you|your)\b/i.test(clause)) {
    // already second person
  } else {
    // Third person without a subject ("Has a sister called Mia", "Lives in Berlin").
    const [first = '', ...rest] = clause.split(' ');
    const verb = thirdPersonToBase(first);
    if (verb) clause = ['you', verb, ...rest].join(' ');
  }
  return clause.charAt(0) === 'I' && /^I\b/.test(clause) ? clause : clause.charAt(0).toLowerCase() + clause.slice(1);
}

/** `has` → `have`, `lives` → `live`, `is` → `are`; undefined when the word is not a third-person verb form. */
function thirdPersonToBase(word: string): string | undefined {
  const lower = word.toLowerCase();
  const irregular: Record<string, string> = { has: 'have', is: 'are', was: 'were', does: 'do', "doesn't": "don't", "isn't": "aren't", "wasn't": "weren't" };
  if (irregular[lower]) return irregular[lower];
  if (/^[a-z]{3,}(ies)$/.test(lower)) return lower.replace(/ies$/, 'y');
  if (/^[a-z]{2,}(sses|shes|ches|xes|oes)$/.test(lower)) return lower.replace(/es$/, '');
  if (/^[a-z]{3,}s$/.test(lower) && !/ss$/.test(lower)) return lower.slice(0, -1);
  return undefined;
}
