// Playback through Web Audio (https://webaudio.github.io/web-audio-api/): voice notes are decoded
// with AudioContext.decodeAudioData and played by an AudioBufferSourceNode — not MediaSource,
// which iPhones lack — and voice bubbles with a waveform, duration and a play button.

let context = null;
/** The one AudioContext of the page. */
export function audioContext() {
  if (!context) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    context = new Ctx();
  }
  return context;
}

/**
 * Lets audio play without another gesture: call it inside a click or key handler (browsers
 * start an AudioContext suspended until the page is interacted with).
 */
export function unlockAudio() {
  const ctx = audioContext();
  if (ctx.state === 'suspended') ctx.resume().catch(() => {});
}

/**
 * Decodes compressed audio (Ogg/Opus, WebM, MP4, MP3, WAV — whatever the browser decodes).
 * @param {ArrayBuffer} bytes
 * @returns {Promise<AudioBuffer>}
 * @throws {Error} with a user-facing message when the browser cannot decode it
 */
export function decodeAudio(bytes) {
  const ctx = audioContext();
  return new Promise((resolve, reject) => {
    const fail = () => reject(new Error('This browser cannot play this voice note (it cannot decode Ogg/Opus audio). The text is shown instead.'));
    // Old Safari knows only the callback form; the promise form is used where it exists.
    const p = ctx.decodeAudioData(bytes, resolve, fail);
    if (p && typeof p.then === 'function') p.then(resolve, fail);
  });
}

/** `points` peak amplitudes (0..255) of an AudioBuffer, like the API's `waveform`. */
export function waveformOf(buffer, points = 256) {
  const data = buffer.getChannelData(0);
  const step = Math.max(1, Math.floor(data.length / points));
  const out = [];
  let max = 0;
  for (let i = 0; i < points; i++) {
    let peak = 0;
    for (let j = i * step; j < Math.min(data.length, (i + 1) * step); j++) peak = Math.max(peak, Math.abs(data[j]));
    out.push(peak);
    max = Math.max(max, peak);
  }
  return out.map((v) => Math.round((v / (max || 1)) * 255));
}

/** "0:07" for 7.2 seconds. */
export function formatDuration(sec) {
  const s = Math.max(0, Math.round(sec));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Bars drawn per bubble (the 256 points are reduced to this many). */
const BARS = 48;

/** The bubble playing now (one at a time). */
const now = { playing: null };

/**
 * A voice bubble: play/pause button, waveform bars that fill as it plays, and the duration.
 * Audio is fetched and decoded on first play (or by `load()`); while decoding it shows "Loading".
 * The element exposes its state for scripts and tests: `data-state` (idle, loading, playing,
 * played, error) and `data-decoded-sec` (the decoded buffer's duration, seconds).
 */
export class VoiceBubble {
  /**
   * @param {{ label: string, durationSec?: number, waveform?: number[], load: () => Promise<AudioBuffer> }} options
   *   `label` names the bubble for screen readers ("Your twin's reply"); `load` fetches and decodes.
   */
  constructor({ label, durationSec = 0, waveform = [], load }) {
    this.label = label;
    this.loader = load;
    this.buffer = null;
    this.source = null;
    this.el = document.createElement('div');
    this.el.className = 'voice';
    this.el.dataset.state = 'idle';
    this.button = document.createElement('button');
    this.button.type = 'button';
    this.button.className = 'play';
    this.wave = document.createElement('div');
    this.wave.className = 'wave';
    this.wave.setAttribute('aria-hidden', 'true');
    this.time = document.createElement('span');
    this.time.className = 'duration';
    this.el.append(this.button, this.wave, this.time);
    this.button.addEventListener('click', () => {
      unlockAudio();
      if (this.source) this.stop();
      else void this.play();
    });
    this.setDuration(durationSec);
    this.setWaveform(waveform);
    this.renderButton();
  }

  setDuration(sec) {
    this.durationSec = sec;
    this.time.textContent = formatDuration(sec);
    this.renderButton();
  }

  setWaveform(points) {
    this.wave.replaceChildren();
    const values = points.length ? points : new Array(BARS).fill(40);
    for (let i = 0; i < BARS; i++) {
      const from = Math.floor((i * values.length) / BARS);
      const to = Math.max(from + 1, Math.floor(((i + 1) * values.length) / BARS));
      let peak = 0;
      for (let j = from; j < to; j++) peak = Math.max(peak, values[j] ?? 0);
      const bar = document.createElement('span');
      bar.style.height = `${Math.max(8, Math.round((peak / 255) * 100))}%`;
      this.wave.append(bar);
    }
  }

  renderButton() {
    const isPlaying = Boolean(this.source);
    this.button.textContent = isPlaying ? '❚❚' : '▶';
    this.button.setAttribute('aria-label', `${isPlaying ? 'Pause' : 'Play'} ${this.label}, ${formatDuration(this.durationSec)}`);
  }

  /** Fetches and decodes the audio once. @returns {Promise<AudioBuffer>} */
  async load() {
    if (this.buffer) return this.buffer;
    this.el.dataset.state = 'loading';
    try {
      this.buffer = await this.loader();
    } catch (err) {
      this.el.dataset.state = 'error';
      throw err;
    }
    this.el.dataset.decodedSec = this.buffer.duration.toFixed(3);
    this.setDuration(this.buffer.duration);
    this.el.dataset.state = 'idle';
    return this.buffer;
  }

  /** Plays from the start (stopping any other bubble). */
  async play() {
    const buffer = await this.load();
    if (now.playing && now.playing !== this) now.playing.stop();
    const ctx = audioContext();
    if (ctx.state === 'suspended') await ctx.resume().catch(() => {});
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(ctx.destination);
    const startedAt = ctx.currentTime;
    source.onended = () => {
      if (this.source !== source) return;
      this.source = null;
      now.playing = null;
      this.el.dataset.state = 'played';
      this.el.dataset.playedSec = (ctx.currentTime - startedAt).toFixed(3);
      this.progress(0);
      this.renderButton();
    };
    this.source = source;
    now.playing = this;
    source.start();
    this.el.dataset.state = 'playing';
    this.renderButton();
    const tick = () => {
      if (this.source !== source) return;
      this.progress(Math.min(1, (ctx.currentTime - startedAt) / buffer.duration));
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  stop() {
    const source = this.source;
    this.source = null;
    if (now.playing === this) now.playing = null;
    if (source) {
      source.onended = null;
      try {
        source.stop();
      } catch {
        // already stopped
      }
    }
    this.el.dataset.state = 'idle';
    this.progress(0);
    this.renderButton();
  }

  progress(fraction) {
    const bars = this.wave.children;
    const lit = Math.round(fraction * bars.length);
    for (let i = 0; i < bars.length; i++) bars[i].classList.toggle('lit', i < lit);
  }
}
