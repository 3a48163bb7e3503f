"""Where the two servers listen by default, and the names that mean this machine: one place for each."""

DEFAULT_HOST = "127.0.0.1"  # this machine only; another address is a choice the user makes
SERVE_PORT = 8000  # `mnistlab serve`: the draw page
LAB_PORT = 8100  # `mnistlab lab`
# Host names a loopback server answers to (the DNS-rebinding check): any other name is refused.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
