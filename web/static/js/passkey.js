// WebAuthn ceremonies for the portal: passkey sign-in (button and autofill), a security
// key as second factor, registering a passkey, and adding one through a device-addition
// link (no session needed). Talks to the JSON API; binary fields travel as base64url.
"use strict";
(function () {
  const base = document.documentElement.dataset.base || "";
  const b64 = {
    decode(s) {
      const pad = "=".repeat((4 - (s.length % 4)) % 4);
      const bin = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
      return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
    },
    encode(buf) {
      let bin = "";
      new Uint8Array(buf).forEach((b) => (bin += String.fromCharCode(b)));
      return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
  };
  async function api(method, path, body) {
    const r = await fetch(base + path, {
      method,
      credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await r.json().catch(() => ({}));
    if (!r.ok || json.status !== "OK") throw new Error(json.message || "Request failed (" + r.status + ")");
    return json.data;
  }
  function requestOptions(data) {
    const pk = data.publicKey;
    pk.challenge = b64.decode(pk.challenge);
    (pk.allowCredentials || []).forEach((c) => (c.id = b64.decode(c.id)));
    return { publicKey: pk, mediation: data.mediation };
  }
  function assertionJSON(cred) {
    const r = cred.response;
    return {
      id: cred.id, rawId: b64.encode(cred.rawId), type: cred.type,
      response: {
        authenticatorData: b64.encode(r.authenticatorData), clientDataJSON: b64.encode(r.clientDataJSON),
        signature: b64.encode(r.signature), userHandle: r.userHandle ? b64.encode(r.userHandle) : null,
      },
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    };
  }
  function creationOptions(data) {
    const pk = data.publicKey;
    pk.challenge = b64.decode(pk.challenge);
    pk.user.id = b64.decode(pk.user.id);
    (pk.excludeCredentials || []).forEach((c) => (c.id = b64.decode(c.id)));
    return { publicKey: pk };
  }
  function attestationJSON(cred) {
    const r = cred.response;
    return {
      id: cred.id, rawId: b64.encode(cred.rawId), type: cred.type,
      response: {
        attestationObject: b64.encode(r.attestationObject), clientDataJSON: b64.encode(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : [],
      },
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    };
  }
  function showError(box, e) {
    if (!box) return;
    box.textContent = e && e.message ? e.message : String(e);
    box.hidden = false;
  }
  function go(data) {
    window.location.assign(data && data.redirect ? data.redirect : base + "/profile");
  }

  // Passwordless sign-in: autofill (conditional UI) when available, and a button.
  const login = document.querySelector("[data-passkey-login]");
  if (login && window.PublicKeyCredential) {
    login.hidden = false;
    const error = login.querySelector("[data-passkey-error]");
    const body = (cred) => ({ response: assertionJSON(cred), targetURL: login.dataset.rd, requestMethod: login.dataset.rm });
    let pending = null;
    const start = async (conditional) => {
      if (pending) pending.abort();
      pending = new AbortController();
      const options = requestOptions(await api("GET", "/api/firstfactor/passkey"));
      if (!conditional) delete options.mediation;
      options.signal = pending.signal;
      const cred = await navigator.credentials.get(options);
      if (cred) go(await api("POST", "/api/firstfactor/passkey", body(cred)));
    };
    login.querySelector("[data-passkey-button]").addEventListener("click", () => start(false).catch((e) => showError(error, e)));
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then((ok) => {
        if (ok) start(true).catch(() => {});
      });
    }
  }

  // A security key as second factor.
  const second = document.querySelector("[data-webauthn-2fa]");
  if (second) {
    const error = second.querySelector("[data-webauthn-error]");
    second.querySelector("[data-webauthn-button]").addEventListener("click", async () => {
      try {
        const cred = await navigator.credentials.get(requestOptions(await api("GET", "/api/secondfactor/webauthn")));
        go(await api("POST", "/api/secondfactor/webauthn", { response: assertionJSON(cred), targetURL: second.dataset.rd }));
      } catch (e) {
        showError(error, e);
      }
    });
  }

  // Registering a passkey (or a security key).
  const register = document.querySelector("[data-passkey-register]");
  if (register) {
    const error = register.querySelector("[data-passkey-error]");
    register.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      try {
        const description = register.querySelector("[name=description]").value;
        const data = await api("PUT", "/api/secondfactor/webauthn/credential/register", { description, passkey: true });
        const cred = await navigator.credentials.create(creationOptions(data));
        await api("POST", "/api/secondfactor/webauthn/credential/register", attestationJSON(cred));
        window.location.assign(base + "/profile");
      } catch (e) {
        showError(error, e);
      }
    });
  }

  // A device-addition link: a passkey for the link's account on this device, then on to
  // the sign-in page.
  const link = document.querySelector("[data-device-link]");
  if (link) {
    const done = document.querySelector("[data-device-link-done]");
    const error = link.querySelector("[data-device-link-error]");
    const button = link.querySelector("[data-device-link-button]");
    if (!window.PublicKeyCredential) {
      showError(error, new Error("This browser cannot create passkeys."));
      button.disabled = true;
      return;
    }
    button.addEventListener("click", async () => {
      error.hidden = true;
      button.disabled = true;
      try {
        const cred = await navigator.credentials.create(creationOptions(await api("PUT", link.dataset.begin)));
        await api("POST", link.dataset.finish, attestationJSON(cred));
        link.hidden = true;
        done.hidden = false;
      } catch (e) {
        showError(error, e);
        button.disabled = false;
      }
    });
  }
})();
