/**
 * The `elevenlabs-agent` phone mode: our server answers Twilio's voice webhook and hands the call
 * to an ElevenLabs agent speaking in the caller's own voice.
 *
 * - Voice ready (a kept ElevenLabs voice, or a temporary clone cached less than 24 h ago): the call
 *   is registered with ElevenLabs (`POST /v1/convai/twilio/register-call`,
 *   https://elevenlabs.io/docs/api-reference/twilio/register-call) with a per-call override (voice,
 *   first message, persona prompt, memories as dynamic variables) and its TwiML is the answer.
 * - Voice to be made first (enrolled with Replicate or offline, or the cached clone expired): the
 *   answer is at once a greeting in Twilio's default voice plus hold audio; an instant voice clone
 *   is made from the stored enrollment samples in the background, and the moment it is ready the
 *   live call is updated over Twilio's REST API with the agent's TwiML (`POST
 *   /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json` with `Twiml`,
 *   https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource). A status-callback
 *   response cannot do this: Twilio ignores its body (https://www.twilio.com/docs/api/errors/17583).
 *   After `cloneTimeoutSec` (CLONE_TIMEOUT_S, 35 s) the call continues with the agent in its default
 *   voice and the first message says so; the clone still finishes and serves the next call.
 *
 * The wait runs in this process: a call cannot outlive the process that holds it on hold anyway,
 * and the TwiML played meanwhile ends with an apology, so a crash never leaves a caller in silence.
 */
import type { ElevenLabsClient } from '@elevenlabs/elevenlabs-js';
import twilio from 'twilio';
import type { Logger } from 'pino';
import type { VoiceCloner } from '../../core/providers.js';
import type { Store } from '../../core/store/types.js';
import { mapElevenLabsError } from '../../providers/elevenlabs/client.js';
import { buildClientData, type VoiceUse } from './overrides.js';
import { AgentVoices } from './voices.js';
import { CALL_RECORD_TTL_MS, callRecordKey, newCallRef, type CallRecord } from './call-records.js';
import type { CallInfo, CallMode } from '../modes.js';

// The call and the mode interface are the phone line's own (`../modes.ts`): this mode is one of them.
export type { CallInfo, CallMode } from '../modes.js';

/** The one Twilio REST call this mode needs; a `twilio` client satisfies it. */
export interface CallUpdater {
  calls(callSid: string): { update(params: { twiml: string }): Promise<unknown> };
}

/** Dependencies of {@link createElevenLabsAgentMode}. */
export interface ElevenLabsAgentModeDeps {
  /** SDK client of the agent's account (retries off, as `createElevenLabsClient` makes it). */
  client: ElevenLabsClient;
  /** The API key, only to redact it from error messages. */
  apiKey: string;
  /** The agent that answers (`agent_…`). */
  agentId: string;
  store: Store;
  /** ElevenLabs instant voice cloner of the same account, for temporary clones. */
  cloner: VoiceCloner;
  /** Updates live calls (the `twilio` client of the account that owns the number). */
  twilio: CallUpdater;
  logger: Logger;
  /** Seconds to wait for a clone before continuing in the default voice (default 35). */
  cloneTimeoutSec?: number;
  /** Lifetime of a temporary clone, seconds (default 24 h). */
  cloneCacheSec?: number;
  /** Hold audio played while the voice is prepared (absolute, or relative to the public URL); silence when unset. */
  holdAudioUrl?: string;
  /** Memories sent with each call (default 3). */
  memoryCount?: number;
  /** Timeout of one ElevenLabs request, seconds (default 10). */
  requestTimeoutSec?: number;
  now?: () => number;
}

/** The mode object, plus `whenIdle` for tests and shutdown. */
export interface ElevenLabsAgentMode extends CallMode {
  readonly name: 'elevenlabs-agent';
  /** Resolves when every background clone-and-switch of this process has finished. */
  whenIdle(): Promise<void>;
}

const APOLOGY = 'Sorry, I could not connect you to your twin just now. Please call again in a minute.';

/**
 * Creates the `elevenlabs-agent` mode.
 * `answer` never throws: an ElevenLabs failure is answered with a spoken apology and logged.
 */
export function createElevenLabsAgentMode(deps: ElevenLabsAgentModeDeps): ElevenLabsAgentMode {
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'telephony', mode: 'elevenlabs-agent' });
  const voices = new AgentVoices({ store: deps.store, cloner: deps.cloner, logger: log, now, ...(deps.cloneCacheSec !== undefined ? { cacheSec: deps.cloneCacheSec } : {}) });
  const cloneTimeoutMs = (deps.cloneTimeoutSec ?? 35) * 1000;
  const background = new Set<Promise<void>>();

  /** Registers the call with ElevenLabs and returns the agent's TwiML. */
  async function agentTwiml(call: CallInfo, voiceId: string | undefined, voiceUse: VoiceUse): Promise<string> {
    const callRef = newCallRef();
    const data = await buildClientData({ store: deps.store, userKey: call.userKey, voiceId, voiceUse, callRef, ...(deps.memoryCount !== undefined ? { memoryCount: deps.memoryCount } : {}) });
    const record: CallRecord = { userKey: call.userKey, callSid: call.callSid, voiceUse, ...(voiceId ? { voiceId } : {}), startedAtMs: now() };
    await deps.store.kv.set(callRecordKey(callRef), record, CALL_RECORD_TTL_MS);
    try {
      const twiml = await deps.client.conversationalAi.twilio.registerCall(
        { agentId: deps.agentId, fromNumber: call.from, toNumber: call.to, direction: 'inbound', conversationInitiationClientData: data },
        { maxRetries: 0, timeoutInSeconds: deps.requestTimeoutSec ?? 10 },
      );
      return normaliseTwiml(twiml);
    } catch (err) {
      throw mapElevenLabsError(err, deps.apiKey);
    }
  }

  function holdTwiml(name: string | undefined, publicUrl: string): string {
    const response = new twilio.twiml.VoiceResponse();
    response.say(`Hi${name ? ` ${name}` : ''}, it's your twin. Give me a moment while I get my voice ready.`);
    if (deps.holdAudioUrl) response.play({ loop: 10 }, new URL(deps.holdAudioUrl, `${publicUrl}/`).href);
    else response.pause({ length: Math.ceil(cloneTimeoutMs / 1000) + 30 });
    response.say(APOLOGY);
    response.hangup();
    return response.toString();
  }

  /** Waits for the clone (at most the timeout), then moves the live call to the agent. */
  async function switchWhenReady(call: CallInfo, displayName: string | undefined): Promise<void> {
    const callLog = log.child({ personId: call.userKey, callSid: call.callSid });
    const startedMs = now();
    let voiceId: string | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), cloneTimeoutMs)));
      const outcome = await Promise.race([voices.clone(call.userKey, displayName), timeout]);
      if (outcome === 'timeout') callLog.warn({ timeoutSec: cloneTimeoutMs / 1000 }, 'voice clone not ready in time; the call continues in the default voice');
      else voiceId = outcome;
    } catch (err) {
      callLog.warn({ err }, 'voice clone failed; the call continues in the default voice');
    } finally {
      clearTimeout(timer);
    }
    let twiml: string;
    try {
      twiml = await agentTwiml(call, voiceId, voiceId ? 'own' : 'default-fallback');
    } catch (err) {
      callLog.error({ err }, 'could not register the call with the ElevenLabs agent');
      twiml = apologyTwiml();
    }
    try {
      await deps.twilio.calls(call.callSid).update({ twiml });
      callLog.info({ ms: now() - startedMs, voice: voiceId ? 'own' : 'default' }, 'live call moved to the agent');
    } catch (err) {
      // 21220: the caller hung up while on hold.
      callLog.info({ err: describeTwilioError(err) }, 'could not update the live call');
    }
  }

  return {
    name: 'elevenlabs-agent',
    async answer(call, publicUrl) {
      const callLog = log.child({ personId: call.userKey, callSid: call.callSid });
      try {
        const voice = await voices.resolve(call.userKey);
        if (voice.kind === 'kept' || voice.kind === 'cached') return await agentTwiml(call, voice.voiceId, 'own');
        if (voice.kind === 'default') return await agentTwiml(call, undefined, 'default-no-voice');
        const user = await deps.store.users.get(call.userKey);
        const task = switchWhenReady(call, user?.displayName).catch((err: unknown) => callLog.error({ err }, 'clone-and-switch failed'));
        background.add(task);
        void task.finally(() => background.delete(task));
        return holdTwiml(user?.displayName, publicUrl.replace(/\/+$/, ''));
      } catch (err) {
        callLog.error({ err }, 'could not answer the call with the ElevenLabs agent');
        return apologyTwiml();
      }
    },
    async whenIdle() {
      while (background.size > 0) await Promise.allSettled([...background]);
    },
  };
}

function apologyTwiml(): string {
  const response = new twilio.twiml.VoiceResponse();
  response.say(APOLOGY);
  response.hangup();
  return response.toString();
}

/** `registerCall` answers TwiML as text; accept it also as a JSON-quoted string. */
function normaliseTwiml(body: string): string {
  const text = body.trim();
  if (text.startsWith('"')) {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed === 'string') return parsed;
  }
  if (!text.includes('<Response')) throw new Error('register-call did not return TwiML');
  return text;
}

/** Status and Twilio error code of a failed REST call, without anything else. */
function describeTwilioError(err: unknown): { status?: number; code?: number; message: string } {
  const e = err as { status?: unknown; code?: unknown; message?: unknown };
  return {
    ...(typeof e.status === 'number' ? { status: e.status } : {}),
    ...(typeof e.code === 'number' ? { code: e.code } : {}),
    message: typeof e.message === 'string' ? e.message.slice(0, 200) : 'failed',
  };
}
