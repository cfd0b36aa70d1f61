/**
 * The bot's slash commands: their definitions (built with discord.js's SlashCommandBuilder) and the
 * mapping of a chat-input interaction to the fields of an {@link InboundMessage}.
 *
 * Command and option rules (names 1–32 lower-case characters, descriptions 1–100 characters,
 * ≤ 25 choices, required options first, attachment option type 11):
 * https://discord.com/developers/docs/interactions/application-commands
 */
import {
  ApplicationIntegrationType,
  InteractionContextType,
  SlashCommandBuilder,
  type Attachment,
  type ChatInputCommandInteraction,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import { PERSONAS, PERSONA_NAMES } from '../../core/personas.js';
import type { CommandInfo, InboundAudio, InboundMessage } from '../../core/types.js';
import { attachmentAudio } from './mapping.js';

/** Discord's limit for command and option descriptions, in characters. */
export const MAX_DESCRIPTION_CHARS = 100;

/** Commands whose answers are private to the user (deferred as ephemeral). */
export const EPHEMERAL_COMMANDS: ReadonlySet<string> = new Set(['status', 'memories', 'remember', 'forget', 'delete', 'web']);

/** Descriptions used when the engine's command list has none for a command. */
const FALLBACK_DESCRIPTIONS: Record<string, string> = {
  enroll: 'Clone your voice: start enrollment, or add a voice sample',
  talk: 'Talk to your twin with a voice note or text; it answers in your voice',
  say: 'Hear a text spoken in your twin voice',
  style: 'Choose how your twin talks',
  remember: 'Tell your twin something to remember',
  memories: 'List what your twin remembers',
  forget: 'Forget one memory, or all of them',
  status: 'Your voice profile, persona and what is stored',
  delete: 'Delete all your data and your cloned voice',
  help: 'What you can do',
  text: 'Send the text with each voice reply, or not',
  stop: 'Stop receiving announcements',
  web: 'A one-time link to talk to your twin in the browser',
};

/** The names of the commands the bot always registers, in menu order. */
export const DISCORD_COMMAND_NAMES = ['enroll', 'talk', 'say', 'style', 'remember', 'memories', 'forget', 'status', 'delete', 'help'] as const;

/** Settings commands registered after those when the engine lists them. */
export const OPTIONAL_COMMAND_NAMES = ['text', 'stop', 'web'] as const;

function describe(name: string, engineCommands: readonly CommandInfo[]): string {
  const fromEngine = engineCommands.find((c) => c.name === name)?.description;
  const text = fromEngine ?? FALLBACK_DESCRIPTIONS[name] ?? name;
  return text.length > MAX_DESCRIPTION_CHARS ? `${text.slice(0, MAX_DESCRIPTION_CHARS - 1)}…` : text;
}

/**
 * The slash command definitions for a bulk overwrite (PUT /applications/{app}/commands or the guild
 * variant). Descriptions come from the engine's command list where it has the command.
 *
 * @param engineCommands the engine's {@link CommandInfo} list, for descriptions
 * @returns JSON bodies of CHAT_INPUT commands, usable in servers and in the bot's DMs
 */
export function buildSlashCommands(engineCommands: readonly CommandInfo[]): RESTPostAPIChatInputApplicationCommandsJSONBody[] {
  const base = (name: string): SlashCommandBuilder =>
    new SlashCommandBuilder()
      .setName(name)
      .setDescription(describe(name, engineCommands))
      .setContexts(InteractionContextType.Guild, InteractionContextType.BotDM)
      .setIntegrationTypes(ApplicationIntegrationType.GuildInstall);

  const commands = [
    base('enroll').addAttachmentOption((o) => o.setName('sample').setDescription('A voice note or audio file to add as an enrollment sample').setRequired(false)),
    base('talk')
      .addAttachmentOption((o) => o.setName('voice').setDescription('A voice note or audio file to say to your twin').setRequired(false))
      .addStringOption((o) => o.setName('text').setDescription('Or type what you want to say').setRequired(false)),
    base('say').addStringOption((o) => o.setName('text').setDescription('The text to speak in your twin voice').setRequired(true)),
    base('style').addStringOption((o) =>
      o
        .setName('persona')
        .setDescription('The persona; leave empty to see them all')
        .setRequired(false)
        .addChoices(...PERSONA_NAMES.map((name) => ({ name: choiceLabel(name), value: name }))),
    ),
    base('remember').addStringOption((o) => o.setName('text').setDescription('What your twin should remember').setRequired(true)),
    base('memories'),
    base('forget').addStringOption((o) => o.setName('memory').setDescription('A memory id from /memories, or "all"').setRequired(true)),
    base('status'),
    base('delete'),
    base('help'),
  ];
  const offered = new Set(engineCommands.map((c) => c.name));
  if (offered.has('text')) {
    commands.push(
      base('text').addStringOption((o) =>
        o
          .setName('mode')
          .setDescription('on: text with every voice reply; off: voice only')
          .setRequired(true)
          .addChoices({ name: 'on', value: 'on' }, { name: 'off', value: 'off' }),
      ),
    );
  }
  if (offered.has('stop')) commands.push(base('stop'));
  // The sign-in link carries a one-time code: the reply is ephemeral (EPHEMERAL_COMMANDS).
  if (offered.has('web')) commands.push(base('web'));
  return commands.map((c) => c.toJSON());
}

/** A choice label ≤ 100 characters: `Supportive: Warm and encouraging; validates feelings first.` */
function choiceLabel(name: (typeof PERSONA_NAMES)[number]): string {
  const label = `${name[0]!.toUpperCase()}${name.slice(1)}: ${PERSONAS[name].description}`;
  return label.length > MAX_DESCRIPTION_CHARS ? label.slice(0, MAX_DESCRIPTION_CHARS) : label;
}

/** The content fields of an {@link InboundMessage} for one slash command. */
export type CommandContent = Pick<InboundMessage, 'text' | 'command' | 'audio'>;

/**
 * Maps a chat-input interaction to message content, without deciding anything:
 * - `/enroll` alone → command `enroll`; with `sample` → that audio (the engine takes audio as an
 *   enrollment sample while an enrollment is waiting for consent or samples);
 * - `/talk` → the `voice` attachment as audio and/or `text` (neither → empty text, which the engine
 *   answers);
 * - `/style` without a persona → command `styles`; the others → command `<name>` with their
 *   options' values, space-separated, as args (`/text mode:off` → `text off`).
 */
export function commandContent(interaction: ChatInputCommandInteraction, download: (a: Attachment) => () => Promise<Buffer>): CommandContent {
  const name = interaction.commandName;
  const options = interaction.options;
  const audioOf = (attachment: Attachment | null): InboundAudio | undefined => (attachment ? attachmentAudio(attachment, false, download(attachment)) : undefined);
  switch (name) {
    case 'enroll': {
      const audio = audioOf(options.getAttachment('sample'));
      return audio ? { audio } : { command: { name: 'enroll', args: '' } };
    }
    case 'talk': {
      const audio = audioOf(options.getAttachment('voice'));
      const text = options.getString('text') ?? undefined;
      if (audio) return text ? { audio, text } : { audio };
      return { text: text ?? '' };
    }
    case 'say':
      return { command: { name: 'say', args: options.getString('text') ?? '' } };
    case 'style': {
      const persona = options.getString('persona');
      return persona ? { command: { name: 'style', args: persona } } : { command: { name: 'styles', args: '' } };
    }
    case 'remember':
      return { command: { name: 'remember', args: options.getString('text') ?? '' } };
    case 'forget':
      return { command: { name: 'forget', args: options.getString('memory') ?? '' } };
    default: {
      // Any other registered command: its string options, in order, become the arguments.
      const args = interaction.options.data
        .map((o) => o.value)
        .filter((v) => v !== undefined && v !== null)
        .join(' ');
      return { command: { name, args } };
    }
  }
}
