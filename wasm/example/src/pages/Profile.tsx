import { useEffect, useState } from "react";
import { useAuth } from "@bridgekeeper/client/react";
import type { LoginOptions } from "@bridgekeeper/client";
import { Alert } from "../Alert";
import { callApi } from "../api";
import { apiNotice, type Notice } from "../messages";
import { accountURL, signInMethods } from "../config";

type Loaded = { body: Record<string, unknown> } | { notice: Notice } | null;

export function Profile({ login }: { login: (opts?: LoginOptions) => Promise<void> }) {
  const auth = useAuth();
  const [result, setResult] = useState<Loaded>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    if (!auth.isAuthenticated) return;
    let live = true;
    setResult(null);
    callApi(auth, "/api/profile").then(
      (body) => live && setResult({ body }),
      async (e: unknown) => {
        const notice = await apiNotice(e);
        if (live) setResult({ notice });
      },
    );
    return () => {
      live = false;
    };
    // Load once per login and on "Try again", not on every token refresh.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [auth.isAuthenticated, attempt]);

  if (!auth.isAuthenticated) {
    return (
      <section aria-labelledby="profile-title">
        <h1 id="profile-title">Profile</h1>
        <p>Log in to see your profile.</p>
        <button type="button" className="primary" onClick={() => login({ appState: "/profile" })}>
          Log in
        </button>
      </section>
    );
  }
  const user = auth.user ?? {};
  return (
    <section aria-labelledby="profile-title">
      <h1 id="profile-title">Profile</h1>
      <h2>You</h2>
      <dl className="claims" data-testid="user-claims">
        {["email", "name", "sub"].map((k) =>
          user[k] === undefined ? null : (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{String(user[k])}</dd>
            </div>
          ),
        )}
        <div>
          <dt>signed in with</dt>
          <dd data-testid="amr">{signInMethods(auth.user)}</dd>
        </div>
        {auth.authTime && (
          <div>
            <dt>logged in</dt>
            <dd>{new Date(auth.authTime).toLocaleString()}</dd>
          </div>
        )}
      </dl>
      <p>
        <a href={accountURL}>Manage your account</a> (password, e-mail address, two-step verification).
      </p>
      <h2>As the API sees you</h2>
      {result === null ? (
        <p role="status">Asking the API…</p>
      ) : "notice" in result ? (
        <>
          <Alert notice={result.notice} />
          <button type="button" onClick={() => setAttempt((n) => n + 1)}>
            Try again
          </button>
        </>
      ) : (
        <div data-testid="api-profile">
          <p role="status" className="sr-only">
            The API accepted your access token.
          </p>
          <dl className="claims">
            <div>
              <dt>subject</dt>
              <dd data-testid="api-sub">{String(result.body.sub)}</dd>
            </div>
            <div>
              <dt>scopes</dt>
              <dd>{Array.isArray(result.body.scopes) ? result.body.scopes.join(" ") : "—"}</dd>
            </div>
          </dl>
          <details>
            <summary>Access token claims</summary>
            <pre>{JSON.stringify(result.body.claims, null, 2)}</pre>
          </details>
        </div>
      )}
    </section>
  );
}
