/**
 * A fake WhatsApp Web index page, for starting the real whatsapp-web.js `Client` in the system
 * Chromium without the internet.
 *
 * whatsapp-web.js answers the request for https://web.whatsapp.com/ from its local web-version
 * cache when `<webVersionCache.path>/<webVersion>.html` exists (`Client.initWebVersionCache`,
 * `src/webCache/LocalWebCache.js`), so placing this page there makes the real client load it.
 * It offers what the client's `inject()` (whatsapp-web.js 1.34 `src/Client.js`) and
 * `ExposeAuthStore` (`src/util/Injected/AuthStore/AuthStore.js`) read before emitting `qr`:
 * `window.Debug.VERSION`, and through `window.require` the modules `WAWebSocketModel` (Socket
 * state `UNPAIRED`, events `change:state`/`change:hasSynced`), `WAWebConnModel` (Conn `ref`),
 * `WAWebCmd`, `WAWebOfflineHandler`, `WAWebAltDeviceLinkingApi`, `WABase64`,
 * `WAWebCompanionRegClientUtils`, `WAWebAdvSignatureApi`, `WAWebUserPrefsInfoStore`,
 * `WAWebSignalStoreApi`, `WAWebUserPrefsMultiDevice`, `WAWebMiscBrowserUtils`.
 * The QR payload is built by the library itself: `ref,noiseKey,identityKey,advSecret,platform`.
 *
 * Test controls on the page: `window.__fakeWhatsApp.clientListening()` tells whether the client
 * has subscribed to `change:hasSynced` (the end of `inject()`), `sync()` emits `change:hasSynced` (what
 * WhatsApp Web does once a scan succeeded: the library then emits `authenticated`), and
 * `window.__fakeWhatsApp.rotateQr()` changes the Conn ref (a new `qr` event).
 */

/** The page's HTML for WhatsApp Web version `version` (the client's `webVersion`). */
export function fakeWhatsAppWebIndexHtml(version: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>WhatsApp (fake)</title>
<script>
(function () {
  function emitter(target) {
    var listeners = {};
    target.on = function (event, fn) { (listeners[event] = listeners[event] || []).push(fn); };
    target.off = function (event, fn) { listeners[event] = (listeners[event] || []).filter(function (f) { return f !== fn; }); };
    target.listenerCount = function (event) { return (listeners[event] || []).length; };
    target.emit = function (event) { var args = Array.prototype.slice.call(arguments, 1); (listeners[event] || []).slice().forEach(function (fn) { fn.apply(null, args); }); };
    return target;
  }
  var Socket = emitter({ state: 'UNPAIRED', hasSynced: false });
  var Conn = emitter({ ref: '2@' + btoa('fake-ref-1'), serialize: function () { return { pushname: 'VoiceTwin', platform: 'web' }; } });
  var refCount = 1;
  var Cmd = emitter({ refreshQR: function () { rotateQr(); } });
  function rotateQr() { refCount += 1; Conn.ref = '2@' + btoa('fake-ref-' + refCount); Conn.emit('change:ref', Conn, Conn.ref); }
  var modules = {
    WAWebSocketModel: { Socket: Socket },
    WAWebConnModel: { Conn: Conn },
    WAWebCmd: { Cmd: Cmd },
    WAWebOfflineHandler: { OfflineMessageHandler: { getOfflineDeliveryProgress: function () { return 100; } } },
    WAWebAltDeviceLinkingApi: {},
    WABase64: { encodeB64: function (bytes) { return btoa(String.fromCharCode.apply(null, Array.from(bytes))); } },
    WAWebCompanionRegClientUtils: { DEVICE_PLATFORM: 'CHROME' },
    WAWebAdvSignatureApi: {},
    WAWebUserPrefsInfoStore: { waNoiseInfo: { get: async function () { return { staticKeyPair: { pubKey: new Uint8Array(32).fill(7) } }; } } },
    WAWebSignalStoreApi: { waSignalStore: { getRegistrationInfo: async function () { return { identityKeyPair: { pubKey: new Uint8Array(32).fill(9) } }; } } },
    WAWebUserPrefsMultiDevice: { getADVSecretKey: function () { return btoa('adv-secret-for-tests'); } },
    WAWebMiscBrowserUtils: { info: function () { return { name: 'Chrome', os: 'Linux' }; } }
  };
  window.require = function (name) {
    if (!(name in modules)) throw new Error('fake WhatsApp Web has no module ' + name);
    return modules[name];
  };
  window.Debug = { VERSION: ${JSON.stringify(version)} };
  window.__fakeWhatsApp = {
    sync: function () { Socket.state = 'CONNECTED'; Socket.emit('change:state', Socket, 'CONNECTED'); Socket.hasSynced = true; Socket.emit('change:hasSynced'); },
    rotateQr: rotateQr,
    clientListening: function () { return Socket.listenerCount('change:hasSynced') > 0; }
  };
})();
</script></head><body><p>fake WhatsApp Web</p></body></html>
`;
}
