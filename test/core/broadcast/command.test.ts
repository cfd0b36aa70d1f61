/** Parsing of `/broadcast` options, subcommands and text. */
import { describe, expect, it } from 'vitest';
import { parseBroadcastCommand } from '../../../src/core/broadcast/index.js';
import type { UserInputError } from '../../../src/core/errors.js';

describe('parseBroadcastCommand', () => {
  it('takes the defaults: everyone, own voice, sent for real', () => {
    expect(parseBroadcastCommand('What are you grateful for today?')).toEqual({
      action: 'send',
      request: { text: 'What are you grateful for today?', audience: 'all', voice: 'own', dryRun: false },
    });
  });

  it('reads options before the text, in both spellings, and keeps the text’s line breaks', () => {
    expect(parseBroadcastCommand('--audience ready --voice=default --dry-run Hello\nsecond line')).toEqual({
      action: 'send',
      request: { text: 'Hello\nsecond line', audience: 'ready', voice: 'default', dryRun: true },
    });
  });

  it('accepts the dashes phones substitute for a typed --', () => {
    const parsed = parseBroadcastCommand('—audience telegram –voice operator Maintenance at noon');
    expect(parsed).toEqual({ action: 'send', request: { text: 'Maintenance at noon', audience: 'telegram', voice: 'operator', dryRun: false } });
  });

  it('stops reading options at the first word of text, and after --', () => {
    expect(parseBroadcastCommand('Hello --voice default')).toMatchObject({ request: { text: 'Hello --voice default', voice: 'own' } });
    expect(parseBroadcastCommand('-- status of the service: all good')).toMatchObject({ action: 'send', request: { text: 'status of the service: all good' } });
  });

  it('recognises status, cancel and help', () => {
    expect(parseBroadcastCommand('status')).toEqual({ action: 'status' });
    expect(parseBroadcastCommand('STATUS bc-12ab34')).toEqual({ action: 'status', id: 'bc-12ab34' });
    expect(parseBroadcastCommand('cancel')).toEqual({ action: 'cancel' });
    expect(parseBroadcastCommand('')).toEqual({ action: 'help' });
    expect(parseBroadcastCommand('help')).toEqual({ action: 'help' });
  });

  it('refuses unknown options and values with a clear message', () => {
    const bad = (args: string) => {
      try {
        parseBroadcastCommand(args);
      } catch (err) {
        return err as UserInputError;
      }
      throw new Error('expected an error');
    };
    expect(bad('--audience everyone Hi')).toMatchObject({ code: 'BAD_ARGUMENT', userMessage: expect.stringContaining('all, telegram, discord, whatsapp, ready') });
    expect(bad('--voice robot Hi')).toMatchObject({ code: 'BAD_ARGUMENT', userMessage: expect.stringContaining('own, operator, default') });
    expect(bad('--loud Hi')).toMatchObject({ code: 'BAD_ARGUMENT', userMessage: expect.stringContaining('Unknown option --loud') });
    expect(bad('--audience')).toMatchObject({ code: 'BAD_ARGUMENT' });
    expect(bad('--dry-run')).toMatchObject({ code: 'EMPTY_TEXT' });
  });
});
