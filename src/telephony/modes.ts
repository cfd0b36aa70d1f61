/**
 * Conversation modes of the phone line (PHONE_MODE). The voice webhook decides who is calling and
 * whether they may; the mode decides how the call is then conversed and answers the TwiML.
 *
 * - `pipeline` ({@link PipelineMode}): `<Connect><Stream>` to our own Media Streams WebSocket
 *   (`/telephony/twilio/media`), where STT → chat → TTS run in this server (works offline);
 *   TwiML `<Connect>`/`<Stream>`: https://www.twilio.com/docs/voice/twiml/stream
 * - `elevenlabs-agent`: hands the call to an ElevenLabs agent; implemented in
 *   `src/telephony/elevenlabs/` and plugged in with `registerTelephony({ modes: { 'elevenlabs-agent': … } })`.
 */
import twilio from 'twilio';

/** The call a mode answers. */
export interface CallInfo {
  /** Twilio `CallSid` (`CA…`). */
  callSid: string;
  /** Caller id, E.164. */
  from: string;
  /** The number called, E.164. */
  to: string;
  /** The linked person, `<channel>:<user id>`. */
  userKey: string;
}

/**
 * A way to converse a call. `answer` must resolve quickly (Twilio waits for the TwiML; our goal is
 * under 100 ms): slow work (a clone) goes to the background and updates the live call later.
 */
export interface CallMode {
  readonly name: string;
  /**
   * The TwiML document answering the call.
   * @param publicUrl the server's public base URL, `https://…` (no trailing slash)
   */
  answer(call: CallInfo, publicUrl: string): Promise<string /* TwiML */>;
}

/** Path of the Media Streams WebSocket of the pipeline mode. */
export const MEDIA_STREAM_PATH = '/telephony/twilio/media';

/**
 * Our own pipeline: `<Connect><Stream url="wss://…/telephony/twilio/media">` with custom
 * parameters `callSid` and `person` (echoed in the stream's `start` message), then `<Hangup/>`
 * once the stream is closed (Twilio continues with the next verb after `<Connect>`).
 */
export class PipelineMode implements CallMode {
  readonly name = 'pipeline';

  async answer(call: CallInfo, publicUrl: string): Promise<string> {
    const response = new twilio.twiml.VoiceResponse();
    const stream = response.connect().stream({ url: `${publicUrl.replace(/^http/, 'ws').replace(/\/+$/, '')}${MEDIA_STREAM_PATH}` });
    stream.parameter({ name: 'callSid', value: call.callSid });
    stream.parameter({ name: 'person', value: call.userKey });
    response.hangup();
    return response.toString();
  }
}
