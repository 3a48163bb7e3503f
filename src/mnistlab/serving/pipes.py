"""The front's end of a worker's pipe: a duplex multiprocessing Pipe, which is a Unix socketpair, whose writes
block once what the worker has not read fills its buffer (`workers.WorkerPool._send` decides from these whether a
write may be made in the event loop)."""

import contextlib
import os
import socket
import sys

try:  # POSIX: how much of a pipe its reader has not read yet
    import fcntl
    import termios
except ImportError:  # Windows: `fits` says no, and every write to a worker goes through its sending thread
    fcntl = termios = None


def fits(connection, size, buffer_bytes):
    """Whether SIZE bytes more fit in CONNECTION's pipe with room to spare: what its reader has not read yet
    (Linux's TIOCOUTQ on a Unix socket counts each write's bookkeeping too, about 1 KiB) and twice SIZE within half
    of BUFFER_BYTES. False where that cannot be read (other systems)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # AttributeError: no fcntl, or no connection
        unread = fcntl.ioctl(connection.fileno(), termios.TIOCOUTQ, bytes(4))
        return int.from_bytes(unread, sys.byteorder, signed=True) + 2 * size + 4096 <= buffer_bytes // 2
    return False


def buffer_bytes(connection):
    """The send buffer of CONNECTION's socket: about 208 KiB on Linux, 8 KiB on macOS. 0 when it cannot be read,
    so that `fits` always says no."""
    with contextlib.suppress(OSError, ValueError):
        with socket.socket(fileno=os.dup(connection.fileno())) as duplicate:
            return duplicate.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    return 0
