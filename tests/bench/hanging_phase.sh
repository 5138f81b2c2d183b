#!/usr/bin/env bash
# gonogo hanging phase: wall time of `gonogo run` for a phase of 500 checks of which 50 hang until their
# timeout, against the same phase with nothing hanging, at the default concurrency (64) and at 512 (issue 7,
# bench item 5; target: 500 checks with 50 hanging finish within 1.5 x the timeout).
#
#     bash tests/bench/hanging_phase.sh                  # REPEAT=3, timeouts 2s and 5s
#     REPEAT=5 bash tests/bench/hanging_phase.sh
#     TIMEOUTS="2s" REPEAT=1 bash tests/bench/hanging_phase.sh   # a quick look
#
# Environment: REPEAT (3) runs per configuration, medians reported; TIMEOUTS ("2s 5s") the [defaults] timeout
# values to try; KEEP_WORK=1 keeps the temporary directory (configs, run JSON, server logs).
#
# Only loopback is touched: two python3 servers bind 127.0.0.1 (an HTTP server that answers 200 at once, and a
# "hanging" server that accepts, reads the request and never answers), and every check is an http check to one
# of them. Every loop is bounded in count and time (the servers exit on their own after MAX_LIFE seconds).
# Only processes this script started are signalled, by PID.
#
# This is a benchmark, not a test: it reports numbers and exits non-zero only when it could not measure (build
# failed, a server did not start, gonogo did not print a run record).

set -euo pipefail

REPEAT=${REPEAT:-3}
TIMEOUTS=${TIMEOUTS:-"2s 5s"}
[[ $REPEAT =~ ^[1-9][0-9]?$ ]] || { echo "REPEAT must be 1 to 99" >&2; exit 2; }
for t in $TIMEOUTS; do [[ $t =~ ^[1-9][0-9]?s$ ]] || { echo "TIMEOUTS: each must be 1s to 99s, got $t" >&2; exit 2; }; done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CMDLINE="REPEAT=$REPEAT TIMEOUTS=\"$TIMEOUTS\" bash tests/bench/hanging_phase.sh"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] cannot measure: %s\n' "$*" >&2; exit 1; }

# --- processes we started, and cleanup -------------------------------------------------------------------------
STARTED=()
WORK=""
cleanup() {
    local p i
    for p in "${STARTED[@]+"${STARTED[@]}"}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
            for ((i = 0; i < 30; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$p" 2>/dev/null || true
        fi
        wait "$p" 2>/dev/null || true
    done
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ ${KEEP_WORK:-0} == 1 ]]; then log "kept $WORK"; else rm -rf -- "$WORK"; fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build -----------------------------------------------------------------------------------------------------
log "building: cargo build --release -p gonogo"
(cd "$ROOT" && cargo build --release -p gonogo >&2) || die "cargo build --release -p gonogo failed"
GONOGO="$ROOT/target/release/gonogo"
[[ -x $GONOGO ]] || die "$GONOGO not found after the build"

WORK=$(mktemp -d /tmp/gonogo-hanging.XXXXXX)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# Worst case for the whole run: every case x REPEAT x (two waves of the largest timeout + margin); the servers live
# that long plus a minute, then exit by themselves even if this script was killed.
max_t=0 n_t=0
for t in $TIMEOUTS; do n_t=$((n_t + 1)); ((${t%s} > max_t)) && max_t=${t%s}; done
MAX_LIFE=$(((2 * max_t + 3) * (4 * n_t + 2) * REPEAT + 60))

# --- loopback servers ------------------------------------------------------------------------------------------
cat >"$WORK/servers.py" <<'PY'
import http.server, os, selectors, socket, sys, time

mode, port_file, max_life = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.monotonic() + max_life

if mode == "ok":
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
        def log_message(self, *a):
            pass
    class S(http.server.ThreadingHTTPServer):
        request_queue_size = 1024
        daemon_threads = True
    srv = S(("127.0.0.1", 0), H)
    srv.timeout = 1.0
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    while time.monotonic() < deadline:
        srv.handle_request()
    sys.exit(0)

# "hang": accept every connection, read and discard what the client sends, never answer; close when the
# client closes (its timeout) so that file descriptors do not pile up over many runs.
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(1024)
ls.setblocking(False)
with open(port_file + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
sel = selectors.DefaultSelector()   # epoll: no 1,024-descriptor limit as with select()
sel.register(ls, selectors.EVENT_READ)
while time.monotonic() < deadline:
    for key, _ in sel.select(1.0):
        s = key.fileobj
        if s is ls:
            for _ in range(1024):
                try:
                    c, _ = ls.accept()
                except (BlockingIOError, InterruptedError):
                    break
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ)
        else:
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
PY

start_server() { # mode -> sets PORT
    local mode=$1 i
    python3 "$WORK/servers.py" "$mode" "$WORK/$mode.port" "$MAX_LIFE" >"$WORK/$mode.log" 2>&1 &
    STARTED+=("$!")
    for ((i = 0; i < 100; i++)); do [[ -s $WORK/$mode.port ]] && break; sleep 0.1; done
    [[ -s $WORK/$mode.port ]] || die "the $mode server did not start (see $WORK/$mode.log)"
    PORT=$(cat "$WORK/$mode.port")
}
start_server ok
OK_PORT=$PORT
start_server hang
HANG_PORT=$PORT
log "servers: answering HTTP on 127.0.0.1:$OK_PORT, hanging HTTP on 127.0.0.1:$HANG_PORT (both exit after ${MAX_LIFE}s)"

# --- measure ---------------------------------------------------------------------------------------------------
cpu_model=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]] && commit="$commit, tracked files modified"

python3 - "$WORK/meta.json" <<PY
import json, sys
json.dump({"date": "$(date -u '+%Y-%m-%d %H:%M UTC')", "nproc": "$(nproc)", "cpu": """${cpu_model:-unknown}""",
           "kernel": "$(uname -r)", "rustc": "$(rustc --version 2>/dev/null || echo rustc)", "commit": "$commit",
           "cmdline": """$CMDLINE""", "user": "$(id -un)", "load_start": "$LOAD_START"}, open(sys.argv[1], "w"))
PY

python3 - "$GONOGO" "$WORK" "$OK_PORT" "$HANG_PORT" "$REPEAT" "$TIMEOUTS" <<'PY'
import json, os, statistics, subprocess, sys, time

gonogo, work, ok_port, hang_port, repeat, timeouts = sys.argv[1:7]
repeat = int(repeat)
timeouts = [int(t[:-1]) for t in timeouts.split()]
N = 500

def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)

def config(path, timeout_s, conc, hanging):
    # Hanging checks are spread evenly through the plan (every N/hanging-th check), as a real phase would
    # have them: not all first (best case for the bound), not all last (worst case).
    step = N // hanging if hanging else 0
    lines = [
        "[defaults]", f'timeout = "{timeout_s}s"', f"concurrency = {conc}", "",
        "[storage]", f'state_dir = "{work}/state"', "",
    ]
    for i in range(N):
        hang = bool(hanging) and i % step == step - 1 and (i // step) < hanging
        port = hang_port if hang else ok_port
        lines += [
            "[[check]]", f'name = "{"hang" if hang else "ok"}-{i:03d}"', 'kind = "http"', 'phases = ["regression"]',
            f'url = "http://127.0.0.1:{port}/c{i}"', "",
        ]
    with open(path, "w") as f:
        f.write("\n".join(lines))

def run_once(path):
    t0 = time.monotonic()
    p = subprocess.run([gonogo, "--config", path, "run", "regression", "--format", "json"],
                       capture_output=True, timeout=max(timeouts) * 10 + 120)
    wall = time.monotonic() - t0
    if p.returncode not in (0, 1, 2):
        log(f"gonogo exited {p.returncode}: {p.stderr.decode(errors='replace')[-2000:]}")
        sys.exit(1)
    try:
        rec = json.loads(p.stdout)
    except ValueError:
        log("gonogo did not print a JSON run record:", p.stdout[:500], p.stderr[-2000:])
        sys.exit(1)
    outcomes = {}
    hang_reason, hang_max = "", 0.0
    for c in rec.get("checks", []):
        outcomes[c["outcome"]] = outcomes.get(c["outcome"], 0) + 1
        if c["name"].startswith("hang-"):
            hang_reason = hang_reason or "; ".join(c.get("reasons", []))
            hang_max = max(hang_max, float(c.get("duration_ms", 0)) / 1000.0)
    return wall, rec.get("duration_ms", 0) / 1000.0, outcomes, (hang_reason, hang_max)

# (timeout, concurrency, hanging). 128 hanging (more than 2 x 64 permits would be 3 waves; 128 = exactly 2)
# shows where the bound bites: only at the first timeout, as a second case.
cases = []
for t in timeouts:
    for conc in (64, 512):
        for hanging in (0, 50):
            cases.append((t, conc, hanging))
t0 = timeouts[0]
cases += [(t0, 64, 128), (t0, 512, 128)]

results = {}
for rep in range(repeat):
    for case in cases:   # interleaved: each repetition runs every case once, so drift affects all alike
        t, conc, hanging = case
        path = os.path.join(work, f"t{t}-c{conc}-h{hanging}.toml")
        if not os.path.exists(path):
            config(path, t, conc, hanging)
        wall, dur, outcomes, verdict = run_once(path)
        results.setdefault(case, []).append((wall, dur, outcomes, verdict))
        log(f"rep {rep + 1}/{repeat} timeout {t}s concurrency {conc} hanging {hanging}: wall {wall:.3f}s "
            f"(record {dur:.3f}s) outcomes {outcomes}")

def med(xs):
    return statistics.median(xs)

def fmt_out(o):
    return ", ".join(f"{k} {v}" for k, v in sorted(o.items()))

rows = []
for case in cases:
    t, conc, hanging = case
    rs = results[case]
    wall = med([r[0] for r in rs]); dur = med([r[1] for r in rs])
    ref = med([r[0] for r in results[(t, conc, 0)]])
    waves = -(-hanging // conc) if hanging else 0
    expected = waves * t
    rows.append(dict(t=t, conc=conc, hanging=hanging, wall=wall, dur=dur, ref=ref, ratio=wall / t,
                     per=[r[0] for r in rs], outcomes=fmt_out(rs[-1][2]), expected=expected, waves=waves))

meta = json.load(open(os.path.join(work, "meta.json")))
meta["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
out = []
out.append(f"## gonogo phase of 500 checks with hanging targets — {meta['date']}")
out.append("")
out.append(f"- Command: `{meta['cmdline']}` (commit `{meta['commit']}`), as {meta['user']}")
out.append(f"- Machine: {meta['nproc']} CPU(s) (`nproc`), {meta['cpu']}, kernel {meta['kernel']}; {meta['rustc']}, release build; "
           f"load average {meta['load_start']} at the start, {meta['load_end']} at the end")
out.append(f"- Medians of {repeat} repetition(s), cases interleaved. Each run: `gonogo --config X run regression --format json`, "
           "wall time from spawn to exit (python `time.monotonic`), and the run record's `duration_ms`. "
           "500 http checks, phase `regression`: the fast ones GET a python `ThreadingHTTPServer` on 127.0.0.1 that "
           "answers 200 at once; the hanging ones GET a python server on 127.0.0.1 that accepts, reads the request "
           "and never answers, so each hangs until its own timeout. Hanging checks are spread evenly through the plan.")
out.append("")
out.append("| timeout | concurrency | hanging | wall (median) | record duration | wall / timeout | vs 0 hanging | expected from the bound | outcomes (last rep) | per repetition |")
out.append("|---:|---:|---:|---:|---:|---:|---:|---|---|---|")
for r in rows:
    exp = "-" if not r["hanging"] else f"{r['waves']} wave(s) x {r['t']} s = {r['expected']} s + fast checks"
    out.append(f"| {r['t']} s | {r['conc']} | {r['hanging']} | {r['wall']:.3f} s | {r['dur']:.3f} s | {r['ratio']:.2f} | "
               f"{r['wall'] / r['ref']:.2f} | {exp} | {r['outcomes']} | {', '.join(f'{x:.2f}' for x in r['per'])} |")
out.append("")
verdicts = []
for r in rows:
    if r["hanging"] == 50:
        met = r["ratio"] <= 1.5
        verdicts.append(f"timeout {r['t']} s, concurrency {r['conc']}: {r['ratio']:.2f} x the timeout — "
                        + ("**met**" if met else f"**missed** by {r['wall'] - 1.5 * r['t']:.2f} s"))
for r in rows:
    if r["hanging"]:
        reason, longest = results[(r["t"], r["conc"], r["hanging"])][-1][3]
        out.append(f"- timeout {r['t']} s, concurrency {r['conc']}, {r['hanging']} hanging (last repetition): longest "
                   f"hanging check {longest:.3f} s; a hanging check's reason: {reason}")
out.append("")
out.append("**Target (issue 7): 500 checks with 50 hanging finish within 1.5 × the timeout** — " + "; ".join(verdicts) + ".")
print("\n".join(out))
PY
