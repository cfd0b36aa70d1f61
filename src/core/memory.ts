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

/** A vector as stored in {@link MemoryRecord.vector}: little-endian float32 values, base64. */
export function encodeVector(vector: Float32Array): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((x, i) => bytes.writeFloatLE(x, i * 4));
  return bytes.toString('base64');
}

/** The inverse of {@link encodeVector}; undefined when the text is not a whole number of float32 values. */
export function decodeVector(text: string): Float32Array | undefined {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length === 0 || bytes.length % 4 !== 0) return undefined;
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

/** Cosine similarity of two vectors, −1…1 (0 when either is all zeros or the lengths differ). */
export function cosineSimilarity(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/**
 * The `limit` memories whose vectors are most similar to `query`, most similar first, keeping only
 * those at or above `minSimilarity` (cosine). Memories without a vector of `model` are left out.
 */
export function selectMemoriesByVector(memories: MemoryRecord[], query: Float32Array, model: string, limit = 3, minSimilarity = 0.6): MemoryRecord[] {
  const scored: { m: MemoryRecord; score: number }[] = [];
  for (const m of memories) {
    if (!m.vector || m.vectorModel !== model) continue;
    const v = decodeVector(m.vector);
    if (!v) continue;
    const score = cosineSimilarity(query, v);
    if (score >= minSimilarity) scored.push({ m, score });
  }
  return scored.sort((a, b) => b.score - a.score || b.m.createdAtMs - a.m.createdAtMs).slice(0, limit).map((s) => s.m);
}
