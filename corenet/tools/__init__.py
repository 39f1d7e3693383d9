"""Commands built on corenet's library: ``fetch`` (``corenet-fetch``, a curl-like client on
:mod:`corenet.https`). Nothing in the library imports this package."""
