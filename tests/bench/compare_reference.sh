#!/usr/bin/env bash
# gonogo against the references users would pick instead (issue 7): Prometheus blackbox_exporter and fping
# (and iputils ping for RTT), measured side by side on the same machine, against the same loopback targets,
# in one invocation, and printed as ratios gonogo / reference.
#
#     sudo bash tests/bench/compare_reference.sh             # REPEAT=3 by default, medians reported
#     sudo REPEAT=1 DURATION=3 bash tests/bench/compare_reference.sh
#
# Environment: REPEAT (3) repetitions; DURATION (5) seconds of load per probe kind and tool; CONC (4) concurrent
# probes (wrk connections, and gonogo's [defaults] concurrency when driven through runs); NO_INSTALL=1 skips
# apt-get; VIA=runs measures gonogo through runs of 1,000 checks even when GET /probe exists; KEEP_WORK=1 keeps
# the temporary directory (configs, certificates, logs).
#
# Needs root: raw ICMP sockets for gonogo, fping and blackbox_exporter, and apt-get for the references.
# Only loopback is touched: every listener binds 127.0.0.1, every probe targets 127.0.0.0/8. Every loop is
# bounded in count and time. Only processes this script started are signalled, by PID.
#
# This is a benchmark, not a test: it reports numbers and exits non-zero only when it could not measure
# (a tool is missing, the build failed, a daemon did not start, a probe did not succeed).

set -euo pipefail

REPEAT=${REPEAT:-3}
DURATION=${DURATION:-5}
CONC=${CONC:-4}
[[ $REPEAT =~ ^[1-9][0-9]?$ ]] || { echo "REPEAT must be 1 to 99" >&2; exit 2; }
[[ $DURATION =~ ^[1-9][0-9]?$ ]] || { echo "DURATION must be 1 to 99 (seconds)" >&2; exit 2; }
[[ $CONC =~ ^[1-9][0-9]?$ ]] || { echo "CONC must be 1 to 99" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CMDLINE="REPEAT=$REPEAT DURATION=$DURATION CONC=$CONC bash tests/bench/compare_reference.sh"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] cannot measure: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (raw ICMP sockets for gonogo, fping and blackbox_exporter; apt-get)"

# --- the references, from Debian ------------------------------------------------------------------------------
need=()
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
command -v fping >/dev/null || need+=(fping)
command -v wrk >/dev/null || need+=(wrk)
command -v ping >/dev/null || need+=(iputils-ping)
command -v openssl >/dev/null || need+=(openssl)
if ((${#need[@]})); then
    [[ ${NO_INSTALL:-0} == 1 ]] && die "missing ${need[*]} and NO_INSTALL=1"
    log "apt-get install -y ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >&2 ||
        { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >&2; } ||
        die "apt-get install ${need[*]} failed"
fi
# The Debian package may start its own exporter (systemd); we never touch it: ours listens on a free port.

# --- build ---------------------------------------------------------------------------------------------------
log "cargo build --release -p gonogo"
(cd "$ROOT" && cargo build --release -p gonogo) >&2 || die "cargo build failed"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$ROOT/$TARGET_DIR
BIN=$TARGET_DIR/release/gonogo
[[ -x $BIN ]] || die "no binary at $BIN"

WORK=$(mktemp -d -t gonogo-ref.XXXXXX)
HELPER_PID=""
cleanup() {
    local i
    if [[ -n $HELPER_PID ]] && kill -0 "$HELPER_PID" 2>/dev/null; then
        kill -TERM "$HELPER_PID" 2>/dev/null || true # the helper stops the daemons and servers it started
        for ((i = 0; i < 150; i++)); do kill -0 "$HELPER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$HELPER_PID" 2>/dev/null && kill -KILL "$HELPER_PID" 2>/dev/null || true
    fi
    if [[ ${KEEP_WORK:-0} == 1 ]]; then log "kept $WORK"; else rm -rf -- "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Certificates for the HTTPS target: a throwaway CA and a leaf for IP 127.0.0.1 signed by it, both P-256 as a
# site would typically have (a self-signed leaf with CA:TRUE is refused by webpki as "CA used as end entity").
{
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=gonogo bench CA" \
        -keyout "$WORK/ca.key" -out "$WORK/ca.pem" &&
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
            -keyout "$WORK/key.pem" -out "$WORK/leaf.csr" &&
        printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' \
            >"$WORK/leaf.ext" &&
        openssl x509 -req -in "$WORK/leaf.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial -days 2 \
            -extfile "$WORK/leaf.ext" -out "$WORK/cert.pem"
} 2>/dev/null || die "openssl could not make the test certificates"

# --- the python helper (stdlib only): targets, daemons, load, CPU, statistics, report -------------------------
cat >"$WORK/bench.py" <<'PY'
import hashlib, http.client, http.server, json, os, re, secrets, signal, socket, socketserver, ssl, statistics
import subprocess, sys, time

STARTED = []  # Popen objects we started and have not reaped


def log(msg):
    print("[bench] " + msg, file=sys.stderr, flush=True)


def die(msg):
    log("cannot measure: " + msg)
    sys.exit(1)


def freeport():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv, logpath):
    f = open(logpath, "ab")
    p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    f.close()
    STARTED.append(p)
    return p


def stop(p):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(5)
    if p in STARTED:
        STARTED.remove(p)


def stop_all(*_):
    for p in list(STARTED):
        try:
            stop(p)
        except Exception:
            pass
    if _:
        sys.exit(143)


def wait_tcp(port, p, what, secs=20):
    for _ in range(int(secs * 20)):
        if p.poll() is not None:
            die("%s exited at start (code %s)" % (what, p.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    die("%s did not listen on 127.0.0.1:%d within %d s" % (what, port, secs))


def cpu_s(pid):
    """utime + stime of the whole process, dead threads included (/proc/PID/stat, clock ticks)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    die("no VmRSS for pid %d" % pid)


def get(port, path, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read().decode("utf-8", "replace")
    c.close()
    return r.status, body


def metric(text, name, labels=None):
    for line in text.splitlines():
        if line.startswith(name) and (labels is None or labels in line):
            rest = line[len(name):]
            if rest[:1] in (" ", "{"):
                return float(line.rsplit(" ", 1)[1])
    return None


def timed(argv, timeout=120):
    """Run a child to completion; its own user+sys CPU (wait4 rusage), wall time, exit code, output."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    STARTED.append(p)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(p)
        die("%s took more than %d s" % (argv[0], timeout))
    wall = time.perf_counter() - t0
    STARTED.remove(p)
    # communicate() reaped the child: its rusage is in RUSAGE_CHILDREN; take the delta around it instead.
    return wall, p.returncode, out.decode(), err.decode()


def child_cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# --- loopback targets (each its own process, so their CPU never counts for a tool) -----------------------------

class Quiet(http.server.BaseHTTPRequestHandler):
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


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # probes close connections abruptly (TLS without close_notify): not worth a traceback each


def serve_http(port, cert=None, key=None):
    srv = Server(("127.0.0.1", port), Quiet)
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    srv.serve_forever()


def serve_tcp(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1024)
    while True:
        c, _ = s.accept()
        c.close()


def serve_dns(port):
    """One A record (bench.test. 60 IN A 127.0.0.1) for whatever is asked; enough for both tools."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    while True:
        q, peer = s.recvfrom(4096)
        if len(q) < 17:
            continue
        i = 12
        while i < len(q) and q[i] != 0:
            i += 1 + q[i]
        question = q[12:i + 5]
        rd = q[2] & 1
        hdr = q[:2] + bytes([0x80 | rd, 0x80]) + b"\x00\x01\x00\x01\x00\x00\x00\x00"
        ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x7f\x00\x00\x01"
        s.sendto(hdr + question + ans, peer)


# --- configs -------------------------------------------------------------------------------------------------

def gonogo_cfg(path, state, token_sha, checks, conc=64, api=True):
    lines = ["# generated by tests/bench/compare_reference.sh",
             "[defaults]\nconcurrency = %d\n" % conc,
             '[storage]\nstate_dir = "%s"\n' % state]
    if api:
        lines += ['[api]\nlisten = "127.0.0.1:0"\n',
                  '[[token]]\nname = "bench"\nsha256 = "%s"\nroles = ["read", "trigger"]\n' % token_sha]
    for name, kind, params in checks:
        body = "".join("%s = %s\n" % (k, json.dumps(v)) for k, v in params.items())
        lines.append('[[check]]\nname = "%s"\nkind = "%s"\nphases = ["regression"]\n%s' % (name, kind, body))
    os.makedirs(state, exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines))


def kind_params(kind, t):
    return {
        "icmp": {"target": "127.0.0.1", "count": 1, "timeout": "1s"},
        "tcp": {"target": "127.0.0.1:%d" % t["tcp"], "timeout": "2s"},
        "dns": {"server": "127.0.0.1:%d" % t["dns"], "query": "bench.test", "timeout": "2s"},
        "http": {"url": "http://127.0.0.1:%d/" % t["http"], "timeout": "2s"},
        "tls": {"target": "127.0.0.1:%d" % t["https"], "ca_file": t["cert"], "timeout": "2s"},
        "https": {"url": "https://127.0.0.1:%d/" % t["https"], "ca_file": t["cert"], "timeout": "2s"},
    }[kind]


def blackbox_cfg(path, cert):
    with open(path, "w") as f:
        f.write("""modules:
  icmp:
    prober: icmp
    timeout: 2s
    icmp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
  tcp_connect:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
  dns:
    prober: dns
    timeout: 2s
    dns:
      query_name: bench.test
      query_type: A
      transport_protocol: udp
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
  http_2xx:
    prober: http
    timeout: 2s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
  https_2xx:
    prober: http
    timeout: 2s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      tls_config:
        ca_file: %s
""" % cert)


KINDS = ("icmp", "tcp", "dns", "http", "tls", "https")
GONOGO_KIND = {"https": "http"}  # check name -> gonogo kind, where they differ


def bb_query(kind, t):
    return {"icmp": "module=icmp&target=127.0.0.1",
            "tcp": "module=tcp_connect&target=127.0.0.1:%d" % t["tcp"],
            "dns": "module=dns&target=127.0.0.1:%d" % t["dns"],
            "http": "module=http_2xx&target=http://127.0.0.1:%d/" % t["http"],
            "tls": "module=https_2xx&target=https://127.0.0.1:%d/" % t["https"],
            "https": "module=https_2xx&target=https://127.0.0.1:%d/" % t["https"]}[kind]


def start_gonogo(gonogo, cfg, state, logpath):
    p = start([gonogo, "--config", cfg, "serve"], logpath)
    addr = os.path.join(state, "api.addr")
    for _ in range(400):  # <= 20 s
        if os.path.exists(addr) and os.path.getsize(addr) > 0:
            break
        if p.poll() is not None:
            die("gonogo serve exited at start (log %s)" % logpath)
        time.sleep(0.05)
    else:
        die("gonogo serve did not write %s within 20 s" % addr)
    with open(addr) as f:
        return p, int(f.read().split()[0].rsplit(":", 1)[1])


def wrk(port, path, secs, conc, headers=()):
    argv = ["wrk", "-t1", "-c%d" % conc, "-d%ds" % secs, "--timeout", "5s"]
    for h in headers:
        argv += ["-H", h]
    argv.append("http://127.0.0.1:%d%s" % (port, path))
    r = subprocess.run(argv, capture_output=True, text=True, timeout=secs + 30)
    m = re.search(r"(\d+) requests in", r.stdout)
    if r.returncode != 0 or not m:
        die("wrk failed: %s %s" % (r.stdout[-300:], r.stderr[-300:]))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    errs = re.search(r"Socket errors: (.*)", r.stdout)
    return int(m.group(1)), int(bad.group(1)) if bad else 0, errs.group(1) if errs else ""


def run_phase(port, token, pid, timeout=300):
    """POST a run of phase regression and long-poll it until final; returns (checks, outcomes)."""
    auth = {"Authorization": "Bearer " + token}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/api/v1/runs", body=json.dumps({"phase": "regression"}),
              headers=dict(auth, **{"Content-Type": "application/json"}))
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 202:
        die("POST /api/v1/runs: HTTP %d %s" % (r.status, body[:300]))
    rid = json.loads(body)["id"]
    deadline = time.monotonic() + timeout
    for _ in range(20):
        st, b = get(port, "/api/v1/runs/%s?wait=30s" % rid, auth, timeout=60)
        if st != 200:
            die("GET run %s: HTTP %d %s" % (rid, st, b[:300]))
        rec = json.loads(b)
        if rec["status"] in ("finished", "cancelled", "interrupted") or time.monotonic() > deadline:
            break
    if rec["status"] != "finished":
        die("run %s ended %s" % (rid, rec["status"]))
    outcomes = {}
    for ch in rec["checks"]:
        outcomes[ch["outcome"]] = outcomes.get(ch["outcome"], 0) + 1
    return len(rec["checks"]), outcomes


# --- one repetition ------------------------------------------------------------------------------------------

def repetition(rep, work, gonogo, t, token, token_sha, secs, conc):
    res = {}
    d = os.path.join(work, "rep%d" % rep)
    os.makedirs(d)

    # 1. ICMP sweep: 254 addresses x 20 echoes.
    addrs = ["127.0.0.%d" % i for i in range(1, 255)]
    cfg = os.path.join(d, "sweep.toml")
    gonogo_cfg(cfg, os.path.join(d, "sweep-state"), token_sha,
               [("p%03d" % i, "icmp", {"target": a, "count": 20, "interval": "20ms", "timeout": "1s"})
                for i, a in enumerate(addrs, 1)], conc=254, api=False)
    c0 = child_cpu()
    wall, rc, out, err = timed([gonogo, "--config", cfg, "run", "regression", "--format", "json"])
    cpu = child_cpu() - c0
    try:
        rec = json.loads(out)
    except ValueError:
        die("gonogo sweep: no JSON (exit %d): %s" % (rc, err[-500:]))
    recv = sum(c["observations"].get("received", 0) for c in rec["checks"])
    if len(rec["checks"]) != 254 or recv < 254 * 20 * 0.99:
        die("gonogo sweep: %d checks, %d echoes answered of %d (exit %d)" % (len(rec["checks"]), recv, 254 * 20, rc))
    res["sweep_gonogo_cpu"], res["sweep_gonogo_wall"] = cpu, wall
    c0 = child_cpu()
    wall, rc, out, err = timed(["fping", "-C", "20", "-p", "20", "-i", "1", "-q"] + addrs)
    cpu = child_cpu() - c0
    frecv = sum(sum(1 for v in line.split(":", 1)[1].split() if v != "-") for line in err.splitlines() if ":" in line)
    if frecv < 254 * 20 * 0.99:
        die("fping sweep: %d echoes answered of %d (exit %d): %s" % (frecv, 254 * 20, rc, err[-300:]))
    res["sweep_fping_cpu"], res["sweep_fping_wall"] = cpu, wall
    log("rep %d: sweep gonogo %.3f s CPU / %.2f s wall, fping %.3f s CPU / %.2f s wall" % (
        rep, res["sweep_gonogo_cpu"], res["sweep_gonogo_wall"], res["sweep_fping_cpu"], res["sweep_fping_wall"]))

    # 2. Loopback RTT, ~100 echoes each.
    cfg = os.path.join(d, "rtt.toml")
    gonogo_cfg(cfg, os.path.join(d, "rtt-state"), token_sha,
               [("lo", "icmp", {"target": "127.0.0.1", "count": 100, "interval": "10ms", "timeout": "1s"})], api=False)
    _, rc, out, err = timed([gonogo, "--config", cfg, "run", "regression", "--format", "json"])
    s = [x for x in json.loads(out)["checks"][0]["observations"]["samples_ms"] if x is not None]
    res["rtt_gonogo"] = statistics.median(s)
    _, rc, out, err = timed(["fping", "-C", "100", "-p", "10", "-q", "127.0.0.1"])
    s = [float(v) for v in err.split(":", 1)[1].split() if v != "-"]
    res["rtt_fping"] = statistics.median(s)
    _, rc, out, err = timed(["ping", "-n", "-c", "100", "-i", "0.01", "127.0.0.1"])
    s = [float(x) for x in re.findall(r"time=([0-9.]+) ms", out)]
    res["rtt_ping"] = statistics.median(s)
    s = []
    for _ in range(100):
        st, body = get(t["bb"], "/probe?module=icmp&target=127.0.0.1")
        v = metric(body, "probe_icmp_duration_seconds", 'phase="rtt"')
        if st == 200 and metric(body, "probe_success") == 1 and v is not None:
            s.append(v * 1e3)
    if len(s) < 90:
        die("blackbox_exporter answered %d of 100 ICMP probes" % len(s))
    res["rtt_blackbox"] = statistics.median(s)
    log("rep %d: RTT median gonogo %.4f, fping %.4f, ping %.4f, blackbox %.4f ms" % (
        rep, res["rtt_gonogo"], res["rtt_fping"], res["rtt_ping"], res["rtt_blackbox"]))

    # 3. CPU per 1,000 probes. blackbox_exporter through /probe with wrk.
    bbpid = t["bb_pid"]
    for kind in KINDS:
        if kind == "https":  # same blackbox module and target as tls: one measurement serves both rows
            res["cpu_blackbox_https"], res["n_blackbox_https"] = res["cpu_blackbox_tls"], res["n_blackbox_tls"]
            continue
        q = "/probe?" + bb_query(kind, t)
        st, body = get(t["bb"], q)
        if st != 200 or metric(body, "probe_success") != 1:
            die("blackbox_exporter %s probe did not succeed: %s" % (kind, body[-400:]))
        c0 = cpu_s(bbpid)
        n, bad, errs = wrk(t["bb"], q, secs, conc)
        res["cpu_blackbox_" + kind] = (cpu_s(bbpid) - c0) * 1000 / n
        res["n_blackbox_" + kind] = n
        st, body = get(t["bb"], q)
        if metric(body, "probe_success") != 1:
            die("blackbox_exporter %s probe failed after the load" % kind)
        log("rep %d: blackbox %s: %d probes, %.3f CPU-s per 1,000%s" % (
            rep, kind, n, res["cpu_blackbox_" + kind], ", socket errors " + errs if errs else ""))

    # gonogo: /probe?check=NAME if the daemon has it; otherwise runs of 1,000 checks.
    mode = t["mode"]
    for kind in KINDS:
        if mode == "probe":
            gp, gport = t["probe_daemon"]
            q = "/probe?check=%s" % kind
            st, body = get(gport, q, {"Authorization": "Bearer " + token})
            if st != 200 or metric(body, "probe_success") != 1:
                die("gonogo /probe?check=%s did not succeed (HTTP %d): %s" % (kind, st, body[-600:]))
            c0 = cpu_s(gp.pid)
            n, bad, errs = wrk(gport, q, secs, conc, ["Authorization: Bearer " + token])
            if bad:
                die("gonogo /probe %s: %d non-2xx answers under load" % (kind, bad))
            st, body = get(gport, q, {"Authorization": "Bearer " + token})
            if metric(body, "probe_success") != 1:
                die("gonogo /probe?check=%s did not succeed after the load: %s" % (kind, body[-400:]))
            res["cpu_gonogo_" + kind] = (cpu_s(gp.pid) - c0) * 1000 / n
        else:
            cfg = os.path.join(d, "k-%s.toml" % kind)
            state = os.path.join(d, "k-%s-state" % kind)
            gonogo_cfg(cfg, state, token_sha, [("%s-%04d" % (kind, i), GONOGO_KIND.get(kind, kind), kind_params(kind, t))
                                             for i in range(1000)],
                       conc=conc)
            gp, gport = start_gonogo(gonogo, cfg, state, os.path.join(d, "k-%s.log" % kind))
            time.sleep(1)
            if kind == "tcp":
                res["rss_gonogo_1000"] = rss_mib(gp.pid)
            n, c0, t0, outcomes = 0, cpu_s(gp.pid), time.monotonic(), {}
            for _ in range(30):  # until `secs` have passed, at most 30 runs
                k, o = run_phase(gport, token, gp.pid)
                n += k
                for key, v in o.items():
                    outcomes[key] = outcomes.get(key, 0) + v
                if time.monotonic() - t0 >= secs:
                    break
            res["cpu_gonogo_" + kind] = (cpu_s(gp.pid) - c0) * 1000 / n
            if kind == "tcp":
                res["rss_gonogo_1000_after"] = rss_mib(gp.pid)
            stop(gp)
            if outcomes.get("pass", 0) < n * 0.99:
                die("gonogo %s checks did not pass: %s (log %s)" % (kind, outcomes, os.path.join(d, "k-%s.log" % kind)))
        res["n_gonogo_" + kind] = n
        log("rep %d: gonogo %s: %d checks, %.3f CPU-s per 1,000" % (rep, kind, n, res["cpu_gonogo_" + kind]))
    return res


def main(work, gonogo, secs, conc, repeat):
    signal.signal(signal.SIGTERM, stop_all)
    token = secrets.token_urlsafe(32)
    token_sha = hashlib.sha256(token.encode()).hexdigest()
    me = os.path.abspath(__file__)
    t = {"cert": os.path.join(work, "ca.pem")}
    try:
        for name, args in (("tcp", []), ("dns", []), ("http", []),
                           ("https", [os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")])):
            port = freeport()
            p = start([sys.executable, me, "serve-" + name, str(port)] + args, os.path.join(work, name + ".log"))
            if name != "dns":
                wait_tcp(port, p, name + " target")
            t[name] = port
        time.sleep(0.3)

        # blackbox_exporter, idle RSS first.
        bbcfg = os.path.join(work, "blackbox.yml")
        blackbox_cfg(bbcfg, t["cert"])
        t["bb"] = freeport()
        bb = start(["prometheus-blackbox-exporter", "--config.file=" + bbcfg,
                    "--web.listen-address=127.0.0.1:%d" % t["bb"]], os.path.join(work, "blackbox.log"))
        t["bb_pid"] = bb.pid
        wait_tcp(t["bb"], bb, "blackbox_exporter")
        v = subprocess.run(["prometheus-blackbox-exporter", "--version"], capture_output=True, text=True)
        version = ((v.stdout + v.stderr).strip().splitlines() or ["blackbox_exporter (version unknown)"])[0]
        # gonogo serve with one check per kind (the /probe daemon when it exists; else only for idle RSS).
        cfg, state = os.path.join(work, "idle.toml"), os.path.join(work, "idle-state")
        gonogo_cfg(cfg, state, token_sha, [(k, GONOGO_KIND.get(k, k), kind_params(k, t)) for k in KINDS], conc=conc)
        gp, gport = start_gonogo(gonogo, cfg, state, os.path.join(work, "idle.log"))
        time.sleep(2)
        idle = {"rss_gonogo_idle": rss_mib(gp.pid), "rss_blackbox_idle": rss_mib(bb.pid)}
        st, body = get(gport, "/probe?check=tcp", {"Authorization": "Bearer " + token})
        t["mode"] = "probe" if st == 200 and "probe_success" in body else "runs"
        if os.environ.get("VIA") == "runs":  # measure through runs even when /probe exists
            t["mode"] = "runs"
        t["probe_daemon"] = (gp, gport)
        log("blackbox_exporter %s (pid %d); gonogo /probe: %s (HTTP %d), so gonogo CPU is measured %s" % (
            version, bb.pid, "present" if t["mode"] == "probe" else "absent", st,
            "through GET /probe?check=NAME" if t["mode"] == "probe" else "through runs of 1,000 checks"))

        reps = []
        for rep in range(1, repeat + 1):
            r = repetition(rep, work, gonogo, t, token, token_sha, secs, conc)
            r.update(idle)
            if t["mode"] == "probe" and rep == 1:
                cfg, state = os.path.join(work, "c1000.toml"), os.path.join(work, "c1000-state")
                gonogo_cfg(cfg, state, token_sha,
                           [("tcp-%04d" % i, "tcp", kind_params("tcp", t)) for i in range(1000)], conc=conc)
                p, port = start_gonogo(gonogo, cfg, state, os.path.join(work, "c1000.log"))
                time.sleep(1)
                r["rss_gonogo_1000"] = rss_mib(p.pid)
                run_phase(port, token, p.pid)
                r["rss_gonogo_1000_after"] = rss_mib(p.pid)
                stop(p)
            reps.append(r)
        reps[-1]["rss_blackbox_loaded"] = rss_mib(bb.pid)
        if t["mode"] == "probe":
            reps[-1]["rss_gonogo_loaded"] = rss_mib(gp.pid)
    finally:
        stop_all()
    json.dump({"reps": reps, "mode": t["mode"], "blackbox": version,
               "fping": subprocess.run(["fping", "-v"], capture_output=True, text=True).stdout.strip(),
               "ping": (subprocess.run(["ping", "-V"], capture_output=True, text=True).stdout.strip().splitlines() or ["ping"])[0]},
              open(os.path.join(work, "results.json"), "w"))


# --- report ----------------------------------------------------------------------------------------------------

def report(work, meta_path):
    data = json.load(open(os.path.join(work, "results.json")))
    meta = json.load(open(meta_path))
    reps = data["reps"]
    med = lambda k: statistics.median([r[k] for r in reps if r.get(k) is not None]) if any(
        r.get(k) is not None for r in reps) else None
    f = lambda v, nd=3: "n/a" if v is None else ("%." + str(nd) + "f") % v
    rows, verdicts = [], []

    def row(measure, g, ref, refname, target=None, unit="", nd=3, ok=None):
        """One table row: gonogo value, reference value, ratio, and the issue-7 target met or missed by how much."""
        ratio = None if g is None or not ref else g / ref
        verdict = ""
        if target is not None and ratio is not None:
            if ratio <= target:
                verdict = "met (≤ %.2f×)" % target
            else:
                verdict = "missed (≤ %.2f×): %.2f× the target, %s %s over it" % (
                    target, ratio / target, f(g - ref * target, nd + 1), unit)
        if ok is not None:
            verdict = ok
        rows.append((measure, f(g, nd) + " " + unit, refname + " " + f(ref, nd) + " " + unit,
                     f(ratio, 2) if ratio is not None else "-", verdict))

    row("ICMP sweep 254×20, CPU", med("sweep_gonogo_cpu"), med("sweep_fping_cpu"), "fping", 1.0, "s")
    row("ICMP sweep 254×20, wall", med("sweep_gonogo_wall"), med("sweep_fping_wall"), "fping", None, "s", 2)
    g, fp = med("rtt_gonogo"), med("rtt_fping")
    diff = None if g is None or fp is None else g - fp
    row("loopback RTT median, 100 echoes", g, fp, "fping", None, "ms", 4,
        ok=None if diff is None else ("met" if abs(diff) <= 0.01 else "missed") +
        " (within ±0.01 ms of fping): Δ %+.4f ms" % diff)
    for name in ("ping", "blackbox"):
        v = med("rtt_" + name)
        rows.append(("loopback RTT median, %s (for reference)" % name, f(v, 4) + " ms", "fping " + f(fp, 4) + " ms",
                     f(v / fp, 2) if v and fp else "-", "Δ vs fping %+.4f ms" % (v - fp) if v and fp else ""))
    via = "/probe" if data["mode"] == "probe" else "runs of 1,000 checks"
    label = {"tls": "tls (gonogo tls check)", "https": "tls (gonogo http check on https://)"}
    for kind in KINDS:
        row("CPU-s per 1,000 probes, %s" % label.get(kind, kind), med("cpu_gonogo_" + kind),
            med("cpu_blackbox_" + kind), "blackbox", 0.5 if kind in ("tls", "https") else 0.25, "s")
    row("idle RSS", med("rss_gonogo_idle"), med("rss_blackbox_idle"), "blackbox idle", 0.5, "MiB", 2)
    row("RSS, 1,000 tcp checks configured, before a run", med("rss_gonogo_1000"), med("rss_blackbox_idle"),
        "blackbox idle", 1.0, "MiB", 2)
    row("RSS, 1,000 tcp checks, after a run" if data["mode"] == "probe" else "RSS, 1,000 tcp checks, after runs", med("rss_gonogo_1000_after"), med("rss_blackbox_idle"),
        "blackbox idle", 1.0, "MiB", 2)
    if med("rss_gonogo_loaded") is not None:
        row("RSS after all the /probe load (for reference)", med("rss_gonogo_loaded"), med("rss_blackbox_loaded"),
            "blackbox, same", None, "MiB", 2)

    hdr = ("measure", "gonogo", "reference", "ratio", "issue 7 target")
    w = [max(len(r[i]) for r in rows + [hdr]) for i in range(5)]
    line = lambda r: "  ".join(r[i].ljust(w[i]) if i in (0, 4) else r[i].rjust(w[i]) for i in range(5))
    print()
    print("gonogo vs references: medians of %d repetition(s), %d concurrent probes, %s s of load per kind; "
          "gonogo driven through %s" % (len(reps), meta["conc"], meta["duration"], via))
    print(line(hdr))
    print(line(tuple("-" * x for x in w)))
    for r in rows:
        print(line(r))
    counts = ", ".join("%s %d/%d" % (k, int(med("n_gonogo_" + k) or 0), int(med("n_blackbox_" + k) or 0)) for k in KINDS)

    md = ["## gonogo vs blackbox_exporter, fping and ping — %s" % meta["date"], "",
          "- Command: `%s` (commit `%s`), as root" % (meta["cmdline"], meta["commit"]),
          "- Machine: %s CPU(s) (`nproc`), %s, kernel %s; load average %s" % (
              meta["nproc"], meta["cpu"], meta["kernel"], meta["load"]),
          "- References: %s (Debian); %s; %s; wrk; loopback targets are python3 processes of their own "
          "(HTTP, HTTPS with a P-256 leaf from a throwaway CA, a one-record UDP DNS responder, a TCP accept-and-close "
          "listener)" % (data["blackbox"], data["fping"], data["ping"]),
          "- Medians of %d repetition(s); %d concurrent probes; %s s of load per kind and tool." % (
              len(reps), meta["conc"], meta["duration"]), "",
          "How each row was measured:", "",
          "- ICMP sweep: `gonogo run regression --format json` with 254 icmp checks 127.0.0.1–127.0.0.254, "
          "`count = 20`, `interval = \"20ms\"`, concurrency 254, vs `fping -C 20 -p 20 -i 1 -q 127.0.0.1 … "
          "127.0.0.254`; user+sys CPU of the child (wait4 rusage) and wall time. fping's `-i 1` (1 ms between any "
          "two packets) makes it send the 5,080 echoes one after another: its wall time is ~5 s by design.",
          "- RTT: gonogo one check `count = 100`, `interval = \"10ms\"` (median of `samples_ms`); `fping -C 100 -p 10 "
          "-q 127.0.0.1`; `ping -n -c 100 -i 0.01 127.0.0.1` (per-reply `time=`; `-q` prints no median); "
          "blackbox_exporter 100 sequential `/probe?module=icmp&target=127.0.0.1`, `probe_icmp_duration_seconds{phase=\"rtt\"}`.",
          "- CPU per 1,000 probes: blackbox_exporter `/probe` driven by `wrk -t1 -c%d -d%ss` with a fixed target per "
          "module (icmp 127.0.0.1; tcp_connect; dns; http_2xx; https_2xx with `tls_config.ca_file` for tls); the "
          "exporter's utime+stime from `/proc/PID/stat` before and after, divided by the requests wrk completed." % (
              meta["conc"], meta["duration"]),
          ("- gonogo: the same wrk load on `GET /probe?check=NAME` (bearer token) of `gonogo serve`." if data["mode"] ==
           "probe" else
           "- gonogo: **`GET /probe` was not in the daemon yet**, so gonogo's CPU is measured through runs instead: "
           "one `gonogo serve` per kind with 1,000 checks of that kind (phase `regression`, `[defaults] concurrency = "
           "%d`, same targets), `POST /api/v1/runs` repeated for ≥ %s s; the daemon's utime+stime over those runs "
           "per 1,000 checks. This includes what a run costs beyond the probes (recording the run document, "
           "metrics update) and excludes one HTTP request per probe, which blackbox pays." % (
               meta["conc"], meta["duration"])),
          "- tls: blackbox has no handshake-only TLS prober for HTTPS, so both tls rows use its `https_2xx` "
          "(handshake, chain verification, then a GET). gonogo's `tls` check does the handshake and verifies the "
          "chain, no HTTP; its `http` check on `https://` does what `https_2xx` does: like for like.",
          "- Probes or checks completed per repetition (gonogo/blackbox, median): %s." % counts,
          "- RSS: `VmRSS` 2 s after start, nothing probed yet: gonogo serve with 5 checks (one per kind), "
          "blackbox_exporter with 5 modules; then gonogo serve with 1,000 tcp checks, before and after %s." % (
              "one run" if data["mode"] == "probe" else "the runs"), "",
          "| measure | gonogo | reference | ratio | issue 7 target |", "|---|---:|---:|---:|---|"]
    for r in rows:
        md.append("| %s | %s | %s | %s | %s |" % r)
    print()
    print("\n".join(md))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "serve-http":
        serve_http(int(args[0]))
    elif cmd == "serve-https":
        serve_http(int(args[0]), args[1], args[2])
    elif cmd == "serve-tcp":
        serve_tcp(int(args[0]))
    elif cmd == "serve-dns":
        serve_dns(int(args[0]))
    elif cmd == "main":
        main(args[0], args[1], int(args[2]), int(args[3]), int(args[4]))
    elif cmd == "report":
        report(args[0], args[1])
    else:
        sys.exit("unknown command " + cmd)
PY

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
python3 "$WORK/bench.py" main "$WORK" "$BIN" "$DURATION" "$CONC" "$REPEAT" &
HELPER_PID=$!
rc=0
wait "$HELPER_PID" || rc=$?
HELPER_PID=""
((rc == 0)) || die "the measurement stopped (exit $rc; KEEP_WORK=1 keeps $WORK with the logs)"

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]] && commit="$commit, tracked files modified"
python3 - "$WORK/meta.json" <<PY
import json, sys
json.dump({"date": "$(date -u '+%Y-%m-%d %H:%M UTC')", "nproc": "$(nproc)", "cpu": """${cpu_model:-unknown}""",
           "kernel": "$(uname -r)", "commit": "$commit", "cmdline": "$CMDLINE",
           "load": "$LOAD_START at the start, $LOAD_END at the end", "conc": $CONC, "duration": "$DURATION"},
          open(sys.argv[1], "w"))
PY
python3 "$WORK/bench.py" report "$WORK" "$WORK/meta.json"
