/**
 * Document replies (the `/export` archive) in the Discord and WhatsApp renderers: sent as a file
 * attachment / a WhatsApp document (MessageMedia with `sendMediaAsDocument`), and replaced by a
 * text naming the platform's limit when the file is too large. Telegram's `sendDocument` is
 * covered end to end in `telegram/e2e.test.ts`.
 */
import { describe, expect, it } from 'vitest';
import type { AttachmentBuilder } from 'discord.js';
import { deliverReply, type OutgoingMessage, type Surface } from '../../src/bots/discord/render.js';
import { MAX_DOCUMENT_BYTES, PendingChoices, WhatsAppReplySender } from '../../src/bots/whatsapp/replies.js';
import { SendPacer } from '../../src/bots/whatsapp/pacing.js';
import type { WhatsAppClientLike } from '../../src/bots/whatsapp/client.js';
import { silentLogger } from '../../src/core/log.js';
import type { OutboundReply } from '../../src/core/types.js';

const reply = (bytes: Buffer): OutboundReply => ({
  kind: 'info',
  text: 'Everything I store about you.',
  document: { bytes, fileName: 'voicetwin-export-2026-01-01.zip', mimeType: 'application/zip' },
});

function surface(uploadLimitBytes: number, attach = true): Surface & { sent: OutgoingMessage[] } {
  const sent: OutgoingMessage[] = [];
  return {
    sent,
    uploadLimitBytes,
    allows: (c) => c !== 'attach' || attach,
    async send(message) {
      sent.push(message);
      return { edit: async () => undefined };
    },
  };
}

describe('Discord document replies', () => {
  it('sends the text, then the file as an attachment', async () => {
    const s = surface(10 * 1024 * 1024);
    await deliverReply(s, reply(Buffer.from('PK zip bytes')), 'u1', silentLogger);
    expect(s.sent[0]?.content).toBe('Everything I store about you.');
    const file = s.sent[1]?.files?.[0] as AttachmentBuilder;
    expect(file.name).toBe('voicetwin-export-2026-01-01.zip');
    expect(file.attachment).toEqual(Buffer.from('PK zip bytes'));
  });

  it('says the file is over the upload limit instead of sending it', async () => {
    const s = surface(1000);
    await deliverReply(s, reply(Buffer.alloc(5000)), 'u1', silentLogger);
    expect(s.sent).toHaveLength(1);
    expect(s.sent[0]?.files).toBeUndefined();
    expect(s.sent[0]?.content).toMatch(/more than the 0\.0 MB Discord lets me send/);
  });

  it('says files cannot be attached where the bot lacks Attach Files', async () => {
    const s = surface(10 * 1024 * 1024, false);
    await deliverReply(s, reply(Buffer.from('zip')), 'u1', silentLogger);
    expect(s.sent.map((m) => m.content).join('\n')).toMatch(/can't attach files here/);
  });
});

describe('WhatsApp document replies', () => {
  function client() {
    const sent: { content: unknown; options: Record<string, unknown> }[] = [];
    const fake = {
      sent,
      async sendMessage(_chatId: string, content: unknown, options: Record<string, unknown>) {
        sent.push({ content, options });
        return { id: { _serialized: 'x' } };
      },
    };
    return fake as unknown as WhatsAppClientLike & { sent: typeof sent };
  }

  it('sends a MessageMedia as a document with the text as caption', async () => {
    const c = client();
    await new WhatsAppReplySender(c, new SendPacer(0), new PendingChoices()).send('1@c.us', reply(Buffer.from('PK zip bytes')));
    expect(c.sent).toHaveLength(1);
    const media = c.sent[0]!.content as { mimetype: string; data: string; filename: string };
    expect(media).toMatchObject({ mimetype: 'application/zip', filename: 'voicetwin-export-2026-01-01.zip' });
    expect(Buffer.from(media.data, 'base64').toString()).toBe('PK zip bytes');
    expect(c.sent[0]!.options).toMatchObject({ sendMediaAsDocument: true, caption: 'Everything I store about you.' });
  });

  it('sends a text naming the limit when the file is too large', async () => {
    const c = client();
    await new WhatsAppReplySender(c, new SendPacer(0), new PendingChoices()).send('1@c.us', reply(Buffer.alloc(MAX_DOCUMENT_BYTES + 1)));
    expect(c.sent).toHaveLength(1);
    expect(c.sent[0]!.content).toMatch(/more than the 100\.0 MB WhatsApp lets me send/);
  });
});
