import { useAuth } from "@bridgekeeper/client/react";
import type { LoginOptions } from "@bridgekeeper/client";
import { accountURL, issuer, returnTo, signInMethods } from "../config";
import { Link } from "../router";
import { displayName } from "../App";

const upstreams = [
  { hint: "okta", name: "Okta" },
  { hint: "google", name: "Google" },
  { hint: "facebook", name: "Facebook" },
];

export function Home({ login }: { login: (opts?: LoginOptions) => Promise<void> }) {
  const auth = useAuth();
  if (auth.isAuthenticated) {
    return (
      <section aria-labelledby="home-title">
        <h1 id="home-title">Welcome back</h1>
        <p data-testid="state">
          You are logged in as <strong>{displayName(auth.user)}</strong>
          {auth.authTime ? ` since ${new Date(auth.authTime).toLocaleTimeString()}` : ""}.
        </p>
        <p>
          See your <Link to="/profile">profile</Link> as the API sees it, or go to the{" "}
          <Link to="/checkout">checkout</Link>. Signed in with:{" "}
          <span data-testid="amr">{signInMethods(auth.user)}</span>.{" "}
          <a href={accountURL}>Your account</a>
        </p>
      </section>
    );
  }
  const back = encodeURIComponent(returnTo);
  return (
    <section aria-labelledby="home-title">
      <h1 id="home-title">Welcome</h1>
      <p data-testid="state">You are not logged in.</p>
      <div className="stack">
        <button type="button" className="primary" onClick={() => login()}>
          Log in
        </button>
        {upstreams.map((u) => (
          <button key={u.hint} type="button" onClick={() => login({ idpHint: u.hint })}>
            Continue with {u.name}
          </button>
        ))}
      </div>
      <p>
        <a href={`${issuer}/register?return_to=${back}`}>Create account</a>
        {" · "}
        <a href={`${issuer}/reset?return_to=${back}`}>Forgot password</a>
      </p>
    </section>
  );
}
