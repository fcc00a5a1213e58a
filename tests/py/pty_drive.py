#!/usr/bin/env python3
"""Drives a command in a pseudo-terminal, as a person at a terminal would.

  pty_drive.py EXPECT ANSWER [EXPECT ANSWER ...] -- COMMAND ARGS...

Waits for each EXPECT text in the command's output, then types ANSWER and Enter. An ANSWER
written "hidden:TEXT" is typed only once the terminal's echo is off (as a person would see the
password prompt take effect; typing earlier would echo it), and fails if echo never goes off.
Afterwards
reads until the command ends, then prints everything the terminal showed, "exit N" and
"done". Bounded: 120 s in all. Prompts read with echo off (passwords) show nothing of the
answer, so the caller can check that a typed secret never appeared on the screen.
"""

import os
import pty
import select
import sys
import termios
import time

DEADLINE = time.time() + 120


def main():
    split = sys.argv.index("--")
    pairs = sys.argv[1:split]
    cmd = sys.argv[split + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(cmd[0], cmd)
    out = bytearray()

    def read_some():
        """False at end of output (the child closed the terminal)."""
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            return True
        try:
            data = os.read(fd, 4096)
        except OSError:
            return False
        out.extend(data)
        return bool(data)

    pos = 0
    for i in range(0, len(pairs), 2):
        expect = pairs[i].encode()
        while out.find(expect, pos) < 0:
            if time.time() > DEADLINE or not read_some():
                sys.stdout.write(out.decode("utf-8", "replace"))
                print(f"\nerror: no prompt {pairs[i]!r}")
                sys.exit(1)
        pos = out.find(expect, pos) + len(expect)
        answer = pairs[i + 1]
        if answer.startswith("hidden:"):
            answer = answer[len("hidden:"):]
            # On Linux the master side reports the terminal's (slave's) settings.
            while termios.tcgetattr(fd)[3] & termios.ECHO:
                if time.time() > DEADLINE:
                    sys.stdout.write(out.decode("utf-8", "replace"))
                    print(f"\nerror: echo stayed on at {pairs[i]!r}")
                    sys.exit(1)
                time.sleep(0.01)
        # Enter on a terminal is CR; the line discipline turns it into a newline (ICRNL).
        os.write(fd, answer.encode() + b"\r")
    while time.time() < DEADLINE and read_some():
        pass
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode("utf-8", "replace"))
    print(f"\nexit {os.waitstatus_to_exitcode(status)}")
    print("done")


if __name__ == "__main__":
    main()
