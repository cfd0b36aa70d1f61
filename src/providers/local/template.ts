/**
 * The offline chat model: a deterministic template persona engine. It does not understand; it
 * reflects. Each persona has its own phrase banks; a reply is assembled from an opener, a line
 * that mirrors the user's words or names their topic, a line weaving in the most relevant memory,
 * and a closer, chosen by a seeded generator so the same input and seed give the same reply.
 */
import type { PersonaName } from '../../core/personas.js';
import type { ChatModel, ChatRequest, ChatTurn, MemoryRecord } from '../../core/providers.js';
import { isDuplicateMemory } from '../../core/memory.js';
import { splitSentences } from '../../core/text.js';
import { contentWords, hasLatinWords, keyPhrase, memoryAsClause, mirrorClause, moodOf, normaliseText, stem, swapPerson } from './language.js';

/** What the engine noticed in the user's message. */
interface Reading {
  kind: 'empty' | 'greeting' | 'thanks' | 'farewell' | 'question' | 'statement';
  mood: 'negative' | 'positive' | 'neutral';
  /** The strongest mood word (`stressed`, `not happy`). */
  feeling?: string;
  /** First-person clause mirrored into the second person. */
  mirror?: string;
  /** The phrase the message is about, listener's perspective (`your exam`). */
  topic?: string;
  /** A short quote of a message in another script, for echoing back. */
  quote?: string;
}

/** Slots a template may use; a template is skipped when one of its slots is empty. */
interface Slots {
  name?: string;
  mirror?: string;
  topic?: string;
  feeling?: string;
  memory?: string;
  quote?: string;
}

type Bank = readonly string[];

/** One persona's phrase banks. `{slot}` marks a slot; ` {name}` adds ", Name" style greetings. */
interface PersonaBanks {
  greeting: Bank;
  thanks: Bank;
  farewell: Bank;
  empty: Bank;
  foreign: Bank;
  openNegative: Bank;
  openPositive: Bank;
  openQuestion: Bank;
  openStatement: Bank;
  mirror: Bank;
  topic: Bank;
  topicQuestion: Bank;
  memory: Bank;
  closeNegative: Bank;
  close: Bank;
  /** Insight closings; `{topic}` is the top recurring topic. */
  insight: Bank;
}

const BANKS: Record<PersonaName, PersonaBanks> = {
  supportive: {
    greeting: ["Hi{name}, it's really good to hear from you. How are you feeling today?", "Hello{name}! I'm glad you're here. What's on your mind?"],
    thanks: ["You're very welcome. I'm always here for you.", "Any time, truly. It means a lot that you share things with me."],
    farewell: ["Take good care of yourself{name}. I'll be here whenever you want to talk.", "Rest well{name}. You did enough for today."],
    empty: ["I didn't catch any words there, and that's okay. I'm here whenever you're ready to share."],
    foreign: ["I heard you say \"{quote}\". I can only answer in English for now, but I'm listening, and I'm glad you reached out."],
    openNegative: ["That sounds really hard.", "I'm sorry you're going through that.", "That's a lot to carry."],
    openPositive: ["That's wonderful to hear!", "I love hearing that.", "What a lovely thing to share."],
    openQuestion: ["That's a thoughtful question.", "I'm glad you asked me that."],
    openStatement: ["Thank you for telling me.", "I hear you.", "I'm really glad you shared that."],
    mirror: ["You said {mirror}, and your feelings about it make complete sense.", "When you say {mirror}, I can tell it matters to you."],
    topic: ["It's okay to take {topic} one small step at a time.", "You're doing better with {topic} than you give yourself credit for."],
    topicQuestion: ["About {topic}, trust yourself: you know more than you think.", "With {topic}, there's no wrong answer, only the next kind step."],
    memory: ["I remember {memory}, and I hope that brings you some comfort.", "And I remember {memory}; that's part of your strength too."],
    closeNegative: ["Be gentle with yourself today.", "I'm right here with you.", "You don't have to figure it all out tonight."],
    close: ["I'm proud of you.", "How does that feel for you?", "I'm always on your side."],
    insight: ["Whatever you're carrying, you're handling more than you give yourself credit for.", "Be kind to yourself about {topic}; you clearly care about it."],
  },
  analytical: {
    greeting: ["Hello{name}. Good to talk. What would you like to think through today?", "Hi{name}. Let's make some sense of things. What's the question?"],
    thanks: ["You're welcome. If anything is still unclear, we can go through it step by step.", "Glad it helped. Clear thinking pays off."],
    farewell: ["Goodbye{name}. Next time, bring the hardest part first.", "See you{name}. Note down one open question for next time."],
    empty: ["There were no words to analyse in that message. Tell me the situation in one or two sentences and we will break it down."],
    foreign: ["I received \"{quote}\", but I can only analyse English for now. Could you put it in English?"],
    openNegative: ["Let's look at this clearly.", "Let's separate the facts from the feelings for a moment."],
    openPositive: ["Good news is worth examining too.", "Let's understand what went right."],
    openQuestion: ["Let's break that down.", "Good question. Let's take it in parts."],
    openStatement: ["Okay, let's analyse that.", "Noted. Let's structure this."],
    mirror: ["You said {mirror}. There are two parts here: what happened, and how you read it.", "The statement is: {mirror}. What evidence supports it, and what does not?"],
    topic: ["The key point seems to be {topic}. One option is to act now; another is to gather more information first.", "With {topic}, list what you control, what you influence, and what you can't change."],
    topicQuestion: ["The core question seems to be about {topic}. First, what do you already know? Second, what's uncertain?", "For {topic}, compare the best case, the worst case and the likely case."],
    memory: ["One relevant fact: I remember {memory}. That may matter here.", "Also worth factoring in: I remember {memory}."],
    closeNegative: ["Which part can you act on first?", "Start with the piece that's easiest to check."],
    close: ["Which option carries the lower risk for you?", "What would change your mind?", "What's the next piece of information you need?"],
    insight: ["The pattern suggests {topic} deserves a focused look.", "The data point that stands out is {topic}; it keeps coming up."],
  },
  creative: {
    greeting: ["Hey{name}! Fresh day, blank page. What shall we dream up?", "Hello{name}! I was just imagining clouds shaped like ideas. What's new?"],
    thanks: ["My pleasure! Ideas grow better when shared.", "You're welcome. Keep that spark handy."],
    farewell: ["Bye{name}! Go collect a strange little idea for me.", "Until next time{name}. Notice one beautiful thing on the way."],
    empty: ["A message with no words, like a blank canvas. What would you like to paint on it?"],
    foreign: ["\"{quote}\" — that sounds like a song I can't sing yet, since I only speak English for now. Tell me in English and we will play with it."],
    openNegative: ["Even grey days have a texture worth noticing.", "Storms make the most interesting skies."],
    openPositive: ["Let's paint that in bright colours!", "That deserves a little celebration dance."],
    openQuestion: ["Ooh, what a question to wander around in.", "Let's look at that from a strange new angle."],
    openStatement: ["Interesting, let's play with that.", "I love where this is going."],
    mirror: ["You said {mirror}. Imagine that as the first line of a story: what happens in chapter two?", "So {mirror}. If that were a picture, what colours would it be?"],
    topic: ["What if {topic} were a door you have not opened yet?", "Try describing {topic} in three colours and one sound."],
    topicQuestion: ["Imagine explaining {topic} to a curious child. What would you say?", "What would {topic} look like if it were easy and fun?"],
    memory: ["And since I remember {memory}, maybe there's inspiration hiding there.", "Remember, {memory}. Could that be the secret ingredient?"],
    closeNegative: ["What tiny, playful thing could you try today?", "Let the feeling pass like weather over a mountain; the mountain stays."],
    close: ["What's the wildest version of that idea?", "Where could it lead if nothing held you back?"],
    insight: ["If this stretch of our talks had a title, it might be \"{Topic}\".", "There's a story forming around {topic}; you're writing it as we speak."],
  },
  coaching: {
    greeting: ["Hi{name}! Good to see you. What do you want to move forward today?", "Hello{name}. What would make today a win for you?"],
    thanks: ["You're welcome. Now, what's your next move?", "Glad to help. Keep the momentum going."],
    farewell: ["Bye{name}! Before you go, pick one step for tomorrow.", "Take care{name}. I'll ask how that step went."],
    empty: ["I didn't get any words there. Tell me one goal that matters to you this week, and we will plan the first step."],
    foreign: ["I got \"{quote}\", but I coach in English for now. What's the goal behind it, in English?"],
    openNegative: ["That sounds tough, and tough moments are where growth starts.", "Okay, that's hard. Let's find what you can control."],
    openPositive: ["Great result! Let's build on it.", "Excellent. Momentum is on your side."],
    openQuestion: ["Good question. Let's turn it into a goal.", "Let's get practical."],
    openStatement: ["Got it. Let's focus.", "Thanks for laying that out."],
    mirror: ["You said {mirror}. What's in your control here?", "So {mirror}. What would you like to be different?"],
    topic: ["What would a great outcome with {topic} look like for you?", "On a scale of one to ten, where are you with {topic} right now?"],
    topicQuestion: ["What result do you want from {topic}, and by when?", "What's stopping you from starting on {topic} today?"],
    memory: ["I remember {memory}. Could that be a resource for you here?", "You have told me {memory}; how can you use that?"],
    closeNegative: ["What's one small step you could take in the next twenty four hours?", "Name one thing you can do today, however small."],
    close: ["What's your first step, and when will you take it?", "What will you do in the next twenty four hours?"],
    insight: ["What's one step on {topic} you could take this week?", "You keep returning to {topic}. What goal is hiding there?"],
  },
  reflective: {
    greeting: ["Hello{name}. Let's take a quiet moment. How are you, really?", "Hi{name}. I'm here. What's present for you right now?"],
    thanks: ["Thank you for being open with me.", "You're welcome. It's good to pause together."],
    farewell: ["Goodbye{name}. Carry a little of this calm with you.", "Rest well{name}. Notice how you feel tomorrow morning."],
    empty: ["Sometimes there are no words yet, and that's fine. Take your time; I'm listening."],
    foreign: ["You said \"{quote}\". I can only reflect in English for now, but I notice you wanted to share something. What is it, in English?"],
    openNegative: ["Let's slow down for a moment.", "I can hear the weight in that."],
    openPositive: ["There's warmth in what you said.", "I can hear the lightness in that."],
    openQuestion: ["That question seems to matter to you.", "Let's sit with that question for a moment."],
    openStatement: ["Let's pause on that.", "I'm taking that in."],
    mirror: ["So {mirror}.", "What I hear is that {mirror}."],
    topic: ["What feels most important about {topic}?", "When you think of {topic}, what do you notice in yourself?"],
    topicQuestion: ["What does your own answer about {topic} want to be?", "Underneath the question about {topic}, what are you hoping for?"],
    memory: ["I'm also holding on to something you told me: {memory}.", "It comes to mind that {memory}."],
    closeNegative: ["Take a breath, and notice what comes up.", "Be curious about the feeling, rather than fighting it."],
    close: ["What stands out to you as you hear it back?", "What do you notice now?"],
    insight: ["What do you notice when you hear that back?", "It may be worth asking what {topic} means to you right now."],
  },
  humorous: {
    greeting: ["Well hello{name}! Your favourite voice in your own head is back. What's up?", "Hey{name}! I cleared my schedule, which was easy, since I'm software."],
    thanks: ["You're welcome! I accept payment in compliments.", "Any time. I'm basically a very chatty echo."],
    farewell: ["Bye{name}! Try not to have too much fun without me.", "See you{name}! I'll be here, doing absolutely nothing, brilliantly."],
    empty: ["That message was so quiet even my microphone yawned. Try again with words, I'm all ears, metaphorically."],
    foreign: ["\"{quote}\"! I would answer, but my language skills stop at English and the occasional dramatic sigh. Try me in English?"],
    openNegative: ["Well, that sounds about as fun as assembling furniture without the instructions.", "Oof. That's a plot twist nobody ordered."],
    openPositive: ["Look at you, winning at life!", "Someone call the newspapers, we have good news!"],
    openQuestion: ["Ah, a question! My favourite kind of sentence.", "Great question. Let me put on my thinking hat, which is also imaginary."],
    openStatement: ["Ah, the plot thickens.", "Noted, and filed under \"very important things\"."],
    mirror: ["So {mirror}. Honestly, that could be the title of a sitcom episode.", "You said {mirror}, and I respect the drama."],
    topic: ["If {topic} were a sitcom, this would be the episode right before the twist.", "Jokes aside, one small step with {topic} might help more than you think."],
    topicQuestion: ["About {topic}: the honest answer is, start small and pretend you meant to.", "With {topic}, the secret is to look confident and take notes."],
    memory: ["Also, I remember {memory}, which I'm contractually obliged to mention.", "And since I remember {memory}, I feel like a very good friend right now."],
    closeNegative: ["Seriously though, I'm sorry it's tough. Be kind to yourself.", "Jokes aside, you have handled harder things, and I'm on your side."],
    close: ["Seriously though, what do you think the next step is?", "Anyway, tell me more, I'm invested now."],
    insight: ["{Topic} is clearly the main character in our chats lately.", "If our chats had a theme song, it would be about {topic}."],
  },
};

/** A small fast seeded generator (mulberry32); deterministic for a given 32-bit seed. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a hash of a string, 32-bit. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function fill(template: string, slots: Slots): string | undefined {
  let missing = false;
  const out = template.replace(/\{(\w+)\}/g, (_, key: string) => {
    if (key === 'name') return slots.name ? `, ${slots.name}` : '';
    const value = key === 'Topic' ? slots.topic && slots.topic.charAt(0).toUpperCase() + slots.topic.slice(1) : slots[key as keyof Slots];
    if (!value) missing = true;
    return value ?? '';
  });
  return missing ? undefined : out;
}

/** Picks one template of `bank` whose slots are all filled and that is not in `used`; undefined when none fits. */
function pick(bank: Bank, slots: Slots, random: () => number, used: ReadonlyArray<{ text: string }> = []): string | undefined {
  const usable = bank.map((t) => fill(t, slots)).filter((t): t is string => t !== undefined && !used.some((u) => u.text === t));
  if (usable.length === 0) return undefined;
  return usable[Math.floor(random() * usable.length)];
}

const GREETING = /^(hi|hello|hey|hiya|good (morning|afternoon|evening)|greetings|yo|howdy)\b/i;
const THANKS = /\b(thanks|thank you|thx|cheers)\b/i;
const FAREWELL = /^(bye|goodbye|good night|goodnight|see you|talk (to you )?later|ciao)\b/i;
const QUESTION_START = /^(what|why|how|when|where|who|which|should|could|would|can|do|does|did|is|are|am|will|may)\b/i;

/** Reads the user's message: kind, mood, mirrored clause and topic. */
function read(userText: string, history: ChatTurn[]): Reading {
  const text = normaliseText(userText);
  if (!/[\p{L}\p{N}]/u.test(text)) return { kind: 'empty', mood: 'neutral' };
  if (!hasLatinWords(text)) {
    const quote = text.length > 40 ? `${text.slice(0, 40)}…` : text;
    return { kind: 'statement', mood: 'neutral', quote };
  }
  const { negative, positive } = moodOf(text);
  const mood = negative.length > positive.length ? 'negative' : positive.length > negative.length ? 'positive' : 'neutral';
  const feeling = mood === 'negative' ? negative[0] : mood === 'positive' ? positive[0] : undefined;
  const short = text.split(' ').length <= 6;
  let kind: Reading['kind'] = 'statement';
  if (GREETING.test(text) && short) kind = 'greeting';
  else if (THANKS.test(text) && short) kind = 'thanks';
  else if (FAREWELL.test(text) && short) kind = 'farewell';
  else if (/\?\s*$/.test(text) || QUESTION_START.test(text)) kind = 'question';
  const recurring = new Set(history.filter((t) => t.role === 'user').flatMap((t) => contentWords(t.text).map(stem)));
  const topic = keyPhrase(text, recurring);
  const mirror = mirrorClause(text);
  return {
    kind,
    mood,
    ...(feeling ? { feeling } : {}),
    ...(mirror ? { mirror } : {}),
    ...(topic ? { topic: topic.length > 60 ? topic.slice(0, 60) : topic } : {}),
  };
}

/**
 * Fits prioritised sentences into `maxChars`: drops the lowest-priority sentences first, keeping
 * the survivors in their original order; cuts the last one at a word when even one is too long.
 */
function fit(parts: Array<{ text: string; priority: number }>, maxChars: number): string {
  const kept = parts.filter((p) => p.text.trim() !== '');
  const join = (list: typeof kept): string => list.map((p) => p.text.trim()).join(' ');
  while (kept.length > 1 && join(kept).length > maxChars) {
    let lowest = 0;
    for (let i = 1; i < kept.length; i++) if (kept[i]!.priority <= kept[lowest]!.priority) lowest = i;
    kept.splice(lowest, 1);
  }
  const text = join(kept);
  if (text.length <= maxChars) return text;
  const cut = text.lastIndexOf(' ', maxChars - 1);
  const head = text.slice(0, cut > 0 ? cut : maxChars - 1).replace(/[\s,;:.!?-]+$/, '');
  return `${head}.`.slice(0, maxChars);
}

/** Options of {@link TemplateChatModel}. */
export interface TemplateChatOptions {
  /** Seed used when a request has none (default 1). */
  defaultSeed?: number;
}

/** The smallest reply budget honoured, characters; smaller `maxChars` values are raised to it. */
export const MIN_REPLY_CHARS = 3;

/**
 * {@link ChatModel} without a model (name `template`): rule-based, offline, deterministic.
 *
 * - `reply`: answers in the persona's manner, mirroring the user's first-person clause
 *   ("I'm worried about my exam" → "you're worried about your exam") or naming their topic,
 *   weaving in `request.memories[0]` when given, within `maxChars` characters (values below
 *   {@link MIN_REPLY_CHARS} count as that). Never empty: blank, emoji-only or non-Latin input
 *   gets a persona-specific answer. Same request and seed → same text.
 * - `extractMemories`: facts from the user's turns by pattern ({@link extractFacts}), second person,
 *   minus those already in `known`.
 * - `insight`: recurring topics and mood-word counts over the user's turns, with a persona closing.
 *
 * Never throws for any text input; honours an already-aborted `signal` by throwing its reason.
 */
export class TemplateChatModel implements ChatModel {
  readonly name = 'template';
  private readonly defaultSeed: number;

  constructor(options: TemplateChatOptions = {}) {
    this.defaultSeed = options.defaultSeed ?? 1;
  }

  async reply(request: ChatRequest): Promise<{ text: string }> {
    request.signal?.throwIfAborted();
    return { text: composeReply(request, request.seed ?? this.defaultSeed) };
  }

  async extractMemories(history: ChatTurn[], known: MemoryRecord[], options: { signal?: AbortSignal } = {}): Promise<string[]> {
    options.signal?.throwIfAborted();
    return extractFacts(history.filter((t) => t.role === 'user').map((t) => t.text), known);
  }

  async insight(history: ChatTurn[], persona: PersonaName, options: { signal?: AbortSignal } = {}): Promise<string> {
    options.signal?.throwIfAborted();
    return composeInsight(history, persona);
  }
}

/** The reply text for `request` under `seed`; see {@link TemplateChatModel}. */
export function composeReply(request: Pick<ChatRequest, 'persona' | 'history' | 'memories' | 'userText' | 'userName' | 'maxChars'>, seed: number): string {
  const banks = BANKS[request.persona] ?? BANKS.supportive;
  const random = generator(hash32(`${seed}|${request.persona}|${request.userText}`));
  const reading = read(request.userText, request.history);
  const name = request.userName ? normaliseText(request.userName, 40).replace(/[^\p{L}\p{N} '-]/gu, '').trim() : '';
  const memoryText = request.memories[0]?.text;
  const slots: Slots = {
    ...(name ? { name } : {}),
    ...(reading.mirror ? { mirror: reading.mirror } : {}),
    ...(reading.topic ? { topic: reading.topic } : {}),
    ...(reading.feeling ? { feeling: reading.feeling } : {}),
    ...(reading.quote ? { quote: reading.quote } : {}),
    ...(memoryText && hasLatinWords(memoryText) ? { memory: memoryAsClause(memoryText) } : {}),
  };
  const parts: Array<{ text: string; priority: number }> = [];
  const add = (bank: Bank, priority: number): void => {
    const text = pick(bank, slots, random, parts);
    if (text) parts.push({ text, priority });
  };
  if (reading.kind === 'empty') add(banks.empty, 9);
  else if (reading.quote) add(banks.foreign, 9);
  else if (reading.kind === 'greeting') add(banks.greeting, 9);
  else if (reading.kind === 'thanks') add(banks.thanks, 9);
  else if (reading.kind === 'farewell') add(banks.farewell, 9);
  else {
    const opener = reading.mood === 'negative' ? banks.openNegative : reading.mood === 'positive' ? banks.openPositive : reading.kind === 'question' ? banks.openQuestion : banks.openStatement;
    add(opener, 6);
    // Mirror the user's own words when they spoke about themselves; otherwise name the topic.
    if (slots.mirror) add(banks.mirror, 8);
    if (slots.topic && (!slots.mirror || random() < 0.5)) add(reading.kind === 'question' ? banks.topicQuestion : banks.topic, slots.mirror ? 4 : 8);
    if (!slots.mirror && !slots.topic) add(banks.close, 8);
  }
  if (slots.memory && reading.kind !== 'empty' && !reading.quote) add(banks.memory, 7);
  if ((reading.kind === 'statement' || reading.kind === 'question') && !reading.quote) add(reading.mood === 'negative' ? banks.closeNegative : banks.close, 5);
  const text = fit(parts, Math.max(MIN_REPLY_CHARS, Math.floor(request.maxChars)));
  return text || 'Mm.';
}

/** Single-valued facts (a newer statement replaces an older one in the same batch). */
type FactSlot = 'name' | 'home' | 'origin' | 'work' | 'other';

interface FactPattern {
  slot: FactSlot;
  pattern: RegExp;
  render: (m: RegExpExecArray) => string | undefined;
}

/** Words after which a captured phrase ends (`I live in Berlin and work…`). */
const PHRASE_END = /\s+(?:and|but|because|since|so|though|although|which|who|where|when|while|if|or|with my|these days|right now|at the moment)\b.*$/i;
/** Objects that are not preferences (`I like it`, `I love that`). */
const VAGUE_OBJECTS = /^(it|that|this|them|him|her|you|when|how|what|the idea|to think|being|doing|going|getting|so|very|really)\b/i;
/** Things one "has" that are not lasting facts. */
const TRANSIENT = /^(question|problem|meeting|headache|idea|feeling|lot|bit|few|couple|test|exam|appointment|cold|call|minute|moment|second|look|chance|dream|good|great|bad|hard|busy|long|quick|day|night|week|party|date|deadline|plan|thought|fever|doubt)\b/i;

/** Cleans a captured phrase: cut at a conjunction, at most `maxWords` words, pronouns mirrored, no final punctuation. */
function phrase(raw: string | undefined, maxWords = 6): string | undefined {
  if (!raw) return undefined;
  const cut = raw.replace(PHRASE_END, '').replace(/\s+(too|as well|a lot|very much|so much)$/i, '').trim();
  const words = cut.split(/\s+/).filter(Boolean);
  if (words.length === 0 || words.length > maxWords) return words.length ? swapPerson(words.slice(0, maxWords).join(' ')) : undefined;
  return swapPerson(words.join(' '));
}

function capitaliseName(name: string): string {
  return name
    .split(/\s+/)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(' ');
}

const FACT_PATTERNS: FactPattern[] = [
  {
    slot: 'name',
    pattern: /\b(?:my name is|my name's|call me|i am called|i'm called)\s+([\p{L}'-]+)(\s+[\p{Lu}][\p{L}'-]*)?/iu,
    render: (m) => (/^(not|a|the|just|so|very|really)$/i.test(m[1]!) ? undefined : `Your name is ${capitaliseName(`${m[1]}${m[2] ?? ''}`)}.`),
  },
  { slot: 'home', pattern: /\bi (?:live|am living|'m living) in\s+([^,.;!?]+)/i, render: (m) => withPhrase(m[1], (p) => `You live in ${p}.`) },
  { slot: 'origin', pattern: /\bi(?:'m| am) (?:originally )?from\s+([^,.;!?]+)/i, render: (m) => withPhrase(m[1], (p) => `You are from ${p}.`) },
  {
    slot: 'work',
    pattern: /\bi work (as|at|for|in)\s+([^,.;!?]+)/i,
    render: (m) => withPhrase(m[2], (p) => `You work ${m[1]!.toLowerCase()} ${p}.`),
  },
  {
    slot: 'other',
    pattern: /\bi (?:really |absolutely |also )?(like|love|enjoy|adore)\s+([^,.;!?]+)/i,
    render: (m) => (VAGUE_OBJECTS.test(m[2]!) ? undefined : withPhrase(m[2], (p) => `You ${m[1]!.toLowerCase()} ${p}.`)),
  },
  {
    slot: 'other',
    pattern: /\bi (?:don't|do not|really don't) like\s+([^,.;!?]+)/i,
    render: (m) => (VAGUE_OBJECTS.test(m[1]!) ? undefined : withPhrase(m[1], (p) => `You don't like ${p}.`)),
  },
  {
    slot: 'other',
    pattern: /\bmy (favou?rite) ([\p{L} ]{2,30}?) is\s+([^,.;!?]+)/iu,
    render: (m) => withPhrase(m[3], (p) => `Your ${m[1]!.toLowerCase()} ${m[2]!.toLowerCase()} is ${p}.`),
  },
  {
    slot: 'other',
    pattern: /\bi (?:have|'ve got|have got)\s+(a|an|two|three|four|five|\d+)\s+([^,.;!?]+)/i,
    render: (m) => (TRANSIENT.test(m[2]!) ? undefined : withPhrase(m[2], (p) => `You have ${m[1]!.toLowerCase()} ${p}.`, 7)),
  },
  { slot: 'other', pattern: /\bi(?:'m| am) allergic to\s+([^,.;!?]+)/i, render: (m) => withPhrase(m[1], (p) => `You are allergic to ${p}.`) },
  {
    slot: 'other',
    pattern: /\b[Mm]y (wife|husband|partner|son|daughter|sister|brother|mother|mom|mum|father|dad|friend|best friend|dog|cat|boss)(?:'s name)? is (?:called |named )?([\p{Lu}][\p{L}'-]+)/u,
    render: (m) => `Your ${m[1]!.toLowerCase()} is called ${m[2]}.`,
  },
  { slot: 'other', pattern: /\bmy birthday is (?:on )?\s*([^,.;!?]+)/i, render: (m) => withPhrase(m[1], (p) => `Your birthday is ${p}.`, 4) },
];

function withPhrase(raw: string | undefined, render: (p: string) => string, maxWords = 6): string | undefined {
  const p = phrase(raw, maxWords);
  return p && /\p{L}{2,}/u.test(p) ? render(p) : undefined;
}

/** Significant stems of a fact, for duplicate checks. */
function factTerms(text: string): Set<string> {
  return new Set(contentWords(text.replace(/\b(your|you|are|is)\b/gi, ' ')).map(stem));
}

/**
 * Facts stated in `userTexts` (oldest first), as short second-person sentences ("You live in
 * Berlin."), found by these patterns: "my name is …" / "call me …", "I live in …", "I'm from …",
 * "I work as/at/for/in …", "I like/love/enjoy …", "I don't like …", "my favourite … is …",
 * "I have a/an/two … " (not passing things such as a question or a headache), "I'm allergic to …",
 * "my sister/dog/… is called …", "my birthday is …".
 * A fact is left out when `known` already says it (same significant words, or all of its words are
 * in one known memory) or when an earlier fact in the batch did; for name, home, origin and work
 * the latest statement wins. At most 10 facts.
 */
export function extractFacts(userTexts: string[], known: MemoryRecord[]): string[] {
  const found: Array<{ slot: FactSlot; text: string }> = [];
  for (const raw of userTexts) {
    for (const sentence of splitSentences(normaliseText(raw, 4000))) {
      for (const { slot, pattern, render } of FACT_PATTERNS) {
        const global = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
        for (const match of sentence.matchAll(global)) {
          const text = render(match as unknown as RegExpExecArray);
          if (!text) continue;
          if (slot !== 'other') {
            const previous = found.findIndex((f) => f.slot === slot);
            if (previous >= 0) found.splice(previous, 1);
          }
          found.push({ slot, text });
        }
      }
    }
  }
  const knownTerms = known.map((m) => factTerms(m.text));
  const out: string[] = [];
  for (const { text } of found) {
    const terms = factTerms(text);
    const coveredBy = (set: Set<string>): boolean => terms.size > 0 && [...terms].every((t) => set.has(t));
    if (isDuplicateMemory(text, known) || knownTerms.some(coveredBy)) continue;
    if (out.some((o) => coveredBy(factTerms(o)))) continue;
    out.push(text);
    if (out.length >= 10) break;
  }
  return out;
}

/**
 * A short reflection on the user's side of `history`: the number of messages, the topics that
 * came back in more than one message, and how many heavy and light mood words they used, with a
 * closing in the persona's manner. Deterministic; never empty.
 */
export function composeInsight(history: ChatTurn[], persona: PersonaName): string {
  const banks = BANKS[persona] ?? BANKS.supportive;
  const userTurns = history.filter((t) => t.role === 'user' && t.text.trim() !== '');
  if (userTurns.length === 0) return 'We have only just started talking. Tell me a little more and I will reflect it back to you.';
  // Topics: stems counted once per message; shown with their most common spelling.
  const counts = new Map<string, { count: number; firstSeen: number; spellings: Map<string, number> }>();
  userTurns.forEach((turn, index) => {
    const seen = new Set<string>();
    for (const word of contentWords(turn.text)) {
      if (word.length < 4 || !/^\p{L}+$/u.test(word)) continue;
      const key = stem(word);
      const entry = counts.get(key) ?? { count: 0, firstSeen: index, spellings: new Map<string, number>() };
      entry.spellings.set(word, (entry.spellings.get(word) ?? 0) + 1);
      if (!seen.has(key)) entry.count++;
      seen.add(key);
      counts.set(key, entry);
    }
  });
  const recurring = [...counts.values()]
    .filter((e) => e.count >= 2)
    .sort((a, b) => b.count - a.count || a.firstSeen - b.firstSeen)
    .slice(0, 2)
    .map((e) => ({ word: [...e.spellings.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0], count: e.count }));
  let negative: string[] = [];
  let positive: string[] = [];
  for (const turn of userTurns) {
    const mood = moodOf(turn.text);
    negative = negative.concat(mood.negative);
    positive = positive.concat(mood.positive);
  }
  const n = userTurns.length;
  const sentences: string[] = [];
  const messages = `${n} message${n === 1 ? '' : 's'}`;
  if (recurring.length === 2) {
    sentences.push(`Across your last ${messages}, you came back to ${recurring[0]!.word} ${times(recurring[0]!.count)} and ${recurring[1]!.word} ${times(recurring[1]!.count)}.`);
  } else if (recurring.length === 1) {
    sentences.push(`Across your last ${messages}, you came back to ${recurring[0]!.word} ${times(recurring[0]!.count)}.`);
  } else {
    sentences.push(`Across your last ${messages}, you touched on many different things.`);
  }
  if (negative.length || positive.length) {
    const heavy = negative.length ? `${negative.length} heavy word${negative.length === 1 ? '' : 's'} like "${mostCommon(negative)}"` : 'no heavy words';
    const light = positive.length ? `${positive.length} light one${positive.length === 1 ? '' : 's'} like "${mostCommon(positive)}"` : 'no light ones';
    const balance = negative.length > positive.length ? 'so things seem heavier lately.' : positive.length > negative.length ? 'so the mood leans bright.' : 'so the mood looks balanced.';
    sentences.push(`You used ${heavy} and ${light}, ${balance}`);
  }
  const topic = recurring[0]?.word ?? contentWords(userTurns[userTurns.length - 1]!.text)[0];
  const closing = pick(banks.insight, topic ? { topic } : {}, generator(hash32(`${persona}|${n}|${topic ?? ''}`)));
  if (closing) sentences.push(closing);
  return sentences.join(' ');
}

function times(count: number): string {
  return count === 2 ? 'twice' : `${count} times`;
}

function mostCommon(words: string[]): string {
  const counts = new Map<string, number>();
  for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0];
}
