/*
 * tls_client.c: closed-loop load generator for NEW TLS connections (benches/tls.sh).
 *
 *   tls_client HOST PORT CONNS DURATION_S WARMUP_S PATH [SNI]
 *
 * Keeps CONNS connections in flight. Each one: TCP connect, a FULL TLS handshake (a fresh
 * SSL object, no session is ever set, the client session cache is off: the client never
 * offers a ticket or a session ID, so the server cannot resume), one
 * "GET PATH HTTP/1.1" with "Connection: close", the response read to EOF, close; then the
 * slot starts the next connection at once. h2load cannot do this: on "Connection: close"
 * it reconnects with the same SSL object, which resumes the session (HAProxy's
 * SslFrontendSessionReuse_pct reads 100 % under h2load).
 *
 * Connections that end during the first WARMUP_S seconds are not counted; then for
 * DURATION_S seconds every ended connection is counted, as ok or as one kind of error.
 * Output, one line on stdout:
 *   conns=<ok> secs=<measured> rate=<ok/s> errors=<sum> err_connect= err_handshake= err_io=
 *   err_status= err_timeout= resumed=<handshakes that resumed: must be 0> tickets=<session
 *   tickets received per ok connection> no_close_notify=<ok connections the server closed
 *   without a TLS close_notify> p50_us= p99_us= (connect start to EOF)
 *   proto= cipher= group= sig= cert= (of the first handshake)
 * tls.sh uses it with HS_CLIENT=openssl (and when the rustls generator, tls-client/, cannot
 * be built); it costs about twice the CPU per connection of the rustls one (OpenSSL 3.0).
 * Build: gcc -O2 -o tls_client tls_client.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ST_IDLE, ST_CONNECTING, ST_HANDSHAKE, ST_WRITING, ST_READING };
enum { E_CONNECT, E_HANDSHAKE, E_IO, E_STATUS, E_TIMEOUT, E_KINDS };
static const char *ERR_NAMES[E_KINDS] = {"err_connect", "err_handshake", "err_io", "err_status",
                                         "err_timeout"};

#define CONN_TIMEOUT_NS (10LL * 1000000000LL)
#define HEAD_MAX 4096

struct conn {
    int fd;
    SSL *ssl;
    int state;
    int64_t start_ns;
    int64_t retry_ns; /* ST_IDLE: start again at this time */
    char head[HEAD_MAX];
    size_t head_len;
    int head_done;
    int status;
    long long content_length; /* -1: none */
    long long body;
    int tickets; /* session tickets the server sent on this connection */
    int no_close_notify; /* the server closed TCP without a TLS close_notify */
};

static SSL_CTX *ctx;
static struct sockaddr_in addr;
static int ep;
static char request[1024];
static size_t request_len;
static const char *sni;
static int64_t t_measure, t_end;
static long long ok, errs[E_KINDS], resumed, tickets, no_close_notify;
static uint32_t *lat;
static size_t lat_n, lat_cap;
static char info[512];

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int new_ticket(SSL *s, SSL_SESSION *sess) {
    (void)sess;
    struct conn *c = SSL_get_app_data(s);
    if (c) c->tickets++; /* counted, never kept: returning 0 leaves the session to be freed */
    return 0;
}

static int counted(int64_t t) { return t >= t_measure && t < t_end; }

static void finish(struct conn *c, int err) {
    int64_t t = now_ns();
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd); /* also removes it from the epoll set */
        c->fd = -1;
    }
    if (counted(t)) {
        if (err < 0) {
            ok++;
            tickets += c->tickets;
            no_close_notify += c->no_close_notify;
            if (lat_n == lat_cap) {
                lat_cap = lat_cap ? lat_cap * 2 : 65536;
                lat = realloc(lat, lat_cap * sizeof *lat);
                if (!lat) { perror("realloc"); exit(1); }
            }
            lat[lat_n++] = (uint32_t)((t - c->start_ns) / 1000);
        } else {
            errs[err]++;
        }
    }
    c->state = ST_IDLE;
    c->retry_ns = err == E_CONNECT ? t + 10000000LL : t; /* 10 ms back-off after a refused connect */
}

static void want(struct conn *c, uint32_t ev) {
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) != 0) { perror("epoll_ctl mod"); exit(1); }
}

static void start(struct conn *c) {
    c->head_len = 0;
    c->head_done = 0;
    c->status = 0;
    c->content_length = -1;
    c->body = 0;
    c->tickets = 0;
    c->no_close_notify = 0;
    c->start_ns = now_ns();
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { perror("socket"); exit(1); }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0 && errno != EINPROGRESS) {
        finish(c, E_CONNECT);
        return;
    }
    c->ssl = SSL_new(ctx);
    if (!c->ssl) { fprintf(stderr, "SSL_new failed\n"); exit(1); }
    if (sni && *sni) SSL_set_tlsext_host_name(c->ssl, sni);
    SSL_set_app_data(c->ssl, c);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_connect_state(c->ssl);
    c->state = ST_CONNECTING;
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) != 0) { perror("epoll_ctl add"); exit(1); }
}

/* Parses what is needed of the response head: the status and Content-Length. */
static void parse_head(struct conn *c) {
    char *end = memmem(c->head, c->head_len, "\r\n\r\n", 4);
    if (!end) return;
    c->head_done = 1;
    size_t hl = (size_t)(end - c->head) + 4;
    c->body = (long long)(c->head_len - hl);
    if (c->head_len >= 12 && memcmp(c->head, "HTTP/1.", 7) == 0) c->status = atoi(c->head + 9);
    *end = 0;
    for (char *p = strstr(c->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "content-length:", 15) == 0) c->content_length = atoll(p + 17);
    }
}

static void on_eof(struct conn *c) {
    if (!c->head_done || c->status == 0) { finish(c, E_IO); return; }
    if (c->status != 200) { finish(c, E_STATUS); return; }
    if (c->content_length >= 0 && c->body != c->content_length) { finish(c, E_IO); return; }
    finish(c, -1);
}

static void record_info(SSL *s) {
    int nid = 0;
    const char *group = "?", *sig = "?";
    int g = SSL_get_negotiated_group(s);
    if (g > 0 && OBJ_nid2sn(g)) group = OBJ_nid2sn(g);
    if (SSL_get_peer_signature_type_nid(s, &nid) && nid != NID_undef && OBJ_nid2sn(nid)) sig = OBJ_nid2sn(nid);
    char key[64] = "?";
    X509 *cert = SSL_get1_peer_certificate(s);
    if (cert) {
        EVP_PKEY *pk = X509_get0_pubkey(cert);
        if (pk) snprintf(key, sizeof key, "%s-%d", EVP_PKEY_get0_type_name(pk), EVP_PKEY_get_bits(pk));
        X509_free(cert);
    }
    snprintf(info, sizeof info, "proto=%s cipher=%s group=%s sig=%s cert=%s", SSL_get_version(s),
             SSL_get_cipher_name(s), group, sig, key);
}

static void step(struct conn *c) {
    for (;;) {
        switch (c->state) {
        case ST_CONNECTING: {
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
                finish(c, E_CONNECT);
                return;
            }
            c->state = ST_HANDSHAKE;
            break;
        }
        case ST_HANDSHAKE: {
            ERR_clear_error();
            int r = SSL_connect(c->ssl);
            if (r == 1) {
                if (SSL_session_reused(c->ssl)) resumed++;
                if (!info[0]) record_info(c->ssl);
                c->state = ST_WRITING;
                break;
            }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) { want(c, EPOLLIN); return; }
            if (e == SSL_ERROR_WANT_WRITE) { want(c, EPOLLOUT); return; }
            finish(c, E_HANDSHAKE);
            return;
        }
        case ST_WRITING: {
            ERR_clear_error();
            int r = SSL_write(c->ssl, request, (int)request_len);
            if (r > 0) { c->state = ST_READING; want(c, EPOLLIN); break; }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) { want(c, EPOLLIN); return; }
            if (e == SSL_ERROR_WANT_WRITE) { want(c, EPOLLOUT); return; }
            finish(c, E_IO);
            return;
        }
        case ST_READING: {
            char buf[16384];
            for (;;) {
                ERR_clear_error();
                int r = SSL_read(c->ssl, buf, sizeof buf);
                if (r > 0) {
                    if (!c->head_done) {
                        size_t n = (size_t)r;
                        if (n > HEAD_MAX - 1 - c->head_len) n = HEAD_MAX - 1 - c->head_len;
                        memcpy(c->head + c->head_len, buf, n);
                        c->head_len += n;
                        parse_head(c);
                        if (!c->head_done && c->head_len >= HEAD_MAX - 1) { finish(c, E_IO); return; }
                        if (c->head_done && (size_t)r > n) c->body += (long long)((size_t)r - n);
                    } else {
                        c->body += r;
                    }
                    continue;
                }
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ) return;
                if (e == SSL_ERROR_WANT_WRITE) { want(c, EPOLLOUT); return; }
                if (e == SSL_ERROR_ZERO_RETURN) { on_eof(c); return; } /* close_notify */
                if ((e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) ||
                    (e == SSL_ERROR_SYSCALL && c->head_done)) { /* TCP EOF (or RST) without close_notify */
                    c->no_close_notify = 1;
                    on_eof(c);
                    return;
                }
                finish(c, E_IO);
                return;
            }
        }
        default:
            return;
        }
    }
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s HOST PORT CONNS DURATION_S WARMUP_S PATH [SNI]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) { fprintf(stderr, "bad IPv4 address\n"); return 2; }
    int nconns = atoi(argv[3]);
    double dur = atof(argv[4]), warm = atof(argv[5]);
    const char *path = argv[6];
    sni = argc > 7 ? argv[7] : "localhost";
    if (nconns < 1 || dur <= 0 || warm < 0) { fprintf(stderr, "bad CONNS/DURATION/WARMUP\n"); return 2; }
    request_len = (size_t)snprintf(request, sizeof request,
                                   "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: pylon-tls-bench\r\n"
                                   "Connection: close\r\n\r\n",
                                   path, sni && *sni ? sni : argv[1]);

    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) { fprintf(stderr, "SSL_CTX_new failed\n"); return 1; }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* Tickets are counted by the callback and dropped: no session is ever kept or offered. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx, new_ticket);

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) { perror("epoll_create1"); return 1; }
    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    if (!conns) { perror("calloc"); return 1; }
    int64_t t0 = now_ns();
    t_measure = t0 + (int64_t)(warm * 1e9);
    t_end = t_measure + (int64_t)(dur * 1e9);
    for (int i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        start(&conns[i]);
    }
    struct epoll_event evs[256];
    int64_t next_sweep = t0 + 50000000LL;
    for (;;) {
        int64_t t = now_ns();
        if (t >= t_end) break;
        int n = epoll_wait(ep, evs, 256, 20);
        if (n < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
        for (int i = 0; i < n; i++) step((struct conn *)evs[i].data.ptr);
        t = now_ns();
        for (int i = 0; i < nconns; i++) /* slots freed by finish(): start the next connection */
            if (conns[i].state == ST_IDLE && conns[i].retry_ns <= t && t < t_end) start(&conns[i]);
        if (t >= next_sweep) {
            next_sweep = t + 50000000LL;
            for (int i = 0; i < nconns; i++)
                if (conns[i].state != ST_IDLE && t - conns[i].start_ns > CONN_TIMEOUT_NS) finish(&conns[i], E_TIMEOUT);
        }
    }
    double secs = (double)(t_end - t_measure) / 1e9;
    long long nerr = 0;
    for (int k = 0; k < E_KINDS; k++) nerr += errs[k];
    uint32_t p50 = 0, p99 = 0;
    if (lat_n) {
        qsort(lat, lat_n, sizeof *lat, cmp_u32);
        p50 = lat[lat_n / 2];
        p99 = lat[(size_t)((double)lat_n * 0.99) < lat_n ? (size_t)((double)lat_n * 0.99) : lat_n - 1];
    }
    printf("conns=%lld secs=%.3f rate=%.1f errors=%lld", ok, secs, (double)ok / secs, nerr);
    for (int k = 0; k < E_KINDS; k++) printf(" %s=%lld", ERR_NAMES[k], errs[k]);
    printf(" resumed=%lld tickets=%.2f no_close_notify=%lld p50_us=%u p99_us=%u %s\n", resumed,
           ok ? (double)tickets / (double)ok : 0.0, no_close_notify, p50, p99, info[0] ? info : "proto=none");
    return 0;
}
