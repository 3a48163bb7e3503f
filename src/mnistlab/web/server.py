"""Listening, for both apps: the socket is bound before anything is loaded, so that a busy port is said at once."""

import errno
import socket

from mnistlab.core.errors import ConfigError


def bind(host, port):
    """A socket listening on HOST:PORT, or a one-line ConfigError: bound before any model or store is
    loaded, so that a busy port is said at once, not after a minute of loading."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as error:
        listening.close()
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is in use (another mnistlab serve or lab?); stop it or choose another with --port",
                field="port",
            ) from None
        raise ConfigError(
            f"cannot listen on {host}:{port}: {error.strerror}; check --host and --port", field="port"
        ) from None
    listening.listen(2048)
    return listening


def shown_host(host):
    """HOST as it goes in an address: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host
