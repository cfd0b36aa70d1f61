/**
 * Memory retrieval: picks the memories most relevant to a turn by word overlap (with light
 * stemming and stop-word removal), breaking ties by recency. Pure and fast: a user has at most a few
 * hundred memories.
 */
import type { MemoryRecord } from './providers.js';
import { tokenize } from './text.js';

const STOP_WORDS = new Set(
  'a an and are as at be but by do does did for from had has have i i\'m im in is it its me my of on or our so that the their them then there these they this to was we were what when where which who will with you your yours am can could would should just about into than too very not no yes'.split(
    ' ',
  ),
);

function stem(word: string): string {
  return word.replace(/'s$/, '').replace(/(ing|ed|es|s)$/, '') || word;
}

function terms(text: string): Set<string> {
  return new Set(tokenize(text).filter((w) => !STOP_WORDS.has(w) && w.length > 1).map(stem));
}

/**
 * The `limit` memories most relevant to `query`, most relevant first. Memories sharing no word with
 * the query are returned only to fill up when `fillWithRecent` is true (newest first).
 */
export function selectMemories(memories: MemoryRecord[], query: string, limit = 3, fillWithRecent = false): MemoryRecord[] {
  const q = terms(query);
  const scored = memories.map((m) => {
    const mt = terms(m.text);
    let overlap = 0;
    for (const t of mt) if (q.has(t)) overlap++;
    const score = mt.size === 0 ? 0 : overlap / Math.sqrt(mt.size);
    return { m, score };
  });
  const relevant = scored.filter((s) => s.score > 0).sort((a, b) => b.score - a.score || b.m.createdAtMs - a.m.createdAtMs);
  const out = relevant.slice(0, limit).map((s) => s.m);
  if (fillWithRecent && out.length < limit) {
    const rest = memories.filter((m) => !out.includes(m)).sort((a, b) => b.createdAtMs - a.createdAtMs);
    out.push(...rest.slice(0, limit - out.length));
  }
  return out;
}

/** True when `candidate` says the same as an existing memory (same significant words). */
export function isDuplicateMemory(candidate: string, existing: MemoryRecord[]): boolean {
  const c = [...terms(candidate)].sort().join(' ');
  return existing.some((m) => [...terms(m.text)].sort().join(' ') === c);
}
