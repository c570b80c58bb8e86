// A page using oidc-client-ts (its browser build, the global `oidc`) with
// DPoP against the broker named in the query of the first load (kept in
// sessionStorage across the login redirect). Driven by flow.mjs.
const params = new URLSearchParams(location.search);
if (params.get("issuer")) sessionStorage.setItem("issuer", params.get("issuer"));
if (params.get("client")) sessionStorage.setItem("client", params.get("client"));

const mgr = new oidc.UserManager({
  authority: sessionStorage.getItem("issuer"),
  client_id: sessionStorage.getItem("client"),
  redirect_uri: location.origin + "/callback",
  post_logout_redirect_uri: location.origin + "/",
  response_type: "code",
  scope: "openid profile email offline_access",
  // The library's DPoP: a non-extractable key in its own IndexedDB
  // database, a proof on every token request, the code bound to the key.
  dpop: { bind_authorization_code: true, store: new oidc.IndexedDbDPoPStore() },
});
window.mgr = mgr;

/** Calls url with the user's access token and a proof; once more with the server's nonce when it asks. */
window.callWithDPoP = async (url) => {
  const user = await mgr.getUser();
  const send = async (nonce) =>
    fetch(url, {
      headers: { Authorization: "DPoP " + user.access_token, DPoP: await mgr.dpopProof(url, user, "GET", nonce) },
    });
  let r = await send();
  const nonce = r.headers.get("DPoP-Nonce");
  if (r.status === 401 && nonce) r = await send(nonce);
  return { status: r.status, body: await r.text() };
};

const status = document.getElementById("status");
if (location.pathname === "/callback") {
  try {
    await mgr.signinCallback();
    history.replaceState(null, "", "/");
    status.textContent = "signed-in";
  } catch (e) {
    status.textContent = "error: " + e.message;
  }
} else {
  status.textContent = (await mgr.getUser()) ? "signed-in" : "signed-out";
}
