"""Relying parties for the OpenID Connect step of the browser suite.

- `AuthlibRP`: a small web application whose OpenID Connect client is Authlib (its
  requests integration): discovery, authorization code with PKCE (S256), state and nonce,
  the token request with client_secret_basic, ID token verification against the provider's
  JWKS (signature, iss, aud, exp, nonce), then UserInfo.
- `Apache`: Apache httpd with mod_auth_openidc, configured as its documentation says
  (OIDCProviderMetadataURL, OIDCClientID/Secret, OIDCRedirectURI, OIDCCryptoPassphrase,
  OIDCScope), protecting /protected/.
- `ConnectProxy`: the relying parties reach https://auth.example.com:<port> the way the
  browser does (every *.example.com is this machine): an HTTP CONNECT proxy that sends each
  tunnel to the local TLS port. TLS is still verified against the suite's certificate.
"""
import html
import http.server
import json
import os
import secrets
import select
import socket
import subprocess
import threading
import time
import urllib.parse

import authlib
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt


class ConnectProxy:
    """CONNECT host:port → 127.0.0.1:port."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.running = True
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.tunnel, args=(conn,), daemon=True).start()

    def tunnel(self, conn):
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode()
            method, target, _ = line.split(" ", 2)
            if method != "CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            port = int(target.rsplit(":", 1)[1])
            upstream = socket.create_connection(("127.0.0.1", port))
            conn.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            pair = [conn, upstream]
            while True:
                readable, _, _ = select.select(pair, [], [], 30)
                if not readable:
                    return
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is conn else conn).sendall(data)
        except OSError:
            return
        finally:
            conn.close()

    def stop(self):
        self.running = False
        self.sock.close()


class AuthlibRP:
    """A relying party web application built on Authlib, on http://127.0.0.1:<port>."""

    def __init__(self, port, issuer, client_id, client_secret, ca_file, proxy_port):
        self.port = port
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = f"http://127.0.0.1:{port}/callback"
        self.pending = {}
        self.http = requests.Session()
        # Only what is set here: no CA bundle or proxy from the environment.
        self.http.trust_env = False
        self.http.verify = ca_file
        self.http.proxies = {"https": f"http://127.0.0.1:{proxy_port}"}
        rp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                try:
                    status, headers, body = rp.handle(self.path)
                except Exception as e:  # noqa: BLE001 - shown to the test
                    status, headers, body = 500, {}, f"<p id=error>{html.escape(repr(e))}</p>"
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def metadata(self):
        r = self.http.get(self.issuer + "/.well-known/openid-configuration", timeout=10)
        r.raise_for_status()
        return r.json()

    def session(self):
        s = OAuth2Session(self.client_id, self.client_secret, scope="openid profile email groups",
                          redirect_uri=self.redirect_uri, code_challenge_method="S256",
                          token_endpoint_auth_method="client_secret_basic")
        s.trust_env = False
        s.verify = self.http.verify
        s.proxies = self.http.proxies
        return s

    def handle(self, path):
        url = urllib.parse.urlsplit(path)
        meta = self.metadata()
        if url.path == "/login":
            verifier = secrets.token_urlsafe(48)
            nonce = secrets.token_urlsafe(16)
            uri, state = self.session().create_authorization_url(
                meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
            self.pending[state] = (verifier, nonce)
            return 302, {"Location": uri}, ""
        if url.path == "/callback":
            query = dict(urllib.parse.parse_qsl(url.query))
            if "error" in query:
                return 400, {}, f"<p id=error>{html.escape(query['error'])}</p>"
            if query.get("iss") != self.issuer:
                raise AssertionError(f"iss parameter {query.get('iss')!r}")
            verifier, nonce = self.pending.pop(query["state"])
            s = self.session()
            token = s.fetch_token(meta["token_endpoint"], code=query["code"], code_verifier=verifier,
                                  state=query["state"])
            keys = JsonWebKey.import_key_set(self.http.get(meta["jwks_uri"], timeout=10).json())
            claims = jwt.decode(token["id_token"], keys, claims_options={
                "iss": {"essential": True, "value": self.issuer},
                "aud": {"essential": True, "value": self.client_id},
                "nonce": {"essential": True, "value": nonce},
            })
            claims.validate(leeway=5)
            info = s.get(meta["userinfo_endpoint"]).json()
            if info["sub"] != claims["sub"]:
                raise AssertionError("UserInfo names another subject")
            body = (f"<h1 id=hello>Hello {html.escape(info.get('preferred_username', ''))}</h1>"
                    f"<pre id=claims>{html.escape(json.dumps(dict(claims), sort_keys=True))}</pre>"
                    f"<pre id=userinfo>{html.escape(json.dumps(info, sort_keys=True))}</pre>")
            return 200, {}, body
        return 404, {}, "not found"

    def stop(self):
        self.server.shutdown()


AUTHLIB_VERSION = authlib.__version__


class Apache:
    """Apache httpd with mod_auth_openidc protecting /protected/ on http://127.0.0.1:<port>."""

    MODULES = "/usr/lib/apache2/modules"

    def __init__(self, directory, port, issuer, client_id, client_secret, ca_file, proxy_port):
        self.dir = directory
        self.port = port
        www = os.path.join(directory, "www", "protected")
        os.makedirs(www, exist_ok=True)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("<h1 id=protected>Protected by mod_auth_openidc</h1>\n")
        user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
        config = f"""ServerRoot {directory}
DefaultRuntimeDir {directory}
Mutex file:{directory} default
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {directory}/apache.pid
ErrorLog {directory}/apache-error.log
LogLevel warn auth_openidc:info
LogFormat "%h %u \\"%r\\" %>s" short
CustomLog {directory}/apache-access.log short
{user}LoadModule mpm_event_module {self.MODULES}/mod_mpm_event.so
LoadModule authn_core_module {self.MODULES}/mod_authn_core.so
LoadModule authz_core_module {self.MODULES}/mod_authz_core.so
LoadModule authz_user_module {self.MODULES}/mod_authz_user.so
LoadModule dir_module {self.MODULES}/mod_dir.so
LoadModule auth_openidc_module {self.MODULES}/mod_auth_openidc.so
DocumentRoot {directory}/www
DirectoryIndex index.html

OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCClientID {client_id}
OIDCClientSecret {client_secret}
OIDCRedirectURI http://127.0.0.1:{port}/protected/redirect_uri
OIDCCryptoPassphrase {secrets.token_hex(16)}
OIDCScope "openid email profile groups"
OIDCPKCEMethod S256
OIDCRemoteUserClaim preferred_username
OIDCInfoHook iat access_token id_token userinfo
OIDCCABundlePath {ca_file}
OIDCOutgoingProxy 127.0.0.1:{proxy_port}

<Directory {directory}/www>
  Require all granted
</Directory>
<Location /protected/>
  AuthType openid-connect
  Require valid-user
</Location>
"""
        self.conf = os.path.join(directory, "apache.conf")
        with open(self.conf, "w") as f:
            f.write(config)
        self.log = open(os.path.join(directory, "apache.log"), "wb")
        self.proc = subprocess.Popen(["/usr/sbin/apache2", "-f", self.conf, "-DFOREGROUND"],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 15
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"apache2 exited ({self.proc.returncode}); see {directory}/apache-error.log")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("apache2 did not listen")
                time.sleep(0.1)

    def stop(self):
        import signal
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass

    @staticmethod
    def versions():
        apache = subprocess.run(["/usr/sbin/apache2", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
        module = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libapache2-mod-auth-openidc"],
                                capture_output=True, text=True).stdout
        return apache.replace("Server version: ", ""), module
