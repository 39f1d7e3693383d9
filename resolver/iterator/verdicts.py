"""What a validator tells the iterator: the hook's type, the security values it sets on a
reply, and Bogus, which it raises for data that fails."""
from __future__ import annotations

from typing import Callable

#: A validator sits between replies and the cache. It is called as
#: ``validator(parsed, zone, server, iterator)`` for every usable reply and returns the reply
#: to use (it may drop records, and sets ``parsed.security`` to SECURE so the rrsets are cached
#: at the VALIDATED rank) or raises :class:`Bogus`. It may instead return a generator: the
#: iterator runs it with ``yield from``, so it can fetch DNSKEY/DS through
#: ``iterator.lookup(name, rdtype)`` inside the same state machine and budget.
Validator = Callable[[object, bytes, str, object], object]    # the last: the Iterator

#: values of ``Parsed.security``
UNCHECKED, INSECURE, SECURE, BOGUS = 0, 1, 2, 3


class Bogus(Exception):
    """Raised by a validator for data that fails validation; the client query gets SERVFAIL."""
