#!/usr/bin/env python3
"""A real SMTP server that captures mail for the notifier tests.

Listens on 127.0.0.1:PORT and stores every accepted message as DIR/<n>.eml (the raw
bytes received, n counting from 1), next to DIR/<n>.json describing the envelope and
session (MAIL FROM, RCPT TO, whether TLS was in use, who authenticated). Files appear
atomically (written under a temporary name, then renamed; the .json before the .eml), so
a reader that sees <n>.eml sees a complete message.

  --auth USER:PASS     require AUTH (PLAIN or LOGIN) with exactly these credentials
  --reject ADDRESS     refuse this recipient with 550 (repeatable)
  --tls-cert C --tls-key K
                       offer STARTTLS with this certificate (or, with --implicit-tls,
                       speak TLS from the first byte)

Prints "ready" on stdout once it accepts connections, then runs until killed.
"""

import argparse
import json
import os
import signal
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Capture:
    """aiosmtpd handler: writes each message to the capture directory."""

    def __init__(self, directory, reject):
        self.directory = directory
        self.reject = {a.lower() for a in reject}
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        login = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode()
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "login": login,
        }
        self._write(f"{n}.json", json.dumps(meta).encode())
        self._write(f"{n}.eml", envelope.original_content)
        return "250 Message accepted for delivery"

    def _write(self, name, data):
        tmp = os.path.join(self.directory, f".{name}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.directory, name))


def authenticator_for(user, password):
    """Accepts PLAIN and LOGIN with exactly `user` and `password`."""

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            mechanism in ("PLAIN", "LOGIN")
            and isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--auth", help="USER:PASS")
    parser.add_argument("--reject", action="append", default=[], metavar="ADDRESS")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--implicit-tls", action="store_true")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.implicit_tls and not args.tls_cert:
        parser.error("--implicit-tls needs --tls-cert and --tls-key")

    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    smtp_options = {}
    if args.auth:
        user, _, password = args.auth.partition(":")
        smtp_options["authenticator"] = authenticator_for(user, password)
        smtp_options["auth_required"] = True
        # AUTH before STARTTLS is allowed only when there is no TLS to be had (and with
        # implicit TLS aiosmtpd does not see the connection as upgraded).
        smtp_options["auth_require_tls"] = bool(tls_context) and not args.implicit_tls

    if args.implicit_tls:
        controller = Controller(
            Capture(args.dir, args.reject), hostname="127.0.0.1", port=args.port, ssl_context=tls_context, **smtp_options
        )
    else:
        controller = Controller(
            Capture(args.dir, args.reject), hostname="127.0.0.1", port=args.port, tls_context=tls_context, **smtp_options
        )
    controller.start()
    print("ready", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
