// Stores the Go core keeps its session in (oidc.Store through
// jsbridge.HostStore). Values are JSON strings holding tokens.

export interface HostStore {
  load(key: string): Promise<string | null>;
  save(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
}

/** Keeps values in the worker's memory: gone when the worker ends. */
export class MemoryStore implements HostStore {
  private m = new Map<string, string>();
  async load(key: string) {
    return this.m.get(key) ?? null;
  }
  async save(key: string, value: string) {
    this.m.set(key, value);
  }
  async delete(key: string) {
    this.m.delete(key);
  }
}

const DB = "bridgekeeper";
const KV = "kv";

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

let dbPromise: Promise<IDBDatabase> | null = null;
function openDB(): Promise<IDBDatabase> {
  dbPromise ??= new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(KV);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  return dbPromise;
}

/** Runs one request; a write resolves only once its transaction committed. */
async function idb<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await openDB();
  const tx = db.transaction(KV, mode, { durability: "strict" });
  const result = req(fn(tx.objectStore(KV)));
  if (mode === "readonly") return result;
  await new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
  });
  return result;
}

/**
 * The AES-GCM key that encrypts stored values. It is generated
 * non-extractable inside WebCrypto and kept in IndexedDB as a CryptoKey
 * object: nobody can read its bytes, so a copy of the profile's files holds
 * no usable token. Any script of the origin (an XSS too) can still open the
 * database and use the key; see SECURITY.md, "Known gaps".
 */
const keys = new Map<string, Promise<CryptoKey>>();
export function storageKey(name: string): Promise<CryptoKey> {
  let key = keys.get(name);
  if (key) return key;
  key = (async () => {
    const id = "key:" + name;
    const existing = (await idb("readonly", (s) => s.get(id))) as CryptoKey | undefined;
    if (existing) return existing;
    const fresh = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    // Another tab may have raced us: keep whichever landed first.
    await idb("readwrite", (s) => s.add(fresh, id)).catch(() => undefined);
    return (await idb("readonly", (s) => s.get(id))) as CryptoKey;
  })();
  keys.set(name, key);
  key.catch(() => {
    if (keys.get(name) === key) keys.delete(name);
  });
  return key;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Encrypts value; the slot name is bound in as additional data. */
async function seal(name: string, slot: string, value: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: enc.encode(name + "/" + slot) },
    await storageKey(name),
    enc.encode(value),
  );
  return b64(iv) + "." + b64(new Uint8Array(ct));
}

/** Decrypts a sealed value; null when it cannot be (other key, tampered). */
async function open(name: string, slot: string, sealed: string): Promise<string | null> {
  try {
    const [iv, ct] = sealed.split(".");
    const pt = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: unb64(iv), additionalData: enc.encode(name + "/" + slot) },
      await storageKey(name),
      unb64(ct),
    );
    return dec.decode(pt);
  } catch {
    return null;
  }
}

/** IndexedDB, values encrypted under the non-extractable key. */
export class EncryptedIDBStore implements HostStore {
  constructor(private name: string) {}
  async load(key: string) {
    const sealed = (await idb("readonly", (s) => s.get(this.name + "/" + key))) as string | undefined;
    return sealed ? open(this.name, key, sealed) : null;
  }
  async save(key: string, value: string) {
    const sealed = await seal(this.name, key, value);
    await idb("readwrite", (s) => s.put(sealed, this.name + "/" + key));
  }
  async delete(key: string) {
    await idb("readwrite", (s) => s.delete(this.name + "/" + key));
  }
}

/**
 * "session" mode: the encrypted values live in the tab's sessionStorage
 * (kept by the page, which sees only ciphertext); the key stays in
 * IndexedDB, non-extractable.
 */
export class SessionMirrorStore implements HostStore {
  private m: Map<string, string>;
  constructor(
    private name: string,
    initial: Record<string, string>,
    private persist: (key: string, sealed: string | null) => void,
  ) {
    this.m = new Map(Object.entries(initial));
  }
  async load(key: string) {
    const sealed = this.m.get(key);
    return sealed ? open(this.name, key, sealed) : null;
  }
  async save(key: string, value: string) {
    const sealed = await seal(this.name, key, value);
    this.m.set(key, sealed);
    this.persist(key, sealed);
  }
  async delete(key: string) {
    this.m.delete(key);
    this.persist(key, null);
  }
}

/**
 * The DPoP key (RFC 9449) as the Go core uses it (jsbridge.HostProofKey):
 * an ECDSA P-256 key pair generated with extractable: false, so its private
 * half can sign but never be read, by the worker or by anyone else. It is
 * kept in IndexedDB (one per issuer and client) and survives reloads. Any
 * script of the origin can open the database and sign with the stored key
 * while a page is open (see SECURITY.md); none can copy it out.
 */
export class ProofKey {
  private cached: Promise<{ pair: CryptoKeyPair; jwk: JsonWebKey }> | null = null;
  constructor(private name: string) {}

  private static generate(): Promise<CryptoKeyPair> {
    return crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  }

  private static async withJwk(pair: CryptoKeyPair) {
    // The public half of a pair is always exportable; only it is.
    const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", pair.publicKey);
    return { pair, jwk: { kty, crv, x, y } };
  }

  private load() {
    const p = (this.cached ??= (async () => {
      const id = "dpop:" + this.name;
      let pair = (await idb("readonly", (s) => s.get(id))) as CryptoKeyPair | undefined;
      if (!pair) {
        // Another tab may have raced us: keep whichever landed first.
        const fresh = await ProofKey.generate();
        await idb("readwrite", (s) => s.add(fresh, id)).catch(() => undefined);
        pair = (await idb("readonly", (s) => s.get(id))) as CryptoKeyPair;
      }
      return ProofKey.withJwk(pair);
    })());
    p.catch(() => {
      if (this.cached === p) this.cached = null;
    });
    return p;
  }

  async publicJwk(): Promise<JsonWebKey> {
    return (await this.load()).jwk;
  }

  async sign(data: Uint8Array<ArrayBuffer>): Promise<ArrayBuffer> {
    return crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, (await this.load()).pair.privateKey, data);
  }

  /** Replaces the key pair (at logout): what the old one signed is of no more use. */
  async rotate(): Promise<void> {
    const pair = await ProofKey.generate();
    await idb("readwrite", (s) => s.put(pair, "dpop:" + this.name));
    this.cached = ProofKey.withJwk(pair);
    await this.cached;
  }

  /** Drops the copy in memory: another worker may have rotated the stored key. */
  forget(): void {
    this.cached = null;
  }
}
