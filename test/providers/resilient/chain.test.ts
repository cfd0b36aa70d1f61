import { describe, expect, it } from 'vitest';
import { ProviderError, UserInputError } from '../../../src/core/errors.js';
import type { ClonedVoice, SpeechSynthesizer, SynthesizedAudio } from '../../../src/core/providers.js';
import {
  ProviderChain,
  ResilientSpeechSynthesizer,
  backoffDelayMs,
  parseRetryAfterSec,
  type ChainEvent,
  type ChainMember,
} from '../../../src/providers/resilient.js';
import { rejection } from '../../helpers/rejection.js';

/** A provider whose behaviour per call is scripted: a value, an error, or a hang. */
class Scripted implements ChainMember {
  calls = 0;
  probes = 0;
  probeHealthy = true;
  constructor(
    readonly name: string,
    private readonly script: (call: number, signal: AbortSignal) => Promise<string>,
    withProbe = false,
  ) {
    if (!withProbe) this.probe = undefined;
  }
  run(signal: AbortSignal): Promise<string> {
    this.calls++;
    return this.script(this.calls, signal);
  }
  probe?: (signal: AbortSignal) => Promise<void> = async () => {
    this.probes++;
    if (!this.probeHealthy) throw new ProviderError(this.name, 'still down', { retryable: true, status: 503 });
  };
}

const ok = (value: string) => async () => value;
const fail = (status: number, retryAfterSec?: number) => async () => {
  throw new ProviderError('p', `HTTP ${status}`, { retryable: status === 429 || status >= 500, status, retryAfterSec });
};
const fast = { retry: { baseDelayMs: 10, maxDelayMs: 40, timeoutMs: 2_000 } };

describe('retry policy', () => {
  it('parses Retry-After seconds and HTTP-dates, and backs off exponentially with jitter', () => {
    expect(parseRetryAfterSec('3')).toBe(3);
    expect(parseRetryAfterSec('Wed, 21 Oct 2015 07:28:30 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(30);
    expect(parseRetryAfterSec('soon')).toBeUndefined();
    const policy = { baseDelayMs: 100, maxDelayMs: 1_000 };
    expect([0, 1, 2, 3, 4].map((r) => backoffDelayMs(r, policy, () => 0))).toEqual([50, 100, 200, 400, 500]);
    expect([0, 1, 2, 3, 4].map((r) => backoffDelayMs(r, policy, () => 0.999999))).toEqual([100, 200, 400, 800, 1000].map((x) => expect.closeTo(x, 2)));
  });
});

describe('ProviderChain', () => {
  it('retries 429 after the server’s Retry-After and 5xx with backoff, then answers', async () => {
    const events: ChainEvent[] = [];
    const a = new Scripted('a', (n) => (n === 1 ? fail(429, 0.2)() : n === 2 ? fail(503)() : ok('from a')()));
    const chain = new ProviderChain('tts', [a], { ...fast, onEvent: (e) => events.push(e), random: () => 0.5 });
    const started = Date.now();
    const { result, attempts, provider } = await chain.run((p, s) => p.run(s));
    expect(result).toBe('from a');
    expect(provider.name).toBe('a');
    expect(attempts).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(195);
    const retries = events.filter((e) => e.type === 'attempt-failed');
    expect(retries.map((e) => e.type === 'attempt-failed' && e.nextDelayMs)).toEqual([200, 15]);
  });

  it('does not retry 401/403/400, moves to the next provider, and opens the breaker at once on auth failures', async () => {
    const a = new Scripted('a', fail(401));
    const b = new Scripted('b', fail(400));
    const c = new Scripted('c', ok('from c'));
    const chain = new ProviderChain('tts', [a, b, c], { ...fast, breaker: { failureThreshold: 3 } });
    const out = await chain.run((p, s) => p.run(s));
    expect(out.result).toBe('from c');
    expect(out.failures.map((f) => f.options.status)).toEqual([401, 400]);
    expect([a.calls, b.calls, c.calls]).toEqual([1, 1, 1]);
    expect(chain.status().map((s) => s.state)).toEqual(['open', 'closed', 'closed']);
    // a is out of rotation now; b is not (a 400 says nothing about its health).
    await chain.run((p, s) => p.run(s));
    expect([a.calls, b.calls, c.calls]).toEqual([1, 2, 2]);
  });

  it('takes a failing provider out of rotation and probes it back in the background', async () => {
    const events: ChainEvent[] = [];
    let down = true;
    const a = new Scripted('a', async (n) => (down ? fail(503)() : `a${n}`), true);
    a.probeHealthy = false;
    const b = new Scripted('b', ok('from b'));
    const chain = new ProviderChain('tts', [a, b], { retry: { maxRetries: 0 }, breaker: { coolDownMs: 60, maxCoolDownMs: 1_000 }, onEvent: (e) => events.push(e) });
    expect((await chain.run((p, s) => p.run(s))).result).toBe('from b');
    expect((await chain.run((p, s) => p.run(s))).result).toBe('from b');
    expect(a.calls).toBe(1); // skipped while open

    await new Promise((r) => setTimeout(r, 100));
    expect(a.probes).toBe(1); // probe failed: cool-down doubled
    expect(chain.status()[0]).toMatchObject({ state: 'open', coolDownMs: 120 });
    down = false;
    a.probeHealthy = true;
    await new Promise((r) => setTimeout(r, 200));
    expect(a.probes).toBe(2);
    expect(chain.status()[0]?.state).toBe('closed');
    expect((await chain.run((p, s) => p.run(s))).result).toBe('a2');
    expect(events.map((e) => e.type)).toContain('breaker-closed');
    chain.close();
  });

  it('without a probe, admits one trial call after the cool-down', async () => {
    let down = true;
    const a = new Scripted('a', async () => (down ? fail(500)() : 'back'));
    const b = new Scripted('b', ok('b'));
    const chain = new ProviderChain('stt', [a, b], { retry: { maxRetries: 0 }, breaker: { coolDownMs: 50 } });
    await chain.run((p, s) => p.run(s));
    await new Promise((r) => setTimeout(r, 70));
    down = false;
    expect((await chain.run((p, s) => p.run(s))).result).toBe('back');
    expect(chain.status()[0]?.state).toBe('closed');
  });

  it('keeps a Retry-After longer than allowed as the minimum time out of rotation', async () => {
    const a = new Scripted('a', fail(429, 30));
    const b = new Scripted('b', ok('b'));
    const now = Date.now();
    const chain = new ProviderChain('chat', [a, b], { retry: { maxRetryAfterSec: 5 } });
    expect((await chain.run((p, s) => p.run(s))).result).toBe('b');
    expect(a.calls).toBe(1);
    expect(chain.status()[0]?.openUntilMs).toBeGreaterThanOrEqual(now + 30_000);
  });

  it('gives the soonest provider a trial when all are out of rotation, and reports all failures', async () => {
    const a = new Scripted('a', fail(503));
    const b = new Scripted('b', fail(502));
    const chain = new ProviderChain('tts', [a, b], { retry: { maxRetries: 1, baseDelayMs: 5, maxDelayMs: 5 }, breaker: { coolDownMs: 10_000 } });
    const err = await rejection(chain.run((p, s) => p.run(s)));
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).message).toMatch(/all providers failed.*HTTP 503.*HTTP 502/);
    expect((err as ProviderError).retryable).toBe(true);
    expect([a.calls, b.calls]).toEqual([2, 2]);
    await rejection(chain.run((p, s) => p.run(s)));
    expect([a.calls, b.calls]).toEqual([4, 2]); // only the first (soonest) got a trial
  });

  it('rethrows user errors without fallback or breaker change, and stops on caller abort', async () => {
    const a = new Scripted('a', async () => {
      throw new UserInputError('TEXT_TOO_LONG', 'too long');
    });
    const b = new Scripted('b', ok('b'));
    const chain = new ProviderChain('tts', [a, b]);
    expect(await rejection(chain.run((p, s) => p.run(s)))).toBeInstanceOf(UserInputError);
    expect(b.calls).toBe(0);
    expect(chain.status()[0]?.state).toBe('closed');

    const hang = new Scripted('hang', (_n, signal) => new Promise((_r, reject) => signal.addEventListener('abort', () => reject(signal.reason))));
    const chain2 = new ProviderChain('tts', [hang, b]);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('user left')), 30);
    expect(((await rejection(chain2.run((p, s) => p.run(s), { signal: controller.signal }))) as Error).message).toBe('user left');
    expect(b.calls).toBe(0);
  });

  it('times out a hanging attempt, retries it, then falls back', async () => {
    const hang = new Scripted('hang', () => new Promise<string>(() => undefined));
    const b = new Scripted('b', ok('b'));
    const chain = new ProviderChain('tts', [hang, b], { retry: { timeoutMs: 40, maxRetries: 1, baseDelayMs: 5, maxDelayMs: 5 } });
    const out = await chain.run((p, s) => p.run(s));
    expect(out.result).toBe('b');
    expect(hang.calls).toBe(2);
    expect(out.failures[0]?.message).toContain('timed out after 40 ms');
  });
});

describe('ResilientSpeechSynthesizer', () => {
  class FakeTts implements SpeechSynthesizer {
    requests: { voice?: ClonedVoice }[] = [];
    constructor(
      readonly name: string,
      private readonly bytes: Buffer,
    ) {}
    async synthesize(request: { text: string; voice?: ClonedVoice }): Promise<SynthesizedAudio> {
      this.requests.push({ voice: request.voice });
      return { bytes: this.bytes, characters: request.text.length };
    }
  }

  it('counts zero-byte audio as a failure and hands each provider its own voice of the user', async () => {
    const empty = new FakeTts('elevenlabs', Buffer.alloc(0));
    const good = new FakeTts('replicate', Buffer.from('RIFF....WAVE'));
    const tts = new ResilientSpeechSynthesizer([empty, good], { retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 1 } });
    const eleven: ClonedVoice = { provider: 'elevenlabs', voiceId: 'v1', params: {}, approximate: false, label: '' };
    const chatterbox: ClonedVoice = { provider: 'replicate', voiceId: 'c1', params: { referenceBlobKey: 'k' }, approximate: false, label: '' };
    const out = await tts.synthesize({ text: 'Hello', voice: eleven, alternateVoices: [chatterbox] });
    expect(empty.requests).toHaveLength(2);
    expect(empty.requests[0]?.voice).toBe(eleven);
    expect(good.requests[0]?.voice).toBe(chatterbox);
    expect(out).toMatchObject({ provider: 'replicate', voiceMatched: true, characters: 5 });

    const noAlternate = await tts.synthesize({ text: 'Hello', voice: eleven });
    expect(noAlternate).toMatchObject({ provider: 'replicate', voiceMatched: false });
    expect(good.requests[1]?.voice).toBeUndefined();
  });
});
