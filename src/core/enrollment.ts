/**
 * Enrollment: consent → collecting → processing → ready | failed.
 *
 * Consent: the user reads a displayed phrase with a random code word. With a reliable STT the
 * spoken phrase must match; with the offline STT (pocketsphinx, not reliable enough to check words)
 * an explicit typed confirmation plus a voice note with speech is required. Forwarded voice notes
 * are never samples. When the accepted speech reaches the cloner's threshold, a persisted clone job
 * runs in the background with progress messages; it resumes after a restart.
 */
import { randomInt, randomUUID } from 'node:crypto';
import type { Logger } from './log.js';
import { UserInputError } from './errors.js';
import type { InboundAudio, InboundMessage, OutboundReply, ReplyTarget } from './types.js';
import type { ClonedVoice, CloneSample, PcmAudio, Providers } from './providers.js';
import type { JobRecord, Store, UserRecord, VoiceProfile } from './store/types.js';
import { analyseSampleOffThread, assessEnrollmentSample, normaliseLoudness, pcmToWav, wavToPcm } from './audio/index.js';
import { countOf, tokenize } from './text.js';
import { APPROXIMATION_NOTE, describeVoice } from './wording.js';
import type { EngineEvent } from './engine.js';
import type { RenderedVoice } from './voice.js';

/** Dependencies the engine hands to {@link Enrollment}. */
export interface EnrollmentDeps {
  store: Store;
  providers: Providers;
  logger: Logger;
  now: () => number;
  /** Seconds of speech needed before cloning. */
  requiredSpeechSec: number;
  maxSampleAudioSec: number;
  maxAudioBytes: number;
  /** Seconds after which a running clone is announced as slow (CLONE_TIMEOUT_S). */
  cloneTimeoutSec: number;
  observer: (event: EngineEvent) => void;
  notify: (user: UserRecord, reply: OutboundReply) => Promise<void>;
  /** Runs the persisted clone job `jobId` in the background (on the job queue when there is one). */
  runClone: (jobId: string, userKey: string) => Promise<void>;
  speak: (user: UserRecord, text: string, voice: ClonedVoice) => Promise<RenderedVoice>;
  /** Checks, downloads and decodes inbound audio to 16 kHz mono PCM. */
  receive: (audio: InboundAudio, maxDurationSec: number) => Promise<PcmAudio>;
}

/** Share of the consent phrase's words a reliable STT must hear (the code word is always required). */
const CONSENT_MATCH_RATIO = 0.6;

/** A random code word for the consent phrase, from words the offline recogniser knows well. */
export function randomCodeWord(): string {
  const words = ['orange', 'river', 'garden', 'window', 'silver', 'rocket', 'yellow', 'morning', 'table', 'summer', 'pencil', 'ocean', 'mountain', 'purple', 'thunder', 'blanket'];
  return words[randomInt(words.length)]!;
}

/** The consent phrase the user reads aloud. */
export function consentPhrase(codeWord: string): string {
  return `I agree that VoiceTwin may clone my voice. My code word is ${codeWord}.`;
}

/** True when `heard` contains the code word and most of the phrase's words. */
export function consentMatches(heard: string, phrase: string, codeWord: string): boolean {
  const heardWords = new Set(tokenize(heard));
  if (!heardWords.has(codeWord.toLowerCase())) return false;
  const words = tokenize(phrase);
  const hits = words.filter((w) => heardWords.has(w)).length;
  return hits / words.length >= CONSENT_MATCH_RATIO;
}

/** The enrollment state machine. */
export class Enrollment {
  private readonly progress = new Map<string, (text: string) => Promise<void>>();

  constructor(private readonly deps: EnrollmentDeps) {}

  /** `/enroll`: shows the consent phrase, or offers to start over when a voice exists. */
  async begin(user: UserRecord, target: ReplyTarget): Promise<void> {
    const profile = await this.deps.store.profiles.get(user.key);
    if (profile?.state === 'ready') {
      return target.reply({
        kind: 'info',
        text: `Your twin voice is ready${profile.voice ? ` (${describeVoice(profile.voice)})` : ''}. Start over with new voice notes?`,
        buttons: [[{ label: 'Start over', data: 'enroll:restart' }]],
      });
    }
    if (profile?.state === 'processing') {
      return target.reply({ kind: 'info', text: 'Your voice is being cloned right now; I will tell you when it is ready.' });
    }
    if (profile?.state === 'collecting') {
      return target.reply({ kind: 'info', text: this.collectingText(profile) });
    }
    if (profile?.state === 'failed' && profile.speechSec >= profile.requiredSpeechSec) {
      return this.startClone(user, profile, target);
    }
    return this.askConsent(user, target);
  }

  /** Deletes samples and the old voice, then asks for consent again. */
  async restart(user: UserRecord, target: ReplyTarget): Promise<void> {
    const profile = await this.deps.store.profiles.get(user.key);
    if (profile?.state === 'processing') throw new UserInputError('BUSY', 'Your voice is being cloned right now. Try again when it is ready.');
    await this.dropVoiceData(user, profile);
    return this.askConsent(user, target);
  }

  /** Cancels a pending enrollment; samples collected so far are deleted. */
  async cancel(user: UserRecord, target: ReplyTarget): Promise<void> {
    const profile = await this.deps.store.profiles.get(user.key);
    if (!profile || profile.state === 'ready' || profile.state === 'processing') {
      return target.reply({ kind: 'info', text: 'There is no enrollment to cancel.' });
    }
    await this.dropVoiceData(user, profile);
    await target.reply({ kind: 'info', text: 'Enrollment cancelled; nothing of your voice is kept. Send /enroll to start again.' });
  }

  private async dropVoiceData(user: UserRecord, profile: VoiceProfile | undefined): Promise<void> {
    const { store, providers, logger } = this.deps;
    if (profile?.voice && providers.cloner.deleteVoice) {
      await providers.cloner.deleteVoice(profile.voice).catch((err: unknown) => logger.warn({ err }, 'provider voice deletion failed'));
    }
    for (const sample of await store.samples.list(user.key)) await store.blobs.delete(sample.blobKey);
    if (profile?.consent.audioBlobKey) await store.blobs.delete(profile.consent.audioBlobKey);
    await store.samples.deleteAll(user.key);
    await store.profiles.delete(user.key);
  }

  private async askConsent(user: UserRecord, target: ReplyTarget): Promise<void> {
    const codeWord = randomCodeWord();
    const phrase = consentPhrase(codeWord);
    const profile: VoiceProfile = {
      userKey: user.key,
      state: 'consent',
      consent: { phrase, codeWord },
      speechSec: 0,
      requiredSpeechSec: this.deps.requiredSpeechSec,
      updatedAtMs: this.deps.now(),
    };
    await this.deps.store.profiles.put(profile);
    this.deps.observer({ type: 'profile', userKey: user.key, state: 'consent' });
    const reliable = this.deps.providers.stt.reliable;
    // One step: with an unreliable recogniser the button and the voice note are asked for together,
    // in either order, and the button is never offered a second time.
    const steps = reliable
      ? 'Record a voice note reading this sentence aloud:'
      : 'Tap "I agree" below (or type I AGREE) and record a voice note reading this sentence aloud, in either order:';
    await target.reply({
      kind: 'info',
      text: `Before I clone your voice I need your consent. Only you may clone your own voice.\n${steps}\n\n"${phrase}"`,
      buttons: reliable ? [[{ label: 'Cancel', data: 'consent:cancel' }]] : [[{ label: 'I agree', data: 'consent:agree' }, { label: 'Cancel', data: 'consent:cancel' }]],
    });
  }

  /** A typed confirmation ("I agree" button or text) during consent. */
  async confirmTyped(user: UserRecord, profile: VoiceProfile, target: ReplyTarget): Promise<void> {
    const consent = { ...profile.consent, typedConfirmationAtMs: this.deps.now() };
    if (consent.heardText !== undefined && !this.deps.providers.stt.reliable) {
      return this.grant(user, { ...profile, consent: { ...consent, method: 'typed-and-spoken' } }, target);
    }
    await this.deps.store.profiles.put({ ...profile, consent, updatedAtMs: this.deps.now() });
    await target.reply({ kind: 'info', text: `Thank you. Now send the voice note reading: "${profile.consent.phrase}"` });
  }

  /** True when the message `messageId` was stored as one of the user's enrollment samples. */
  async isSample(userKey: string, messageId: string): Promise<boolean> {
    return (await this.deps.store.samples.list(userKey)).some((s) => s.sourceMessageId === messageId);
  }

  /** A voice note while enrolling: the spoken consent, or an enrollment sample. */
  async acceptVoiceNote(user: UserRecord, profile: VoiceProfile, message: InboundMessage, target: ReplyTarget): Promise<void> {
    if (message.forwarded) {
      throw new UserInputError('FORWARDED_SAMPLE', 'Forwarded voice notes cannot be used: I can only clone the voice of the person talking to me. Please record a new voice note yourself.');
    }
    const previous = (await this.deps.store.samples.list(user.key)).find((s) => s.sourceMessageId === message.id);
    if (previous) {
      // An earlier run of this job stored the sample; its reply part is in the outbox.
      return target.reply({ kind: 'status', text: `Sample accepted: ${countOf(roundSec(previous.speechSec), 'second')} of speech. ${this.collectingText(profile)}` });
    }
    const pcm = await this.deps.receive(message.audio!, this.deps.maxSampleAudioSec);
    const analysis = await analyseSampleOffThread(pcm);
    assessEnrollmentSample(analysis, { minSpeechSec: 1 });
    if (profile.state === 'consent') return this.spokenConsent(user, profile, pcm, target);
    await target.activity('typing');
    const { store, now } = this.deps;
    const normalised = normaliseLoudness(pcm);
    const blobKey = await store.blobs.put(user.key, pcmToWav(normalised), 'sample');
    await store.samples.add({
      id: randomUUID(),
      userKey: user.key,
      blobKey,
      durationSec: analysis.durationSec,
      speechSec: analysis.speechSec,
      loudnessDb: analysis.loudnessDb,
      snrDb: analysis.snrDb,
      sourceMessageId: message.id,
      createdAtMs: now(),
    });
    const speechSec = profile.speechSec + analysis.speechSec;
    const updated: VoiceProfile = { ...profile, speechSec, updatedAtMs: now() };
    this.deps.observer({ type: 'sample', userKey: user.key, speechSec: analysis.speechSec, totalSpeechSec: speechSec });
    if (speechSec < profile.requiredSpeechSec) {
      await store.profiles.put(updated);
      return target.reply({
        kind: 'status',
        text: `Sample accepted: ${countOf(roundSec(analysis.speechSec), 'second')} of speech. ${this.collectingText(updated)}`,
      });
    }
    await this.startClone(user, updated, target);
  }

  private async spokenConsent(user: UserRecord, profile: VoiceProfile, pcm: PcmAudio, target: ReplyTarget): Promise<void> {
    const { store, providers } = this.deps;
    await target.activity('typing');
    const transcript = await providers.stt.transcribe(pcm);
    const heardText = transcript.text.trim();
    const audioBlobKey = await store.blobs.put(user.key, pcmToWav(pcm), 'consent');
    if (profile.consent.audioBlobKey) await store.blobs.delete(profile.consent.audioBlobKey);
    const consent = { ...profile.consent, heardText, audioBlobKey };
    if (transcript.reliable ?? providers.stt.reliable) {
      if (!consentMatches(heardText, profile.consent.phrase, profile.consent.codeWord)) {
        await store.profiles.put({ ...profile, consent, updatedAtMs: this.deps.now() });
        throw new UserInputError(
          'CONSENT_MISMATCH',
          `I heard "${heardText.slice(0, 200)}", which does not match. Please read exactly: "${profile.consent.phrase}" (the code word is ${profile.consent.codeWord}).`,
        );
      }
      return this.grant(user, { ...profile, consent: { ...consent, method: 'spoken-match' } }, target);
    }
    if (consent.typedConfirmationAtMs !== undefined) {
      return this.grant(user, { ...profile, consent: { ...consent, method: 'typed-and-spoken' } }, target);
    }
    await store.profiles.put({ ...profile, consent, updatedAtMs: this.deps.now() });
    await target.reply({
      kind: 'info',
      text: 'I recorded your spoken consent. To finish, tap "I agree" in my message above, or type I AGREE.',
    });
  }

  private async grant(user: UserRecord, profile: VoiceProfile, target: ReplyTarget): Promise<void> {
    const now = this.deps.now();
    const updated: VoiceProfile = { ...profile, state: 'collecting', consent: { ...profile.consent, grantedAtMs: now }, updatedAtMs: now };
    await this.deps.store.profiles.put(updated);
    this.deps.observer({ type: 'profile', userKey: user.key, state: 'collecting' });
    await target.reply({
      kind: 'info',
      text: `Consent recorded, thank you. Now send voice notes of yourself talking naturally about anything, in a quiet place. ${this.collectingText(updated)}`,
    });
  }

  private collectingText(profile: VoiceProfile): string {
    const left = Math.max(0, profile.requiredSpeechSec - profile.speechSec);
    return `I have ${countOf(Math.floor(profile.speechSec), 'second')} of the ${profile.requiredSpeechSec} seconds of speech I need; about ${countOf(Math.ceil(left), 'second')} to go.`;
  }

  private async startClone(user: UserRecord, profile: VoiceProfile, target: ReplyTarget): Promise<void> {
    const { store, now } = this.deps;
    const job: JobRecord = { id: randomUUID(), kind: 'clone', userKey: user.key, state: 'queued', data: {}, createdAtMs: now(), updatedAtMs: now() };
    await store.jobs.put(job);
    await store.profiles.put({ ...profile, state: 'processing', updatedAtMs: now() });
    this.deps.observer({ type: 'profile', userKey: user.key, state: 'processing' });
    try {
      const edit = await target.status(`Enough speech collected (${countOf(Math.floor(profile.speechSec), 'second')}). Cloning your voice now…`);
      this.progress.set(job.id, edit);
    } catch (err) {
      this.deps.logger.warn({ err }, 'could not send clone status message');
    }
    await this.deps.runClone(job.id, user.key);
  }

  /** Runs (or resumes) a persisted clone job to `ready` or `failed`, telling the user either way. */
  async runCloneJob(jobId: string): Promise<void> {
    const { store, providers, logger, now } = this.deps;
    const job = await store.jobs.get(jobId);
    if (!job?.userKey) return;
    const user = await store.users.get(job.userKey);
    const profile = await store.profiles.get(job.userKey);
    if (!user || !profile || profile.state !== 'processing') {
      await store.jobs.put({ ...job, state: 'cancelled', updatedAtMs: now() });
      return;
    }
    const edit = this.progress.get(jobId);
    this.progress.delete(jobId);
    const say = async (text: string): Promise<void> => {
      try {
        if (edit) await edit(text);
        else await this.deps.notify(user, { kind: 'status', text });
      } catch (err) {
        logger.warn({ err }, 'clone progress message failed');
      }
    };
    await store.jobs.put({ ...job, state: 'running', updatedAtMs: now() });
    try {
      const records = await store.samples.list(user.key);
      const samples: CloneSample[] = [];
      for (const r of records) samples.push({ id: r.id, pcm: wavToPcm(await store.blobs.get(r.blobKey)), speechSec: r.speechSec });
      await say(`Cloning your voice from ${countOf(samples.length, 'voice note')} (${countOf(Math.floor(profile.speechSec), 'second')} of speech)…`);
      const slow = setTimeout(() => {
        void say(
          `Cloning is taking longer than usual (over ${this.deps.cloneTimeoutSec} s). Until it is done I answer in the default voice; I will tell you as soon as your own voice is ready.`,
        );
      }, this.deps.cloneTimeoutSec * 1000);
      let voice: ClonedVoice;
      try {
        voice = await providers.cloner.clone({ userId: user.key, ...(user.displayName ? { displayName: user.displayName } : {}), samples });
      } finally {
        clearTimeout(slow);
      }
      const current = await store.profiles.get(user.key);
      if (!current || current.state !== 'processing') {
        // Deleted or restarted while cloning: drop the new voice.
        if (providers.cloner.deleteVoice) await providers.cloner.deleteVoice(voice).catch(() => undefined);
        await store.jobs.put({ ...job, state: 'cancelled', updatedAtMs: now() });
        return;
      }
      await store.profiles.put({ ...current, state: 'ready', voice, updatedAtMs: now() });
      await store.jobs.put({ ...job, state: 'done', updatedAtMs: now() });
      this.deps.observer({ type: 'profile', userKey: user.key, state: 'ready' });
      await say(voice.approximate ? 'Your twin voice is ready: an offline preview voice tuned to your pitch and pace.' : 'Your twin voice is ready: a clone of your voice.');
      const greeting = `Hello${user.displayName ? ` ${user.displayName}` : ''}! This is your twin speaking. Send me a voice note and I will answer you.`;
      const note = await this.deps.speak(user, greeting, voice);
      await this.deps.notify(user, {
        kind: 'answer',
        voice: note.voice,
        text: voice.approximate ? `${greeting}\n\n(${APPROXIMATION_NOTE})` : greeting,
        sendTextWithVoice: voice.approximate || user.sendTextWithVoice,
        ...(voice.approximate ? { voiceLabel: APPROXIMATION_NOTE } : {}),
      });
    } catch (err) {
      logger.error({ err, jobId, userKey: user.key }, 'clone job failed');
      const reason = err instanceof Error ? err.message.slice(0, 200) : String(err);
      const latest = await store.profiles.get(user.key);
      if (latest && latest.state === 'processing') await store.profiles.put({ ...latest, state: 'failed', failureReason: reason, updatedAtMs: now() });
      await store.jobs.put({ ...job, state: 'failed', error: reason, updatedAtMs: now() });
      this.deps.observer({ type: 'profile', userKey: user.key, state: 'failed' });
      await say('Cloning your voice failed. Your samples are kept; send /enroll to try again.');
    }
  }
}

/** Seconds of speech as the user reads them: whole seconds, one decimal under 10 s ("4.5 seconds"). */
function roundSec(sec: number): number {
  return sec < 10 ? Math.round(sec * 10) / 10 : Math.round(sec);
}
