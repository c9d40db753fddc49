#!/usr/bin/env python3
"""Runs the examples/ deployments against the real reverse proxies.

For each proxy (traefik, caddy, nginx, haproxy, envoy, and envoy-grpc: Envoy with the gRPC
ext_authz service): a real redis-server, Portcullis
(Redis sessions, SQLite) from the example's configuration.yml, an upstream app that echoes
the headers it received, and the proxy from the example's config, all on free loopback
ports. The example files are copied with their addresses, ports and paths rewritten; the
client connects to 127.0.0.1 with the example host names in SNI and Host, from the source
address 127.0.0.2 so that "the client's address" differs from the proxy's. The gRPC
variant ends with one more check: Portcullis stopped, Envoy refuses every request.

    integration/proxies/run.py [--binary PATH] [proxy ...]

Prints `proxy <name>: N passed, M failed` for each; on failure keeps every process's log
in a folder printed at the end, and exits non-zero.
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
CLIENT_ADDRESS = "127.0.0.2"
PASSWORD = "demo-password"
PROXIES = ["traefik", "caddy", "nginx", "haproxy", "envoy", "envoy-grpc"]
# The program each variant runs, when it is not the variant's name.
PROGRAM = {"envoy-grpc": "envoy"}
CHECKS = 12
# Variants with checks of their own after the common ones.
EXTRA_CHECKS = {"envoy-grpc": 1}
# Spellings of the private /dashboard that some decoder may read as the public /public/x.
PATH_TRICKS = [
    "/dashboard/%252e%252e/public/x", "/dashboard/%252E%252E/public/x", "/dashboard/%2e%2e/public/x",
    "/dashboard/.%2e/public/x", "/%2570ublic/x", "/public/..%2fdashboard", "/public%2F..%2Fdashboard",
    "/public//../dashboard", "/public/x/..//../dashboard", "/public/..;/dashboard", "/dashboard%5c..%5cpublic/x",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, name, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited early with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on port {port} within {timeout}s")


# ---------------------------------------------------------------- the upstream app


class Echo(http.server.BaseHTTPRequestHandler):
    """Answers every request with the method, path and headers it received, as JSON."""

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

    def log_message(self, *args):
        pass


# ---------------------------------------------------------------- HTTPS client


class Connection(http.client.HTTPSConnection):
    """Connects to the proxy on 127.0.0.1 but speaks TLS and HTTP for `host`."""

    def __init__(self, host, port, context):
        super().__init__(host, port, context=context, timeout=15, source_address=(CLIENT_ADDRESS, 0))

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout, self.source_address)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body or "null")


class Client:
    def __init__(self, port, context):
        self.port = port
        self.context = context
        self.cookie = None

    def request(self, method, url, body=None, headers=None, accept_html=True, raw_path=None):
        """`raw_path` is sent exactly as given instead of the URL's path and query; a
        `Host` in `headers` replaces the URL's host in that header (not in SNI)."""
        parsed = urllib.parse.urlsplit(url)
        conn = Connection(parsed.hostname, self.port, self.context)
        all_headers = {"Accept": "text/html,application/xhtml+xml" if accept_html else "application/json"}
        if self.cookie:
            all_headers["Cookie"] = self.cookie
        if body is not None:
            body = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        path = parsed.path or "/"
        if parsed.query:
            path += "?" + parsed.query
        if raw_path is not None:
            path = raw_path
        conn.request(method, path, body=body, headers=all_headers)
        r = conn.getresponse()
        data = r.read().decode(errors="replace")
        headers_list = r.getheaders()
        conn.close()
        for k, v in headers_list:
            if k.lower() == "set-cookie" and v.startswith("authelia_session="):
                pair = v.split(";", 1)[0]
                self.cookie = None if pair == "authelia_session=" or "Max-Age=0" in v else pair
        return Response(r.status, headers_list, data)


def totp_code(secret_b32, t):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(t) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{value:06d}"


# ---------------------------------------------------------------- processes


class Stack:
    """Every process of one proxy's run, and the folder with their files and logs."""

    def __init__(self, proxy, binary, work):
        self.proxy = proxy
        self.binary = binary
        self.dir = os.path.join(work, proxy)
        os.makedirs(self.dir)
        self.procs = []
        self.ports = {name: free_port() for name in ("portcullis", "app", "proxy", "redis")}
        self.httpd = None

    def log(self, name):
        return open(os.path.join(self.dir, f"{name}.log"), "wb")

    def spawn(self, name, args, **kwargs):
        out = self.log(name)
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir,
                                start_new_session=True, **kwargs)
        self.procs.append((name, proc))
        return proc

    def rewrite(self, text):
        p = self.ports
        pairs = [
            ("127.0.0.1:9091", f"127.0.0.1:{p['portcullis']}"),
            ("port_value: 9091", f"port_value: {p['portcullis']}"),
            ("127.0.0.1:8080", f"127.0.0.1:{p['app']}"),
            ("port_value: 8080", f"port_value: {p['app']}"),
            ("port_value: 443", f"port_value: {p['proxy']}"),
            ("listen 443 ssl", f"listen 127.0.0.1:{p['proxy']} ssl"),
            ("bind :443", f"bind 127.0.0.1:{p['proxy']}"),
            (":443", f":{p['proxy']}"),
            ("port: 6379", f"port: {p['redis']}"),
            ("https://auth.example.com/", f"https://auth.example.com:{p['proxy']}/"),
            ("https://app.example.com/", f"https://app.example.com:{p['proxy']}/"),
            ("/etc/portcullis/tls/", os.path.join(self.dir, "tls") + "/"),
            ("/etc/portcullis/users.yml", os.path.join(self.dir, "users.yml")),
            ("/var/lib/portcullis/", self.dir + "/"),
            ("/etc/traefik/", self.dir + "/"),
            ("/etc/nginx/", self.dir + "/"),
            ("/etc/haproxy/", self.dir + "/"),
            ("/run/nginx.pid", os.path.join(self.dir, "nginx.pid")),
            ("/var/log/nginx/", self.dir + "/nginx-"),
            ("/var/cache/nginx/", self.dir + "/nginx-cache-"),
        ]
        # One pass, longest match first: a port just written in (say 44359) must not be
        # rewritten again by a later pair (": 443").
        table = dict(pairs)
        pattern = re.compile("|".join(re.escape(old) for old in sorted(table, key=len, reverse=True)))
        return pattern.sub(lambda m: table[m.group(0)], text)

    def copy_example(self):
        source = os.path.join(EXAMPLES, self.proxy)
        for name in os.listdir(source):
            if name == "README.md":
                continue
            with open(os.path.join(source, name)) as f:
                text = self.rewrite(f.read())
            if name == "configuration.yml":
                text = self.test_rules(text)
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)

    @staticmethod
    def test_rules(text):
        """Adds a rule proving that `networks` sees the real client address (a control for
        the spoofing check), and makes mail land in the file notifier as in the example.
        Turns personal API tokens on, with the Bearer scheme beside Basic on every header
        strategy (the endpoints an example leaves to the defaults written out)."""
        marker = "  rules:\n"
        extra = ("    - domain: 'lan.example.com'\n      networks: ['" + CLIENT_ADDRESS + "/32']\n"
                 "      policy: 'bypass'\n")
        config = yaml.safe_load(text.replace(marker, marker + extra, 1))
        config["api_tokens"] = {"enabled": True}
        server = config.setdefault("server", {})
        endpoints = server.setdefault("endpoints", {}).setdefault("authz", {})
        if not endpoints:
            for name, implementation in [("forward-auth", "ForwardAuth"), ("auth-request", "AuthRequest"),
                                         ("ext-authz", "ExtAuthz")]:
                endpoints[name] = {"implementation": implementation, "authn_strategies": [
                    {"name": "HeaderAuthorization", "schemes": ["Basic"]}, {"name": "CookieSession"}]}
            endpoints["legacy"] = {"implementation": "Legacy", "authn_strategies": [
                {"name": "HeaderLegacy"}, {"name": "CookieSession"}]}
        for endpoint in endpoints.values():
            for strategy in endpoint.get("authn_strategies", []):
                if "Basic" in strategy.get("schemes", []):
                    strategy["schemes"].append("Bearer")
        return yaml.safe_dump(config, sort_keys=False)

    def make_tls(self):
        tls = os.path.join(self.dir, "tls")
        os.makedirs(tls)
        subprocess.run([
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", os.path.join(tls, "key.pem"), "-out", os.path.join(tls, "cert.pem"),
            "-subj", "/CN=example.com",
            "-addext", "subjectAltName=DNS:example.com,DNS:*.example.com",
        ], check=True, capture_output=True)
        with open(os.path.join(tls, "combined.pem"), "w") as out:
            for part in ("cert.pem", "key.pem"):
                with open(os.path.join(tls, part)) as f:
                    out.write(f.read())
        context = ssl.create_default_context(cafile=os.path.join(tls, "cert.pem"))
        return context

    def start(self):
        context = self.make_tls()
        self.copy_example()
        redis = self.spawn("redis", ["redis-server", "--port", str(self.ports["redis"]), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no"])
        wait_port(self.ports["redis"], redis, "redis-server")
        pc = self.spawn("portcullis", [self.binary, "--config", os.path.join(self.dir, "configuration.yml")])
        wait_port(self.ports["portcullis"], pc, "portcullis")
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.ports["app"]), Echo)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        proxy = self.spawn(self.proxy, self.proxy_command())
        wait_port(self.ports["proxy"], proxy, self.proxy)
        self.wait_serving(proxy, context)
        return context

    def wait_serving(self, proc, context, timeout=20):
        """Some proxies listen before their routes and certificates are loaded: wait until
        a bypassed page comes through end to end."""
        client = Client(self.ports["proxy"], context)
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.proxy} exited early with status {proc.returncode}")
            try:
                r = client.request("GET", f"https://app.example.com:{self.ports['proxy']}/public/ready")
                if r.status == 200:
                    return
                last = f"status {r.status}"
            except (OSError, ssl.SSLError, http.client.HTTPException) as e:
                last = repr(e)
            time.sleep(0.1)
        raise RuntimeError(f"{self.proxy} did not serve within {timeout}s ({last})")

    def proxy_command(self):
        d = self.dir
        return {
            "traefik": ["traefik", f"--configFile={d}/traefik.yml"],
            "caddy": ["caddy", "run", "--config", f"{d}/Caddyfile", "--adapter", "caddyfile"],
            "nginx": ["nginx", "-c", f"{d}/nginx.conf", "-g", "daemon off;"],
            "haproxy": ["haproxy", "-db", "-f", f"{d}/haproxy.cfg"],
            "envoy": ["envoy", "-c", f"{d}/envoy.yaml", "--disable-hot-restart",
                      "--log-level", "warn"],
            "envoy-grpc": ["envoy", "-c", f"{d}/envoy.yaml", "--disable-hot-restart",
                           "--log-level", "warn"],
        }[self.proxy]

    def stop_process(self, name, timeout=10):
        """Stops one process (SIGTERM) and waits for it to exit."""
        for n, proc in self.procs:
            if n == name:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=timeout)
                return proc.returncode
        raise KeyError(name)

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
        for _, proc in reversed(self.procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for _, proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


# ---------------------------------------------------------------- the checks


class Checks:
    def __init__(self, stack, context):
        self.stack = stack
        self.context = context
        self.port = stack.ports["proxy"]
        self.passed = []
        self.failed = []

    def client(self):
        return Client(self.port, self.context)

    def url(self, host, path="/"):
        return f"https://{host}.example.com:{self.port}{path}"

    def check(self, name, fn):
        try:
            fn()
            self.passed.append(name)
        except Exception as e:  # noqa: BLE001 - every failure is reported, the run goes on
            self.failed.append((name, f"{type(e).__name__}: {e}"))

    def login(self, client, user="john"):
        r = client.request("POST", self.url("auth", "/api/firstfactor"), {"username": user, "password": PASSWORD},
                           accept_html=False)
        expect(r.status == 200, f"login as {user}: {r.status} {r.body}")
        expect(client.cookie, "login set no session cookie")

    def redirect_target(self, r):
        location = r.header("Location") or ""
        parsed = urllib.parse.urlsplit(location)
        query = urllib.parse.parse_qs(parsed.query)
        return parsed, query

    def run(self):
        anon = self.client()

        def anonymous_redirect():
            r = anon.request("GET", self.url("app", "/dashboard?tab=1"))
            expect(r.status == 302, f"status {r.status}: {r.body[:200]}")
            parsed, query = self.redirect_target(r)
            expect(parsed.hostname == "auth.example.com", f"portal host in {r.header('Location')}")
            rd = urllib.parse.urlsplit(query.get("rd", [""])[0])
            expect(rd.hostname == "app.example.com" and rd.path == "/dashboard" and rd.query == "tab=1",
                   f"rd is the target: {query}")
            # The port the client used is kept, or the user is sent back to the wrong one.
            expect(rd.port == self.port, f"rd keeps the port the client used: {query}")
            expect(query.get("rm") == ["GET"], f"rm: {query}")
        self.check("1 anonymous request redirects to the portal with rd", anonymous_redirect)

        def bypass():
            r = anon.request("GET", self.url("app", "/public/readme"))
            expect(r.status == 200, f"status {r.status}")
            expect(r.json()["path"] == "/public/readme", r.body)
        self.check("2 bypass path served without login", bypass)

        john = self.client()

        def identity_headers():
            self.login(john)
            r = john.request("GET", self.url("app", "/"), headers={"Remote-User": "admin", "Remote-Groups": "root"})
            expect(r.status == 200, f"status {r.status}: {r.body[:200]}")
            h = r.json()["headers"]
            expect(h.get("remote-user") == "john", f"Remote-User: {h.get('remote-user')}")
            expect(h.get("remote-groups") == "admins,dev", f"Remote-Groups: {h.get('remote-groups')}")
            expect(h.get("remote-name") == "John Doe", f"Remote-Name: {h.get('remote-name')}")
            expect(h.get("remote-email") == "john@example.com", f"Remote-Email: {h.get('remote-email')}")
            # A bypassed path gets no identity, and not the one the client claims either.
            r = self.client().request("GET", self.url("app", "/public/x"), headers={"Remote-User": "admin"})
            expect(r.json()["headers"].get("remote-user", "") == "", f"spoofed Remote-User reached the app: {r.body}")
        self.check("3 login: the app receives Remote-*; client-sent Remote-* are replaced", identity_headers)

        def two_factor():
            r = john.request("GET", self.url("secure", "/"))
            expect(r.status == 302, f"one factor on a two_factor app: {r.status}")
            secret = self.enroll_totp(john)
            now = time.time()
            r = john.request("POST", self.url("auth", "/api/secondfactor/totp"),
                             {"token": totp_code(secret, now + 30)}, accept_html=False)
            expect(r.status == 200, f"TOTP sign-in: {r.status} {r.body}")
            r = john.request("GET", self.url("secure", "/"))
            expect(r.status == 200, f"after TOTP: {r.status}")
            expect(r.json()["headers"].get("remote-user") == "john", r.body)
        self.check("4 two_factor app: redirect with one factor, allowed after TOTP", two_factor)

        def deny_and_groups():
            r = john.request("GET", self.url("deny", "/"))
            expect(r.status == 403, f"deny rule: {r.status}")
            r = john.request("GET", self.url("admin", "/"))
            expect(r.status == 200, f"admins group: {r.status}")
            mary = self.client()
            self.login(mary, "mary")
            r = mary.request("GET", self.url("admin", "/"))
            expect(r.status == 403, f"not in admins: {r.status}")
        self.check("5 deny rule 403; group subject allows admins only", deny_and_groups)

        def anonymous_post():
            r = self.client().request("POST", self.url("app", "/form"), {"a": 1})
            expected = {302, 303} if self.stack.proxy == "nginx" else {303}
            expect(r.status in expected, f"status {r.status}")
            parsed, query = self.redirect_target(r)
            expect(parsed.hostname == "auth.example.com", f"Location {r.header('Location')}")
            if self.stack.proxy != "nginx":
                expect(query.get("rm") == ["POST"], f"rm: {query}")
        self.check("6 anonymous POST redirects (303) to the portal", anonymous_post)

        def basic_auth():
            good = base64.b64encode(f"john:{PASSWORD}".encode()).decode()
            bad = base64.b64encode(b"john:wrong-password").decode()
            r = self.client().request("GET", self.url("api", "/v1/items"), headers={"Authorization": f"Basic {good}"},
                                      accept_html=False)
            expect(r.status == 200, f"valid Basic: {r.status} {r.body[:200]}")
            expect(r.json()["headers"].get("remote-user") == "john", r.body)
            r = self.client().request("GET", self.url("api", "/v1/items"), headers={"Authorization": f"Basic {bad}"},
                                      accept_html=False)
            expect(r.status == 401, f"wrong password: {r.status}")
            expect((r.header("WWW-Authenticate") or "").startswith("Basic"), f"challenge: {r.headers}")
        self.check("7 Basic credentials on the API: valid 200, wrong 401", basic_auth)

        def spoofed_forwarded_for():
            r = self.client().request("GET", self.url("lan", "/"))
            expect(r.status == 200, f"control: the real client address satisfies its networks rule: {r.status}")
            r = self.client().request("GET", self.url("internal", "/"), headers={"X-Forwarded-For": "10.1.2.3"})
            expect(r.status in (302, 401, 403), f"spoofed X-Forwarded-For was believed: {r.status}")
            expect(r.status != 200, "must not be allowed")
        self.check("8 a spoofed X-Forwarded-For does not satisfy a networks rule", spoofed_forwarded_for)

        def host_tricks():
            # NGINX routes by the Host header's part before ':'; a target built from the
            # whole header would hide the path (`:#`, `:?`) or bring another (`:\\public`).
            problems = []
            cases = [("app", "/dashboard", host) for host in [
                "app.example.com:#", "app.example.com:?", "app.example.com:@", "app.example.com:\\public",
                "app.example.com:#/public/x", f"app.example.com:{self.port}#"]]
            cases += [("secure", "/admin", host) for host in ["secure.example.com:#", "secure.example.com:?"]]
            for name, path, host in cases:
                r = self.client().request("GET", self.url(name, path), headers={"Host": host})
                problems.append(self.not_served(r, f"Host {host!r}"))
                if r.status in (302, 303):
                    _, query = self.redirect_target(r)
                    rd = urllib.parse.urlsplit(query.get("rd", [""])[0])
                    if rd.path != path or rd.fragment:
                        problems.append(f"Host {host!r}: {path} judged as {rd.geturl()!r}")
            expect_none(problems)
        self.check("9 Host tricks (`:#`, `:?`, `:@`, `:\\`) neither hide nor replace the path", host_tricks)

        def path_tricks():
            # Spellings of a private path that read as /public to a decoder that decodes
            # more often, or resolves dot segments otherwise, than the app.
            problems = []
            for path in PATH_TRICKS:
                r = self.client().request("GET", self.url("app", "/"), raw_path=path)
                problems.append(self.not_served(r, f"path {path!r}"))
            expect_none(problems)
        self.check("10 path spellings (%252e%252e, %2e%2e, %2F, //.., ..;, %5c) reach no private page", path_tricks)

        def client_target_headers():
            # A client naming another target in the headers some endpoints read.
            problems = []
            spoofed = {"X-Original-URL": self.url("app", "/public/x"), "X-Original-Method": "GET",
                       "X-Forwarded-Uri": "/public/x", "X-Forwarded-Host": f"app.example.com:{self.port}",
                       "X-Forwarded-Proto": "https", "X-Forwarded-Method": "GET"}
            for name, value in list(spoofed.items()) + [("all of them", None)]:
                headers = spoofed if value is None else {name: value}
                r = self.client().request("GET", self.url("app", "/dashboard"), headers=headers)
                problems.append(self.not_served(r, f"client-sent {name}"))
                r = self.client().request("POST", self.url("app", "/form"), {"a": 1}, headers=headers)
                problems.append(self.not_served(r, f"client-sent {name} on a POST"))
            expect_none(problems)
        self.check("11 client-sent X-Original-* / X-Forwarded-* name no other target", client_target_headers)

        def api_token():
            owner = self.client()
            self.login(owner, "mary")
            r = owner.request("POST", self.url("auth", "/api/auth/me/create-token"), {"name": "proxy-suite"},
                              accept_html=False)
            expect(r.status == 200, f"create: {r.status} {r.body[:200]}")
            created = r.json()["data"]
            token, token_id = created["token"], created["id"]
            basic = base64.b64encode(f"mary:{token}".encode()).decode()
            for authorization in (f"Bearer {token}", f"Basic {basic}"):
                r = self.client().request("GET", self.url("api", "/v1/items"), accept_html=False,
                                          headers={"Authorization": authorization})
                scheme = authorization.split()[0]
                expect(r.status == 200, f"{scheme} token: {r.status} {r.body[:200]}")
                expect(r.json()["headers"].get("remote-user") == "mary", f"{scheme}: {r.body[:300]}")
            r = owner.request("DELETE", self.url("auth", f"/api/auth/me/tokens/{token_id}"), accept_html=False)
            expect(r.status == 200, f"revoke: {r.status} {r.body[:200]}")
            r = self.client().request("GET", self.url("api", "/v1/items"), accept_html=False,
                                      headers={"Authorization": f"Bearer {token}"})
            expect(r.status == 401, f"revoked token: {r.status}")
        self.check("12 personal API token as Bearer and Basic: Remote-User set; revoked refused (401)", api_token)

        def logout_all():
            # Two sessions of mary; POST /auth/api/user/logout-all from one ends both, and
            # the proxy sends both back to the portal on their next request.
            first, second = self.client(), self.client()
            self.login(first, "mary")
            self.login(second, "mary")
            for c in (first, second):
                r = c.request("GET", self.url("app", "/"))
                expect(r.status == 200, f"signed in: {r.status}")
            r = first.request("POST", self.url("auth", "/auth/api/user-info"), {}, accept_html=False)
            sessions = r.json()["data"]["sessions"] if r.status == 200 else []
            expect(len(sessions) >= 2, f"user-info lists the sessions: {r.status} {r.body[:300]}")
            r = first.request("POST", self.url("auth", "/auth/api/user/logout-all"), {}, accept_html=False)
            expect(r.status == 200, f"logout-all: {r.status} {r.body[:200]}")
            for c in (first, second):
                r = c.request("GET", self.url("app", "/"))
                expect(r.status in (302, 303, 401), f"after logout-all the proxy refuses: {r.status}")
        self.check("13 /auth/api/user/logout-all ends every session; the proxy refuses them at once", logout_all)

        if self.stack.proxy == "envoy-grpc":
            def portcullis_stopped():
                # Runs last: it stops Portcullis. failure_mode_allow: false refuses every
                # request that cannot be checked, the logged-in user's and the bypass path too.
                status = self.stack.stop_process("portcullis")
                expect(status == 0, f"Portcullis exited with {status}")
                problems = []
                for client, path, what in [(self.client(), "/dashboard", "anonymous"), (john, "/", "logged in"),
                                           (self.client(), "/public/readme", "bypass path")]:
                    r = client.request("GET", self.url("app", path))
                    if r.status != 403:
                        problems.append(f"{what} {path}: {r.status} {r.body[:100]}")
                expect_none(problems)
            self.check("13 Portcullis stopped: Envoy refuses every request (403)", portcullis_stopped)

    def not_served(self, r, what):
        """None when the app (the echo upstream) did not answer, or received a path that
        reads as public however it is read; otherwise what went wrong."""
        if r.status != 200:
            return None
        try:
            served = r.json()["path"]
        except (ValueError, KeyError, TypeError):
            return f"{what}: 200 without the app's answer: {r.body[:200]}"
        path = served.split("?", 1)[0]
        decoded = urllib.parse.unquote(path)
        without_parameters = "/".join(segment.split(";", 1)[0] for segment in decoded.split("/"))
        readings = {clean(decoded), urllib.parse.unquote(clean(path)), clean(without_parameters)}
        if all(p == "/public" or p.startswith("/public/") for p in readings):
            return None
        return f"{what}: the app served {served!r} without login"

    def last_code(self):
        with open(os.path.join(self.stack.dir, "notifications.txt")) as f:
            text = f.read()
        for line in reversed(text.splitlines()):
            word = line.strip()
            if 6 <= len(word) <= 20 and word.isalnum() and word.isupper():
                return word
        raise AssertionError("no code in the notifications file")

    def enroll_totp(self, client):
        api = lambda path: self.url("auth", path)  # noqa: E731
        r = client.request("POST", api("/api/user/session/elevation"), accept_html=False)
        expect(r.status == 200, f"elevation start: {r.status} {r.body}")
        r = client.request("PUT", api("/api/user/session/elevation"), {"otc": self.last_code()}, accept_html=False)
        expect(r.status == 200, f"elevation: {r.status} {r.body}")
        r = client.request("PUT", api("/api/secondfactor/totp/register"), {}, accept_html=False)
        expect(r.status == 200, f"TOTP start: {r.status} {r.body}")
        secret = r.json()["data"]["base32_secret"]
        r = client.request("POST", api("/api/secondfactor/totp/register"), {"token": totp_code(secret, time.time())},
                           accept_html=False)
        expect(r.status == 200, f"TOTP finish: {r.status} {r.body}")
        return secret


def clean(path):
    """Dot segments resolved and repeated slashes merged, as Go's ServeMux does."""
    out = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    return "/" + "/".join(out) + ("/" if out and path.endswith("/") else "")


def expect_none(problems):
    problems = [p for p in problems if p]
    if problems:
        raise AssertionError("; ".join(problems))


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def version(proxy):
    cmd = {
        "traefik": ["traefik", "version"],
        "caddy": ["caddy", "version"],
        "nginx": ["nginx", "-v"],
        "haproxy": ["haproxy", "-v"],
        "envoy": ["envoy", "--version"],
    }[PROGRAM.get(proxy, proxy)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "?"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "debug", "portcullis"))
    parser.add_argument("proxies", nargs="*", default=PROXIES)
    args = parser.parse_args()
    args.binary = os.path.abspath(args.binary)
    work = tempfile.mkdtemp(prefix="portcullis-proxies-")
    total_failed = 0
    for proxy in args.proxies:
        if shutil.which(PROGRAM.get(proxy, proxy)) is None:
            print(f"proxy {proxy}: 0 passed, 1 failed (not installed; run integration/install-deps)")
            total_failed += 1
            continue
        stack = Stack(proxy, args.binary, work)
        started = time.time()
        try:
            context = stack.start()
            checks = Checks(stack, context)
            checks.run()
        except Exception as e:  # noqa: BLE001
            checks = None
            checks_count = CHECKS + EXTRA_CHECKS.get(proxy, 0)
            print(f"proxy {proxy}: 0 passed, {checks_count} failed (could not start: {e})")
            total_failed += checks_count
        finally:
            stack.stop()
        if checks is None:
            continue
        print(f"proxy {proxy}: {len(checks.passed)} passed, {len(checks.failed)} failed "
              f"({version(proxy)}; {time.time() - started:.1f}s)")
        for name, why in checks.failed:
            print(f"  FAILED {name}: {why}")
        total_failed += len(checks.failed)
    if total_failed:
        print(f"logs of every process: {work}")
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
