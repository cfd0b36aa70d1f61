/**
 * The browser web app, end to end: the real server (`serve` with no platform: offline stack,
 * temporary data dir, a free port) and Debian's Chromium driven by playwright-core with a fake
 * microphone that plays real speech (`--use-file-for-fake-audio-capture`; an in-page mock
 * microphone takes over if that device turns out silent).
 *
 * Sign-in (a wrong code by keyboard, then the printed link) → consent (recorded, confirmed) →
 * samples (one recorded, real speech clips uploaded) → ready → a recorded voice turn whose reply
 * is decoded and played through the AudioContext → persona → memories → delete everything.
 * A screenshot of each step goes to `test-artifacts/webapp/`.
 *
 * Without Chromium at /usr/bin/chromium (or CHROMIUM_PATH) the browser suite is skipped with a
 * message; the static-file checks and `/web` run anyway. Without the speech folder, speech made
 * with espeak-ng stands in for the clips.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { strFromU8, unzipSync } from 'fflate';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { loadConfig } from '../../src/config.js';
import { serve, signInMessage, type SignIn } from '../../src/main.js';
import { createTestApp } from '../helpers/app.js';
import { webAppUrlOf } from '../../src/app.js';
import { WEB_APP_CSP, WEB_APP_FILES } from '../../src/http/web-app.js';
import { ConsoleChannel } from '../../src/bots/console.js';
import { makeSilence, makeSpeechWav, SAMPLE_SENTENCES, toWav } from '../helpers/audio.js';
import { readSpeech, repoRoot, speechAvailable, speechDir } from '../helpers/speech.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(repoRoot, 'test-artifacts', 'webapp');
/** Phone-sized viewport (iPhone SE / mini width). */
const VIEWPORT = { width: 375, height: 740 };

type Running = Awaited<ReturnType<typeof serve>>;
let running: Running;
let signIn: SignIn;
let base: string;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-webapp-'));
  const config = loadConfig({
    VOICETWIN_DATA_DIR: dataDir,
    VOICETWIN_DATA_KEY: '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff',
    LOG_LEVEL: 'silent',
    HTTP_PORT: '0',
    INSIGHT_EVERY: '0',
    MEMORY_EVERY: '0',
  });
  running = await serve(config);
  signIn = running.signIn!;
  base = running.http!.url;
}, 60_000);

afterAll(async () => {
  await running?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('web app: files and sign-in links', () => {
  it('serve prints a sign-in link to the web app for the local owner', () => {
    expect(signIn.link).toBe(`${base}/?code=${signIn.code}`);
    expect(signIn.code).toMatch(/^[A-Z2-9]{8}$/);
  });

  it('serves the fixed file list with content types, CSP, no-cache and ETag revalidation', async () => {
    for (const [urlPath, { type }] of Object.entries(WEB_APP_FILES)) {
      const res = await fetch(`${base}${urlPath}`);
      expect(res.status, urlPath).toBe(200);
      expect(res.headers.get('content-type'), urlPath).toBe(type);
      expect(res.headers.get('content-security-policy')).toBe(WEB_APP_CSP);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      const etag = res.headers.get('etag')!;
      expect(etag).toMatch(/^"[\w-]{27}"$/);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(100);
      const again = await fetch(`${base}${urlPath}`, { headers: { 'if-none-match': etag } });
      expect(again.status, urlPath).toBe(304);
    }
    const page = await (await fetch(`${base}/`)).text();
    expect(page).toContain('<script type="module" src="/web/app.js">');
    expect(page).not.toMatch(/<script>|\son\w+="/); // no inline script or handler: the CSP would block it
  });

  it('serves nothing outside the list (no path reaches the file system)', async () => {
    for (const p of ['/web/../package.json', '/web/%2e%2e/package.json', '/web/', '/web/secret.js', '/index.html', '/web/app.js/', '/..%2fpackage.json']) {
      const res = await fetch(`${base}${p}`);
      expect(res.status, p).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
  });

  it('/web in a chat sends a one-time link that signs the browser in as that person', async () => {
    const chat = new ConsoleChannel({ outDir: await mkdtemp(path.join(tmpdir(), 'vt-web-')), write: () => undefined });
    await running.app.engine.handle({ id: 'console:web:1', channel: 'console', chatId: 'ada', userId: 'ada', receivedAtMs: Date.now(), command: { name: 'web', args: '' } }, chat);
    const reply = chat.records.at(-1)!.reply;
    expect(reply.ephemeral).toBe(true);
    const link = new RegExp(`${base.replace(/[.]/g, '\\.')}/\\?code=([A-Z2-9]{8})`).exec(reply.text!);
    expect(link, reply.text).not.toBeNull();
    const res = await fetch(`${base}/v1/auth/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: link![1] }) });
    expect(res.status).toBe(201);
    const { apiKey } = (await res.json()) as { apiKey: string };
    expect((await running.app.engine.apiKeys.verify(apiKey))?.userKey).toBe('console:ada');
    // Single use.
    const again = await fetch(`${base}/v1/auth/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: link![1] }) });
    expect(again.status).toBe(401);
    expect(running.app.engine.commands.map((c) => c.name)).toContain('web');
  });

  it('/web without a web app served sends the code alone', async () => {
    const app = await createTestApp({ env: { HTTP_ENABLED: 'false' } });
    try {
      const chat = new ConsoleChannel({ outDir: await mkdtemp(path.join(tmpdir(), 'vt-web-')), write: () => undefined });
      await app.engine.handle({ id: 'console:web:2', channel: 'console', chatId: 'bo', userId: 'bo', receivedAtMs: Date.now(), command: { name: 'web', args: '' } }, chat);
      const text = chat.records.at(-1)!.reply.text!;
      expect(text).not.toMatch(/https?:/);
      const code = /code for the VoiceTwin web app \(it works once, for 15 minutes\): ([A-Z2-9]{8})\n/.exec(text)?.[1];
      expect(code, text).toBeDefined();
      expect((await app.engine.apiKeys.redeemSignInCode(code!))?.record.userKey).toBe('console:bo');
    } finally {
      await app.close();
    }
  });

  it('the printed sign-in message leads with the link', () => {
    const lines = signInMessage(signIn).split('\n');
    expect(lines[2]!.trim()).toBe(signIn.link);
    expect(lines.join('\n')).toContain(`enter the code ${signIn.code}`);
  });

  it('links point at HTTP_PUBLIC_URL when set, else at the configured address', () => {
    const env = { VOICETWIN_DATA_DIR: dataDir };
    expect(webAppUrlOf(loadConfig({ ...env, HTTP_PUBLIC_URL: 'https://twin.example.com' }))).toEqual({ webAppUrl: 'https://twin.example.com' });
    expect(webAppUrlOf(loadConfig({ ...env, HTTP_HOST: '0.0.0.0', HTTP_PORT: '9000' }))).toEqual({ webAppUrl: 'http://127.0.0.1:9000' });
    expect(webAppUrlOf(loadConfig({ ...env, HTTP_PORT: '0' }))).toEqual({});
    expect(webAppUrlOf(loadConfig({ ...env, HTTP_ENABLED: 'false' }))).toEqual({});
  });
});

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`Skipping the web app browser test: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH).`);

/** Speech for the fake microphone and the uploaded samples: the real clips, or espeak-ng speech. */
function speech(): { mic: Buffer; samples: { name: string; bytes: Buffer }[]; source: string } {
  if (speechAvailable()) {
    return {
      mic: toWav(readSpeech('whisper.cpp/jfk.wav'), 48000),
      samples: ['LJ001-0001.wav', 'LJ001-0005.wav', 'LJ001-0009.wav', 'LJ001-0006.wav'].map((name) => ({ name, bytes: readSpeech(`coqui-tts-ljspeech/${name}`) })),
      source: speechDir(),
    };
  }
  console.warn(`Web app test: no speech clips at ${speechDir()} (set VOICETWIN_SPEECH_DIR); using espeak-ng speech instead.`);
  return {
    mic: toWav(makeSpeechWav(`${SAMPLE_SENTENCES} ${SAMPLE_SENTENCES}`), 48000),
    samples: [1, 2, 3, 4].map((n) => ({ name: `espeak-${n}.wav`, bytes: makeSpeechWav(`${SAMPLE_SENTENCES} Sample number ${n}.`, { pitch: 40 + n * 5 }) })),
    source: 'espeak-ng',
  };
}

/**
 * The in-page mock microphone: getUserMedia answers with a stream that loops `wav`, played by an
 * AudioContext into a MediaStreamAudioDestinationNode. Used only when Chromium's file-backed fake
 * device records silence.
 */
function mockMicrophoneScript(wav: Buffer): string {
  return `(() => {
    const b64 = ${JSON.stringify(wav.toString('base64'))};
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    navigator.mediaDevices.getUserMedia = async () => {
      const ctx = new AudioContext();
      const buffer = await ctx.decodeAudioData(bytes.buffer.slice(0));
      const source = ctx.createBufferSource();
      source.buffer = buffer;
      source.loop = true;
      const dest = ctx.createMediaStreamDestination();
      source.connect(dest);
      source.start();
      window.__mockMicrophone = true;
      return dest.stream;
    };
  })();`;
}

/** Level (RMS, 0..1) the page's microphone delivers over about a second (run in the page). */
const MICROPHONE_LEVEL = `(async () => {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  ctx.createMediaStreamSource(stream).connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  let peak = 0;
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 60));
    analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const v of data) sum += v * v;
    peak = Math.max(peak, Math.sqrt(sum / data.length));
  }
  stream.getTracks().forEach((t) => t.stop());
  await ctx.close();
  return peak;
})()`;

/** Elements wider than the viewport (run in the page). */
const OVERFLOW = (width: number) => `(() => {
  const wide = [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > ${width} + 0.5 && el.offsetParent !== null);
  return { scrollWidth: document.documentElement.scrollWidth, wide: wide.slice(0, 5).map((el) => el.tagName.toLowerCase() + '#' + el.id + '.' + el.className) };
})()`;

(haveChromium ? describe : describe.skip)(`web app in Chromium${haveChromium ? '' : ` [skipped: no Chromium at ${CHROMIUM}]`}`, () => {
  let context: BrowserContext;
  let page: Page;
  let profileDir: string;
  const pageErrors: string[] = [];
  let step = 0;
  const clips = haveChromium ? speech() : { mic: Buffer.alloc(0), samples: [], source: '' };

  async function launch(mockMic: Buffer | undefined, micFile: string): Promise<void> {
    profileDir = await mkdtemp(path.join(tmpdir(), 'voicetwin-chromium-'));
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: VIEWPORT,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
        `--use-file-for-fake-audio-capture=${micFile}`,
      ],
    });
    await context.grantPermissions(['microphone'], { origin: base });
    if (mockMic) await context.addInitScript(mockMicrophoneScript(mockMic));
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/status of 40[14]/.test(msg.text())) pageErrors.push(msg.text());
    });
  }

  /** Saves a screenshot of the page as the next numbered step. */
  async function shot(name: string, options: { fullPage?: boolean } = {}): Promise<void> {
    step++;
    await page.screenshot({ path: path.join(ARTIFACTS, `${String(step).padStart(2, '0')}-${name}.png`), fullPage: options.fullPage ?? true });
  }

  /** The page fits a phone screen: nothing wider than the viewport. */
  async function expectNoHorizontalScroll(): Promise<void> {
    const overflow = await page.evaluate<{ scrollWidth: number; wide: string[] }>(OVERFLOW(VIEWPORT.width));
    expect(overflow.scrollWidth, `wider than the screen: ${overflow.wide.join(', ')}`).toBeLessThanOrEqual(VIEWPORT.width);
  }

  const storedKey = () => page.evaluate<string | null>("localStorage.getItem('voicetwin.apiKey')");

  async function record(widget: string, seconds: number): Promise<void> {
    const button = page.locator(`#${widget} .record`);
    await button.click();
    await expect.poll(() => button.getAttribute('aria-pressed')).toBe('true');
    await page.waitForTimeout(seconds * 1000);
    await button.click();
    await expect.poll(() => button.getAttribute('aria-pressed')).toBe('false');
  }

  beforeAll(async () => {
    await rm(ARTIFACTS, { recursive: true, force: true });
    await mkdir(ARTIFACTS, { recursive: true });
    const micFile = path.join(dataDir, 'fake-mic.wav');
    await writeFile(micFile, clips.mic);
    await launch(undefined, micFile);
    await page.goto(`${base}/`);
    const level = await page.evaluate<number>(MICROPHONE_LEVEL);
    if (level < 0.01) {
      console.warn(`Chromium's file-backed fake microphone is silent (RMS ${level.toFixed(4)}); using the in-page mock microphone.`);
      await context.close();
      await launch(clips.mic, micFile);
    }
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    if (profileDir) await rm(profileDir, { recursive: true, force: true });
  });

  it('signs in, takes consent and samples, clones, answers a recorded voice turn out loud, and deletes everything', { timeout: 300_000 }, async () => {
    // 1. Sign-in screen; a wrong code, entered with the keyboard only, shows the API's message.
    await page.goto(`${base}/`);
    await expect.poll(() => page.locator('#screen-sign-in').isVisible()).toBe(true);
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string | undefined>('document.activeElement?.id')).toBe('sign-in-code');
    await page.keyboard.type('ZZZZ2222');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#error').isVisible()).toBe(true);
    expect(await page.locator('#error-text').textContent()).toBe('That sign-in code is unknown, expired or already used.');
    await expectNoHorizontalScroll();
    await shot('sign-in-wrong-code');

    // 2. The link printed by serve signs in; the code leaves the address bar.
    await page.goto(signIn.link);
    await expect.poll(() => page.locator('#screen-consent').isVisible(), { timeout: 15_000 }).toBe(true);
    expect(page.url()).toBe(`${base}/`);
    expect(await storedKey()).toMatch(/^vt_[0-9a-f]{8}_/);
    expect(await page.locator('#error').isVisible()).toBe(false);
    await shot('consent-intro');

    // 3. Consent: the sentence, a recording of it, the typed confirmation.
    await page.locator('#consent-start').click();
    await expect.poll(() => page.locator('#consent-phrase').textContent()).toMatch(/^I agree that VoiceTwin may clone my voice\. My code word is \w+\.$/);
    expect(await page.locator('#consent-send').isDisabled()).toBe(true);
    // Focus moves to the Record button; Space starts and stops the recording (keyboard only).
    const consentRecord = page.locator('#consent-recorder .record');
    await expect.poll(() => consentRecord.evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    await page.keyboard.press('Space');
    await expect.poll(() => consentRecord.getAttribute('aria-pressed')).toBe('true');
    await page.waitForTimeout(4000);
    await page.keyboard.press('Space');
    await expect.poll(() => consentRecord.getAttribute('aria-pressed')).toBe('false');
    await expect.poll(() => page.locator('#consent-recorder .recorder-status').textContent()).toMatch(/^Recorded \d/);
    await page.locator('#consent-confirm').check();
    await shot('consent-recorded');
    await page.locator('#consent-send').click();
    await expect.poll(() => page.locator('#screen-enroll').isVisible(), { timeout: 60_000 }).toBe(true);
    expect((await running.app.store.profiles.get('web:owner'))?.state).toBe('collecting');
    expect((await running.app.store.profiles.get('web:owner'))?.consent.method).toBe('typed-and-spoken');

    // 4. A silent upload is refused with the engine's own words; nothing is counted.
    await page.locator('#sample-file').setInputFiles({ name: 'silence.wav', mimeType: 'audio/wav', buffer: makeSilence(4) });
    await expect.poll(() => page.locator('#error-text').textContent(), { timeout: 30_000 }).toBe("I couldn't hear anything in that recording. Check that your microphone is on and not muted, then record again.");
    expect(await page.locator('#sample-list li').count()).toBe(0);
    await shot('enroll-silent-sample-refused');
    // Samples: one recorded with the microphone, then real speech clips uploaded, until cloning starts.
    await record('sample-recorder', 9);
    await expect.poll(() => page.locator('#sample-list li').count(), { timeout: 60_000 }).toBe(1);
    const afterFirst = Number(await page.locator('#enroll-progress').getAttribute('value'));
    expect(afterFirst).toBeGreaterThan(2);
    expect(await page.locator('#enroll-amount').textContent()).toMatch(/^\d+\.\d s of 20 s$/);
    await expectNoHorizontalScroll();
    await shot('enroll-first-sample');
    await page.locator('#sample-file').setInputFiles(clips.samples.map((s) => ({ name: s.name, mimeType: 'audio/wav', buffer: s.bytes })));
    // 5. Ready: the app polls the voice state and opens the chat, where the greeting plays.
    await expect.poll(() => page.locator('#screen-chat').isVisible(), { timeout: 120_000 }).toBe(true);
    expect((await running.app.store.profiles.get('web:owner'))?.state).toBe('ready');
    expect(await page.locator('#voice-label').textContent()).toMatch(/^Voice: /);
    const greeting = page.locator('.msg.twin', { hasText: 'This is your twin speaking' });
    await expect.poll(() => greeting.count(), { timeout: 30_000 }).toBe(1);
    await expect.poll(() => greeting.locator('.voice').getAttribute('data-decoded-sec'), { timeout: 15_000 }).toMatch(/^\d/);
    await greeting.scrollIntoViewIfNeeded();
    await shot('chat-ready', { fullPage: false });

    // 6. A recorded voice turn: the reply arrives with a waveform, its caption, and plays through Web Audio.
    await record('turn-recorder', 5);
    const mine = page.locator('.msg.user .voice').last();
    await expect.poll(() => mine.getAttribute('data-decoded-sec'), { timeout: 15_000 }).toMatch(/^\d/);
    expect(Number(await mine.getAttribute('data-decoded-sec'))).toBeGreaterThan(3);
    const reply = page.locator('.msg.twin:has(.voice)').last();
    await expect.poll(async () => (await reply.locator('.caption').textContent()) ?? '', { timeout: 90_000 }).toMatch(/You said:/);
    const voice = reply.locator('.voice');
    await expect.poll(() => voice.getAttribute('data-state'), { timeout: 30_000 }).toBe('playing');
    const decodedSec = Number(await voice.getAttribute('data-decoded-sec'));
    expect(decodedSec).toBeGreaterThan(0.5);
    expect(await voice.locator('.duration').textContent()).toMatch(/^\d:\d\d$/);
    // The bars come from the API's waveform: 48 of them, not all the same height.
    const heights = await voice.locator('.wave span').evaluateAll((bars) => bars.map((b) => (b as unknown as { style: { height: string } }).style.height));
    expect(heights).toHaveLength(48);
    expect(new Set(heights).size).toBeGreaterThan(5);
    await reply.evaluate((el) => el.scrollIntoView({ block: 'center' }));
    await shot('voice-turn-playing', { fullPage: false });
    // Played to the end on the AudioContext's clock.
    await expect.poll(() => voice.getAttribute('data-state'), { timeout: (decodedSec + 10) * 1000 }).toBe('played');
    expect(Number(await voice.getAttribute('data-played-sec'))).toBeGreaterThanOrEqual(decodedSec - 0.1);
    expect(await page.locator('#messages').getAttribute('aria-live')).toBe('polite');
    expect(await voice.locator('.play').getAttribute('aria-label')).toMatch(/^Play your twin's reply, \d:\d\d$/);
    await expectNoHorizontalScroll();

    // 7. Persona switch.
    await page.evaluate('window.scrollTo(0, 0)');
    await page.locator('#persona').selectOption('coaching');
    await expect.poll(() => page.locator('#notice').textContent()).toContain('coaching');
    expect((await running.app.store.users.get('web:owner'))?.persona).toBe('coaching');
    expect(await page.locator('#persona-hint').textContent()).toBe('Goal-focused; asks what the next step is.');
    await shot('persona-coaching', { fullPage: false });

    // 8. Memories: add one, see it listed, forget it.
    await page.locator('#to-data').click();
    await expect.poll(() => page.locator('#screen-data').isVisible()).toBe(true);
    await page.locator('#memory-input').fill('I play the cello');
    await page.locator('#memory-form button').click();
    const memory = page.locator('#memory-list li', { hasText: 'I play the cello' });
    await expect.poll(() => memory.count()).toBe(1);
    expect((await running.app.store.memories.list('web:owner')).map((m) => m.text)).toContain('I play the cello');
    await expectNoHorizontalScroll();
    await shot('memories');
    await page.getByRole('button', { name: 'Forget: I play the cello' }).click();
    await expect.poll(() => memory.count()).toBe(0);
    expect(await running.app.store.memories.list('web:owner')).toEqual([]);

    // 9. Download my data: the browser saves the export zip (GET /v1/export), with the conversation and the samples in it.
    const [saved] = await Promise.all([page.waitForEvent('download'), page.locator('#export-download').click()]);
    expect(saved.suggestedFilename()).toMatch(/^voicetwin-export-\d{4}-\d{2}-\d{2}\.zip$/);
    const archive = unzipSync(new Uint8Array(await readFile((await saved.path())!)));
    const exported = JSON.parse(strFromU8(archive['voicetwin-export.json']!)) as { history: { role: string }[]; samples: { file?: string }[] };
    expect(exported.history.some((t) => t.role === 'twin')).toBe(true);
    expect(exported.samples.length).toBeGreaterThan(0);
    for (const s of exported.samples) expect(archive[s.file!]?.subarray(0, 4)).toEqual(new Uint8Array(Buffer.from('RIFF')));
    await expect.poll(() => page.locator('#notice').textContent()).toMatch(/^Your data was downloaded as voicetwin-export-.*\.zip \(\d+\.\d MB\)\.$/);

    // 10. Delete everything, after confirming in a dialog; the browser is signed out and its key revoked.
    const key = (await storedKey())!;
    await page.locator('#delete-open').click();
    await expect.poll(() => page.locator('#delete-dialog').isVisible()).toBe(true);
    await shot('delete-confirm', { fullPage: false });
    await page.locator('#delete-confirm').click();
    await expect.poll(() => page.locator('#screen-sign-in').isVisible(), { timeout: 30_000 }).toBe(true);
    await expect.poll(() => page.locator('#notice').textContent()).toMatch(/^Deleted: \d+ voice samples, your cloned voice.* To begin again, sign in with a new code\.$/);
    await shot('deleted-signed-out');
    expect(await storedKey()).toBeNull();
    expect(await running.app.store.profiles.get('web:owner')).toBeUndefined();
    expect(await running.app.store.samples.list('web:owner')).toEqual([]);
    expect((await fetch(`${base}/v1/voice`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(401);

    expect(pageErrors).toEqual([]);
  });
});
