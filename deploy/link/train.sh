#!/bin/bash
# Regenerate deploy/link/hot-functions.txt: the functions the release gonogo binary executes, under valgrind's
# callgrind, in three workloads, listed in this order:
#   1. `gonogo serve` starts (TLS API, /metrics listener, journal), idles 2 s and stops: the idle working set;
#   2. the same daemon runs a phase of every check kind against its own listeners and 127.0.0.1, answers
#      /metrics, GET /probe and the run's report;
#   3. `gonogo demo` (its DNS, HTTP and HTTPS responders, every phase, the HTML report).
# Names are written as linked (see gonogo-link for how a name whose hash has changed is still found). Re-run after
# large changes; a stale list only costs memory, never correctness.
#
#     bash deploy/link/train.sh        # needs valgrind, openssl, curl, python3; under a minute
#
# Traffic: loopback only. Every process it starts is stopped by PID; its temp directory is removed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$ROOT/deploy/link/hot-functions.txt
for tool in valgrind openssl curl python3; do
    command -v $tool >/dev/null || { echo "train.sh: $tool is needed (apt-get install $tool)" >&2; exit 2; }
done
cd "$ROOT"
cargo build --release -p gonogo >&2
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/gonogo
[[ $BIN == /* ]] || BIN=$ROOT/$BIN

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

read -r API METRICS WEB < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
mkdir -p "$WORK/www" && echo "gonogo training page" >"$WORK/www/index.html"
python3 -m http.server "$WEB" --bind 127.0.0.1 --directory "$WORK/www" >/dev/null 2>&1 &
PIDS+=($!)
TOKEN=train-$RANDOM$RANDOM
SHA=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)
cat >"$WORK/gonogo.toml" <<TOML
[site]
name = "Training"
[defaults]
timeout = "20s"
[api]
listen = "127.0.0.1:$API"
tls_cert = "$WORK/cert.pem"
tls_key = "$WORK/key.pem"
[[token]]
name = "train"
sha256 = "$SHA"
roles = ["read", "trigger", "signoff"]
[storage]
state_dir = "$WORK/state"
[metrics]
listen = "127.0.0.1:$METRICS"
[[check]]
name = "ping"
kind = "icmp"
target = "127.0.0.1"
count = 3
interval = "10ms"
phases = ["commissioning", "pre-migration"]
[[check]]
name = "api-port"
kind = "tcp"
target = "127.0.0.1:$API"
phases = ["commissioning", "pre-migration"]
[[check]]
name = "api-tls"
kind = "tls"
target = "127.0.0.1:$API"
ca_file = "$WORK/cert.pem"
phases = ["commissioning"]
[[check]]
name = "web"
kind = "http"
url = "http://127.0.0.1:$WEB/"
expect = { status = [200], body_matches = "training" }
phases = ["commissioning", "pre-migration"]
[[check]]
name = "api-health"
kind = "http"
url = "https://127.0.0.1:$API/healthz"
ca_file = "$WORK/cert.pem"
phases = ["commissioning"]
[[check]]
name = "no-dns-here"
kind = "dns"
servers = ["127.0.0.1:9"]
query = "app.example"
timeout = "2s"
required = false
phases = ["commissioning"]
TOML

# callgrind writes its output when the process exits; SIGTERM lets gonogo stop cleanly.
profile() { # NAME ARGS...: start the binary under callgrind in the background, its PID in $PROFILED
    local name=$1; shift
    valgrind --tool=callgrind --demangle=no --dump-instr=no --callgrind-out-file="$WORK/$name.cg" \
        "$BIN" "$@" >"$WORK/$name.log" 2>&1 &
    PROFILED=$!
    PIDS+=("$PROFILED")
}
wait_for_api() {
    for _ in $(seq 1 300); do
        [[ -s $WORK/state/api.addr ]] && return 0
        kill -0 "$PROFILED" 2>/dev/null || break
        sleep 0.2
    done
    echo "train.sh: the daemon did not start; see $WORK/*.log" >&2
    cat "$WORK"/*.log >&2
    exit 1
}
stop() { # PID: SIGTERM, then wait up to 60 s
    kill -TERM "$1"
    for _ in $(seq 1 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done
    echo "train.sh: $1 did not stop" >&2
    exit 1
}
api() { curl -sS --cacert "$WORK/cert.pem" -H "Authorization: Bearer $TOKEN" "$@"; }

echo "[train] 1/3 serve: start, idle, stop" >&2
profile idle --config "$WORK/gonogo.toml" serve
wait_for_api
sleep 2
stop "$PROFILED"
rm -f "$WORK/state/api.addr"

echo "[train] 2/3 serve: a run of every kind, /metrics, /probe, report" >&2
profile serve --config "$WORK/gonogo.toml" serve
wait_for_api
id=$(api -H 'content-type: application/json' -d '{"phase":"commissioning"}' "https://127.0.0.1:$API/api/v1/runs" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
api "https://127.0.0.1:$API/api/v1/runs/$id?wait=120s" -o /dev/null
api "https://127.0.0.1:$API/api/v1/runs/$id/report" -o /dev/null
curl -sS "http://127.0.0.1:$METRICS/metrics" -o /dev/null
api "https://127.0.0.1:$API/metrics" -o /dev/null
api "https://127.0.0.1:$API/probe?check=web" -o /dev/null
api "https://127.0.0.1:$API/api/v1/plan" -o /dev/null
stop "$PROFILED"

echo "[train] 3/3 demo" >&2
(cd "$WORK" && valgrind --tool=callgrind --demangle=no --dump-instr=no --callgrind-out-file="$WORK/demo.cg" \
    "$BIN" demo --out "$WORK/demo.html" >"$WORK/demo.log" 2>&1) || {
    echo "train.sh: gonogo demo failed:" >&2
    cat "$WORK/demo.log" >&2
    exit 1
}

# Functions of the gonogo binary itself (`ob=` names the object of the `fn=` lines that follow), in file order,
# first workload first, each once.
python3 - "$BIN" "$WORK/idle.cg" "$WORK/serve.cg" "$WORK/demo.cg" >"$OUT.new" <<'PY'
import os, re, sys
binary = os.path.realpath(sys.argv[1])
seen, out = set(), []
for path in sys.argv[2:]:
    objects, functions, current = {}, {}, None
    for line in open(path, errors="replace"):
        m = re.match(r"(c?ob)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            if m.group(3) is not None:
                objects[m.group(2)] = os.path.realpath(m.group(3))
            if m.group(1) == "ob":
                current = objects.get(m.group(2))
            continue
        # Names are compressed: the first `fn=(N) NAME` or `cfn=(N) NAME` defines N, later lines say `fn=(N)`.
        m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        if m.group(3) is not None:
            functions[m.group(2)] = m.group(3)
        name = functions.get(m.group(2))
        # Not symbols: addresses (`0x…`) and valgrind's own `(below main)`.
        if m.group(1) != "fn" or current != binary or not name or name.startswith("0x") or " " in name:
            continue
        key = re.sub(r"'\d+$", "", name)  # callgrind marks recursion levels as NAME'2
        if key not in seen:
            seen.add(key)
            out.append(key)
print("\n".join(out))
print(f"[train] {len(out)} functions", file=sys.stderr)
if len(out) < 100:
    sys.exit("[train] fewer than 100 functions of the binary in the profiles: not writing the list")
PY
mv "$OUT.new" "$OUT"
# Cargo does not track the list: make the next build link again.
touch "$ROOT/agent/src/main.rs"
echo "[train] wrote $OUT; the next \`cargo build --release -p gonogo\` links with it" >&2
