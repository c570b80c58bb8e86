// A router small enough for three pages: the path lives in the History API.
// navigate() is a module function, so that code outside React (the
// client's onRedirectCallback in config.ts) can route too.
import { createContext, useContext, useSyncExternalStore, type MouseEvent, type ReactNode } from "react";

const listeners = new Set<() => void>();

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  addEventListener("popstate", listener);
  return () => {
    listeners.delete(listener);
    removeEventListener("popstate", listener);
  };
}

/** Goes to path; replace: true replaces the current history entry. */
export function navigate(to: string, { replace = false }: { replace?: boolean } = {}) {
  if (to !== location.pathname + location.search + location.hash) {
    if (replace) history.replaceState(null, "", to);
    else history.pushState(null, "", to);
  }
  for (const l of listeners) l();
}

const PathCtx = createContext<{ path: string; navigate: (to: string) => void }>({
  path: "/",
  navigate,
});

export function Router({ children }: { children: ReactNode }) {
  // The path is read from location on every render, never kept apart from it.
  const path = useSyncExternalStore(subscribe, () => location.pathname);
  return <PathCtx.Provider value={{ path, navigate }}>{children}</PathCtx.Provider>;
}

export const useRoute = () => useContext(PathCtx);

export function Link({ to, children }: { to: string; children: ReactNode }) {
  const { path } = useRoute();
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
