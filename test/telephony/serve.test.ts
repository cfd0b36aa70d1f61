/** The phone line as `voicetwin serve` mounts it: config → app → HTTP server with the Twilio routes. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { buildApp, type App } from '../../src/app.js';
import { startHttp } from '../../src/main.js';
import type { HttpServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/core/log.js';
import { postTwilio, voiceParams } from '../fakes/twilio/signature.js';

describe('startHttp with TWILIO_AUTH_TOKEN', () => {
  let app: App;
  let http: HttpServer;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-phone-serve-'));
    const config = loadConfig({
      VOICETWIN_DATA_DIR: dataDir,
      VOICETWIN_DATA_KEY: 'ef'.repeat(32),
      LOG_LEVEL: 'silent',
      HTTP_PORT: '0',
      HTTP_PUBLIC_URL: 'https://twin.example.org',
      TWILIO_AUTH_TOKEN: 'serve-token',
      TWILIO_PHONE_NUMBER: '+15005550006',
    });
    app = await buildApp(config, { logger: silentLogger, queue: false });
    http = await startHttp(app);
  });
  afterAll(async () => {
    await http?.close();
    await app?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('mounts the voice webhook (signed for HTTP_PUBLIC_URL) and adds /phone and /calls to the commands', async () => {
    const res = await postTwilio(`${http.url}/telephony/twilio/voice`, voiceParams('CA' + '5'.repeat(32), '+14155550777'), { authToken: 'serve-token', signedUrl: 'https://twin.example.org/telephony/twilio/voice' });
    expect(res.status).toBe(200);
    expect(res.body).toContain('<Gather');
    const bad = await postTwilio(`${http.url}/telephony/twilio/voice`, voiceParams('CA' + '5'.repeat(32), '+14155550777'), { authToken: 'other-token', signedUrl: 'https://twin.example.org/telephony/twilio/voice' });
    expect(bad.status).toBe(403);
    const names = app.engine.commands.map((c) => c.name);
    expect(names).toContain('phone');
    expect(names).toContain('calls');
    expect(names.indexOf('calls')).toBeLessThan(names.indexOf('delete'));
    // The other routes are still there.
    expect((await fetch(`${http.url}/health`)).status).toBe(200);
  });
});
