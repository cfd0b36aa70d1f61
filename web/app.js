// VoiceTwin's web app: sign-in with a one-time code, consent, enrollment, chat with voice bubbles,
// persona, memories and deletion — all through the REST API (docs/http.md, docs/web.md).
import { ApiError, call, download, fetchAudio, signIn, storedKey, storeKey } from './api.js';
import { decodeAudio, unlockAudio, VoiceBubble, waveformOf } from './audio.js';
import { canRecord, Recorder } from './recorder.js';

const $ = (id) => document.getElementById(id);

/** What the app knows about the signed-in person. */
const state = { voice: null, pollTimer: 0, noticeTimer: 0, consentPhrase: '' };

// ---------- screens, messages ----------

const SCREENS = ['loading', 'sign-in', 'consent', 'enroll', 'chat', 'data'];

/** Shows one screen and moves the focus to its heading (so screen readers announce it). */
function show(name, { focus = true } = {}) {
  for (const s of SCREENS) $(`screen-${s}`).hidden = s !== name;
  document.body.dataset.screen = name;
  const signedIn = name !== 'sign-in' && name !== 'loading';
  $('account').hidden = !signedIn;
  $('to-chat').hidden = name === 'chat';
  $('to-data').hidden = name === 'data';
  if (focus) {
    const heading = $(`screen-${name}`).querySelector('h2');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: false });
    }
  }
  if (name === 'chat') startNoticePolling();
  else stopNoticePolling();
}

/** Shows an error in the alert banner (the API's `detail`, or the error's message). */
function showError(err) {
  let text = err instanceof Error ? err.message : String(err);
  if (err instanceof ApiError && err.status === 401 && storedKey()) {
    // The key was revoked (signed out elsewhere, or everything deleted).
    storeKey(null);
    show('sign-in');
    text = 'Your sign-in is no longer valid (you signed out, or your data was deleted). Sign in again with a new code.';
  }
  $('error-text').textContent = text;
  $('error').hidden = false;
}

function clearError() {
  $('error').hidden = true;
  $('error-text').textContent = '';
}

let noticeTimeout = 0;
/** A short confirmation in the status banner, read out by screen readers. */
function notify(text) {
  const el = $('notice');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(noticeTimeout);
  noticeTimeout = setTimeout(() => (el.hidden = true), 6000);
}

/** Runs an async UI action: clears the last error, disables `button` while it runs, shows failures. */
async function run(button, action) {
  clearError();
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (err) {
    showError(err);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

// ---------- a recorder widget ----------

/**
 * Mounts record/stop controls in `container`; `onRecorded({ blob, durationSec })` receives each
 * recording. Returns the widget (its `button` is the record toggle).
 */
function mountRecorder(container, { idleText, onRecorded }) {
  container.append($('recorder-template').content.cloneNode(true));
  const button = container.querySelector('.record');
  const text = container.querySelector('.record-text');
  const fill = container.querySelector('.level-fill');
  const elapsed = container.querySelector('.elapsed');
  const status = container.querySelector('.recorder-status');
  text.textContent = idleText;
  let started = 0;
  let clock = 0;
  const recorder = new Recorder({
    onLevel: (v) => (fill.style.transform = `scaleX(${v.toFixed(3)})`),
    onAutoStop: () => void stop(),
  });
  const setRecording = (on) => {
    button.setAttribute('aria-pressed', String(on));
    button.classList.toggle('on', on);
    text.textContent = on ? 'Stop' : idleText;
    container.dataset.recording = String(on);
  };
  const stop = async () => {
    clearInterval(clock);
    setRecording(false);
    elapsed.textContent = '0:00';
    try {
      const recording = await recorder.stop();
      status.textContent = '';
      await onRecorded(recording);
    } catch (err) {
      showError(err);
    }
  };
  button.addEventListener('click', async () => {
    unlockAudio();
    clearError();
    if (recorder.recording) return stop();
    try {
      await recorder.start();
    } catch (err) {
      showError(err);
      return;
    }
    setRecording(true);
    status.textContent = 'Recording… press Stop when you are done.';
    started = performance.now();
    elapsed.textContent = '0:00';
    clock = setInterval(() => {
      const s = Math.floor((performance.now() - started) / 1000);
      elapsed.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
    }, 250);
  });
  if (!canRecord()) {
    button.disabled = true;
    status.textContent = 'This browser cannot record audio here.';
  }
  return { button, setBusy: (busy) => (button.disabled = busy || !canRecord()) };
}

// ---------- sign-in ----------

$('sign-in-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const button = e.target.querySelector('button');
  void run(button, async () => {
    await signIn($('sign-in-code').value);
    $('sign-in-code').value = '';
    await route();
  });
});

$('sign-out').addEventListener('click', () =>
  run($('sign-out'), async () => {
    const key = storedKey();
    const id = key ? /^vt_([0-9a-f]{8})_/.exec(key)?.[1] : undefined;
    // Revoke this browser's key on the server; a key that no longer works is signed out anyway.
    if (id) await call('DELETE', `/v1/apikeys/${id}`).catch(() => {});
    signOutLocally('You are signed out.');
  }),
);

function signOutLocally(message) {
  storeKey(null);
  clearInterval(state.pollTimer);
  $('messages').replaceChildren();
  show('sign-in');
  if (message) notify(message);
}

// ---------- routing by voice state ----------

/** Shows the screen for the person's voice state: consent, enrollment, or the chat. */
async function route({ preferChat = false } = {}) {
  const voice = await call('GET', '/v1/voice');
  state.voice = voice;
  renderVoice(voice);
  if (voice.state === 'ready' || preferChat || sessionStorage.getItem('voicetwin.skipEnroll') === '1') return openChat();
  if (voice.state === 'none') return openConsent(false);
  if (voice.state === 'consent') return openConsent(true);
  return openEnroll(voice);
}

function renderVoice(voice) {
  // Plain words; the technical label (engine, pitch, rate) stays in /status details.
  const plain = voice.approximate ? 'an offline preview voice tuned to your pitch and pace' : 'a clone of your voice';
  const described = {
    none: 'You have not cloned your voice yet: your twin answers in the default voice.',
    consent: 'Waiting for your consent to clone your voice.',
    collecting: `Collecting samples: ${voice.speechSec.toFixed(1)} s of ${voice.requiredSpeechSec ?? '?'} s of speech.`,
    processing: 'Your voice is being cloned.',
    ready: `Your twin speaks with ${plain}.`,
    failed: `Cloning failed${voice.failureReason ? `: ${voice.failureReason}` : ''}.`,
  };
  $('data-voice').textContent = described[voice.state] ?? voice.state;
  $('voice-label').textContent = voice.state === 'ready' ? `Voice: ${plain}` : 'Voice: the default voice (clone yours to hear yourself)';
  $('to-enroll').hidden = voice.state === 'ready';
}

for (const id of ['skip-enroll-1', 'skip-enroll-2']) {
  $(id).addEventListener('click', () => {
    sessionStorage.setItem('voicetwin.skipEnroll', '1');
    void run(null, () => openChat());
  });
}
$('to-enroll').addEventListener('click', () => {
  sessionStorage.removeItem('voicetwin.skipEnroll');
  void run($('to-enroll'), () => route());
});

// ---------- consent ----------

let consentRecording = null;
const consentRecorder = mountRecorder($('consent-recorder'), {
  idleText: 'Record',
  onRecorded: async (recording) => {
    consentRecording = recording;
    const box = $('consent-recorder').querySelector('.recorder-status');
    box.textContent = `Recorded ${recording.durationSec.toFixed(1)} s. Record again to replace it.`;
    updateConsentButton();
  },
});

function updateConsentButton() {
  $('consent-send').disabled = !(consentRecording && $('consent-confirm').checked);
}
$('consent-confirm').addEventListener('change', updateConsentButton);

/** Shows the consent screen; `pending` when a consent is already waiting (a new phrase is asked for). */
async function openConsent(pending) {
  consentRecording = null;
  $('consent-confirm').checked = false;
  updateConsentButton();
  $('consent-intro').hidden = pending;
  $('consent-step').hidden = !pending;
  show('consent');
  if (pending && state.voice?.consentPhrase) showConsentPhrase(state.voice.consentPhrase);
  else if (pending) await askConsentPhrase();
}

function showConsentPhrase(phrase) {
  state.consentPhrase = phrase;
  $('consent-phrase').textContent = phrase;
  $('consent-intro').hidden = true;
  $('consent-step').hidden = false;
}

/** Starts enrollment (or restarts a waiting consent) and shows the phrase to read. */
async function askConsentPhrase() {
  const { replies, voice } = await call('POST', '/v1/voice/consent');
  state.voice = voice;
  const text = replies.map((r) => r.text ?? '').join('\n');
  const phrase = voice.consentPhrase ?? /"(I agree[^"]+)"/.exec(text)?.[1];
  if (voice.state !== 'consent' || !phrase) return route();
  showConsentPhrase(phrase);
  consentRecorder.button.focus();
}

$('consent-start').addEventListener('click', () => run($('consent-start'), askConsentPhrase));

$('consent-send').addEventListener('click', () =>
  run($('consent-send'), async () => {
    if (!consentRecording) throw new Error('Record yourself reading the sentence first.');
    if (!$('consent-confirm').checked) throw new Error('Tick the box to confirm your consent in writing.');
    const form = new FormData();
    form.append('confirm', 'true');
    form.append('audio', consentRecording.blob, fileName(consentRecording.blob.type));
    const { replies, voice } = await call('POST', '/v1/voice/consent', { body: form });
    state.voice = voice;
    renderVoice(voice);
    if (voice.state === 'collecting') {
      notify('Consent recorded, thank you.');
      return openEnroll(voice);
    }
    // Still waiting: the engine says why (for example, the sentence did not match).
    throw new Error(replies.map((r) => r.text).filter(Boolean).join(' ') || 'The consent was not recorded. Please try again.');
  }),
);

/** A file name with the extension of a recording's media type. */
function fileName(type) {
  if (type.includes('mp4')) return 'recording.m4a';
  if (type.includes('ogg')) return 'recording.ogg';
  return 'recording.webm';
}

// ---------- enrollment ----------

const sampleRecorder = mountRecorder($('sample-recorder'), {
  idleText: 'Record a sample',
  onRecorded: (recording) => sendSample(recording.blob, `Recording of ${recording.durationSec.toFixed(1)} s`),
});

$('sample-file').addEventListener('change', async (e) => {
  const input = e.target;
  const files = [...input.files];
  input.value = '';
  for (const file of files) {
    if (state.voice && state.voice.state !== 'collecting') break;
    await sendSample(file, file.name);
  }
});

/** Sends one enrollment sample; shows the result in the list and the progress bar. */
async function sendSample(blob, name) {
  await run(null, async () => {
    sampleRecorder.setBusy(true);
    $('sample-file').disabled = true;
    $('enroll-status').textContent = `Checking ${name}…`;
    try {
      const form = new FormData();
      form.append('audio', blob, blob.name || fileName(blob.type));
      const { replies, voice } = await call('POST', '/v1/voice/samples', { body: form });
      // A refused sample (silence, noise, too short) is answered as an error reply: say why.
      const refused = replies.filter((r) => r.kind === 'error').map((r) => r.text).filter(Boolean);
      if (refused.length) {
        renderEnroll(voice, '');
        throw new Error(refused.join(' '));
      }
      const text = replies.map((r) => r.text).filter(Boolean).join(' ');
      const item = document.createElement('li');
      item.textContent = `${name}: ${text.replace(/\s*Collected .*$/, '') || 'accepted'}`;
      $('sample-list').append(item);
      renderEnroll(voice, text);
    } catch (err) {
      $('enroll-status').textContent = '';
      throw err;
    } finally {
      sampleRecorder.setBusy(false);
      $('sample-file').disabled = false;
    }
  });
}

function renderEnroll(voice, text) {
  state.voice = voice;
  renderVoice(voice);
  const required = voice.requiredSpeechSec ?? 20;
  $('enroll-progress').max = required;
  $('enroll-progress').value = Math.min(required, voice.speechSec);
  $('enroll-progress').setAttribute('aria-valuetext', `${voice.speechSec.toFixed(1)} of ${required} seconds`);
  $('enroll-amount').textContent = `${voice.speechSec.toFixed(1)} s of ${required} s`;
  $('enroll-collect').hidden = voice.state !== 'collecting';
  $('enroll-failed').hidden = voice.state !== 'failed';
  const section = $('screen-enroll');
  section.dataset.state = voice.state;
  if (voice.state === 'collecting') $('enroll-status').textContent = text || `About ${Math.ceil(Math.max(0, required - voice.speechSec))} s of speech to go.`;
  if (voice.state === 'processing') {
    $('enroll-status').textContent = 'Enough speech collected. Cloning your voice now… this page updates by itself.';
    pollVoice();
  }
  if (voice.state === 'failed') $('enroll-status').textContent = `Cloning your voice failed${voice.failureReason ? ` (${voice.failureReason})` : ''}. Your samples are kept: try again.`;
}

async function openEnroll(voice) {
  show('enroll');
  renderEnroll(voice);
}

/** While the voice is being cloned: asks for its state every 1.5 s, opens the chat when ready. */
function pollVoice() {
  clearInterval(state.pollTimer);
  state.pollTimer = setInterval(async () => {
    try {
      const voice = await call('GET', '/v1/voice');
      if (voice.state === 'processing') return;
      clearInterval(state.pollTimer);
      state.voice = voice;
      renderVoice(voice);
      if (voice.state === 'ready') {
        notify(`Your twin voice is ready: ${voice.voiceLabel ?? 'your cloned voice'}.`);
        await openChat();
      } else renderEnroll(voice);
    } catch (err) {
      clearInterval(state.pollTimer);
      showError(err);
    }
  }, 1500);
}

$('enroll-restart').addEventListener('click', () =>
  run($('enroll-restart'), async () => {
    const { voice } = await call('POST', '/v1/voice/consent');
    state.voice = voice;
    if (voice.state === 'consent') return openConsent(true);
    return openEnroll(voice);
  }),
);

// ---------- chat ----------

let chatLoaded = false;

async function openChat() {
  show('chat');
  if (!chatLoaded) {
    chatLoaded = true;
    await Promise.all([loadPersona(), loadHistory()]);
  }
  await takeNotices();
}

async function loadPersona() {
  const { persona, available, descriptions } = await call('GET', '/v1/persona');
  const select = $('persona');
  select.replaceChildren(
    ...available.map((name) => {
      const option = document.createElement('option');
      option.value = name;
      option.textContent = name[0].toUpperCase() + name.slice(1);
      return option;
    }),
  );
  personaDescriptions = descriptions ?? {};
  select.value = persona;
  select.dataset.current = persona;
  describePersona();
}

let personaDescriptions = {};
function describePersona() {
  $('persona-hint').textContent = personaDescriptions[$('persona').value] ?? '';
}

$('persona').addEventListener('change', (e) =>
  run(null, async () => {
    const select = e.target;
    try {
      const { persona } = await call('PUT', '/v1/persona', { json: { persona: select.value } });
      select.dataset.current = persona;
      describePersona();
      notify(`Your twin now talks in the ${persona} style.`);
    } catch (err) {
      select.value = select.dataset.current ?? select.value;
      throw err;
    }
  }),
);

async function loadHistory() {
  const { turns } = await call('GET', '/v1/conversations?limit=30');
  if (!turns.length) {
    addMessage('twin', { kind: 'info', text: 'Talk to your twin: press Record, or type below. It answers with a voice note, and shows what it says.' }, { quiet: true });
    return;
  }
  const earlier = document.createElement('li');
  earlier.className = 'divider';
  earlier.textContent = 'Earlier';
  $('messages').append(earlier);
  for (const t of turns) addMessage(t.role === 'user' ? 'user' : 'twin', { kind: 'answer', text: t.text }, { quiet: true });
}

/**
 * Adds a message to the conversation. A reply with audio becomes a voice bubble whose caption is
 * the reply's text; buttons of the reply become buttons that send their action.
 * @returns {{ item: HTMLLIElement, bubble?: VoiceBubble }}
 */
function addMessage(from, reply, { quiet = false, blob = null, durationSec = 0 } = {}) {
  const item = document.createElement('li');
  item.className = `msg ${from} kind-${reply.kind ?? 'answer'}`;
  const who = document.createElement('span');
  who.className = 'visually-hidden';
  who.textContent = from === 'user' ? 'You: ' : 'Twin: ';
  item.append(who);
  let bubble;
  if (reply.audio || blob) {
    bubble = new VoiceBubble({
      label: from === 'user' ? 'your voice note' : "your twin's reply",
      durationSec: reply.audio?.durationSec ?? durationSec,
      waveform: reply.audio?.waveform ?? [],
      load: async () => decodeAudio(blob ? await blob.arrayBuffer() : await fetchAudio(reply.audio.url)),
    });
    item.append(bubble.el);
    if (!reply.audio?.waveform?.length) {
      // No waveform from the server (a notice, or our own recording): draw it from the audio.
      bubble
        .load()
        .then((buffer) => bubble.setWaveform(waveformOf(buffer)))
        .catch((err) => from !== 'user' && showError(err));
    }
  }
  if (reply.text) {
    const text = document.createElement('p');
    text.className = bubble ? 'caption' : 'text';
    text.textContent = reply.text;
    item.append(text);
  }
  if (reply.voiceLabel && !reply.text?.includes(reply.voiceLabel)) {
    const label = document.createElement('p');
    label.className = 'hint';
    label.textContent = reply.voiceLabel;
    item.append(label);
  }
  for (const row of reply.buttons ?? []) {
    const actions = document.createElement('div');
    actions.className = 'actions';
    for (const b of row) {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = b.label;
      button.addEventListener('click', () => sendAction(b.data, button));
      actions.append(button);
    }
    item.append(actions);
  }
  if (quiet) item.dataset.history = 'true';
  $('messages').append(item);
  item.scrollIntoView({ block: 'end', behavior: 'smooth' });
  return { item, bubble };
}

/** Shows the replies of a turn; the first voice reply plays at once. */
async function showReplies(replies) {
  let first = null;
  for (const reply of replies) {
    const { bubble } = addMessage('twin', reply);
    if (bubble && !first) first = bubble;
  }
  if (first) await first.play().catch(showError);
}

const turnRecorder = mountRecorder($('turn-recorder'), {
  idleText: 'Record',
  onRecorded: async (recording) => {
    const { item } = addMessage('user', { kind: 'answer' }, { blob: recording.blob, durationSec: recording.durationSec });
    await sendTurn({ body: recording.blob }, item);
  },
});

$('text-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('text-input');
  const text = input.value.trim();
  if (!text) return;
  input.value = '';
  const { item } = addMessage('user', { kind: 'answer', text });
  void sendTurn({ json: { text } }, item);
});

async function sendAction(action, button) {
  await sendTurn({ json: { action } }, null, button);
  if (action === 'delete:confirm') signOutLocally('Everything was deleted.');
}

/** Sends a turn (audio, text or an action) and shows its replies. */
async function sendTurn(options, item, button) {
  item?.classList.add('pending');
  turnRecorder.setBusy(true);
  const typing = document.createElement('li');
  typing.className = 'msg twin typing';
  typing.textContent = 'Your twin is answering…';
  typing.setAttribute('aria-hidden', 'true');
  $('messages').append(typing);
  await run(button, async () => {
    try {
      const { replies } = await call('POST', '/v1/turns', options);
      typing.remove();
      await showReplies(replies);
    } catch (err) {
      item?.classList.add('failed');
      throw err;
    } finally {
      typing.remove();
      item?.classList.remove('pending');
      turnRecorder.setBusy(false);
    }
  });
}

/** Replies the twin sent outside a request (the greeting once the voice is cloned). */
async function takeNotices() {
  const { notices } = await call('GET', '/v1/notices');
  const voiced = notices.filter((n) => n.audio || n.kind === 'answer');
  if (voiced.length) await showReplies(voiced);
}

function startNoticePolling() {
  clearInterval(state.noticeTimer);
  state.noticeTimer = setInterval(() => void takeNotices().catch(() => {}), 20_000);
}
function stopNoticePolling() {
  clearInterval(state.noticeTimer);
}

// ---------- your data: memories, deletion ----------

$('to-data').addEventListener('click', () => run($('to-data'), openData));
$('to-chat').addEventListener('click', () =>
  run($('to-chat'), () => {
    if (state.voice?.state !== 'ready') sessionStorage.setItem('voicetwin.skipEnroll', '1');
    return openChat();
  }),
);
$('data-back').addEventListener('click', () => run($('data-back'), () => route({ preferChat: true })));

async function openData() {
  show('data');
  const [{ memories }, voice] = await Promise.all([call('GET', '/v1/memories'), call('GET', '/v1/voice')]);
  renderVoice(voice);
  renderMemories(memories);
}

function renderMemories(memories) {
  const list = $('memory-list');
  list.replaceChildren(
    ...memories.map((m) => {
      const item = document.createElement('li');
      const text = document.createElement('span');
      text.textContent = m.text;
      const forget = document.createElement('button');
      forget.type = 'button';
      forget.className = 'link';
      forget.textContent = 'Forget';
      forget.setAttribute('aria-label', `Forget: ${m.text}`);
      forget.addEventListener('click', () =>
        run(forget, async () => {
          await call('DELETE', `/v1/memories/${encodeURIComponent(m.id)}`);
          item.remove();
          $('memory-empty').hidden = list.children.length > 0;
          notify('Forgotten.');
          $('memory-input').focus();
        }),
      );
      item.append(text, forget);
      return item;
    }),
  );
  $('memory-empty').hidden = memories.length > 0;
}

$('memory-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('memory-input');
  const text = input.value.trim();
  if (!text) return;
  void run(e.target.querySelector('button'), async () => {
    await call('POST', '/v1/memories', { json: { text } });
    input.value = '';
    const { memories } = await call('GET', '/v1/memories');
    renderMemories(memories);
    notify('Your twin will remember that.');
  });
});

$('export-download').addEventListener('click', () => {
  clearError();
  void run($('export-download'), async () => {
    const { blob, fileName } = await download('/v1/export');
    const url = URL.createObjectURL(blob);
    const link = document.createElement('a');
    link.href = url;
    link.download = fileName;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    notify(`Your data was downloaded as ${fileName} (${(blob.size / 1e6).toFixed(1)} MB).`);
  });
});

$('delete-open').addEventListener('click', () => {
  clearError();
  $('delete-dialog').showModal();
});

$('delete-dialog').addEventListener('close', () => {
  if ($('delete-dialog').returnValue !== 'confirm') {
    $('delete-open').focus();
    return;
  }
  void run($('delete-open'), async () => {
    const { replies } = await call('POST', '/v1/turns', { json: { action: 'delete:confirm' } });
    chatLoaded = false;
    const summary = replies.map((r) => r.text).filter(Boolean).join(' ').replace(/\s*Send \/start.*$/s, '');
    signOutLocally(`${summary || 'Everything was deleted.'} To begin again, sign in with a new code.`);
  });
});

// ---------- start ----------

$('error-close').addEventListener('click', clearError);

async function start() {
  const params = new URLSearchParams(location.search);
  const code = params.get('code');
  if (code) {
    // The code is used once: take it out of the address bar and the history right away.
    params.delete('code');
    history.replaceState(null, '', `${location.pathname}${params.size ? `?${params}` : ''}${location.hash}`);
    try {
      await signIn(code);
    } catch (err) {
      show('sign-in');
      showError(err);
      return;
    }
  }
  if (!storedKey()) return show('sign-in');
  try {
    await route();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) show('sign-in');
    showError(err);
  }
}

void start();
