import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { selectCallMode } from '../../src/telephony/index.js';

const base = { VOICETWIN_DATA_DIR: '/tmp/vt-phone-config' };

describe('phone line configuration', () => {
  it('is off without TWILIO_AUTH_TOKEN, on with the documented defaults with it', () => {
    expect(loadConfig(base).telephony).toBeUndefined();
    expect(loadConfig({ ...base, TWILIO_AUTH_TOKEN: 't' }).telephony).toEqual({ mode: 'pipeline', twilio: { authToken: 't' }, maxCallSec: 900, dailyCallMin: 30, unlinkedCallsPerHour: 5 });
    const c = loadConfig({ ...base, TWILIO_AUTH_TOKEN: 't', TWILIO_PHONE_NUMBER: '+14155550123', PHONE_MODE: 'elevenlabs-agent', MAX_CALL_SEC: '60', DAILY_CALL_MIN: '5', PHONE_UNLINKED_CALLS_PER_HOUR: '2', TWILIO_ACCOUNT_SID: 'AC' + 'a'.repeat(32) });
    expect(c.telephony).toMatchObject({ mode: 'elevenlabs-agent', maxCallSec: 60, dailyCallMin: 5, unlinkedCallsPerHour: 2, twilio: { phoneNumber: '+14155550123' } });
  });

  it('names the variable at fault', () => {
    const bad = (env: Record<string, string>, variable: string, message: RegExp) => {
      const err = (() => {
        try {
          loadConfig({ ...base, ...env });
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variable).toBe(variable);
      expect((err as ConfigError).message).toMatch(message);
    };
    bad({ TWILIO_PHONE_NUMBER: '+14155550123' }, 'TWILIO_AUTH_TOKEN', /TWILIO_PHONE_NUMBER is set/);
    bad({ TWILIO_AUTH_TOKEN: 't', TWILIO_PHONE_NUMBER: '0415 555' }, 'TWILIO_PHONE_NUMBER', /E\.164/);
    bad({ TWILIO_AUTH_TOKEN: 't', PHONE_MODE: 'sip' }, 'PHONE_MODE', /pipeline or elevenlabs-agent/);
    bad({ TWILIO_AUTH_TOKEN: 't', MAX_CALL_SEC: '5' }, 'MAX_CALL_SEC', /from 10/);
    bad({ TWILIO_AUTH_TOKEN: 't', DAILY_CALL_MIN: 'lots' }, 'DAILY_CALL_MIN', /expected a number/);
    bad({ TWILIO_AUTH_TOKEN: 't', TWILIO_ACCOUNT_SID: 'AC12' }, 'TWILIO_ACCOUNT_SID', /32 hexadecimal/);
  });

  it('selects the pipeline mode, and refuses a mode this build does not provide', () => {
    expect(selectCallMode('pipeline').name).toBe('pipeline');
    expect(() => selectCallMode('elevenlabs-agent')).toThrow(/PHONE_MODE=elevenlabs-agent is not available/);
    const agent = { name: 'elevenlabs-agent', answer: async () => '<Response/>' };
    expect(selectCallMode('elevenlabs-agent', { 'elevenlabs-agent': agent })).toBe(agent);
  });
});
