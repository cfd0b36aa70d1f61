/**
 * Encoding one voice note as several independently encoded pieces, so the pieces can run on
 * several cores at once and the event loop stays free.
 *
 * Why the concatenation is one valid, gap-free stream: Opus packets are self-delimiting and carry
 * their own mode and bandwidth in the TOC byte (RFC 6716 §3.1), so a decoder accepts packets from
 * different encoders one after the other. With a lookahead of L samples (312 at 48 kHz, see
 * `opus.ts`), the encoder's packet f covers input samples [f·F − L, (f+1)·F − L) for frames of F
 * samples. A piece that starts at input sample m·F therefore produces, as its packet 0, exactly
 * the stream's frame m — except that it sees silence instead of the L samples before m·F (the
 * previous piece's encoder saw them but keeps them in its lookahead). So pieces cut at 20 ms frame
 * boundaries, all but the last encoded to exactly their whole frames and the last flushed, join
 * into a stream with the same length and timing as a single encoder's output, provided the
 * 20 ms on either side of each cut is quiet: then dropping those L samples (6.5 ms) and the
 * decoder meeting a fresh encoder's state are both inaudible. {@link planOpusPieces} only cuts
 * there. The same reasoning is behind Ogg/Opus seeking, where a decoder starting cold converges
 * within 80 ms (RFC 7845 §4.6).
 */
import type { PcmAudio } from '../providers.js';
import { encodeOpusChunk, muxVoiceNote, type OpusChunkJob } from './opus.js';

/** Shortest piece worth its own encoder, seconds. */
export const MIN_PIECE_SEC = 1.5;
/** A cut needs the 20 ms frames on both sides at least this far below the mean power, dB. */
export const QUIET_CUT_DB = -30;

/**
 * Where to cut `pcm` into at most `parts` pieces of similar length for separate encoders: at
 * 20 ms frame boundaries (multiples of sampleRateHz / 50 samples) whose two neighbouring frames are
 * quiet (power ≤ mean power + {@link QUIET_CUT_DB}), searched within a third of a piece's length
 * of the even split, the quietest first. Pieces are at least {@link MIN_PIECE_SEC} long. Where no
 * quiet boundary is near, no cut is made there, so speech without pauses stays in one piece.
 *
 * @param parts wanted number of pieces (≥ 1)
 * @returns the pieces' end offsets in samples, ascending; the last is `pcm.samples.length`
 */
export function planOpusPieces(pcm: PcmAudio, parts: number): number[] {
  const n = pcm.samples.length;
  const frameLen = pcm.sampleRateHz / 50;
  if (!Number.isInteger(frameLen) || frameLen <= 0) return [n];
  const minFrames = Math.ceil(MIN_PIECE_SEC * 50);
  const frames = Math.floor(n / frameLen);
  const pieces = Math.max(1, Math.min(Math.floor(parts), Math.floor(frames / minFrames)));
  if (pieces <= 1) return [n];

  const power = new Float64Array(frames);
  let total = 0;
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    for (let i = f * frameLen, end = i + frameLen; i < end; i++) sum += pcm.samples[i]! * pcm.samples[i]!;
    power[f] = sum / frameLen;
    total += power[f]!;
  }
  const threshold = (total / frames) * 10 ** (QUIET_CUT_DB / 10);
  const window = Math.floor(frames / pieces / 3);
  const ends: number[] = [];
  let previous = 0;
  for (let i = 1; i < pieces; i++) {
    const ideal = Math.round((i * frames) / pieces);
    const low = Math.max(previous + minFrames, ideal - window);
    const high = Math.min(frames - minFrames, ideal + window);
    let best = -1;
    let bestCost = Infinity;
    for (let m = low; m <= high; m++) {
      const cost = Math.max(power[m - 1]!, power[m]!);
      if (cost < bestCost || (cost === bestCost && Math.abs(m - ideal) < Math.abs(best - ideal))) {
        best = m;
        bestCost = cost;
      }
    }
    if (best > 0 && bestCost <= threshold) {
      ends.push(best * frameLen);
      previous = best;
    }
  }
  ends.push(n);
  return ends;
}

/** Runs encoder jobs (in worker threads or in this thread) and returns their packets in order. */
export type OpusChunkRunner = (jobs: OpusChunkJob[]) => Promise<Array<Buffer[] | undefined>>;

/** Runs the jobs one after another in this thread. */
export const encodeChunksInThread: OpusChunkRunner = async (jobs) => jobs.map((job) => encodeOpusChunk(job));

/**
 * Encodes `pcm` as one Ogg/Opus stream from separately encoded pieces ending at `ends` (from
 * {@link planOpusPieces}); the result has the same pre-skip and exact length as a single encoder's.
 *
 * @param encoderRateHz one of 8000, 12000, 16000, 24000, 48000
 * @param run where the pieces are encoded (default: in this thread)
 * @returns the Ogg/Opus bytes, or undefined when a piece cannot be encoded in-process (no libopus
 *   binding, a rate that cannot be converted): the caller then uses ffmpeg
 * @throws RangeError when an inner cut is not on a 20 ms frame boundary; Error when libopus fails
 */
export async function encodeOggOpusPieces(
  pcm: PcmAudio,
  encoderRateHz: number,
  bitrateBps: number,
  ends: number[],
  run: OpusChunkRunner = encodeChunksInThread,
): Promise<Buffer | undefined> {
  if (pcm.samples.length === 0) return undefined;
  const jobs: OpusChunkJob[] = [];
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    const end = ends[i]!;
    // A copy per piece, so it can be moved to a worker thread without detaching the caller's buffer.
    jobs.push({ samples: pcm.samples.slice(start, end), sourceRateHz: pcm.sampleRateHz, encoderRateHz, bitrateBps, final: i === ends.length - 1 });
    start = end;
  }
  const results = await run(jobs);
  if (results.some((r) => r === undefined)) return undefined;
  return muxVoiceNote(results.flatMap((r) => r!), pcm, encoderRateHz);
}
