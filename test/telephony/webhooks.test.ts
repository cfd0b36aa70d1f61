/**
 * The Twilio webhooks of the phone line on the real HTTP server, signed with an independent
 * implementation of Twilio's algorithm (test/fakes/twilio/signature.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callSid, createPhoneHarness, LINE_NUMBER, type PhoneHarness } from './harness.js';
import { twilioSignature, voiceParams } from '../fakes/twilio/signature.js';
import { TWILIO_PATHS } from '../../src/telephony/twilio-routes.js';
import { personForCaller } from '../../src/telephony/links.js';
import { CallLog } from '../../src/telephony/call-log.js';
import type { OutboundReply, ReplyTarget } from '../../src/core/types.js';
import { strFromU8, unzipSync } from 'fflate';

const ADA = '+14155550101';

describe('Twilio webhooks behind a proxy (HTTP_PUBLIC_URL)', () => {
  let h: PhoneHarness;
  beforeAll(async () => {
    h = await createPhoneHarness({ publicUrl: 'https://twin.example.org' });
  });
  afterAll(async () => h?.close());

  it('answers a validly signed call from an unlinked number with an explanation and a DTMF/speech <Gather>', async () => {
    const res = await h.call(callSid(1), '+14155550999');
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?><Response><Gather /);
    expect(res.body).toContain('input="dtmf speech"');
    expect(res.body).toContain('numDigits="6"');
    expect(res.body).toContain(`action="${TWILIO_PATHS.link}?attempt=1"`);
    expect(res.body).toMatch(/not linked to a VoiceTwin yet.*slash phone.*six-digit code/);
    expect(res.body).toMatch(/<Hangup\/><\/Response>$/);
  });

  it('refuses a tampered body, a signature for another URL, the local URL and no signature with 403, logging no body', async () => {
    const params = voiceParams(callSid(2), '+14155550998', LINE_NUMBER);
    const url = `https://twin.example.org${TWILIO_PATHS.voice}`;
    const good = twilioSignature('test-auth-token-0123456789abcdef', url, params);
    const tampered = await h.post(TWILIO_PATHS.voice, { ...params, From: '+14155550997' }, { signature: good });
    const wrongUrl = await h.post(TWILIO_PATHS.voice, params, { signedUrl: `https://evil.example.org${TWILIO_PATHS.voice}` });
    const localUrl = await h.post(TWILIO_PATHS.voice, params, { signedUrl: `${h.localUrl}${TWILIO_PATHS.voice}` });
    const wrongPath = await h.post(TWILIO_PATHS.status, params, { signedUrl: url });
    const none = await fetch(`${h.localUrl}${TWILIO_PATHS.voice}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() });
    for (const r of [tampered, wrongUrl, localUrl, wrongPath]) {
      expect(r.status).toBe(403);
      expect(JSON.parse(r.body)).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    }
    expect(none.status).toBe(403);
    const refused = h.logs.filter((l) => l.includes('bad signature'));
    expect(refused.length).toBe(5);
    expect(refused.some((l) => l.includes('"signature":"missing"'))).toBe(true);
    for (const line of h.logs) {
      expect(line).not.toContain('+14155550998');
      expect(line).not.toContain('+14155550997');
      expect(line).not.toContain('test-auth-token');
    }
    // The same request correctly signed is answered.
    expect((await h.post(TWILIO_PATHS.voice, params)).status).toBe(200);
  });

  it('links a caller by the DTMF code from /phone, then connects their calls to the pipeline stream', async () => {
    const [phoneText] = await h.chat('ada', '/phone');
    expect(phoneText).toContain(`Call ${LINE_NUMBER}`);
    expect(phoneText).toMatch(/within 10 minutes/);
    const code = /(\d{3}) (\d{3})/.exec(phoneText!)!.slice(1).join('');

    const sid = callSid(3);
    const first = await h.call(sid, ADA);
    expect(first.body).toContain('<Gather');
    const wrong = await h.post(`${TWILIO_PATHS.link}?attempt=1`, voiceParams(sid, ADA, LINE_NUMBER, { Digits: code === '000000' ? '111111' : '000000' }));
    expect(wrong.body).toMatch(/wrong or has expired/);
    expect(wrong.body).toContain(`action="${TWILIO_PATHS.link}?attempt=2"`);
    const linked = await h.post(`${TWILIO_PATHS.link}?attempt=2`, voiceParams(sid, ADA, LINE_NUMBER, { Digits: code }));
    expect(linked.status).toBe(200);
    expect(linked.body).toContain('your number is linked');
    expect(linked.body).toContain(`<Redirect method="POST">${TWILIO_PATHS.voice}</Redirect>`);
    expect(await personForCaller(h.app.store.kv, ADA)).toBe('console:ada');

    // The redirect posts the voice webhook again: now the twin answers over Media Streams.
    const again = await h.call(sid, ADA);
    expect(again.body).toBe(
      `<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://twin.example.org/telephony/twilio/media"><Parameter name="callSid" value="${sid}"/><Parameter name="person" value="console:ada"/></Stream></Connect><Hangup/></Response>`,
    );
    // The code worked once only.
    const reuse = await h.post(`${TWILIO_PATHS.link}?attempt=1`, voiceParams(callSid(4), '+14155550102', LINE_NUMBER, { Digits: code }));
    expect(reuse.body).toMatch(/wrong or has expired/);
    expect(await personForCaller(h.app.store.kv, '+14155550102')).toBeUndefined();
    // Already linked numbers are listed by /phone (masked).
    expect((await h.chat('ada', '/phone'))[0]).toContain('Already linked: +…0101');
  });

  it('links by a spoken code (SpeechResult) too', async () => {
    const [text] = await h.chat('bob', '/phone');
    const code = /(\d{3}) (\d{3})/.exec(text!)!.slice(1).join('');
    const words = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
    const spoken = `My code is ${[...code].map((d) => words[Number(d)]).join(' ')}.`;
    const res = await h.post(`${TWILIO_PATHS.link}?attempt=1`, voiceParams(callSid(5), '+14155550103', LINE_NUMBER, { SpeechResult: spoken, Confidence: '0.9' }));
    expect(res.body).toContain('your number is linked');
    expect(await personForCaller(h.app.store.kv, '+14155550103')).toBe('console:bob');
  });

  it('ends the call after three wrong codes, and rate-limits an unlinked number after 5 calls an hour', async () => {
    const from = '+14155550104';
    const third = await h.post(`${TWILIO_PATHS.link}?attempt=3`, voiceParams(callSid(6), from, LINE_NUMBER, { Digits: '999999' }));
    expect(third.body).toMatch(/did not work either.*<Hangup\/>/);
    expect(third.body).not.toContain('<Gather');
    const from2 = '+14155550105';
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push((await h.call(callSid(100 + i), from2)).body);
    expect(answers.slice(0, 5).every((b) => b.includes('<Gather'))).toBe(true);
    expect(answers[5]).toMatch(/Too many calls from this number.*<Hangup\/>/);
    expect(h.logs.some((l) => l.includes('unlinked caller rate-limited') && l.includes('+…0105') && !l.includes(from2))).toBe(true);
  });

  it('tells a withheld number it cannot be linked', async () => {
    const res = await h.call(callSid(7), 'anonymous');
    expect(res.body).toMatch(/withheld.*<Hangup\/>/);
  });

  it('records status callbacks in the call log, counts minutes once, and shows them with /calls', async () => {
    const sid = callSid(3);
    for (const [status, extra] of [['initiated', {}], ['ringing', {}], ['in-progress', {}], ['completed', { CallDuration: '42' }]] as const) {
      const res = await h.post(TWILIO_PATHS.status, voiceParams(sid, ADA, LINE_NUMBER, { CallStatus: status, ...extra }));
      expect(res.status).toBe(204);
      expect(res.body).toBe('');
    }
    // A retried final callback does not count the minutes twice.
    await h.post(TWILIO_PATHS.status, voiceParams(sid, ADA, LINE_NUMBER, { CallStatus: 'completed', CallDuration: '42' }));
    const log = new CallLog(h.app.store.kv);
    const [call] = await log.list('console:ada');
    expect(call!.statuses.map((s) => s.status)).toEqual(['initiated', 'ringing', 'in-progress', 'completed', 'completed']);
    expect(call!.durationSec).toBe(42);
    expect(call!.mode).toBe('pipeline');
    expect(await log.secondsToday('console:ada')).toBe(42);
    const [calls] = await h.chat('ada', '/calls');
    expect(calls).toMatch(/1\. \d{4}-\d\d-\d\d \d\d:\d\d UTC, 42 s, pipeline, voice: default voice, status: completed, 0 turns/);
    expect((await h.chat('ada', '/calls 9'))[0]).toMatch(/Say which call: \/calls 1 is the latest/);
    // Unknown calls are ignored (still 204).
    expect((await h.post(TWILIO_PATHS.status, voiceParams(callSid(999), ADA, LINE_NUMBER, { CallStatus: 'completed' }))).status).toBe(204);
  });

  it('refuses a call once the daily minutes are used up', async () => {
    await h.app.store.kv.set(`call-seconds:${new Date().toISOString().slice(0, 10)}:console:ada`, 30 * 60);
    const res = await h.call(callSid(8), ADA);
    expect(res.body).toMatch(/used today's 30 minutes.*<Hangup\/>/);
    expect(res.body).not.toContain('<Connect>');
  });

  it('/export includes the call log', async () => {
    const replies: OutboundReply[] = [];
    const target: ReplyTarget = { reply: async (r) => void replies.push(r), activity: async () => undefined, status: async () => async () => undefined };
    await h.app.engine.handle({ id: 'export-1', channel: 'console', chatId: 'ada', userId: 'ada', receivedAtMs: Date.now(), text: '/export', command: { name: 'export', args: '' } }, target);
    const zip = replies.find((r) => r.document)!.document!;
    const document = JSON.parse(strFromU8(unzipSync(new Uint8Array(zip.bytes))['voicetwin-export.json']!)) as { sections?: { calls?: { callSid: string; durationSec?: number }[] } };
    expect(document.sections?.calls?.map((c) => c.durationSec)).toContain(42);
  });

  it('/delete removes the linked numbers, the pending code and the call log', async () => {
    await h.chat('ada', '/phone');
    expect((await new CallLog(h.app.store.kv).list('console:ada')).length).toBe(1);
    await h.chat('ada', '', 'delete:confirm');
    expect(await personForCaller(h.app.store.kv, ADA)).toBeUndefined();
    expect(await new CallLog(h.app.store.kv).list('console:ada')).toEqual([]);
    expect(await new CallLog(h.app.store.kv).ownerOf(callSid(3))).toBeUndefined();
    expect(await h.app.store.kv.get('phone:code-of:console:ada')).toBeUndefined();
    // Bob is untouched.
    expect(await personForCaller(h.app.store.kv, '+14155550103')).toBe('console:bob');
  });
});

describe('Twilio webhooks without a public URL', () => {
  let h: PhoneHarness;
  beforeAll(async () => {
    h = await createPhoneHarness();
  });
  afterAll(async () => h?.close());

  it('checks the signature over the URL from the Host header', async () => {
    const res = await h.call(callSid(1), '+14155550201');
    expect(res.status).toBe(200);
    expect(res.body).toContain('<Gather');
    expect(res.ms).toBeLessThan(1000);
    const other = await h.post(TWILIO_PATHS.voice, voiceParams(callSid(1), '+14155550201'), { signedUrl: `https://twin.example.org${TWILIO_PATHS.voice}` });
    expect(other.status).toBe(403);
  });

  it('/phone without TWILIO_PHONE_NUMBER says the line has no number', async () => {
    const bare = await createPhoneHarness({ env: { TWILIO_PHONE_NUMBER: '' } });
    try {
      expect((await bare.chat('carl', '/phone'))[0]).toMatch(/no number yet.*TWILIO_PHONE_NUMBER/);
      expect((await bare.chat('carl', '/phone now'))[0]).toMatch(/\/phone unlink/);
    } finally {
      await bare.close();
    }
  });
});
