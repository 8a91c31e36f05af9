//! HAProxy's `show stat` CSV (management guide §9.1): the header of 2.6's static columns, and
//! rows written in the same order, values quoted only when they hold a comma or a quote,
//! every line (the header too) ending with a comma. Fields pylon does not track are empty,
//! never invented; pylon's own columns may only follow the `-` marker, which ends the static
//! part as it does in HAProxy, so that tools parsing by position keep working.

/// The 103 static columns of HAProxy 2.6, in order (`pxname` … `agg_check_status`).
pub const STATIC_COLUMNS: [&str; 103] = [
    "pxname",
    "svname",
    "qcur",
    "qmax",
    "scur",
    "smax",
    "slim",
    "stot",
    "bin",
    "bout",
    "dreq",
    "dresp",
    "ereq",
    "econ",
    "eresp",
    "wretr",
    "wredis",
    "status",
    "weight",
    "act",
    "bck",
    "chkfail",
    "chkdown",
    "lastchg",
    "downtime",
    "qlimit",
    "pid",
    "iid",
    "sid",
    "throttle",
    "lbtot",
    "tracked",
    "type",
    "rate",
    "rate_lim",
    "rate_max",
    "check_status",
    "check_code",
    "check_duration",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "hanafail",
    "req_rate",
    "req_rate_max",
    "req_tot",
    "cli_abrt",
    "srv_abrt",
    "comp_in",
    "comp_out",
    "comp_byp",
    "comp_rsp",
    "lastsess",
    "last_chk",
    "last_agt",
    "qtime",
    "ctime",
    "rtime",
    "ttime",
    "agent_status",
    "agent_code",
    "agent_duration",
    "check_desc",
    "agent_desc",
    "check_rise",
    "check_fall",
    "check_health",
    "agent_rise",
    "agent_fall",
    "agent_health",
    "addr",
    "cookie",
    "mode",
    "algo",
    "conn_rate",
    "conn_rate_max",
    "conn_tot",
    "intercepted",
    "dcon",
    "dses",
    "wrew",
    "connect",
    "reuse",
    "cache_lookups",
    "cache_hits",
    "srv_icur",
    "src_ilim",
    "qtime_max",
    "ctime_max",
    "rtime_max",
    "ttime_max",
    "eint",
    "idle_conn_cur",
    "safe_conn_cur",
    "used_conn_cur",
    "need_conn_est",
    "uweight",
    "agg_server_status",
    "agg_server_check_status",
    "agg_check_status",
];

/// The header line: `# `, the static columns, the `-` marker, then `extra` (pylon's own).
pub fn header(extra: &[&str], out: &mut String) {
    out.push_str("# ");
    for name in STATIC_COLUMNS.iter().chain(std::iter::once(&"-")).chain(extra) {
        out.push_str(name);
        out.push(',');
    }
    out.push('\n');
}

/// One row: a value per static column (`None`: empty), an empty `-` column, then `extra`.
/// Shorter input leaves the remaining static columns empty.
pub fn row(values: &[Option<&str>], extra: &[Option<&str>], out: &mut String) {
    for i in 0..STATIC_COLUMNS.len() {
        if let Some(Some(v)) = values.get(i) {
            field(v, out);
        }
        out.push(',');
    }
    out.push(',');
    for v in extra {
        if let Some(v) = v {
            field(v, out);
        }
        out.push(',');
    }
    out.push('\n');
}

/// The index of column `name` among the static columns.
pub fn column(name: &str) -> Option<usize> {
    STATIC_COLUMNS.iter().position(|c| *c == name)
}

/// A value, quoted when it holds a comma, a quote or a line break (an inner quote doubled).
fn field(v: &str, out: &mut String) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_haproxy_2_6s_up_to_the_marker() {
        let mut h = String::new();
        header(&[], &mut h);
        assert!(h.starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,"));
        assert!(h.ends_with(",uweight,agg_server_status,agg_server_check_status,agg_check_status,-,\n"));
        assert_eq!(h.matches(',').count(), 104);
        assert_eq!(column("hrsp_2xx"), Some(40));
        assert_eq!(column("lbtot"), Some(30));
        assert_eq!(column("agg_check_status"), Some(102));
    }

    #[test]
    fn rows_quote_only_what_needs_it_and_end_with_a_comma() {
        let mut r = String::new();
        let mut values = vec![None; STATIC_COLUMNS.len()];
        values[0] = Some("web,front");
        values[1] = Some("FRONTEND");
        values[17] = Some("OPEN");
        values[65] = Some("say \"hi\"");
        row(&values, &[Some("7")], &mut r);
        assert!(r.starts_with("\"web,front\",FRONTEND,,"));
        assert!(r.contains(",OPEN,"));
        assert!(r.contains(",\"say \"\"hi\"\"\","));
        assert!(r.ends_with(",,7,\n"));
        // Every line has the same number of fields as the header (quoted commas aside).
        assert_eq!(r.replace("\"web,front\"", "x").matches(',').count(), 105);
    }
}
