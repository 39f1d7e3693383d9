/* Batched datagram I/O for Cython callers of corenet (the DNS daemon's UDP listener is the
   first): one recvmmsg() fills up to CN_BATCH datagrams, answers are queued against the
   datagram they answer and leave with one sendmmsg(). Usage: cimport corenet.batch. */
#ifndef CORENET_BATCH_H
#define CORENET_BATCH_H
#include <Python.h>
#include <errno.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <string.h>
#include <stdint.h>
#include <limits.h>
#include <netinet/udp.h>

#define CN_BATCH 64
#define CN_BUFSZ 4096

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

/* Datagrams to one address that leave in one send (UDP generic segmentation offload: the
   kernel routes, builds and delivers them as one packet and cuts it into datagrams only at
   the end, on loopback at the receiving socket): eight together cost the sender about a
   quarter of what eight separate sends do. The limits are the kernel's and the path's: the
   datagrams of a send all have its first one's size but the last, which may be shorter; that
   size must pass the device's MTU unfragmented (answers of at most 1,232 bytes, the size
   DNS's EDNS guidance settles on, fit any IPv6 path); a send carries at most 64 datagrams
   (UDP_MAX_SEGMENTS of older kernels) and less than a UDP datagram's 65,507 bytes. A socket
   whose segmented send the kernel refuses (EMSGSIZE: a path MTU below the size; EIO: a
   device without checksum offload; EINVAL: a kernel without segmentation) sends that send's
   datagrams and every later one alone. */
#define CN_GSO_SEGMENT_MAX 1232
#define CN_GSO_BYTES_MAX 65000
#define CN_GSO_SLOTS 64         /* the open send of an address is found by its hash */
#if CN_BATCH > 64
#error "a send of a whole batch would carry more datagrams than older kernels take"
#endif

typedef struct {
    struct mmsghdr msgs[CN_BATCH];
    struct iovec iov[CN_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctl[CN_BATCH];
    int gso;        /* 1 while sends may carry several datagrams, 0 once the kernel refused */
    unsigned long long datagrams;   /* datagrams the kernel took ... */
    unsigned long long sends;       /* ... in this many messages */
} cn_sender;

/* Ready to send on fd: segmented sends only where the kernel knows them (Linux 4.18 on;
   an older one would ignore the option and send the datagrams as one). */
static void cn_sender_init(cn_sender *s, int fd) {
    int size = 0;
    socklen_t len = sizeof size;
    s->gso = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, &len) == 0;
    s->datagrams = 0;
    s->sends = 0;
}

typedef struct {
    struct mmsghdr rmsgs[CN_BATCH];
    struct iovec riov[CN_BATCH];
    struct sockaddr_storage raddr[CN_BATCH];
    unsigned char rbuf[CN_BATCH][CN_BUFSZ];
    struct mmsghdr smsgs[CN_BATCH];
    struct iovec siov[CN_BATCH];
    int nsend;
    int nrecv;      /* datagrams the last cn_recv filled: their address lengths to reset */
    cn_sender out;
} cn_batch;

/* Prepares a new batch for fd (once, before its first cn_recv): the receive headers point
   at their buffers, which the kernel leaves as they are; only an address length changes. */
static void cn_batch_init(cn_batch *b, int fd) {
    int i;
    for (i = 0; i < CN_BATCH; i++) {
        b->riov[i].iov_base = b->rbuf[i];
        b->riov[i].iov_len = CN_BUFSZ;
        memset(&b->rmsgs[i].msg_hdr, 0, sizeof(struct msghdr));
        b->rmsgs[i].msg_hdr.msg_name = &b->raddr[i];
        b->rmsgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        b->rmsgs[i].msg_hdr.msg_iov = &b->riov[i];
        b->rmsgs[i].msg_hdr.msg_iovlen = 1;
        b->rmsgs[i].msg_len = 0;
    }
    b->nsend = 0;
    b->nrecv = 0;
    cn_sender_init(&b->out, fd);
}

/* Receives up to CN_BATCH datagrams into a batch made ready by cn_batch_init. */
static int cn_recv(int fd, cn_batch *b) {
    int i, r;
    for (i = 0; i < b->nrecv; i++)
        b->rmsgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
    r = recvmmsg(fd, b->rmsgs, CN_BATCH, MSG_DONTWAIT, NULL);
    b->nrecv = r > 0 ? r : 0;
    return r;
}

/* Queue an answer to datagram i of the batch (data must stay alive until cn_flush). */
static void cn_queue(cn_batch *b, int i, const char *data, Py_ssize_t len) {
    int k = b->nsend++;
    b->siov[k].iov_base = (void *)data;
    b->siov[k].iov_len = (size_t)len;
    memset(&b->smsgs[k].msg_hdr, 0, sizeof(struct msghdr));
    b->smsgs[k].msg_hdr.msg_name = &b->raddr[i];
    b->smsgs[k].msg_hdr.msg_namelen = b->rmsgs[i].msg_hdr.msg_namelen;
    b->smsgs[k].msg_hdr.msg_iov = &b->siov[k];
    b->smsgs[k].msg_hdr.msg_iovlen = 1;
}

/* Sends the n messages of msgs (each one datagram, or with a UDP_SEGMENT cmsg one per
   iovec) with as few sendmmsg() calls as it takes; returns how many datagrams were lost. A
   segmented message the kernel refuses goes again as one datagram per iovec, and s->gso is
   cleared. */
static int cn_sendmmsg_all(int fd, struct mmsghdr *msgs, int n, cn_sender *s) {
    int done = 0, r, k, lost = 0;
    while (done < n) {
        r = sendmmsg(fd, msgs + done, (unsigned int)(n - done), MSG_DONTWAIT);
        if (r >= 0) {
            for (k = done; k < done + r; k++)
                s->datagrams += msgs[k].msg_hdr.msg_iovlen;
            s->sends += (unsigned long long)r;
            done += r;
            continue;
        }
        if (errno == EINTR)
            continue;
        if ((errno == EMSGSIZE || errno == EINVAL || errno == EIO)
                && msgs[done].msg_hdr.msg_iovlen > 1) {
            struct mmsghdr each[CN_BATCH];
            struct msghdr *m = &msgs[done].msg_hdr;
            int c = (int)m->msg_iovlen;
            s->gso = 0;
            memset(each, 0, sizeof(struct mmsghdr) * (size_t)c);
            for (k = 0; k < c; k++) {
                each[k].msg_hdr.msg_name = m->msg_name;
                each[k].msg_hdr.msg_namelen = m->msg_namelen;
                each[k].msg_hdr.msg_iov = &m->msg_iov[k];
                each[k].msg_hdr.msg_iovlen = 1;
            }
            lost += cn_sendmmsg_all(fd, each, c, s);
        } else {
            lost += (int)msgs[done].msg_hdr.msg_iovlen;  /* buffer full, unreachable... */
        }
        done += 1;
    }
    return lost;
}

/* Which of CN_GSO_SLOTS slots a message's address (its IP address and port) hashes to. */
static unsigned int cn_address_slot(const struct msghdr *m) {
    const struct sockaddr *sa = (const struct sockaddr *)m->msg_name;
    uint32_t h = 0, w[4];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        h = a->sin_addr.s_addr ^ ((uint32_t)a->sin_port << 16);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        memcpy(w, &a->sin6_addr, sizeof w);
        h = w[0] ^ w[1] ^ w[2] ^ w[3] ^ ((uint32_t)a->sin6_port << 16);
    }
    return (h * 2654435769u) >> 26;
}

/* Sends the n datagrams of msgs (one iovec each) as cn_sendmmsg_all does, those to one
   address that can go together (see CN_GSO_SEGMENT_MAX) in one message; returns how many
   were lost. The datagrams to an address keep their order; datagrams to different
   addresses may leave in another order than queued. */
static int cn_send_datagrams(int fd, struct mmsghdr *msgs, int n, cn_sender *s) {
    int first[CN_BATCH], last[CN_BATCH], count[CN_BATCH], next[CN_BATCH];
    int slot[CN_GSO_SLOTS];
    size_t seg[CN_BATCH];
    unsigned char open[CN_BATCH];
    int groups = 0, k, g, j;
    if (!s->gso || n < 2)
        return cn_sendmmsg_all(fd, msgs, n, s);
    memset(slot, 0xff, sizeof slot);
    for (k = 0; k < n; k++) {
        size_t len = msgs[k].msg_hdr.msg_iov[0].iov_len;
        unsigned int h = cn_address_slot(&msgs[k].msg_hdr);
        g = slot[h];
        next[k] = -1;
        if (g >= 0 && open[g] && len <= seg[g]
                && (size_t)(count[g] + 1) * seg[g] <= CN_GSO_BYTES_MAX
                && msgs[first[g]].msg_hdr.msg_namelen == msgs[k].msg_hdr.msg_namelen
                && memcmp(msgs[first[g]].msg_hdr.msg_name, msgs[k].msg_hdr.msg_name,
                          msgs[k].msg_hdr.msg_namelen) == 0) {
            next[last[g]] = k;
            last[g] = k;
            count[g]++;
            if (len < seg[g])       /* a shorter datagram can only be a send's last */
                open[g] = 0;
            continue;
        }
        g = groups++;
        first[g] = last[g] = k;
        count[g] = 1;
        seg[g] = len;
        open[g] = len > 0 && len <= CN_GSO_SEGMENT_MAX;
        slot[h] = g;
    }
    if (groups == n)
        return cn_sendmmsg_all(fd, msgs, n, s);
    for (g = 0, j = 0; g < groups; g++) {
        struct msghdr *m = &s->msgs[g].msg_hdr;
        m->msg_name = msgs[first[g]].msg_hdr.msg_name;
        m->msg_namelen = msgs[first[g]].msg_hdr.msg_namelen;
        m->msg_iov = &s->iov[j];
        m->msg_iovlen = (size_t)count[g];
        m->msg_flags = 0;
        m->msg_control = NULL;
        m->msg_controllen = 0;
        for (k = first[g]; k >= 0; k = next[k])
            s->iov[j++] = msgs[k].msg_hdr.msg_iov[0];
        if (count[g] > 1) {
            struct cmsghdr *c = &s->ctl[g].align;
            uint16_t size = (uint16_t)seg[g];
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof size);
            memcpy(CMSG_DATA(c), &size, sizeof size);
            m->msg_control = s->ctl[g].buf;
            m->msg_controllen = CMSG_SPACE(sizeof size);
        }
    }
    return cn_sendmmsg_all(fd, s->msgs, groups, s);
}

/* Send every queued answer; returns how many could not be sent. */
static int cn_flush(int fd, cn_batch *b) {
    int lost = cn_send_datagrams(fd, b->smsgs, b->nsend, &b->out);
    b->nsend = 0;
    return lost;
}

/* Datagrams to any addresses, gathered over a loop iteration and sent with one sendmmsg()
   (the daemon's answers to cache misses, which callbacks produce one at a time). */
typedef struct {
    struct mmsghdr msgs[CN_BATCH];
    struct iovec iov[CN_BATCH];
    struct sockaddr_storage addr[CN_BATCH];
    int n;
    cn_sender out;
} cn_outbox;

/* Prepares a new outbox for fd (once, before its first cn_out_add). */
static void cn_out_init(cn_outbox *o, int fd) {
    o->n = 0;
    cn_sender_init(&o->out, fd);
}

/* The texts of the IPv4 addresses seen last. A server's datagrams come from far fewer
   addresses than they number: the text of one ("a.b.c.d") is made once while it keeps its
   slot, not per datagram, and with it its hash, which the dictionaries keyed by the client
   (its count of queries in flight, its rate) would compute again for each new string. Two
   direct-mapped tables of CN_HOSTS slots, each holding a reference: by address, to find
   the text of a datagram's source; by the text object, to find the address again when an
   answer goes back to that tuple, without parsing it (a text is found there only while the
   table holds it, so its object cannot have been freed and its address reused). */
#define CN_HOSTS 256

typedef struct {
    PyObject *text;
    uint32_t addr;                  /* network order */
} cn_host;

static cn_host cn_hosts_by_addr[CN_HOSTS];
static cn_host cn_hosts_by_text[CN_HOSTS];

static inline cn_host *cn_host_of_addr(uint32_t addr) {
    return &cn_hosts_by_addr[(uint32_t)(addr * 2654435761u) >> 24];
}

static inline cn_host *cn_host_of_text(PyObject *text) {
    return &cn_hosts_by_text[(uint32_t)((uint32_t)((uintptr_t)text >> 4) * 2654435761u) >> 24];
}

static void cn_host_keep(cn_host *h, PyObject *text, uint32_t addr) {
    PyObject *old = h->text;
    Py_INCREF(text);
    h->text = text;
    h->addr = addr;
    Py_XDECREF(old);
}

/* The text "a.b.c.d" of an IPv4 address (4 bytes, network order), written here: glibc's
   inet_ntop formats each byte with sprintf, which costs more than the rest of the tuple. */
static PyObject *cn_ipv4_text(const unsigned char *b) {
    char text[16];
    int k = 0, i;
    uint32_t addr;
    PyObject *host;
    cn_host *h;
    memcpy(&addr, b, 4);
    h = cn_host_of_addr(addr);
    if (h->text != NULL && h->addr == addr) {
        Py_INCREF(h->text);
        return h->text;
    }
    for (i = 0; i < 4; i++) {
        unsigned int v = b[i];
        if (i)
            text[k++] = '.';
        if (v >= 100)
            text[k++] = (char)('0' + v / 100);
        if (v >= 10)
            text[k++] = (char)('0' + (v / 10) % 10);
        text[k++] = (char)('0' + v % 10);
    }
    host = PyUnicode_DecodeASCII(text, k, NULL);
    if (host == NULL)
        return NULL;
    cn_host_keep(h, host, addr);
    cn_host_keep(cn_host_of_text(host), host, addr);
    return host;
}

/* The IPv4 socket address of a (text, port) tuple whose text cn_ipv4_text made and the
   table still holds, written without parsing: its length, or 0 (no error set) for any
   other tuple, which takes the general path. */
static int cn_known_ipv4(PyObject *addr, struct sockaddr_storage *out) {
    PyObject *t, *p;
    cn_host *h;
    long port;
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    if (!PyTuple_CheckExact(addr) || PyTuple_GET_SIZE(addr) != 2)
        return 0;
    t = PyTuple_GET_ITEM(addr, 0);
    h = cn_host_of_text(t);
    if (h->text != t)
        return 0;
    p = PyTuple_GET_ITEM(addr, 1);
    if (!PyLong_CheckExact(p))
        return 0;
    port = PyLong_AsLong(p);
    if (port < 0 || port > 65535) {
        PyErr_Clear();
        return 0;
    }
    memset(out, 0, sizeof(struct sockaddr_in));
    a->sin_family = AF_INET;
    a->sin_port = htons((unsigned short)port);
    a->sin_addr.s_addr = h->addr;
    return (int)sizeof(*a);
}

/* inet_pton(AF_INET, s, addr): the dotted quad (four decimal octets, none above 255, none
   with a leading zero) into *addr in network order, 1; 0 for any other text. The same
   grammar as glibc's in a fifth of its instructions, paid on every datagram sent to a
   numeric address. */
static int cn_ipv4_quad(const char *s, struct in_addr *addr) {
    uint32_t v = 0;
    int part, digits;
    for (part = 0; part < 4; part++) {
        unsigned int octet = 0;
        for (digits = 0; s[digits] >= '0' && s[digits] <= '9'; digits++) {
            if (digits == 3 || (digits == 1 && s[0] == '0'))
                return 0;
            octet = octet * 10 + (unsigned int)(s[digits] - '0');
        }
        if (digits == 0 || octet > 255)
            return 0;
        v = (v << 8) | octet;
        s += digits;
        if (*s != (part == 3 ? '\0' : '.'))
            return 0;
        s++;
    }
    addr->s_addr = htonl(v);
    return 1;
}

/* A numeric host (IPv6 if it has a ':', else IPv4) and port as a socket address in *out;
   returns its length, or 0 if the host is not a numeric address. */
static int cn_sockaddr(const char *host, unsigned short port, unsigned int flow,
                       unsigned int scope, struct sockaddr_storage *out) {
    memset(out, 0, sizeof(struct sockaddr_storage));
    if (strchr(host, ':') == NULL) {
        struct sockaddr_in *a = (struct sockaddr_in *)out;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        return cn_ipv4_quad(host, &a->sin_addr) ? (int)sizeof(*a) : 0;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        a->sin6_flowinfo = htonl(flow);
        a->sin6_scope_id = scope;
        return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? (int)sizeof(*a) : 0;
    }
}

/* The common (host, port) tuple of exact str and int read without PyArg_ParseTuple's format
   parsing: 1 with ``host`` and ``port`` set, 0 for anything else (no error set), which then
   takes the general path and its errors. */
static int cn_addr_fast(PyObject *addr, const char **host, int *port) {
    PyObject *h, *p;
    Py_ssize_t n;
    long v;
    if (!PyTuple_CheckExact(addr) || PyTuple_GET_SIZE(addr) != 2)
        return 0;
    h = PyTuple_GET_ITEM(addr, 0);
    p = PyTuple_GET_ITEM(addr, 1);
    if (!PyUnicode_CheckExact(h) || !PyLong_CheckExact(p))
        return 0;
    *host = PyUnicode_AsUTF8AndSize(h, &n);
    if (*host == NULL || (Py_ssize_t)strlen(*host) != n) {
        PyErr_Clear();
        return 0;
    }
    v = PyLong_AsLong(p);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (v < INT_MIN || v > INT_MAX)
        return 0;
    *port = (int)v;
    return 1;
}

/* Queue data (alive until cn_out_flush) to a Python address tuple, (host, port) or
   (host, port, flowinfo, scope_id) with a numeric host. The caller flushes first when n is
   CN_BATCH. Returns 0, or -1 with a Python exception set. */
static int cn_out_add(cn_outbox *o, const char *data, Py_ssize_t len, PyObject *addr) {
    const char *host;
    int port, alen;
    unsigned int flow = 0, scope = 0;
    int k = o->n;
    if (k >= CN_BATCH) {
        PyErr_SetString(PyExc_OverflowError, "outbox full");
        return -1;
    }
    alen = cn_known_ipv4(addr, &o->addr[k]);
    if (alen)
        goto queued;
    if (!cn_addr_fast(addr, &host, &port)
            && (!PyTuple_Check(addr)
                || !PyArg_ParseTuple(addr, "si|II", &host, &port, &flow, &scope))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "address must be a tuple");
        return -1;
    }
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_OverflowError, "port must be 0-65535");
        return -1;
    }
    alen = cn_sockaddr(host, (unsigned short)port, flow, scope, &o->addr[k]);
    if (alen == 0) {
        PyErr_Format(PyExc_ValueError, "not a numeric address: %s", host);
        return -1;
    }
queued:
    o->iov[k].iov_base = (void *)data;
    o->iov[k].iov_len = (size_t)len;
    memset(&o->msgs[k].msg_hdr, 0, sizeof(struct msghdr));
    o->msgs[k].msg_hdr.msg_name = &o->addr[k];
    o->msgs[k].msg_hdr.msg_namelen = (socklen_t)alen;
    o->msgs[k].msg_hdr.msg_iov = &o->iov[k];
    o->msgs[k].msg_hdr.msg_iovlen = 1;
    o->n = k + 1;
    return 0;
}

/* Send every queued datagram; returns how many could not be sent. */
static int cn_out_flush(int fd, cn_outbox *o) {
    int lost = cn_send_datagrams(fd, o->msgs, o->n, &o->out);
    o->n = 0;
    return lost;
}

static int cn_msg_flags(cn_batch *b, int i) { return b->rmsgs[i].msg_hdr.msg_flags; }
static unsigned int cn_msg_len(cn_batch *b, int i) { return b->rmsgs[i].msg_len; }
static unsigned char *cn_msg_buf(cn_batch *b, int i) { return b->rbuf[i]; }
static struct sockaddr_storage *cn_msg_addr(cn_batch *b, int i) { return &b->raddr[i]; }

/* The client address as (family, 16 bytes), v4-mapped v6 turned into v4. */
static int cn_addr_bytes(struct sockaddr_storage *ss, unsigned char *out, int *port) {
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        memset(out, 0, 16);
        memcpy(out, &a->sin_addr, 4);
        *port = ntohs(a->sin_port);
        return AF_INET;
    }
    if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        *port = ntohs(a->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
            memset(out, 0, 16);
            memcpy(out, ((unsigned char *)&a->sin6_addr) + 12, 4);
            return AF_INET;
        }
        memcpy(out, &a->sin6_addr, 16);
        return AF_INET6;
    }
    return -1;
}

/* Item ``i`` of the tuple ``t`` as an exact int in [0, max], into ``out``; 0 (no Python
   error set) for anything else. */
static int cn_tuple_uint(PyObject *t, Py_ssize_t i, unsigned long max, unsigned long *out) {
    PyObject *o = PyTuple_GET_ITEM(t, i);
    unsigned long v;
    if (!PyLong_CheckExact(o))
        return 0;
    v = PyLong_AsUnsignedLong(o);      /* OverflowError for a negative value */
    if (PyErr_Occurred() || v > max) {
        PyErr_Clear();
        return 0;
    }
    *out = v;
    return 1;
}

/* A Python address as a socket address of the socket's family, for the plain case only:
   an exact tuple -- (host, port) for AF_INET, (host, port[, flowinfo[, scope_id]]) for
   AF_INET6 -- of an ASCII str numeric host without '%' and exact ints in the ranges the
   socket module accepts. Returns the length, or 0 for anything else (a host name, "",
   "<broadcast>", a scoped "fe80::1%eth0", bytes, int subclasses, values out of range...),
   with no Python error set: the caller hands those to the socket module, so its resolution
   and its errors stay its own. For what it accepts the socket module's getsockaddrarg
   (inet_pton on the host, then port, flowinfo, scope_id) gives the same address. */
static int cn_sockaddr_of(PyObject *addr, int family, struct sockaddr_storage *out) {
    PyObject *h;
    const char *host;
    Py_ssize_t n, hlen;
    unsigned long port, flow = 0, scope = 0;
    if (family == AF_INET && (n = cn_known_ipv4(addr, out)) != 0)
        return (int)n;
    if (!PyTuple_CheckExact(addr))
        return 0;
    n = PyTuple_GET_SIZE(addr);
    if (n < 2 || n > (family == AF_INET6 ? 4 : 2))
        return 0;
    h = PyTuple_GET_ITEM(addr, 0);
    if (!PyUnicode_CheckExact(h) || PyUnicode_READY(h) < 0 || !PyUnicode_IS_ASCII(h)) {
        PyErr_Clear();
        return 0;
    }
    host = PyUnicode_AsUTF8AndSize(h, &hlen);    /* an ASCII str's own data: no copy */
    if (host == NULL || (Py_ssize_t)strlen(host) != hlen || strchr(host, '%') != NULL) {
        PyErr_Clear();
        return 0;
    }
    if (!cn_tuple_uint(addr, 1, 65535, &port)
            || (n > 2 && !cn_tuple_uint(addr, 2, 0xfffff, &flow))
            || (n > 3 && !cn_tuple_uint(addr, 3, 0xffffffffUL, &scope)))
        return 0;
    memset(out, 0, sizeof(struct sockaddr_storage));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)out;
        a->sin_family = AF_INET;
        a->sin_port = htons((unsigned short)port);
        return cn_ipv4_quad(host, &a->sin_addr) ? (int)sizeof(*a) : 0;
    }
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((unsigned short)port);
        a->sin6_flowinfo = htonl((uint32_t)flow);
        a->sin6_scope_id = (uint32_t)scope;
        return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? (int)sizeof(*a) : 0;
    }
    return 0;
}

/* ("a.b.c.d", port) for an IPv4 address. */
static PyObject *cn_ipv4_tuple(const unsigned char *b, unsigned int port) {
    PyObject *host, *num, *t;
    host = cn_ipv4_text(b);
    if (host == NULL)
        return NULL;
    num = PyLong_FromLong((long)port);
    if (num == NULL) {
        Py_DECREF(host);
        return NULL;
    }
    t = PyTuple_New(2);
    if (t == NULL) {
        Py_DECREF(host);
        Py_DECREF(num);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, host);
    PyTuple_SET_ITEM(t, 1, num);
    return t;
}

/* The address tuple the socket module's recvfrom gives for a socket address (its
   makesockaddr): inet_ntop text -- no "%scope" suffix, v4-mapped as "::ffff:a.b.c.d" --
   with the port, and for IPv6 the flowinfo and scope_id as numbers. */
static PyObject *cn_addr_tuple(struct sockaddr_storage *ss) {
    char text[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        return cn_ipv4_tuple((const unsigned char *)&a->sin_addr, ntohs(a->sin_port));
    }
    if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
        return Py_BuildValue("(siII)", text, (int)ntohs(a->sin6_port),
                             (unsigned int)ntohl(a->sin6_flowinfo),
                             (unsigned int)a->sin6_scope_id);
    }
    Py_RETURN_NONE;
}

#endif
