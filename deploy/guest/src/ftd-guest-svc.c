/* ftd-guest-svc: the guest's record service on TCP port 7000.
 * For every request record a client sends, reply with (its client_seq, this
 * connection's reply counter, the guest-wide reply counter). The counters live
 * in guest memory, so a client that sees them stay consecutive across a
 * failover knows the guest resumed from a consistent checkpoint.
 * Single process, poll(): no fork, so all state is in one address space. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ftd_console.h"
#include "ftd_record.h"

#define MAX_CONNS 64
/* Stop reading a connection whose client does not read its replies. */
#define OUT_CAP (FTD_RECORD_SIZE * 4096)

struct conn {
  int fd;
  uint64_t server_seq;
  unsigned char in[FTD_RECORD_SIZE];
  size_t in_len;
  unsigned char* out;
  size_t out_len;
};

static void conn_close(struct conn* c) {
  close(c->fd);
  free(c->out);
  memset(c, 0, sizeof *c);
  c->fd = -1;
}

/* Returns 0 to keep the connection, -1 to drop it. */
static int conn_read(struct conn* c, uint64_t* total) {
  unsigned char buf[FTD_RECORD_SIZE * 64];
  ssize_t n = read(c->fd, buf, sizeof buf);
  if (n == 0) return -1;
  if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
  for (ssize_t i = 0; i < n;) {
    size_t take = FTD_RECORD_SIZE - c->in_len;
    if (take > (size_t)(n - i)) take = (size_t)(n - i);
    memcpy(c->in + c->in_len, buf + i, take);
    c->in_len += take;
    i += (ssize_t)take;
    if (c->in_len < FTD_RECORD_SIZE) break;
    c->in_len = 0;
    struct ftd_record req;
    const char* err = ftd_record_decode(c->in, &req);
    if (!err && req.kind != FTD_RECORD_REQUEST) err = "not a request";
    if (err) {
      console("ftd-svc bad record from fd=%d: %s; closing\n", c->fd, err);
      return -1;
    }
    struct ftd_record rep = {FTD_RECORD_REPLY, req.client_seq, ++c->server_seq, ++*total, req.echo};
    unsigned char* grown = realloc(c->out, c->out_len + FTD_RECORD_SIZE);
    if (!grown) return -1;
    c->out = grown;
    ftd_record_encode(&rep, c->out + c->out_len);
    c->out_len += FTD_RECORD_SIZE;
  }
  return 0;
}

static int conn_flush(struct conn* c) {
  while (c->out_len > 0) {
    ssize_t n = write(c->fd, c->out, c->out_len);
    if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    memmove(c->out, c->out + n, c->out_len - (size_t)n);
    c->out_len -= (size_t)n;
  }
  return 0;
}

int main(int argc, char** argv) {
  int port = argc > 1 ? atoi(argv[1]) : FTD_RECORD_PORT;
  signal(SIGPIPE, SIG_IGN);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (lfd < 0 || bind(lfd, (struct sockaddr*)&addr, sizeof addr) < 0 || listen(lfd, 64) < 0) {
    console("ftd-svc cannot listen on %d: %s\n", port, strerror(errno));
    return 1;
  }
  console("ftd-svc listening port=%d\n", port);

  struct conn conns[MAX_CONNS];
  for (int i = 0; i < MAX_CONNS; i++) conns[i] = (struct conn){.fd = -1};
  uint64_t total = 0;
  for (;;) {
    struct pollfd pfd[MAX_CONNS + 1];
    int idx[MAX_CONNS + 1];
    int n = 0;
    pfd[n] = (struct pollfd){.fd = lfd, .events = POLLIN};
    idx[n++] = -1;
    for (int i = 0; i < MAX_CONNS; i++) {
      if (conns[i].fd < 0) continue;
      short ev = conns[i].out_len < OUT_CAP ? POLLIN : 0;
      if (conns[i].out_len) ev |= POLLOUT;
      pfd[n] = (struct pollfd){.fd = conns[i].fd, .events = ev};
      idx[n++] = i;
    }
    if (poll(pfd, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      console("ftd-svc poll: %s\n", strerror(errno));
      return 1;
    }
    for (int k = 1; k < n; k++) {
      struct conn* c = &conns[idx[k]];
      int drop = 0;
      if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) drop = conn_read(c, &total) < 0;
      if (!drop) drop = conn_flush(c) < 0;
      if (drop) {
        console("ftd-svc closed fd=%d replies=%llu\n", c->fd, (unsigned long long)c->server_seq);
        conn_close(c);
      }
    }
    if (pfd[0].revents & POLLIN) {
      int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) continue;
      int slot = -1;
      for (int i = 0; i < MAX_CONNS && slot < 0; i++)
        if (conns[i].fd < 0) slot = i;
      if (slot < 0) {
        console("ftd-svc too many connections; refusing\n");
        close(fd);
        continue;
      }
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      conns[slot] = (struct conn){.fd = fd};
      console("ftd-svc accepted fd=%d\n", fd);
    }
  }
}
