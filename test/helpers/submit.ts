/**
 * What an engine without a job queue does on `submit` (see `Engine.submit`), for the test engines
 * of the adapter tests: handle the message at once with the live target, then settle the target.
 */
import type { InboundMessage, ReplyTarget } from '../../src/core/types.js';

/** Runs `handle(message, target)` then `target.settle()`; resolves true (the message was new). */
export async function submitNow(handle: (message: InboundMessage, target: ReplyTarget) => Promise<void>, message: InboundMessage, target?: ReplyTarget): Promise<boolean> {
  if (!target) throw new Error('the test engine needs a live reply target');
  try {
    await handle(message, target);
  } finally {
    await target.settle?.();
  }
  return true;
}
