// React bindings: <BridgekeeperProvider> and useAuth().
import { createContext, useContext, useMemo, useSyncExternalStore, type ReactNode } from "react";
import { createClient, type BridgekeeperClient } from "./index";
import type { AuthError, AuthState, BridgekeeperConfig, LoginOptions, LogoutOptions } from "./types";

export * from "./index";

const Ctx = createContext<BridgekeeperClient | null>(null);

// One client per configuration for the page's life: StrictMode mounts
// twice, and a provider remounting must not start a second worker link.
const clients = new Map<string, BridgekeeperClient>();

function clientFor(config: BridgekeeperConfig): BridgekeeperClient {
  const key = JSON.stringify({ ...config, onRedirectCallback: undefined });
  let c = clients.get(key);
  if (!c) {
    c = createClient(config);
    clients.set(key, c);
  }
  return c;
}

export interface BridgekeeperProviderProps {
  /** The client configuration; or pass a client made with createClient. */
  config?: BridgekeeperConfig;
  client?: BridgekeeperClient;
  children?: ReactNode;
}

export function BridgekeeperProvider({ config, client, children }: BridgekeeperProviderProps) {
  const key = config ? JSON.stringify({ ...config, onRedirectCallback: undefined }) : "";
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const c = useMemo(() => client ?? clientFor(config!), [client, key]);
  return <Ctx.Provider value={c}>{children}</Ctx.Provider>;
}

export interface UseAuth {
  isLoading: boolean;
  isAuthenticated: boolean;
  user: Record<string, unknown> | null;
  error: AuthError | null;
  status: AuthState["status"];
  scope: string;
  /** Time of the last login at the broker (Unix ms). */
  authTime?: number;
  /** False while the state comes from the previous load's snapshot, before the worker confirmed it. */
  confirmed: boolean;
  login(options?: LoginOptions): Promise<void>;
  logout(options?: LogoutOptions): Promise<void>;
  getAccessToken(options?: { minValiditySeconds?: number }): Promise<string>;
  fetchWithAuth(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** A DPoP proof for a request sent with getAccessToken()'s token (BridgekeeperClient.createDPoPProof). */
  createDPoPProof: BridgekeeperClient["createDPoPProof"];
  /** "DPoP" or "Bearer": how to present getAccessToken()'s token. */
  tokenType?: AuthState["tokenType"];
  client: BridgekeeperClient;
}

/** The login state and actions. Must be used under <BridgekeeperProvider>. */
export function useAuth(): UseAuth {
  const c = useContext(Ctx);
  if (!c) throw new Error("useAuth must be used inside <BridgekeeperProvider>");
  const s = useSyncExternalStore(c.subscribe, c.getState, c.getState);
  return useMemo(
    () => ({
      isLoading: s.isLoading,
      isAuthenticated: s.isAuthenticated,
      user: s.user,
      error: s.error,
      status: s.status,
      scope: s.scope,
      authTime: s.authTime,
      confirmed: s.confirmed,
      login: c.login,
      logout: c.logout,
      getAccessToken: c.getAccessToken,
      fetchWithAuth: c.fetchWithAuth,
      createDPoPProof: c.createDPoPProof,
      tokenType: s.tokenType,
      client: c,
    }),
    [s, c],
  );
}
