"""The cache's constants, in a module that imports nothing: the compiled iterator reads them
while the cache package itself may still be loading (the cache's compiled store uses the
iterator's reply helpers, so either package can be the first one imported)."""

# RFC 2181 5.4.1 trust ranks, low to high. Data replaces cached data only at the same or a
# higher rank (or when the cached data has expired), so glue never overrides an answer.
HINT = 0
ADDITIONAL = 1          # additional section of an answer (not glue)
GLUE = 2                # additional section of a referral
REFERRAL = 3            # NS set in a referral's authority section (the parent's copy)
NONAUTH_ANSWER = 4      # answer section without AA
AUTH_AUTHORITY = 5      # authority section of an authoritative answer
AUTH_ANSWER = 6         # answer section with AA
VALIDATED = 7           # DNSSEC-secure (set by resolver.dnssec's validator)

#: The rrset cache's key type for "this name does not exist".
NXDOMAIN_TYPE = -1
