/**
 * What the audio worker threads run (loaded through `worker.mjs`). Each task is CPU-bound codec or
 * analysis work that would otherwise block the event loop: tens of milliseconds for a typical
 * voice note, most of a second for a 10-minute one.
 */
import type { PcmAudio } from '../providers.js';
import type { SampleAnalysis } from './types.js';
import { analyseSample } from './analysis.js';
import { decodeOggOpusInProcess, encodeOpusChunk, type OpusChunkJob } from './opus.js';

/** A task for the audio worker pool. */
export type AudioWorkerTask =
  | { kind: 'encode-opus'; job: OpusChunkJob }
  | { kind: 'decode-opus'; bytes: Uint8Array; sampleRateHz: number; maxDurationSec?: number }
  | { kind: 'analyse-sample'; pcm: PcmAudio }
  | { kind: 'ping' };

/**
 * Result of an `encode-opus` task: the packets packed into one buffer (a few kB per second of
 * audio, copied back to the caller) with each packet's length in bytes.
 */
export interface EncodedPackets {
  bytes: Uint8Array;
  lengths: number[];
}

/** What each task kind returns (undefined: libopus cannot do it here, the caller falls back). */
export interface AudioWorkerResults {
  'encode-opus': EncodedPackets | undefined;
  'decode-opus': PcmAudio | undefined;
  'analyse-sample': SampleAnalysis;
  ping: 'pong';
}

/** What the worker returns when the task itself threw (so the pool can tell it from its own failure). */
export interface AudioTaskFailure {
  taskFailed: string;
}

/** The worker's entry point: runs one task; an error thrown by the task comes back as {@link AudioTaskFailure}. */
export default function runAudioTask(task: AudioWorkerTask): AudioWorkerResults[AudioWorkerTask['kind']] | AudioTaskFailure {
  try {
    return runTask(task);
  } catch (err) {
    return { taskFailed: err instanceof Error ? err.message : String(err) };
  }
}

function runTask(task: AudioWorkerTask): AudioWorkerResults[AudioWorkerTask['kind']] {
  switch (task.kind) {
    case 'ping':
      return 'pong';
    case 'encode-opus': {
      const packets = encodeOpusChunk(task.job);
      if (!packets) return undefined;
      return { bytes: Buffer.concat(packets), lengths: packets.map((p) => p.length) };
    }
    case 'decode-opus':
      return decodeOggOpusInProcess(Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength), task.sampleRateHz, task.maxDurationSec);
    case 'analyse-sample':
      return analyseSample(task.pcm);
  }
}
