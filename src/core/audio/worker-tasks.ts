/**
 * What the audio worker threads run (loaded through `worker.mjs`). Each task is CPU-bound codec
 * work that would otherwise block the event loop for tens of milliseconds.
 */
import { encodeOpusChunk, type OpusChunkJob } from './opus.js';

/** A task for the audio worker pool. */
export type AudioWorkerTask = { kind: 'encode-opus'; job: OpusChunkJob } | { kind: 'ping' };

/**
 * Result of an `encode-opus` task: the packets packed into one buffer (a few kB per second of
 * audio, copied back to the caller) with each packet's length in bytes.
 */
export interface EncodedPackets {
  bytes: Uint8Array;
  lengths: number[];
}

/** The worker's entry point: runs one task; undefined when libopus is not available in the worker. */
export default function runAudioTask(task: AudioWorkerTask): EncodedPackets | undefined | 'pong' {
  if (task.kind === 'ping') return 'pong';
  const packets = encodeOpusChunk(task.job);
  if (!packets) return undefined;
  return { bytes: Buffer.concat(packets), lengths: packets.map((p) => p.length) };
}
