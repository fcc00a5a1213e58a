#!/usr/bin/env python3
"""A real IMAP client (python3 imaplib) driven by the Rust integration tests.

The Rust test asserts on what this prints (one "key value" line per step) and on the exit
code; this script only reports. Any protocol error makes it print "error ..." and exit 1.

  imap_client.py SCENARIO --port N [--host 127.0.0.1] [--tls none|starttls|implicit]
                 [--ca CA.pem] --user U --password P [--auth login|plain|auth-login]
                 [--file PATH] [--mailbox INBOX]

Scenarios:
  session   authenticate, LIST, SELECT INBOX, FETCH 1 (BODY.PEEK[]), NOOP, LOGOUT
  append    authenticate, APPEND --file to --mailbox (synchronizing literal), LOGOUT
  login     authenticate only, then LOGOUT (prints the error text on failure)
"""

import argparse
import imaplib
import ssl
import sys

TIMEOUT = 60  # seconds per socket operation; a hung server fails instead of hanging


def out(key, value=""):
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    print(f"{key} {value}".rstrip(), flush=True)


def context(args):
    ctx = ssl.create_default_context(cafile=args.ca) if args.ca else ssl.create_default_context()
    return ctx


def connect(args):
    if args.tls == "implicit":
        m = imaplib.IMAP4_SSL(args.host, args.port, ssl_context=context(args), timeout=TIMEOUT)
    else:
        m = imaplib.IMAP4(args.host, args.port, timeout=TIMEOUT)
        if args.tls == "starttls":
            typ, data = m.starttls(ssl_context=context(args))
            out("starttls", typ)
    out("greeting", m.welcome)
    out("capabilities", " ".join(m.capabilities))
    return m


def authenticate(m, args):
    if args.auth == "login":
        typ, data = m.login(args.user, args.password)
    elif args.auth == "plain":
        blob = b"\0" + args.user.encode() + b"\0" + args.password.encode()
        typ, data = m.authenticate("PLAIN", lambda _challenge: blob)
    elif args.auth == "auth-login":
        answers = [args.user.encode(), args.password.encode()]
        challenges = []

        def step(challenge):
            challenges.append(challenge)
            return answers[len(challenges) - 1] if len(challenges) <= 2 else b""

        typ, data = m.authenticate("LOGIN", step)
        out("auth-login-challenges", b" | ".join(challenges))
    else:
        raise SystemExit(f"unknown --auth {args.auth}")
    out("auth", f"{typ} {data[0].decode('latin-1') if data and data[0] else ''}")
    out("capabilities-after-auth", " ".join(m.capabilities))


def session(m, args):
    authenticate(m, args)
    typ, data = m.list()
    out("list", f"{typ} {len(data)}")
    for entry in data:
        out("list-entry", entry)
    typ, data = m.select("INBOX")
    out("select", f"{typ} {data[0].decode()}")
    if typ == "OK" and int(data[0]) > 0:
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        body = data[0][1] if data and isinstance(data[0], tuple) else b""
        out("fetch1", f"{typ} {body.hex()}")
    typ, data = m.noop()
    out("noop", typ)
    typ, data = m.logout()
    out("logout", typ)


def append(m, args):
    authenticate(m, args)
    with open(args.file, "rb") as f:
        message = f.read()
    typ, data = m.append(args.mailbox, r"(\Seen)", None, message)
    out("append", f"{typ} {data[0].decode('latin-1') if data and data[0] else ''}")
    typ, data = m.logout()
    out("logout", typ)


def login_only(m, args):
    try:
        authenticate(m, args)
    except imaplib.IMAP4.error as e:
        out("auth-error", str(e))
        return
    m.logout()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["session", "append", "login"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", default="none", choices=["none", "starttls", "implicit"])
    p.add_argument("--ca")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--auth", default="login", choices=["login", "plain", "auth-login"])
    p.add_argument("--file")
    p.add_argument("--mailbox", default="INBOX")
    args = p.parse_args()
    try:
        m = connect(args)
        {"session": session, "append": append, "login": login_only}[args.scenario](m, args)
    except Exception as e:  # report, do not hide: the Rust test prints stdout on failure
        out("error", f"{type(e).__name__}: {e}")
        sys.exit(1)
    out("done")


if __name__ == "__main__":
    main()
