#!/usr/bin/env python3
"""Throughput and latency of the authorization hot path, against the release binary.

Builds `portcullis` and the `baseline_server` example (a bare hyper server answering 200)
once, then runs each case below on free loopback ports in a temporary directory: start
the processes, check with one request that the case answers the expected status, run wrk
(-t2 -c32 -d10s --latency unless overridden), read the server's resident memory, stop
everything. Prints a table (with the server's CPU time per request, since the load
generators share the cores) and the issue's targets (PASS/MISS), and writes the same as
JSON (--json, default bench-results.json).

Cases: baseline; forward-auth with a session cookie (memory store, 100 rules); the same
with Redis sessions; with 10,000 rules; anonymous (302 to the portal); the cookie case
during a login storm (4 concurrent logins, default Argon2id cost); Basic credentials with
the verification cache; the OpenID Connect token endpoint (client credentials, an opaque
access token stored per request) and UserInfo (a user's access token looked up per
request). Case 2b is case 2 at half of its throughput: Debian's wrk has no fixed
request rate, so each connection waits 1 ms before each request (a wrk `delay()` script),
with as many connections as make half of case 2's requests per second (case 2 is run
first when 2b is asked for).
Cases 8 and 9 are the cookie case through Envoy's two ext_authz forms: 8 the HTTP service
(ExtAuthz: the original path after the endpoint, Host, X-Forwarded-Proto) with wrk; 9 the
gRPC Check (ExtAuthzGRPC) with the `grpc_check_load` example, as many calls in flight as
wrk has connections, over 2 HTTP/2 connections (Envoy keeps one per worker thread).
Case 10 is case 2 with `telemetry.metrics` on and /metrics scraped every second; case 11
is case 2 with traces exported at 100% sampling to a local OTLP (HTTP/protobuf) receiver.
Cases 12 and 13 are the OpenID Connect token endpoint and UserInfo. Case 14 is
forward-auth with a personal API token as `Authorization: Bearer` (the verification cache
hot, as for a script sending its token on every request), to compare with case 2.

Usage: integration/bench/authz_load.py [--duration 10s] [--connections 32] [--json PATH]
                                      [--cases 1,2,2b,3,4,5,6,7,8,9,10,11,12,13,14]
"""
import argparse
import base64
import concurrent.futures
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSWORD = "a benchmark password"
TARGET = "https://app.example.com/"
FORWARD_AUTH = "/api/authz/forward-auth"
# Case 2b: each connection's wait before each request, in milliseconds.
PACE_MS = 1
TARGET_HEADERS = {
    "Host": "auth.example.com",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "app.example.com",
    "X-Forwarded-Uri": "/",
    "X-Forwarded-Method": "GET",
}
EXT_AUTHZ = "/api/authz/ext-authz"
# Cases 8 and 9: Envoy's HTTP and gRPC ext_authz endpoints, default strategies.
ENVOY_ENDPOINTS = """
  endpoints:
    authz:
      ext-authz: {implementation: ExtAuthz}
      ext-authz-grpc: {implementation: ExtAuthzGRPC}
"""
# The grpc_check_load example: HTTP/2 connections (Envoy keeps one per worker thread).
GRPC_CONNECTIONS = 2
BASIC_STRATEGIES = """
  endpoints:
    authz:
      forward-auth:
        implementation: ForwardAuth
        authn_strategies:
          - {name: HeaderAuthorization, schemes: [Basic], scheme_basic_cache_lifespan: 5m}
          - {name: CookieSession}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid):
    """User plus system CPU time the process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ensure_wrk():
    if shutil.which("wrk"):
        return
    command = ["apt-get", "install", "-y", "wrk"]
    if os.geteuid() != 0:
        command.insert(0, "sudo")
    print(f"wrk is not installed; running: {' '.join(command)}", flush=True)
    if subprocess.run(command).returncode != 0:
        print("retrying after apt-get update", flush=True)
        subprocess.run(command[:-3] + ["update"], check=True)
        subprocess.run(command, check=True)
    if not shutil.which("wrk"):
        sys.exit("wrk is still missing after apt-get install")


def build():
    """Builds both binaries once and returns their paths."""
    print("building: cargo build --release --bin portcullis --example baseline_server --example grpc_check_load",
          flush=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "portcullis", "--example", "baseline_server",
                    "--example", "grpc_check_load"], cwd=ROOT, check=True)
    metadata = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
    release = os.path.join(json.loads(metadata)["target_directory"], "release")
    examples = os.path.join(release, "examples")
    return (os.path.join(release, "portcullis"), os.path.join(examples, "baseline_server"),
            os.path.join(examples, "grpc_check_load"))


def wait_for(check, what, process=None, limit=20.0):
    deadline = time.monotonic() + limit
    while True:
        if process is not None and process.poll() is not None:
            sys.exit(f"{what} exited early with status {process.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not become ready in {limit:.0f}s")
        time.sleep(0.001)


def health_ok(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/api/health", headers={"Host": "auth.example.com"})
        return conn.getresponse().status == 200
    finally:
        conn.close()


def tcp_open(port):
    socket.create_connection(("127.0.0.1", port), timeout=1).close()
    return True


def redis_pong(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


def rules_yaml(count):
    lines = ["access_control:", "  default_policy: deny", "  rules:"]
    lines += [f"    - {{domain: 'app{i}.example.com', policy: one_factor}}" for i in range(count - 1)]
    lines.append("    - {domain: 'app.example.com', policy: one_factor}")
    return "\n".join(lines) + "\n"


OIDC = """
identity_providers:
  oidc:
    hmac_secret: 'a-benchmark-hmac-secret-of-at-least-32-characters'
    clients:
      - client_id: bench-service
        client_secret: 'a-benchmark-client-secret'
        token_endpoint_auth_method: client_secret_post
        grant_types: [client_credentials]
        scopes: [api]
      - client_id: bench-app
        client_secret: 'a-benchmark-client-secret'
        token_endpoint_auth_method: client_secret_post
        redirect_uris: ['https://bench.example.com/cb']
        scopes: [openid, profile, email, groups]
        authorization_policy: one_factor
        consent_mode: implicit
"""
TOKEN_BODY = ("grant_type=client_credentials&client_id=bench-service&client_secret=a-benchmark-client-secret"
              "&scope=api")


def telemetry_yaml(metrics_port=None, otlp_port=None):
    """The telemetry section: metrics on `metrics_port`, traces (100%) to `otlp_port`."""
    if metrics_port is None and otlp_port is None:
        return ""
    text = "telemetry:\n"
    if metrics_port is not None:
        text += f"  metrics: {{enabled: true, address: 'tcp://127.0.0.1:{metrics_port}/metrics'}}\n"
    if otlp_port is not None:
        text += (f"  traces: {{enabled: true, protocol: http/protobuf, endpoint: 'http://127.0.0.1:{otlp_port}',"
                 f" sampling_ratio: 1.0}}\n")
    return text

# Case 14: Bearer beside Basic, and personal API tokens on.
TOKEN_STRATEGIES = """
  endpoints:
    authz:
      forward-auth:
        implementation: ForwardAuth
        authn_strategies:
          - {name: HeaderAuthorization, schemes: [Basic, Bearer]}
          - {name: CookieSession}
"""


def config_yaml(port, d, rules, redis_port=None, basic=False, envoy=False, telemetry="", oidc=False, tokens=False):
    session = "session:\n"
    if redis_port is not None:
        session += f"  secret: 'a-benchmark-session-secret'\n  redis: {{host: 127.0.0.1, port: {redis_port}}}\n"
    session += "  cookies:\n    - {domain: example.com, authelia_url: 'https://auth.example.com/'}\n"
    return f"""
server:
  address: 'tcp://127.0.0.1:{port}/'
{BASIC_STRATEGIES if basic else ""}{ENVOY_ENDPOINTS if envoy else ""}{TOKEN_STRATEGIES if tokens else ""}
log: {{level: warn}}
authentication_backend: {{file: {{path: '{d}/users.yml'}}}}
{session}
storage: {{encryption_key: 'a-benchmark-encryption-key', local: {{path: '{d}/db.sqlite3'}}}}
notifier: {{filesystem: {{filename: '{d}/notifications.txt'}}}}
identity_validation: {{reset_password: {{jwt_secret: 'a-benchmark-jwt-secret-value'}}}}
{OIDC if oidc else ""}
{"api_tokens: {enabled: true}" if tokens else ""}
{telemetry}
{rules_yaml(rules)}"""


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def status_of(port, headers, path=FORWARD_AUTH, body=None):
    """Status of one request (forward-auth unless `path` says otherwise; redirects are not
    followed)."""
    data = body.encode() if body else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers, data=data)
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def login(port):
    """Logs in once and returns `authelia_session=...`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/api/firstfactor", json.dumps({"username": "john", "password": PASSWORD}),
                     {"Host": "auth.example.com", "Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            sys.exit(f"login failed: {response.status} {body!r}")
        return response.getheader("Set-Cookie").split(";", 1)[0]
    finally:
        conn.close()


def api_token(port):
    """A personal API token of john's, created with a session."""
    cookie = login(port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/api/auth/me/create-token", json.dumps({"name": "bench"}),
                     {"Host": "auth.example.com", "Content-Type": "application/json", "Cookie": cookie})
        response = conn.getresponse()
        answer = json.loads(response.read())
        if response.status != 200:
            sys.exit(f"cannot create an API token: {response.status} {answer}")
        return answer["data"]["token"]
    finally:
        conn.close()


def user_access_token(port):
    """An access token of john's for bench-app, through the authorization code flow."""
    cookie = login(port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        query = urllib.parse.urlencode({"client_id": "bench-app", "response_type": "code", "scope": "openid profile",
                                        "redirect_uri": "https://bench.example.com/cb"})
        conn.request("GET", f"/api/oidc/authorization?{query}", headers={"Host": "auth.example.com", "Cookie": cookie})
        response = conn.getresponse()
        response.read()
        location = response.getheader("Location") or ""
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query).get("code", [""])[0]
        body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
                                       "redirect_uri": "https://bench.example.com/cb", "client_id": "bench-app",
                                       "client_secret": "a-benchmark-client-secret"})
        conn.request("POST", "/api/oidc/token", body,
                     {"Host": "auth.example.com", "Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        answer = json.loads(response.read())
        if "access_token" not in answer:
            sys.exit(f"cannot get an access token: {answer}")
        return answer["access_token"]
    finally:
        conn.close()


class LoginStorm:
    """`workers` threads logging in with the right password until stopped."""

    def __init__(self, port, workers):
        self.port, self.workers = port, workers
        self.stop = threading.Event()
        self.ok = self.failed = 0
        self.lock = threading.Lock()
        self.pool = None

    def worker(self):
        body = json.dumps({"username": "john", "password": PASSWORD})
        while not self.stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                conn.request("POST", "/api/firstfactor", body,
                             {"Host": "auth.example.com", "Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                success = response.status == 200
            except OSError:
                success = False
            finally:
                conn.close()
            with self.lock:
                if success:
                    self.ok += 1
                else:
                    self.failed += 1

    def __enter__(self):
        self.pool = concurrent.futures.ThreadPoolExecutor(self.workers)
        self.futures = [self.pool.submit(self.worker) for _ in range(self.workers)]
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for f in self.futures:
            f.result()
        self.pool.shutdown()


class Scraper:
    """Fetches /metrics every `interval` seconds until stopped, as Prometheus would."""

    def __init__(self, port, interval=1.0):
        self.port, self.interval = port, interval
        self.stop = threading.Event()
        self.scrapes = 0

    def run(self):
        while not self.stop.wait(self.interval):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", "/metrics")
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    self.scrapes += 1
            except OSError:
                pass
            finally:
                conn.close()

    def __enter__(self):
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


class OtlpReceiver:
    """A local OTLP/HTTP receiver: takes every POST to /v1/traces and answers an empty
    ExportTraceServiceResponse, counting the bytes received."""

    def __init__(self):
        receiver = self
        self.exports = self.bytes = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.exports += 1
                receiver.bytes += len(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


CASE_IDS = ["1", "2", "2b", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14"]
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def seconds(duration):
    """wrk's duration forms: 10, 10s, 2m, 1h."""
    match = re.fullmatch(r"(\d+)([smh]?)", duration)
    if match is None:
        sys.exit(f"--duration: cannot read {duration!r}")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def run_wrk(port, headers, duration, connections, threads=2, path=FORWARD_AUTH, script=None):
    command = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{duration}", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script:
        command += ["-s", script]
    command.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    latency = {}
    for percent, value, unit in re.findall(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M):
        latency[percent] = float(value) * UNITS[unit]
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    total = re.search(r"^\s*(\d+) requests in", out, re.M)
    if rps is None or total is None or set(latency) != {"50", "99"}:
        sys.exit(f"cannot read wrk's output:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests_per_sec": float(rps.group(1)),
        "requests": int(total.group(1)),
        "p50_ms": latency["50"],
        "p99_ms": latency["99"],
        "non_2xx_3xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(map(int, socket_errors.groups())) if socket_errors else 0,
    }


def run_grpc_load(loader, port, cookie, duration, concurrency):
    """The grpc_check_load example for `duration`; its JSON line as a result."""
    command = [loader, f"http://127.0.0.1:{port}", cookie, str(seconds(duration)), str(GRPC_CONNECTIONS),
               str(concurrency)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["non_2xx_3xx"] = result.pop("unexpected")
    result["socket_errors"] = 0
    return result


class Bench:
    def __init__(self, args, portcullis, baseline, loader, digest, workdir):
        self.args, self.portcullis, self.baseline, self.digest = args, portcullis, baseline, digest
        self.loader = loader
        self.workdir = workdir
        self.results = []
        self.idle_rss = {}

    def start_portcullis(self, name, rules=100, redis_port=None, basic=False, envoy=False, telemetry="", oidc=False,
                         tokens=False):
        d = tempfile.mkdtemp(prefix=f"{name}-", dir=self.workdir)
        with open(os.path.join(d, "users.yml"), "w") as f:
            f.write(f"users:\n  john:\n    displayname: John Doe\n    password: '{self.digest}'\n"
                    f"    email: john@example.com\n    groups: [admins, dev]\n")
        port = free_port()
        path = os.path.join(d, "configuration.yml")
        with open(path, "w") as f:
            f.write(config_yaml(port, d, rules, redis_port, basic, envoy, telemetry, oidc, tokens))
        started = time.monotonic()
        with open(os.path.join(d, "stdout.log"), "w") as out, open(os.path.join(d, "stderr.log"), "w") as err:
            process = subprocess.Popen([self.portcullis, "--config", path], cwd=d, stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=err)
        wait_for(lambda: health_ok(port), f"portcullis ({name}; logs in {d})", process)
        ready_ms = (time.monotonic() - started) * 1000
        return process, port, ready_ms

    def case(self, case, label, headers, expected, start, storm=False, connections=None, path=FORWARD_AUTH,
             grpc=False, scrape=None, body=None, pace_ms=None):
        """Runs one case: `start()` returns (server process, port, helpers to stop). With
        `grpc`, the gRPC Check with the session cookie of `headers`, by grpc_check_load;
        with `body`, the requests are POSTs of that form body; with `pace_ms`, each
        connection waits that long before each request. `connections` may be a function
        of the running server's port, the headers and the wrk script, called once the
        server is up (after the cases before it)."""
        print(f"case {case}: {label}", flush=True)
        server, port, helpers = start()
        script = None
        if body or pace_ms:
            script = os.path.join(self.workdir, f"script-{case}.lua")
            with open(script, "w") as f:
                if body:
                    f.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n')
                if pace_ms:
                    f.write(f"function delay()\n  return {int(pace_ms)}\nend\n")
        try:
            headers = headers(port) if callable(headers) else headers
            if grpc:
                cookie = headers["Cookie"]
                once = [self.loader, f"http://127.0.0.1:{port}", cookie, "0", "1", "1"]
                status = int(subprocess.run(once, check=True, capture_output=True, text=True).stdout.strip())
            else:
                check_headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"} if body else headers
                status = status_of(port, check_headers, path, body)
            if status != expected:
                sys.exit(f"case {case} ({label}): expected {expected} before the timed run, got {status}; "
                         f"a benchmark of that answer would be worthless")
            connections = connections(port, headers, script) if callable(connections) else connections
            connections = connections or self.args.connections
            cpu_before = cpu_seconds(server.pid)
            if grpc:
                result = run_grpc_load(self.loader, port, cookie, self.args.duration, connections)
            elif storm:
                with LoginStorm(port, 4) as s:
                    result = run_wrk(port, headers, self.args.duration, connections)
                result["storm_logins_ok"], result["storm_logins_failed"] = s.ok, s.failed
            elif scrape is not None:
                with Scraper(scrape) as s:
                    result = run_wrk(port, headers, self.args.duration, connections)
                result["scrapes"] = s.scrapes
            else:
                result = run_wrk(port, headers, self.args.duration, connections, path=path, script=script)
            # The server's own CPU per request: the load generators share the two cores, so
            # throughput also measures the client's cost.
            used = cpu_seconds(server.pid) - cpu_before
            result["server_cpu_us_per_request"] = used * 1e6 / result["requests"] if result["requests"] else 0
            result["rss_mb"] = rss_mb(server.pid)
        finally:
            stop(server)
            for helper in helpers:
                stop(helper)
        result.update({"case": case, "label": label, "connections": connections, "expected_status": expected})
        if result["non_2xx_3xx"] or result["socket_errors"]:
            print(f"  warning: {result['non_2xx_3xx']} non-2xx/3xx responses, "
                  f"{result['socket_errors']} socket errors", flush=True)
        self.results.append(result)
        return result

    def half_load_connections(self, port, headers, script):
        """Connections that, each waiting PACE_MS before each request, ask for about half
        of case 2's throughput: a first guess from the pace and case 2's latency, then
        corrected by a 2-second run at that guess (wrk's timers are coarser than the
        pace, so a connection sends fewer requests than the pace allows)."""
        case2 = next(r for r in self.results if r["case"] == "2")
        half = case2["requests_per_sec"] / 2
        guess = max(1, round(half / (1000 / (PACE_MS + case2["p50_ms"]))))
        trial = run_wrk(port, headers, "2s", guess, script=script)
        per_connection = trial["requests_per_sec"] / guess
        connections = max(1, round(half / per_connection)) if per_connection else guess
        print(f"  {connections} paced connections for about {half:,.0f} requests/s "
              f"(a trial of {guess} made {trial['requests_per_sec']:,.0f})", flush=True)
        return connections

    def metrics_process(self, name, metrics_port):
        def start():
            process, port, _ = self.start_portcullis(name, telemetry=telemetry_yaml(metrics_port=metrics_port))
            return process, port, []
        return start

    def traced_process(self, name, receiver):
        def start():
            process, port, _ = self.start_portcullis(name, telemetry=telemetry_yaml(otlp_port=receiver.port))
            return process, port, []
        return start

    def baseline_process(self):
        port = free_port()
        process = subprocess.Popen([self.baseline, f"127.0.0.1:{port}"], stdin=subprocess.DEVNULL)
        wait_for(lambda: tcp_open(port), "baseline_server", process)
        return process, port, []

    def portcullis_process(self, name, **options):
        def start():
            process, port, _ = self.start_portcullis(name, **options)
            self.idle_rss[name] = rss_mb(process.pid)
            return process, port, []
        return start

    def redis_process(self):
        redis_port = free_port()
        d = tempfile.mkdtemp(prefix="redis-", dir=self.workdir)
        redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], cwd=d, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: redis_pong(redis_port), "redis-server", redis)
        try:
            process, port, _ = self.start_portcullis("redis", redis_port=redis_port)
        except BaseException:
            stop(redis)
            raise
        self.idle_rss["redis"] = rss_mb(process.pid)
        return process, port, [redis]

    def startup(self, runs=5):
        """Start to first 200 on /api/health, each with a fresh data directory."""
        times = []
        for i in range(runs):
            process, _, ready_ms = self.start_portcullis(f"startup{i}")
            times.append(ready_ms)
            stop(process)
        return times


def with_cookie(port):
    return {**TARGET_HEADERS, "Cookie": login(port), "Accept": "text/html"}


def envoy_with_cookie(port):
    """What Envoy's HTTP ext_authz sends for a browser GET of https://app.example.com/."""
    return {"Host": "app.example.com", "X-Forwarded-Proto": "https", "Cookie": login(port), "Accept": "text/html"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", default="10s", help="wrk duration per case (default 10s)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--json", default="bench-results.json", help="where to write the results")
    parser.add_argument("--prebuilt", default="",
                        help="directory holding portcullis and examples/baseline_server already built (skips the "
                             "release build; figures from a debug build are not comparable)")
    parser.add_argument("--cases", default="1,2,2b,3,4,5,6,7,8,9,10,11,12,13,14",
                        help="comma-separated cases to run (default all); targets needing a case left out are skipped")
    args = parser.parse_args()
    selected = set(args.cases.split(","))
    if not selected <= set(CASE_IDS) or "1" not in selected:
        sys.exit(f"--cases: choose among {','.join(CASE_IDS)}; case 1 (the baseline) is always needed")
    if "2b" in selected:
        # Its load is half of case 2's throughput, measured in the same run.
        selected.add("2")

    ensure_wrk()
    if not shutil.which("redis-server"):
        sys.exit("redis-server is missing (integration/install-deps installs it)")
    if args.prebuilt:
        portcullis = os.path.join(args.prebuilt, "portcullis")
        baseline = os.path.join(args.prebuilt, "examples", "baseline_server")
        loader = os.path.join(args.prebuilt, "examples", "grpc_check_load")
    else:
        portcullis, baseline, loader = build()
    digest = subprocess.run([portcullis, "crypto", "hash", "generate", "argon2", "--password", PASSWORD], check=True,
                            capture_output=True, text=True).stdout.strip().removeprefix("Digest: ")
    basic = "Basic " + base64.b64encode(f"john:{PASSWORD}".encode()).decode()

    receiver = OtlpReceiver()
    metrics_port = free_port()
    with tempfile.TemporaryDirectory(prefix="portcullis-bench-") as workdir:
        b = Bench(args, portcullis, baseline, loader, digest, workdir)
        print("startup: 5 starts with a fresh data directory", flush=True)
        startup = b.startup()
        cases = [
            ("1", "baseline hyper server", TARGET_HEADERS, 200, b.baseline_process, {}),
            ("2", "cookie, memory store, 100 rules", with_cookie, 200, b.portcullis_process("memory"), {}),
            ("2b", "case 2 at half its throughput (paced)", with_cookie, 200, b.portcullis_process("memory-low"),
             {"connections": b.half_load_connections, "pace_ms": PACE_MS}),
            ("3", "cookie, Redis store, 100 rules", with_cookie, 200, b.redis_process, {}),
            ("4", "cookie, memory store, 10,000 rules", with_cookie, 200,
             b.portcullis_process("rules10k", rules=10_000), {}),
            ("5", "anonymous -> 302 to the portal", {**TARGET_HEADERS, "Accept": "text/html"}, 302,
             b.portcullis_process("anonymous"), {}),
            ("6", "case 2 during a login storm (4 concurrent)", with_cookie, 200, b.portcullis_process("storm"),
             {"storm": True}),
            ("7", "Basic credentials, cached 5m", {**TARGET_HEADERS, "Authorization": basic}, 200,
             b.portcullis_process("basic", basic=True), {}),
            ("8", "cookie, Envoy ext_authz over HTTP (ExtAuthz)", envoy_with_cookie, 200,
             b.portcullis_process("ext-authz", envoy=True), {"path": EXT_AUTHZ + "/"}),
            ("9", "cookie, Envoy ext_authz over gRPC (Check)", envoy_with_cookie, 200,
             b.portcullis_process("ext-authz-grpc", envoy=True), {"grpc": True}),
            ("10", "case 2, metrics on (scraped every 1s)", with_cookie, 200,
             b.metrics_process("metrics", metrics_port), {"scrape": metrics_port}),
            ("11", "case 2, traces at 100% to a local receiver", with_cookie, 200,
             b.traced_process("traces", receiver), {}),
            ("12", "OIDC token endpoint, client credentials", {"Host": "auth.example.com"}, 200,
             b.portcullis_process("oidc-token", oidc=True), {"path": "/api/oidc/token", "body": TOKEN_BODY}),
            ("13", "OIDC UserInfo, bearer access token",
             lambda port: {"Host": "auth.example.com", "Authorization": f"Bearer {user_access_token(port)}"}, 200,
             b.portcullis_process("oidc-userinfo", oidc=True), {"path": "/api/oidc/userinfo"}),
            ("14", "Bearer API token, cached",
             lambda port: {**TARGET_HEADERS, "Authorization": f"Bearer {api_token(port)}", "Accept": "text/html"}, 200,
             b.portcullis_process("api-token", tokens=True), {}),
        ]
        for case, label, headers, expected, start, options in cases:
            if case in selected:
                b.case(case, label, headers, expected, start, **options)
        idle_rss = b.idle_rss.get("memory", b.idle_rss.get("storm", float("nan")))
    receiver.close()

    base = b.results[0]["requests_per_sec"]
    by_case = {r["case"]: r for r in b.results}
    for r in b.results:
        r["ratio_to_baseline"] = r["requests_per_sec"] / base if base else float("nan")

    print()
    print(f"wrk -t2 -c{args.connections} -d{args.duration} --latency; target {TARGET}")
    print(f"{'case':<5} {'':<44} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'x base':>7} {'RSS MB':>7} "
          f"{'CPU us/req':>10}")
    for r in b.results:
        print(f"{r['case']:<5} {r['label']:<44} {r['requests_per_sec']:>10.0f} {r['p50_ms']:>8.3f} "
              f"{r['p99_ms']:>8.3f} {r['ratio_to_baseline']:>7.2f} {r['rss_mb']:>7.1f} "
              f"{r['server_cpu_us_per_request']:>10.1f}")
    if {"8", "9"} <= set(by_case):
        http, grpc = by_case["8"], by_case["9"]
        print(f"case 9 is {grpc['requests_per_sec'] / http['requests_per_sec']:.2f}x case 8's throughput "
              f"(gRPC: {args.connections} calls in flight over {GRPC_CONNECTIONS} HTTP/2 connections, "
              f"grpc_check_load with 2 threads; HTTP: wrk -c{args.connections})")
    if "6" in by_case:
        storm = by_case["6"]
        print(f"login storm during case 6: {storm['storm_logins_ok']} logins ok, "
              f"{storm['storm_logins_failed']} failed")
    if "11" in by_case:
        print(f"OTLP receiver during case 11: {receiver.exports} exports, {receiver.bytes / 1e6:.1f} MB")
        by_case["11"]["otlp_exports"], by_case["11"]["otlp_bytes"] = receiver.exports, receiver.bytes
    startup_ms = statistics.median(startup)
    print(f"idle RSS right after start: {idle_rss:.1f} MB")
    print(f"start to first 200 on /api/health: median {startup_ms:.1f} ms "
          f"({', '.join(f'{t:.1f}' for t in startup)})")

    def ratio(case):
        return by_case[case]["ratio_to_baseline"]

    def latency(case, percentile):
        return by_case[case][f"p{percentile}_ms"]

    # (name, cases needed, value, limit, met)
    checks = [
        ("case 2 req/s >= 0.7x baseline", {"2"}, lambda: ratio("2"), 0.7, lambda v: v >= 0.7),
        ("case 3 req/s >= 0.6x baseline", {"3"}, lambda: ratio("3"), 0.6, lambda v: v >= 0.6),
        ("case 4 p50 <= 1.2x case 2 p50", {"2", "4"}, lambda: latency("4", 50) / latency("2", 50), 1.2,
         lambda v: v <= 1.2),
        ("case 6 p99 <= 1.5x case 2 p99", {"2", "6"}, lambda: latency("6", 99) / latency("2", 99), 1.5,
         lambda v: v <= 1.5),
        ("case 7 req/s >= 0.5x baseline", {"7"}, lambda: ratio("7"), 0.5, lambda v: v >= 0.5),
        ("case 10 (metrics on) req/s >= 0.95x case 2", {"2", "10"}, lambda: ratio("10") / ratio("2"), 0.95,
         lambda v: v >= 0.95),
        ("case 14 (Bearer API token) req/s >= case 2 (cookie)", {"2", "14"}, lambda: ratio("14") / ratio("2"), 1.0,
         lambda v: v >= 1.0),
        ("case 2b p99 < 1 ms (half of case 2's throughput)", {"2b"}, lambda: latency("2b", 99), 1.0,
         lambda v: v < 1.0),
        ("idle RSS < 15 MB", set(), lambda: idle_rss, 15, lambda v: v < 15),
        ("start to first 200 < 100 ms", set(), lambda: startup_ms, 100, lambda v: v < 100),
    ]
    targets = []
    for name, needs, value, limit, met in checks:
        if needs <= set(by_case):
            v = value()
            targets.append((name, v, limit, met(v)))
    print()
    for name, value, limit, ok in targets:
        print(f"{'PASS' if ok else 'MISS'}  {name}: {value:.2f} (limit {limit})")

    with open(args.json, "w") as f:
        json.dump({
            "wrk": {"threads": 2, "connections": args.connections, "duration": args.duration},
            "grpc_check_load": {"threads": 2, "connections": GRPC_CONNECTIONS, "calls_in_flight": args.connections,
                                "duration": args.duration},
            "target": TARGET,
            "cases": b.results,
            "idle_rss_mb": idle_rss,
            "idle_rss_mb_per_configuration": b.idle_rss,
            "startup_ms": {"median": startup_ms, "runs": startup},
            "targets": [{"name": n, "value": v, "limit": lim, "pass": ok} for n, v, lim, ok in targets],
        }, f, indent=2)
        f.write("\n")
    print(f"\nresults written to {args.json}")


if __name__ == "__main__":
    main()
