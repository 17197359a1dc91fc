// The floor for "process start → saved JPEG" (Benchmarks/screenshot): one TCP connection with a
// ready cookie, one GET of the MJPEG stream, the first JPEG (SOI..EOI) written to a file, exit.
// No TLS, no login, no parsing beyond the markers: nothing a real client could skip is left.
//   raw_screenshot HOST PORT COOKIE OUT.jpg
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: raw_screenshot HOST PORT COOKIE OUT\n"); return 2; }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])) };
    if (fd < 0 || inet_pton(AF_INET, argv[1], &address.sin_addr) != 1) { perror("socket"); return 1; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) { perror("connect"); return 1; }
    char request[4096];
    int length = snprintf(request, sizeof request,
        "GET /api/stream/mjpeg HTTP/1.1\r\nHost: %s:%s\r\nCookie: %s\r\n\r\n", argv[1], argv[2], argv[3]);
    if (write(fd, request, (size_t)length) != length) { perror("write"); return 1; }
    size_t capacity = 1 << 22, used = 0;
    unsigned char *buffer = malloc(capacity);
    long start = -1;
    while (buffer && used < capacity) {
        ssize_t count = read(fd, buffer + used, capacity - used);
        if (count <= 0) break;
        size_t from = used > 0 ? used - 1 : 0;
        used += (size_t)count;
        for (size_t i = from; i + 1 < used; i++) {
            if (start < 0 && buffer[i] == 0xFF && buffer[i + 1] == 0xD8) start = (long)i;
            if (start >= 0 && (long)i > start && buffer[i] == 0xFF && buffer[i + 1] == 0xD9) {
                FILE *out = fopen(argv[4], "wb");
                if (!out) { perror("fopen"); return 1; }
                fwrite(buffer + start, 1, i + 2 - (size_t)start, out);
                fclose(out);
                return 0;
            }
        }
    }
    fprintf(stderr, "raw_screenshot: no JPEG in the stream\n");
    return 1;
}
