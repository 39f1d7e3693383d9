"""The DNS wire format: names (``names.pxd``) and the message codec (``codec``)."""
