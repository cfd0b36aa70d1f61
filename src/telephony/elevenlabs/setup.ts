/**
 * Builds the `elevenlabs-agent` mode and its webhooks from the configuration, for the composition
 * root: one SDK client and one cloner for both, with the settings of `Config.elevenlabsAgent`.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ChatModel } from '../../core/providers.js';
import type { Store } from '../../core/store/types.js';
import { createElevenLabsClient, ElevenLabsVoiceCloner } from '../../providers/elevenlabs/index.js';
import type { ElevenLabsAgentConfig } from './config.js';
import { createElevenLabsAgentMode, type CallUpdater, type ElevenLabsAgentMode } from './mode.js';
import { registerElevenLabsRoutes, type ElevenLabsRoutes } from './routes.js';

/** What {@link createElevenLabsTelephony} needs besides the configuration. */
export interface ElevenLabsTelephonyOptions {
  /** `Config.elevenlabs` (API key and base URL). */
  connection: { apiKey: string; baseUrl?: string };
  agent: ElevenLabsAgentConfig;
  /** CLONE_TIMEOUT_S (`Config.engine.cloneTimeoutSec`). */
  cloneTimeoutSec: number;
  store: Store;
  /** The engine's chat model (memory extraction after calls). */
  chat?: ChatModel;
  /** A `twilio` client of the account that owns the number. */
  twilio: CallUpdater;
  /** Person of a caller id (E.164). */
  lookupCaller: (e164: string) => Promise<string | undefined>;
  logger: Logger;
}

/** The mode for the voice webhook and a function mounting the two ElevenLabs webhooks. */
export interface ElevenLabsTelephony {
  mode: ElevenLabsAgentMode;
  /** Adds `POST /telephony/elevenlabs/initiation` and `/post-call`; await before listening. */
  registerRoutes(app: FastifyInstance): Promise<ElevenLabsRoutes>;
}

export function createElevenLabsTelephony(options: ElevenLabsTelephonyOptions): ElevenLabsTelephony {
  const { agent, connection } = options;
  const client = createElevenLabsClient({ ...connection, timeoutSec: 30 });
  const cloner = new ElevenLabsVoiceCloner({ ...connection, minSpeechSec: agent.cloneMinSpeechSec, logger: options.logger });
  const mode = createElevenLabsAgentMode({
    client,
    apiKey: connection.apiKey,
    agentId: agent.agentId,
    store: options.store,
    cloner,
    twilio: options.twilio,
    logger: options.logger,
    cloneTimeoutSec: options.cloneTimeoutSec,
    cloneCacheSec: agent.cloneCacheSec,
    memoryCount: agent.memoryCount,
    ...(agent.holdAudioUrl ? { holdAudioUrl: agent.holdAudioUrl } : {}),
  });
  return {
    mode,
    registerRoutes: (app) =>
      registerElevenLabsRoutes(app, {
        client,
        store: options.store,
        cloner,
        lookupCaller: options.lookupCaller,
        ...(agent.initiationSecret ? { initiationSecret: agent.initiationSecret } : {}),
        initiationSecretHeader: agent.initiationSecretHeader,
        ...(agent.postCallSecret ? { postCallSecret: agent.postCallSecret } : {}),
        ...(options.chat ? { chat: options.chat } : {}),
        deleteCloneAfterCall: agent.deleteCloneAfterCall,
        cloneCacheSec: agent.cloneCacheSec,
        memoryCount: agent.memoryCount,
        logger: options.logger,
      }),
  };
}
