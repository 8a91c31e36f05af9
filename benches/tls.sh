#!/usr/bin/env bash
# TLS termination benchmark: pylon and HAProxy side by side, in ONE session, with the same
# certificate, the same backend and the same configuration text.
#
#   benches/tls.sh                      # ROUNDS=5 DUR=10, RSA 2048 and ECDSA P-256
#   ROUNDS=3 DUR=5 benches/tls.sh       # quicker
#
# Scenarios (per certificate kind K = rsa | ecdsa):
#   hs-K  new TLS connections per second: HS_CONNS connections in flight, each one a FULL
#         handshake (the client never offers a session: see tls-client/src/main.rs), one GET
#         with "Connection: close", response read to EOF, close. Unit: handshakes/s.
#         (h2load is not used for this: on "Connection: close" it reconnects with the same
#         OpenSSL object and RESUMES the session; HAProxy counts 100 % reuse under it.)
#   ka-K  keep-alive HTTPS requests per second: wrk, KA_CONNS TLS connections made once,
#         many requests each. Unit: requests/s.
# Both proxies terminate TLS and forward plain HTTP/1.1 to the same nginx backend
# (`/small` = "hello"); without nginx, a pylon answering `http-request return` is the origin.
#
# Conventions of ../shared/bench/run.sh: everything on 127.0.0.1 (PORT_BASE+...), proxy pinned
# to CPU_PROXY alone, load generator and backend on CPU_LOAD/CPU_BACKEND, one thread per
# proxy (`nbthread 1`), every load run bounded (DUR + `timeout`), only processes started here
# are stopped, by PID. One warm-up run per proxy and scenario (WARMUP s, not measured), then
# ROUNDS interleaved rounds; the proxy that goes first alternates from round to round
# (pylon, haproxy | haproxy, pylon | ...). The table shows medians over rounds and the
# pylon/HAProxy ratio of the medians.
#
# Environment knobs (defaults in brackets):
#   ROUNDS [5]  DUR [10] seconds per measured run  WARMUP [2] seconds per warm-up run
#   HS_CONNS [50] connections in flight for hs-*  KA_CONNS [50] wrk connections for ka-*
#   WRK_THREADS [1]  CERTS ["rsa ecdsa"]  SCENARIOS [.] regex on scenario names
#   CPU_PROXY [1]  CPU_LOAD [0]  CPU_BACKEND [0]  PORT_BASE [18000] (ports +443/+444 pylon,
#   +453/+454 haproxy, +481 backend)
#   HTTP_REUSE [] e.g. `always`: adds `http-reuse <value>` to BOTH defaults sections
#   PYLON_BIN [] the binary to test; empty: `cargo build --release` in the repository, then
#             target/release/pylon   HAPROXY_BIN [haproxy]
#   HS_CLIENT [rustls] new-connection load generator: rustls = tls-client/ (built with cargo
#             into target/bench-tls-client), openssl = tls_client.c (gcc, libssl-dev)
#   RESULTS_DIR [benches/results]  KEEP_WORK [] non-empty: keep the temp dir (configs, logs)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
ROUNDS=${ROUNDS:-5}; DUR=${DUR:-10}; WARMUP=${WARMUP:-2}
HS_CONNS=${HS_CONNS:-50}; KA_CONNS=${KA_CONNS:-50}; WRK_THREADS=${WRK_THREADS:-1}
CERTS=${CERTS:-rsa ecdsa}; SCENARIOS=${SCENARIOS:-.}
CPU_PROXY=${CPU_PROXY:-1}; CPU_LOAD=${CPU_LOAD:-0}; CPU_BACKEND=${CPU_BACKEND:-0}
PORT_BASE=${PORT_BASE:-18000}; HTTP_REUSE=${HTTP_REUSE:-}; HS_CLIENT=${HS_CLIENT:-rustls}
PYLON_BIN=${PYLON_BIN:-}; HAPROXY_BIN=${HAPROXY_BIN:-haproxy}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}
REQ_PATH=/small
BE=$((PORT_BASE + 481))
declare -A PORT=(
  [pylon-rsa]=$((PORT_BASE + 443)) [pylon-ecdsa]=$((PORT_BASE + 444))
  [haproxy-rsa]=$((PORT_BASE + 453)) [haproxy-ecdsa]=$((PORT_BASE + 454))
)
CLK_TCK=$(getconf CLK_TCK)

log() { echo "[$(date +%T)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pylon-tls-bench.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  if [ -n "${KEEP_WORK:-}" ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for t in wrk taskset openssl curl gcc timeout getent "$HAPROXY_BIN"; do
  command -v "$t" >/dev/null || die "missing tool: $t"
done
# wrk is pointed at https://localhost:PORT so that it sends a host name as SNI, as browsers
# do (with 127.0.0.1 it sends the IP address, which rustls rejects as SNI with a warning that
# pylon logs once per connection); the proxies listen on 127.0.0.1 only.
[ "$(getent ahosts localhost | awk 'NR==1{print $1}')" = 127.0.0.1 ] ||
  die "localhost must resolve to 127.0.0.1 first (wrk connects to https://localhost:PORT)"
for k in $CERTS; do [ "$k" = rsa ] || [ "$k" = ecdsa ] || die "CERTS: unknown kind '$k' (rsa, ecdsa)"; done
[ "$HS_CLIENT" = rustls ] || [ "$HS_CLIENT" = openssl ] || die "HS_CLIENT: rustls or openssl"

wait_port() { # port [tries of 0.1 s]
  local i
  for ((i = 0; i < ${2:-100}; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
ticks() { # utime+stime of a process (all its threads), in clock ticks
  sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12+$13}'
}
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null; }
cpu_busy() { # busy clock ticks of CPU $1 (user nice system irq softirq steal), from /proc/stat
  awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}

# ---------- pylon binary ----------
if [ -z "$PYLON_BIN" ]; then
  command -v cargo >/dev/null || die "set PYLON_BIN or install cargo"
  log "cargo build --release (log: $WORK/build.log)"
  (cd "$REPO" && cargo build --release --bin pylon) >"$WORK/build.log" 2>&1 ||
    die "cargo build --release failed: $(tail -5 "$WORK/build.log")"
  PYLON_BIN=$REPO/target/release/pylon
fi
[ -x "$PYLON_BIN" ] || die "pylon binary not found: $PYLON_BIN"
PYLON_VERSION=$(timeout 5 "$PYLON_BIN" --version 2>/dev/null | head -1); PYLON_VERSION=${PYLON_VERSION:-pylon}
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "?")
GIT_DIRTY=$(git -C "$REPO" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)
HAPROXY_VERSION=$("$HAPROXY_BIN" -v | head -1 | awk '{print $3}')
HAPROXY_SSL=$("$HAPROXY_BIN" -vv 2>/dev/null | sed -n 's/^Running on OpenSSL version : //p')

# ---------- load generator for new connections ----------
# rustls (tls-client/, default): about 0.26 ms of CPU per connection on this VM, half of
# OpenSSL 3.0's 0.5 ms (tls_client.c); it shares a core with the backend and must not be
# the limit. Both never resume, and both report the same fields.
if [ "$HS_CLIENT" = rustls ]; then
  log "building the rustls load generator (benches/tls-client, log: $WORK/tls-client-build.log)"
  if (cd "$HERE/tls-client" && { CARGO_TARGET_DIR=$REPO/target/bench-tls-client cargo build --release --offline ||
       CARGO_TARGET_DIR=$REPO/target/bench-tls-client cargo build --release; }) >"$WORK/tls-client-build.log" 2>&1; then
    HS_BIN=$REPO/target/bench-tls-client/release/pylon-tls-bench-client
  else
    log "WARN: the rustls load generator did not build ($(tail -2 "$WORK/tls-client-build.log" | tr '\n' ' ')); using tls_client.c"
    HS_CLIENT=openssl
  fi
fi
if [ "$HS_CLIENT" = openssl ]; then
  HS_BIN=$WORK/tls_client
  gcc -O2 -o "$HS_BIN" "$HERE/tls_client.c" -lssl -lcrypto 2>"$WORK/tls_client-build.log" ||
    die "tls_client.c build failed (needs libssl-dev): $(head -5 "$WORK/tls_client-build.log")"
fi

# ---------- certificates: made once per run, the same file for both proxies ----------
make_cert() { # kind -> $WORK/KIND.pem (certificate then key)
  local kind=$1 keyopt
  case "$kind" in
    rsa) keyopt=(-newkey rsa:2048) ;;
    ecdsa) keyopt=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
  esac
  openssl req -x509 "${keyopt[@]}" -nodes -sha256 -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -keyout "$WORK/$kind.key" -out "$WORK/$kind.crt" >"$WORK/cert-$kind.log" 2>&1 ||
    die "certificate $kind: $(tail -3 "$WORK/cert-$kind.log")"
  cat "$WORK/$kind.crt" "$WORK/$kind.key" >"$WORK/$kind.pem"
}
for k in $CERTS; do make_cert "$k"; done

# ---------- backend ----------
if command -v nginx >/dev/null; then
  mkdir -p "$WORK/btmp"
  cat >"$WORK/backend.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $WORK/backend.pid;
error_log $WORK/backend-error.log error;
worker_rlimit_nofile 16384;
events { worker_connections 8000; multi_accept on; }
http {
  access_log off;
  tcp_nodelay on;
  keepalive_requests 1000000; keepalive_timeout 300s;
  client_body_temp_path $WORK/btmp; proxy_temp_path $WORK/btmp; fastcgi_temp_path $WORK/btmp;
  uwsgi_temp_path $WORK/btmp; scgi_temp_path $WORK/btmp;
  server {
    listen 127.0.0.1:$BE backlog=4096;
    location = $REQ_PATH { return 200 "hello"; }
  }
}
EOF
  taskset -c "$CPU_BACKEND" nginx -p "$WORK" -c "$WORK/backend.conf" -e "$WORK/backend-error.log" \
    >"$WORK/backend.out" 2>&1 &
  BACKEND_PID=$!; BACKEND_DESC="nginx $(nginx -v 2>&1 | sed 's/.*\///')"
else
  cat >"$WORK/backend.cfg" <<EOF
global
    nbthread 1
    maxconn 8000
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend origin
    bind 127.0.0.1:$BE
    http-request return status 200 content-type text/plain string hello
EOF
  taskset -c "$CPU_BACKEND" "$PYLON_BIN" -f "$WORK/backend.cfg" >"$WORK/backend.out" 2>&1 &
  BACKEND_PID=$!; BACKEND_DESC="pylon http-request return (nginx not installed)"
fi
PIDS+=("$BACKEND_PID")
wait_port "$BE" 100 || die "backend did not start: $(tail -5 "$WORK/backend.out" "$WORK/backend-error.log" 2>/dev/null)"

# ---------- proxies: the same configuration text, ports aside ----------
write_cfg() { # proxy file
  local p=$1 f=$2 k
  {
    cat <<EOF
global
    nbthread 1
    maxconn 8000

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
EOF
    [ -n "$HTTP_REUSE" ] && echo "    http-reuse $HTTP_REUSE"
    for k in $CERTS; do
      cat <<EOF

frontend fe_$k
    bind 127.0.0.1:${PORT[$p-$k]} ssl crt $WORK/$k.pem
    default_backend be

EOF
    done
    cat <<EOF
backend be
    server s1 127.0.0.1:$BE
EOF
  } >"$f"
}
declare -A PID
write_cfg pylon "$WORK/pylon.cfg"
write_cfg haproxy "$WORK/haproxy.cfg"
taskset -c "$CPU_PROXY" "$PYLON_BIN" -f "$WORK/pylon.cfg" >"$WORK/pylon.out" 2>&1 &
PID[pylon]=$!; PIDS+=("${PID[pylon]}")
taskset -c "$CPU_PROXY" "$HAPROXY_BIN" -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.out" 2>&1 &
PID[haproxy]=$!; PIDS+=("${PID[haproxy]}")
for p in pylon haproxy; do
  for k in $CERTS; do
    wait_port "${PORT[$p-$k]}" 300 || die "$p did not listen on ${PORT[$p-$k]}: $(tail -5 "$WORK/$p.out")"
  done
done
grep -q " ready: " "$WORK/pylon.out" || log "WARN: pylon printed no ' ready: ' line: $(head -3 "$WORK/pylon.out")"

# ---------- checks: an answer through each proxy, and what each negotiates ----------
declare -A NEGO
for p in pylon haproxy; do
  for k in $CERTS; do
    port=${PORT[$p-$k]}
    body=$(curl -sk --max-time 5 --resolve "localhost:$port:127.0.0.1" "https://localhost:$port$REQ_PATH" 2>&1)
    [ "$body" = hello ] || die "probe through $p ($k, port $port) failed: $body"
    s=$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost </dev/null 2>/dev/null)
    NEGO[$p-$k]=$(echo "$s" | awk -F': *' '
      /^New, /{split($0, a, ", "); proto=a[2]; sub(/^Cipher is /, "", a[3]); cipher=a[3]}
      /^Server Temp Key/{tk=$2}
      /^Peer signature type/{sig=$2}
      /^Server public key is/{pk=$0; sub(/^Server public key is /, "", pk)}
      END{printf "%s %s, key exchange %s, signature %s, certificate key %s", proto, cipher, tk, sig, pk}')
  done
done

# ---------- measurement ----------
mkdir -p "$RESULTS_DIR"
[ -f "$RESULTS_DIR/.gitignore" ] || [ "$RESULTS_DIR" != "$HERE/results" ] || echo '*' >"$RESULTS_DIR/.gitignore"
STAMP=$(date +%Y%m%d-%H%M%S)
RAW=$RESULTS_DIR/tls-$STAMP.csv
MD=$RESULTS_DIR/tls-$STAMP.md
echo "round,scenario,proxy,position,count,secs,rate,errors,error_detail,cpu_s,cpu_per_unit,core_pct,other_on_core_pct,load_core_busy_pct,p50_us,p99_us,rss_kb,tls" >"$RAW"

SCEN=()
for k in $CERTS; do
  for s in "hs-$k" "ka-$k"; do [[ "$s" =~ $SCENARIOS ]] && SCEN+=("$s"); done
done
[ ${#SCEN[@]} -gt 0 ] || die "SCENARIOS '$SCENARIOS' selects nothing"

to_us() { # wrk latency "311.00us" / "1.20ms" / "2.00s" -> microseconds
  awk -v v="$1" 'BEGIN{ n=v+0; if (v ~ /us$/) m=1; else if (v ~ /ms$/) m=1000; else if (v ~ /s$/) m=1000000; else m=1; printf "%.0f", n*m }'
}

# run_load scenario proxy dur -> "count secs rate errors error_detail p50_us p99_us tls"
run_load() {
  local s=$1 p=$2 d=$3 k=${1#*-} port out
  port=${PORT[$p-$k]}
  case "$s" in
    hs-*)
      local target=(127.0.0.1 "$port")
      [ "$HS_CLIENT" = rustls ] && target=("127.0.0.1:$port")
      out=$(timeout $((d + 30)) taskset -c "$CPU_LOAD" "$HS_BIN" "${target[@]}" "$HS_CONNS" "$d" 0 "$REQ_PATH" localhost 2>&1)
      echo "$p $s: $out" >>"$WORK/load.log"
      echo "$out" | awk '/^conns=/{for (i = 1; i <= NF; i++) {split($i, a, "="); v[a[1]] = a[2]}
        det = sprintf("connect:%d/handshake:%d/io:%d/status:%d/timeout:%d/resumed:%d/no_close_notify:%s", v["err_connect"],
          v["err_handshake"], v["err_io"], v["err_status"], v["err_timeout"], v["resumed"], ("no_close_notify" in v) ? v["no_close_notify"] : "?");
        printf "%d %s %s %d %s %d %d %s/%s/%s/%s/tickets:%s\n", v["conns"], v["secs"], v["rate"],
          v["errors"] + v["resumed"], det, v["p50_us"], v["p99_us"], v["proto"], v["cipher"], v["group"], v["sig"], v["tickets"]; f = 1}
        END{if (!f) print "0 0 0 1 no-output 0 0 -"}'
      ;;
    ka-*)
      out=$(timeout $((d + 30)) taskset -c "$CPU_LOAD" wrk -t"$WRK_THREADS" -c"$KA_CONNS" -d"${d}s" --latency \
        "https://localhost:$port$REQ_PATH" 2>&1)
      echo "$p $s: $out" >>"$WORK/load.log"
      local req secs rps p50 p99 serr non2xx
      req=$(echo "$out" | awk '/requests in/{print $1}')
      secs=$(echo "$out" | awk '/requests in/{v = $4; sub(/,$/, "", v); n = v + 0; if (v ~ /ms$/) n /= 1000; else if (v ~ /m$/) n *= 60; print n}')
      rps=$(echo "$out" | awk '/^Requests\/sec:/{print $2}')
      p50=$(to_us "$(echo "$out" | awk '$1=="50%"{print $2}')")
      p99=$(to_us "$(echo "$out" | awk '$1=="99%"{print $2}')")
      # "  Socket errors: connect 0, read 3, write 0, timeout 0" (only when there are some)
      serr=$(echo "$out" | awk '/Socket errors/{gsub(/,/, ""); for (i = 1; i < NF; i++) if ($i ~ /^(connect|read|write|timeout)$/) v[$i] = $(i + 1) + 0
        printf "connect:%d/read:%d/write:%d/timeout:%d", v["connect"], v["read"], v["write"], v["timeout"]}')
      non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}')
      local nerr
      nerr=$(echo "${serr:-x:0/x:0/x:0/x:0}" | awk -F'[:/]' '{print $2+$4+$6+$8}')
      nerr=$((nerr + ${non2xx:-0}))
      [ -n "$req" ] || nerr=$((nerr + 1))
      echo "${req:-0} ${secs:-0} ${rps:-0} $nerr ${serr:-socket:0}/non2xx:${non2xx:-0} $p50 $p99 -"
      ;;
  esac
}

proxy_alive() { # proxy scenario
  kill -0 "${PID[$1]}" 2>/dev/null ||
    die "$1 (pid ${PID[$1]}) died during $2: $(tail -5 "$WORK/$1.out")"
}

# Something else busy on this machine makes rates meaningless (a 2-vCPU VM): say so up front.
a=$(awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat); sleep 2
b=$(awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat)
IDLE_BUSY=$(echo "$a $b" | awk '{t = ($3 - $1) + ($4 - $2); printf "%.0f", (t > 0 ? 100 * ($3 - $1) / t : 0)}')
if [ "$IDLE_BUSY" -gt 10 ]; then
  log "WARN: the machine is ${IDLE_BUSY}% busy before the benchmark starts (all CPUs); top: $(ps -eo pcpu=,comm= --sort=-pcpu | head -3 | tr -s ' ' | paste -sd ';')"
fi
log "$PYLON_VERSION (git $GIT_REV, $GIT_DIRTY changed files in src/Cargo) vs haproxy $HAPROXY_VERSION ($HAPROXY_SSL); work dir $WORK"
log "scenarios: ${SCEN[*]}; warm-up ${WARMUP}s each, then $ROUNDS rounds x ${DUR}s"
if [ "$WARMUP" -gt 0 ]; then
  for s in "${SCEN[@]}"; do
    for p in pylon haproxy; do run_load "$s" "$p" "$WARMUP" >/dev/null; proxy_alive "$p" "warm-up $s"; done
  done
fi
for ((r = 1; r <= ROUNDS; r++)); do
  order=(pylon haproxy); [ $((r % 2)) = 0 ] && order=(haproxy pylon)
  for s in "${SCEN[@]}"; do
    pos=0
    for p in "${order[@]}"; do
      pos=$((pos + 1))
      t0=$(ticks "${PID[$p]}"); b0=$(cpu_busy "$CPU_PROXY"); l0=$(cpu_busy "$CPU_LOAD"); w0=$(date +%s.%N)
      read -r count secs rate nerr detail p50 p99 tls <<<"$(run_load "$s" "$p" "$DUR")"
      t1=$(ticks "${PID[$p]}"); b1=$(cpu_busy "$CPU_PROXY"); l1=$(cpu_busy "$CPU_LOAD"); w1=$(date +%s.%N)
      proxy_alive "$p" "$s"
      # hs: CPU-s per 1000 handshakes; ka: CPU-s per 100k requests
      unit=1000; [[ "$s" == ka-* ]] && unit=100000
      cpu=$(awk -v a="$t0" -v b="$t1" -v k="$CLK_TCK" 'BEGIN{printf "%.3f", (b - a) / k}')
      per=$(awk -v c="$cpu" -v n="$count" -v u="$unit" 'BEGIN{if (n > 0) printf "%.4f", c / n * u; else print "nan"}')
      pct=$(awk -v c="$cpu" -v a="$w0" -v b="$w1" 'BEGIN{printf "%.1f", 100 * c / (b - a)}')
      # CPU time used on the proxy's core by anything else (other processes, and softirq
      # work not charged to the proxy): a few % is normal; much more means a noisy run.
      other=$(awk -v x="$b0" -v y="$b1" -v a="$t0" -v b="$t1" -v k="$CLK_TCK" -v u="$w0" -v v="$w1" \
        'BEGIN{o = ((y - x) - (b - a)) / k / (v - u) * 100; if (o < 0) o = 0; printf "%.1f", o}')
      # Busy % of the load generator's core (client + backend): near 100 means the load
      # generator, not the proxy, may be the limit (then compare CPU-s per unit, not rates).
      lbusy=$(awk -v x="$l0" -v y="$l1" -v k="$CLK_TCK" -v u="$w0" -v v="$w1" 'BEGIN{printf "%.1f", (y - x) / k / (v - u) * 100}')
      row="$r,$s,$p,$pos,$count,$secs,$rate,$nerr,$detail,$cpu,$per,$pct,$other,$lbusy,$p50,$p99,$(rss_kb "${PID[$p]}"),$tls"
      echo "$row" >>"$RAW"
      log "round $r/$ROUNDS $s $p: $rate/s, errors $nerr ($detail), proxy CPU ${cpu}s (${pct}% of its core; other use of the core ${other}%; load core busy ${lbusy}%)"
    done
  done
done

# ---------- summary ----------
{
  echo "<!-- benches/tls.sh $(date -u +%FT%TZ): $PYLON_VERSION git $GIT_REV ($GIT_DIRTY changed files in src/Cargo), haproxy $HAPROXY_VERSION on $HAPROXY_SSL; backend $BACKEND_DESC; ROUNDS=$ROUNDS DUR=${DUR}s WARMUP=${WARMUP}s HS_CONNS=$HS_CONNS KA_CONNS=$KA_CONNS CPU_PROXY=$CPU_PROXY CPU_LOAD=$CPU_LOAD CPU_BACKEND=$CPU_BACKEND HTTP_REUSE=${HTTP_REUSE:-default}; machine busy before start ${IDLE_BUSY}%; load average at end $(cut -d' ' -f1-3 /proc/loadavg) -->"
  for p in pylon haproxy; do
    for k in $CERTS; do echo "<!-- $p $k: ${NEGO[$p-$k]} -->"; done
  done
  echo
  echo "| scenario | unit | pylon median (min-max) | haproxy median (min-max) | pylon/haproxy | proxy CPU-s per unit pylon / haproxy (ratio) | proxy core % pylon / haproxy | other use of proxy core % pylon / haproxy runs | load core busy % pylon / haproxy runs | p99 ms pylon / haproxy | errors pylon / haproxy (all rounds) |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F, -v rounds="$ROUNDS" '
    function median(list,   n, a, i, j, t) {
      n = split(list, a, " ")
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
      if (n == 0) return "nan"
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function mn(list,   n, a, i, m) { n = split(list, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 < m + 0) m = a[i]; return m }
    function mx(list,   n, a, i, m) { n = split(list, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 > m + 0) m = a[i]; return m }
    NR == 1 { next }
    {
      k = $2 SUBSEP $3
      if (!($2 in seen)) { seen[$2] = 1; order[++ns] = $2 }
      rate[k] = rate[k] " " $7; cpu[k] = cpu[k] " " $11; pct[k] = pct[k] " " $12; oth[k] = oth[k] " " $13; lb[k] = lb[k] " " $14; p99[k] = p99[k] " " $16
      err[k] += $8
    }
    END {
      for (i = 1; i <= ns; i++) {
        s = order[i]; P = s SUBSEP "pylon"; H = s SUBSEP "haproxy"
        unit = (s ~ /^hs-/) ? "handshakes/s; CPU-s per 1000 handshakes" : "requests/s; CPU-s per 100k requests"
        rp = median(rate[P]); rh = median(rate[H]); cp = median(cpu[P]); ch = median(cpu[H])
        printf "| %s | %s | %.0f (%.0f-%.0f) | %.0f (%.0f-%.0f) | %.2f | %.3f / %.3f (%.2f) | %.0f / %.0f | %.0f / %.0f | %.0f / %.0f | %.1f / %.1f | %d / %d |\n",
          s, unit, rp, mn(rate[P]), mx(rate[P]), rh, mn(rate[H]), mx(rate[H]), (rh > 0 ? rp / rh : 0),
          cp, ch, (ch > 0 ? cp / ch : 0), median(pct[P]), median(pct[H]), median(oth[P]), median(oth[H]), median(lb[P]), median(lb[H]),
          median(p99[P]) / 1000, median(p99[H]) / 1000, err[P], err[H]
      }
    }' "$RAW"
} >"$MD"
cat "$MD"
bad=$(awk -F, 'NR > 1 && $8 > 0' "$RAW" | wc -l)
[ "$bad" = 0 ] || log "WARN: $bad runs had errors; per-run detail in $RAW (error_detail column)"
lines=$(grep -vc " ready: " "$WORK/pylon.out")
[ "$lines" = 0 ] || log "pylon printed $lines more lines on stderr; first ones: $(grep -v " ready: " "$WORK/pylon.out" | head -5)"
[ -s "$WORK/haproxy.out" ] && log "haproxy output: $(head -5 "$WORK/haproxy.out")"
log "results: $MD (raw per-run: $RAW)"
