/** The word error rate helpers live in `src/core/wer.ts`; re-exported for the tests and the bench. */
export { normaliseWords, wordEdits, wordErrorRate } from '../../../src/core/wer.js';
