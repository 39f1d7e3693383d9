"""Root hints: the shipped file of the root servers' names and addresses, and the reader of
a hints file (or of (name, address) pairs) that a Resolver starts from."""
from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import dns.name

DATA = Path(__file__).parent / "data"
ROOT_HINTS_FILE = DATA / "root.hints"


def parse_root_hints(source) -> list[tuple[bytes, str]]:
    """(NS name wire, address) pairs from a hints file path or from (name, address) pairs."""
    pairs: list[tuple[bytes, str]] = []
    if isinstance(source, (str, os.PathLike)):
        text = Path(source).read_text()
        ns_names: set[bytes] = set()
        addrs: list[tuple[bytes, str]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.split(";", 1)[0].strip()
            if not line:
                continue
            tok = line.split()
            try:
                rtype_i = next(i for i, t in enumerate(tok) if t.upper() in ("NS", "A", "AAAA"))
                owner, rtype, data = tok[0], tok[rtype_i].upper(), tok[rtype_i + 1]
            except (StopIteration, IndexError):
                raise ValueError(f"{source}:{lineno}: cannot read root hint {line!r}") from None
            if rtype == "NS":
                if dns.name.from_text(owner) != dns.name.root:
                    raise ValueError(f"{source}:{lineno}: NS hint for {owner}, not the root")
                ns_names.add(dns.name.from_text(data).to_wire().lower())
            else:
                addrs.append((dns.name.from_text(owner).to_wire(), data))
        pairs = [(n, a) for n, a in addrs if n.lower() in ns_names]
    else:
        for name, addr in source:
            pairs.append((dns.name.from_text(name).to_wire(), str(addr)))
    for name, addr in pairs:
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            raise ValueError(f"root hint {dns.name.from_wire(name, 0)[0]} has {addr!r}, which "
                             "is not a numeric IPv4 or IPv6 address") from None
    if not pairs:
        raise ValueError("root hints contain no usable (NS name, address) pair")
    return pairs
