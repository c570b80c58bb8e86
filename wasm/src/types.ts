/** Where the worker keeps the session between page loads. */
export type StorageMode = "indexeddb" | "memory" | "session";

/** Which kind of worker runs the core. "auto" prefers a SharedWorker. */
export type WorkerMode = "auto" | "shared" | "dedicated";

export interface BridgekeeperConfig {
  /** The broker's issuer URL, e.g. "https://login.example.com". */
  issuer: string;
  /** The public client's id registered at the broker. */
  clientId: string;
  /** Where the broker sends the browser back after login. Default: origin + "/callback". */
  redirectUri?: string;
  /** Where the broker sends the browser after logout. Default: origin + "/". */
  postLogoutRedirectUri?: string;
  /** Scopes requested by default. Default: openid profile email offline_access. */
  scopes?: string[];
  /**
   * "indexeddb" (default): survives reloads and browser restarts, encrypted
   * under a non-extractable AES-GCM key. "session": survives reloads of this
   * tab only. "memory": gone on reload.
   */
  storage?: StorageMode;
  /** Default "auto": SharedWorker where available, else a dedicated Worker. */
  worker?: WorkerMode;
  /** URL of worker.js; default: next to this module. */
  workerUrl?: string | URL;
  /** URL of bridgekeeper.wasm; default: next to this module. */
  wasmUrl?: string | URL;
  /**
   * Default true (except with storage "memory", which never has one): the
   * page keeps a non-secret snapshot of the login state (status, the ID
   * token's claims, no token) in localStorage ("session" storage: in
   * sessionStorage), so that after a reload the client is ready at once,
   * before the worker has started. Set false to keep the claims out of
   * Web Storage; ready then waits for the worker.
   */
  snapshot?: boolean;
  /** Renew the access token this many seconds before it expires. Default 60. */
  refreshBeforeSeconds?: number;
  /** Clock skew tolerated on ID-token times. Default 60. */
  clockSkewSeconds?: number;
  /**
   * How long the worker may take to start (load worker.js and
   * bridgekeeper.wasm, start the Go core) before the client gives up with
   * the error worker_failed. Default 30. Requests to the broker at start-up
   * (a login callback's code exchange) are not counted. A worker script or .wasm that
   * fails to load is reported as soon as the browser says so.
   */
  startTimeoutSeconds?: number;
  /**
   * Called after a login redirect was handled (the state is then the new
   * one), with the appState given to login(): navigate there with your
   * router, replacing the callback URL (React Router:
   * `(to) => router.navigate(to, { replace: true })`). Default:
   * history.replaceState to appState (or "/"), then a popstate event so
   * that routers listening to it see the new URL.
   */
  onRedirectCallback?: (appState: string) => void;
}

export interface LoginOptions {
  /** Replace the configured scopes for this login. */
  scopes?: string[];
  /** OIDC prompt: "login" or "none" (Bridgekeeper refuses "consent" and "select_account"). */
  prompt?: string;
  /** Seconds: the broker asks for a new login if the last one is older. */
  maxAge?: number;
  /** Sign-in strength asked for (acr_values), e.g. "urn:bridgekeeper:acr:mfa": a second factor (step-up). */
  acrValues?: string;
  /** Pick the broker's connector: "okta", "google", "facebook", … */
  idpHint?: string;
  /** Pre-fill the login form. */
  loginHint?: string;
  /** More authorize parameters. */
  extraParams?: Record<string, string>;
  /** Returned to onRedirectCallback; default: the current path. */
  appState?: string;
}

export interface LogoutOptions {
  /** Where to land after the broker's logout; default: config.postLogoutRedirectUri. */
  returnTo?: string;
  /** Set false to log out locally without visiting the broker. */
  redirect?: boolean;
}

export interface AuthError {
  /**
   * "login_required", "network_error", "broker_unavailable",
   * "invalid_id_token", "worker_failed" (the worker script or
   * bridgekeeper.wasm could not be loaded or started), OAuth codes…
   */
  code: string;
  message: string;
  description?: string;
}

export type AuthStatus = "loading" | "authenticated" | "login_required";

export interface AuthState {
  status: AuthStatus;
  isLoading: boolean;
  isAuthenticated: boolean;
  /** The ID token's claims: sub, email, name, auth_time, … */
  user: Record<string, unknown> | null;
  scope: string;
  /** Access token expiry, Unix milliseconds. */
  expiresAt?: number;
  /** Time of the last login at the broker, Unix milliseconds. */
  authTime?: number;
  /** The last error that did not end the session, or the last failed call. */
  error: AuthError | null;
  /**
   * False while the state comes from the snapshot of the previous page load
   * (the worker has not started yet); true once the worker has read the
   * session and confirmed or corrected it.
   */
  confirmed: boolean;
}

export type AuthEvent = "tokenRefreshed" | "sessionExpired" | "loggedOut" | "loggedIn" | "error";
