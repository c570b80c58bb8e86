// A plain page using the built package, driven by test/browser.test.mjs.
// window.__BK_TEST__ (set by the test) holds the issuer and the modes.
import { createClient } from "/dist/index.js";

const t = window.__BK_TEST__ ?? {};
// What a router listening to popstate sees (the client's default after a
// login callback replaces the URL and dispatches popstate).
window.popstates = [];
addEventListener("popstate", () => window.popstates.push(location.pathname + location.search));
const started = performance.now();
const bk = createClient({
  issuer: t.issuer,
  clientId: "test-spa",
  redirectUri: location.origin + "/testapp/callback",
  postLogoutRedirectUri: location.origin + "/testapp/",
  storage: t.storage,
  worker: t.worker,
  ...(t.workerUrl ? { workerUrl: t.workerUrl } : {}),
  ...(t.wasmUrl ? { wasmUrl: t.wasmUrl } : {}),
  ...(t.startTimeoutSeconds ? { startTimeoutSeconds: t.startTimeoutSeconds } : {}),
  ...(t.dpop === false ? { dpop: false } : {}),
});
window.bk = bk;
// What the page knew before the worker could have answered (its messages
// arrive as tasks after this script).
window.initialState = bk.getState();
window.states = [bk.getState()];
bk.subscribe(() => window.states.push(bk.getState()));
// Where the page was each time it was told "authenticated": never on the
// callback URL (the client puts the app's URL back first).
window.authenticatedAt = [];
bk.subscribe(() => bk.getState().isAuthenticated && window.authenticatedAt.push(location.pathname + location.search));
if (t.measureToken) {
  // The budget's "tokens available": an access token in hand (or the
  // worker's answer that there is none).
  bk.getAccessToken().then(
    () => (window.tokenMs = performance.now() - started),
    () => (window.tokenMs = performance.now() - started),
  );
}
const $ = (id) => document.getElementById(id);
const events = [];
for (const ev of ["tokenRefreshed", "sessionExpired", "loggedOut", "loggedIn", "error"]) {
  bk.on(ev, () => {
    events.push(ev);
    $("events").textContent = events.join(" ");
  });
}
const render = () => {
  const s = bk.getState();
  $("status").textContent = s.status;
  $("email").textContent = s.user?.email ?? "";
  $("error").textContent = s.error?.code ?? "";
};
bk.subscribe(render);
render();
bk.ready.then(() => {
  window.readyMs = performance.now() - started;
});
bk.confirmed.then(() => {
  window.confirmedMs = performance.now() - started;
});
$("login").onclick = () => bk.login().catch(() => undefined);
$("logout").onclick = () => bk.logout().catch(() => undefined);
