/* ftd-guest-disklog <port> <device> <mountpoint>: a durable record log for
 * the disk replication tests. It mounts <device> (ext4) on <mountpoint>; while
 * a TCP client is connected it appends numbered 64-byte records to
 * <mountpoint>/records.log ("ftd-rec <n, 20 digits>" padded with '.', '\n'),
 * fsyncs each one and only then tells the client "fsynced <n>\n": every
 * number a client has read is on the disk. Numbering continues from the
 * records already in the file (a rebooted guest, or a new connection).
 * The client sends 'q' to quiesce: the program closes the file, unmounts
 * (a clean filesystem, no more writes: a host can compare or fsck images)
 * and answers "unmounted <n>\n" (or "umount-failed <errno>\n"); the next
 * client mounts it again. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "ftd_console.h"

enum { kRecordBytes = 64 };

static int send_line(int fd, const char* text) {
  size_t len = strlen(text), off = 0;
  while (off < len) {
    ssize_t n = send(fd, text + off, len - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    off += (size_t)n;
  }
  return 0;
}

/* 1: the client asked to stop; -1: it went away; 0: nothing to do. */
static int client_says(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, 0) <= 0) return 0;
  char c;
  ssize_t n = recv(fd, &c, 1, 0);
  if (n <= 0) return -1;
  return c == 'q' ? 1 : 0;
}

static int append_record(int file, unsigned long long n) {
  char rec[kRecordBytes + 1];
  int len = snprintf(rec, sizeof rec, "ftd-rec %020llu", n);
  memset(rec + len, '.', kRecordBytes - 1 - len);
  rec[kRecordBytes - 1] = '\n';
  if (write(file, rec, kRecordBytes) != kRecordBytes) return -1;
  return fsync(file);
}

static int open_log(const char* device, const char* mountpoint, unsigned long long* n) {
  char path[256];
  struct stat st;
  snprintf(path, sizeof path, "%s/records.log", mountpoint);
  if (mount(device, mountpoint, "ext4", 0, NULL) != 0) return -1;
  int file = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (file < 0 || fstat(file, &st) != 0) return -1;
  *n = (unsigned long long)st.st_size / kRecordBytes;
  return file;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    console("ftd-disklog usage: ftd-guest-disklog <port> <device> <mountpoint>\n");
    return 2;
  }
  /* virtio-blk probes asynchronously: wait for the device node. */
  for (int i = 0; i < 100 && access(argv[2], F_OK) != 0; ++i) usleep(50000);
  unsigned long long n = 0;
  int file = open_log(argv[2], argv[3], &n);
  if (file < 0) {
    console("ftd-disklog mount/open on %s failed errno=%d\n", argv[2], errno);
    return 1;
  }
  int srv = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  if (bind(srv, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(srv, 4) != 0) {
    console("ftd-disklog listen failed errno=%d\n", errno);
    return 1;
  }
  console("ftd-disklog ready records=%llu\n", n);
  for (;;) {
    int c = accept(srv, NULL, NULL);
    if (c < 0) continue;
    char line[64];
    if (file < 0 && (file = open_log(argv[2], argv[3], &n)) < 0) {
      snprintf(line, sizeof line, "mount-failed %d\n", errno);
      console("ftd-disklog %s", line);
      send_line(c, line);
      close(c);
      continue;
    }
    console("ftd-disklog client records=%llu\n", n);
    int says = 0;
    while ((says = client_says(c)) == 0) {
      if (append_record(file, n + 1) != 0) {
        console("ftd-disklog write failed errno=%d record=%llu\n", errno, n + 1);
        break;
      }
      ++n;
      snprintf(line, sizeof line, "fsynced %llu\n", n);
      if (send_line(c, line) != 0) break;
    }
    if (says == 1) {
      close(file);
      file = -1;
      sync();
      if (umount2(argv[3], 0) == 0)
        snprintf(line, sizeof line, "unmounted %llu\n", n);
      else
        snprintf(line, sizeof line, "umount-failed %d\n", errno);
      console("ftd-disklog %s", line);
      send_line(c, line);
    }
    close(c);
  }
}
