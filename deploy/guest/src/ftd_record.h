/* Wire format of the guest record service (port 7000), shared by the guest's
 * ftd-guest-svc (C) and the host's ftd-record-client (C++). One source of truth
 * so the two cannot drift. All integers are big-endian. See ../README.md. */
#ifndef FTD_RECORD_H
#define FTD_RECORD_H

#include <stdint.h>
#include <string.h>

#define FTD_RECORD_SIZE 48
#define FTD_RECORD_MAGIC 0x46544452u /* "FTDR" */
#define FTD_RECORD_VERSION 1
#define FTD_RECORD_PORT 7000

enum ftd_record_kind { FTD_RECORD_REQUEST = 1, FTD_RECORD_REPLY = 2 };

struct ftd_record {
  uint16_t kind;         /* FTD_RECORD_REQUEST or FTD_RECORD_REPLY */
  uint64_t client_seq;   /* chosen by the client; echoed in the reply */
  uint64_t server_seq;   /* reply: per-connection counter, first reply is 1 */
  uint64_t server_total; /* reply: replies sent by this guest since boot, all connections */
  uint64_t echo;         /* opaque to the server (client timestamp); echoed */
};

/* FNV-1a 64 over the first 40 bytes: catches torn or misaligned records. */
static inline uint64_t ftd_record_checksum(const unsigned char* p) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < 40; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

static inline void ftd_put_be(unsigned char* p, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; i--) {
    p[i] = (unsigned char)(v & 0xff);
    v >>= 8;
  }
}

static inline uint64_t ftd_get_be(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = (v << 8) | p[i];
  return v;
}

static inline void ftd_record_encode(const struct ftd_record* r, unsigned char* out) {
  ftd_put_be(out + 0, FTD_RECORD_MAGIC, 4);
  ftd_put_be(out + 4, r->kind, 2);
  ftd_put_be(out + 6, FTD_RECORD_VERSION, 2);
  ftd_put_be(out + 8, r->client_seq, 8);
  ftd_put_be(out + 16, r->server_seq, 8);
  ftd_put_be(out + 24, r->server_total, 8);
  ftd_put_be(out + 32, r->echo, 8);
  ftd_put_be(out + 40, ftd_record_checksum(out), 8);
}

/* Returns 0 on success, or a static string naming what is wrong. */
static inline const char* ftd_record_decode(const unsigned char* in, struct ftd_record* r) {
  if (ftd_get_be(in, 4) != FTD_RECORD_MAGIC) return "bad magic";
  if (ftd_get_be(in + 6, 2) != FTD_RECORD_VERSION) return "unsupported version";
  if (ftd_get_be(in + 40, 8) != ftd_record_checksum(in)) return "checksum mismatch";
  memset(r, 0, sizeof(*r));
  r->kind = (uint16_t)ftd_get_be(in + 4, 2);
  if (r->kind != FTD_RECORD_REQUEST && r->kind != FTD_RECORD_REPLY) return "unknown kind";
  r->client_seq = ftd_get_be(in + 8, 8);
  r->server_seq = ftd_get_be(in + 16, 8);
  r->server_total = ftd_get_be(in + 24, 8);
  r->echo = ftd_get_be(in + 32, 8);
  return 0;
}

#endif /* FTD_RECORD_H */
