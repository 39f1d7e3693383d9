"""httpx's ``httpx._utils`` names that code written for httpx imports: ``URLPattern`` and
``get_environment_proxies`` (corenet.https.proxy).

Imported by its full name: where ``sys.modules["httpx"]`` is corenet.https, this module is
loaded again as ``httpx.…``, and a relative import would load a second copy of its
neighbours, whose classes are not corenet.https's."""
from corenet.https.proxy import URLPattern, get_environment_proxies

__all__ = ["URLPattern", "get_environment_proxies"]
