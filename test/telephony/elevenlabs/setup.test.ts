/** The mode and the webhooks built from the environment, as the composition root does. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { createHttpServer } from '../../../src/http/server.js';
import { silentLogger } from '../../../src/core/log.js';
import { createElevenLabsTelephony } from '../../../src/telephony/elevenlabs/index.js';
import { ElevenLabsFake } from '../../fakes/elevenlabs/server.js';
import { TwilioCallsFake, twilioClientFor } from '../../fakes/elevenlabs/twilio-calls.js';
import { ACCOUNT_SID, AGENT_ID, API_KEY, AUTH_TOKEN, addPerson, addVoice, openStore } from './helpers.js';

let eleven: ElevenLabsFake;
let twilioFake: TwilioCallsFake;

beforeAll(async () => {
  eleven = await ElevenLabsFake.start({ apiKey: API_KEY });
  eleven.agents.add(AGENT_ID);
  twilioFake = await TwilioCallsFake.start({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
});

afterAll(async () => {
  await eleven.close();
  await twilioFake.close();
});

it('answers a call and serves the pre-call webhook from the configuration alone', async () => {
  const secret = 'setup-secret-0123456789abcdef';
  const config = loadConfig({
    VOICETWIN_DATA_DIR: '/tmp/vt-setup-el', LOG_LEVEL: 'silent', ELEVENLABS_API_KEY: API_KEY, ELEVENLABS_BASE_URL: eleven.baseUrl,
    ELEVENLABS_AGENT_ID: AGENT_ID, ELEVENLABS_INITIATION_SECRET: secret, ELEVENLABS_POST_CALL_SECRET: 'wsec_setup',
  });
  const { store, close } = await openStore();
  try {
    await addPerson(store, 'telegram:30', 'Lou');
    await addVoice(store, 'telegram:30', 'elevenlabs', 'kept-lou');
    const telephony = createElevenLabsTelephony({
      connection: config.elevenlabs!, agent: config.elevenlabsAgent!, cloneTimeoutSec: config.engine.cloneTimeoutSec, store,
      twilio: twilioClientFor(twilioFake), lookupCaller: async (e164) => (e164 === '+15551230000' ? 'telegram:30' : undefined), logger: silentLogger,
    });
    const server = await createHttpServer({
      settings: { host: '127.0.0.1', port: 0, headersTimeoutMs: 5000, requestTimeoutMs: 10_000, idleTimeoutMs: 10_000, rateLimitPerIp: 100, rateLimitPerKey: 100 },
      logger: silentLogger,
      routes: async (app) => void (await telephony.registerRoutes(app)),
    });
    await server.listen();
    try {
      expect(telephony.mode.name).toBe('elevenlabs-agent');
      const twiml = await telephony.mode.answer({ callSid: 'CA30', from: '+15551230000', to: '+15559990000', userKey: 'telegram:30' }, 'https://twin.example.org');
      expect(twiml).toBe(eleven.registeredCalls.at(-1)!.twiml);
      const res = await fetch(`${server.url}/telephony/elevenlabs/initiation`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-voicetwin-secret': secret }, body: JSON.stringify({ caller_id: '+15551230000' }),
      });
      expect(((await res.json()) as { conversation_config_override: { tts: unknown } }).conversation_config_override.tts).toEqual({ voice_id: 'kept-lou' });
    } finally {
      await server.close();
    }
  } finally {
    await close();
  }
});
