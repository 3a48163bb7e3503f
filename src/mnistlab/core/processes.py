"""How a child process ended, in words (the sweep's runner and the server's workers say it the same way)."""

import pathlib
import signal


def oom_kills():
    """How many processes the kernel's out-of-memory killer has ended in this cgroup, or None where it cannot be read."""
    try:
        text = pathlib.Path("/sys/fs/cgroup/memory.events").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == "oom_kill":
            return int(value)
    return None


def how_it_ended(returncode, kills_before=None, kills_after=None):
    """A child's end in words: 'killed by signal 9 (SIGKILL): killed by the kernel: out of memory?', 'exit code 3'."""
    if returncode is None:
        return "still running"
    if returncode >= 0:
        return f"exit code {returncode}"
    number = -returncode
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = "an unknown signal"
    words = f"killed by signal {number} ({name})"
    if number == signal.SIGKILL:
        if kills_before is not None and kills_after is not None and kills_after > kills_before:
            words += ": killed by the kernel: out of memory? (the kernel's out-of-memory killer acted meanwhile)"
        elif kills_before is not None and kills_after is not None:
            words += " (sent by a user or a program: the kernel's out-of-memory killer did not act)"
        else:
            words += " (a user, a program, or the kernel for lack of memory)"
    return words
