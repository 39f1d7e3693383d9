# Batched datagram I/O (recvmmsg/sendmmsg) for Cython code on corenet's loop; see
# corenet/include/batch.h. A caller keeps a cn_batch per socket, prepared once with
# cn_batch_init, calls cn_recv when the socket is readable, reads each datagram with
# cn_msg_*, queues answers with cn_queue (the data must stay alive until cn_flush) and sends
# them all with cn_flush, those to one address with one size together (a cn_sender's UDP
# segmentation: its counters say how many datagrams went in how many messages, and gso is
# cleared once the kernel refused a segmented send). A cn_outbox, prepared with
# cn_out_init, gathers datagrams to any (host, port) tuples
# (cn_out_add) for one sendmmsg (cn_out_flush); cn_sockaddr turns a numeric host and port
# into a socket address, cn_sockaddr_of a plain Python address tuple (0 for anything the
# socket module should handle), cn_addr_tuple a socket address into the tuple
# socket.recvfrom would give.
cdef extern from "corenet/include/batch.h":
    int CN_BATCH
    int CN_BUFSZ
    int MSG_TRUNC
    int AF_INET
    int AF_INET6
    ctypedef struct cn_sender:
        int gso
        unsigned long long datagrams
        unsigned long long sends
    ctypedef struct cn_batch:
        int nsend
        cn_sender out
    struct sockaddr_storage:
        unsigned short ss_family
    int cn_sockaddr(const char *host, unsigned short port, unsigned int flow,
                    unsigned int scope, sockaddr_storage *out) nogil
    ctypedef struct cn_outbox:
        int n
        cn_sender out
    void cn_out_init(cn_outbox *o, int fd) nogil
    int cn_out_add(cn_outbox *o, const char *data, Py_ssize_t len, object addr) except -1
    int cn_out_flush(int fd, cn_outbox *o) nogil
    void cn_batch_init(cn_batch *b, int fd) nogil
    int cn_recv(int fd, cn_batch *b) nogil
    void cn_queue(cn_batch *b, int i, const char *data, Py_ssize_t len) nogil
    int cn_flush(int fd, cn_batch *b) nogil
    int cn_msg_flags(cn_batch *b, int i) nogil
    unsigned int cn_msg_len(cn_batch *b, int i) nogil
    unsigned char *cn_msg_buf(cn_batch *b, int i) nogil
    sockaddr_storage *cn_msg_addr(cn_batch *b, int i) nogil
    int cn_addr_bytes(sockaddr_storage *ss, unsigned char *out, int *port) nogil
    object cn_addr_tuple(sockaddr_storage *ss)
    int cn_sockaddr_of(object addr, int family, sockaddr_storage *out)
