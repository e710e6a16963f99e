/*
 * The kernel's own ceiling for the NBD rows that move 1 MiB pieces between a Unix socket and a cached
 * file, with no protocol and no server around it: one process sends, the other receives, on the same
 * machine as the benchmarks.
 *
 *   write-copy    recv 1 MiB from the socket, pwrite it to the file (what a server does for a write)
 *   write-splice  splice socket -> pipe -> file (one copy fewer)
 *   read-copy     pread 1 MiB from the file, send it (what a server does for a read)
 *   read-sendfile sendfile file -> socket (no copy on the sending side)
 *
 * Build: cc -O2 -o socket_copy socket_copy.c
 * Run:   ./socket_copy MODE FILE MIB        (FILE: an existing cached file of at least 1 GiB)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PIECE (1 << 20)
#define SPAN (1L << 30)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void sink(int fd, long total)
{
    char *b = aligned_alloc(4096, PIECE);
    for (long got = 0; got < total;) {
        long n = recv(fd, b, PIECE, 0);
        if (n <= 0)
            die("recv");
        got += n;
    }
    exit(0);
}

static void source(int fd, long total)
{
    char *b = aligned_alloc(4096, PIECE);
    memset(b, 7, PIECE);
    for (long sent = 0; sent < total;) {
        long n = send(fd, b, PIECE, 0);
        if (n <= 0)
            die("send");
        sent += n;
    }
    exit(0);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s write-copy|write-splice|read-copy|read-sendfile FILE MIB\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    long total = atol(argv[3]) << 20;
    int sv[2], file = open(argv[2], O_RDWR);
    if (file < 0)
        die("open");
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        die("socketpair");
    int size = 2 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    int writing = strncmp(mode, "write", 5) == 0;
    if (fork() == 0) {
        if (writing)
            source(sv[0], total);
        sink(sv[1], total);
    }
    char *b = aligned_alloc(4096, PIECE);
    int pipefd[2];
    if (pipe(pipefd) != 0)
        die("pipe");
    fcntl(pipefd[1], F_SETPIPE_SZ, PIECE);
    double start = now();
    for (long done = 0; done < total; done += PIECE) {
        long at = done % SPAN;
        if (strcmp(mode, "write-copy") == 0) {
            for (long r = 0; r < PIECE;) {
                long n = recv(sv[1], b + r, PIECE - r, 0);
                if (n <= 0)
                    die("recv");
                r += n;
            }
            if (pwrite(file, b, PIECE, at) != PIECE)
                die("pwrite");
        } else if (strcmp(mode, "write-splice") == 0) {
            for (long r = 0; r < PIECE;) {
                long n = splice(sv[1], NULL, pipefd[1], NULL, PIECE - r, SPLICE_F_MOVE);
                if (n <= 0)
                    die("splice in");
                loff_t o = at + r;
                for (long w = 0; w < n;) {
                    long m = splice(pipefd[0], NULL, file, &o, n - w, SPLICE_F_MOVE);
                    if (m <= 0)
                        die("splice out");
                    w += m;
                }
                r += n;
            }
        } else if (strcmp(mode, "read-copy") == 0) {
            if (pread(file, b, PIECE, at) != PIECE)
                die("pread");
            for (long w = 0; w < PIECE;) {
                long n = send(sv[0], b + w, PIECE - w, 0);
                if (n <= 0)
                    die("send");
                w += n;
            }
        } else if (strcmp(mode, "read-sendfile") == 0) {
            off_t o = at;
            for (long w = 0; w < PIECE;) {
                long n = sendfile(sv[0], file, &o, PIECE - w);
                if (n <= 0)
                    die("sendfile");
                w += n;
            }
        } else {
            fprintf(stderr, "unknown mode %s\n", mode);
            return 2;
        }
    }
    wait(NULL);
    printf("%s: %.0f MB/s\n", mode, total / (now() - start) / 1e6);
    return 0;
}
