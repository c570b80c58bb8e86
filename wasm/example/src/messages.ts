// Readable messages for the errors a person can meet in the demo.
import type { AuthError } from "@bridgekeeper/client";
import { api, issuer } from "./config";

export type Notice = { kind: "success" | "info" | "warning" | "error"; title: string; text: string };

/** The notice for an error the client reported (login, refresh, logout). */
export function authNotice(e: AuthError): Notice {
  switch (e.code) {
    case "worker_failed":
      // The app's own files (worker.js, bridgekeeper.wasm) did not load:
      // a deployment problem, not the login server.
      return { kind: "error", title: "Login is unavailable", text: "This page could not start its login: " + e.message };
    case "network_error":
    case "broker_unavailable":
      return {
        kind: "error",
        title: "The login server is down",
        text: `The login server (${issuer}) cannot be reached right now. Please try again in a moment.`,
      };
    case "login_required":
      return { kind: "warning", title: "Your session has expired", text: "Please log in again to continue." };
    case "access_denied":
      return { kind: "warning", title: "Login cancelled", text: e.description || e.message };
    default:
      return {
        kind: "error",
        title: "Login failed",
        text: [e.message, e.description].filter(Boolean).join(": ") || e.code,
      };
  }
}

/** The notice for an API call that failed (thrown, or an HTTP error status). */
export async function apiNotice(failure: unknown): Promise<Notice> {
  if (failure instanceof Response) {
    const body = await failure.json().catch(() => null);
    const code = typeof body?.error === "string" ? body.error : "";
    const detail = typeof body?.error_description === "string" ? body.error_description : "";
    const what = [code, detail].filter(Boolean).join(": ") || failure.statusText;
    if (failure.status === 401) {
      return { kind: "error", title: "The API did not accept your login (401)", text: what };
    }
    if (failure.status === 403) {
      return { kind: "error", title: "The API refused this request (403)", text: what };
    }
    return { kind: "error", title: `The API answered ${failure.status}`, text: what };
  }
  if (failure && typeof failure === "object" && "code" in failure && typeof failure.code === "string") {
    // A BridgekeeperError: getting a token failed, so the broker was involved.
    const f = failure as { code: string; message: string; description?: string };
    return authNotice({ code: f.code, message: f.message, description: f.description });
  }
  return {
    kind: "error",
    title: "Network failure",
    text: `The API (${api}) cannot be reached. Check your connection and try again.`,
  };
}
