/**
 * Streaming helpers for chat turns that are played while they are made: a chat reply streamed
 * from any {@link ChatModel} (natively when it has `streamReply`, else as one piece), and a
 * buffer that cuts a growing text into complete sentences, so each can go to TTS at once.
 */
import type { ChatModel, ChatReply, ChatRequest } from './providers.js';
import { splitSentences } from './text.js';

/**
 * Streams `model`'s reply to `request`: text deltas go to `onDelta` in order as the model writes
 * them. Models without {@link ChatModel.streamReply} answer with {@link ChatModel.reply} and the
 * whole text is handed over as one delta.
 * @returns the complete reply (its text is the deltas joined)
 * @throws ProviderError from the model; the signal's reason when `request.signal` aborts
 */
export async function streamChatReply(model: ChatModel, request: ChatRequest, onDelta: (delta: string) => void): Promise<ChatReply> {
  if (model.streamReply) return model.streamReply(request, onDelta);
  const reply = await model.reply(request);
  request.signal?.throwIfAborted();
  if (reply.text) onDelta(reply.text);
  return reply;
}

/** Marks the end of the text seen so far; never part of model output (a control character). */
const SENTINEL = '\u0000';

/**
 * Cuts text arriving in pieces into sentences with the same rules as {@link splitSentences}
 * (., !, ?, … followed by whitespace, line breaks; abbreviations such as "Dr." and decimals such
 * as "3.5" do not split). A sentence is complete once the whitespace after its end mark has
 * arrived, so "3." waiting for its "5" is never cut.
 */
export class SentenceBuffer {
  #pending = '';

  /** Adds a piece of text; returns the sentences it completed, in order (often none). */
  push(delta: string): string[] {
    this.#pending += delta.replaceAll(SENTINEL, '');
    const pieces = splitSentences(this.#pending + SENTINEL);
    const last = pieces.pop() ?? SENTINEL;
    // The sentinel stands alone only when the text so far ends at a sentence boundary.
    this.#pending = last === SENTINEL ? '' : last.slice(0, -1);
    return pieces;
  }

  /** The text after the last complete sentence (the sentence being written), trimmed; then empty. */
  flush(): string {
    const rest = this.#pending.trim();
    this.#pending = '';
    return rest;
  }
}
