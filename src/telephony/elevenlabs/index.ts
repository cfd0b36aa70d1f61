/**
 * The `elevenlabs-agent` phone mode and the ElevenLabs agent webhooks (docs/telephony-elevenlabs.md).
 */
export { createElevenLabsAgentMode, type CallInfo, type CallMode, type CallUpdater, type ElevenLabsAgentMode, type ElevenLabsAgentModeDeps } from './mode.js';
export { registerElevenLabsRoutes, secretsEqual, INITIATION_PATH, POST_CALL_PATH, DEFAULT_INITIATION_SECRET_HEADER, POST_CALL_BODY_LIMIT_BYTES, type ElevenLabsRoutes, type ElevenLabsRoutesDeps } from './routes.js';
export { verifyPostCallSignature, parseSignatureHeader, WebhookSignatureError, SIGNATURE_TOLERANCE_SEC, FUTURE_SKEW_SEC, type SignatureFailure } from './signature.js';
export { AgentVoices, DEFAULT_CLONE_CACHE_SEC, TEMPORARY_CLONES_KEY, type AgentVoice, type TemporaryClone } from './voices.js';
export { buildClientData, toWire, DYNAMIC_VARIABLES, type VoiceUse } from './overrides.js';
export { PostCallProcessor, type PostCallOutcome } from './post-call.js';
export { CALL_RECORD_TTL_MS, callRecordKey, type CallRecord } from './call-records.js';
export { loadElevenLabsAgentConfig, type ElevenLabsAgentConfig } from './config.js';
export { createElevenLabsTelephony, type ElevenLabsTelephony, type ElevenLabsTelephonyOptions } from './setup.js';
