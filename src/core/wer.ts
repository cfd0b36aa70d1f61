/**
 * Word error rate: (substitutions + deletions + insertions) / reference words, by Levenshtein
 * alignment over words. Text is normalised first: lower case, hyphens split, punctuation other
 * than apostrophes dropped. Used by the reply fidelity check (`VERIFY_REPLIES`), the tests and
 * the offline-voice bench.
 */

/** Lower-case words of `text` with punctuation removed (`Americans,` → `americans`). */
export function normaliseWords(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/-/g, ' ')
    .replace(/[^\p{L}\p{N}' ]+/gu, ' ')
    .split(/\s+/)
    .filter(Boolean);
}

/** Word-level edit distance between `reference` and `hypothesis` word lists. */
export function wordEdits(reference: string[], hypothesis: string[]): number {
  let previous = Array.from({ length: hypothesis.length + 1 }, (_, j) => j);
  for (let i = 1; i <= reference.length; i++) {
    const current = [i];
    for (let j = 1; j <= hypothesis.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (reference[i - 1] === hypothesis[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[hypothesis.length]!;
}

/** Word error rate of `hypothesis` against `reference` (0 = perfect; can exceed 1). */
export function wordErrorRate(reference: string, hypothesis: string): { wer: number; edits: number; words: number } {
  const ref = normaliseWords(reference);
  const edits = wordEdits(ref, normaliseWords(hypothesis));
  return { wer: ref.length ? edits / ref.length : 0, edits, words: ref.length };
}
