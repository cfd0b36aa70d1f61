/**
 * The template persona engine, checked in bulk: several hundred replies over varied inputs,
 * personas, memories and seeds must read as well-formed English sentences. The rules are
 * independent of how the engine picks its words: they look only at the finished text.
 */
import { describe, expect, it } from 'vitest';
import { PERSONA_NAMES } from '../../../src/core/personas.js';
import type { MemoryRecord } from '../../../src/core/providers.js';
import { splitSentences } from '../../../src/core/text.js';
import { composeReply } from '../../../src/providers/local/template.js';

/** User messages: statements, questions, moods, time words, adjectives and verbs as the longest word. */
const INPUTS = [
  'I finally feel established here after the move.',
  'What should I do this weekend?',
  'I finished the report yesterday.',
  "I can't decide between the two offers.",
  'Everything feels complicated lately.',
  'The presentation went surprisingly well.',
  'I am exhausted after the night shift.',
  'My stupid car broke down again.',
  'My best friend is moving to Canada.',
  'How do I stop procrastinating?',
  'I have been running every morning.',
  'Work was overwhelming and my boss shouted at me.',
  'I got promoted today!',
  'Should I apologise to my brother?',
  'The kids were incredibly noisy tonight.',
  'I want to learn the guitar.',
  'I feel lonely since I moved to Berlin.',
  'Tomorrow is my first day at the new school.',
  "I'm worried about getting fired.",
  'Honestly I am pretty happy with how things are going.',
  'We adopted a puppy called Biscuit.',
  'Why is everything so expensive?',
  'It was a beautiful sunny afternoon.',
  'I keep thinking about the argument we had.',
  'Cooking relaxes me after a long day.',
  'My exam results were disappointing.',
  'I am nervous about the interview on Friday.',
  'Do you think I should travel alone this summer?',
  'The meeting was postponed indefinitely.',
  'I feel really motivated this week.',
  'My grandmother is in the hospital.',
  'Everything is fine, just tired.',
  'I started painting again.',
  'Is it normal to feel anxious before a wedding?',
  'The project deadline was extended.',
  'I was surprised how easy it was.',
  'My neighbour plays loud music every single night.',
  'Reading helps me relax.',
  'I finally understood the problem.',
  'What do you remember about me?',
];

const MEMORIES: Array<MemoryRecord | undefined> = [
  undefined,
  { id: 'm1', text: 'You have a sister called Mia.', createdAtMs: 0, source: 'extracted' },
  { id: 'm2', text: 'I work as a nurse', createdAtMs: 0, source: 'explicit' },
];

/** Words that cannot close a noun phrase after an article or possessive ("the established", "your stupid"). */
const NOT_A_NOUN = /^(?:[a-z]+(?:ed|ly|ous|ful|ive|able|ible|less)|established|complicated|stupid|pretty|really|very|decide|understand|finish|so|just|then)$/;
/** Exceptions to the suffix rule: real nouns with those endings. */
const NOUN_EXCEPTIONS = new Set(['family', 'bed', 'shed', 'need', 'seed', 'speed', 'feed', 'weed', 'table', 'vegetable', 'cable', 'olive', 'relative', 'detective', 'executive', 'motive', 'objective']);
/** Templates that put the topic in a fixed frame, and what may not fill them. */
const FRAMES = [
  /\btake (?:the|your|a|an|this|that) ([a-z']+) one small step at a time/,
  /\b(?:with|about|for|on) (?:the|your|a|an|this|that) ([a-z']+)(?=[,.?!])/i,
  /\b(?:with|about|for|on) (?:the|your|a|an|this|that) ([a-z']+) (?:look|right now|in three|to a curious|were a door|deserves|keeps|you could|means)/i,
];

function replies(): Array<{ input: string; persona: string; text: string }> {
  const out: Array<{ input: string; persona: string; text: string }> = [];
  INPUTS.forEach((input, i) => {
    for (const persona of PERSONA_NAMES) {
      for (const seed of [1, 2]) {
        const memory = MEMORIES[(i + seed) % MEMORIES.length];
        const text = composeReply(
          { persona, history: [], memories: memory ? [memory] : [], userText: input, ...(i % 5 === 0 ? { userName: 'Ana' } : {}), maxChars: 600 },
          seed,
        );
        out.push({ input, persona, text });
      }
    }
  });
  return out;
}

describe('template replies follow sentence rules', () => {
  const all = replies();

  it(`generates a few hundred replies (${all.length})`, () => {
    expect(all.length).toBeGreaterThanOrEqual(400);
  });

  it('slots only noun phrases into topic frames (no "the established", "your stupid")', () => {
    const misfits: string[] = [];
    for (const { input, persona, text } of all) {
      for (const frame of FRAMES) {
        const word = frame.exec(text)?.[1]?.toLowerCase();
        if (word && NOT_A_NOUN.test(word) && !NOUN_EXCEPTIONS.has(word)) misfits.push(`${persona} | ${input} → ${text}`);
      }
      if (/\b(?:the|your|a|an) (?:stupid|complicated|established|decide|understand|finish)\b(?! [a-z])/i.test(text)) misfits.push(`${persona} | ${input} → ${text}`);
    }
    expect(misfits).toEqual([]);
  });

  it('never frames a time word as a thing to handle ("With this weekend, …")', () => {
    const bad = all.filter(({ text }) => /\b(?:with|take) (?:this|next|the|your) (?:weekend|week|month|year|summer|morning|evening|night|afternoon)\b/i.test(text));
    expect(bad.map((r) => `${r.persona} | ${r.input} → ${r.text}`)).toEqual([]);
  });

  it('starts every sentence with a capital (or a quote), ends with terminal punctuation, doubles no word', () => {
    const problems: string[] = [];
    for (const { input, persona, text } of all) {
      const where = `${persona} | ${input} → ${text}`;
      if (!/[.!?…"]$/.test(text)) problems.push(`no terminal punctuation: ${where}`);
      for (const sentence of splitSentences(text)) {
        if (!/^["'“(]?[\p{Lu}\d]/u.test(sentence)) problems.push(`lower-case start "${sentence}": ${where}`);
      }
      const doubled = /\b([a-z']+)\s+\1\b/i.exec(text);
      if (doubled) problems.push(`doubled "${doubled[0]}": ${where}`);
      if (/\s[,.;:!?]|[,;:]{2,}|\.\.(?!\.)|\s{2,}|\{|\}/.test(text)) problems.push(`spacing/punctuation or unfilled slot: ${where}`);
      if (/\bI\b.*\bI I\b|\byou you\b|\byour your\b/i.test(text)) problems.push(`pronoun doubled: ${where}`);
    }
    expect(problems).toEqual([]);
  });

  it('keeps replies short and free of the raw first person of the user', () => {
    for (const { text } of all) {
      expect(text.length).toBeLessThanOrEqual(600);
      // Mirroring swaps "my" to "your": the user's own "my stupid car" never comes back as "my".
      expect(text).not.toMatch(/\bmy (?:stupid car|best friend|exam results|grandmother|boss)\b/i);
    }
  });
});
