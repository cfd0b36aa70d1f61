/**
 * The per-call conversation data handed to the ElevenLabs agent: dynamic variables and a
 * `conversation_config_override` with the person's voice, first message and persona prompt.
 *
 * Overrides replace the agent's settings for one conversation only (patching the agent would change
 * it for every caller at once); each overridden field must be allowed in the agent's **Security**
 * settings, or ElevenLabs refuses the conversation
 * (https://elevenlabs.io/docs/agents-platform/customization/personalization/overrides). Dynamic
 * variables fill `{{name}}` placeholders in the prompt and first message
 * (https://elevenlabs.io/docs/agents-platform/customization/personalization/dynamic-variables);
 * every variable the agent defines must be sent, so the set below is always complete.
 */
import type { ElevenLabs } from '@elevenlabs/elevenlabs-js';
import { ConversationInitiationClientDataRequestInput as ClientDataSerializer } from '@elevenlabs/elevenlabs-js/serialization/index.js';
import { renderSystemPrompt } from '../../core/personas.js';
import { selectMemories } from '../../core/memory.js';
import type { Store } from '../../core/store/types.js';

/** The dynamic variables every call carries (define the same names in the agent, if any). */
export const DYNAMIC_VARIABLES = ['user_name', 'persona', 'memories', 'voice_note', 'voicetwin_call_ref'] as const;

/** What the voice of this call is, for the first message and the call record. */
export type VoiceUse = 'own' | 'default-no-voice' | 'default-preparing' | 'default-fallback';

/** Inputs of {@link buildClientData}. */
export interface ClientDataInput {
  store: Store;
  /** The caller's person, or undefined for an unlinked number. */
  userKey: string | undefined;
  /** ElevenLabs voice id to speak in; undefined keeps the agent's default voice. */
  voiceId: string | undefined;
  voiceUse: VoiceUse;
  /** Opaque id of this call, returned in the post-call webhook's dynamic variables. */
  callRef: string;
  /** Memories sent (most recent first), default 3. */
  memoryCount?: number;
  /** Agent language (ISO 639-1), when the agent allows overriding it. */
  language?: string;
}

const VOICE_NOTES: Record<VoiceUse, string> = {
  own: '',
  'default-no-voice': 'I do not have your voice yet, so I am using a standard voice. Enroll with /enroll in the chat to hear yourself.',
  'default-preparing': 'I am preparing your voice for your next call, so I am using a standard voice today.',
  'default-fallback': 'Your voice took too long to prepare, so I am using a standard voice for this call.',
};

/**
 * The conversation initiation client data for one call (SDK shape, camelCase).
 * The first message greets the person by name and, in a default voice, says why.
 */
export async function buildClientData(input: ClientDataInput): Promise<ElevenLabs.ConversationInitiationClientDataRequestInput> {
  const user = input.userKey ? await input.store.users.get(input.userKey) : undefined;
  const name = user?.displayName ?? 'friend';
  const memories = input.userKey ? selectMemories(await input.store.memories.list(input.userKey), '', input.memoryCount ?? 3, true) : [];
  const voiceNote = VOICE_NOTES[input.voiceUse];
  const prompt = user
    ? `${renderSystemPrompt(user.persona, user.displayName)} This is a live phone call: answer in one to three short spoken sentences. What you remember about them: {{memories}}`
    : 'You answer a phone number that is not linked to anyone yet. Explain briefly that the caller can link this number by sending /phone in the VoiceTwin chat, then say goodbye.';
  const firstMessage = user ? `Hi ${name}, it's your twin.${voiceNote ? ` ${voiceNote}` : ''} What's on your mind?` : 'Hello. This number is not linked to a twin yet.';
  return {
    dynamicVariables: {
      user_name: name,
      persona: user?.persona ?? 'none',
      memories: memories.length > 0 ? memories.map((m) => m.text).join(' | ') : 'nothing yet',
      voice_note: voiceNote || 'none',
      voicetwin_call_ref: input.callRef,
    },
    conversationConfigOverride: {
      agent: { firstMessage, prompt: { prompt }, ...(input.language ? { language: input.language } : {}) },
      ...(input.voiceId ? { tts: { voiceId: input.voiceId } } : {}),
    },
  };
}

/**
 * The same data on the wire (snake_case JSON), as the pre-call webhook must answer it, serialised
 * by the SDK's own schema so it matches what `registerCall` sends:
 * `{ type: "conversation_initiation_client_data", dynamic_variables, conversation_config_override: { agent: { first_message, prompt: { prompt } }, tts: { voice_id } } }`
 * (https://elevenlabs.io/docs/agents-platform/customization/personalization/twilio-personalization).
 */
export function toWire(data: ElevenLabs.ConversationInitiationClientDataRequestInput): Record<string, unknown> {
  const json = ClientDataSerializer.jsonOrThrow(data, { unrecognizedObjectKeys: 'strip' }) as Record<string, unknown>;
  return { type: 'conversation_initiation_client_data', ...json };
}
