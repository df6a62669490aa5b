#!/usr/bin/python3
"""A real SMTP server for forewarn's tests: stores what it receives.

Run it with Debian's python3 (which has python3-aiosmtpd):

    /usr/bin/python3 tests/support/smtp_sink.py --port 0 --dir OUT

The first line on stdout is the bound TCP port. Each accepted message N
(from 1) becomes OUT/N.json (envelope: mail_from, rcpt_tos, helo, login,
peer) and then OUT/N.eml (the raw message, written atomically), so a reader
that sees N.eml also finds N.json. SIGTERM or SIGINT stops it with status 0.

Test knobs: --data-reply "451 4.3.0 Try again later" answers DATA with that
reply instead of storing; --auth USER:PASSWORD advertises AUTH PLAIN/LOGIN
(without TLS) and only accepts those credentials.
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, out_dir, data_reply):
        self.out_dir = out_dir
        self.data_reply = data_reply
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.count += 1
        n = self.count
        auth = session.auth_data
        login = auth.login.decode(errors="replace") if isinstance(auth, LoginPassword) else None
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "helo": session.host_name,
            "login": login,
            "peer": list(session.peer) if session.peer else None,
        }
        write_atomic(os.path.join(self.out_dir, f"{n}.json"), json.dumps(meta, indent=1).encode())
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        write_atomic(os.path.join(self.out_dir, f"{n}.eml"), content)
        return "250 2.0.0 Message accepted for delivery"


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def make_authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        # handled=False makes aiosmtpd answer 535 itself.
        return AuthResult(success=False, handled=False)

    return check


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--dir", required=True, help="where messages are written")
    p.add_argument("--data-reply", default=None, help='answer DATA with this, e.g. "550 5.7.1 Rejected"')
    p.add_argument("--auth", default=None, metavar="USER:PASSWORD")
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    handler = Sink(args.dir, args.data_reply)
    # AUTH without TLS is what --auth is for; aiosmtpd warns about it.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    opts = {"hostname": "smtp-sink.test", "auth_require_tls": False}
    if args.auth:
        user, _, password = args.auth.partition(":")
        opts.update(authenticator=make_authenticator(user, password), auth_required=True)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, **opts), host=args.host, port=args.port)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
