import { describe, expect, it } from 'vitest';
import { isDuplicateMemory, selectMemories } from '../../src/core/memory.js';
import type { MemoryRecord } from '../../src/core/providers.js';

function memory(id: string, text: string, createdAtMs: number): MemoryRecord {
  return { id, text, createdAtMs, source: 'explicit' };
}

const dog = memory('m1', 'I have a dog named Rex', 1);
const sister = memory('m2', 'My sister lives in Lisbon', 2);
const walks = memory('m3', 'I love walking my dog in the park', 3);
const work = memory('m4', 'I work as a nurse', 4);
const all = [dog, sister, walks, work];

describe('selectMemories', () => {
  it('orders memories by relevance to the query and leaves out unrelated ones', () => {
    // "walks" shares dog and park (2 of 4 words); "dog" shares one of 3.
    expect(selectMemories(all, 'Should I take the dog to the park?', 3)).toEqual([walks, dog]);
    expect(selectMemories(all, 'Should I take the dog to the park?', 1)).toEqual([walks]);
  });

  it('matches words through light stemming and ignores stop words', () => {
    // "dogs" matches "dog"; the shorter memory (1 shared word of 3) ranks above the longer (1 of 4).
    expect(selectMemories(all, 'what about the dogs', 3)).toEqual([dog, walks]);
    expect(selectMemories(all, 'Is it the and of', 3)).toEqual([]);
  });

  it('breaks ties by recency, newest first', () => {
    const older = memory('a', 'My dog sleeps a lot', 10);
    const newer = memory('b', 'The dog barks at night', 20);
    expect(selectMemories([older, newer], 'my dog', 2)).toEqual([newer, older]);
  });

  it('fills up with the most recent other memories only when asked', () => {
    expect(selectMemories(all, 'the park', 3, true)).toEqual([walks, work, sister]);
    expect(selectMemories(all, 'the park', 3, false)).toEqual([walks]);
    expect(selectMemories(all, 'nothing related here', 2, true)).toEqual([work, walks]);
    expect(selectMemories([], 'dog', 3, true)).toEqual([]);
  });
});

describe('isDuplicateMemory', () => {
  it('finds a memory with the same significant words, whatever the case, order, punctuation or plural', () => {
    expect(isDuplicateMemory('i have a DOG named rex!', all)).toBe(true);
    expect(isDuplicateMemory('Named Rex, I have a dog', all)).toBe(true);
    expect(isDuplicateMemory('I have dogs named Rex', all)).toBe(true);
  });

  it('does not match a memory that says something more or different', () => {
    expect(isDuplicateMemory('I have a dog named Rex and a cat', all)).toBe(false);
    expect(isDuplicateMemory('I have a dog named Max', all)).toBe(false);
    expect(isDuplicateMemory('I have a dog named Rex', [])).toBe(false);
  });
});
