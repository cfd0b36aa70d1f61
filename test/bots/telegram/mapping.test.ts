import { describe, expect, it, vi } from 'vitest';
import type { Message, Update } from 'grammy/types';
import { TELEGRAM_DOWNLOAD_LIMIT_BYTES, inboundId, mapUpdate, parseCommand, type MapContext } from '../../../src/bots/telegram/mapping.js';

const from = { id: 42, is_bot: false, first_name: 'Ada', last_name: 'Lovelace', language_code: 'en-GB' };
const chat = { id: 42, type: 'private' as const, first_name: 'Ada' };

function message(content: Record<string, unknown>, extra: Record<string, unknown> = {}): Update {
  return { update_id: 555, message: { message_id: 7, date: 1_700_000_000, chat, from, ...content, ...extra } as unknown as Message & Update.NonChannel };
}

function context(overrides: Partial<MapContext> = {}): MapContext & { downloads: string[] } {
  const downloads: string[] = [];
  return {
    botUsername: 'VoiceTwinBot',
    nowMs: 1_700_000_000_123,
    platformMaxBytes: TELEGRAM_DOWNLOAD_LIMIT_BYTES,
    downloader: (fileId) => async () => {
      downloads.push(fileId);
      return Buffer.from(fileId);
    },
    downloads,
    ...overrides,
  };
}

describe('parseCommand', () => {
  it('splits name and arguments and strips this bot’s username', () => {
    expect(parseCommand('/style coaching', 'VoiceTwinBot')).toEqual({ name: 'style', args: 'coaching' });
    expect(parseCommand('/style@VoiceTwinBot  coaching now ', 'VoiceTwinBot')).toEqual({ name: 'style', args: 'coaching now' });
    expect(parseCommand('/Start@voicetwinbot', 'VoiceTwinBot')).toEqual({ name: 'start', args: '' });
    expect(parseCommand('/remember I like\ntea', 'VoiceTwinBot')).toEqual({ name: 'remember', args: 'I like\ntea' });
  });

  it('returns null for a command addressed to another bot and undefined for non-commands', () => {
    expect(parseCommand('/start@OtherBot', 'VoiceTwinBot')).toBeNull();
    expect(parseCommand('hello /start', 'VoiceTwinBot')).toBeUndefined();
    expect(parseCommand('/', 'VoiceTwinBot')).toBeUndefined();
    expect(parseCommand('/path/to/file', 'VoiceTwinBot')).toBeUndefined();
  });
});

describe('mapUpdate', () => {
  it('maps a text message with a stable id, user, chat, name and language', () => {
    const mapped = mapUpdate(message({ text: 'How are you?' }), context());
    expect(mapped).toEqual({
      id: 'telegram:update:555',
      channel: 'telegram',
      chatId: '42',
      userId: '42',
      displayName: 'Ada Lovelace',
      receivedAtMs: 1_700_000_000_123,
      text: 'How are you?',
      languageCode: 'en-GB',
    });
    expect(inboundId(555)).toBe(mapped!.id);
  });

  it('maps a command, without text', () => {
    const mapped = mapUpdate(message({ text: '/style@VoiceTwinBot coaching', entities: [{ type: 'bot_command', offset: 0, length: 19 }] }), context());
    expect(mapped?.command).toEqual({ name: 'style', args: 'coaching' });
    expect(mapped?.text).toBeUndefined();
  });

  it('drops commands meant for another bot', () => {
    expect(mapUpdate(message({ text: '/start@OtherBot' }), context())).toBeUndefined();
  });

  it('maps a voice note with declared size, duration and limit, downloading only on demand', async () => {
    const ctx = context();
    const mapped = mapUpdate(
      message({ voice: { file_id: 'VOICE1', file_unique_id: 'u1', duration: 7, mime_type: 'audio/ogg', file_size: 30_500 } }),
      ctx,
    );
    expect(mapped?.audio).toMatchObject({
      isVoiceNote: true,
      declaredSizeBytes: 30_500,
      declaredDurationSec: 7,
      declaredMime: 'audio/ogg',
      platformMaxBytes: 20 * 1024 * 1024,
    });
    expect(mapped?.forwarded).toBeUndefined();
    expect(ctx.downloads).toEqual([]);
    await expect(mapped!.audio!.download!()).resolves.toEqual(Buffer.from('VOICE1'));
    expect(ctx.downloads).toEqual(['VOICE1']);
  });

  it('omits the download limit for a self-hosted Bot API server', () => {
    const mapped = mapUpdate(message({ voice: { file_id: 'V', file_unique_id: 'u', duration: 2 } }), context({ platformMaxBytes: undefined }));
    expect(mapped?.audio).toBeDefined();
    expect(mapped?.audio).not.toHaveProperty('platformMaxBytes');
  });

  it('marks a forwarded voice note', () => {
    const mapped = mapUpdate(
      message(
        { voice: { file_id: 'V', file_unique_id: 'u', duration: 3 } },
        { forward_origin: { type: 'user', sender_user: { id: 9, is_bot: false, first_name: 'Grace' }, date: 1_699_000_000 } },
      ),
      context(),
    );
    expect(mapped?.forwarded).toBe(true);
    expect(mapped?.audio?.isVoiceNote).toBe(true);
  });

  it('treats a forwarded command as text, not as a command', () => {
    const mapped = mapUpdate(message({ text: '/delete' }, { forward_origin: { type: 'hidden_user', sender_user_name: 'X', date: 1 } }), context());
    expect(mapped?.command).toBeUndefined();
    expect(mapped?.text).toBe('/delete');
    expect(mapped?.forwarded).toBe(true);
  });

  it('maps audio files, video notes and audio documents as audio, with the caption as text', () => {
    const audio = mapUpdate(
      message({ audio: { file_id: 'A', file_unique_id: 'a', duration: 65, mime_type: 'audio/mpeg', file_name: 'talk.mp3', file_size: 1_000_000 }, caption: 'my talk' }),
      context(),
    );
    expect(audio?.audio).toMatchObject({ isVoiceNote: false, declaredDurationSec: 65, declaredMime: 'audio/mpeg', fileName: 'talk.mp3', declaredSizeBytes: 1_000_000 });
    expect(audio?.text).toBe('my talk');

    const videoNote = mapUpdate(message({ video_note: { file_id: 'N', file_unique_id: 'n', length: 384, duration: 9, file_size: 800_000 } }), context());
    expect(videoNote?.audio).toMatchObject({ isVoiceNote: false, declaredDurationSec: 9, declaredMime: 'video/mp4', declaredSizeBytes: 800_000 });

    const wavDoc = mapUpdate(message({ document: { file_id: 'D', file_unique_id: 'd', file_name: 'sample.wav', mime_type: 'audio/x-wav', file_size: 400_000 } }), context());
    expect(wavDoc?.audio).toMatchObject({ isVoiceNote: false, declaredMime: 'audio/x-wav', fileName: 'sample.wav', declaredSizeBytes: 400_000 });
    expect(wavDoc?.audio?.declaredDurationSec).toBeUndefined();

    const genericOgg = mapUpdate(message({ document: { file_id: 'G', file_unique_id: 'g', file_name: 'note.ogg', mime_type: 'application/octet-stream' } }), context());
    expect(genericOgg?.audio?.fileName).toBe('note.ogg');
  });

  it('offers every document to the engine as audio with its declared type, and passes a sticker without content', () => {
    const pdf = mapUpdate(message({ document: { file_id: 'P', file_unique_id: 'p', file_name: 'cv.pdf', mime_type: 'application/pdf', file_size: 90_000 } }), context());
    expect(pdf).toMatchObject({ id: 'telegram:update:555', chatId: '42' });
    expect(pdf?.audio).toMatchObject({ isVoiceNote: false, declaredMime: 'application/pdf', fileName: 'cv.pdf', declaredSizeBytes: 90_000 });
    expect(pdf?.text).toBeUndefined();
    const sticker = mapUpdate(message({ sticker: { file_id: 'S', file_unique_id: 's', type: 'regular', width: 512, height: 512, is_animated: false, is_video: false } }), context());
    expect(sticker).toBeDefined();
    expect(sticker?.audio).toBeUndefined();
    expect(sticker?.text).toBeUndefined();
  });

  it('ignores service messages and updates without a sender', () => {
    expect(mapUpdate(message({ new_chat_members: [from] }), context())).toBeUndefined();
    expect(mapUpdate({ update_id: 1, edited_message: { message_id: 1, date: 1, chat, from, text: 'x', edit_date: 2 } } as unknown as Update, context())).toBeUndefined();
  });

  it('maps a callback query to an action in the chat of the message carrying the button', () => {
    const update = {
      update_id: 900,
      callback_query: {
        id: '4382bfdwdsb323b2d9',
        from: { ...from, language_code: 'de' },
        chat_instance: '-123',
        data: 'persona:coaching',
        message: { message_id: 12, date: 1, chat: { id: -100555, type: 'supergroup', title: 'G' }, text: 'Pick a style' },
      },
    } as unknown as Update;
    expect(mapUpdate(update, context())).toEqual({
      id: 'telegram:update:900',
      channel: 'telegram',
      chatId: '-100555',
      userId: '42',
      displayName: 'Ada Lovelace',
      receivedAtMs: 1_700_000_000_123,
      action: 'persona:coaching',
      languageCode: 'de',
    });
  });

  it('creates no download closure work until called, once per audio', () => {
    const downloader = vi.fn((fileId: string) => async () => Buffer.from(fileId));
    mapUpdate(message({ voice: { file_id: 'V9', file_unique_id: 'u', duration: 1 } }), context({ downloader }));
    expect(downloader).toHaveBeenCalledTimes(1);
    expect(downloader).toHaveBeenCalledWith('V9');
  });
});
