/**
 * The phone line's chat commands and its part of `/delete`:
 * - `/phone`: the number to call and a 6-digit one-time code (10 minutes) that links the caller id;
 *   `/phone unlink` removes the person's linked numbers;
 * - `/calls`: the person's call log (newest first), with `/calls <n>` the transcript of call n.
 */
import type { Engine } from '../core/engine.js';
import { UserInputError } from '../core/errors.js';
import { CallLog, deleteCallRecords, type CallRecord } from './call-log.js';
import { createLinkCode, deletePhoneLinks, LINK_CODE_TTL_MS, maskNumber, numbersOf, unlinkPhone } from './links.js';

/** Options of {@link registerPhoneCommands}. */
export interface PhoneCommandOptions {
  /** TWILIO_PHONE_NUMBER, E.164; without it `/phone` says the line has no number yet. */
  phoneNumber?: string;
  /** Calls shown by `/calls`. */
  listLimit?: number;
}

/** Adds `/phone` and `/calls` to the engine and deletes phone links and call logs with `/delete`. */
export function registerPhoneCommands(engine: Engine, options: PhoneCommandOptions = {}): void {
  const kv = engine.store.kv;
  const callLog = new CallLog(kv, engine.now);
  engine.registerCommand({
    info: { name: 'phone', description: 'Call your twin: the number and a code that links your phone', args: '[unlink]' },
    async run({ user, args, target }) {
      if (args.toLowerCase() === 'unlink') {
        const numbers = await numbersOf(kv, user.key);
        for (const n of numbers) await unlinkPhone(kv, n);
        return target.reply({ kind: 'info', ephemeral: true, text: numbers.length ? `Unlinked ${numbers.map(maskNumber).join(', ')}: calls from there no longer reach your twin.` : 'No phone number is linked to you.' });
      }
      if (args) throw new UserInputError('BAD_ARGUMENT', 'Use /phone to link a phone number, or /phone unlink to remove yours.');
      if (!options.phoneNumber) throw new UserInputError('NOT_CONFIGURED', 'The phone line has no number yet: the operator sets TWILIO_PHONE_NUMBER.');
      const { code } = await createLinkCode(kv, user.key, engine.now());
      const linked = await numbersOf(kv, user.key);
      const spaced = `${code.slice(0, 3)} ${code.slice(3)}`;
      return target.reply({
        kind: 'info',
        ephemeral: true,
        text: [
          `Call ${options.phoneNumber} and type or say this code when asked: ${spaced}`,
          `It works once, within ${LINK_CODE_TTL_MS / 60_000} minutes, and links the number you call from to your twin.`,
          linked.length ? `Already linked: ${linked.map(maskNumber).join(', ')} (calls from there go straight to your twin).` : '',
        ]
          .filter(Boolean)
          .join('\n'),
      });
    },
  });
  engine.registerCommand({
    info: { name: 'calls', description: 'Your phone calls with your twin', args: '[n]' },
    async run({ user, args, target }) {
      const calls = await callLog.list(user.key);
      if (calls.length === 0) return target.reply({ kind: 'info', ephemeral: true, text: 'No phone calls yet. /phone tells you how to call your twin.' });
      if (args) {
        const n = Number(args);
        const call = Number.isInteger(n) && n >= 1 ? calls[n - 1] : undefined;
        if (!call) throw new UserInputError('BAD_ARGUMENT', `Say which call: /calls 1 is the latest, up to /calls ${calls.length}.`);
        return target.reply({ kind: 'info', ephemeral: true, text: callDetail(call) });
      }
      const lines = calls.slice(0, options.listLimit ?? 10).map((c, i) => `${i + 1}. ${callSummary(c)}`);
      return target.reply({ kind: 'info', ephemeral: true, text: `Your calls (newest first; /calls <n> shows what was said):\n${lines.join('\n')}` });
    },
  });
  engine.registerDeletionHook('phone', (userKey) => deletePhoneData(engine, userKey));
}

/**
 * Deletes a person's linked numbers, pending code and call log (`/delete`).
 * @returns how many records were deleted
 */
export async function deletePhoneData(engine: Engine, userKey: string): Promise<number> {
  return (await deletePhoneLinks(engine.store.kv, userKey)) + (await deleteCallRecords(engine.store.kv, userKey, engine.now()));
}

/** One line per call: when, how long, mode, voice, fallback. */
export function callSummary(c: CallRecord): string {
  const when = new Date(c.startedAtMs).toISOString().slice(0, 16).replace('T', ' ');
  const length = c.durationSec !== undefined ? formatDuration(c.durationSec) : c.endedAtMs ? 'ended' : 'in progress';
  const status = c.statuses.at(-1)?.status;
  return [
    `${when} UTC, ${length}`,
    `${c.mode}`,
    `voice: ${c.voice ?? 'default voice'}`,
    c.fallback ? `fallback: ${c.fallback}` : '',
    c.endReason ? `ended: ${c.endReason.replace(/-/g, ' ')}` : '',
    status ? `status: ${status}` : '',
    `${c.transcript.filter((t) => t.role === 'caller').length} turns`,
  ]
    .filter(Boolean)
    .join(', ');
}

function callDetail(c: CallRecord): string {
  const lines = c.transcript.map((t) => `${t.role === 'caller' ? 'You' : 'Twin'}: ${t.text}`);
  return `${callSummary(c)}\n${lines.length ? lines.join('\n') : '(nothing was said)'}`;
}

function formatDuration(sec: number): string {
  const s = Math.round(sec);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}
