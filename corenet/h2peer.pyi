# Type stub for the compiled module corenet.h2peer: the base of corenet's HTTP/2 peers on
# nghttp2 (the HTTPS client's session, the DNS-over-HTTPS server's); its interface is
# Cython's (corenet/h2peer.pxd), nothing of it is called from Python.

class H2Peer: ...
