"""Policies applied to client queries: response policy zones (``rpz``)."""
