// The demo app: a header with the login state, notices, and three pages.
import { useEffect, useState } from "react";
import { useAuth } from "@bridgekeeper/client/react";
import { Alert } from "./Alert";
import { authNotice, type Notice } from "./messages";
import { Link, Router, useRoute } from "./router";
import { Home } from "./pages/Home";
import { Profile } from "./pages/Profile";
import { Checkout } from "./pages/Checkout";

// Set before leaving for the broker, so the app can say "logged in" on return.
const loginStarted = "bk-demo-login-started";

export function App() {
  return (
    <Router>
      <Shell />
    </Router>
  );
}

function Shell() {
  const auth = useAuth();
  const { path } = useRoute();
  const [notice, setNotice] = useState<Notice | null>(null);

  useEffect(
    () =>
      auth.client.on("sessionExpired", () =>
        setNotice({ kind: "warning", title: "Your session has expired", text: "Please log in again to continue." }),
      ),
    [auth.client],
  );
  useEffect(() => {
    if (auth.isAuthenticated && sessionStorage.getItem(loginStarted)) {
      sessionStorage.removeItem(loginStarted);
      setNotice({ kind: "success", title: "You are logged in", text: `Welcome, ${displayName(auth.user)}.` });
    } else if (auth.status === "login_required") {
      sessionStorage.removeItem(loginStarted);
    }
  }, [auth.isAuthenticated, auth.status, auth.user]);

  const login: typeof auth.login = (opts) => {
    sessionStorage.setItem(loginStarted, "1");
    setNotice(null);
    return auth.login(opts).catch(() => sessionStorage.removeItem(loginStarted)); // auth.error says why
  };
  const logout = () => {
    setNotice(null);
    auth.logout().catch(() => undefined); // auth.error says why
  };

  const errorNotice = auth.error ? authNotice(auth.error) : null;
  return (
    <>
      <header>
        <nav aria-label="Main">
          <span className="brand">Bridgekeeper demo</span>
          <Link to="/">Home</Link>
          <Link to="/profile">Profile</Link>
          <Link to="/checkout">Checkout</Link>
          <span className="spacer" />
          {auth.isLoading ? (
            <span className="muted">Loading…</span>
          ) : auth.isAuthenticated ? (
            <>
              <span className="muted" data-testid="whoami">
                {displayName(auth.user)}
              </span>
              <button type="button" onClick={logout}>
                Log out
              </button>
            </>
          ) : (
            <button type="button" onClick={() => login()}>
              Log in
            </button>
          )}
        </nav>
      </header>
      <main>
        <div className="notices">
          {errorNotice && <Alert notice={errorNotice} />}
          {notice && <Alert notice={notice} onClose={() => setNotice(null)} />}
        </div>
        {auth.isLoading ? (
          <p role="status">Loading your session…</p>
        ) : path === "/profile" ? (
          <Profile login={login} />
        ) : path === "/checkout" ? (
          <Checkout login={login} onNotice={setNotice} />
        ) : (
          <Home login={login} />
        )}
      </main>
    </>
  );
}

/** The user's e-mail or name, for greetings. */
export function displayName(user: Record<string, unknown> | null): string {
  const v = user?.email ?? user?.name ?? user?.sub;
  return typeof v === "string" ? v : "you";
}
