#!/usr/bin/env bash
# The command line as an operator meets it: --version names the release and
# the protocol, --help documents the flags, and bad flags fail with exit 2 and
# a message that names the flag. No root, no network.
#   cli.sh TUNNELD VERSION
set -uo pipefail
T=$1 VERSION=$2
N=0 FAILED=0
ok() { N=$((N + 1)); if [[ $1 == 0 ]]; then echo "ok $N - $2"; else echo "not ok $N - $2"; FAILED=1; fi; }

out=$("$T" --version 2>&1)
[[ $out == "tunneld $VERSION (protocol 4, serves 3..4)" ]]; ok $? "--version: '$out'"

help=$("$T" server --help 2>&1)
grep -q -- "--id" <<<"$help"; ok $? "server --help documents --id"

help=$("$T" client --help 2>&1)
for f in --batch-bytes --no-header-compression --notsent-lowat --socket-rcvbuf --psk-file --path --prefix; do
  grep -q -- "$f" <<<"$help"; ok $? "client --help documents $f"
done

# expect_bad DESCRIPTION PATTERN ARGS...: exit 2 and one line that matches PATTERN.
expect_bad() {
  local what=$1 pat=$2 rc first lines; shift 2
  first=$("$T" "$@" 2>&1 </dev/null | head -n 1)
  "$T" "$@" >/dev/null 2>&1 </dev/null; rc=$?
  lines=$("$T" "$@" 2>&1 </dev/null | wc -l)
  [[ $rc == 2 && $first =~ $pat && $lines == 1 ]]; ok $? "$what: exit $rc, $lines line: '$first'"
}
base=(client --server 192.0.2.1:7000 --tun cli0 --path wan0 --prefix 10.0.0.0/24 --insecure-no-auth)
expect_bad "unknown flag" "--bogus" "${base[@]}" --bogus
expect_bad "--batch-bytes above 65535" "--batch-bytes.*70000" "${base[@]}" --batch-bytes 70000
expect_bad "--batch-bytes not a number" "--batch-bytes.*abc" "${base[@]}" --batch-bytes abc
expect_bad "--notsent-lowat above 64 MiB" "--notsent-lowat" "${base[@]}" --notsent-lowat 999999999
expect_bad "--socket-rcvbuf below 64 KiB" "--socket-rcvbuf.*65536" "${base[@]}" --socket-rcvbuf 1000
expect_bad "prefix length 33" "--prefix.*10.0.0.0/33" client --server 192.0.2.1:7000 --tun cli0 --path wan0 \
  --prefix 10.0.0.0/33 --insecure-no-auth
expect_bad "a path rate without a unit" "--path.*wan1,up=5. at offset 8: a rate is" "${base[@]}" --path wan1,up=5
expect_bad "a backup path with an unknown key" "--backup-path.*speed" "${base[@]}" --backup-path wan1,speed=5mbit
expect_bad "no key and no --insecure-no-auth" "--psk-file" server --listen 192.0.2.1:7000 --tun cli0
expect_bad "no subcommand" "subcommand"

echo "1..$N"
exit $FAILED
