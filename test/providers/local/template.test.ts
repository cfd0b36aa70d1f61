import { describe, expect, it } from 'vitest';
import { PERSONA_NAMES, renderSystemPrompt, type PersonaName } from '../../../src/core/personas.js';
import type { ChatRequest, ChatTurn, MemoryRecord } from '../../../src/core/providers.js';
import { splitSentences } from '../../../src/core/text.js';
import { keyPhrase, memoryAsClause, mirrorClause, swapPerson } from '../../../src/providers/local/language.js';
import { TemplateChatModel } from '../../../src/providers/local/template.js';

const model = new TemplateChatModel();

function request(userText: string, overrides: Partial<ChatRequest> = {}): ChatRequest {
  const persona = overrides.persona ?? 'supportive';
  return { persona, systemPrompt: renderSystemPrompt(persona, 'Ana'), history: [], memories: [], userText, maxChars: 600, seed: 7, ...overrides };
}

function memory(text: string, id = 'm1'): MemoryRecord {
  return { id, text, createdAtMs: 0, source: 'explicit' };
}

function turns(...texts: string[]): ChatTurn[] {
  return texts.flatMap((text, i) => [
    { role: 'user' as const, text, atMs: i * 2 },
    { role: 'twin' as const, text: 'I hear you.', atMs: i * 2 + 1 },
  ]);
}

describe('language helpers', () => {
  it('swaps first and second person with verb agreement', () => {
    expect(swapPerson('I am worried about my exam')).toBe('you are worried about your exam');
    expect(swapPerson("I'm proud of myself and I was right")).toBe("you're proud of yourself and you were right");
    expect(swapPerson('you helped me with your advice')).toBe('I helped you with my advice');
  });

  it('mirrors the first first-person clause, not a question about oneself', () => {
    expect(mirrorClause('Honestly, I feel stuck at work. Nothing moves.')).toBe('you feel stuck at work');
    expect(mirrorClause('What should I cook tonight?')).toBeUndefined();
    expect(mirrorClause('The weather is nice.')).toBeUndefined();
  });

  it("picks the phrase a message is about, from the listener's side", () => {
    expect(keyPhrase('My girlfriend left me last week.')).toBe('your girlfriend');
    expect(keyPhrase('I started my new job on Monday.')).toBe('your new job');
    expect(keyPhrase("I'm worried about the move.")).toBe('the move');
    expect(keyPhrase('Tell me a joke')).toBe('a joke');
    expect(keyPhrase('The train was late again.')).toBe('the train');
    expect(keyPhrase('ok')).toBeUndefined();
  });

  it('turns stored memories of any person into a clause that can follow "I remember"', () => {
    expect(memoryAsClause('I love hiking in the Alps.')).toBe('you love hiking in the Alps');
    expect(memoryAsClause('Has a sister called Mia.')).toBe('you have a sister called Mia');
    expect(memoryAsClause('Lives in Berlin')).toBe('you live in Berlin');
    expect(memoryAsClause('Your name is Ana.')).toBe('your name is Ana');
    expect(memoryAsClause('The user studies medicine')).toBe('you study medicine');
  });
});

describe('TemplateChatModel.reply', () => {
  it('is deterministic for the same input and seed', async () => {
    const req = request("I'm nervous about my job interview on Friday.", { memories: [memory('I work as a nurse')] });
    const first = await model.reply(req);
    const second = await new TemplateChatModel().reply({ ...req });
    expect(second.text).toBe(first.text);
  });

  it('varies with the seed across many seeds', async () => {
    const texts = new Set<string>();
    for (let seed = 0; seed < 20; seed++) texts.add((await model.reply(request('I had a long day at the office.', { seed }))).text);
    expect(texts.size).toBeGreaterThan(3);
  });

  it('answers in a visibly different manner for each persona', async () => {
    const userText = "I'm stressed about my exam tomorrow.";
    const replies = new Map<PersonaName, string>();
    for (const persona of PERSONA_NAMES) replies.set(persona, (await model.reply(request(userText, { persona }))).text);
    expect(new Set(replies.values()).size).toBe(PERSONA_NAMES.length);
    // Each persona's voice shows in its own words.
    expect(replies.get('supportive')).toMatch(/hard|sorry|a lot to carry|gentle|here with you/i);
    expect(replies.get('analytical')).toMatch(/facts|parts|evidence|clearly|step/i);
    expect(replies.get('creative')).toMatch(/imagine|story|colours|picture|weather|skies|texture|door/i);
    expect(replies.get('coaching')).toMatch(/step|control|goal|outcome|scale/i);
    expect(replies.get('reflective')).toMatch(/what I hear|so you|notice|slow down|weight|breath/i);
    expect(replies.get('humorous')).toMatch(/furniture|plot twist|sitcom|drama|jokes aside|seriously/i);
    // And the replies share few sentences: no two personas say the same sentence.
    const sentences = [...replies.values()].flatMap((t) => t.split(/(?<=[.!?])\s+/));
    const mirrorFree = sentences.filter((s) => !/exam/.test(s));
    expect(new Set(mirrorFree).size).toBe(mirrorFree.length);
  });

  it("reflects the user's own words, turning I into you", async () => {
    for (const persona of PERSONA_NAMES) {
      const { text } = await model.reply(request('I feel stuck at work and my manager ignores my ideas.', { persona }));
      expect(text, persona).toMatch(/you feel stuck at work|your manager/);
      expect(text).not.toMatch(/\bmy manager\b/);
    }
  });

  it('never repeats a sentence within a reply', async () => {
    for (const persona of PERSONA_NAMES) {
      for (let seed = 0; seed < 10; seed++) {
        for (const userText of ['ok', 'hmm', 'The train was late again.', 'I got the promotion!']) {
          const sentences = splitSentences((await model.reply(request(userText, { persona, seed }))).text);
          expect(new Set(sentences).size, `${persona} ${seed} ${userText}`).toBe(sentences.length);
        }
      }
    }
  });

  it('names the topic of a question', async () => {
    const { text } = await model.reply(request('How do I get better at public speaking?', { persona: 'analytical' }));
    expect(text).toMatch(/public|speaking/);
  });

  it('weaves in the most relevant memory, and only the first', async () => {
    for (const persona of PERSONA_NAMES) {
      const { text } = await model.reply(request('I need a break this weekend.', { persona, memories: [memory('I love hiking in the Alps'), memory('Has a cat called Tom', 'm2')] }));
      expect(text, persona).toContain('you love hiking in the Alps');
      expect(text).not.toContain('Tom');
    }
  });

  it('greets, thanks and says goodbye by name', async () => {
    expect((await model.reply(request('Hi there', { userName: 'Ana' }))).text).toMatch(/^(Hi|Hello), Ana/);
    expect((await model.reply(request('thanks!', { persona: 'humorous' }))).text).toMatch(/welcome|any time/i);
    expect((await model.reply(request('bye', { persona: 'coaching', userName: 'Ana' }))).text).toMatch(/Ana/);
  });

  it('respects maxChars and never returns empty text, even for odd input', async () => {
    const odd = ['', '   ', '🙂🙂🙂', '?!?!', '12345', '广州市房地产中介协会分析', 'a'.repeat(5000), 'I '.repeat(2000), '<script>alert(1)</script>', 'ㅤ'];
    for (const persona of PERSONA_NAMES) {
      for (const userText of odd) {
        for (const maxChars of [1, 20, 80, 400]) {
          const { text } = await model.reply(request(userText, { persona, maxChars, memories: [memory('I love jazz')] }));
          expect(text.trim().length, `${persona} ${JSON.stringify(userText.slice(0, 10))} ${maxChars}`).toBeGreaterThan(0);
          expect(text.length).toBeLessThanOrEqual(Math.max(3, maxChars));
        }
      }
    }
  });

  it('answers non-English text by quoting it and saying it speaks English only', async () => {
    const spanish = await model.reply(request('Hola, ¿cómo estás? Estoy muy cansado.'));
    expect(spanish.text.length).toBeGreaterThan(20);
    const chinese = await model.reply(request('广州市房地产中介协会分析'));
    expect(chinese.text).toContain('广州市房地产中介协会分析');
    expect(chinese.text).toMatch(/English/);
  });

  it('keeps whole sentences when it trims to maxChars', async () => {
    const { text } = await model.reply(request("I'm stressed about my exam tomorrow and I haven't slept at all.", { maxChars: 120, memories: [memory('I love hiking')] }));
    expect(text.length).toBeLessThanOrEqual(120);
    expect(text).toMatch(/[.!?]$/);
  });

  it('throws the abort reason when aborted', async () => {
    await expect(model.reply(request('hello', { signal: AbortSignal.abort(new Error('stop')) }))).rejects.toThrow('stop');
  });
});

describe('TemplateChatModel.extractMemories', () => {
  it('finds facts stated in the user turns, in the second person', async () => {
    const history = turns(
      'Hi, my name is ana maria and I live in Porto, Portugal.',
      'I work as a nurse at the city hospital. I love jazz and long walks.',
      "My favourite food is grilled sardines. I have a dog called Rex. I'm allergic to peanuts.",
      'My sister is called Mia and my birthday is on 3 May.',
    );
    const facts = await model.extractMemories(history, []);
    expect(facts).toEqual([
      'Your name is Ana Maria.',
      'You live in Porto.',
      'You work as a nurse at the city hospital.',
      'You love jazz.',
      'Your favourite food is grilled sardines.',
      'You have a dog called Rex.',
      'You are allergic to peanuts.',
      'Your sister is called Mia.',
      'Your birthday is 3 May.',
    ]);
  });

  it('ignores the twin, passing things and vague likes', async () => {
    const history: ChatTurn[] = [
      { role: 'twin', text: 'My name is Twin and I live in the cloud.', atMs: 1 },
      { role: 'user', text: 'I have a question. I have a headache today. I like it when you talk. I would like to sleep.', atMs: 2 },
    ];
    expect(await model.extractMemories(history, [])).toEqual([]);
  });

  it('drops facts already known, in any wording, and repeats within the batch', async () => {
    const history = turns('I live in Berlin. I love climbing.', 'Did I say I love climbing? I love climbing!', 'I like tea.');
    const known = [memory('Lives in Berlin'), memory('I like tea', 'm2')];
    expect(await model.extractMemories(history, known)).toEqual(['You love climbing.']);
  });

  it('keeps the latest statement of a single-valued fact', async () => {
    expect(await model.extractMemories(turns('I live in Paris.', 'Actually we moved, I live in Rome now.'), [])).toEqual(['You live in Rome now.']);
  });
});

describe('TemplateChatModel.insight', () => {
  const history = turns(
    'Work was stressful again, my boss keeps changing the deadline.',
    'I could not sleep, thinking about work and the deadline.',
    'The weekend was great, I was happy to see my friends.',
    'Back to work tomorrow and I feel anxious.',
  );

  it('names recurring topics and counts mood words', async () => {
    const text = await model.insight(history, 'analytical');
    expect(text).toMatch(/Across your last 4 messages, you came back to work 3 times and deadline twice\./);
    expect(text).toMatch(/You used 2 heavy words like "anxious" and 2 light ones like "great"/);
  });

  it('closes in the manner of the persona and is deterministic', async () => {
    const closings = new Set<string>();
    for (const persona of PERSONA_NAMES) {
      const text = await model.insight(history, persona);
      expect(await model.insight(history, persona)).toBe(text);
      closings.add(text.split(/(?<=\.)\s+/).pop()!);
    }
    expect(closings.size).toBe(PERSONA_NAMES.length);
  });

  it('says something useful with no or little history', async () => {
    expect(await model.insight([], 'supportive')).toMatch(/just started/);
    expect((await model.insight(turns('hello'), 'coaching')).length).toBeGreaterThan(10);
  });
});
