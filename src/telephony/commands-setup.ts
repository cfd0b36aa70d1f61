/** Wiring of the phone line's chat commands from the config (kept apart from the routes, which load the Twilio SDK). */
import type { Config } from '../config.js';
import type { Engine } from '../core/engine.js';
import { CallLog } from './call-log.js';
import { deletePhoneData, registerPhoneCommands } from './commands.js';

/**
 * Adds `/phone` and `/calls` when the phone line is configured; `/delete` removes phone links and
 * call logs in any case (they stay in the store when the line is switched off later), and
 * `/export` includes the call log (`sections.calls`).
 */
export function setUpPhoneCommands(config: Config, engine: Engine): void {
  if (config.telephony) registerPhoneCommands(engine, config.telephony.twilio.phoneNumber ? { phoneNumber: config.telephony.twilio.phoneNumber } : {});
  else engine.registerDeletionHook('phone', (userKey) => deletePhoneData(engine, userKey));
  // The call log is the person's data whether or not the line is on now.
  engine.registerExportSection('calls', (userKey) => new CallLog(engine.store.kv, engine.now).list(userKey));
}
