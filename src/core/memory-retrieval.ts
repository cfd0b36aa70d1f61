/**
 * Which memories a turn's chat request carries. With a {@link TextEmbedder} (Gemini's
 * `gemini-embedding-001` when a Gemini key is set and `MEMORY_RETRIEVAL` is not `words`), by
 * meaning: each memory is embedded once (`RETRIEVAL_DOCUMENT`) and its vector kept, sealed, on the
 * memory record; the turn's text is embedded (`RETRIEVAL_QUERY`) and the most similar memories
 * above a cosine threshold are chosen. Without one, or when the embedder fails, by word overlap
 * (`selectMemories`), the offline method.
 */
import type { Logger } from './log.js';
import type { MemoryRecord, TextEmbedder } from './providers.js';
import type { MemoryRepository, UserKey } from './store/types.js';
import { decodeVector, encodeVector, selectMemories, selectMemoriesByVector } from './memory.js';

/** Default cosine similarity a memory needs to count as relevant (unit vectors, −1…1). */
export const DEFAULT_MIN_MEMORY_SIMILARITY = 0.6;
/** Most memories embedded in one turn (older memories get their vectors over the next turns). */
const MAX_EMBED_PER_TURN = 100;

/** Options of {@link MemoryRetriever}. */
export interface MemoryRetrieverOptions {
  memories: MemoryRepository;
  embedder?: TextEmbedder | undefined;
  logger: Logger;
  /** Cosine threshold, default {@link DEFAULT_MIN_MEMORY_SIMILARITY}. */
  minSimilarity?: number;
}

/** How the last selection was made, for logs and tests. */
export type RetrievalMethod = 'vector' | 'words';

export class MemoryRetriever {
  readonly #o: MemoryRetrieverOptions;
  constructor(options: MemoryRetrieverOptions) {
    this.#o = options;
  }

  /** True when memories are chosen by meaning. */
  get semantic(): boolean {
    return this.#o.embedder !== undefined;
  }

  /**
   * The `limit` memories most relevant to `query`, most relevant first. Embeds memories that have
   * no vector of the current model yet (and stores the vectors); falls back to word overlap, with a
   * warning, when the embedder fails. Never throws for an embedder failure.
   * @param memories the person's memories as listed from the store
   */
  async select(userKey: UserKey, memories: MemoryRecord[], query: string, limit = 3): Promise<{ memories: MemoryRecord[]; method: RetrievalMethod }> {
    const embedder = this.#o.embedder;
    if (!embedder || memories.length === 0 || !query.trim()) return { memories: selectMemories(memories, query, limit), method: 'words' };
    try {
      const missing = memories.filter((m) => m.vectorModel !== embedder.model || !m.vector || !decodeVector(m.vector)).slice(0, MAX_EMBED_PER_TURN);
      const [queryVector, ...docVectors] = await Promise.all([
        embedder.embed([query], { taskType: 'RETRIEVAL_QUERY' }).then((v) => v[0]!),
        ...(missing.length ? [embedder.embed(missing.map((m) => m.text), { taskType: 'RETRIEVAL_DOCUMENT' })] : []),
      ]);
      const fresh = docVectors[0] ?? [];
      if (fresh.length) {
        const update = new Map<string, { vector: string; model: string }>();
        missing.forEach((m, i) => {
          const vector = encodeVector(fresh[i]!);
          update.set(m.id, { vector, model: embedder.model });
          m.vector = vector;
          m.vectorModel = embedder.model;
        });
        await this.#o.memories.setVectors(userKey, update);
      }
      return { memories: selectMemoriesByVector(memories, queryVector, embedder.model, limit, this.#o.minSimilarity ?? DEFAULT_MIN_MEMORY_SIMILARITY), method: 'vector' };
    } catch (err) {
      this.#o.logger.warn({ err, embedder: embedder.name }, 'memory embeddings failed; choosing memories by word overlap');
      return { memories: selectMemories(memories, query, limit), method: 'words' };
    }
  }
}
