/**
 * The phone line (Twilio): linking a caller id to a person, the voice/status webhooks, the
 * conversation modes and the pipeline mode's Media Streams session. See docs/telephony.md.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import type { Engine } from '../core/engine.js';
import type { Logger } from '../core/log.js';
import { PipelineMode, type CallMode } from './modes.js';
import { registerTelephony, type Telephony } from './twilio-routes.js';

export { linkPhone, personForCaller, unlinkPhone, createLinkCode, redeemLinkCode, numbersOf, normaliseE164 } from './links.js';
export { CallLog, type CallRecord } from './call-log.js';
export { PipelineMode, MEDIA_STREAM_PATH, type CallMode, type CallInfo } from './modes.js';
export { registerTelephony, TWILIO_PATHS, type Telephony, type TelephonyOptions } from './twilio-routes.js';
export { registerPhoneCommands } from './commands.js';
export { setUpPhoneCommands } from './commands-setup.js';

/**
 * The mode PHONE_MODE names. `pipeline` is built in; other modes (`elevenlabs-agent`) are given in
 * `modes` by whoever builds them.
 * @throws Error when the configured mode is not available
 */
export function selectCallMode(name: string, modes: Record<string, CallMode> = {}): CallMode {
  if (name === 'pipeline') return modes.pipeline ?? new PipelineMode();
  const mode = modes[name];
  if (!mode) throw new Error(`PHONE_MODE=${name} is not available in this build; use PHONE_MODE=pipeline`);
  return mode;
}

/**
 * Sets up the phone line from the config: the chat commands on the engine, the routes on the
 * server. Does nothing without `config.telephony` (no TWILIO_AUTH_TOKEN).
 */
export async function startTelephony(
  app: FastifyInstance,
  deps: { config: Config; engine: Engine; logger: Logger; modes?: Record<string, CallMode> },
): Promise<Telephony | undefined> {
  const t = deps.config.telephony;
  if (!t) return undefined;
  const modes = { ...deps.modes };
  if (t.mode === 'elevenlabs-agent' && !modes['elevenlabs-agent']) {
    const built = await buildElevenLabsAgent(app, deps);
    modes['elevenlabs-agent'] = built;
  }
  return registerTelephony(app, {
    engine: deps.engine,
    logger: deps.logger,
    authToken: t.twilio.authToken,
    ...(deps.config.http.publicUrl ? { publicUrl: deps.config.http.publicUrl } : {}),
    mode: selectCallMode(t.mode, modes),
    maxCallSec: t.maxCallSec,
    dailyCallMin: t.dailyCallMin,
    unlinkedCallsPerHour: t.unlinkedCallsPerHour,
  });
}

/**
 * The `elevenlabs-agent` mode from `Config.elevenlabsAgent` (docs/telephony-elevenlabs.md), with its
 * pre-call and post-call webhooks mounted on `app`. The live call is updated through the official
 * `twilio` client of TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN
 * (https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource).
 * @throws Error when ELEVENLABS_API_KEY, ELEVENLABS_AGENT_ID or TWILIO_ACCOUNT_SID is missing
 */
async function buildElevenLabsAgent(app: FastifyInstance, deps: { config: Config; engine: Engine; logger: Logger }): Promise<CallMode> {
  const { config, engine, logger } = deps;
  const t = config.telephony!;
  if (!config.elevenlabs) throw new Error('PHONE_MODE=elevenlabs-agent needs ELEVENLABS_API_KEY');
  if (!config.elevenlabsAgent) throw new Error('PHONE_MODE=elevenlabs-agent needs ELEVENLABS_AGENT_ID (see docs/telephony-elevenlabs.md)');
  if (!t.twilio.accountSid) throw new Error('PHONE_MODE=elevenlabs-agent needs TWILIO_ACCOUNT_SID, to move a call to the agent once its voice is ready');
  const [{ default: twilio }, { createElevenLabsTelephony }, { personForCaller }] = await Promise.all([
    import('twilio'),
    import('./elevenlabs/setup.js'),
    import('./links.js'),
  ]);
  const built = createElevenLabsTelephony({
    connection: { apiKey: config.elevenlabs.apiKey, ...(config.elevenlabs.baseUrl ? { baseUrl: config.elevenlabs.baseUrl } : {}) },
    agent: config.elevenlabsAgent,
    cloneTimeoutSec: config.engine.cloneTimeoutSec,
    store: engine.store,
    chat: engine.providers.chat,
    twilio: twilio(t.twilio.accountSid, t.twilio.authToken),
    lookupCaller: (e164) => personForCaller(engine.store.kv, e164),
    logger: logger.child({ component: 'phone-agent' }),
  });
  await built.registerRoutes(app);
  return built.mode;
}
