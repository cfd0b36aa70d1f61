// Microphone recording with MediaRecorder
// (https://developer.mozilla.org/en-US/docs/Web/API/MediaRecorder): WebM/Opus where the browser
// records it (Chromium, Firefox), MP4/AAC in Safari, whichever the browser reports it supports.

/** Container/codec choices, best first. */
const MIME_TYPES = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4;codecs=mp4a.40.2', 'audio/mp4', 'audio/webm'];

/** Longest recording, seconds (the server refuses longer chat voice notes by default at 600 s). */
export const MAX_RECORDING_SEC = 300;

/** True when this browser can record at all. */
export function canRecord() {
  return Boolean(navigator.mediaDevices?.getUserMedia) && typeof MediaRecorder !== 'undefined';
}

/** The media type MediaRecorder will be asked for ('' lets the browser choose). */
export function recordingMimeType() {
  if (typeof MediaRecorder === 'undefined' || !MediaRecorder.isTypeSupported) return '';
  return MIME_TYPES.find((t) => MediaRecorder.isTypeSupported(t)) ?? '';
}

/** A user-facing message for a getUserMedia/MediaRecorder failure. */
export function microphoneErrorMessage(err) {
  const name = err && err.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') return 'The browser did not allow the microphone. Allow it for this page (the icon in the address bar) and try again.';
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return 'No microphone was found. Connect one and try again.';
  if (name === 'NotReadableError') return 'The microphone is busy in another application.';
  if (!window.isSecureContext) return 'Recording needs a secure page: open VoiceTwin over https, or on http://127.0.0.1 / localhost.';
  return `Recording failed: ${err && err.message ? err.message : 'unknown error'}.`;
}

/**
 * One recording session: `start()` opens the microphone and records; `stop()` resolves with the
 * recording as a Blob (its `type` is the container's media type) and its length in seconds.
 * `onLevel(0..1)` is called about 20 times a second with the input level, for a meter.
 */
export class Recorder {
  constructor({ onLevel, onAutoStop } = {}) {
    this.onLevel = onLevel ?? (() => {});
    this.onAutoStop = onAutoStop ?? (() => {});
    this.recorder = null;
    this.stream = null;
    this.chunks = [];
    this.startedAt = 0;
  }

  get recording() {
    return this.recorder !== null && this.recorder.state === 'recording';
  }

  /** @throws {Error} with a user-facing message when the microphone cannot be used */
  async start() {
    if (!canRecord()) throw new Error('This browser cannot record audio. Use a recent Chrome, Edge, Firefox or Safari, or upload a recording instead.');
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, channelCount: 1 } });
    } catch (err) {
      throw new Error(microphoneErrorMessage(err), { cause: err });
    }
    const mimeType = recordingMimeType();
    try {
      this.recorder = new MediaRecorder(this.stream, mimeType ? { mimeType, audioBitsPerSecond: 48000 } : undefined);
    } catch (err) {
      this.release();
      throw new Error(microphoneErrorMessage(err), { cause: err });
    }
    this.chunks = [];
    this.recorder.ondataavailable = (e) => {
      if (e.data && e.data.size > 0) this.chunks.push(e.data);
    };
    this.recorder.start(250);
    this.startedAt = performance.now();
    this.meter();
    this.limit = setTimeout(() => this.onAutoStop(), MAX_RECORDING_SEC * 1000);
  }

  /** Stops; resolves with `{ blob, durationSec }`. */
  stop() {
    clearTimeout(this.limit);
    const recorder = this.recorder;
    if (!recorder) return Promise.reject(new Error('Nothing is being recorded.'));
    return new Promise((resolve, reject) => {
      recorder.onstop = () => {
        const durationSec = (performance.now() - this.startedAt) / 1000;
        const type = (recorder.mimeType || this.chunks[0]?.type || 'audio/webm').replace(/\s+/g, '');
        const blob = new Blob(this.chunks, { type });
        this.release();
        if (blob.size === 0) reject(new Error('The recording is empty. Check the microphone and try again.'));
        else resolve({ blob, durationSec });
      };
      recorder.onerror = (e) => {
        this.release();
        reject(new Error(`Recording failed: ${e.error?.message ?? 'unknown error'}.`));
      };
      recorder.stop();
    });
  }

  /** Stops without keeping anything. */
  cancel() {
    clearTimeout(this.limit);
    if (this.recorder && this.recorder.state !== 'inactive') {
      this.recorder.onstop = null;
      this.recorder.stop();
    }
    this.release();
  }

  release() {
    cancelAnimationFrame(this.frame);
    clearInterval(this.levelTimer);
    this.meterContext?.close().catch(() => {});
    this.meterContext = null;
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.recorder = null;
    this.onLevel(0);
  }

  meter() {
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      this.meterContext = new Ctx();
      const source = this.meterContext.createMediaStreamSource(this.stream);
      const analyser = this.meterContext.createAnalyser();
      analyser.fftSize = 1024;
      source.connect(analyser);
      const data = new Float32Array(analyser.fftSize);
      this.levelTimer = setInterval(() => {
        analyser.getFloatTimeDomainData(data);
        let sum = 0;
        for (const v of data) sum += v * v;
        const rms = Math.sqrt(sum / data.length);
        this.onLevel(Math.min(1, rms * 4));
      }, 50);
    } catch {
      // A level meter is a nicety; recording works without it.
    }
  }
}
