"""Every keyword Unbound's config reader knows, as of Unbound 1.26: its options of every
clause, its clauses and its includes (its lexer's words). ``unbound_conf`` takes a word
outside them for what unbound-checkconf takes it for, an unknown keyword (a typo, or an
option of an Unbound newer than this list), and refuses it; a word among them that corenet
has no setting for is carried over as nothing, with the reason."""

KEYWORDS = frozenset("""
access-control access-control-tag access-control-tag-action access-control-tag-data
access-control-view add-holddown additional-ssl-port additional-tls-port aggressive-nsec
allow-notify answer-cookie auth-zone auto-trust-anchor-file backend cache-max-negative-ttl
cache-max-ttl cache-min-negative-ttl cache-min-ttl cachedb cachedb-check-when-serve-expired
cachedb-no-store caps-exempt caps-whitelist chroot client-subnet-always-forward
client-subnet-opcode client-subnet-zone control-cert-file control-enable control-interface
control-key-file control-port control-use-cert cookie-secret cookie-secret-file define-tag
del-holddown delay-close deny-any directory disable-dnssec-lame-check disable-edns-do
discard-timeout dlv-anchor dlv-anchor-file dns-error-reporting dns64-ignore-aaaa dns64-prefix
dns64-synthall dnscrypt dnscrypt-enable dnscrypt-nonce-cache-size dnscrypt-nonce-cache-slabs
dnscrypt-port dnscrypt-provider dnscrypt-provider-cert dnscrypt-provider-cert-rotated
dnscrypt-secret-key dnscrypt-shared-secret-cache-size dnscrypt-shared-secret-cache-slabs dnstap
dnstap-bidirectional dnstap-enable dnstap-identity dnstap-ip dnstap-log-client-query-messages
dnstap-log-client-response-messages dnstap-log-forwarder-query-messages
dnstap-log-forwarder-response-messages dnstap-log-resolver-query-messages
dnstap-log-resolver-response-messages dnstap-sample-rate dnstap-send-identity
dnstap-send-version dnstap-socket-path dnstap-tls dnstap-tls-cert-bundle
dnstap-tls-client-cert-file dnstap-tls-client-key-file dnstap-tls-server-name dnstap-version
do-daemonize do-ip4 do-ip6 do-nat64 do-not-query-address do-not-query-localhost do-tcp do-udp
domain-insecure dynlib dynlib-file ede ede-serve-expired edns-buffer-size edns-client-string
edns-client-string-opcode edns-tcp-keepalive edns-tcp-keepalive-timeout extended-statistics
fake-dsa fake-sha1 fallback-enabled fast-server-num fast-server-permil for-downstream
for-upstream forward-addr forward-first forward-host forward-no-cache forward-ssl-upstream
forward-tcp-upstream forward-tls-upstream forward-zone harden-algo-downgrade
harden-below-nxdomain harden-dnssec-stripped harden-glue harden-large-queries
harden-referral-path harden-short-bufsize harden-unknown-additional harden-unverified-glue
hide-http-user-agent hide-identity hide-trustanchor hide-version http-endpoint http-max-streams
http-nodelay http-notls-downstream http-query-buffer-size http-response-buffer-size
http-user-agent https-port identity ignore-cd-flag include include-toplevel incoming-num-tcp
infra-cache-lame-size infra-cache-max-rtt infra-cache-min-rtt infra-cache-numhosts
infra-cache-slabs infra-host-ttl infra-keep-probing infra-lame-ttl insecure-lan-zones interface
interface-action interface-automatic interface-automatic-ports interface-tag
interface-tag-action interface-tag-data interface-view ip-address ip-dscp ip-freebind
ip-ratelimit ip-ratelimit-backoff ip-ratelimit-cookie ip-ratelimit-factor ip-ratelimit-size
ip-ratelimit-slabs ip-transparent ipsecmod-allow ipsecmod-enabled ipsecmod-hook
ipsecmod-ignore-bogus ipsecmod-max-ttl ipsecmod-strict ipsecmod-whitelist ipset
iter-scrub-cname iter-scrub-ns iter-scrub-promiscuous iter-scrub-rrsig jostle-timeout
keep-missing key-cache-size key-cache-slabs local-data local-data-ptr local-zone
local-zone-override local-zone-tag log-destaddr log-identity log-local-actions log-queries
log-replies log-servfail log-tag-queryreply log-thread-id log-time-ascii log-time-iso logfile
low-rtt low-rtt-pct low-rtt-permil master max-client-subnet-ipv4 max-client-subnet-ipv6
max-ecs-tree-size-ipv4 max-ecs-tree-size-ipv6 max-global-quota max-query-restarts
max-reuse-tcp-queries max-sent-count max-transfer-size max-transfer-time max-udp-size
min-client-subnet-ipv4 min-client-subnet-ipv6 minimal-responses module-config msg-buffer-size
msg-cache-size msg-cache-slabs name name-v4 name-v6 nat64-prefix neg-cache-size nsid
num-queries-per-thread num-threads outbound-msg-retry outgoing-interface outgoing-num-tcp
outgoing-port-avoid outgoing-port-permit outgoing-range outgoing-tcp-mss pad-queries
pad-queries-block-size pad-responses pad-responses-block-size permit-small-holddown pidfile
port prefer-ip4 prefer-ip6 prefetch prefetch-key primary private-address private-domain
proxy-protocol-port python python-script qname-minimisation qname-minimisation-strict quic-port
quic-size ratelimit ratelimit-backoff ratelimit-below-domain ratelimit-factor
ratelimit-for-domain ratelimit-size ratelimit-slabs redis-command-timeout redis-connect-timeout
redis-expire-records redis-logical-db redis-replica-command-timeout
redis-replica-connect-timeout redis-replica-logical-db redis-replica-server-host
redis-replica-server-password redis-replica-server-path redis-replica-server-port
redis-replica-timeout redis-server-host redis-server-password redis-server-path
redis-server-port redis-timeout remote-control response-ip response-ip-data response-ip-tag
root-hints root-key-sentinel rpz rpz-action-override rpz-cname-override rpz-log rpz-log-name
rpz-signal-nxdomain-ra rrset-cache-size rrset-cache-slabs rrset-roundrobin secret-seed
send-client-subnet serve-expired serve-expired-client-timeout serve-expired-reply-ttl
serve-expired-ttl serve-expired-ttl-reset serve-original-ttl server server-cert-file
server-key-file shm-enable shm-key so-rcvbuf so-reuseport so-sndbuf sock-queue-timeout
ssl-cert-bundle ssl-port ssl-service-key ssl-service-pem ssl-upstream statistics-cumulative
statistics-inhibit-zero statistics-interval stream-wait-size stub-addr stub-first stub-host
stub-no-cache stub-prime stub-ssl-upstream stub-tcp-upstream stub-tls-upstream stub-zone tags
target-fetch-policy tcp-auth-query-timeout tcp-connection-limit tcp-idle-timeout tcp-mss
tcp-reuse-timeout tcp-upstream tls-additional-port tls-additional-ports tls-cert-bundle
tls-ciphers tls-ciphersuites tls-port tls-protocols tls-service-key tls-service-pem
tls-session-ticket-keys tls-system-cert tls-upstream tls-use-sni tls-win-cert trust-anchor
trust-anchor-file trust-anchor-signaling trusted-keys-file udp-connect
udp-upstream-without-downstream unblock-lan-zones unknown-server-time-limit
unwanted-reply-threshold url use-caps-for-id use-syslog use-systemd username val-bogus-ttl
val-clean-additional val-log-level val-max-restart val-nsec3-keysize-iterations
val-override-date val-permissive-mode val-sig-skew-max val-sig-skew-min verbosity version view
view-first wait-limit wait-limit-cookie wait-limit-cookie-netblock wait-limit-netblock zonefile
zonemd-check zonemd-permissive-mode zonemd-reject-absence
""".split())
