/**
 * Parsing of the `/broadcast` command's text:
 *
 * ```
 * /broadcast [--audience all|telegram|discord|whatsapp|ready] [--voice own|operator|default] [--each-channel] [--dry-run] <text>
 * /broadcast status [id]
 * /broadcast cancel [id]
 * /broadcast help
 * ```
 *
 * Options come first, as `--name value` or `--name=value`; the text is everything after the
 * first word that is not an option (or after `--`), with its line breaks kept. Phones often turn
 * a typed `--` into a dash (— or –), so those are accepted as `--` too.
 */
import { UserInputError } from '../errors.js';
import {
  BROADCAST_AUDIENCES,
  BROADCAST_VOICES,
  type BroadcastAudience,
  type BroadcastRequest,
  type BroadcastVoiceMode,
} from './types.js';

/** What the command text asks for. */
export type BroadcastCommand =
  | { action: 'send'; request: BroadcastRequest }
  | { action: 'status'; id?: string }
  | { action: 'cancel'; id?: string }
  | { action: 'help' };

/** Usage text shown for `/broadcast` without arguments, `help`, and bad options. */
export const BROADCAST_USAGE = [
  'Usage: /broadcast [options] <text>',
  '  --audience all|telegram|discord|whatsapp|ready   who receives it (default all; ready = users whose twin voice is ready)',
  '  --voice own|operator|default   each listener\'s own twin voice (default), your twin voice, or the neutral voice',
  '  --each-channel   reach people on every chat they linked (default: once, on the chat they used last)',
  '  --dry-run   show the counts, duration and cost without sending',
  '/broadcast status [id]   progress of the current or last broadcast',
  '/broadcast cancel [id]   stop the running broadcast (messages already sent stay sent)',
].join('\n');

const OPTION_PREFIX = /^(?:--|—|–)(?=[a-z])/i;

/**
 * Parses the text after `/broadcast`.
 * @throws UserInputError `BAD_ARGUMENT` for an unknown option or value, `EMPTY_TEXT` when there is
 *   no text to send
 */
export function parseBroadcastCommand(args: string): BroadcastCommand {
  const trimmed = args.trim();
  if (trimmed === '') return { action: 'help' };
  const first = /^(\S+)(?:\s+(\S+))?\s*$/.exec(trimmed);
  const word = first?.[1]?.toLowerCase();
  if (first && (word === 'status' || word === 'cancel')) {
    const id = first[2];
    return id ? { action: word, id } : { action: word };
  }
  if (first && word === 'help' && !first[2]) return { action: 'help' };

  let audience: BroadcastAudience = 'all';
  let voice: BroadcastVoiceMode = 'own';
  let dryRun = false;
  let eachChannel = false;
  let rest = trimmed;
  for (;;) {
    const token = /^(\S+)\s*/.exec(rest);
    if (!token) break;
    const raw = token[1]!;
    if (raw === '--') {
      rest = rest.slice(token[0].length);
      break;
    }
    if (!OPTION_PREFIX.test(raw)) break;
    rest = rest.slice(token[0].length);
    const body = raw.replace(OPTION_PREFIX, '').toLowerCase();
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const takeValue = (): string => {
      if (eq >= 0) return body.slice(eq + 1);
      const next = /^(\S+)\s*/.exec(rest);
      if (!next) throw new UserInputError('BAD_ARGUMENT', `--${name} needs a value.\n${BROADCAST_USAGE}`);
      rest = rest.slice(next[0].length);
      return next[1]!.toLowerCase();
    };
    switch (name) {
      case 'audience':
        audience = oneOf(takeValue(), BROADCAST_AUDIENCES, 'audience');
        break;
      case 'voice':
        voice = oneOf(takeValue(), BROADCAST_VOICES, 'voice');
        break;
      case 'dry-run':
      case 'dryrun':
        dryRun = true;
        break;
      case 'each-channel':
        eachChannel = true;
        break;
      default:
        throw new UserInputError('BAD_ARGUMENT', `Unknown option --${name.slice(0, 30)}.\n${BROADCAST_USAGE}`);
    }
  }
  const text = rest.trim();
  if (!text) throw new UserInputError('EMPTY_TEXT', `Write the announcement after the options, for example: /broadcast --voice own What are you grateful for today?`);
  return { action: 'send', request: { text, audience, voice, dryRun, ...(eachChannel ? { eachChannel } : {}) } };
}

function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UserInputError('BAD_ARGUMENT', `"${value.slice(0, 30)}" is not a ${what}; use one of: ${allowed.join(', ')}.`);
}
