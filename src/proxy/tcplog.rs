//! HAProxy's `tcplog` line, written once per connection when it ends:
//!
//! ```text
//! 127.0.0.1:40212 [25/Nov/2026:03:58:01.443] fe be/s1 0/1/5007 212 -- 1/1/0/0/0 0/0
//! ```
//!
//! Fields: client address and port, accept date, frontend, backend/server, `Tw/Tc/Tt` (time
//! queued, time to connect, total time, in ms; -1 when the step never happened), bytes sent to
//! the client, the two-letter termination state, `actconn/feconn/beconn/srv_conn/retries`,
//! `srv_queue/backend_queue`. Dates are UTC until logging brings time zones.

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The facts of one connection that its log line reports.
#[derive(Debug, Clone)]
pub struct TcpLogLine<'a> {
    /// Client address.
    pub client: std::net::SocketAddr,
    /// When the connection was accepted.
    pub accepted: SystemTime,
    /// Frontend name.
    pub frontend: &'a str,
    /// Backend name, or `<NOSRV>`-style placeholder when none was chosen.
    pub backend: &'a str,
    /// Server name, or `<NOSRV>`.
    pub server: &'a str,
    /// Time to connect to the server (`None`: never connected).
    pub connect_time: Option<Duration>,
    /// Total time of the session.
    pub total_time: Duration,
    /// Bytes sent to the client.
    pub bytes_to_client: u64,
    /// Termination state, HAProxy's two letters (`--` for a normal end).
    pub termination: [u8; 2],
    /// Connections open in the process, frontend, backend and server when it ended.
    pub actconn: usize,
    /// See `actconn`.
    pub feconn: usize,
    /// See `actconn`.
    pub beconn: u32,
    /// See `actconn`.
    pub srv_conn: u32,
    /// Connection retries made.
    pub retries: u32,
}

impl TcpLogLine<'_> {
    /// The line, without syslog header (HAProxy's `format raw`).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(160);
        let ms = |d: Duration| d.as_millis();
        let tc = self.connect_time.map_or(-1, |d| ms(d) as i64);
        let _ = write!(
            out,
            "{} [{}] {} {}/{} 0/{}/{} {} {} {}/{}/{}/{}/{} 0/0",
            self.client,
            format_date(self.accepted),
            self.frontend,
            self.backend,
            self.server,
            tc,
            ms(self.total_time),
            self.bytes_to_client,
            String::from_utf8_lossy(&self.termination),
            self.actconn,
            self.feconn,
            self.beconn,
            self.srv_conn,
            self.retries
        );
        out
    }
}

/// `25/Nov/2026:03:58:01.443`, HAProxy's accept date format, in UTC.
pub fn format_date(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let s = secs % 86_400;
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02}.{:03}",
        d,
        MONTHS[(m - 1) as usize],
        y,
        s / 3600,
        s / 60 % 60,
        s % 60,
        since.subsec_millis()
    )
}

/// Year, month (1-12) and day of the month of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_haproxy_format() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_579_081_443);
        assert_eq!(format_date(t), "25/Nov/2026:03:58:01.443");
        assert_eq!(format_date(UNIX_EPOCH), "01/Jan/1970:00:00:00.000");
        assert_eq!(format_date(UNIX_EPOCH + Duration::from_secs(951_782_400)), "29/Feb/2000:00:00:00.000");
    }

    #[test]
    fn a_line() {
        let line = TcpLogLine {
            client: "127.0.0.1:40212".parse().unwrap(),
            accepted: UNIX_EPOCH,
            frontend: "fe",
            backend: "be",
            server: "s1",
            connect_time: Some(Duration::from_millis(1)),
            total_time: Duration::from_millis(5007),
            bytes_to_client: 212,
            termination: *b"--",
            actconn: 1,
            feconn: 1,
            beconn: 0,
            srv_conn: 0,
            retries: 0,
        };
        assert_eq!(line.render(), "127.0.0.1:40212 [01/Jan/1970:00:00:00.000] fe be/s1 0/1/5007 212 -- 1/1/0/0/0 0/0");
    }
}
