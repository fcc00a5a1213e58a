#!/usr/bin/env python3
"""smtplib client for tests/smtp.rs: one message with DSN parameters (RFC 3461).

Usage: smtp_dsn.py HOST PORT USER PASSWORD FROM RCPT ENVID ORCPT

Sends with mail_options RET=HDRS and ENVID, rcpt_options NOTIFY=SUCCESS,FAILURE and ORCPT.
Prints "dsn True|False" (EHLO advertised DSN), then "OK" or "FAIL code text", then "done".
"""
import smtplib
import sys


def main():
    host, port, user, pw, frm, rcpt, envid, orcpt = sys.argv[1:9]
    s = smtplib.SMTP(host, int(port), timeout=120)
    s.ehlo()
    print("dsn", s.has_extn("dsn"), flush=True)
    s.login(user, pw)
    try:
        s.sendmail(
            frm,
            [rcpt],
            b"Subject: dsn\r\n\r\nasks for a delivery notice\r\n",
            mail_options=["RET=HDRS", "ENVID=" + envid],
            rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=" + orcpt],
        )
        print("OK", flush=True)
    except smtplib.SMTPResponseException as e:
        print("FAIL", e.smtp_code, e.smtp_error.decode(errors="replace"), flush=True)
    except smtplib.SMTPRecipientsRefused as e:
        for code, text in e.recipients.values():
            print("FAIL", code, text.decode(errors="replace"), flush=True)
    s.quit()
    print("done", flush=True)


if __name__ == "__main__":
    main()
