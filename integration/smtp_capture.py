#!/usr/bin/env python3
"""A local SMTP server for tests: accepts every message on 127.0.0.1 and writes it to a
directory as <n>.eml (raw bytes, written atomically). Optional AUTH for one account.

    smtp_capture.py --port P --dir D [--auth user:password]

Prints "ready" once it listens.
"""
import argparse
import asyncio
import itertools
import os
import signal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        tmp = os.path.join(self.directory, f".{n}.tmp")
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.directory, f"{n}.eml"))
        return "250 Message accepted"


def authenticator(expected):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == expected[0]
            and auth_data.password.decode() == expected[1]
        )
        # handled=False: aiosmtpd answers 535 itself on failure.
        return AuthResult(success=ok, handled=False)

    return check


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--auth")
    args = parser.parse_args()
    kwargs = {}
    if args.auth:
        user, password = args.auth.split(":", 1)
        kwargs = {
            "authenticator": authenticator((user, password)),
            "auth_required": True,
            "auth_require_tls": False,
        }
    controller = Controller(Store(args.dir), hostname="127.0.0.1", port=args.port, **kwargs)
    controller.start()
    print("ready", flush=True)
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    try:
        loop.run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
