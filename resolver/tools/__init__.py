"""Command-line tools over the resolver library: ``dig`` (``corenet-resolver query``)."""
