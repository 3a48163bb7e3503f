"""Who may ask, for both apps: the loopback names, the Host check, the lab's token and origin rule, the security headers.

`Guard` is the one ASGI middleware of both apps. It refuses, in the one error shape (`errors.refusal`):
a Host header outside `allowed_hosts` (a server on a loopback address answers its loopback names only,
against DNS rebinding), a request without the token (the lab's, when it has one), and a change from
another origin (the lab's launches). Every answer carries the security headers: no framing, no referrer,
no sniffing. Pure ASGI rather than FastAPI's @middleware, which buffers through a task per request and
has trouble with streams that never end (the lab's Server-Sent Events).
"""

import hmac
import http.cookies
import ipaddress
import os
import secrets
import urllib.parse

from mnistlab.core import addresses
from mnistlab.core.errors import ConfigError
from mnistlab.web.errors import refusal, shown

LOOPBACK_NAMES = addresses.LOOPBACK_NAMES
TOKEN_COOKIE = "mnistlab_lab_token"  # + "_PORT": two labs on one machine keep their own
TOKEN_VARIABLE = "MNISTLAB_LAB_TOKEN"  # as JUPYTER_TOKEN: a token chosen by the user (still printed in the address)
MIN_TOKEN_CHARACTERS = 16
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# On every answer: no page inside another site's frame (clickjacking), no address (which may carry ?token=) sent
# to another site as a referrer, no content type guessed.
SECURITY_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
)


def hostname(host):
    """The name in a Host header: without its port, an IPv6 address without its brackets."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host):
    """Whether HOST (an address to listen on) is this machine's loopback: a loopback name or address."""
    try:
        return host in LOOPBACK_NAMES or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost
        return False


def allowed_hosts_for(host):
    """The Host names a server listening on HOST answers to.

    On a loopback address, its loopback names alone: DNS rebinding points a foreign name at 127.0.0.1. On any
    other address, every name (None): the server is then meant to be reached from other machines, by whatever
    names and proxies lead to it.
    """
    return tuple(dict.fromkeys((*LOOPBACK_NAMES, host.lower()))) if is_loopback(host) else None


def choose_token(host, no_token=False, environ=os.environ):
    """The lab's token: MNISTLAB_LAB_TOKEN if set, else a fresh random one; None only for --no-token on loopback."""
    if no_token:
        if not is_loopback(host):
            raise ConfigError(
                f"--no-token is for a loopback address only; a lab on {host} is reachable from other machines and needs its token",
                field="no_token",
            )
        return None
    chosen = environ.get(TOKEN_VARIABLE, "")
    if chosen and len(chosen) < MIN_TOKEN_CHARACTERS:
        raise ConfigError(
            f"{TOKEN_VARIABLE} must be at least {MIN_TOKEN_CHARACTERS} characters (it is all that stands between the lab and other users)",
            field="token",
        )
    return chosen or secrets.token_urlsafe(24)


def token_cookie(scope):
    """The token cookie's name, with the port the lab listens on: cookies ignore ports, so two labs on one
    machine would otherwise overwrite each other's."""
    server = scope.get("server") or (None, None)
    return f"{TOKEN_COOKIE}_{server[1]}" if server[1] else TOKEN_COOKIE


class Guard:
    """ASGI middleware: the Host check, the token, same origin for changes, and the security headers on every answer.

    `allowed_hosts`: the Host names answered (None: any); `token`: required of every request when given (as
    `?token=`, then a cookie, or `Authorization: token T` / `Bearer T`); `same_origin`: a request that changes
    anything must come from the app's own origin.
    """

    def __init__(self, app, allowed_hosts=None, token=None, same_origin=False):
        self.app = app
        self.allowed = None if allowed_hosts is None else tuple(name.lower() for name in allowed_hosts)
        self.token = token
        self.same_origin = same_origin

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":  # websockets and whatever comes next: neither app serves one
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return None
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        # The query only ever carries the token: read only where there is one to look for.
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1")) if self.token else {}
        refused = self._refusal(scope, headers, query)
        if refused is not None:
            status, message = refused
            plain = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}
            return await refusal(message, status, headers=plain)(scope, receive, send)
        cookie = None
        if self.token is not None and query.get("token", [None])[0] is not None:
            # The page's own requests (fetch, EventSource, its scripts) then carry the token as a cookie.
            cookie = f"{token_cookie(scope)}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode("latin-1")

        async def send_guarded(message):
            if message["type"] == "http.response.start":
                given = message.get("headers", [])
                present = {name.lower() for name, _ in given}
                extra = [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                if cookie is not None:
                    extra.append((b"set-cookie", cookie))
                message = {**message, "headers": [*given, *extra]}
            await send(message)

        return await self.app(scope, receive, send_guarded)

    def _refusal(self, scope, headers, query):
        """(status, message) of a request refused, or None."""
        host = headers.get("host", "")
        if self.allowed is not None and hostname(host).lower() not in self.allowed:
            named = " or ".join(f"[{name}]" if ":" in name else name for name in self.allowed)
            return (
                403,
                f"this server answers to {named}, the names of the address it listens on, not {shown(host, 100)}; open it by one of those",
            )
        if self.token is not None and not self._has_token(scope, headers, query):
            return (
                401,
                "this lab needs its token: open the address printed at its start (…/?token=…), or send Authorization: token TOKEN",
            )
        if self.same_origin and scope["method"] not in SAFE_METHODS:
            origin = headers.get("origin")
            own = f"{scope.get('scheme', 'http')}://{host}"
            if origin is not None and origin != own:
                return (
                    403,
                    f"a change from another origin ({shown(origin)}) is refused: use the lab's own page at {shown(own)}",
                )
            if origin is None and headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
                return 403, "a change from another site is refused: use the lab's own page"
        return None

    def _has_token(self, scope, headers, query):
        given = (
            query.get("token", [None])[0]
            or _authorization(headers.get("authorization", ""))
            or _cookie(headers.get("cookie", ""), token_cookie(scope))
        )
        return bool(given) and hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())


def _authorization(value):
    """The token of an `Authorization: token T` (Jupyter's) or `Authorization: Bearer T` header."""
    scheme, _, credentials = value.partition(" ")
    return credentials.strip() if scheme.lower() in ("bearer", "token") else None


def _cookie(value, name):
    jar = http.cookies.SimpleCookie()
    try:
        jar.load(value)
    except http.cookies.CookieError:
        return None
    return jar[name].value if name in jar else None
