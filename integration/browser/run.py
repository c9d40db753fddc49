#!/usr/bin/env python3
"""The portal in a real browser: Debian's Chromium driven by Playwright, behind the NGINX
example (TLS, real host names mapped to 127.0.0.1), with Redis sessions and mail delivered
to a local SMTP capture.

Flows: protected URL → portal → login → TOTP enrollment (elevated by an emailed code) →
logout → password + TOTP → the target; a recovery code works once; passkey registration
and passwordless login with Chromium's virtual authenticator; forgot password by the
mailed link (the old password is refused afterwards); CSRF and open-redirect refusals.
The admin console: an administrator signs in with two factors, creates a user, disables
and re-enables them (the proxy refuses the disabled user's next request), revokes their
sessions, lifts an address's ban, and finds each of these on the audit page and in its CSV
export. OpenID Connect: a relying party built on Authlib signs mary in through the portal
and its consent page (code + PKCE, ID token checked against the JWKS, UserInfo), then Apache
httpd with mod_auth_openidc lets her in by single sign-on. Then every page is checked with axe-core, screenshotted light and dark at 375 and 1280
pixels wide (layout must not scroll sideways), and the weight of /login is measured.

    integration/browser/run.py [--binary PATH] [--artifacts DIR]
"""
import argparse
import base64
import email
import email.policy
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("proxies", os.path.join(ROOT, "integration", "proxies", "run.py"))
proxies = importlib.util.module_from_spec(spec)
spec.loader.exec_module(proxies)

from playwright.sync_api import sync_playwright  # noqa: E402

sys.path.insert(0, HERE)
import oidc_rp  # noqa: E402

PASSWORD = proxies.PASSWORD
NEW_PASSWORD = "a-brand-new-password-42"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AXE = os.path.join(HERE, "node_modules", "axe-core", "axe.min.js")
WEIGHT_BUDGET = 30 * 1024
ADMIN_PAGE_BUDGET = 50 * 1024
KIM_PASSWORD = "kim-starts-here-42"


def pbkdf2_sha512(secret, rounds=310000):
    """A client secret hashed as Authelia's documentation shows ($pbkdf2-sha512$...)."""
    import hashlib

    salt = os.urandom(16)
    ab64 = lambda b: base64.b64encode(b).decode().rstrip("=").replace("+", ".")  # noqa: E731
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, rounds)
    return f"$pbkdf2-sha512${rounds}${ab64(salt)}${ab64(digest)}"


AUTHLIB_SECRET = "authlib-demo-client-secret-42"
APACHE_SECRET = "apache-demo-client-secret-42"
UPSTREAM_SECRET = "upstream-client-secret-for-the-browser-suite-42"


class PortalStack(proxies.Stack):
    """The NGINX example with passkey login on, mail going to an SMTP capture, and the
    OpenID Connect provider with two relying parties (Authlib, Apache mod_auth_openidc)."""

    def __init__(self, binary, work, smtp_port):
        super().__init__("nginx", binary, work)
        self.smtp_port = smtp_port
        for name in ("rp", "apache", "connect", "upstream"):
            self.ports[name] = proxies.free_port()

    def copy_example(self):
        super().copy_example()
        path = os.path.join(self.dir, "configuration.yml")
        with open(path) as f:
            text = f.read()
        text = re.sub(
            r"notifier:\n(  .*\n|  #.*\n)+",
            "notifier:\n  smtp:\n    address: 'smtp://127.0.0.1:%d'\n    sender: 'Portcullis <auth@example.com>'\n"
            % self.smtp_port,
            text,
        )
        text += "\nwebauthn:\n  enable_passkey_login: true\n"
        # Addresses are banned too, so that the admin console has one to lift.
        text += "\nregulation:\n  modes: ['user', 'ip']\n"
        # The OpenID Connect provider, with clients set up as their own documentation says.
        text += f"""
identity_providers:
  oidc:
    hmac_secret: 'a-long-random-hmac-secret-for-the-browser-suite-0123456789'
    clients:
      - client_id: 'authlib'
        client_name: 'Authlib demo'
        client_secret: '{pbkdf2_sha512(AUTHLIB_SECRET)}'
        redirect_uris: ['http://127.0.0.1:{self.ports["rp"]}/callback']
        scopes: ['openid', 'profile', 'email', 'groups']
        authorization_policy: 'one_factor'
        consent_mode: 'explicit'
      - client_id: 'apache'
        client_name: 'Apache mod_auth_openidc'
        client_secret: '{pbkdf2_sha512(APACHE_SECRET)}'
        redirect_uris: ['http://127.0.0.1:{self.ports["apache"]}/protected/redirect_uri']
        scopes: ['openid', 'profile', 'email', 'groups']
        authorization_policy: 'one_factor'
        consent_mode: 'implicit'
"""
        # Sign-in with a second Portcullis as the upstream provider (started by its step).
        text += f"""
upstream_oidc:
  issuer: 'http://localhost:{self.ports["upstream"]}'
  client_id: 'downstream'
  client_secret: '{UPSTREAM_SECRET}'
  display_name: 'Upstream Portcullis'
  link_by_email: true
"""
        with open(path, "w") as f:
            f.write(text)

    def start_upstream(self):
        """A second Portcullis on http://localhost: its provider has this portal as a
        client; mara there has mary's address (and the suite's password)."""
        import yaml

        directory = os.path.join(self.dir, "upstream")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(self.dir, "users.yml")) as f:
            mary = yaml.safe_load(f)["users"]["mary"]
        users = {"users": {"mara": {"displayname": "Mara Upstream", "password": mary["password"],
                                    "email": "mary@example.com", "groups": ["upstream-staff"]}}}
        with open(os.path.join(directory, "users.yml"), "w") as f:
            yaml.safe_dump(users, f)
        port = self.ports["upstream"]
        config = f"""
server:
  address: 'tcp://127.0.0.1:{port}/'
authentication_backend:
  password_reset:
    disable: true
  file:
    path: '{directory}/users.yml'
session:
  secret: 'an-upstream-session-secret-for-the-browser-suite'
  cookies:
    - domain: 'localhost'
      authelia_url: 'http://localhost:{port}/'
storage:
  encryption_key: 'an-upstream-encryption-key-for-the-browser-suite'
  local:
    path: '{directory}/db.sqlite3'
notifier:
  filesystem:
    filename: '{directory}/notifications.txt'
access_control:
  default_policy: 'one_factor'
identity_providers:
  oidc:
    hmac_secret: 'an-upstream-hmac-secret-for-the-browser-suite-0123456789'
    clients:
      - client_id: 'downstream'
        client_name: 'The downstream portal'
        client_secret: '{pbkdf2_sha512(UPSTREAM_SECRET)}'
        redirect_uris: ['https://auth.example.com:{self.ports["proxy"]}/login/oidc/callback']
        scopes: ['openid', 'profile', 'email', 'groups']
        authorization_policy: 'one_factor'
        consent_mode: 'implicit'
"""
        with open(os.path.join(directory, "configuration.yml"), "w") as f:
            f.write(config)
        proc = self.spawn("portcullis-upstream", [self.binary, "--config", os.path.join(directory, "configuration.yml")])
        proxies.wait_port(port, proc, "the upstream Portcullis")
        return proc


class Mailbox:
    def __init__(self, port, directory):
        self.dir = directory
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "integration", "smtp_capture.py"), "--port", str(port), "--dir", directory],
            stdout=subprocess.PIPE,
        )
        line = self.proc.stdout.readline().decode().strip()
        if line != "ready":
            raise RuntimeError("the SMTP capture did not start (is aiosmtpd installed?)")

    def count(self):
        return len([n for n in os.listdir(self.dir) if n.endswith(".eml")])

    def wait_text(self, n, timeout=15):
        """The plain-text body of message number n (1-based), waiting for it."""
        path = os.path.join(self.dir, f"{n}.eml")
        deadline = time.time() + timeout
        while not os.path.exists(path):
            if time.time() > deadline:
                raise AssertionError(f"mail {n} did not arrive")
            time.sleep(0.05)
        with open(path, "rb") as f:
            message = email.message_from_binary_file(f, policy=email.policy.default)
        return message.get_body(preferencelist=("plain",)).get_content()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=5)


def code_in(text):
    match = re.search(r"^\s+([A-Z0-9]{6,20})\s*$", text, re.M)
    if not match:
        raise AssertionError(f"no code in mail:\n{text}")
    return match.group(1)


def spki_hash(cert):
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey", "-noout"], capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, capture_output=True, check=True).stdout
    import hashlib

    return base64.b64encode(hashlib.sha256(der).digest()).decode()


class Run:
    def __init__(self, browser, stack, mailbox, artifacts):
        self.browser = browser
        self.stack = stack
        self.mail = mailbox
        self.artifacts = artifacts
        self.port = stack.ports["proxy"]
        self.results = []
        self.pages = {}
        self.admin_pages = {}
        self.admin = None
        self.page = None
        self.only = ""

    def url(self, host, path="/"):
        return f"https://{host}.example.com:{self.port}{path}"

    def new_page(self):
        context = self.browser.new_context()
        return context.new_page()

    def step(self, name, fn):
        if self.only and not name.startswith(self.only):
            return
        try:
            fn()
            self.results.append((name, None))
        except Exception as e:  # noqa: BLE001 - report every flow
            import traceback
            where = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.endswith("run.py")][-1]
            url = self.page.url if self.page else "?"
            alert = ""
            if self.page:
                try:
                    alert = " | ".join(self.page.locator(".alert").all_inner_texts())
                    self.page.screenshot(path=os.path.join(self.artifacts, f"failure-{len(self.results)}.png"))
                except Exception:  # noqa: BLE001
                    pass
            self.results.append((name, f"{type(e).__name__} at line {where.lineno} on {url} [{alert}]: {e}"))

    def remember(self, name, page):
        """Keeps a page's URL (and its cookies) for the screenshot pass."""
        self.pages[name] = page.url

    def login(self, page, password=PASSWORD, username="john"):
        page.fill("#username", username)
        page.fill("#password", password)
        submit(page)

    def elevate(self, page):
        expect("/profile/elevate" in page.url, f"expected the elevation page, at {page.url}")
        self.remember("elevate", page)
        before = self.mail.count()
        submit(page)
        code = code_in(self.mail.wait_text(before + 1))
        page.fill("#otc", code)
        submit(page, "form:first-of-type button[type=submit]")

    def logout(self, page):
        page.goto(self.url("auth", "/logout"))
        self.remember("logout", page)
        submit(page)
        expect(page.locator(".alert.notice").count() == 1, "signed out notice")

    # ------------------------------------------------------------ flows

    def run(self):
        page = self.new_page()
        self.page = page
        state = {}

        def enrollment_and_totp_login():
            page.goto(self.url("secure", "/area?x=1"))
            expect("/login" in page.url and "rd=" in page.url, f"redirected to the portal: {page.url}")
            self.remember("login", page)
            self.login(page)
            expect(page.locator("h1").inner_text() == "Second factor", f"second factor page: {page.url}")
            self.remember("second-factor-none", page)
            page.click("text=Set up a second factor")
            self.remember("profile", page)
            page.click("a[href$='/profile/totp/enroll']")
            self.elevate(page)
            expect("/profile/totp/enroll" in page.url, f"enrollment page: {page.url}")
            self.remember("totp-enroll", page)
            secret = page.locator("code.secret").inner_text().strip()
            state["secret"] = secret
            page.fill("#code", proxies.totp_code(secret, time.time()))
            submit(page)
            codes = [c.strip() for c in page.locator("ul.codes code").all_inner_texts()]
            expect(len(codes) == 10, f"ten recovery codes, got {codes}")
            state["codes"] = codes
            page.screenshot(path=os.path.join(self.artifacts, "recovery-codes-shown-once.png"), full_page=True)
            self.logout(page)
            page.goto(self.url("secure", "/area?x=1"))
            self.login(page)
            expect("/login/totp" in page.url, f"TOTP page: {page.url}")
            self.remember("login-totp", page)
            page.fill("#code", proxies.totp_code(secret, time.time() + 30))
            submit(page)
            expect(page.url == self.url("secure", "/area?x=1"), f"landed on the target: {page.url}")
            expect('"remote-user": "john"' in page.content(), "the app saw john")
        self.step("1 protected URL → login → TOTP enrollment → logout → password + TOTP → target",
                  enrollment_and_totp_login)

        def recovery_code():
            self.logout(page)
            page.goto(self.url("secure", "/"))
            self.login(page)
            submit(page, "text=Use a recovery code")
            self.remember("login-recovery", page)
            page.fill("#code", state["codes"][0])
            submit(page)
            expect(page.url == self.url("secure", "/"), f"recovery code accepted: {page.url}")
            self.logout(page)
            page.goto(self.url("secure", "/"))
            self.login(page)
            submit(page, "text=Use a recovery code")
            page.fill("#code", state["codes"][0])
            submit(page)
            expect("/login/totp/recovery" in page.url, f"stays on the page: {page.url}")
            expect(page.locator(".alert.error:visible").count() == 1, "inline error for a burned code")
        self.step("2 a recovery code works once", recovery_code)

        def passkey():
            cdp = page.context.new_cdp_session(page)
            cdp.send("WebAuthn.enable")
            authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
                "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True,
            }})["authenticatorId"]
            page.goto(self.url("auth", "/login/totp"))
            page.fill("#code", proxies.totp_code(state["secret"], time.time() + 60))
            submit(page)
            page.goto(self.url("auth", "/register/passkey"))
            self.elevate(page)
            expect("/register/passkey" in page.url, f"registration page: {page.url}")
            self.remember("register-passkey", page)
            page.fill("#description", "Laptop")
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/profile$"), timeout=15000)
            expect(page.locator("input[value='Laptop']").count() == 1, "the passkey is listed")
            creds = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
            expect(any(c.get("isResidentCredential") for c in creds["credentials"]), "a discoverable credential")
            self.logout(page)
            page.goto(self.url("auth", "/login"))
            # The virtual authenticator may already answer the autofill (conditional UI)
            # request the page starts; otherwise the button does it.
            try:
                page.click("[data-passkey-button]", timeout=3000)
            except Exception:  # noqa: BLE001 - the page may have navigated already
                pass
            page.wait_for_url(re.compile(r".*/profile$"), timeout=15000)
            expect("john" in page.locator("main").inner_text(), "signed in as john without a password")
            # Later flows type passwords: without the authenticator, autofill cannot sign in.
            cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})
        self.step("3 passkey registration and passwordless login (virtual authenticator)", passkey)

        def forgot_password():
            self.logout(page)
            page.goto(self.url("auth", "/forgot-password"))
            self.remember("forgot-password", page)
            before = self.mail.count()
            page.fill("#username", "john")
            submit(page)
            expect(page.locator(".alert.notice").count() == 1, "sent notice")
            text = self.mail.wait_text(before + 1)
            link = re.search(r"https://\S+reset-password/step2\?token=\S+", text).group(0)
            page.goto(link)
            self.remember("reset-password", page)
            page.fill("#password", NEW_PASSWORD)
            page.fill("#password_repeat", NEW_PASSWORD)
            submit(page)
            expect(page.locator(".alert.notice").count() == 1, f"password changed: {page.content()[:400]}")
            page.goto(self.url("auth", "/login"))
            self.login(page)
            expect(page.locator(".alert.error:visible").count() == 1, "the old password is refused")
            self.login(page, NEW_PASSWORD)
            expect("/login" not in page.url or "/login/" in page.url, f"the new password works: {page.url}")
        self.step("4 forgot password → mailed link → new password; the old one is refused", forgot_password)

        def csrf_and_redirect():
            other = self.new_page()
            other.goto(self.url("auth", "/login"))
            status = other.evaluate("""async () => (await fetch('/login', {method: 'POST', redirect: 'manual',
                body: new URLSearchParams({username: 'john', password: 'x'})})).status""")
            expect(status == 403, f"a post without token: {status}")
            token = other.locator("input[name=csrf]").get_attribute("value")
            # The same form, with a valid token, posted from a page of another origin.
            foreign = self.new_page()
            foreign.set_content(
                f'<form method="post" action="{self.url("auth", "/login")}">'
                f'<input name="csrf" value="{token}"><input name="username" value="john">'
                f'<input name="password" value="{NEW_PASSWORD}"><button>go</button></form>')
            with foreign.expect_navigation():
                foreign.click("button")
            expect("expired" in foreign.content(), f"a post from another origin is refused: {foreign.url}")
            other.goto(self.url("auth", "/login?rd=" + urllib.parse.quote("https://evil.example/", safe="")))
            expect(other.locator("input[name=rd]").get_attribute("value") == "", "rd dropped")
            self.login(other, NEW_PASSWORD)
            if "/login/totp" in other.url:
                other.fill("#code", proxies.totp_code(state["secret"], time.time() - 30))
                submit(other)
            host = urllib.parse.urlsplit(other.url).hostname
            expect(host and host.endswith(".example.com"), f"stayed on our domains: {other.url}")
        self.step("5 CSRF: no token or a foreign origin is refused; rd=https://evil.example is ignored",
                  csrf_and_redirect)

        self.step("6 admin console: two factors, create, disable (proxy refuses), enable, revoke, unban, audit + CSV",
                  lambda: self.admin_console(state))
        self.step(f"7 OpenID Connect: Authlib {oidc_rp.AUTHLIB_VERSION} relying party (code + PKCE, consent, ID token, "
                  "UserInfo), then Apache mod_auth_openidc with single sign-on", self.openid_connect)
        self.step("8 upstream sign-in: the portal's button, a second Portcullis signs mara in, she is mary "
                  "here (linked by address) and reaches app.example.com through NGINX", self.upstream_sign_in)
        self.step("9 device-addition link: john makes a link, a second browser with its own authenticator "
                  "opens it, adds a passkey, then signs in with it (no password) and reaches app.example.com",
                  lambda: self.device_link(page, state))
        self.step("accessibility (axe-core), screenshots light/dark at 375/1280, layout", lambda: self.pages_pass(page))
        self.step(f"page weight of /login under {WEIGHT_BUDGET // 1024} KB", lambda: self.weight(page))

    def device_link(self, page, state):
        # John, in the main browser, signed in (by password when earlier steps did not).
        page.goto(self.url("auth", "/login"))
        if page.locator("#username").count():
            self.login(page)
        if "/login/totp" in page.url and "secret" in state:
            page.fill("#code", proxies.totp_code(state["secret"], time.time() + 90))
            submit(page)
        # From the portal's own page, as its script would (the page's origin, its cookies).
        if not page.url.startswith(self.url("auth", "/")):
            page.goto(self.url("auth", "/profile"))
        r = page.evaluate("""async () => {
            const r = await fetch("/auth/api/create-link", {
                method: "POST", credentials: "same-origin",
                headers: {"Content-Type": "application/json"}, body: "{}",
            });
            return {status: r.status, body: await r.json()};
        }""")
        expect(r["status"] == 200, f"create-link answered {r['status']}: {r['body']}")
        link = r["body"]["data"]
        token = link["token"]
        expect(re.fullmatch(r"pdl_[A-Za-z0-9]{32}", token) is not None, f"token format: {token}")
        expect(link["url"].endswith(f"/auth/{token}"), f"link URL: {link['url']}")

        # Another device: its own browser context (no session) and its own authenticator.
        other = self.browser.new_context()
        device = other.new_page()
        cdp = other.new_cdp_session(device)
        cdp.send("WebAuthn.enable")
        authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
            "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True,
        }})["authenticatorId"]
        try:
            device.goto(self.url("auth", f"/auth/{token}"))
            expect("John Doe" in device.locator("h1").inner_text(), f"the link names john: {device.url}")
            device.click("[data-device-link-button]")
            device.wait_for_selector("[data-device-link-done]:not([hidden])", timeout=15000)
            expect("sign in with it" in device.locator("main").inner_text(), "the passkey-added notice")
            creds = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
            expect(any(c.get("isResidentCredential") for c in creds["credentials"]), "a discoverable credential")
            expect(not any(c["name"] == "authelia_session" for c in other.cookies()), "the link signs nobody in")

            # The link is used: opening it again is a 404 page.
            again = device.goto(self.url("auth", f"/auth/{token}"))
            expect(again.status == 404, f"a used link answers {again.status}")

            # The new device signs in with the passkey alone and reaches the app.
            device.goto(self.url("app", "/"))
            expect("/login" in device.url, f"redirected to the portal: {device.url}")
            try:
                device.click("[data-passkey-button]", timeout=3000)
            except Exception:  # noqa: BLE001 - autofill may have signed in already
                pass
            device.wait_for_url(re.compile(r"https://app\.example\.com:\d+/.*"), timeout=15000)
            expect('"remote-user": "john"' in device.content(), "the app saw john")

            # John's list of credentials shows the new passkey.
            listed = page.evaluate("""async () => (await (await fetch(
                "/api/secondfactor/webauthn/credentials", {credentials: "same-origin"})).json()).data""")
            expect(any(c["description"].startswith("Passkey added with a link") for c in listed),
                   f"john sees the new passkey: {listed}")
        finally:
            other.close()

    def openid_connect(self):
        """mary signs in to the Authlib relying party through the portal and its consent page,
        then reaches the Apache site protected by mod_auth_openidc without signing in again."""
        stack = self.stack
        issuer = self.url("auth", "").rstrip("/")
        ca = os.path.join(stack.dir, "tls", "cert.pem")
        # The relying parties reach the provider as the browser does (through a tunnel to
        # the local TLS port), verifying its certificate.
        for d in (os.path.dirname(stack.dir), stack.dir, os.path.join(stack.dir, "tls")):
            os.chmod(d, 0o755)
        os.chmod(ca, 0o644)
        proxy = oidc_rp.ConnectProxy(stack.ports["connect"])
        rp = oidc_rp.AuthlibRP(stack.ports["rp"], issuer, "authlib", AUTHLIB_SECRET, ca, stack.ports["connect"])
        apache = None
        previous = self.page
        try:
            page = self.new_page()
            self.page = page
            page.goto(f"http://127.0.0.1:{stack.ports['rp']}/login")
            expect("/login" in page.url and "auth.example.com" in page.url, f"the portal's login: {page.url} {page.content()[:400]}")
            self.login(page, username="mary")
            # The login's answer leaves the form post through a page that goes on by itself.
            page.wait_for_url("**/consent**", timeout=10000)
            expect("/consent" in page.url, f"the consent page: {page.url}")
            expect("Authlib demo" in page.content(), "the consent page names the client")
            for scope_text in ("See your email address", "See your group memberships"):
                expect(scope_text in page.content(), f"the consent page lists '{scope_text}'")
            page.screenshot(path=os.path.join(self.artifacts, "consent.png"))
            # The answer leaves the form post through a page that goes on by itself.
            page.click("button[value=accept]")
            page.wait_for_url(f"http://127.0.0.1:{stack.ports['rp']}/callback*")
            expect(page.url.startswith(f"http://127.0.0.1:{stack.ports['rp']}/callback"), f"back at the RP: {page.url}")
            expect(page.locator("#hello").inner_text() == "Hello mary",
                   f"the RP verified the ID token and read UserInfo: {page.content()[:500]}")
            claims = json.loads(page.locator("#claims").inner_text())
            expect(claims["email"] == "mary@example.com" and claims["groups"] == ["dev"], f"claims {claims}")

            apache = oidc_rp.Apache(os.path.join(stack.dir, "apache"), stack.ports["apache"], issuer, "apache",
                                    APACHE_SECRET, ca, stack.ports["connect"])
            page.goto(f"http://127.0.0.1:{stack.ports['apache']}/protected/")
            expect(page.locator("#protected").count() == 1, f"Apache let mary in after single sign-on: {page.url}")
            page.goto(f"http://127.0.0.1:{stack.ports['apache']}/protected/redirect_uri?info=json")
            info = json.loads(page.locator("body").inner_text())
            expect(info["id_token"]["preferred_username"] == "mary", f"mod_auth_openidc's session: {info}")
            expect(info["userinfo"]["email"] == "mary@example.com", f"mod_auth_openidc's UserInfo: {info}")
            # The console's clients page joins the accessibility and screenshot pass.
            self.admin_pages["admin-clients"] = self.url("auth", "/admin/clients")
            apache_version, module_version = oidc_rp.Apache.versions()
            print(f"relying parties: Authlib {oidc_rp.AUTHLIB_VERSION}; {apache_version} with "
                  f"mod_auth_openidc {module_version}")
        finally:
            self.page = previous
            if apache:
                apache.stop()
            rp.stop()
            proxy.stop()

    def upstream_sign_in(self):
        """mara, a user of another Portcullis with mary's verified address, signs in there
        and comes back as mary, allowed through NGINX; a tampered callback is refused."""
        proc = self.stack.start_upstream()
        previous = self.page
        try:
            page = self.new_page()
            self.page = page
            page.goto(self.url("app", "/upstream-check"))
            expect("/login" in page.url and "rd=" in page.url, f"redirected to the portal: {page.url}")
            button = page.locator("[data-upstream-login]")
            expect(button.inner_text().strip() == "Sign in with Upstream Portcullis", f"the button: {button.inner_text()}")
            button.click()
            page.wait_for_load_state()
            expect(page.url.startswith(f"http://localhost:{self.stack.ports['upstream']}/login"),
                   f"the upstream's login page: {page.url}")
            page.screenshot(path=os.path.join(self.artifacts, "upstream-login.png"))
            # Several hops (the upstream's authorization, the callback, the app): no single
            # navigation to wait for, only where it ends.
            page.fill("#username", "mara")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{self.url('app', '/upstream-check')}*")
            seen = json.loads(page.locator("body").inner_text())["headers"]
            expect(seen.get("remote-user") == "mary", f"the app saw {seen.get('remote-user')}")
            expect(seen.get("remote-email") == "mary@example.com", f"Remote-Email: {seen.get('remote-email')}")

            # A callback whose state is not this browser's: a clear page, no session.
            other = self.new_page()
            other.goto(self.url("auth", "/login/oidc?rd=" + urllib.parse.quote(self.url("app", "/x"))))
            other.wait_for_url(f"http://localhost:{self.stack.ports['upstream']}/**")
            other.goto(self.url("auth", "/login/oidc/callback?code=forged&state=forged"))
            expect("could not be verified" in other.content(), f"the refusal page: {other.content()[:400]}")
            other.screenshot(path=os.path.join(self.artifacts, "upstream-refused.png"))
            other.goto(self.url("app", "/x"))
            expect("/login" in other.url, f"no session from a refused callback: {other.url}")
        finally:
            self.page = previous
            proc.terminate()

    def admin_console(self, state):
        previous = self.page
        admin = self.new_page()
        self.admin = admin
        self.page = admin
        # Signing in for the console asks for the second factor (a recovery code here:
        # the earlier flows used up the nearby TOTP steps).
        admin.goto(self.url("auth", "/admin"))
        expect("/login" in admin.url and "admin" in admin.url, f"sent to sign in: {admin.url}")
        self.login(admin, NEW_PASSWORD)
        expect("/login/totp" in admin.url, f"on to the second factor: {admin.url}")
        submit(admin, "text=Use a recovery code")
        admin.fill("#code", state["codes"][1])
        submit(admin)
        expect(admin.url.startswith(self.url("auth", "/admin/users")), f"in the console: {admin.url}")
        self.admin_pages["admin-users"] = admin.url

        admin.fill("#new-username", "kim")
        admin.fill("#new-display-name", "Kim Lee")
        admin.fill("#new-email", "kim@example.com")
        admin.fill("#new-groups", "dev")
        admin.fill("#new-password", KIM_PASSWORD)
        submit(admin, "section[aria-labelledby=s-create] button[type=submit]")
        expect("/admin/users/kim" in admin.url, f"the new user's page: {admin.url}")
        kim_page = self.url("auth", "/admin/users/kim")
        self.admin_pages["admin-user"] = kim_page

        kim = self.new_page()
        kim.goto(self.url("app", "/kim"))
        self.login(kim, KIM_PASSWORD, "kim")
        expect(kim.url == self.url("app", "/kim"), f"kim reached the app: {kim.url}")
        expect('"remote-user": "kim"' in kim.content(), "the app saw kim")

        def act(label, confirm):
            admin.goto(kim_page)
            submit(admin, f"section[aria-labelledby=s-actions] button:text-is('{label}')")
            if confirm:
                expect("Please confirm" in admin.content(), f"{label}: a confirmation step")
                admin.screenshot(path=os.path.join(self.artifacts, "admin-confirm.png"), full_page=True)
                submit(admin, "button.danger")
            expect(admin.locator(".alert.error").count() == 0, f"{label}: {admin.content()[:300]}")

        act("Disable", True)
        kim.goto(self.url("app", "/kim"))
        expect("/login" in kim.url, f"the disabled user's next request is refused: {kim.url}")
        act("Enable", False)
        self.login(kim, KIM_PASSWORD, "kim")
        expect(kim.url == self.url("app", "/kim"), f"enabled again: {kim.url}")
        act("Sign out everywhere", True)
        kim.goto(self.url("app", "/kim"))
        expect("/login" in kim.url, f"the revoked session is refused: {kim.url}")

        # Three failures from this address ban it: even kim's right password is refused.
        stranger = self.new_page()
        stranger.goto(self.url("auth", "/login"))
        for _ in range(3):
            self.login(stranger, "not-the-password", "mallory")
        self.login(kim, KIM_PASSWORD, "kim")
        expect(kim.url.startswith(self.url("auth", "/login")) and kim.locator(".alert.error:visible").count() == 1,
               f"the banned address is refused: {kim.url}")
        admin.goto(self.url("auth", "/admin/users"))
        ban = admin.locator("form[action$='/admin/bans']:has(input[value='127.0.0.1'])")
        expect(ban.count() == 1, "the address's ban is listed")
        submit(admin, "form[action$='/admin/bans']:has(input[value='127.0.0.1']) button")
        expect(admin.locator("input[name=ip][value='127.0.0.1']").count() == 0, "the ban is lifted")
        kim.goto(self.url("app", "/kim"))
        self.login(kim, KIM_PASSWORD, "kim")
        expect(kim.url == self.url("app", "/kim"), f"kim signs in once the address is unbanned: {kim.url}")

        # Every one of these is on the audit page and in its CSV export.
        wanted = [("kim", "admin.user.created"), ("kim", "authentication"), ("kim", "admin.user.updated"),
                  ("kim", "admin.sessions.revoked"), ("127.0.0.1", "admin.ban.lifted")]
        for who, event in wanted:
            query = urllib.parse.urlencode({"user": who, "event": event})
            admin.goto(self.url("auth", f"/admin/audit?{query}"))
            rows = admin.locator("tbody tr").all_inner_texts()
            expect(any(event in r for r in rows), f"{event} about {who} on the audit page: {rows}")
            status, kind, text = self.download(admin, f"/admin/audit.csv?{query}")
            expect(status == 200 and kind.startswith("text/csv"), f"CSV: {status} {kind}")
            expect(f'"{event}"' in text, f"{event} about {who} in the CSV: {text[:300]}")
        _, _, updates = self.download(admin, "/admin/audit.csv?user=kim&event=admin.user.updated")
        expect(updates.count("admin.user.updated") >= 2, f"disabled and enabled: {updates}")
        self.admin_pages["admin-audit"] = self.url("auth", "/admin/audit")
        self.admin_pages["admin-settings"] = self.url("auth", "/admin/settings")
        for name, url in self.admin_pages.items():
            size = self.weight_of(admin, urllib.parse.urlsplit(url).path, "include")
            print(f"  {name} weighs {size} bytes")
            expect(size < ADMIN_PAGE_BUDGET, f"{name}: {size} bytes")
        self.page = previous

    def pages_pass(self, page):
        problems = []
        # Pages of signed-in users are shown with the last session; the others without one.
        signed_in = self.browser.new_context(bypass_csp=True, storage_state=page.context.storage_state())
        anonymous = self.browser.new_context(bypass_csp=True)
        administrator = self.browser.new_context(
            bypass_csp=True, storage_state=self.admin.context.storage_state()) if self.admin else anonymous
        public = {"login", "forgot-password", "reset-password"}
        for name, url in sorted({**self.pages, **self.admin_pages}.items()):
            context = administrator if name in self.admin_pages else anonymous if name in public else signed_in
            shot = context.new_page()
            for scheme in ("light", "dark"):
                for width in (375, 1280):
                    shot.set_viewport_size({"width": width, "height": 900})
                    shot.emulate_media(color_scheme=scheme)
                    shot.goto(url)
                    shot.wait_for_load_state()
                    shot.screenshot(path=os.path.join(self.artifacts, f"{name}-{scheme}-{width}.png"), full_page=True)
                    overflow = shot.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    if overflow > 0:
                        problems.append(f"{name} {scheme} {width}px scrolls sideways by {overflow}px")
                    if width == 1280:
                        shot.add_script_tag(path=AXE)
                        result = shot.evaluate("axe.run(document, {resultTypes: ['violations']})")
                        for v in result["violations"]:
                            if v["impact"] in ("serious", "critical"):
                                problems.append(f"{name} ({scheme}): {v['id']} {v['help']}")
            shot.close()
        for context in {signed_in, anonymous, administrator}:
            context.close()
        expect(not problems, "; ".join(problems))

    def weight(self, page):
        page.goto(self.url("auth", "/forgot-password"))
        total = self.weight_of(page, "/login", "omit")
        print(f"  /login weighs {total} bytes (HTML + CSS + JS, uncompressed)")
        expect(total < WEIGHT_BUDGET, f"{total} bytes")

    @staticmethod
    def download(page, path):
        """Status, Content-Type and text of a GET from the page's origin with its cookies."""
        return page.evaluate("""async (path) => {
            const r = await fetch(path);
            return [r.status, r.headers.get('content-type') || '', await r.text()];
        }""", path)

    @staticmethod
    def weight_of(page, path, credentials):
        """Bytes of a page's HTML with its stylesheets and scripts (uncompressed), fetched
        from the page's origin."""
        return page.evaluate("""async ([path, credentials]) => {
            const size = async (u) => (await (await fetch(u, {credentials})).arrayBuffer()).byteLength;
            const html = await (await fetch(path, {credentials})).text();
            let total = new TextEncoder().encode(html).length;
            const doc = new DOMParser().parseFromString(html, 'text/html');
            for (const el of doc.querySelectorAll('link[rel=stylesheet], script[src]')) {
                total += await size(el.getAttribute('href') || el.getAttribute('src'));
            }
            return total;
        }""", [path, credentials])


def submit(page, selector="button[type=submit]"):
    """Clicks and waits for the navigation the click causes."""
    with page.expect_navigation():
        page.click(selector)


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "debug", "portcullis"))
    parser.add_argument("--artifacts", default=os.path.join(ROOT, "integration", "artifacts", "browser"))
    parser.add_argument("--only", default="", help="run only the steps whose name starts with this")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    import shutil

    shutil.rmtree(args.artifacts, ignore_errors=True)
    os.makedirs(args.artifacts)
    work = tempfile.mkdtemp(prefix="portcullis-browser-")
    mail_dir = os.path.join(work, "mail")
    os.makedirs(mail_dir)
    smtp_port = proxies.free_port()
    mailbox = Mailbox(smtp_port, mail_dir)
    stack = PortalStack(binary, work, smtp_port)
    failed = 1
    try:
        context = stack.start()
        del context
        spki = spki_hash(os.path.join(stack.dir, "tls", "cert.pem"))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--host-resolver-rules=MAP *.example.com 127.0.0.1",
                f"--ignore-certificate-errors-spki-list={spki}",
            ])
            run = Run(browser, stack, mailbox, args.artifacts)
            run.only = args.only
            run.run()
            browser.close()
        failed = sum(1 for _, why in run.results if why)
        print(f"browser: {len(run.results) - failed} passed, {failed} failed (screenshots in {args.artifacts})")
        for name, why in run.results:
            print(f"  {'FAILED' if why else 'ok'} {name}{': ' + why if why else ''}")
    finally:
        stack.stop()
        mailbox.stop()
    if failed:
        print(f"logs of every process: {work}")
        sys.exit(1)


if __name__ == "__main__":
    main()
