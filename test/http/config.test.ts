/** The HTTP section of the configuration: safe defaults and the deprecated webhook port alias. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('HTTP configuration', () => {
  it('binds 127.0.0.1:8080 by default', () => {
    const c = loadConfig({});
    expect(c.http).toMatchObject({ enabled: true, host: '127.0.0.1', port: 8080 });
  });

  it('takes TELEGRAM_WEBHOOK_PORT as the port when HTTP_PORT is not set', () => {
    expect(loadConfig({ TELEGRAM_WEBHOOK_PORT: '8443' }).http.port).toBe(8443);
    expect(loadConfig({ TELEGRAM_WEBHOOK_PORT: '8443', HTTP_PORT: '9000' }).http.port).toBe(9000);
  });

  it('names the variable of a bad value', () => {
    expect(() => loadConfig({ HTTP_PORT: '70000' })).toThrow(ConfigError);
    expect(() => loadConfig({ HTTP_HOST: 'a b' })).toThrow(/HTTP_HOST/);
  });
});
