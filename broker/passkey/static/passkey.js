// Bridgekeeper passkeys: runs navigator.credentials for the forms the
// broker's pages render, and posts the answer back as JSON in the form.
//   form[data-passkey="register"]: the account page's "Create passkey".
//   form[data-passkey="login"]:    the login page's "Sign in with a passkey",
//                                  the account page's "Make new codes with a passkey",
//                                  and the e-mail field's autofill
//                                  (conditional mediation) where offered
//                                  and the form has data-conditional.
// The options are the server's (data-options); nothing else is sent.
(function () {
  "use strict";
  function dec(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var b = atob(s), out = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
    return out.buffer;
  }
  function enc(buf) {
    var bytes = new Uint8Array(buf), s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = dec(pk.challenge);
    pk.user.id = dec(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = dec(c.id); });
    return pk;
  }
  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = dec(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = dec(c.id); });
    return pk;
  }
  function credentialJSON(c) {
    var r = c.response, out = {
      id: c.id, rawId: enc(c.rawId), type: c.type,
      authenticatorAttachment: c.authenticatorAttachment || undefined,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: { clientDataJSON: enc(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = enc(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = enc(r.authenticatorData);
      out.response.signature = enc(r.signature);
      if (r.userHandle) out.response.userHandle = enc(r.userHandle);
    }
    return JSON.stringify(out);
  }
  function say(form, text) {
    var p = form.querySelector("[data-passkey-status]");
    if (p) { p.textContent = text; p.hidden = false; }
  }
  function submit(form, cred) {
    form.querySelector("input[name=response]").value = credentialJSON(cred);
    form.submit();
  }
  var unsupported = "This browser cannot use passkeys.";
  var cancelled = "No passkey was used. Try again, or use your password.";

  document.querySelectorAll("form[data-passkey=register]").forEach(function (form) {
    var button = form.querySelector("button[data-passkey-start]");
    if (!window.PublicKeyCredential) { say(form, unsupported); if (button) button.disabled = true; return; }
    button.addEventListener("click", function () {
      var opts = creationOptions(JSON.parse(form.dataset.options));
      navigator.credentials.create({ publicKey: opts }).then(function (cred) { submit(form, cred); },
        function (e) { say(form, "The passkey was not created (" + e.name + "). Try again."); });
    });
  });

  document.querySelectorAll("form[data-passkey=login]").forEach(function (form) {
    var button = form.querySelector("button[data-passkey-start]");
    if (!window.PublicKeyCredential) { say(form, unsupported); if (button) button.disabled = true; return; }
    var pending = null;
    function get(mediation) {
      if (pending) pending.abort();
      pending = new AbortController();
      var req = { publicKey: requestOptions(JSON.parse(form.dataset.options)), signal: pending.signal };
      if (mediation) req.mediation = mediation;
      return navigator.credentials.get(req).then(function (cred) { if (cred) submit(form, cred); });
    }
    button.addEventListener("click", function () {
      get(null).catch(function (e) { if (e.name !== "AbortError") say(form, cancelled); });
    });
    // Autofill offers the passkeys; not again on a page that shows why
    // the last one was refused (the user chooses what to do next).
    if (form.hasAttribute("data-conditional") && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (ok) get("conditional").catch(function () {});
      });
    }
  });
})();
