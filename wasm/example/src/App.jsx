import { useEffect, useState } from "react";
import { useAuth } from "@bridgekeeper/client/react";

const MAX_AGE = 300; // checkout needs a login younger than five minutes

function usePath() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const on = () => setPath(location.pathname);
    addEventListener("popstate", on);
    return () => removeEventListener("popstate", on);
  }, []);
  const go = (p) => {
    history.pushState(null, "", p);
    setPath(p);
  };
  return [path, go];
}

const messages = {
  network_error: "The login server cannot be reached. Check your connection and try again.",
  broker_unavailable: "The login server is down. Please try again in a moment.",
  login_required: "Your session has expired. Please log in again.",
  invalid_id_token: "The login answer could not be verified, so you were not logged in.",
};

function Alert({ kind, children }) {
  return <p role="alert" className={"alert " + kind} style={{ padding: 8, border: "1px solid", borderRadius: 4 }}>{children}</p>;
}

export function App({ issuer, apiUrl }) {
  const auth = useAuth();
  const [path, go] = usePath();
  const [notice, setNotice] = useState(null);
  useEffect(() => {
    const off = [
      auth.client.on("sessionExpired", () => setNotice({ kind: "warning", text: messages.login_required })),
      auth.client.on("loggedIn", () => setNotice({ kind: "success", text: "You are logged in." })),
      auth.client.on("loggedOut", () => setNotice({ kind: "info", text: "You are logged out." })),
    ];
    return () => off.forEach((f) => f());
  }, [auth.client]);

  if (auth.isLoading) return <p>Loading…</p>;
  const back = encodeURIComponent(location.origin + "/");
  return (
    <main style={{ fontFamily: "system-ui", maxWidth: 640, margin: "2em auto" }}>
      <nav style={{ display: "flex", gap: 12 }}>
        <a href="/" onClick={(e) => (e.preventDefault(), go("/"))}>Home</a>
        <a href="/profile" onClick={(e) => (e.preventDefault(), go("/profile"))}>Profile</a>
        <a href="/checkout" onClick={(e) => (e.preventDefault(), go("/checkout"))}>Checkout</a>
        {auth.isAuthenticated && <button onClick={() => auth.logout()}>Log out</button>}
      </nav>
      {notice && <Alert kind={notice.kind}>{notice.text}</Alert>}
      {auth.error && <Alert kind="error">{messages[auth.error.code] ?? auth.error.message}</Alert>}
      {path === "/profile" ? <Profile apiUrl={apiUrl} /> : path === "/checkout" ? <Checkout apiUrl={apiUrl} /> : (
        <section>
          <h1>Bridgekeeper demo</h1>
          {auth.isAuthenticated ? <p>Hello {String(auth.user?.name ?? auth.user?.email)}.</p> : (
            <>
              <button onClick={() => auth.login()}>Log in</button>{" "}
              <button onClick={() => auth.login({ idpHint: "okta" })}>Continue with Okta</button>{" "}
              <button onClick={() => auth.login({ idpHint: "google" })}>Continue with Google</button>{" "}
              <button onClick={() => auth.login({ idpHint: "facebook" })}>Continue with Facebook</button>
              <p>
                <a href={`${issuer}/register?return_to=${back}`}>Create account</a>{" · "}
                <a href={`${issuer}/reset?return_to=${back}`}>Forgot password</a>
              </p>
            </>
          )}
        </section>
      )}
    </main>
  );
}

function useApi(apiUrl, path) {
  const { fetchWithAuth } = useAuth();
  return async (init) => {
    try {
      const r = await fetchWithAuth(apiUrl + path, init);
      const body = await r.json().catch(() => null);
      return { status: r.status, body };
    } catch (e) {
      return { status: 0, error: messages[e.code] ?? "The API cannot be reached." };
    }
  };
}

function Profile({ apiUrl }) {
  const auth = useAuth();
  const call = useApi(apiUrl, "/api/profile");
  const [res, setRes] = useState(null);
  useEffect(() => {
    if (auth.isAuthenticated) call().then(setRes);
  }, [auth.isAuthenticated]);
  if (!auth.isAuthenticated) return <button onClick={() => auth.login()}>Log in to see your profile</button>;
  return (
    <section>
      <h1>Profile</h1>
      <pre>{JSON.stringify(auth.user, null, 2)}</pre>
      <h2>From the API</h2>
      {res === null ? <p>Loading…</p> : res.error ? <Alert kind="error">{res.error}</Alert> : <pre>{JSON.stringify(res.body, null, 2)}</pre>}
    </section>
  );
}

function Checkout({ apiUrl }) {
  const auth = useAuth();
  const call = useApi(apiUrl, "/api/checkout");
  const [res, setRes] = useState(null);
  const fresh = auth.authTime && Date.now() - auth.authTime < MAX_AGE * 1000;
  const scoped = auth.scope.split(" ").includes("checkout");
  const reauth = () =>
    auth.login({ maxAge: MAX_AGE, scopes: ["openid", "profile", "email", "offline_access", "checkout"], appState: "/checkout" });
  if (!auth.isAuthenticated) return <button onClick={reauth}>Log in to check out</button>;
  if (!fresh || !scoped) {
    return (
      <section>
        <h1>Checkout</h1>
        <p>For your security, please confirm it is you before paying.</p>
        <button onClick={reauth}>Confirm and continue</button>
      </section>
    );
  }
  return (
    <section>
      <h1>Checkout</h1>
      <button onClick={async () => {
        await auth.getAccessToken({ minValiditySeconds: 240 }); // a fresh token for the payment
        setRes(await call({ method: "POST" }));
      }}>Pay</button>
      {res && (res.error ? <Alert kind="error">{res.error}</Alert> : res.status === 200 ? <Alert kind="success">Order placed.</Alert> : <Alert kind="error">The API answered {res.status}.</Alert>)}
    </section>
  );
}
