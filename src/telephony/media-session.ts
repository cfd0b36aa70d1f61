/**
 * One call of the pipeline mode over a Twilio Media Stream (bidirectional, `<Connect><Stream>`):
 * μ-law 8 kHz frames in → voice activity detection for the end of each turn → STT → the engine's
 * spoken turn (persona, memories, history) → TTS in the person's voice, sentence by sentence, sent
 * back as 20 ms μ-law `media` frames each sentence followed by a `mark`; when the caller speaks
 * over the twin, a `clear` empties Twilio's buffer and the reply stops.
 *
 * Message shapes: https://www.twilio.com/docs/voice/media-streams/websocket-messages
 * (from Twilio: `connected`, `start`, `media`, `dtmf`, `mark`, `stop`; to Twilio: `media`
 * `{ event, streamSid, media: { payload } }`, `mark` `{ event, streamSid, mark: { name } }`,
 * `clear` `{ event, streamSid }`).
 */
import type { Engine } from '../core/engine.js';
import type { Logger } from '../core/log.js';
import type { ClonedVoice, PcmAudio } from '../core/providers.js';
import { chunkSentences } from '../core/text.js';
import { decodeToPcm, parseWavHeader, wavToPcm } from '../core/audio/index.js';
import { resamplePcm } from '../core/audio/resample.js';
import { decodeMulaw, encodeMulaw, FRAME_MS, MULAW_SAMPLE_RATE_HZ, mulawFrames } from './mulaw.js';
import { VoiceActivityDetector, type VadSettings } from './vad.js';
import type { CallLog } from './call-log.js';

/** The socket a session talks through (a `ws` WebSocket satisfies it). */
export interface MediaSocket {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  readonly readyState: number;
}

/** Timings of one answered turn, ms (benchmarks, logs). */
export interface PhoneTurnTimings {
  /** Last speech frame of the caller → transcript ready (includes the end-of-turn silence). */
  sttMs: number;
  chatMs: number;
  /** End of the caller's speech (last speech frame) → first reply frame sent. */
  firstAudioMs: number;
}

/** Options of {@link MediaSession}. */
export interface MediaSessionOptions {
  engine: Engine;
  callLog: CallLog;
  logger: Logger;
  /** Longest call, seconds (MAX_CALL_SEC). */
  maxCallSec: number;
  /** Minutes one person may be on the phone per UTC day (DAILY_CALL_MIN). */
  dailyCallMin: number;
  vad?: Partial<VadSettings>;
  /** Called after each answered turn. */
  onTurn?: (timings: PhoneTurnTimings) => void;
}

/** Longest sentence piece sent to the synthesizer at once, characters. */
const SENTENCE_CHARS = 220;

interface TwilioMessage {
  event?: string;
  streamSid?: string;
  start?: { streamSid?: string; callSid?: string; customParameters?: Record<string, string>; mediaFormat?: { encoding?: string; sampleRate?: number; channels?: number } };
  media?: { track?: string; payload?: string };
  mark?: { name?: string };
}

/** Drives one call; feed it every text message of the socket with {@link onMessage}. */
export class MediaSession {
  private streamSid = '';
  private callSid = '';
  private userKey = '';
  private started = false;
  private ended = false;
  private readonly startedAt = performance.now();
  private readonly vad: VoiceActivityDetector;
  /** The reply in progress (transcription, chat, synthesis, sending); aborted by a barge-in. */
  private reply: AbortController | undefined;
  /** Marks sent whose audio Twilio has not finished playing. */
  private readonly pendingMarks = new Set<string>();
  private markSeq = 0;
  private turnSeq = 0;
  private limitTimer: NodeJS.Timeout | undefined;
  private voice: ClonedVoice | undefined;
  private voiceNoted = false;
  /** Wall-clock position of the inbound audio, ms since the stream started (from frame count). */
  private inboundMs = 0;
  private lastSpeechAt = 0;
  private turns: Promise<void> = Promise.resolve();
  private log: Logger;

  constructor(
    private readonly socket: MediaSocket,
    private readonly options: MediaSessionOptions,
  ) {
    this.vad = new VoiceActivityDetector(options.vad, FRAME_MS);
    this.log = options.logger;
  }

  /** True while the twin's audio is queued or playing at Twilio, or a reply is being prepared. */
  get speaking(): boolean {
    return this.pendingMarks.size > 0 || this.reply !== undefined;
  }

  /** Handles one message from Twilio; malformed ones are logged and ignored. */
  async onMessage(raw: string): Promise<void> {
    let msg: TwilioMessage;
    try {
      msg = JSON.parse(raw) as TwilioMessage;
    } catch {
      this.log.warn('media stream: a message that is not JSON was ignored');
      return;
    }
    switch (msg.event) {
      case 'connected':
        return;
      case 'start':
        return this.onStart(msg);
      case 'media':
        return this.onMedia(msg);
      case 'mark':
        if (msg.mark?.name) this.pendingMarks.delete(msg.mark.name);
        return;
      case 'stop':
        return this.finish('caller-hung-up');
      case 'dtmf':
        return;
      default:
        this.log.debug({ event: msg.event }, 'media stream: unknown event ignored');
    }
  }

  /** The socket closed (either side): ends the call record once. */
  async onClose(): Promise<void> {
    await this.finish('stream-closed');
  }

  private async onStart(msg: TwilioMessage): Promise<void> {
    const start = msg.start ?? {};
    const callSid = start.callSid ?? '';
    // The call record is written right after the voice webhook's answer: wait a moment for it.
    let owner = callSid ? await this.options.callLog.ownerOf(callSid) : undefined;
    for (let i = 0; callSid && !owner && i < 40; i++) {
      await new Promise((r) => setTimeout(r, 50));
      owner = await this.options.callLog.ownerOf(callSid);
    }
    if (!owner || start.customParameters?.callSid !== callSid || start.customParameters?.person !== owner) {
      this.log.warn({ hasCallSid: Boolean(callSid) }, 'media stream refused: the call was not answered by this server');
      this.socket.close(1008, 'unknown call');
      return;
    }
    const format = start.mediaFormat;
    if (format && (format.encoding !== 'audio/x-mulaw' || format.sampleRate !== MULAW_SAMPLE_RATE_HZ || (format.channels ?? 1) !== 1)) {
      this.log.warn({ encoding: format.encoding, sampleRateHz: format.sampleRate }, 'media stream refused: not μ-law 8 kHz mono');
      this.socket.close(1003, 'unsupported media format');
      return;
    }
    this.streamSid = msg.streamSid ?? start.streamSid ?? '';
    this.callSid = callSid;
    this.userKey = owner;
    this.started = true;
    this.log = this.options.logger.child({ channel: 'phone', personId: owner, callSid });
    const { engine } = this.options;
    const profile = await engine.store.profiles.get(owner);
    this.voice = profile?.state === 'ready' ? profile.voice : undefined;
    await this.options.callLog.change(callSid, (c) => ({ ...c, voice: this.voice?.label ?? 'default voice' }));
    // The call ends at MAX_CALL_SEC or when today's minutes run out, whichever is first.
    const usedSec = await this.options.callLog.secondsToday(owner);
    const allowedSec = Math.max(5, Math.min(this.options.maxCallSec, this.options.dailyCallMin * 60 - usedSec));
    const reason = allowedSec < this.options.maxCallSec ? 'daily-minutes' : 'max-call-length';
    this.limitTimer = setTimeout(() => void this.endForLimit(reason), allowedSec * 1000);
    this.limitTimer.unref?.();
    const user = await engine.store.users.get(owner);
    const name = user?.displayName ? `, ${user.displayName.split(/\s+/)[0]}` : '';
    this.log.info({ voice: this.voice ? 'cloned' : 'default', allowedSec }, 'phone call started (pipeline)');
    this.startReply(async (signal) => {
      await this.speak(`Hi${name}, it's your twin. What's on your mind?`, signal, 'greeting');
    });
  }

  private onMedia(msg: TwilioMessage): void {
    if (!this.started || this.ended) return;
    if (msg.media?.track && msg.media.track !== 'inbound') return;
    const payload = msg.media?.payload;
    if (!payload) return;
    const pcm = decodeMulaw(Buffer.from(payload, 'base64'));
    this.inboundMs += (pcm.length / MULAW_SAMPLE_RATE_HZ) * 1000;
    const event = this.vad.push(pcm, this.inboundMs);
    if (event.type !== 'end' && event.speech) this.lastSpeechAt = performance.now();
    // Barge-in: the caller talks over the twin for long enough.
    if (this.speaking && this.vad.active && this.vad.speechRunMs >= this.vad.settings.bargeInMs) this.bargeIn();
    if (event.type === 'end') {
      const endedAt = this.lastSpeechAt;
      const seq = ++this.turnSeq;
      this.turns = this.turns.then(() => this.answer(event.samples, seq, endedAt)).catch((err: unknown) => this.log.error({ err }, 'phone turn failed'));
    }
  }

  private bargeIn(): void {
    const hadAudio = this.pendingMarks.size > 0;
    this.reply?.abort(new Error('barge-in'));
    this.reply = undefined;
    this.pendingMarks.clear();
    if (hadAudio) this.send({ event: 'clear', streamSid: this.streamSid });
    this.log.info({ hadAudio }, 'barge-in: the caller spoke over the twin');
    void this.options.callLog.say(this.callSid, 'twin', '(interrupted)');
  }

  /** Starts a reply that a barge-in can abort. */
  private startReply(run: (signal: AbortSignal) => Promise<void>): Promise<void> {
    this.reply?.abort(new Error('superseded'));
    const controller = new AbortController();
    this.reply = controller;
    return run(controller.signal)
      .catch((err: unknown) => {
        if (controller.signal.aborted) return;
        this.log.error({ err }, 'phone reply failed');
      })
      .finally(() => {
        if (this.reply === controller) this.reply = undefined;
      });
  }

  private async answer(samples: Int16Array, seq: number, endedAt: number): Promise<void> {
    if (this.ended) return;
    const { engine, callLog } = this.options;
    await this.startReply(async (signal) => {
      const pcm: PcmAudio = { samples, sampleRateHz: MULAW_SAMPLE_RATE_HZ };
      const transcript = await engine.providers.stt.transcribe(pcm, { signal });
      const sttMs = performance.now() - endedAt;
      signal.throwIfAborted();
      const heard = transcript.text.trim();
      if (!heard) {
        await this.speak("Sorry, I didn't catch that. Could you say it again?", signal, `turn-${seq}`);
        return;
      }
      await callLog.say(this.callSid, 'caller', heard);
      const turn = await engine.spokenTurn(this.userKey, heard, {
        messageId: `phone:${this.callSid}:${seq}`,
        sttSec: transcript.durationSec,
        ...(transcript.provider ? { sttProvider: transcript.provider } : {}),
      });
      signal.throwIfAborted();
      await callLog.say(this.callSid, 'twin', turn.replyText);
      let firstAudioMs = -1;
      await this.speak(turn.replyText, signal, `turn-${seq}`, () => {
        firstAudioMs = performance.now() - endedAt;
      });
      this.options.onTurn?.({ sttMs, chatMs: turn.chatMs, firstAudioMs });
      this.log.info({ sttMs: Math.round(sttMs), chatMs: Math.round(turn.chatMs), firstAudioMs: Math.round(firstAudioMs) }, 'phone turn answered');
    });
  }

  /**
   * Speaks `text` sentence by sentence: the next sentence is synthesised while the current one is
   * sent; every sentence's frames are followed by a mark `<label>:<n>`.
   */
  private async speak(text: string, signal: AbortSignal, label: string, onFirstFrame?: () => void): Promise<void> {
    const sentences = chunkSentences(text, SENTENCE_CHARS);
    const synth = sentences.map(() => undefined as Promise<Buffer> | undefined);
    const start = (i: number): Promise<Buffer> | undefined => {
      if (i >= sentences.length) return undefined;
      synth[i] ??= this.synthesize(sentences[i]!, signal);
      return synth[i];
    };
    for (let i = 0; i < sentences.length; i++) {
      const audio = start(i)!;
      void start(i + 1)?.catch(() => undefined);
      const mulaw = await audio;
      signal.throwIfAborted();
      const frames = mulawFrames(mulaw);
      for (const frame of frames) {
        if (signal.aborted || this.ended) return;
        this.send({ event: 'media', streamSid: this.streamSid, media: { payload: frame.toString('base64') } });
        if (onFirstFrame) {
          onFirstFrame();
          onFirstFrame = undefined;
        }
      }
      const name = `${label}:${i}:${++this.markSeq}`;
      this.pendingMarks.add(name);
      this.send({ event: 'mark', streamSid: this.streamSid, mark: { name } });
    }
  }

  /** One sentence in the person's voice (the default voice otherwise) as 8 kHz μ-law bytes. */
  private async synthesize(text: string, signal: AbortSignal): Promise<Buffer> {
    const { engine } = this.options;
    const out = await engine.providers.tts.synthesize({ text, ...(this.voice ? { voice: this.voice } : {}), signal });
    await engine.recordUsage(this.userKey, { provider: out.provider ?? engine.providers.tts.name, ttsChars: out.characters });
    const fellBack = this.voice !== undefined && (out.voiceMatched === false || (out.provider !== undefined && out.provider !== this.voice.provider));
    if (fellBack && !this.voiceNoted) {
      this.voiceNoted = true;
      await this.options.callLog.change(this.callSid, (c) => ({ ...c, fallback: `${out.provider ?? 'the synthesizer'} spoke in its default voice: the cloned voice was unavailable` }));
    }
    return encodeMulaw((await toPcm8k(out.bytes, signal)).samples);
  }

  private async endForLimit(reason: string): Promise<void> {
    if (this.ended) return;
    this.log.info({ reason }, 'phone call reached its limit');
    const text = reason === 'daily-minutes' ? "That's all the phone time for today. Talk to you tomorrow, goodbye!" : "We've reached the time limit for this call. Goodbye!";
    await this.startReply((signal) => this.speak(text, signal, 'limit'));
    // Let Twilio play the goodbye (its marks come back), at most 10 s.
    const deadline = Date.now() + 10_000;
    while (this.pendingMarks.size > 0 && Date.now() < deadline && !this.ended) await new Promise((r) => setTimeout(r, 50));
    await this.finish(reason);
    if (this.socket.readyState === 1) this.socket.close(1000, reason);
  }

  private async finish(reason: string): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.limitTimer);
    this.reply?.abort(new Error('call ended'));
    if (!this.callSid) return;
    const durationSec = (performance.now() - this.startedAt) / 1000;
    const ourReason = reason === 'daily-minutes' || reason === 'max-call-length' ? reason : undefined;
    await this.options.callLog.end(this.callSid, durationSec, ourReason).catch((err: unknown) => this.log.warn({ err }, 'call log not updated'));
    this.log.info({ durationSec: Math.round(durationSec), reason }, 'phone call ended');
  }

  private send(message: Record<string, unknown>): void {
    if (this.socket.readyState !== 1) return;
    this.socket.send(JSON.stringify(message));
  }
}

/** Decodes synthesised audio to 8 kHz mono PCM: 16-bit WAV in-process, anything else with ffmpeg. */
async function toPcm8k(bytes: Buffer, signal: AbortSignal): Promise<PcmAudio> {
  const header = parseWavHeader(bytes);
  if (header && header.subFormat === 1 && header.bitsPerSample === 16 && header.channels === 1) {
    const resampled = resamplePcm(wavToPcm(bytes), MULAW_SAMPLE_RATE_HZ);
    if (resampled) return resampled;
  }
  return decodeToPcm(bytes, { sampleRateHz: MULAW_SAMPLE_RATE_HZ, signal });
}
