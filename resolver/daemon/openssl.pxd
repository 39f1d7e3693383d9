# cython: language_level=3
"""OpenSSL's C API as the daemon's TLS server uses it (declarations only; the module is
linked with ``-lssl -lcrypto``): contexts, connections, memory and socket BIOs, errors,
and what a session ticket key callback needs (a cipher, a MAC's parameters, randomness)."""
from libc.stdint cimport uint64_t

cdef extern from "openssl/ssl.h" nogil:
    ctypedef struct SSL_CTX:
        pass
    ctypedef struct SSL:
        pass
    ctypedef struct SSL_METHOD:
        pass
    ctypedef struct SSL_CIPHER:
        pass
    ctypedef struct BIO:
        pass
    ctypedef struct BIO_METHOD:
        pass
    ctypedef int (*alpn_select_cb)(SSL *s, const unsigned char **out, unsigned char *outlen,
                                   const unsigned char *inp, unsigned int inlen,
                                   void *arg) noexcept nogil
    const SSL_METHOD *TLS_server_method()
    SSL_CTX *SSL_CTX_new(const SSL_METHOD *method)
    void SSL_CTX_free(SSL_CTX *ctx)
    long SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version)
    uint64_t SSL_CTX_set_options(SSL_CTX *ctx, uint64_t options)
    void SSL_CTX_set_read_ahead(SSL_CTX *ctx, int yes)
    long SSL_CTX_set_mode(SSL_CTX *ctx, long mode)
    long SSL_MODE_RELEASE_BUFFERS
    int SSL_CTX_set_num_tickets(SSL_CTX *ctx, size_t n)
    size_t SSL_CTX_get_num_tickets(const SSL_CTX *ctx)
    int SSL_CTX_set_cipher_list(SSL_CTX *ctx, const char *ciphers)
    int SSL_CTX_set_ciphersuites(SSL_CTX *ctx, const char *suites)
    void SSL_CTX_set_alpn_select_cb(SSL_CTX *ctx, alpn_select_cb cb, void *arg)
    int SSL_select_next_proto(unsigned char **out, unsigned char *outlen,
                              const unsigned char *server, unsigned int server_len,
                              const unsigned char *client, unsigned int client_len)
    int SSL_CTX_use_certificate_chain_file(SSL_CTX *ctx, const char *path)
    int SSL_CTX_use_PrivateKey_file(SSL_CTX *ctx, const char *path, int kind)
    int SSL_CTX_check_private_key(const SSL_CTX *ctx)
    SSL *SSL_new(SSL_CTX *ctx)
    void SSL_free(SSL *s)
    void SSL_set_bio(SSL *s, BIO *rbio, BIO *wbio)
    int SSL_set_fd(SSL *s, int fd)
    int SSL_accept(SSL *s)
    void SSL_set0_wbio(SSL *s, BIO *wbio)
    void SSL_set_accept_state(SSL *s)
    int SSL_do_handshake(SSL *s)
    int SSL_read(SSL *s, void *buf, int size)
    int SSL_peek(SSL *s, void *buf, int size)
    int SSL_write(SSL *s, const void *buf, int size)
    int SSL_shutdown(SSL *s)
    int SSL_get_error(const SSL *s, int ret)
    int SSL_has_pending(const SSL *s)
    int SSL_session_reused(const SSL *s)
    void SSL_get0_alpn_selected(const SSL *s, const unsigned char **data, unsigned int *len)
    const char *SSL_get_version(const SSL *s)
    const SSL_CIPHER *SSL_get_current_cipher(const SSL *s)
    const char *SSL_CIPHER_get_name(const SSL_CIPHER *c)
    const char *SSL_CIPHER_get_version(const SSL_CIPHER *c)
    int SSL_CIPHER_get_bits(const SSL_CIPHER *c, int *alg_bits)
    int SSL_FILETYPE_PEM
    int SSL_ERROR_NONE, SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE, SSL_ERROR_ZERO_RETURN
    int SSL_ERROR_SYSCALL, SSL_ERROR_SSL
    int TLS1_2_VERSION
    uint64_t SSL_OP_NO_COMPRESSION, SSL_OP_NO_RENEGOTIATION
    uint64_t SSL_OP_CIPHER_SERVER_PREFERENCE, SSL_OP_IGNORE_UNEXPECTED_EOF
    uint64_t SSL_OP_PRIORITIZE_CHACHA
    int SSL_TLSEXT_ERR_OK, SSL_TLSEXT_ERR_NOACK
    int OPENSSL_NPN_NEGOTIATED
    void *SSL_CTX_get_ex_data(const SSL_CTX *ctx, int idx)
    int SSL_CTX_set_ex_data(SSL_CTX *ctx, int idx, void *data)
    SSL_CTX *SSL_get_SSL_CTX(const SSL *s)

cdef extern from "openssl/bio.h":
    const BIO_METHOD *BIO_s_mem()
    BIO *BIO_new(const BIO_METHOD *kind)
    BIO *BIO_new_socket(int fd, int close_flag)
    void BIO_free(BIO *bio)
    long BIO_get_mem_data(BIO *bio, char **pp)
    int BIO_reset(BIO *bio)
    int BIO_read(BIO *bio, void *buf, int size)
    size_t BIO_ctrl_pending(BIO *bio)
    uint64_t BIO_number_written(BIO *bio)
    int BIO_NOCLOSE

cdef extern from "openssl/err.h":
    unsigned long ERR_get_error()
    void ERR_error_string_n(unsigned long e, char *buf, size_t len)
    void ERR_clear_error()

cdef extern from "openssl/evp.h" nogil:
    ctypedef struct EVP_CIPHER:
        pass
    ctypedef struct EVP_CIPHER_CTX:
        pass
    ctypedef struct EVP_MAC_CTX:
        pass
    EVP_CIPHER *EVP_CIPHER_fetch(void *libctx, const char *algorithm, const char *properties)
    int EVP_EncryptInit_ex2(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher,
                            const unsigned char *key, const unsigned char *iv, const void *params)
    int EVP_DecryptInit_ex2(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher,
                            const unsigned char *key, const unsigned char *iv, const void *params)

cdef extern from "openssl/core.h" nogil:
    ctypedef struct OSSL_PARAM:
        const char *key
        unsigned int data_type
        void *data
        size_t data_size
        size_t return_size

cdef extern from "openssl/params.h" nogil:
    OSSL_PARAM OSSL_PARAM_construct_octet_string(const char *key, void *buf, size_t size)
    OSSL_PARAM OSSL_PARAM_construct_utf8_string(const char *key, char *buf, size_t size)
    OSSL_PARAM OSSL_PARAM_construct_end()

cdef extern from "openssl/evp.h" nogil:
    int EVP_MAC_CTX_set_params(EVP_MAC_CTX *ctx, const OSSL_PARAM *params)

cdef extern from "openssl/rand.h" nogil:
    int RAND_bytes(unsigned char *buf, int size)

cdef extern from "openssl/crypto.h" nogil:
    void OPENSSL_cleanse(void *ptr, size_t size)

ctypedef int (*ticket_key_evp_cb)(SSL *s, unsigned char *key_name, unsigned char *iv,
                                  EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac,
                                  int encrypt) noexcept nogil

cdef extern from "openssl/tls1.h" nogil:
    int SSL_CTX_set_tlsext_ticket_key_evp_cb(SSL_CTX *ctx, ticket_key_evp_cb cb)
