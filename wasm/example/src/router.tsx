// A router small enough for three pages: the path lives in the History API.
import { createContext, useContext, useEffect, useState, type MouseEvent, type ReactNode } from "react";

const PathCtx = createContext<{ path: string; navigate: (to: string) => void }>({
  path: "/",
  navigate: () => {},
});

export function Router({ children }: { children: ReactNode }) {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const sync = () => setPath(location.pathname);
    addEventListener("popstate", sync);
    return () => removeEventListener("popstate", sync);
  }, []);
  const navigate = (to: string) => {
    if (to !== location.pathname) history.pushState(null, "", to);
    setPath(to);
  };
  // The client replaces /callback?code=… with the saved path once the
  // login is handled; pick that up.
  useEffect(() => {
    if (path !== location.pathname) setPath(location.pathname);
  });
  return <PathCtx.Provider value={{ path, navigate }}>{children}</PathCtx.Provider>;
}

export const useRoute = () => useContext(PathCtx);

export function Link({ to, children }: { to: string; children: ReactNode }) {
  const { path, navigate } = useRoute();
  const onClick = (e: MouseEvent) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a href={to} onClick={onClick} aria-current={path === to ? "page" : undefined}>
      {children}
    </a>
  );
}
