/**
 * The web channel: how the engine's replies reach HTTP clients.
 *
 * - {@link WebTurnTarget} collects the replies to one request (`POST /v1/turns`): voice notes are
 *   stored encrypted in the blob store and referenced by signed URLs; `settle` (called by the
 *   engine when the job is over) resolves {@link WebTurnTarget.done}.
 * - {@link WebSender} takes replies sent outside a request (a clone that finished in the
 *   background) and keeps them as notices for the person's next `GET /v1/notices`.
 */
import { randomUUID } from 'node:crypto';
import type { ChannelSender, ChatActivity, InboundMessage, OutboundReply, ReplyTarget } from '../core/types.js';
import type { KeyValueRepository, BlobStore } from '../core/store/types.js';
import type { AudioUrlSigner } from './audio-urls.js';

/** A reply as the HTTP API returns it. */
export interface WebReply {
  kind: OutboundReply['kind'];
  text?: string;
  /** Note shown with a voice made by an approximate (offline) voice. */
  voiceLabel?: string;
  audio?: { url: string; expiresAt: string; durationSec: number; mimeType: string; waveform: number[] };
  buttons?: { label: string; data: string }[][];
}

/**
 * An inbound message on the web channel for the person of an API key (`userKey`): a web person
 * (`web:<id>`) is addressed by its id; a person of another channel (`telegram:42`) keeps that key
 * as `personKey` and the whole key as chat id.
 */
export function webInboundMessage(userKey: string, id: string, partial: Partial<InboundMessage>): InboundMessage {
  const [channel, ...rest] = userKey.split(':');
  const personId = channel === 'web' ? rest.join(':') : userKey;
  return { id, channel: 'web', chatId: personId, userId: personId, personKey: userKey, receivedAtMs: Date.now(), ...partial };
}

/** How long notices are kept, ms (7 days), and how many. */
const NOTICE_TTL_MS = 7 * 24 * 3600 * 1000;
const MAX_NOTICES = 50;

/** Turns an engine reply into a {@link WebReply}, storing its voice note encrypted. */
export async function toWebReply(reply: OutboundReply, ownerKey: string, blobs: BlobStore, signer: AudioUrlSigner, baseUrl: string): Promise<WebReply> {
  const out: WebReply = { kind: reply.kind };
  if (reply.text) out.text = reply.text;
  if (reply.voiceLabel) out.voiceLabel = reply.voiceLabel;
  if (reply.buttons?.length) out.buttons = reply.buttons;
  if (reply.voice) {
    const blobKey = await blobs.put(ownerKey, reply.voice.oggOpus, 'tts');
    const signed = signer.sign(blobKey);
    out.audio = {
      url: `${baseUrl}${signed.path}`,
      expiresAt: new Date(signed.expiresAtMs).toISOString(),
      durationSec: reply.voice.durationSec,
      mimeType: reply.voice.mimeType,
      waveform: [...reply.voice.waveform],
    };
  }
  return out;
}

/** Collects the replies to one web request. */
export class WebTurnTarget implements ReplyTarget {
  readonly replies: WebReply[] = [];
  readonly done: Promise<void>;
  #resolve!: () => void;

  constructor(
    private readonly ownerKey: string,
    private readonly blobs: BlobStore,
    private readonly signer: AudioUrlSigner,
    private readonly baseUrl: string,
  ) {
    this.done = new Promise((resolve) => (this.#resolve = resolve));
  }

  async reply(reply: OutboundReply): Promise<void> {
    this.replies.push(await toWebReply(reply, this.ownerKey, this.blobs, this.signer, this.baseUrl));
  }

  async activity(_kind: ChatActivity): Promise<void> {}

  async status(text: string): Promise<(text: string) => Promise<void>> {
    this.replies.push({ kind: 'status', text });
    return async (next) => void this.replies.push({ kind: 'status', text: next });
  }

  async settle(): Promise<void> {
    this.#resolve();
  }
}

/** The web channel's sender: replies outside a request become notices (see module comment). */
export class WebSender implements ChannelSender {
  readonly channel = 'web' as const;

  constructor(
    private readonly kv: KeyValueRepository,
    private readonly blobs: BlobStore,
    private readonly signer: AudioUrlSigner,
  ) {}

  async send(chatId: string, reply: OutboundReply): Promise<void> {
    const ownerKey = `web:${chatId}`;
    const stored: OutboundReply = { ...reply };
    let blobKey: string | undefined;
    if (reply.voice) {
      blobKey = await this.blobs.put(ownerKey, reply.voice.oggOpus, 'tts');
      delete stored.voice;
    }
    const notices = (await this.kv.get<StoredNotice[]>(`web:notices:${chatId}`)) ?? [];
    notices.push({ id: randomUUID(), reply: stored, ...(blobKey ? { blobKey, durationSec: reply.voice!.durationSec } : {}), atMs: Date.now() });
    await this.kv.set(`web:notices:${chatId}`, notices.slice(-MAX_NOTICES), NOTICE_TTL_MS);
  }

  /** The notices of a web person, oldest first, removed once read; audio as signed URLs. */
  async take(chatId: string, baseUrl: string): Promise<(WebReply & { at: string })[]> {
    const notices = (await this.kv.get<StoredNotice[]>(`web:notices:${chatId}`)) ?? [];
    if (notices.length) await this.kv.delete(`web:notices:${chatId}`);
    return notices.map((n) => {
      const out: WebReply & { at: string } = { kind: n.reply.kind, at: new Date(n.atMs).toISOString(), ...(n.reply.text ? { text: n.reply.text } : {}) };
      if (n.blobKey) {
        const signed = this.signer.sign(n.blobKey);
        out.audio = { url: `${baseUrl}${signed.path}`, expiresAt: new Date(signed.expiresAtMs).toISOString(), durationSec: n.durationSec ?? 0, mimeType: 'audio/ogg; codecs=opus', waveform: [] };
      }
      return out;
    });
  }
}

interface StoredNotice {
  id: string;
  reply: OutboundReply;
  blobKey?: string;
  durationSec?: number;
  atMs: number;
}
