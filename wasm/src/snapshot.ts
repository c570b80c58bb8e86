// The session snapshot: what the page may know about the login state, kept
// in Web Storage so that a reload knows the state at once instead of waiting
// for the worker (≈100 ms to start the worker and the Go core when no other
// tab runs it). It holds no token and nothing about the storage key: the
// status, the ID token's claims (already given to the page as `user`), and
// times. The worker's views are its source: every view the page receives
// (init, every event) rewrites it, stamped with the time the worker took it.
// Workers have no Web Storage, so the pages write it on the worker's behalf.
import type { CoreView } from "./protocol";

/** The snapshot's format version; any other is ignored. */
export const snapshotVersion = 1;

/**
 * How long a snapshot stays usable after the access token it describes
 * expires (or, logged out, after it was written). The client cannot know the
 * refresh token's lifetime (the token response does not say; the broker's
 * default is 30 days, renewed on every rotation), so a day bounds how stale
 * the guess may be: a session that was refreshed within the last day (any
 * open tab refreshes every few minutes and rewrites the snapshot) is very
 * likely still there. If it is not (revoked meanwhile), the worker corrects
 * the state within its start-up time and the page gets sessionExpired.
 * Older than that, the page waits for the worker, as without a snapshot.
 */
export const snapshotMaxAgeMs = 24 * 60 * 60 * 1000;

/** A snapshot "from the future" beyond this is not trusted. */
const clockSlackMs = 5 * 60 * 1000;

export interface Snapshot {
  v: number;
  issuer: string;
  clientId: string;
  status: "authenticated" | "unauthenticated";
  /** When the worker took the view it describes (Unix ms). */
  at: number;
  /** Not used after this (Unix ms). */
  validUntil: number;
  user: Record<string, unknown> | null;
  scope: string;
  expiresAt?: number;
  authTime?: number;
}

export function snapshotKey(issuer: string, clientId: string): string {
  return `bridgekeeper:snapshot:${issuer}|${clientId}`;
}

/** Builds the snapshot of a worker's view; null for a view that is not a state (loading). */
export function snapshotOf(issuer: string, clientId: string, v: CoreView, at: number): Snapshot | null {
  if (v.status === "authenticated" && v.isAuthenticated) {
    return {
      v: snapshotVersion,
      issuer,
      clientId,
      status: "authenticated",
      at,
      validUntil: Math.max(v.expiresAt ?? at, at) + snapshotMaxAgeMs,
      user: v.user ?? null,
      scope: v.scope ?? "",
      ...(v.expiresAt !== undefined ? { expiresAt: v.expiresAt } : {}),
      ...(v.authTime !== undefined ? { authTime: v.authTime } : {}),
    };
  }
  if (v.status === "login_required") {
    return {
      v: snapshotVersion,
      issuer,
      clientId,
      status: "unauthenticated",
      at,
      validUntil: at + snapshotMaxAgeMs,
      user: null,
      scope: "",
    };
  }
  return null;
}

const isTime = (n: unknown): n is number => typeof n === "number" && Number.isFinite(n);
const isObject = (o: unknown): o is Record<string, unknown> =>
  typeof o === "object" && o !== null && !Array.isArray(o);

/**
 * Parses a stored snapshot; null when it is missing, corrupt, of another
 * version, for another issuer or client, expired, or from the future.
 */
export function parseSnapshot(raw: string | null, issuer: string, clientId: string, now: number): Snapshot | null {
  if (!raw) return null;
  let s: unknown;
  try {
    s = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!isObject(s)) return null;
  const ok =
    s.v === snapshotVersion &&
    s.issuer === issuer &&
    s.clientId === clientId &&
    isTime(s.at) &&
    isTime(s.validUntil) &&
    s.at <= now + clockSlackMs &&
    now < s.validUntil &&
    (s.expiresAt === undefined || isTime(s.expiresAt)) &&
    (s.authTime === undefined || isTime(s.authTime)) &&
    (s.scope === undefined || typeof s.scope === "string") &&
    ((s.status === "authenticated" && isObject(s.user)) || (s.status === "unauthenticated" && s.user === null));
  return ok ? (s as unknown as Snapshot) : null;
}

/** Web Storage for the snapshot, or null where it cannot be used. */
export function snapshotArea(kind: "local" | "session"): Storage | null {
  try {
    // Reading the property throws where storage is disabled (sandboxed
    // frames, some privacy settings).
    return kind === "local" ? localStorage : sessionStorage;
  } catch {
    return null;
  }
}

/** Reads the snapshot for issuer and clientId; null when there is none usable. */
export function readSnapshot(area: Storage, issuer: string, clientId: string, now = Date.now()): Snapshot | null {
  try {
    return parseSnapshot(area.getItem(snapshotKey(issuer, clientId)), issuer, clientId, now);
  } catch {
    return null;
  }
}

/**
 * Stores s. A logged-out snapshot always replaces what is there, so that no
 * reload after a logout or an expired session starts "authenticated"; a
 * logged-in one never replaces a newer one (a tab that handles the worker's
 * messages late must not undo a logout).
 */
export function writeSnapshot(area: Storage, s: Snapshot): void {
  const key = snapshotKey(s.issuer, s.clientId);
  try {
    if (s.status === "authenticated") {
      const cur = readSnapshot(area, s.issuer, s.clientId);
      if (cur && cur.at > s.at) return;
    }
    area.setItem(key, JSON.stringify(s));
  } catch {
    // Quota or disabled storage: without a snapshot the next load waits
    // for the worker. A stale one must not stay behind.
    try {
      area.removeItem(key);
    } catch {
      // nothing more to do
    }
  }
}
