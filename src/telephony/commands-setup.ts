/** Wiring of the phone line's chat commands from the config (kept apart from the routes, which load the Twilio SDK). */
import type { Config } from '../config.js';
import type { Engine } from '../core/engine.js';
import { deletePhoneData, registerPhoneCommands } from './commands.js';

/**
 * Adds `/phone` and `/calls` when the phone line is configured; `/delete` removes phone links and
 * call logs in any case (they stay in the store when the line is switched off later).
 */
export function setUpPhoneCommands(config: Config, engine: Engine): void {
  if (config.telephony) registerPhoneCommands(engine, config.telephony.twilio.phoneNumber ? { phoneNumber: config.telephony.twilio.phoneNumber } : {});
  else engine.registerDeletionHook('phone', (userKey) => deletePhoneData(engine, userKey));
}
