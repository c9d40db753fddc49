// A device-addition link: registers a passkey on this device for the link's account
// (no session needed), then points to the sign-in page. Talks to the link's JSON steps;
// binary fields travel as base64url.
"use strict";
(function () {
  const box = document.querySelector("[data-device-link]");
  if (!box) return;
  const done = document.querySelector("[data-device-link-done]");
  const error = box.querySelector("[data-device-link-error]");
  const button = box.querySelector("[data-device-link-button]");
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
  async function api(method, url, body) {
    const r = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await r.json().catch(() => ({}));
    if (!r.ok || json.status !== "OK") throw new Error(json.message || "Request failed (" + r.status + ")");
    return json.data;
  }
  if (!window.PublicKeyCredential) {
    error.textContent = "This browser cannot create passkeys.";
    error.hidden = false;
    button.disabled = true;
    return;
  }
  button.addEventListener("click", async () => {
    error.hidden = true;
    button.disabled = true;
    try {
      const data = await api("PUT", box.dataset.begin);
      const pk = data.publicKey;
      pk.challenge = b64.decode(pk.challenge);
      pk.user.id = b64.decode(pk.user.id);
      (pk.excludeCredentials || []).forEach((c) => (c.id = b64.decode(c.id)));
      const cred = await navigator.credentials.create({ publicKey: pk });
      const r = cred.response;
      await api("POST", box.dataset.finish, {
        id: cred.id, rawId: b64.encode(cred.rawId), type: cred.type,
        response: {
          attestationObject: b64.encode(r.attestationObject), clientDataJSON: b64.encode(r.clientDataJSON),
          transports: r.getTransports ? r.getTransports() : [],
        },
        extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      });
      box.hidden = true;
      done.hidden = false;
    } catch (e) {
      error.textContent = e && e.message ? e.message : String(e);
      error.hidden = false;
      button.disabled = false;
    }
  });
})();
