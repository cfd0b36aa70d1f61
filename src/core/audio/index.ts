/**
 * The voice-note audio pipeline: sniff, probe and validate incoming audio; decode it to PCM;
 * analyse enrollment samples; normalise and join PCM; encode replies as Ogg/Opus voice notes.
 * Ogg/Opus is decoded and encoded in-process (libopus through `@discordjs/opus`, our own Ogg
 * muxer/demuxer) on the audio worker threads (`workers.ts`; a reply's pieces from `opus-chunks.ts`
 * in parallel), where enrollment samples are also analysed; everything else, and Ogg/Opus when that binding is absent, uses the system
 * ffmpeg/ffprobe through pipes (check them at start-up with `checkAudioTools`).
 */
export type { AudioContainer, AudioLimits, AudioProbe, SampleAnalysis } from './types.js';
export { sniffContainer, SUPPORTED_FORMATS_TEXT } from './sniff.js';
export { probeAudio, checkAudio, PROBE_TIMEOUT_MS, type ProbeOptions } from './probe.js';
export {
  checkDeclared,
  DEFAULT_AUDIO_LIMITS,
  ENROLLMENT_SAMPLE_LIMITS,
  DURATION_TOLERANCE_SEC,
  formatDuration,
  formatMegabytes,
  MIB,
} from './limits.js';
export { decodeToPcm, DECODE_TIMEOUT_MS, type DecodeOptions } from './decode.js';
export { pcmToWav, wavToPcm, parseWavHeader, type WavHeader } from './wav.js';
export { analyseSample, assessEnrollmentSample, speechLevelDb, ENROLLMENT_THRESHOLDS } from './analysis.js';
export { normaliseLoudness, concatPcm, DEFAULT_SPEECH_LEVEL_DB, PEAK_CEILING_DB } from './pcm.js';
export { encodeVoiceNote, voiceNoteWaveform, ENCODE_TIMEOUT_MS, WAVEFORM_POINTS, type EncodeOptions } from './encode.js';
export { checkAudioTools, type AudioToolsInfo } from './tools.js';
export { getOggOpusInfo, type OggOpusInfo } from './ogg.js';
export { AudioToolError } from './process.js';
export {
  setAudioWorkerThreads,
  audioWorkerThreads,
  warmAudioWorkers,
  closeAudioWorkers,
  defaultAudioWorkerThreads,
  analyseSampleOffThread,
  decodeOggOpusOffThread,
} from './workers.js';
