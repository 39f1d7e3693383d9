"""httpx's ``httpx._urlparse`` module, where code written for httpx imports its URL parser
from: ``urlparse`` and ``ParseResult`` (corenet.https.urls).

Imported by its full name: where ``sys.modules["httpx"]`` is corenet.https, this module is
loaded again as ``httpx.…``, and a relative import would load a second copy of its
neighbours, whose classes are not corenet.https's."""
from corenet.https.urls import ParseResult, urlparse

__all__ = ["ParseResult", "urlparse"]
