#!/usr/bin/env python3
"""smtplib client for tests/smtp.rs: log in, send each (recipient, file) on one connection.

Usage: smtp_send.py HOST PORT USER PASSWORD FROM RCPT FILE [RCPT FILE ...]

Prints one line per message, "OK rcpt" or "FAIL rcpt code text", then "done" after QUIT
(the caller checks for it, so a script that stopped early cannot pass).
"""
import smtplib
import sys


def main():
    host, port, user, pw, frm = sys.argv[1:6]
    pairs = sys.argv[6:]
    s = smtplib.SMTP(host, int(port), timeout=300)
    s.ehlo()
    s.login(user, pw)
    for i in range(0, len(pairs), 2):
        rcpt, path = pairs[i], pairs[i + 1]
        with open(path, "rb") as f:
            data = f.read()
        try:
            s.sendmail(frm, [rcpt], data, mail_options=["BODY=8BITMIME"])
            print("OK", rcpt, flush=True)
        except smtplib.SMTPResponseException as e:
            print("FAIL", rcpt, e.smtp_code, e.smtp_error.decode(errors="replace"), flush=True)
            s.rset()
    s.quit()
    print("done", flush=True)


if __name__ == "__main__":
    main()
