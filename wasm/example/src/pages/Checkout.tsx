import { useState } from "react";
import { useAuth } from "@bridgekeeper/client/react";
import type { LoginOptions } from "@bridgekeeper/client";
import { callApi } from "../api";
import { accountURL, checkoutMaxAgeSeconds, mfaACR, scopes, signInMethods } from "../config";
import { apiNotice, type Notice } from "../messages";

export function Checkout({
  login,
  onNotice,
}: {
  login: (opts?: LoginOptions) => Promise<void>;
  onNotice: (n: Notice | null) => void;
}) {
  const auth = useAuth();
  const [busy, setBusy] = useState(false);
  // Re-authenticate with a second factor: the broker asks for the
  // password again when the last login is older than max_age, and for the
  // code of the user's authenticator app when the session has none
  // (acr_values step-up).
  const confirm = () => login({ maxAge: checkoutMaxAgeSeconds, acrValues: mfaACR, scopes, appState: "/checkout" });
  const stepUp = () => login({ acrValues: mfaACR, scopes, appState: "/checkout" });

  if (!auth.isAuthenticated) {
    return (
      <section aria-labelledby="checkout-title">
        <h1 id="checkout-title">Checkout</h1>
        <p>Log in to check out.</p>
        <button type="button" className="primary" onClick={confirm}>
          Log in
        </button>
      </section>
    );
  }

  const age = auth.authTime ? Date.now() - auth.authTime : Infinity;
  const recent = age < checkoutMaxAgeSeconds * 1000;
  const scoped = auth.scope.split(" ").includes("checkout");
  if (!recent || !scoped) {
    return (
      <section aria-labelledby="checkout-title">
        <h1 id="checkout-title">Checkout</h1>
        <p data-testid="reauth">
          {!scoped
            ? "Paying needs your permission to check out."
            : "You logged in more than five minutes ago. For your security, please confirm it is you before paying."}
        </p>
        <button type="button" className="primary" onClick={confirm}>
          Confirm it is you
        </button>
      </section>
    );
  }

  const pay = async () => {
    setBusy(true);
    onNotice(null);
    try {
      // Paying insists on a freshly issued access token (a refresh grant
      // now), so a token revoked or narrowed since it was issued is not used.
      await auth.getAccessToken({ minValiditySeconds: 24 * 3600 });
      const order = await callApi(auth, "/api/checkout", { method: "POST" });
      onNotice({ kind: "success", title: "Checkout done", text: `Your order ${String(order.order_id)} is placed.` });
    } catch (e) {
      onNotice(await apiNotice(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="checkout-title">
      <h1 id="checkout-title">Checkout</h1>
      <p>One demo item, 0.00 €.</p>
      {auth.user?.acr === mfaACR ? (
        <p data-testid="factors">Confirmed with a second factor ({signInMethods(auth.user)}).</p>
      ) : (
        <p data-testid="factors">
          You signed in with {signInMethods(auth.user)} only.{" "}
          <button type="button" onClick={stepUp}>
            Confirm with your authenticator app
          </button>{" "}
          (set one up on <a href={accountURL}>your account page</a>).
        </p>
      )}
      <button type="button" className="primary" onClick={pay} disabled={busy} aria-busy={busy}>
        {busy ? "Paying…" : "Pay now"}
      </button>
    </section>
  );
}
