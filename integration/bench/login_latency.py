#!/usr/bin/env python3
"""Login latency with default Argon2id parameters, against the release binary.

Starts Portcullis (memory sessions, SQLite) on a free loopback port with one user whose
password hash uses the default parameters, then sends a bounded number of
POST /api/firstfactor requests at a fixed concurrency and prints p50/p90/p99.
Usage: integration/bench/login_latency.py [--requests N] [--concurrency C]
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.join(ROOT, "target", "release", "portcullis")
PASSWORD = "a benchmark password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)

    digest = subprocess.run([BINARY, "crypto", "hash", "generate", "argon2", "--password", PASSWORD],
                            check=True, capture_output=True, text=True).stdout.strip().removeprefix("Digest: ")
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "users.yml"), "w") as f:
            f.write(f"users:\n  bench:\n    displayname: Bench\n    password: '{digest}'\n")
        with open(os.path.join(d, "c.yml"), "w") as f:
            f.write(f"""
server: {{address: 'tcp://127.0.0.1:{port}/'}}
log: {{level: warn}}
authentication_backend: {{file: {{path: '{d}/users.yml'}}}}
regulation: {{max_retries: 0}}
session: {{cookies: [{{domain: example.com, authelia_url: 'https://auth.example.com/'}}]}}
storage: {{encryption_key: 'a-benchmark-encryption-key', local: {{path: '{d}/db.sqlite3'}}}}
notifier: {{filesystem: {{filename: '{d}/n.txt'}}}}
identity_validation: {{reset_password: {{jwt_secret: 'a-benchmark-jwt-secret-value'}}}}
""")
        server = subprocess.Popen([BINARY, "--config", os.path.join(d, "c.yml")], cwd=d)
        try:
            deadline = time.time() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        sys.exit("server did not start")
                    time.sleep(0.02)
            body = json.dumps({"username": "bench", "password": PASSWORD})

            def one(_):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                start = time.perf_counter()
                conn.request("POST", "/api/firstfactor", body,
                             {"Host": "auth.example.com", "Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                elapsed = (time.perf_counter() - start) * 1000
                conn.close()
                if response.status != 200:
                    raise SystemExit(f"login failed: {response.status}")
                return elapsed

            with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
                times = sorted(pool.map(one, range(args.requests)))
        finally:
            server.terminate()
            server.wait()
    q = statistics.quantiles(times, n=100)
    print(f"logins={args.requests} concurrency={args.concurrency} "
          f"p50={q[49]:.1f}ms p90={q[89]:.1f}ms p99={q[98]:.1f}ms max={times[-1]:.1f}ms")


if __name__ == "__main__":
    main()
