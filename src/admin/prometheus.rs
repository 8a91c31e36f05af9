//! The Prometheus exporter (`http-request use-service prometheus-exporter`): the metric
//! names, labels and types of HAProxy's built-in exporter (`haproxy_process_*`,
//! `haproxy_frontend_*{proxy}`, `haproxy_backend_*{proxy}`, `haproxy_server_*{proxy,server}`),
//! so that dashboards and alerts written for HAProxy keep working. Values come from the same
//! rows as `show stat`; a field pylon does not track has no sample rather than a made-up one.
//! Text exposition format 0.0.4: one `# HELP` and `# TYPE` per family, its samples together.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::report::{self, Row, View};

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
}

/// Which rows a metric has samples for.
const FE: u8 = 1;
const BE: u8 = 2;
const SRV: u8 = 4;

/// A metric read from a `show stat` column.
struct Metric {
    name: &'static str,
    column: &'static str,
    kind: Kind,
    scopes: u8,
    help: &'static str,
}

const fn m(name: &'static str, column: &'static str, kind: Kind, scopes: u8, help: &'static str) -> Metric {
    Metric { name, column, kind, scopes, help }
}

use Kind::{Counter, Gauge};

/// The proxy and server metrics, in HAProxy's order.
static METRICS: &[Metric] = &[
    m("current_queue", "qcur", Gauge, BE | SRV, "Number of current queued connections."),
    m("max_queue", "qmax", Gauge, BE | SRV, "Highest value of queued connections encountered since process started."),
    m(
        "current_sessions",
        "scur",
        Gauge,
        FE | BE | SRV,
        "Number of current sessions on the frontend, backend or server.",
    ),
    m(
        "max_sessions",
        "smax",
        Gauge,
        FE | BE | SRV,
        "Highest value of current sessions encountered since process started.",
    ),
    m("limit_sessions", "slim", Gauge, FE | BE | SRV, "Frontend/listener/server's maxconn, backend's fullconn."),
    m("sessions_total", "stot", Counter, FE | BE | SRV, "Total number of sessions since process started."),
    m("bytes_in_total", "bin", Counter, FE | BE | SRV, "Total number of request bytes since process started."),
    m("bytes_out_total", "bout", Counter, FE | BE | SRV, "Total number of response bytes since process started."),
    m("requests_denied_total", "dreq", Counter, FE | BE, "Total number of denied requests since process started."),
    m(
        "responses_denied_total",
        "dresp",
        Counter,
        FE | BE | SRV,
        "Total number of denied responses since process started.",
    ),
    m("request_errors_total", "ereq", Counter, FE, "Total number of invalid requests since process started."),
    m(
        "connection_errors_total",
        "econ",
        Counter,
        BE | SRV,
        "Total number of failed connections to server since the worker process started.",
    ),
    m(
        "response_errors_total",
        "eresp",
        Counter,
        BE | SRV,
        "Total number of invalid responses since the worker process started.",
    ),
    m(
        "retry_warnings_total",
        "wretr",
        Counter,
        BE | SRV,
        "Total number of server connection retries since the worker process started.",
    ),
    m(
        "redispatch_warnings_total",
        "wredis",
        Counter,
        BE | SRV,
        "Total number of server redispatches due to connection failures since the worker process started.",
    ),
    m(
        "weight",
        "weight",
        Gauge,
        BE | SRV,
        "Server's effective weight, or sum of active servers' effective weights for a backend.",
    ),
    m("active_servers", "act", Gauge, BE, "Total number of active UP servers with a non-zero weight."),
    m("backup_servers", "bck", Gauge, BE, "Total number of backup UP servers with a non-zero weight."),
    m(
        "check_failures_total",
        "chkfail",
        Counter,
        SRV,
        "Total number of failed individual health checks per server/backend, since the worker process started.",
    ),
    m(
        "check_up_down_total",
        "chkdown",
        Counter,
        BE | SRV,
        "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started.",
    ),
    m(
        "check_last_change_seconds",
        "lastchg",
        Gauge,
        BE | SRV,
        "How long ago the last server state changed, in seconds.",
    ),
    m(
        "downtime_seconds_total",
        "downtime",
        Counter,
        BE | SRV,
        "Total time spent in DOWN state, for server or backend.",
    ),
    m(
        "queue_limit",
        "qlimit",
        Gauge,
        SRV,
        "Limit on the number of connections in queue, for servers only (maxqueue argument).",
    ),
    m(
        "loadbalanced_total",
        "lbtot",
        Counter,
        BE | SRV,
        "Total number of requests routed by load balancing since the worker process started.",
    ),
    m(
        "limit_session_rate",
        "rate_lim",
        Gauge,
        FE,
        "Limit on the number of sessions accepted in a second (frontend only, 'rate-limit sessions' setting).",
    ),
    m(
        "max_session_rate",
        "rate_max",
        Gauge,
        FE | BE | SRV,
        "Highest value of sessions per second observed since the worker process started.",
    ),
    m(
        "http_requests_rate_max",
        "req_rate_max",
        Gauge,
        FE,
        "Highest value of http requests observed since the worker process started.",
    ),
    m(
        "http_requests_total",
        "req_tot",
        Counter,
        FE | BE,
        "Total number of HTTP requests processed by this object since the worker process started.",
    ),
    m(
        "client_aborts_total",
        "cli_abrt",
        Counter,
        BE | SRV,
        "Total number of requests or connections aborted by the client since the worker process started.",
    ),
    m(
        "server_aborts_total",
        "srv_abrt",
        Counter,
        BE | SRV,
        "Total number of requests or connections aborted by the server since the worker process started.",
    ),
    m(
        "http_comp_bytes_in_total",
        "comp_in",
        Counter,
        FE | BE,
        "Total number of bytes submitted to the HTTP compressor for this object since the worker process started.",
    ),
    m(
        "http_comp_bytes_out_total",
        "comp_out",
        Counter,
        FE | BE,
        "Total number of bytes emitted by the HTTP compressor for this object since the worker process started.",
    ),
    m(
        "http_comp_bytes_bypassed_total",
        "comp_byp",
        Counter,
        FE | BE,
        "Total number of bytes that bypassed HTTP compression for this object since the worker process started.",
    ),
    m(
        "http_comp_responses_total",
        "comp_rsp",
        Counter,
        FE | BE,
        "Total number of HTTP responses that were compressed for this object since the worker process started.",
    ),
    m(
        "connections_rate_max",
        "conn_rate_max",
        Gauge,
        FE,
        "Highest value of connections per second observed since the worker process started.",
    ),
    m(
        "connections_total",
        "conn_tot",
        Counter,
        FE,
        "Total number of new connections accepted on this frontend since the worker process started.",
    ),
    m(
        "intercepted_requests_total",
        "intercepted",
        Counter,
        FE,
        "Total number of HTTP requests intercepted on the frontend since the worker process started.",
    ),
    m(
        "denied_connections_total",
        "dcon",
        Counter,
        FE,
        "Total number of incoming connections blocked on a listener/frontend by a tcp-request connection rule since the worker process started.",
    ),
    m(
        "denied_sessions_total",
        "dses",
        Counter,
        FE,
        "Total number of incoming sessions blocked on a listener/frontend by a tcp-request connection rule since the worker process started.",
    ),
    m(
        "failed_header_rewriting_total",
        "wrew",
        Counter,
        FE | BE | SRV,
        "Total number of failed HTTP header rewrites since the worker process started.",
    ),
    m(
        "connection_attempts_total",
        "connect",
        Counter,
        BE | SRV,
        "Total number of outgoing connection attempts on this backend/server since the worker process started.",
    ),
    m(
        "connection_reuses_total",
        "reuse",
        Counter,
        BE | SRV,
        "Total number of reused connection on this backend/server since the worker process started.",
    ),
    m(
        "http_cache_lookups_total",
        "cache_lookups",
        Counter,
        FE | BE,
        "Total number of HTTP requests looked up in the cache on this frontend/backend since the worker process started.",
    ),
    m(
        "http_cache_hits_total",
        "cache_hits",
        Counter,
        FE | BE,
        "Total number of HTTP requests not found in the cache on this frontend/backend since the worker process started.",
    ),
    m(
        "internal_errors_total",
        "eint",
        Counter,
        FE | BE | SRV,
        "Total number of internal errors since process started.",
    ),
    m("unsafe_idle_connections_current", "idle_conn_cur", Gauge, SRV, "Current number of unsafe idle connections."),
    m("used_connections_current", "used_conn_cur", Gauge, SRV, "Current number of connections in use."),
    m(
        "uweight",
        "uweight",
        Gauge,
        BE | SRV,
        "Server's user weight, or sum of active servers' user weights for a backend.",
    ),
    m("check_code", "check_code", Gauge, SRV, "layer5-7 code, if available of the last health check."),
];

/// The states a `status` metric has a sample for, by row kind.
const FRONT_STATES: &[&str] = &["DOWN", "UP"];
const BACK_STATES: &[&str] = &["DOWN", "UP"];
const SERVER_STATES: &[&str] = &["DOWN", "UP", "MAINT", "DRAIN", "NOLB"];
/// Check statuses, as `check_status{state}`.
const CHECK_STATES: &[&str] = &[
    "HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP", "L7TOUT", "L7RSP", "L7OK", "L7OKC",
    "L7STS", "PROCERR", "PROCTOUT", "PROCOK",
];
/// The `code` labels of `http_responses_total`.
const CODES: [(&str, &str); 6] = [
    ("1xx", "hrsp_1xx"),
    ("2xx", "hrsp_2xx"),
    ("3xx", "hrsp_3xx"),
    ("4xx", "hrsp_4xx"),
    ("5xx", "hrsp_5xx"),
    ("other", "hrsp_other"),
];

/// Every metric of `v`, in the text exposition format.
pub fn render(v: &View<'_>, out: &mut String) {
    let rt = v.rt;
    process(v, out);
    let fronts: Vec<(String, Row)> = rt
        .frontends
        .iter()
        .enumerate()
        .map(|(f, fe)| (label(&[("proxy", &fe.name)]), report::frontend_row(v, f)))
        .collect();
    let backs: Vec<(String, Row)> = rt
        .backends
        .iter()
        .enumerate()
        .map(|(b, be)| (label(&[("proxy", &be.name)]), report::backend_row(v, b)))
        .collect();
    let servers: Vec<(String, Row)> = rt
        .backends
        .iter()
        .enumerate()
        .flat_map(|(b, be)| {
            be.servers.iter().enumerate().map(move |(s, srv)| {
                (label(&[("proxy", &be.name), ("server", &srv.name)]), report::server_row(v, b, s))
            })
        })
        .collect();
    for (scope, flag, rows, states) in [
        ("frontend", FE, &fronts, FRONT_STATES),
        ("backend", BE, &backs, BACK_STATES),
        ("server", SRV, &servers, SERVER_STATES),
    ] {
        // status{state}: 1 for the row's state, 0 for the others.
        header(out, scope, "status", Gauge, "Current status of the service, per state label value.");
        for (labels, row) in rows.iter() {
            let status = row.get("status").unwrap_or("");
            let now = if flag == FE { if status == "OPEN" { "UP" } else { "DOWN" } } else { state_word(status) };
            for st in states {
                sample(out, scope, "status", &with(labels, "state", st), u64::from(*st == now));
            }
        }
        for metric in METRICS.iter().filter(|m| m.scopes & flag != 0) {
            let values: Vec<(&String, u64)> =
                rows.iter().filter_map(|(l, r)| r.get(metric.column)?.parse::<u64>().ok().map(|n| (l, n))).collect();
            if values.is_empty() {
                continue;
            }
            header(out, scope, metric.name, metric.kind, metric.help);
            for (labels, n) in values {
                sample(out, scope, metric.name, labels, n);
            }
        }
        header(
            out,
            scope,
            "http_responses_total",
            Counter,
            "Total number of HTTP responses with the code class in the label.",
        );
        for (labels, row) in rows.iter() {
            for (code, column) in CODES {
                if let Some(n) = row.get(column).and_then(|v| v.parse::<u64>().ok()) {
                    sample(out, scope, "http_responses_total", &with(labels, "code", code), n);
                }
            }
        }
        if flag == SRV {
            header(out, scope, "check_status", Gauge, "Status of last health check, per state label value.");
            for (labels, row) in rows.iter() {
                let Some(now) = row.get("check_status") else { continue };
                for st in CHECK_STATES {
                    sample(out, scope, "check_status", &with(labels, "state", st), u64::from(*st == now));
                }
            }
            header(
                out,
                scope,
                "check_duration_seconds",
                Gauge,
                "Total duration of the latest server health check, in seconds.",
            );
            for (labels, row) in rows.iter() {
                if let Some(ms) = row.get("check_duration").and_then(|v| v.parse::<u64>().ok()) {
                    let _ =
                        writeln!(out, "haproxy_server_check_duration_seconds{labels} {}.{:03}", ms / 1000, ms % 1000);
                }
            }
        }
    }
}

/// A server's or backend's `status` column as the exporter's state word.
fn state_word(status: &str) -> &'static str {
    match status.split(' ').next().unwrap_or("") {
        "UP" | "no" => "UP",
        "MAINT" => "MAINT",
        "DRAIN" => "DRAIN",
        "NOLB" => "NOLB",
        _ => "DOWN",
    }
}

/// The process metrics (`show info`'s).
fn process(v: &View<'_>, out: &mut String) {
    let rt = v.rt;
    let uptime = v.now.saturating_duration_since(rt.started.0).as_secs();
    let start = rt.started.1.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let conns: u64 = v.totals.frontends.iter().map(|s| s.sessions).sum();
    let reqs: u64 = v.totals.frontends.iter().map(|s| s.requests).sum();
    let bytes_out: u64 = v.totals.frontends.iter().map(|s| s.bytes_out).sum();
    let listeners: usize = rt.frontends.iter().map(|f| f.listeners.len()).sum();
    let current = rt.current_conns.load(Ordering::Relaxed) as u64;
    let maxconn = rt.maxconn.load(Ordering::Relaxed) as u64;
    let metrics: [(&str, Kind, &str, u64); 17] = [
        ("nbthread", Gauge, "Number of started threads (global.nbthread)", rt.nbthread as u64),
        ("nbproc", Gauge, "Number of started worker processes (historical, always 1)", 1),
        ("relative_process_id", Gauge, "Relative worker process number (1)", 1),
        ("uptime_seconds", Gauge, "How long ago this worker process was started (seconds)", uptime),
        ("start_time_seconds", Gauge, "Start time in seconds", start),
        ("max_fds", Gauge, "Hard limit on the number of per-process file descriptors", report::fd_limit()),
        ("max_connections", Gauge, "Maximum number of concurrent connections (global.maxconn)", maxconn),
        ("hard_max_connections", Gauge, "Initial Maximum number of concurrent connections (global.maxconn)", maxconn),
        ("current_connections", Gauge, "Number of active sessions", current),
        ("connections_total", Counter, "Total number of created sessions", conns),
        ("requests_total", Counter, "Total number of requests (TCP or HTTP)", reqs),
        ("current_connection_rate", Gauge, "Current number of connections per second", v.rates.conns.cur),
        ("max_connection_rate", Gauge, "Highest value of connections per second observed", v.rates.conns.max),
        ("stopping", Gauge, "Non-zero means stopping in progress", 0),
        ("jobs", Gauge, "Current number of active jobs", current + listeners as u64),
        ("listeners", Gauge, "Current number of active listeners", listeners as u64),
        ("bytes_out_total", Counter, "Total number of bytes emitted", bytes_out),
    ];
    for (name, kind, help, value) in metrics {
        header(out, "process", name, kind, help);
        let _ = writeln!(out, "haproxy_process_{name} {value}");
    }
    header(out, "process", "dropped_logs_total", Counter, "Total number of dropped logs");
    let _ = writeln!(out, "haproxy_process_dropped_logs_total {}", crate::log::dropped());
    header(out, "process", "build_info", Gauge, "Build info");
    let _ = writeln!(out, "haproxy_process_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
}

fn header(out: &mut String, scope: &str, name: &str, kind: Kind, help: &str) {
    let kind = if kind == Gauge { "gauge" } else { "counter" };
    let _ = writeln!(out, "# HELP haproxy_{scope}_{name} {help}");
    let _ = writeln!(out, "# TYPE haproxy_{scope}_{name} {kind}");
}

fn sample(out: &mut String, scope: &str, name: &str, labels: &str, value: u64) {
    let _ = writeln!(out, "haproxy_{scope}_{name}{labels} {value}");
}

/// `{k="v",…}` with values escaped as the format requires.
fn label(pairs: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// `labels` with one more pair.
fn with(labels: &str, key: &str, value: &str) -> String {
    let inner = labels.trim_end_matches('}');
    format!("{inner},{key}=\"{value}\"}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label(&[("proxy", "a\"b\\c")]), "{proxy=\"a\\\"b\\\\c\"}");
        assert_eq!(with("{proxy=\"x\"}", "code", "2xx"), "{proxy=\"x\",code=\"2xx\"}");
    }

    #[test]
    fn every_metric_reads_a_static_column() {
        for m in METRICS {
            assert!(super::super::csv::column(m.column).is_some(), "{}", m.column);
        }
    }
}
