/// <reference lib="webworker" />
// The worker that holds the tokens. It loads the Go core (bridgekeeper.wasm),
// keeps the session in encrypted IndexedDB (or memory, or this tab's
// sessionStorage through the page), and answers the pages' requests. The
// refresh token never leaves this worker. wasm_exec.js (Go's loader) is
// prepended to this file by the build.
import {
  workerName,
  workerNamePrefix,
  type CoreView,
  type InitParams,
  type InitResult,
  type Request,
  type WorkerMessage,
} from "./protocol";
import { EncryptedIDBStore, MemoryStore, ProofKey, SessionMirrorStore, storageKey, type HostStore } from "./stores";

declare const Go: new () => {
  importObject: WebAssembly.Imports;
  run(instance: WebAssembly.Instance): Promise<void>;
};

interface CoreClient {
  start(): Promise<CoreView>;
  authorizeUrl(opts: unknown): Promise<string>;
  handleCallback(url: string): Promise<CoreView>;
  getAccessToken(minValiditySeconds?: number): Promise<string>;
  renew(rejected?: string): Promise<string>;
  userinfo(): Promise<Record<string, unknown>>;
  authHeaders(method: string, url: string, nonce?: string): Promise<{ token: string; headers: Record<string, string> }>;
  dpopProof(method: string, url: string, accessToken?: string, nonce?: string): Promise<string>;
  noteNonce(url: string, nonce: string): void;
  logout(opts: unknown): Promise<string>;
  handleBroadcast(msg: string): Promise<CoreView>;
  view(): CoreView;
  isCallback(url: string): boolean;
  wake(): void;
}

interface Core {
  newClient(config: unknown, host: unknown): CoreClient;
}

type Port = { postMessage(msg: WorkerMessage): void };

const scope = self as unknown as SharedWorkerGlobalScope & DedicatedWorkerGlobalScope;
const ports = new Set<Port>();
let client: Promise<CoreClient> | null = null;
let clientKey = "";
let loaded: { url: string; promise: Promise<Core> } | null = null;

/** Fetches, compiles and starts the Go core, once per URL. */
function loadCore(wasmUrl: string): Promise<Core> {
  if (loaded?.url === wasmUrl) return loaded.promise;
  const promise = (async () => {
    const go = new Go();
    // Every way this can fail (no answer, an HTTP error such as a dev
    // server's 403 for a file outside what it may serve, bytes that are
    // not WebAssembly) is the error worker_failed, naming the URL.
    const failed = (why: string) =>
      Object.assign(new Error(`bridgekeeper.wasm (${wasmUrl}) ${why}`), { code: "worker_failed" });
    const get = async () => {
      let resp: Response;
      try {
        resp = await fetch(wasmUrl);
      } catch (e) {
        throw failed("could not be fetched: " + String(e));
      }
      if (!resp.ok) throw failed(`could not be loaded: HTTP ${resp.status}`);
      return resp;
    };
    let result: WebAssembly.WebAssemblyInstantiatedSource;
    const resp = await get();
    try {
      result = await WebAssembly.instantiateStreaming(resp, go.importObject);
    } catch {
      // Servers that send the wrong MIME type: compile from the bytes.
      try {
        result = await WebAssembly.instantiate(await (await get()).arrayBuffer(), go.importObject);
      } catch (e) {
        throw (e as { code?: string }).code ? e : failed("is not a WebAssembly module this worker can run: " + String(e));
      }
    }
    void go.run(result.instance); // Go's main registers bridgekeeperCore and parks.
    const core = (globalThis as unknown as { bridgekeeperCore?: Core }).bridgekeeperCore;
    if (!core) throw failed("started but did not register the client core");
    return core;
  })();
  loaded = { url: wasmUrl, promise };
  promise.catch(() => {
    if (loaded?.promise === promise) loaded = null; // a later init tries again
  });
  return promise;
}

function broadcast(msg: WorkerMessage): void {
  for (const p of ports) p.postMessage(msg);
}

function errorOf(e: unknown): { code: string; message: string; description?: string } {
  if (e && typeof e === "object") {
    const o = e as { code?: unknown; message?: unknown; description?: unknown };
    return {
      code: typeof o.code === "string" ? o.code : "error",
      message: typeof o.message === "string" ? o.message : String(e),
      ...(typeof o.description === "string" ? { description: o.description } : {}),
    };
  }
  return { code: "error", message: String(e) };
}

async function createClient(p: InitParams, port: Port): Promise<CoreClient> {
  const core = await loadCore(p.wasmUrl);
  const name = workerName(p.config);
  let tokens: HostStore;
  switch (p.storage) {
    case "memory":
      tokens = new MemoryStore();
      break;
    case "session":
      tokens = new SessionMirrorStore(name, p.sessionValues ?? {}, (key, value) =>
        port.postMessage({ kind: "persist", key, value }),
      );
      break;
    default:
      tokens = new EncryptedIDBStore(name);
  }
  // A login in progress (PKCE verifier, state, nonce) must survive the
  // redirect to the broker whatever the mode: it always goes to IndexedDB,
  // encrypted. Only the tokens follow the storage mode.
  const pending = p.storage === "indexeddb" || !p.storage ? tokens : new EncryptedIDBStore(name);
  const store: HostStore = {
    load: (k) => (k === "pending" ? pending : tokens).load(k),
    save: (k, v) => (k === "pending" ? pending : tokens).save(k, v),
    delete: (k) => (k === "pending" ? pending : tokens).delete(k),
  };
  // Make the storage key now, not in the middle of a login redirect.
  await storageKey(name);
  // Other instances (dedicated workers in other tabs) hear about refreshes
  // and logouts here. A per-tab session has nobody to tell.
  const channel = p.storage === "session" || typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel(name);
  // The DPoP key is in IndexedDB whatever the mode: like a login in
  // progress, it must outlive the worker across the redirect to the broker
  // (the code is bound to it, dpop_jkt). It is of no use without tokens.
  // A "session" tab has its own (its session is its own).
  const dpop = new ProofKey(p.dpopKey ? `${name}#${p.dpopKey}` : name);
  const c = core.newClient(p.config, {
    store,
    dpop,
    channel,
    onEvent(type: string, error: unknown, view: unknown) {
      broadcast({
        kind: "event",
        event: type,
        ...(error ? { error: errorOf(error) } : {}),
        view,
        // The pages keep a snapshot of each view (see snapshot.ts); the
        // time orders them.
        at: Date.now(),
      });
    },
  });
  if (channel) channel.onmessage = (ev) => void c.handleBroadcast(String(ev.data));
  return c;
}

async function init(p: InitParams, port: Port): Promise<InitResult> {
  const key = JSON.stringify([p.config, p.storage]);
  if (client && key !== clientKey) {
    throw Object.assign(new Error("this worker already serves another configuration"), { code: "invalid_config" });
  }
  if (!client) {
    clientKey = key;
    client = createClient(p, port);
    client.catch(() => {
      client = null; // let a later init try again (the .wasm failed to load, say)
    });
  }
  const c = await client;
  let callbackError: InitResult["callbackError"] = null;
  let handledCallback = false;
  if (p.callbackUrl && c.isCallback(p.callbackUrl)) {
    try {
      await c.handleCallback(p.callbackUrl);
      handledCallback = true;
    } catch (e) {
      callbackError = errorOf(e);
    }
  }
  const view = await c.start();
  return { view, handledCallback, callbackError, at: Date.now() };
}

async function dispatch(port: Port, req: Request): Promise<unknown> {
  // The page's start-up check: answered once the Go core runs (whatever
  // init then waits for at the broker).
  if (req.method === "loaded") return loadCore(req.args[0] as string).then(() => null);
  if (req.method === "init") return init(req.args[0] as InitParams, port);
  if (req.method === "bye") {
    ports.delete(port);
    return null;
  }
  if (!client) throw Object.assign(new Error("not initialised"), { code: "invalid_config" });
  const c = await client;
  const a = req.args;
  switch (req.method) {
    case "authorizeUrl":
      return c.authorizeUrl(a[0] ?? {});
    case "getAccessToken":
      return c.getAccessToken(a[0] as number | undefined);
    case "renew":
      return c.renew(a[0] as string | undefined);
    case "userinfo":
      return c.userinfo();
    case "authHeaders":
      return c.authHeaders(String(a[0]), String(a[1]), (a[2] as string | undefined) ?? "");
    case "dpopProof":
      return c.dpopProof(String(a[0]), String(a[1]), (a[2] as string | undefined) ?? "", (a[3] as string | undefined) ?? "");
    case "noteNonce":
      c.noteNonce(String(a[0]), String(a[1]));
      return null;
    case "logout":
      return c.logout(a[0] ?? {});
    case "view":
      return c.view();
    case "wake":
      c.wake();
      return c.view();
  }
  throw Object.assign(new Error("unknown method " + req.method), { code: "invalid_request" });
}

function serve(port: Port & { onmessage: ((ev: MessageEvent) => void) | null }): void {
  ports.add(port);
  port.onmessage = (ev: MessageEvent) => {
    const req = ev.data as Request;
    dispatch(port, req).then(
      (result) => port.postMessage({ kind: "reply", id: req.id, ok: true, result }),
      (e) => port.postMessage({ kind: "reply", id: req.id, ok: false, error: errorOf(e) }),
    );
  };
}

if ("onconnect" in scope) {
  scope.onconnect = (ev: MessageEvent) => {
    const port = ev.ports[0];
    serve(port as unknown as Port & { onmessage: ((ev: MessageEvent) => void) | null });
    port.start();
  };
} else {
  serve(scope as unknown as Port & { onmessage: ((ev: MessageEvent) => void) | null });
}

// Start the slow part now rather than when the page's first message arrives
// (a SharedWorker's connect event comes only after the browser has linked
// the page to it): fetching, compiling and starting the Go core, and reading
// the storage key. The page names the .wasm in the worker URL's fragment and
// the session in the worker's name; init then finds both promises under way.
{
  const wasm = new URLSearchParams(scope.location.hash.slice(1)).get("wasm");
  if (wasm) void loadCore(wasm).catch(() => undefined);
  if (scope.name.startsWith(workerNamePrefix)) void storageKey(scope.name).catch(() => undefined);
}
