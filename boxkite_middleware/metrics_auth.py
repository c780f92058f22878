"""Who may read ``/metrics``: an address allow-list, a bearer token, basic auth.

Secrets come from environment variables named in the config, never from the
YAML file itself. Credentials are compared in constant time, and refusals say
nothing beyond their status line.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

UNAUTHORIZED = b"Unauthorized\n"
FORBIDDEN = b"Forbidden\n"


@dataclass(frozen=True)
class MetricsAccess:
    """The checks a scrape must pass; ``allow`` empty means any address."""

    allow: tuple[Network, ...] = ()
    bearer: bytes | None = None  # the whole expected Authorization header
    basic: bytes | None = None

    @classmethod
    def build(
        cls, allow: Sequence[str] = (), token: str | None = None, user_password: str | None = None
    ) -> MetricsAccess:
        networks = tuple(ipaddress.ip_network(a, strict=False) for a in allow)
        bearer = f"Bearer {token}".encode() if token else None
        basic = b"Basic " + base64.b64encode(user_password.encode()) if user_password else None
        return cls(networks, bearer, basic)

    @property
    def challenge(self) -> str:
        return (
            'Basic realm="metrics"' if self.basic is not None and self.bearer is None else "Bearer"
        )

    def refuse(self, client: str | None, authorization: str | None) -> int | None:
        """None when the scrape may go on; else 403 (address) or 401 (credentials)."""
        if self.allow and not self._allowed(client):
            return 403
        if self.bearer is None and self.basic is None:
            return None
        given = (authorization or "").strip().encode("latin-1", "replace")
        # compare_digest against each accepted value, so timing does not reveal which
        # one, or how much of it, matched.
        ok = False
        for expected in (self.bearer, self.basic):
            if expected is not None:
                ok |= hmac.compare_digest(given, expected)
        return None if ok else 401

    def _allowed(self, client: str | None) -> bool:
        if not client:
            return False
        try:
            address = ipaddress.ip_address(client.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.allow)
