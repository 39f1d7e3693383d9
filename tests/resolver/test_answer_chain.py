"""replies.answer_chain: the part of an answer section that answers the question."""
from __future__ import annotations

import dns.name

from resolver.iterator.replies import answer_chain

A, CNAME, TXT, RRSIG, DNAME = 1, 5, 16, 46, 39


def W(text: str) -> bytes:
    return dns.name.from_text(text).to_wire()


def rec(owner: str, rdtype: int, rdata: bytes) -> tuple:
    return (W(owner), rdtype, 1, 300, rdata)


def sig(owner: str, covered: int) -> tuple:
    return rec(owner, RRSIG, covered.to_bytes(2, "big") + b"\x08\x02")


def test_an_answer_of_the_question_alone_is_the_section_itself():
    answer = [rec("www.example.", A, b"\x01\x02\x03\x04")]
    assert answer_chain(answer, W("WWW.example."), A, 9) is answer


def test_other_rrsets_are_left_out_signed_or_not():
    answer = [rec("www.example.", A, b"\x01\x02\x03\x04"), rec("www.example.", TXT, b"\x01x"),
              rec("other.example.", A, b"\x05\x06\x07\x08")]
    assert answer_chain(answer, W("www.example."), A, 9) == answer[:1]
    signed = [answer[0], sig("www.example.", A), answer[1], sig("www.example.", TXT),
              answer[2], sig("other.example.", A)]
    assert answer_chain(signed, W("www.example."), A, 9) == signed[:2]


def test_the_chain_is_followed_with_its_signatures_and_stops_at_a_loop():
    answer = [rec("a.example.", CNAME, W("b.example.")), sig("a.example.", CNAME),
              rec("b.example.", CNAME, W("c.example.")), rec("c.example.", A, b"\x01\x01\x01\x01"),
              sig("c.example.", A), rec("d.example.", A, b"\x02\x02\x02\x02")]
    assert answer_chain(answer, W("a.example."), A, 9) == answer[:5]
    assert answer_chain(answer, W("a.example."), A, 2) == answer[:3]
    loop = [rec("a.example.", CNAME, W("b.example.")), rec("b.example.", CNAME, W("A.example.")),
            rec("x.example.", A, b"\x01\x01\x01\x01")]
    assert answer_chain(loop, W("a.example."), A, 9) == loop[:2]


def test_a_dname_synthesises_the_next_link():
    answer = [rec("example.", DNAME, W("example.net.")),
              rec("www.example.net.", A, b"\x01\x02\x03\x04"),
              rec("www.example.org.", A, b"\x01\x02\x03\x04")]
    assert answer_chain(answer, W("www.example."), A, 9) == answer[:2]
