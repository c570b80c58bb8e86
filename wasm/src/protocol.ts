// Messages between the page and the worker.
import type { StorageMode } from "./types";

export interface InitParams {
  config: {
    issuer: string;
    clientId: string;
    redirectUri: string;
    postLogoutRedirectUri: string;
    scopes?: string[];
    refreshBeforeSeconds?: number;
    clockSkewSeconds?: number;
    dpop?: boolean;
  };
  storage: StorageMode;
  wasmUrl: string;
  /** The page's URL when it is a login callback. */
  callbackUrl?: string;
  /** "session" storage: the encrypted values this tab kept. */
  sessionValues?: Record<string, string>;
  /** "session" storage: the name of this tab's own DPoP key. */
  dpopKey?: string;
}

export const workerNamePrefix = "bridgekeeper:";

/**
 * The worker's name: one worker (and one stored session) per issuer and
 * client. The worker reads its name to open the session's storage key before
 * the first message arrives, so both sides must compute it alike.
 */
export function workerName(config: { issuer: string; clientId: string }): string {
  return `${workerNamePrefix}${config.issuer}|${config.clientId}`;
}

export interface Request {
  id: number;
  method: string;
  args: unknown[];
}

export type WorkerMessage =
  | { kind: "reply"; id: number; ok: true; result: unknown }
  | { kind: "reply"; id: number; ok: false; error: { code: string; message: string; description?: string } }
  | { kind: "event"; event: string; error?: { code: string; message: string }; view: unknown; at: number }
  | { kind: "persist"; key: string; value: string | null };

/** The init method's result. */
export interface InitResult {
  view: CoreView;
  handledCallback: boolean;
  callbackError: { code: string; message: string; description?: string } | null;
  /** When the worker took the view (Date.now() in the worker). */
  at: number;
}

/** The view object produced by the Go core (oidc.View.ToMap). */
export interface CoreView {
  status: "loading" | "authenticated" | "login_required";
  isAuthenticated: boolean;
  user: Record<string, unknown> | null;
  scope: string;
  appState: string;
  expiresAt?: number;
  authTime?: number;
  /** "DPoP" when the tokens are bound to the worker's key, else "Bearer". */
  tokenType?: "DPoP" | "Bearer";
  error?: { code: string; message: string; description?: string };
}
