"""A config of the size an operator reloads: local zones with a few thousand local-data
lines, an RPZ zone file of 10,000 rules, a trust anchor, forward and stub zones and a TLS
key and certificate, written once for corenet-resolver (TOML) and once for Unbound (the
``server:`` lines and clauses), so that both reload the same shape."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests" / d) for d in ("resolver", "")]

from tls_certs import CA  # noqa: E402

LOCAL_ZONES = 20
LOCAL_DATA = 3000            # A records, spread over the local zones
RPZ_RULES = 10_000
# A DS for a zone outside the lab: the lab's names stay insecure, the anchor is still read.
ANCHOR = ("anchored.test. IN DS 20326 8 2 "
          "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D")


class Shape:
    """The files of the shape under ``workdir``: the zones' records, the RPZ zone file, the
    trust anchor and a key and certificate."""

    def __init__(self, workdir: Path, forward: str, stub: str) -> None:
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.forward, self.stub = forward, stub          # ADDR@PORT of lab servers
        self.anchor = self.dir / "anchor.ds"
        self.anchor.write_text(ANCHOR + "\n")
        self.rpz = self.dir / "policy.rpz"
        self.rpz.write_text("\n".join(
            ["$TTL 300", "@ SOA ns.policy.rpz. admin.policy.rpz. 1 3600 600 86400 300",
             "@ NS ns.policy.rpz."]
            + [f"blocked{i}.ads{i % 97}.test CNAME ." for i in range(RPZ_RULES)]) + "\n")
        self.pem, self.key = CA(self.dir / "pki").issue("server")

    def zones(self) -> dict[str, list[str]]:
        """Each local zone's name and its A records (``NAME A ADDR``)."""
        out: dict[str, list[str]] = {}
        for i in range(LOCAL_DATA):
            zone = f"site{i % LOCAL_ZONES}.internal."
            out.setdefault(zone, []).append(
                f"h{i}.{zone} 300 A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        return out

    def corenet_toml(self, tls_port: int) -> str:
        lines = [f'trust-anchor = "{self.anchor}"',
                 f'tls-listen = ["127.0.0.1:{tls_port}"]',
                 f'tls-service-pem = "{self.pem}"', f'tls-service-key = "{self.key}"', ""]
        for zone, data in self.zones().items():
            lines += ["[[local-zone]]", f'name = "{zone}"', 'type = "static"',
                      "local-data = [" + ", ".join(f'"{d}"' for d in data) + "]", ""]
        lines += ["[[forward-zone]]", 'name = "forwarded.test."',
                  f'forward-addr = ["{self.forward}"]', "",
                  "[[stub-zone]]", 'name = "stubbed.test."', f'stub-addr = ["{self.stub}"]', "",
                  "[[rpz]]", 'name = "policy.rpz."', f'zonefile = "{self.rpz}"', ""]
        return "\n".join(lines)

    def unbound_lines(self) -> list[str]:
        """``server:`` lines, then the clauses (forward, stub, rpz) after them."""
        lines = [f'  trust-anchor-file: "{self.anchor}"',
                 f'  tls-service-pem: "{self.pem}"', f'  tls-service-key: "{self.key}"',
                 '  module-config: "respip iterator"']
        for zone, data in self.zones().items():
            lines.append(f'  local-zone: "{zone}" static')
            lines += [f'  local-data: "{d}"' for d in data]
        lines += ["forward-zone:", '  name: "forwarded.test."',
                  f"  forward-addr: {self.forward}",
                  "stub-zone:", '  name: "stubbed.test."', f"  stub-addr: {self.stub}",
                  "rpz:", '  name: "policy.rpz."', f'  zonefile: "{self.rpz}"', "server:"]
        return lines
