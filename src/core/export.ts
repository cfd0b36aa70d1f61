/**
 * The personal data export (`/export`): one ZIP archive with everything VoiceTwin stores about a
 * person, decrypted —
 *
 * ```
 * voicetwin-export.json     profile (with the consent record), user record, samples' metadata,
 *                           the whole conversation history, memories, daily usage
 * samples/<n>-<id>.wav      each enrollment sample as stored (normalised 16 kHz mono WAV)
 * consent/consent.wav       the spoken consent recording
 * README.txt                what each file is
 * ```
 *
 * Platform upload limits for a document sent by a bot are in {@link DOCUMENT_LIMIT_BYTES}; when the
 * archive with audio is larger, the engine sends one without audio and says so.
 */
import { decodeToPcm, parseWavHeader, pcmToWav } from './audio/index.js';
import type { MemoryRecord, ChatTurn } from './providers.js';
import type { SampleRecord, Store, UserKey, UserRecord, VoiceProfile } from './store/types.js';
import type { Channel } from './types.js';
import type { DailyUsage, UsageMeter } from './usage.js';
import type { LinkedIdentity } from './identity.js';
import { utcDay } from './usage.js';
import { Zip, ZipDeflate, zipSync, type Zippable } from 'fflate';

/**
 * Largest document a bot may send, bytes, per channel: Telegram Bot API uploads 50 MB
 * (https://core.telegram.org/bots/api#sending-files); Discord 10 MiB outside boosted servers
 * (https://discord.com/developers/docs/reference#uploading-files; the adapter also honours the
 * interaction's own `attachment_size_limit`); WhatsApp documents are allowed up to 2 GB, but
 * whatsapp-web.js passes the file through the browser page as base64, so 100 MB is used. The
 * console and the web app (a download) have no limit.
 */
export const DOCUMENT_LIMIT_BYTES: Readonly<Record<Channel, number>> = {
  telegram: 50 * 1000 * 1000,
  discord: 10 * 1024 * 1024,
  whatsapp: 100 * 1000 * 1000,
  console: Number.POSITIVE_INFINITY,
  web: Number.POSITIVE_INFINITY,
};

/** Days of usage looked up for the export (usage records are kept 35 days by default). */
export const EXPORT_USAGE_DAYS = 35;

/** The JSON document of an export (`voicetwin-export.json`). */
export interface ExportDocument {
  format: 'voicetwin-export/1';
  exportedAt: string;
  userKey: UserKey;
  /** The channel identities linked to the person (absent for a person of one identity). */
  identities?: LinkedIdentity[];
  user?: UserRecord;
  /** The voice profile, consent record included (`profile.consent`). */
  profile?: VoiceProfile;
  samples: (SampleRecord & { file?: string })[];
  consentRecording?: string;
  /** Every stored turn, oldest first. */
  history: ChatTurn[];
  memories: MemoryRecord[];
  /** Days with recorded usage, oldest first. */
  usage: DailyUsage[];
  /** What features outside the core keep about the person, by name (`calls`: the phone call log). */
  sections?: Record<string, unknown>;
  /** True when the audio files are in the archive. */
  audioIncluded: boolean;
}

/** A built export. */
export interface PersonalExport {
  /** The ZIP archive. */
  bytes: Buffer;
  fileName: string;
  document: ExportDocument;
  /** Number of WAV files in the archive. */
  audioFiles: number;
}

/** The export before its audio is read: the document and the files to pack, each loaded when needed. */
interface PreparedExport {
  document: ExportDocument;
  fileName: string;
  files: { name: string; load: () => Promise<Buffer> }[];
  audioFiles: number;
}

/**
 * Collects everything stored about `userKey` except the audio itself (read by each file's `load`).
 * @param deps.identities the person's linked channel identities, listed in the document
 * @throws Error when a stored record cannot be decrypted
 */
async function prepareExport(
  deps: { store: Store; usage?: UsageMeter; now: () => number; identities?: LinkedIdentity[]; sections?: Record<string, unknown> },
  userKey: UserKey,
  includeAudio: boolean,
): Promise<PreparedExport> {
  const { store, usage, now } = deps;
  const summary = await store.summarize(userKey);
  const history = await store.history.recent(userKey, Number.MAX_SAFE_INTEGER);
  const days: DailyUsage[] = [];
  if (usage) {
    const today = now();
    for (let i = EXPORT_USAGE_DAYS - 1; i >= 0; i--) {
      const day = await usage.day(userKey, utcDay(today - i * 86_400_000));
      if (day.total.calls > 0) days.push(day);
    }
  }
  const audio: PreparedExport['files'] = [];
  const samples: ExportDocument['samples'] = [];
  for (const [i, sample] of summary.samples.entries()) {
    if (!includeAudio) {
      samples.push(sample);
      continue;
    }
    const file = `samples/${String(i + 1).padStart(2, '0')}-${safeName(sample.id)}.wav`;
    audio.push({ name: file, load: async () => asWav(await store.blobs.get(sample.blobKey)) });
    samples.push({ ...sample, file });
  }
  let consentRecording: string | undefined;
  const consentKey = summary.profile?.consent.audioBlobKey;
  if (includeAudio && consentKey) {
    consentRecording = 'consent/consent.wav';
    audio.push({ name: consentRecording, load: async () => asWav(await store.blobs.get(consentKey)) });
  }
  // Consent recordings of voice profiles replaced when identities were linked.
  for (const [i, prior] of (summary.profile?.priorConsents ?? []).entries()) {
    if (!includeAudio || !prior.audioBlobKey) continue;
    const blobKey = prior.audioBlobKey;
    audio.push({ name: `consent/earlier-${i + 1}.wav`, load: async () => asWav(await store.blobs.get(blobKey)) });
  }
  const document: ExportDocument = {
    format: 'voicetwin-export/1',
    exportedAt: new Date(now()).toISOString(),
    userKey,
    ...(deps.identities && deps.identities.length > 0 ? { identities: deps.identities } : {}),
    ...(summary.user ? { user: summary.user } : {}),
    ...(summary.profile ? { profile: summary.profile } : {}),
    samples,
    ...(consentRecording ? { consentRecording } : {}),
    history,
    memories: summary.memories,
    usage: days,
    ...(deps.sections && Object.keys(deps.sections).length > 0 ? { sections: deps.sections } : {}),
    audioIncluded: includeAudio,
  };
  const json = Buffer.from(`${JSON.stringify(document, null, 2)}\n`, 'utf8');
  const readmeText = Buffer.from(readme(includeAudio), 'utf8');
  return {
    document,
    fileName: `voicetwin-export-${document.exportedAt.slice(0, 10)}.zip`,
    files: [{ name: 'voicetwin-export.json', load: async () => json }, { name: 'README.txt', load: async () => readmeText }, ...audio],
    audioFiles: audio.length,
  };
}

/**
 * Collects and decrypts everything stored about `userKey` and packs it into a ZIP archive.
 * @param deps.usage the usage meter, when usage is metered
 * @param deps.now clock, ms since the epoch
 * @param options.includeAudio put the samples and the consent recording in (default true)
 * @throws Error when a stored record or audio blob cannot be decrypted (the export is not partial)
 */
export async function buildPersonalExport(
  deps: { store: Store; usage?: UsageMeter; now: () => number; identities?: LinkedIdentity[]; sections?: Record<string, unknown> },
  userKey: UserKey,
  options: { includeAudio?: boolean } = {},
): Promise<PersonalExport> {
  const prepared = await prepareExport(deps, userKey, options.includeAudio ?? true);
  const entries: ExportFile[] = [];
  for (const file of prepared.files) entries.push({ name: file.name, bytes: await file.load() });
  return { bytes: zipArchive(entries), fileName: prepared.fileName, document: prepared.document, audioFiles: prepared.audioFiles };
}

/** A streamed export: the document and file name known up front, the archive as chunks. */
export interface StreamedExport {
  fileName: string;
  document: ExportDocument;
  audioFiles: number;
  /** The ZIP archive in chunks; each audio file is read and decrypted only when its turn comes. */
  chunks: AsyncGenerator<Uint8Array>;
}

/**
 * The same archive as {@link buildPersonalExport} (same files, same content), written as a stream
 * with fflate's `Zip`/`ZipDeflate` (entries with data descriptors): memory holds one file at a
 * time rather than the whole archive. The records are read before this resolves, so a record that
 * cannot be decrypted fails here; an audio blob that cannot be read fails the stream.
 * @throws Error when a stored record cannot be decrypted
 */
export async function streamPersonalExport(deps: { store: Store; usage?: UsageMeter; now: () => number; identities?: LinkedIdentity[]; sections?: Record<string, unknown> }, userKey: UserKey): Promise<StreamedExport> {
  const prepared = await prepareExport(deps, userKey, true);
  const mtime = new Date(prepared.document.exportedAt);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    const ready: Uint8Array[] = [];
    let failure: Error | undefined;
    const zip = new Zip((err, chunk) => {
      if (err) failure = err;
      else ready.push(chunk);
    });
    for (const file of prepared.files) {
      const bytes = await file.load();
      const entry = new ZipDeflate(file.name, { level: 6 });
      entry.mtime = mtime;
      zip.add(entry);
      entry.push(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), true);
      if (failure) throw failure;
      while (ready.length > 0) yield ready.shift()!;
    }
    zip.end();
    if (failure) throw failure;
    while (ready.length > 0) yield ready.shift()!;
  }
  return { fileName: prepared.fileName, document: prepared.document, audioFiles: prepared.audioFiles, chunks: chunks() };
}

/** One file of the export archive. */
interface ExportFile {
  /** Path inside the archive, `/`-separated. */
  name: string;
  bytes: Buffer;
}

/**
 * Builds the ZIP archive with fflate (https://github.com/101arrowz/fflate): every file deflated at
 * level 6 (WAV and JSON shrink well), the export time as each entry's modification time.
 */
function zipArchive(files: readonly ExportFile[]): Buffer {
  const tree: Zippable = {};
  for (const file of files) tree[file.name] = [new Uint8Array(file.bytes.buffer, file.bytes.byteOffset, file.bytes.byteLength), { level: 6 }];
  return Buffer.from(zipSync(tree));
}

/** Stored audio as WAV: enrollment audio is stored as WAV already; anything else is decoded. */
async function asWav(bytes: Buffer): Promise<Buffer> {
  if (parseWavHeader(bytes)) return bytes;
  return pcmToWav(await decodeToPcm(bytes, { sampleRateHz: 16000 }));
}

function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64) || 'sample';
}

function readme(includeAudio: boolean): string {
  return [
    'Your VoiceTwin data export.',
    '',
    'voicetwin-export.json: your user record (name, persona, settings), your voice profile with your',
    'consent record (the phrase, what was heard, when and how you agreed), your samples\' measurements,',
    'the whole stored conversation, your memories and your daily usage.',
    includeAudio
      ? 'samples/: your enrollment voice notes as stored (WAV). consent/: your spoken consent (WAV).'
      : 'The audio files were left out: with them the archive is larger than this platform lets a bot send.',
    '',
  ].join('\n');
}
