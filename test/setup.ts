/**
 * Runs in every test file: before the file's process ends, the audio worker threads finish what
 * they are encoding and stop, so no thread is terminated inside a native libopus call.
 */
import { afterAll } from 'vitest';
import { closeAudioWorkers } from '../src/core/audio/workers.js';

afterAll(async () => {
  await closeAudioWorkers();
});
