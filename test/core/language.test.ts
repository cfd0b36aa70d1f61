import { describe, expect, it } from 'vitest';
import {
  detectTextLanguage,
  detectTranscriptLanguage,
  languageInstruction,
  parseLanguagePreference,
  replyLanguage,
  ttsLanguageCode,
} from '../../src/core/language.js';
import { readManifest, speechAvailable } from '../helpers/speech.js';

/** Hinglish as people type it in chats. */
const HINGLISH = ['kya haal hai yaar', 'Main theek hoon, bas thoda tired hoon aaj', 'mujhe kal office jaana hai lekin mood nahi hai', 'acha, phir milte hain', 'Bahut busy week tha, kuch plan nahi kiya'];
/** English that shares words or shapes with Hinglish. */
const ENGLISH = [
  'I want to plan my week',
  'The main thing is to take it to the park.',
  'Hi there, how are you today?',
  'Log in to the main page and check the par value.',
  'My sister Ana lives in Porto and I visit her in the summer.',
  'Thanks for telling me about your day.',
];

describe('detectTextLanguage', () => {
  it('reads Devanagari as Hindi, with or without English words mixed in', () => {
    expect(detectTextLanguage('नमस्ते, आप कैसे हैं?')).toBe('hi');
    expect(detectTextLanguage('मेरा office आज बंद है')).toBe('hi');
  });

  it('reads the Hindi transcripts of the shared speech clips as Hindi', () => {
    if (!speechAvailable()) return void console.warn('speech clips absent (VOICETWIN_SPEECH_DIR): checked only the built-in Hindi sentences');
    const hindi = readManifest().filter((c) => c.path.startsWith('indicwav2vec-hindi/') && c.transcript);
    expect(hindi.length).toBeGreaterThan(0);
    for (const clip of hindi) expect(detectTextLanguage(clip.transcript), clip.transcript).toBe('hi');
  });

  it('reads romanised Hindi mixed with English as Hinglish, and plain English as English', () => {
    for (const text of HINGLISH) expect(detectTextLanguage(text), text).toBe('hinglish');
    for (const text of ENGLISH) expect(detectTextLanguage(text), text).toBe('en');
  });

  it('has no language for text without letters', () => {
    expect(detectTextLanguage('👍 123 !!')).toBeUndefined();
    expect(detectTextLanguage('')).toBeUndefined();
  });
});

describe('detectTranscriptLanguage', () => {
  it('trusts a recogniser that reports Hindi, telling Devanagari from Latin letters', () => {
    expect(detectTranscriptLanguage('धोबी ने तेनालीराम को अपने घर का पता बता दिया', 'hi')).toBe('hi');
    expect(detectTranscriptLanguage('dhobi ne pata bata diya', 'hi-IN')).toBe('hinglish');
    expect(detectTranscriptLanguage('I am fine, thank you', 'en')).toBe('en');
    expect(detectTranscriptLanguage('kya haal hai yaar, sab theek', 'en')).toBe('hinglish');
    expect(detectTranscriptLanguage('नमस्ते दोस्त')).toBe('hi');
  });
});

describe('replyLanguage and friends', () => {
  it('follows a fixed setting first, then the message, then the last message, then English', () => {
    expect(replyLanguage('en', 'hi', 'hi')).toBe('en');
    expect(replyLanguage('hinglish', 'en')).toBe('hinglish');
    expect(replyLanguage('auto', 'hi', 'en')).toBe('hi');
    expect(replyLanguage(undefined, undefined, 'hinglish')).toBe('hinglish');
    expect(replyLanguage(undefined, undefined)).toBe('en');
  });

  it('parses /language arguments and names the TTS language', () => {
    expect(parseLanguagePreference(' Hindi ')).toBe('hi');
    expect(parseLanguagePreference('हिंदी')).toBe('hi');
    expect(parseLanguagePreference('EN')).toBe('en');
    expect(parseLanguagePreference('hinglish')).toBe('hinglish');
    expect(parseLanguagePreference('auto')).toBe('auto');
    expect(parseLanguagePreference('klingon')).toBeUndefined();
    expect(ttsLanguageCode('hinglish')).toBe('hi');
    expect(ttsLanguageCode('en')).toBe('en');
  });

  it('asks a chat model for Devanagari Hindi or Latin-letter Hinglish, keeping the persona', () => {
    expect(languageInstruction('hi')).toMatch(/Hindi, written in Devanagari, keeping your persona/);
    expect(languageInstruction('hinglish')).toMatch(/Hinglish.*Latin letters.*Do not switch to Devanagari/s);
    expect(languageInstruction('en')).toBe('');
    expect(languageInstruction(undefined)).toBe('');
  });
});
