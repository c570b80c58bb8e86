// Calls to the example API with the user's access token.
import type { UseAuth } from "@bridgekeeper/client/react";
import { api } from "./config";

/**
 * Calls the API and resolves to its JSON body. It rejects with the Response
 * on an HTTP error, with a BridgekeeperError when no token could be had, and
 * with a TypeError when the API cannot be reached.
 */
export async function callApi(auth: UseAuth, path: string, init?: RequestInit): Promise<Record<string, unknown>> {
  const resp = await auth.fetchWithAuth(api + path, init);
  if (!resp.ok) throw resp;
  return (await resp.json()) as Record<string, unknown>;
}
