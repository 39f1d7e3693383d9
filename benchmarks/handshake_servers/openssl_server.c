/* A TLS handshake with nothing around it, in C: a blocking server that accepts, handshakes
 * (TLS 1.2 at least, OpenSSL's defaults otherwise: two TLS 1.3 session tickets), reads until
 * the peer is gone and closes, one connection at a time. benchmarks/test_encrypted.py
 * measures it beside the DNS-over-TLS servers.
 *
 *   openssl_server PORT CERT_CHAIN_PEM KEY_PEM    (listens on 127.0.0.1; stopped by a signal)
 */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT CERT_CHAIN_PEM KEY_PEM\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);          /* a peer gone before the tickets: EPIPE, not death */
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)
            || SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1
            || SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    int one = 1, listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) || listen(listener, 128)) {
        perror("bind");
        return 1;
    }
    char buf[4096];
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0)
            continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        SSL *ssl = SSL_new(ctx);
        if (ssl && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1)
            while (SSL_read(ssl, buf, sizeof buf) > 0)
                ;
        SSL_free(ssl);
        close(fd);
        ERR_clear_error();
    }
}
