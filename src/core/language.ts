/**
 * The language a person talks in and is answered in: English, Hindi (in Devanagari) or Hinglish
 * (Hindi and English mixed, written in Latin letters). Detected from what they write or say,
 * overridable with `/language en|hi|hinglish|auto`. Rule-based and deterministic; no model.
 */
import { tokenize } from './text.js';

/** A language a reply can be in. */
export type ReplyLanguage = 'en' | 'hi' | 'hinglish';

/** A person's setting: a fixed language, or `auto` (follow what they write or say). */
export type LanguagePreference = ReplyLanguage | 'auto';

/** Every {@link LanguagePreference}, in menu order. */
export const LANGUAGE_PREFERENCES: readonly LanguagePreference[] = ['auto', 'en', 'hi', 'hinglish'];

/** Names a person reads. */
export const LANGUAGE_NAMES: Record<ReplyLanguage, string> = { en: 'English', hi: 'Hindi', hinglish: 'Hinglish' };

/** Devanagari letters and signs (U+0900–U+097F). */
const DEVANAGARI = /[\u0900-\u097F]/gu;

/**
 * Romanised Hindi words that are not also common English words (so "main", "to", "me", "par",
 * "log", "hi" are left out): function words, pronouns, common verbs and fillers of Hinglish chat.
 */
const HINGLISH_MARKERS = new Set(
  (
    'hai hain nahi nahin nhi kya kyu kyun kyon kaise kaisa kaisi kaun kahan kab kitna kitni mera meri mere tera teri tere ' +
    'tum tumhara tumhari tumhe aap aapka aapki aapko hum hamara hamari humko mujhe mujhko tujhe usko isko unko hoon hun tha thi ' +
    'raha rahi rahe karna karo karta karti karte kiya gaya gayi acha accha achha theek thik yaar bahut bohot bhi bhai kuch koi ' +
    'abhi aaj kal lekin aur matlab wala wali chahiye sakta sakti sakte thoda zyada jyada dost ghar khana pyaar jaldi chalo dekho ' +
    'samajh pata bolo baat naya nayi purana subah shaam haan haanji ji arre arey kyunki isliye sirf bilkul zaroor shukriya ' +
    'namaste dhanyavaad achhi acchi sahi galat kaam paisa'
  ).split(' '),
);

/**
 * The language of a written text, or `undefined` when it has no letters:
 * - `hi` when at least 30% of its letters are Devanagari (English words mixed in keep it Hindi:
 *   the person writes in Devanagari);
 * - `hinglish` when it is in Latin letters and romanised Hindi words ({@link HINGLISH_MARKERS})
 *   make at least 20% of its words (and at least two of them, or one in a text of up to three words);
 * - `en` otherwise.
 */
export function detectTextLanguage(text: string): ReplyLanguage | undefined {
  const letters = text.match(/\p{L}/gu)?.length ?? 0;
  if (letters === 0) return undefined;
  const devanagari = text.match(DEVANAGARI)?.length ?? 0;
  if (devanagari / letters >= 0.3) return 'hi';
  const words = tokenize(text).filter((w) => /\p{L}/u.test(w));
  const hits = words.filter((w) => HINGLISH_MARKERS.has(w)).length;
  if (hits > 0 && hits / words.length >= 0.2 && (hits >= 2 || words.length <= 3)) return 'hinglish';
  return 'en';
}

/** True when `text` contains Devanagari letters. */
export function hasDevanagari(text: string): boolean {
  return /[\u0900-\u097F]/u.test(text);
}

/**
 * The language of a transcript: its recogniser's BCP-47 code when it names Hindi (`hi`, `hi-IN`;
 * Latin-letter text then means Hinglish) or English, else what the text itself reads as.
 */
export function detectTranscriptLanguage(text: string, languageCode?: string): ReplyLanguage | undefined {
  const fromText = detectTextLanguage(text);
  const primary = languageCode?.toLowerCase().split('-')[0];
  if (primary === 'hi' || primary === 'hin') return fromText === 'hi' ? 'hi' : text.trim() ? 'hinglish' : 'hi';
  if (primary === 'en' || primary === 'eng') return fromText === 'hinglish' ? 'hinglish' : 'en';
  return fromText;
}

/**
 * The language to answer in: the person's fixed preference, else what this message reads as,
 * else what they last wrote or said in, else English.
 */
export function replyLanguage(preference: LanguagePreference | undefined, detected: ReplyLanguage | undefined, previous?: ReplyLanguage): ReplyLanguage {
  if (preference && preference !== 'auto') return preference;
  return detected ?? previous ?? 'en';
}

/**
 * The BCP-47 code handed to a synthesizer for one piece of a reply in `language`: `hi` for Hindi
 * and Hinglish (cloud multilingual models speak romanised Hindi with a Hindi accent), `en` for
 * English. Offline, the local synthesizer reads Latin-letter pieces with its English voice even
 * when told `hi` (see `src/providers/local/synthesizer.ts`).
 */
export function ttsLanguageCode(language: ReplyLanguage): string {
  return language === 'en' ? 'en' : 'hi';
}

/** Parses `/language` arguments (`en`, `english`, `hi`, `hindi`, `hinglish`, `auto`; any case). */
export function parseLanguagePreference(value: string): LanguagePreference | undefined {
  const v = value.trim().toLowerCase();
  if (v === 'auto' || v === 'automatic') return 'auto';
  if (v === 'en' || v === 'english') return 'en';
  if (v === 'hi' || v === 'hindi' || v === 'हिंदी' || v === 'हिन्दी') return 'hi';
  if (v === 'hinglish') return 'hinglish';
  return undefined;
}

/**
 * The sentence a chat model's system prompt gets for a reply in `language` (empty for English):
 * Hindi stays in Devanagari, Hinglish stays in Latin letters and keeps its mix, and the persona
 * keeps its manner in either.
 */
export function languageInstruction(language: ReplyLanguage | undefined): string {
  if (language === 'hi') {
    return 'Answer in Hindi, written in Devanagari, keeping your persona and manner exactly as in English. Use English words only where the person uses them.';
  }
  if (language === 'hinglish') {
    return (
      'Answer in Hinglish, the way the person writes: Hindi and English mixed in one sentence, written in Latin letters ' +
      '(for example "Arre, tension mat lo, sab theek ho jayega."). Do not switch to Devanagari and do not turn it into plain English. ' +
      'Keep your persona and manner exactly as in English.'
    );
  }
  return '';
}
