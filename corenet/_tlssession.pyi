# Type stub for the compiled module corenet._tlssession: TLS sessions shared with OpenSSL by
# reference (corenet.tls re-exports session_of and resume).
import ssl

DIRECT: bool

class TLSSession:
    """A resumable OpenSSL session and the context it was made in."""

    @property
    def context(self) -> ssl.SSLContext: ...

def session_of(sslobject: ssl.SSLObject) -> TLSSession | ssl.SSLSession | None: ...
def resume(sslobject: ssl.SSLObject, session: TLSSession | ssl.SSLSession) -> bool: ...
