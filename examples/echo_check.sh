#!/usr/bin/env bash
# echo_check.sh SERVER CLIENT — starts the echo server on a free port, runs the client
# against it, stops the server with SIGINT and checks that it shut down cleanly.
set -u
server=$1 client=$2
out=$(mktemp)
trap 'rm -f "$out"; kill "$pid" 2>/dev/null' EXIT
"$server" 127.0.0.1:0 >"$out" 2>&1 &
pid=$!
addr=
for _ in $(seq 100); do
  addr=$(sed -n 's/^listening on //p' "$out")
  [[ -n $addr ]] && break
  sleep 0.1
done
[[ -n $addr ]] || { echo "server did not start:"; cat "$out"; exit 1; }
"$client" "$addr" 8 200 || { echo "client failed"; cat "$out"; exit 1; }
# A connection left open must not hold up the shutdown.
exec 3<>/dev/tcp/${addr%:*}/${addr##*:} || { echo "could not open an idle connection"; exit 1; }
sleep 0.2
kill -INT "$pid"
for _ in $(seq 100); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then echo "server did not stop on SIGINT"; cat "$out"; exit 1; fi
wait "$pid"; rc=$?
exec 3>&-
cat "$out"
[[ $rc -eq 0 ]] || { echo "server exit status $rc"; exit 1; }
grep -q "received SIGINT, shutting down" "$out" || exit 1
grep -q "served 9 connections" "$out" || exit 1
