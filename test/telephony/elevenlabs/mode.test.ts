/**
 * The `elevenlabs-agent` mode against the ElevenLabs fake (register-call, voices/add) through the
 * real SDK, and the Twilio call update through the real `twilio` client pointed at a local fake.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../../src/core/store/types.js';
import { createElevenLabsClient } from '../../../src/providers/elevenlabs/client.js';
import { ElevenLabsVoiceCloner } from '../../../src/providers/elevenlabs/index.js';
import { createElevenLabsAgentMode, type CallUpdater, type ElevenLabsAgentModeDeps } from '../../../src/telephony/elevenlabs/mode.js';
import { AgentVoices, TEMPORARY_CLONES_KEY, type TemporaryClone } from '../../../src/telephony/elevenlabs/voices.js';
import { callRecordKey, type CallRecord } from '../../../src/telephony/elevenlabs/call-records.js';
import { renderSystemPrompt } from '../../../src/core/personas.js';
import { silentLogger } from '../../../src/core/log.js';
import { ElevenLabsFake } from '../../fakes/elevenlabs/server.js';
import { TwilioCallsFake, twilioClientFor } from '../../fakes/elevenlabs/twilio-calls.js';
import { wavSamples } from '../../fakes/elevenlabs/audio.js';
import { ACCOUNT_SID, AGENT_ID, API_KEY, AUTH_TOKEN, addPerson, addSamples, addVoice, captureLogs, openStore } from './helpers.js';

let eleven: ElevenLabsFake;
let twilioFake: TwilioCallsFake;
let store: Store;
let closeStore: () => Promise<void>;
let callCounter = 0;

beforeAll(async () => {
  eleven = await ElevenLabsFake.start({ apiKey: API_KEY });
  eleven.agents.add(AGENT_ID);
  twilioFake = await TwilioCallsFake.start({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
});

afterAll(async () => {
  await eleven.close();
  await twilioFake.close();
});

beforeEach(async () => {
  ({ store, close: closeStore } = await openStore());
});

afterEach(async () => {
  await closeStore();
});

function deps(overrides: Partial<ElevenLabsAgentModeDeps> = {}): ElevenLabsAgentModeDeps {
  const connection = { apiKey: API_KEY, baseUrl: eleven.baseUrl };
  const twilio: CallUpdater = twilioClientFor(twilioFake);
  return {
    client: createElevenLabsClient(connection),
    apiKey: API_KEY,
    agentId: AGENT_ID,
    store,
    cloner: new ElevenLabsVoiceCloner({ ...connection, minSpeechSec: 3 }),
    twilio,
    logger: silentLogger,
    cloneTimeoutSec: 5,
    ...overrides,
  };
}

function newCall(userKey: string): { callSid: string; from: string; to: string; userKey: string } {
  callCounter++;
  const callSid = `CA${String(callCounter).padStart(32, '0')}`;
  twilioFake.addCall(callSid);
  return { callSid, from: '+14155550123', to: '+14155550999', userKey };
}

type ClientData = { dynamic_variables: Record<string, unknown>; conversation_config_override: { agent: { first_message: string; prompt: { prompt: string } }; tts?: { voice_id: string } } };

function lastRegistration(): { body: Record<string, unknown> & { conversation_initiation_client_data: ClientData }; twiml: string } {
  const last = eleven.registeredCalls.at(-1);
  if (!last) throw new Error('no call was registered');
  return last as { body: Record<string, unknown> & { conversation_initiation_client_data: ClientData }; twiml: string };
}

describe('a person with a voice the agent can use', () => {
  it('registers the call with the per-call override and answers with the agent TwiML', async () => {
    await addPerson(store, 'telegram:1', 'Ada', 'coaching');
    await addVoice(store, 'telegram:1', 'elevenlabs', 'kept-voice-ada');
    await store.memories.add('telegram:1', { id: 'a1', text: 'Ada runs a bakery in Leeds', createdAtMs: 10, source: 'explicit' });
    await store.memories.add('telegram:1', { id: 'a2', text: 'Ada is training for a marathon', createdAtMs: 20, source: 'extracted' });
    const mode = createElevenLabsAgentMode(deps());
    const call = newCall('telegram:1');

    const twiml = await mode.answer(call, 'https://twin.example.org');

    const { body, twiml: registered } = lastRegistration();
    expect(twiml).toBe(registered);
    expect(twiml).toContain('<Connect><Stream url="wss://api.elevenlabs.io/v1/convai/conversation/twilio');
    expect(body).toMatchObject({ agent_id: AGENT_ID, from_number: call.from, to_number: call.to, direction: 'inbound' });
    const data = body.conversation_initiation_client_data;
    expect(data.conversation_config_override.tts).toEqual({ voice_id: 'kept-voice-ada' });
    expect(data.conversation_config_override.agent.first_message).toMatch(/^Hi Ada, it's your twin\. What's on your mind\?$/);
    expect(data.conversation_config_override.agent.prompt.prompt).toContain(renderSystemPrompt('coaching', 'Ada'));
    expect(data.conversation_config_override.agent.prompt.prompt).toContain('{{memories}}');
    expect(data.dynamic_variables).toMatchObject({ user_name: 'Ada', persona: 'coaching', memories: 'Ada is training for a marathon | Ada runs a bakery in Leeds', voice_note: 'none' });
    // The call reference leads back to the person and the voice.
    const record = await store.kv.get<CallRecord>(callRecordKey(String(data.dynamic_variables.voicetwin_call_ref)));
    expect(record).toMatchObject({ userKey: 'telegram:1', callSid: call.callSid, voiceUse: 'own', voiceId: 'kept-voice-ada' });
    expect(eleven.on('clone')).toHaveLength(0);
  });

  it('uses a temporary clone cached less than 24 h ago, and clones again once it expired', async () => {
    await addPerson(store, 'telegram:2', 'Bea');
    await addVoice(store, 'telegram:2', 'replicate', 'chatterbox-ref');
    await addSamples(store, 'telegram:2');
    let nowMs = Date.UTC(2026, 0, 1);
    const clock = () => nowMs;
    await store.kv.set<TemporaryClone[]>(TEMPORARY_CLONES_KEY, [{ userKey: 'telegram:2', voiceId: 'cached-bea', createdAtMs: nowMs, expiresAtMs: nowMs + 86_400_000 }]);
    const mode = createElevenLabsAgentMode(deps({ now: clock }));

    nowMs += 23 * 3_600_000;
    const clonesBefore = eleven.on('clone').length;
    await mode.answer(newCall('telegram:2'), 'https://twin.example.org');
    expect(lastRegistration().body.conversation_initiation_client_data.conversation_config_override.tts).toEqual({ voice_id: 'cached-bea' });
    expect(eleven.on('clone')).toHaveLength(clonesBefore);

    nowMs += 2 * 3_600_000; // 25 h after the clone
    const voices = new AgentVoices({ store, cloner: deps().cloner, logger: silentLogger, now: clock });
    expect((await voices.resolve('telegram:2')).kind).toBe('needs-clone');
    const twiml = await mode.answer(newCall('telegram:2'), 'https://twin.example.org');
    expect(twiml).toContain('<Say>');
    await mode.whenIdle();
    expect(eleven.on('clone')).toHaveLength(clonesBefore + 1);
  });

  it('answers a person with no samples in the default voice and says why', async () => {
    await addPerson(store, 'telegram:3', 'Cy');
    const mode = createElevenLabsAgentMode(deps());
    await mode.answer(newCall('telegram:3'), 'https://twin.example.org');
    const data = lastRegistration().body.conversation_initiation_client_data;
    expect(data.conversation_config_override.tts).toBeUndefined();
    expect(data.conversation_config_override.agent.first_message).toContain('I do not have your voice yet');
    expect(data.dynamic_variables.memories).toBe('nothing yet');
  });

  it('answers with a spoken apology when ElevenLabs refuses the call (unknown agent)', async () => {
    await addPerson(store, 'telegram:4', 'Dee');
    await addVoice(store, 'telegram:4', 'elevenlabs', 'kept-dee');
    const logs = captureLogs();
    const mode = createElevenLabsAgentMode(deps({ agentId: 'agent_missing', logger: logs.logger }));
    const twiml = await mode.answer(newCall('telegram:4'), 'https://twin.example.org');
    expect(twiml).toMatch(/<Say>Sorry, I could not connect you to your twin just now\. Please call again in a minute\.<\/Say><Hangup\/>/);
    expect(logs.text()).toContain('agent_not_found');
    expect(logs.text()).not.toContain(API_KEY);
  });
});

describe('a person whose voice must be made first', () => {
  it('greets with hold TwiML at once, clones from the stored samples and moves the live call to the agent', async () => {
    await addPerson(store, 'telegram:5', 'Eve');
    await addVoice(store, 'telegram:5', 'replicate', 'chatterbox-eve');
    const stored = await addSamples(store, 'telegram:5');
    const mode = createElevenLabsAgentMode(deps({ holdAudioUrl: '/static/hold.mp3' }));
    const call = newCall('telegram:5');
    const clonesBefore = eleven.on('clone').length;
    const updatesBefore = twilioFake.updates.length;

    const started = performance.now();
    const twiml = await mode.answer(call, 'https://twin.example.org/');
    const answerMs = performance.now() - started;
    expect(twiml).toContain("<Say>Hi Eve, it's your twin. Give me a moment while I get my voice ready.</Say>");
    expect(twiml).toContain('<Play loop="10">https://twin.example.org/static/hold.mp3</Play>');
    expect(answerMs).toBeLessThan(100);

    const [update] = (await twilioFake.waitForUpdates(updatesBefore + 1)).slice(updatesBefore);
    await mode.whenIdle();
    // The clone was made from the person's own enrollment samples, as WAV.
    const cloneRequest = eleven.on('clone').slice(clonesBefore)[0]!;
    const files = (cloneRequest.files ?? []).filter((f) => f.field === 'files');
    expect(files.map((f) => wavSamples(f.bytes).samples)).toEqual(stored);
    const voiceId = [...eleven.voices.keys()].at(-1)!;
    // The live call got exactly the TwiML ElevenLabs returned for a registration in that voice.
    const registration = lastRegistration();
    expect(registration.body.conversation_initiation_client_data.conversation_config_override.tts).toEqual({ voice_id: voiceId });
    expect(update).toMatchObject({ callSid: call.callSid, params: { Twiml: registration.twiml } });
    // Cached for the next call.
    const registry = await store.kv.get<TemporaryClone[]>(TEMPORARY_CLONES_KEY);
    expect(registry).toEqual([expect.objectContaining({ userKey: 'telegram:5', voiceId })]);
  });

  it('continues in the default voice after the clone timeout, says so, and keeps the late clone for the next call', async () => {
    await addPerson(store, 'telegram:6', 'Fay');
    await addSamples(store, 'telegram:6');
    eleven.inject('clone', { status: 200, delayMs: 1500, passThrough: true });
    const mode = createElevenLabsAgentMode(deps({ cloneTimeoutSec: 0.3 }));
    const call = newCall('telegram:6');
    const updatesBefore = twilioFake.updates.length;

    const answeredAt = Date.now();
    const twiml = await mode.answer(call, 'https://twin.example.org');
    expect(twiml).toMatch(/<Pause length="\d+"\/>/);
    const [update] = (await twilioFake.waitForUpdates(updatesBefore + 1)).slice(updatesBefore);
    const waitedMs = update!.atMs - answeredAt;
    expect(waitedMs).toBeGreaterThanOrEqual(300);
    expect(waitedMs).toBeLessThan(1400);
    const registration = lastRegistration();
    const data = registration.body.conversation_initiation_client_data;
    expect(data.conversation_config_override.tts).toBeUndefined();
    expect(data.conversation_config_override.agent.first_message).toContain('Your voice took too long to prepare, so I am using a standard voice');
    expect(update!.params.Twiml).toBe(registration.twiml);

    await mode.whenIdle();
    await new Promise((r) => setTimeout(r, 1500));
    const registry = (await store.kv.get<TemporaryClone[]>(TEMPORARY_CLONES_KEY)) ?? [];
    expect(registry.map((c) => c.userKey)).toEqual(['telegram:6']);
    // The next call connects at once in the late clone.
    const again = await mode.answer(newCall('telegram:6'), 'https://twin.example.org');
    expect(again).toContain('<Connect>');
    expect(lastRegistration().body.conversation_initiation_client_data.conversation_config_override.tts).toEqual({ voice_id: registry[0]!.voiceId });
  });

  it('falls back to the default voice when the clone fails, and copes with a caller who hung up', async () => {
    await addPerson(store, 'telegram:7', 'Gus');
    await addSamples(store, 'telegram:7');
    eleven.inject('clone', { status: 400, detailStatus: 'invalid_audio', message: 'bad audio' });
    const logs = captureLogs();
    const mode = createElevenLabsAgentMode(deps({ logger: logs.logger }));
    const call = newCall('telegram:7');
    twilioFake.hangUp(call.callSid);
    const refusedBefore = twilioFake.refused.length;

    await mode.answer(call, 'https://twin.example.org');
    await mode.whenIdle();
    expect(lastRegistration().body.conversation_initiation_client_data.conversation_config_override.tts).toBeUndefined();
    expect(twilioFake.refused.slice(refusedBefore)).toEqual([{ path: `/2010-04-01/Accounts/${ACCOUNT_SID}/Calls/${call.callSid}.json`, status: 400 }]);
    expect(logs.text()).toContain('voice clone failed');
    expect(logs.text()).toContain('21220');
    expect(logs.text()).not.toContain(AUTH_TOKEN);
  });
});
