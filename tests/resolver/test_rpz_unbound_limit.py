"""The last name of a CNAME chain too long to finish that the response policy sees, side by
side with Unbound (each case on its own lab on port 53, Unbound and corenet-resolver under
one policy zone with one rule): max-cname-chain (11) links are followed and the target of
one more is checked, as Unbound checks a CNAME's target before it counts the restart that
goes past its limit. Apart from ``test_rpz_unbound.py``, whose servers hold port 53 for
the whole of that module."""
from __future__ import annotations

import dns.message
import pytest

from daemon_proc import beside_unbound
from test_rpz_unbound import HEAD, _chain, side_by_side


#: the one rule, the name asked (A), the rcode and answer both servers give: the 12th
#: target (max-cname-chain links and one more) is the last name the policy sees
AT_THE_LIMIT = {
    "12th-target": ("chain20-12.example.com CNAME .\n", "chain20-00.example.com.", "NXDOMAIN",
                    _chain(0, 12, 20)),
    "12th-target-later": ("chain20-13.example.net CNAME .\n", "chain20-01.example.net.",
                          "NXDOMAIN", _chain(1, 13, 20)),
    "13th-target": ("chain20-13.example.net CNAME .\n", "chain20-00.example.com.", "SERVFAIL",
                    []),
}


@pytest.mark.parametrize("case", list(AT_THE_LIMIT))
def test_the_last_name_a_chain_too_long_reaches_is_checked_as_unbound_checks_it(tmp_path, case):
    """A trigger on the 12th target applies, one on the 13th is never met. Each case on its
    own servers (a chain Unbound has cached it checks no more); asked with EDNS, as twelve
    uncompressed CNAMEs are more than 512 bytes."""
    rule, name, rcode, answer = AT_THE_LIMIT[case]
    path = tmp_path / "block.rpz.zone"
    path.write_text(HEAD.format(origin="block.rpz.") + rule)
    conf = tmp_path / "rpz.toml"
    conf.write_text(f'[[rpz]]\nname = "block.rpz."\nzonefile = "{path}"\n')
    ub_rpz = ['  module-config: "respip iterator"', "rpz:", "  name: block.rpz.",
              f'  zonefile: "{path}"']
    with beside_unbound(tmp_path, "--config", str(conf),
                        unbound_extra="\n".join(ub_rpz)) as (ub, d):
        side_by_side(ub, d, case, dns.message.make_query(name, "A", use_edns=0), rcode,
                     answer)
