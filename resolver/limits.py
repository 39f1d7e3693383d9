"""Every bound a remote peer can push the resolver against, in one place.

Each field has its default and the reason for it. Exhausting any of them ends the client
query with SERVFAIL and a logged reason (never an endless loop). Defaults sit in the range
Unbound and BIND use; pass ``Resolver(limits=Limits(...))`` to change them.
"""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Limits:
    #: Referrals followed for one name. Real names sit 3-6 zones deep; a chain of
    #: referrals longer than this is a broken or hostile delegation.
    max_referrals: int = 30

    #: CNAME/DNAME links followed for one client query (Unbound restarts at most 11 times:
    #: its max-query-restarts).
    max_cname_chain: int = 11

    #: NS names resolved (as sub-queries, for want of glue) per delegation. Bounds the
    #: NRDelegation amplification (CVE-2022-2795): a zone listing hundreds of glueless NS names.
    max_ns_names_per_delegation: int = 6

    #: Nesting of sub-queries (an NS name whose own zone needs an NS name resolved ...).
    #: Deeper nesting only happens with pathological or cyclic delegations.
    max_dependency_depth: int = 4

    #: Upstream queries (including retries and sub-queries) per client query. Bounds the work
    #: one query can make us do; BIND's max-recursion-queries sits around 100.
    max_upstream_queries: int = 64

    #: Wall time for one client query, seconds. A name whose every authority is dead gets its
    #: SERVFAIL within this (Unbound can hold such a query for over a minute; stubs give up
    #: after ~5 s, so an answer later than that is useless).
    max_query_time: float = 4.0

    #: QNAME-minimisation steps (RFC 9156 MAX_MINIMISE_COUNT); past this, the full name is sent.
    max_minimise_count: int = 10

    #: Queries sent to the servers of one zone (for one question) before the zone is given up.
    max_servers_per_zone: int = 8

    #: Times one question is asked again of a zone's other servers after its data was found
    #: bogus (RFC 4035 5.5), as Unbound's val-max-restart, with its default: each attempt
    #: spends the question's own upstream queries, time and signature checks besides, so a
    #: zone whose every server sends bad data costs at most this many more rounds.
    val_max_restart: int = 5

    #: Times one server is asked the same question when its replies are lost (after every
    #: other server of the zone has been tried): a single lost datagram must not SERVFAIL a
    #: zone that has one server. Unbound retries a server several times too. A forward
    #: zone's server that answers an error or cannot be reached is asked no more often
    #: than this for one question either: each try costs it a query or a TLS handshake.
    max_tries_per_server: int = 2

    #: Timeout of one upstream UDP query, seconds, before RTT is known (RFC 6298-style RTO seed,
    #: Unbound's unknown-server-time-limit), and its bounds once the smoothed RTT is known
    #: (Unbound's infra-cache-min-rtt; its infra-cache-max-rtt is two minutes).
    initial_rto: float = 0.376
    min_rto: float = 0.05
    max_rto: float = 1.5

    #: Timeout of one upstream TCP exchange (connect + query + answer), seconds.
    tcp_timeout: float = 2.0

    #: Largest DNS message accepted from TCP, bytes (the protocol maximum).
    max_tcp_message: int = 65535

    #: Compression pointers followed while reading one name. A name has at most 127 labels,
    #: so more jumps than that can only be a loop.
    max_pointer_jumps: int = 128

    #: Records parsed per section of an upstream reply; more is dropped as malformed.
    max_records_per_section: int = 512

    #: Replies nobody asked for (a wrong ID or question: Unbound's unwanted replies) that
    #: may come to the upstream queries' ports before the message and rrset caches are
    #: cleared, and the count starts again (0: never). Each such reply is a
    #: forger's guess at a query in flight; past this many, one may have been right and
    #: poisoned the caches. Unbound's ``unwanted-reply-threshold``, off by default as there.
    unwanted_reply_threshold: int = 0

    #: Records parsed per section of a client's query. Kept for the configurations that set
    #: it: a query whose header counts more than one question, an answer or authority record
    #: or more than one additional record gets FORMERR before it is read (Unbound's check,
    #: ``resolver.response.header_rule``), so a query never reaches this bound.
    max_query_records: int = 64

    #: TTL clamps, seconds. Unbound's cache-max-ttl is one day; a zero TTL is raised to 0 (kept).
    min_ttl: int = 0
    max_ttl: int = 86400
    #: RFC 2308 section 5 suggests 1-3 hours as a cap for negative answers; Unbound uses 1 h.
    max_negative_ttl: int = 3600
    #: A floor for negative answers' lifetimes (0: none, Unbound's default). Set, it replaces
    #: ``min_ttl`` for them: an operator can keep NXDOMAIN floods of one name off the
    #: authorities without holding every positive answer longer.
    min_negative_ttl: int = 0

    #: How long a failure (cyclic delegation, all servers dead) is remembered, seconds
    #: (RFC 9520 asks for at least 1 s and at most 5 min; a short value keeps TsuNAME-style
    #: loops from being re-driven by every retrying client).
    failure_ttl: int = 5
    #: Failures remembered at once (each for ``failure_ttl``): past it the oldest is
    #: forgotten, and expired ones go as new ones come. A flood of random names under a dead
    #: zone makes one failure per name, each never asked again (some 500 bytes each): the
    #: bound keeps them to about a megabyte instead of growing with the flood's rate. 0: no
    #: failure is remembered.
    max_failures: int = 2000

    #: RFC 8767 serve-stale: how long past expiry data may still be served when authorities
    #: fail (the RFC suggests 1-3 days), and the TTL put on such answers (the RFC recommends 30 s).
    stale_window: int = 86400
    stale_answer_ttl: int = 30

    #: Prefetch: a hit in the last fraction of its TTL refreshes it in the background, if the
    #: entry has been asked at least this many times (popular entries only).
    prefetch_fraction: float = 0.1
    prefetch_min_hits: int = 2

    #: Failed/timed-out servers are avoided for this long before being probed again, seconds.
    server_holddown: float = 60.0
    #: Probability of sending a query to a server that is not the fastest (exploration), so
    #: an RTT estimate cannot stay wrong forever.
    exploration: float = 0.05

    #: How long a mark on an authority address lasts, seconds: lame for a zone (it disclaimed
    #: the zone or referred upwards), EDNS refused. A server that was repaired is used again
    #: after this, and a mark made on a bad day cannot cut a zone off for the life of the
    #: process (Unbound's infra-host-ttl, 900 s).
    infra_host_ttl: float = 900.0
    #: Authority addresses the infra cache keeps facts of (RTT, marks, EDNS), and zones it
    #: keeps rate and minimisation marks of: every address a resolution meets would
    #: otherwise stay for the life of the process, and names under many zones make many.
    #: The least recently added go first (Unbound's infra-cache-numhosts, 10000).
    infra_cache_numhosts: int = 10000

    #: Consecutive timeouts after which an authority address that has been silent for
    #: ``max_rto`` since the first of them was sent is marked down: its timeout has backed
    #: off to ``max_rto`` by then (0.4, 0.8, 1.5 s), so one more lost datagram is not what
    #: decides it, queries in flight together that time out together (a burst lost, a
    #: stall of a moment) count as one moment's silence, and a busy server that loses some
    #: of its datagrams answers the others in between and is never marked. From its
    #: ``server_down_timeouts``-th timeout until it answers or is marked, one query at a
    #: time goes to it, and the other questions that need it wait for that one (at most
    #: ``max_queries_per_server`` of them; past that they fail fast) instead of each
    #: sending one more query to a server that may be dead; they go on as soon as it has
    #: its outcome. While down,
    #: questions that need only it fail fast (SERVFAIL, extended error 22) instead of each
    #: one sending and holding a socket until its timeout, which is what a flood of random
    #: names under a dead zone would otherwise cost; the mark lasts ``infra_host_ttl`` (as
    #: Unbound's infrastructure cache, whose RTT backs off to its top and then only probes)
    #: unless a probe is answered first.
    server_down_timeouts: int = 3
    #: While an address is marked down, one query at most per this many seconds goes to it
    #: as a probe, so a server that comes back is used again within this, not after the
    #: whole mark.
    server_probe_interval: float = 5.0
    #: Seconds at least between two resolutions of a forward or stub zone's server names
    #: (``forward-host``, ``stub-host``): their answers' TTL decides when they are asked
    #: again, and a name published with a TTL of 0, or one that fails, would otherwise be
    #: asked again at once, for ever.
    server_name_min_ttl: float = 30.0

    #: Queries sent upstream per zone and second (Unbound's ``ratelimit``); past it only one
    #: in ``ratelimit_factor`` is sent (none with 0) and the others' questions end in
    #: SERVFAIL at once, counted. 0 turns it off, Unbound's default: a popular zone's
    #: servers get thousands of distinct questions a second legitimately, and a dead zone's
    #: flood is bounded by the server being marked down (``server_down_timeouts``). Set it
    #: to bound what a random-name flood under a live zone sends to its servers; per-domain
    #: values are the config's ``ratelimit-for-domain`` and ``ratelimit-below-domain``.
    ratelimit: int = 0
    #: Past ``ratelimit``, one query in this many is sent all the same (Unbound's
    #: ``ratelimit-factor``, 10), so a rate-limited zone's legitimate names still resolve
    #: now and then and fill the cache; 0 sends none.
    ratelimit_factor: int = 10

    #: Upstream UDP queries in flight at once, per process (each its own socket, so each a
    #: descriptor, a timer and a kernel buffer); past it a new question that needs one ends
    #: in SERVFAIL at once, counted (``upstream_capped``). Servers that answer in tens of
    #: milliseconds need far fewer for tens of thousands of queries a second; the only way to
    #: fill it is questions to servers that do not answer, each holding its socket for up to
    #: ``max_rto``, and those are what must not take every descriptor of the process and
    #: every loop iteration's time. 1024 in flight at 50 ms each is 20,000 misses a second
    #: per worker; Unbound's request list (num-queries-per-thread) holds 1024 per thread.
    #: The daemon lowers it at start to what its descriptor limit allows (``max-inflight``).
    max_upstream_sockets: int = 1024
    #: Upstream UDP queries in flight to one authority address; past it the address is
    #: passed over as one marked down is (the question asks another server of the zone, or
    #: fails fast). Before a dead server's timeouts have come back and marked it down, a
    #: flood of names under its zone would otherwise take every socket of
    #: ``max_upstream_sockets`` and the questions to live zones would be shed with them;
    #: 256 in flight at 20 ms each is over 12,000 queries a second to one server.
    max_queries_per_server: int = 256

    # ---- DNSSEC validation: the KeyTrap (CVE-2023-50387) and NSEC3 closest-encloser
    # (CVE-2023-50868) budgets, no looser than Unbound 1.19.1's fixes.

    #: Signature verifications (one RRSIG against one DNSKEY) per rrset. Unbound's
    #: MAX_VALIDATE_RRSIGS is 8; a legitimate rrset needs one, two during an algorithm roll.
    dnssec_max_sig_checks_per_rrset: int = 8

    #: DNSKEYs tried for one RRSIG whose key tag and algorithm they share. Key tags are a
    #: 16-bit checksum, so an honest zone has at most a rare pair; KeyTrap publishes hundreds.
    dnssec_max_key_tag_collisions: int = 4

    #: rrsets validated for one client query before the validation yields to the loop
    #: (Unbound's MAX_VALIDATE_AT_ONCE), and how many such suspensions are allowed before
    #: the answer is bogus (MAX_VALIDATION_SUSPENDS): at most 8 x 17 rrset validations per query.
    dnssec_validations_at_once: int = 8
    dnssec_max_suspends: int = 16

    #: DS records that name a key but whose digest does not match it, per zone, before the
    #: zone is bogus (Unbound's MAX_DS_MATCH_FAILURES).
    dnssec_max_ds_match_failures: int = 4

    #: NSEC3 iterations above this make a proof insecure rather than checked (RFC 9276
    #: section 3.2 allows it; Unbound's val-nsec3-keysize-iterations tops out at 150).
    nsec3_max_iterations: int = 150

    #: NSEC3 name hashes computed for one proof (Unbound's MAX_NSEC3_CALCULATIONS is 8 per
    #: pass with suspension; one pass of ours covers a closest-encloser search of a 32-label
    #: name). Each hash costs iterations+1 SHA-1 rounds, so this bounds a proof at ~4800 rounds.
    nsec3_max_hashes_per_proof: int = 32
    #: ... and for one client query, across all its proofs (a CNAME chain of wildcards plus
    #: a denial): ~19,000 SHA-1 rounds at most, a few milliseconds.
    nsec3_max_hashes_per_query: int = 128

    #: A signature's validity window is checked with an allowance either side for clock
    #: skew between signer and validator: a tenth of the signature's own validity, at least
    #: this many seconds and at most ``dnssec_sig_skew_max`` (Unbound's val-sig-skew-min and
    #: val-sig-skew-max, 1 hour and 1 day). A signer whose clock runs a little ahead
    #: publishes signatures whose inception is in our future; refusing them breaks a
    #: zone that every other validator accepts.
    dnssec_sig_skew_min: int = 3600
    dnssec_sig_skew_max: int = 86400

    #: How long a bogus answer is remembered (RFC 9520 section 3.2: at least 1 s, at most
    #: 5 min; Unbound's val-bogus-ttl is 60), so a broken zone cannot make us revalidate
    #: on every query.
    dnssec_bogus_ttl: int = 60

    #: NSEC3 hashes computed to synthesise one answer from the aggressive NSEC3 cache
    #: (RFC 8198): a 16-label name needs about 34; past it the query is resolved instead.
    nsec3_max_hashes_per_synthesis: int = 40

    #: Validated zone keys (DNSKEY sets and insecure-zone facts) kept, in zones (LRU).
    dnssec_key_cache_zones: int = 10000

    #: DNSKEYs kept parsed with their loaded public key (LRU), keyed by the full rdata so a
    #: rolled key is a new entry: a zone's key set fetched again when its TTL ends reuses
    #: them instead of loading each key into the crypto library again. Zones publish two or
    #: three keys; a few kilobytes of memory each at most (RSA-4096).
    dnssec_key_cache_keys: int = 4096

    # ---- the daemon's stream clients (DNS over TCP and over TLS)

    #: Bytes of answers a client's TCP or TLS connection may have waiting to be sent before
    #: it stops being read: a client that pipelines queries and never reads their answers
    #: otherwise makes us buffer them without end. A hundred answers of a typical size,
    #: beside what the kernel's send buffer holds.
    tcp_max_pending_output: int = 65536

    #: Seconds a client's TCP or TLS connection may stay past ``tcp_max_pending_output`` (or
    #: closing with answers unsent) before it is aborted. A client that reads drains 64 KiB
    #: in milliseconds.
    tcp_write_timeout: float = 5.0

    # ---- the daemon's encrypted listeners (DNS over TLS and over HTTPS)

    #: Seconds a client has to finish its TLS handshake; past it the connection is closed and
    #: counted. A handshake takes a few round trips; one that stalls only holds a descriptor
    #: and a TLS object (Unbound's tls handshake is bound by its tcp-idle-timeout).
    tls_handshake_timeout: float = 5.0

    #: HTTP/2 streams one DoH connection may have open at once (announced in SETTINGS, as
    #: RFC 9113 asks for at least 100): each open stream holds a query in flight. A stream
    #: past it is refused (REFUSED_STREAM) while the client may not have the SETTINGS yet,
    #: and ends the connection (GOAWAY, PROTOCOL_ERROR) once it has acknowledged them.
    doh_max_streams: int = 100

    #: Requests (HTTP/2 streams or HTTP/1.1 requests) on one DoH connection; past it the
    #: connection is ended (GOAWAY once the streams taken are answered / Connection: close)
    #: and the client opens a new one. Bounds the work a stream-reset flood (CVE-2023-44487)
    #: gets out of one connection.
    doh_max_requests_per_connection: int = 10000

    #: Bytes of HTTP request head (request line and headers) accepted. A DoH request needs a
    #: few hundred; the rest only costs memory. Longer heads get 431 or a connection error.
    doh_max_request_head: int = 8192

    #: Header fields in one HTTP/2 header block. A DoH request has six to ten; HPACK lets a
    #: client send thousands of one-byte references to a large table entry per block, each
    #: decoded at our cost (an HPACK bomb: ~16 ms of CPU per block). Past it the connection
    #: ends (GOAWAY, ENHANCE_YOUR_CALM) at that field, before the rest is decoded.
    doh_max_header_fields: int = 64

    #: Header fields decoded on one HTTP/2 connection beyond 16 per request (a DoH request
    #: has six to ten): bounds the HPACK work one connection gets (about a tenth of a second
    #: of CPU) however it spreads it over blocks, while a legitimate client of any length
    #: (a load generator's millions of requests on one connection) never reaches it. Past
    #: it: GOAWAY, ENHANCE_YOUR_CALM.
    doh_max_header_fields_per_connection: int = 100000

    #: Bytes a DoH connection may have waiting to be sent (answers and control-frame ACKs
    #: alike) before it stops being read: a client that sends PINGs and never reads their
    #: ACKs otherwise makes us buffer without end.
    doh_max_pending_output: int = 262144

    #: Bytes of one DoH connection's input handed to HTTP/2 in one go (four TLS records);
    #: the rest waits for the loop's next iteration, the connection not read meanwhile, so
    #: that one connection takes a bounded share of an iteration whatever it sends.
    doh_max_bytes_per_read: int = 65536

    #: Seconds a DoH connection may stay past ``doh_max_pending_output`` (the peer not
    #: reading) before it is aborted. A client that reads drains 256 KiB in milliseconds.
    doh_write_timeout: float = 5.0

    #: Connections from one client address ended for abuse (HPACK budget, a protocol error's
    #: GOAWAY, a stream-reset flood, output not drained) within ``doh_throttle_window``
    #: before the address is throttled: past this many, its new DoH connections are closed
    #: at their accept, before a TLS handshake is paid for, for ``doh_throttle_penalty``.
    #: Each defence ends one connection; an attacker that reconnects after every GOAWAY
    #: would otherwise get a handshake and a fresh budget each time, for ever. A legitimate
    #: client is never ended for abuse, so a few strikes leave room for a broken one.
    #: Unbound has no such setting (its DoH ends an abusive connection and accepts the
    #: next). Counted per worker: with SO_REUSEPORT an address's connections spread over
    #: the workers, each of which throttles it on its own strikes.
    doh_throttle_strikes: int = 5

    #: Seconds over which a client address's connections ended for abuse are counted (from
    #: the first of them; a window that ends starts its count afresh).
    doh_throttle_window: float = 60.0

    #: Seconds a throttled address's new DoH connections are refused at their accept; 0
    #: turns the throttle off. Everyone behind one address (a NAT) shares its penalty, so it
    #: is short enough to be a pause, long enough that reconnecting is not worth a handshake.
    doh_throttle_penalty: float = 60.0

    #: Client addresses the throttle keeps count of, per listener and worker; when it is
    #: full, the address struck least recently is forgotten (a penalised one included: a
    #: flood from more addresses than this is beyond what a per-address penalty can stop,
    #: and the table must not grow with it).
    doh_throttle_clients: int = 10000

    # ---- DNS over TLS to a forward zone's servers

    #: Seconds a connection to a TLS forwarder stays open with no query outstanding; past it
    #: it is closed, and the next query opens a new one. Reuse saves a handshake (two round
    #: trips and the server's signature) per query; closing before the servers' own idle
    #: limit (Unbound's and BIND's tcp-idle-timeout, 30 s) keeps us from sending a query on
    #: a connection the server is closing.
    tls_upstream_idle_timeout: float = 20.0

    #: Queries outstanding at once on one TLS forwarder connection (RFC 7766 pipelining);
    #: past it a query fails over to the zone's next server. Each holds a timer and a slot in
    #: the connection's table, and a server stops reading a connection that pipelines more
    #: than it serves (Unbound's max-reuse-tcp-queries is 200).
    tls_upstream_max_outstanding: int = 200

    # ---- the daemon's clients

    #: Client addresses whose miss rate (``ip-ratelimit``) is tracked at once; past it the
    #: table starts afresh, so a flood from many (spoofed) addresses cannot grow it without
    #: bound.
    max_rate_clients: int = 65536

    # ---- the shared (Redis) cache

    #: Commands (look-ups, writes, deletes) one process may have waiting on the shared cache
    #: at once, all on its one connection to Redis. Each holds its Future and, a write, the
    #: answer; past the bound a look-up is not sent (counted ``busy``) and the query is
    #: resolved, a write is dropped (counted). Redis answers a local one in microseconds:
    #: thousands wait only when it is stuck.
    shared_cache_commands: int = 1024

    #: Writes to the shared cache waiting at once. Writes follow answers off the client's
    #: path; when Redis is slower than the misses arrive, the excess is dropped (counted), so
    #: a slow Redis cannot make the process hold answers without bound.
    shared_cache_pending_writes: int = 256

    #: Seconds a write to the shared cache may take before it is given up (counted).
    shared_cache_write_timeout: float = 1.0

    #: The shared cache's back-off after a failure, seconds: the first and the longest.
    #: While it lasts, look-ups and writes skip Redis; each further failure doubles it.
    shared_cache_backoff: float = 0.05
    shared_cache_max_backoff: float = 5.0

    #: Largest value read back from the shared cache (a DNS message and its header), bytes;
    #: a larger one is not parsed and counts as bad.
    shared_cache_max_value: int = 65535 + 64

    # ---- the control socket

    #: Bytes of one control request (a command and its arguments, or ``load_cache``'s whole
    #: dump); a longer one is refused with an error before it is read on. A dump holds about
    #: 200 bytes per cached answer: this takes the dump of a full 64 MiB cache, and no more
    #: memory than that can be made to wait on a request.
    max_control_request: int = 64 * 1024 * 1024

    #: Control connections served at once, the socket's and the TCP listener's together,
    #: over TLS from the accept on, handshake included (Unbound's remote control serves
    #: 10). Past this a new connection is closed at once (logged), so that connections
    #: which send nothing hold neither the descriptors the resolver needs nor the operator
    #: out for longer than ``control-timeout``.
    control_max_connections: int = 10

    #: Seconds a control connection has for its request line (and, over TLS, for its
    #: handshake), and the longest its client may leave the answer untaken: the answer is
    #: written in pieces of 64 KiB, each to be taken within this, so a client that reads
    #: slowly gets the whole of a large dump and one that stops reading is cut off. The
    #: commands themselves take what they take.
    control_timeout: float = 5.0

    #: Seconds the input of a command that reads one (``load_cache``'s dump, the lists of
    #: ``local_zones``, ``local_datas``...) has to arrive whole, at most
    #: ``max-control-request`` bytes; past it a dump loads nothing.
    control_input_timeout: float = 25.0

    # ---- the metrics endpoint (``metrics``: Prometheus over HTTP, no authentication)

    #: Connections to the metrics endpoint at once. A Prometheus server scrapes with one;
    #: each holds a descriptor (from the limit the listeners and upstream sockets share), a
    #: rendered response and, in the supervisor, a collection from every worker. Past this
    #: a new connection is closed at once, so a peer that opens connections and sends
    #: nothing cannot take the descriptors the resolver needs.
    metrics_max_connections: int = 16

    #: Bytes of a scrape's request head (request line and headers); a longer one ends the
    #: connection. A scraper's request is a few hundred bytes.
    metrics_max_request_head: int = 8192

    #: Seconds a metrics connection has for its request head to arrive, and again for its
    #: response to be taken by the client; past either it is aborted. A scrape on a working
    #: network takes milliseconds.
    metrics_timeout: float = 5.0

    # ---- response policy zones (``[[rpz]]``), from a file or a primary

    #: Records one policy zone may hold. Each becomes a trigger held in memory by every
    #: worker (a few hundred bytes each); a feed past this is refused whole, and the zone
    #: loaded before is kept. Large public block lists hold a few hundred thousand names.
    rpz_max_records: int = 2_000_000

    #: Seconds one zone transfer from a primary may take, all messages together: a primary
    #: that trickles its zone cannot hold a transfer open for ever. The record bound above
    #: is checked when the transfer ends, so this also bounds what one transfer can pour in.
    rpz_transfer_timeout: float = 120.0

    #: The shortest wait between two transfers of a zone, seconds, whatever the zone's SOA
    #: refresh and retry say: a primary cannot make us ask it in a tight loop.
    rpz_min_refresh: float = 5.0

    def replace(self, **changes) -> "Limits":
        """A copy with some fields changed; unknown names raise TypeError."""
        names = {f.name for f in fields(self)}
        for key in changes:
            if key not in names:
                raise TypeError(f"unknown limit {key!r}")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Limits(**values)


DEFAULT = Limits()

#: EDNS0 UDP payload size advertised upstream (DNS Flag Day 2020: avoids IP fragmentation).
EDNS_BUFFER_SIZE = 1232

# The daemon's listener bounds (tcp-idle-timeout, max-udp-size, ip-ratelimit ...) are
# settings of their own, each with the reason for its default: resolver/daemon/settings.py.

#: The most TLS 1.3 session tickets a TLS listener may send after a full handshake
#: (``tls-session-tickets``). A client resumes with one ticket per connection it reopens
#: and keeps a few at most; each ticket costs the server an encryption and a record on
#: every full handshake, so more than this serve no client and only slow handshakes down.
MAX_SESSION_TICKETS = 16
