#!/usr/bin/env python3
"""smtplib over TLS for tests/tls.rs: SMTP_SSL (implicit) or SMTP + starttls(), trusting one CA.

Usage: smtp_tls.py implicit|starttls HOST PORT CA USER PASSWORD FROM RCPT FILE

Prints "features-before-tls ..." (starttls only), "features ...", "OK rcpt" or
"FAIL rcpt code text", then "done" after QUIT (the caller checks for it).
"""
import smtplib
import ssl
import sys

TIMEOUT = 60


def main():
    mode, host, port, ca, user, pw, frm, rcpt, path = sys.argv[1:10]
    ctx = ssl.create_default_context(cafile=ca)
    if mode == "implicit":
        s = smtplib.SMTP_SSL(host, int(port), context=ctx, timeout=TIMEOUT)
    else:
        s = smtplib.SMTP(host, int(port), timeout=TIMEOUT)
        s.ehlo()
        print("features-before-tls", " ".join(sorted(s.esmtp_features)), flush=True)
        s.starttls(context=ctx)
    s.ehlo()
    print("features", " ".join(sorted(s.esmtp_features)), flush=True)
    s.login(user, pw)
    with open(path, "rb") as f:
        data = f.read()
    try:
        s.sendmail(frm, [rcpt], data)
        print("OK", rcpt, flush=True)
    except smtplib.SMTPResponseException as e:
        print("FAIL", rcpt, e.smtp_code, e.smtp_error.decode(errors="replace"), flush=True)
    s.quit()
    print("done", flush=True)


if __name__ == "__main__":
    main()
