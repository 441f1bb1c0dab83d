#!/usr/bin/env bash
# ftd-certs.sh DIR NAME... — a private CA for one ftd installation and a
# certificate per host, for mutual TLS (docs/security.md explains the flags).
#   DIR/ca.pem, DIR/ca.key        the CA (made once; reused if present)
#   DIR/NAME.pem, DIR/NAME.key    NAME as CN and SAN DNS, server+client use
# Keys are ECDSA P-256, mode 0600. Copy ca.pem everywhere, NAME.* to host NAME
# only, and keep ca.key offline. Set FTD_CERT_DAYS to change validity (825).
set -euo pipefail
(($# >= 2)) || { echo "usage: $0 DIR NAME..." >&2; exit 2; }
dir=$1
shift
days=${FTD_CERT_DAYS:-825}
mkdir -p "$dir"
umask 077
if [[ ! -f $dir/ca.pem ]]; then
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -days "$days" -subj "/CN=ftd-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
for name in "$@"; do
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
  # One certificate serves both directions: the secondary's as a TLS server,
  # the primary's (and ftctl's) as a TLS client.
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=DNS:$name" >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days "$days" -extfile "$dir/$name.ext" -out "$dir/$name.pem" 2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext"
  chmod 0644 "$dir/$name.pem"
done
chmod 0644 "$dir/ca.pem"
