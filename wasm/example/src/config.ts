// Demo configuration, from Vite's environment (VITE_BK_*), with defaults
// matching scripts/demo.sh.
import type { BridgekeeperConfig } from "@bridgekeeper/client";
import { navigate } from "./router";

const env = import.meta.env;

/** The broker's issuer URL. */
export const issuer: string = (env.VITE_BK_ISSUER || "http://127.0.0.1:8080").replace(/\/+$/, "");
/** The example API's base URL. */
export const api: string = (env.VITE_BK_API || "http://127.0.0.1:9090").replace(/\/+$/, "");

/** The scopes every login asks for; "checkout" lets the app pay. */
export const scopes = ["openid", "profile", "email", "offline_access", "checkout"];

/** Checkout needs a login younger than this many seconds. */
export const checkoutMaxAgeSeconds = 300;

/** The broker's acr of a sign-in with a second factor (docs/accounts.md). */
export const mfaACR = "urn:bridgekeeper:acr:mfa";

/** The broker's account page (password, e-mail, two-step verification). */
export const accountURL = issuer + "/account";

/** The methods the session's sign-in used (the ID token's amr), e.g. "pwd, otp, mfa". */
export function signInMethods(user: Record<string, unknown> | null): string {
  const amr = user?.amr;
  return Array.isArray(amr) && amr.length > 0 ? amr.map(String).join(", ") : "unknown";
}

export const clientConfig: BridgekeeperConfig = {
  issuer,
  clientId: env.VITE_BK_CLIENT_ID || "demo",
  redirectUri: location.origin + "/callback",
  postLogoutRedirectUri: location.origin + "/",
  scopes,
  // Back from the broker's login: show the page the login started on
  // (login's appState), through the router, replacing /callback?code=….
  onRedirectCallback: (appState) => navigate(appState, { replace: true }),
};

/** Where the broker's sign-up and reset pages send the user back to. */
export const returnTo = location.origin + "/";
