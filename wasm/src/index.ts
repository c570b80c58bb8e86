// @bridgekeeper/client: OpenID Connect login for browser apps against a
// Bridgekeeper broker. The protocol core is Go compiled to WebAssembly and
// runs in a worker (a SharedWorker where the browser has one), so every tab
// shares one session and one refresh at a time, and the refresh token never
// reaches the page.
import {
  workerName,
  type CoreView,
  type InitParams,
  type InitResult,
  type Request,
  type WorkerMessage,
} from "./protocol";
import { readSnapshot, snapshotArea, snapshotOf, writeSnapshot, type Snapshot } from "./snapshot";
import type {
  AuthError,
  AuthEvent,
  AuthState,
  BridgekeeperConfig,
  LoginOptions,
  LogoutOptions,
} from "./types";

export type * from "./types";

/** An error from the client; code says what kind. */
export class BridgekeeperError extends Error {
  code: string;
  description?: string;
  constructor(e: AuthError) {
    super(e.message);
    this.name = "BridgekeeperError";
    this.code = e.code;
    this.description = e.description;
  }
}

export interface BridgekeeperClient {
  /**
   * Settles once the login state is known: at once when the snapshot of the
   * previous page load is usable (see AuthState.confirmed), else when the
   * worker has started and any login callback in the URL was handled.
   */
  readonly ready: Promise<AuthState>;
  /**
   * Settles once the worker has started, read the session and handled any
   * login callback: the state is then the worker's own (confirmed), and
   * tokens are available without waiting for start-up.
   */
  readonly confirmed: Promise<AuthState>;
  /** The current state (stable object until it changes). */
  getState(): AuthState;
  /** Calls listener on every state change; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void;
  /** Listens to tokenRefreshed, sessionExpired, loggedOut, loggedIn, error. */
  on(event: AuthEvent, handler: (error?: AuthError) => void): () => void;
  /** Sends the browser to the broker's login. */
  login(options?: LoginOptions): Promise<void>;
  /** Logs out every tab, revokes the refresh token and visits the broker's logout. */
  logout(options?: LogoutOptions): Promise<void>;
  /**
   * An access token valid for at least minValiditySeconds (default: the
   * refresh margin). Never returns an expired token: it refreshes first.
   */
  getAccessToken(options?: { minValiditySeconds?: number }): Promise<string>;
  /**
   * fetch with the access token: Authorization: DPoP and a fresh DPoP proof
   * for this method and URL when the tokens are DPoP-bound, else
   * Authorization: Bearer. A 401 asking for a DPoP nonce (use_dpop_nonce)
   * is retried once with it; any other 401 refreshes once and retries once.
   */
  fetchWithAuth(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /**
   * A DPoP proof (RFC 9449) for a request you send yourself with the token
   * from getAccessToken(): put it in the DPoP header, and the token in
   * Authorization: DPoP <token>. Its ath is the hash of options.accessToken,
   * or of the token getAccessToken() returns now. options.nonce: the
   * server's DPoP-Nonce (default: the last one that server sent through
   * fetchWithAuth or this client). Fails with the code dpop_not_in_use when
   * the session's tokens are Bearer tokens (getState().tokenType).
   */
  createDPoPProof(method: string, url: string | URL, options?: { accessToken?: string; nonce?: string }): Promise<string>;
  /** The broker's userinfo for the current user. */
  getUserInfo(): Promise<Record<string, unknown>>;
  /** Detaches this page from the worker. */
  close(): void;
}

const loadingState: AuthState = {
  status: "loading",
  isLoading: true,
  isAuthenticated: false,
  user: null,
  scope: "",
  error: null,
  confirmed: false,
};

function snapshotState(s: Snapshot): AuthState {
  const authenticated = s.status === "authenticated";
  return {
    status: authenticated ? "authenticated" : "login_required",
    isLoading: false,
    isAuthenticated: authenticated,
    user: s.user,
    scope: s.scope ?? "",
    ...(s.expiresAt !== undefined ? { expiresAt: s.expiresAt } : {}),
    ...(s.authTime !== undefined ? { authTime: s.authTime } : {}),
    error: null,
    confirmed: false,
  };
}

interface WorkerLink {
  post(msg: Request): void;
  close(): void;
}

function startWorker(
  cfg: BridgekeeperConfig,
  name: string,
  wasmUrl: string,
  onMessage: (m: WorkerMessage) => void,
  onFail: (why: string) => void,
): WorkerLink {
  const url = new URL(cfg.workerUrl ?? new URL("./worker.js", import.meta.url), document.baseURI);
  // The fragment tells the worker which .wasm to start loading before the
  // init message reaches it (it is not sent to the server).
  if (!url.hash && (url.protocol === "https:" || url.protocol === "http:")) {
    url.hash = new URLSearchParams({ wasm: wasmUrl }).toString();
  }
  const mode = cfg.worker ?? "auto";
  // A per-tab session cannot be shared between tabs.
  const shared =
    cfg.storage !== "session" && mode !== "dedicated" && typeof SharedWorker !== "undefined";
  if (mode === "shared" && !shared) {
    throw new BridgekeeperError({ code: "invalid_config", message: "SharedWorker is not available" });
  }
  // The script named by url could not be loaded or run (a 404, a dev
  // server refusing a file outside server.fs.allow, a CSP, a syntax error):
  // browsers report it only as an error event on the worker object.
  const script = url.href.split("#")[0];
  try {
    return connect(url, name, shared, script, onMessage, onFail);
  } catch (e) {
    // The browser refused to create it (a cross-origin URL, say): the same
    // error state, reported after createClient returns.
    queueMicrotask(() => onFail(`the worker ${script} could not be created: ${String(e)}`));
    return { post: () => undefined, close: () => undefined };
  }
}

function connect(
  url: URL,
  name: string,
  shared: boolean,
  script: string,
  onMessage: (m: WorkerMessage) => void,
  onFail: (why: string) => void,
): WorkerLink {
  if (shared) {
    const w = new SharedWorker(url, { name });
    w.onerror = () => onFail(`the worker script ${script} could not be loaded or started`);
    w.port.onmessage = (ev) => onMessage(ev.data as WorkerMessage);
    w.port.start();
    return { post: (m) => w.port.postMessage(m), close: () => w.port.close() };
  }
  const w = new Worker(url, { name });
  w.onerror = (ev) =>
    onFail(`the worker script ${script} could not be loaded or started` + (ev.message ? ": " + ev.message : ""));
  w.onmessage = (ev) => onMessage(ev.data as WorkerMessage);
  return { post: (m) => w.postMessage(m), close: () => w.terminate() };
}

function toState(v: CoreView, error: AuthError | null): AuthState {
  return {
    status: v.status,
    isLoading: v.status === "loading",
    isAuthenticated: v.isAuthenticated,
    user: v.user ?? null,
    scope: v.scope ?? "",
    expiresAt: v.expiresAt,
    authTime: v.authTime,
    ...(v.tokenType ? { tokenType: v.tokenType } : {}),
    error: v.error ?? error,
    confirmed: v.status !== "loading",
  };
}

const sessionPrefix = "bridgekeeper:";

const loggedOutView: CoreView = {
  status: "login_required",
  isAuthenticated: false,
  user: null,
  scope: "",
  appState: "",
};

/** Creates a client. The worker and the .wasm load at once, off the main thread. */
export function createClient(config: BridgekeeperConfig): BridgekeeperClient {
  if (!config.issuer || !config.clientId) {
    throw new BridgekeeperError({ code: "invalid_config", message: "issuer and clientId are required" });
  }
  const origin = location.origin;
  const redirectUri = config.redirectUri ?? origin + "/callback";
  const postLogoutRedirectUri = config.postLogoutRedirectUri ?? origin + "/";
  const storage = config.storage ?? "indexeddb";
  const storageSlot = `${sessionPrefix}${config.issuer}|${config.clientId}:`;

  const issuer = config.issuer.replace(/\/+$/, "");
  const href = location.href;
  const looksLikeCallback =
    href.startsWith(redirectUri.split("?")[0]) && /[?&#](code|error)=/.test(href) && /[?&#]state=/.test(href);

  // The snapshot of the login state (snapshot.ts): none in memory mode,
  // whose sessions end with the worker; the tab's own in session mode.
  const area =
    config.snapshot === false || storage === "memory" ? null : snapshotArea(storage === "session" ? "session" : "local");
  // A login callback is the worker's to handle: no snapshot can say its outcome.
  const snap = area && !looksLikeCallback ? readSnapshot(area, issuer, config.clientId) : null;
  // The page was told "authenticated" by the snapshot and the worker has
  // not yet said otherwise.
  let unconfirmedLogin = snap?.status === "authenticated";

  let state: AuthState = snap ? snapshotState(snap) : loadingState;
  let lastError: AuthError | null = null;
  const listeners = new Set<() => void>();
  const handlers = new Map<string, Set<(e?: AuthError) => void>>();
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  let nextId = 1;

  const setState = (s: AuthState) => {
    state = s;
    for (const l of listeners) l();
  };
  const emit = (event: string, error?: AuthError) => {
    for (const h of handlers.get(event) ?? []) h(error);
  };
  // A view from the worker: the real state. It replaces the snapshot's.
  const setView = (v: CoreView, at: number, event?: string) => {
    if (area) {
      const s = snapshotOf(issuer, config.clientId, v, at);
      if (s) writeSnapshot(area, s);
    }
    setState(toState(v, lastError));
    if (v.status === "loading") return;
    if (v.isAuthenticated || event === "sessionExpired" || event === "loggedOut") {
      unconfirmedLogin = false;
    } else if (unconfirmedLogin) {
      // The snapshot said logged in, but the session is gone (ended while
      // no page was open to hear of it): tell the app, as it would be told
      // had it been running.
      unconfirmedLogin = false;
      emit("sessionExpired", { code: "login_required", message: "the session has ended" });
    }
  };
  const setError = (e: AuthError) => {
    lastError = e;
    setState({ ...state, error: e });
  };

  // Events that arrive while a login callback is handled, replayed after it.
  let held: Extract<WorkerMessage, { kind: "event" }>[] | null = looksLikeCallback ? [] : null;
  const release = (after: number) => {
    const events = held ?? [];
    held = null;
    for (const m of events) {
      // Their views are older than init's (or as old): only the news.
      if (m.view && m.at > after) setView(m.view as CoreView, m.at, m.event);
      emit(m.event, m.error);
    }
  };

  // Set once the worker is known not to start: every call fails with it.
  let failure: BridgekeeperError | null = null;
  const fail = (why: string) => {
    if (failure || started) return;
    const prefix = "the Bridgekeeper worker failed to start: ";
    failure = new BridgekeeperError({ code: "worker_failed", message: why.startsWith(prefix) ? why : prefix + why });
    for (const p of pending.values()) p.reject(failure);
    pending.clear();
  };
  let started = false;

  const wasmUrl = new URL(config.wasmUrl ?? new URL("./bridgekeeper.wasm", import.meta.url), location.href).href;
  const link = startWorker(config, workerName({ issuer, clientId: config.clientId }), wasmUrl, (m) => {
    switch (m.kind) {
      case "reply": {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (!p) return;
        if (m.ok) p.resolve(m.result);
        else p.reject(new BridgekeeperError(m.error));
        return;
      }
      case "event":
        if (held) {
          // A login callback is being handled: its loggedIn event must not
          // show the new state before init has put the page's own URL back.
          held.push(m);
          return;
        }
        if (m.event !== "error") lastError = null;
        else if (m.error) lastError = m.error;
        if (m.view) setView(m.view as CoreView, m.at, m.event);
        emit(m.event, m.error);
        return;
      case "persist":
        if (m.value === null) sessionStorage.removeItem(storageSlot + m.key);
        else sessionStorage.setItem(storageSlot + m.key, m.value);
        return;
    }
  }, fail);

  const call = <T>(method: string, ...args: unknown[]): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (failure) return reject(failure);
      const id = nextId++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      link.post({ id, method, args });
    });

  // Remember a failure for the UI, then rethrow it.
  const track = async <T>(p: Promise<T>): Promise<T> => {
    try {
      const v = await p;
      return v;
    } catch (e) {
      const err =
        e instanceof BridgekeeperError
          ? { code: e.code, message: e.message, description: e.description }
          : { code: "error", message: String(e) };
      setError(err);
      throw e instanceof BridgekeeperError ? e : new BridgekeeperError(err);
    }
  };

  // "session" storage: each tab has a session of its own, so a DPoP key of
  // its own too (a logout in one tab replaces only that tab's key). Its
  // name lives in the tab's sessionStorage, so it survives the tab's reloads.
  const tabKeyName = () => {
    const slot = `${sessionPrefix}dpop-key:${config.issuer}|${config.clientId}`;
    let id = sessionStorage.getItem(slot);
    if (!id) {
      id = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
      sessionStorage.setItem(slot, id);
    }
    return id;
  };
  const sessionValues: Record<string, string> = {};
  if (storage === "session") {
    for (let i = 0; i < sessionStorage.length; i++) {
      const k = sessionStorage.key(i);
      if (k?.startsWith(storageSlot)) sessionValues[k.slice(storageSlot.length)] = sessionStorage.getItem(k)!;
    }
  }
  const params: InitParams = {
    config: {
      issuer,
      clientId: config.clientId,
      redirectUri,
      postLogoutRedirectUri,
      scopes: config.scopes,
      refreshBeforeSeconds: config.refreshBeforeSeconds,
      clockSkewSeconds: config.clockSkewSeconds,
      ...(config.dpop === false ? { dpop: false } : {}),
    },
    storage,
    wasmUrl,
    ...(looksLikeCallback ? { callbackUrl: href } : {}),
    ...(storage === "session" ? { sessionValues, dpopKey: tabKeyName() } : {}),
  };

  // A worker that does not start (its script or the .wasm hangs) is a
  // failure too, once the start-up timeout has passed. The timeout covers
  // the worker and the Go core starting, not init's requests to the broker
  // (a login callback's code exchange, a refresh), which have their own.
  const timeout = (config.startTimeoutSeconds ?? 30) * 1000;
  const timer = setTimeout(
    () => fail(`no answer within ${timeout / 1000} s (the worker script or bridgekeeper.wasm did not load)`),
    timeout,
  );
  call("loaded", wasmUrl).then(
    () => {
      started = true;
      clearTimeout(timer);
    },
    (e: unknown) => {
      clearTimeout(timer);
      if (e instanceof BridgekeeperError && e.code !== "worker_failed") {
        // The worker answered: it runs (a SharedWorker of an earlier
        // version, still serving another tab, does not know "loaded").
        started = true;
        return;
      }
      fail(e instanceof BridgekeeperError ? e.message : String(e));
    },
  );
  const confirmed = call<InitResult>("init", params)
    .then((r) => {
      if (r.callbackError) lastError = r.callbackError;
      const appState = looksLikeCallback ? (r.handledCallback && (r.view.appState || "/")) || "/" : null;
      if (appState !== null && !config.onRedirectCallback) {
        // The URL is the page's own again before anyone renders the new
        // state. Routers keep their own copy of the location and do not see
        // history.replaceState: the popstate event tells them (React
        // Router's BrowserRouter and most others listen to it).
        history.replaceState(history.state, "", appState);
        dispatchEvent(new PopStateEvent("popstate", { state: history.state }));
      }
      setView(r.view, r.at);
      if (appState !== null && config.onRedirectCallback) config.onRedirectCallback(appState);
      release(r.at);
      return state;
    })
    .catch((e: unknown) => {
      const err =
        e instanceof BridgekeeperError
          ? { code: e.code, message: e.message }
          : { code: "worker_failed", message: "the Bridgekeeper worker failed to start: " + String(e) };
      lastError = err;
      // A worker that did not start: every later call fails at once with
      // the same error.
      if (err.code === "worker_failed") failure ??= new BridgekeeperError(err);
      unconfirmedLogin = false;
      held = null;
      setState({ ...loadingState, status: "login_required", isLoading: false, error: err, confirmed: true });
      emit("error", err);
      return state;
    });
  // With a usable snapshot the state is known now; the worker confirms or
  // corrects it when it is up (setView).
  const ready = snap ? Promise.resolve(state) : confirmed;

  // Timers in background tabs and sleeping devices are unreliable: check
  // the token whenever the page becomes visible or the network returns.
  const wake = () => {
    if (document.visibilityState === "visible") void confirmed.then(() => call("wake").catch(() => undefined));
  };
  document.addEventListener("visibilitychange", wake);
  addEventListener("online", wake);
  const bye = () => link.post({ id: 0, method: "bye", args: [] });
  addEventListener("pagehide", bye);

  const client: BridgekeeperClient = {
    ready,
    confirmed,
    getState: () => state,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    on(event, handler) {
      let set = handlers.get(event);
      if (!set) handlers.set(event, (set = new Set()));
      set.add(handler);
      return () => set.delete(handler);
    },
    async login(options = {}) {
      await confirmed;
      const url = await track(
        call<string>("authorizeUrl", {
          ...options,
          appState: options.appState ?? location.pathname + location.search + location.hash,
        }),
      );
      location.assign(url);
    },
    async logout(options = {}) {
      // Logged out from now on for any reload, whatever happens next: the
      // worker's logout always ends the session, even when the broker
      // cannot be reached.
      if (area) {
        writeSnapshot(area, snapshotOf(issuer, config.clientId, loggedOutView, Date.now())!);
      }
      await confirmed;
      const url = await track(
        call<string>("logout", { postLogoutRedirectUri: options.returnTo ?? postLogoutRedirectUri }),
      );
      if (url && options.redirect !== false) location.assign(url);
    },
    async getAccessToken(options = {}) {
      await confirmed;
      return track(call<string>("getAccessToken", options.minValiditySeconds));
    },
    async fetchWithAuth(input, init = {}) {
      // The proof names the method and the URL (without query and fragment).
      const method = (init.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
      const url = new URL(input instanceof Request ? input.url : String(input), location.href).href;
      const auth = async (nonce = "") => {
        await confirmed;
        return track(call<{ token: string; headers: Record<string, string> }>("authHeaders", method, url, nonce));
      };
      const send = async (a: { headers: Record<string, string> }) => {
        const headers = new Headers(init.headers);
        for (const [k, v] of Object.entries(a.headers)) headers.set(k, v);
        const r = await fetch(input, { ...init, headers });
        // A server may hand out its next nonce on any answer (RFC 9449
        // section 9); the API must expose DPoP-Nonce to cross-origin pages.
        const next = r.headers.get("DPoP-Nonce");
        if (next && "DPoP" in a.headers) void call("noteNonce", url, next).catch(() => undefined);
        return r;
      };
      let a = await auth();
      let resp = await send(a);
      const nonce = resp.headers.get("DPoP-Nonce");
      if (resp.status === 401 && nonce && "DPoP" in a.headers && /use_dpop_nonce/.test(resp.headers.get("WWW-Authenticate") ?? "")) {
        // The API wants a proof with its nonce: once more, with it.
        a = await auth(nonce);
        resp = await send(a);
      }
      if (resp.status !== 401) return resp;
      // The API refused the token (revoked, key rotated, clock skew): renew
      // once — concurrent callers share one refresh — and retry once.
      // A refused refresh ends the session at once (the worker emits
      // sessionExpired and the state becomes login_required): that is the
      // news, not an error. Anything else (the broker is down) is an error.
      try {
        await call<string>("renew", a.token);
      } catch (e) {
        const ended = e instanceof BridgekeeperError && e.code === "login_required";
        if (!ended) await track(Promise.reject(e)).catch(() => undefined);
        return resp;
      }
      // The renewed token, with a proof of its own.
      return send(await auth());
    },
    async createDPoPProof(method, url, options = {}) {
      await confirmed;
      const href = new URL(String(url), location.href).href;
      return track(call<string>("dpopProof", method, href, options.accessToken ?? "", options.nonce ?? ""));
    },
    async getUserInfo() {
      await confirmed;
      return track(call<Record<string, unknown>>("userinfo"));
    },
    close() {
      document.removeEventListener("visibilitychange", wake);
      removeEventListener("online", wake);
      removeEventListener("pagehide", bye);
      bye();
      link.close();
    },
  };
  return client;
}
