import { describe, expect, it } from 'vitest';
import { ProviderError } from '../../../src/core/errors.js';
import { redactSecret, redactedGenericError } from '../../../src/providers/resilient/errors.js';

const KEY = 'sk_live_0123456789abcdef';

describe('redactSecret', () => {
  it('replaces every occurrence of the secret', () => {
    expect(redactSecret(`key ${KEY} rejected; retry with ${KEY}`, KEY)).toBe('key [redacted] rejected; retry with [redacted]');
  });

  it('leaves the text alone when there is no secret or it is shorter than 4 characters', () => {
    expect(redactSecret('a bad request', undefined)).toBe('a bad request');
    expect(redactSecret('a bad request', '')).toBe('a bad request');
    expect(redactSecret('a bad request', 'bad')).toBe('a bad request');
  });
});

describe('redactedGenericError', () => {
  it('classifies a network failure as retryable, without the key and with one provider prefix', () => {
    const cause = Object.assign(new TypeError(`fetch failed for https://api.example.test/?key=${KEY}`), { cause: { code: 'ECONNREFUSED' } });
    const err = redactedGenericError('gemini', cause, KEY);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.provider).toBe('gemini');
    expect(err.retryable).toBe(true);
    expect(err.message).toBe('gemini: network error: ECONNREFUSED');
    expect(err.options.cause).toBe(cause);
  });

  it('keeps an unknown failure non-retryable and strips the key from its message', () => {
    const err = redactedGenericError('elevenlabs', new Error(`unexpected reply for ${KEY}`), KEY);
    expect(err.retryable).toBe(false);
    expect(err.message).toBe('elevenlabs: unexpected reply for [redacted]');
    expect(err.message).not.toContain(KEY);
  });

  it('treats a timeout as retryable', () => {
    const timeout = Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' });
    const err = redactedGenericError('replicate', timeout, KEY);
    expect(err.retryable).toBe(true);
    expect(err.message).toBe('replicate: request timed out');
  });
});
