//! Framing: a rendered line becomes the bytes one log target receives, in the target's
//! `format` (HAProxy's names), cut to the target's `len`, ending with a line feed.
//!
//! ```text
//! rfc3164   <134>Feb  6 12:14:14 pylon[4242]: message          (host name with log-send-hostname)
//! local     <134>Feb  6 12:14:14 pylon[4242]: message          (never a host name)
//! rfc5424   <134>1 2009-02-06T12:14:14.655123+01:00 host pylon 4242 - - message
//! priority  <134>message
//! short     <6>message
//! timed     <6>2009-02-06T12:14:14.655123+01:00 message
//! iso       2009-02-06T12:14:14.655123+01:00 message
//! raw       message
//! ```
//!
//! `<134>` is the PRI value, facility × 8 + level (`local0`, `info`). Dates are local time, as
//! HAProxy writes them. The host name is sent only when `log-send-hostname` is set, as in
//! HAProxy (rfc5424 writes `-` without it). Pure functions: the writer thread calls them.

use std::time::SystemTime;

use crate::config::model::{Facility, Level, LogFormat};

use super::time::{self, DateCache, push_uint};

/// HAProxy's default `len`: the longest frame sent, line feed included.
pub const DEFAULT_MAX_LEN: usize = 1024;

/// What every frame of one process carries besides the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// The `log-tag` (the program's name by default).
    pub tag: &'a str,
    /// The host name sent (`log-send-hostname`), if any.
    pub hostname: Option<&'a str>,
    /// The process id.
    pub pid: u32,
}

/// How one log target frames its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// The target's `format`.
    pub format: LogFormat,
    /// Its facility.
    pub facility: Facility,
    /// Its `len`: the longest frame, line feed included.
    pub max_len: usize,
}

/// Appends to `out` the frame of `message` at `level`, at `time`, cut so that the frame with
/// its final line feed fits `framing.max_len` bytes (HAProxy's `len`). `dates` is the
/// caller's cache of the current second.
pub fn frame(
    out: &mut Vec<u8>,
    framing: &Framing,
    level: Level,
    time: SystemTime,
    header: &Header<'_>,
    message: &[u8],
    dates: &mut DateCache,
) {
    let Framing { format, facility, max_len } = *framing;
    let start = out.len();
    let pri = u64::from(facility as u8) * 8 + u64::from(level as u8);
    let push_pri = |out: &mut Vec<u8>| {
        out.push(b'<');
        push_uint(out, pri);
        out.push(b'>');
    };
    let push_tag = |out: &mut Vec<u8>| {
        out.extend_from_slice(header.tag.as_bytes());
        out.push(b'[');
        push_uint(out, u64::from(header.pid));
        out.extend_from_slice(b"]: ");
    };
    match format {
        LogFormat::Rfc3164 | LogFormat::Local => {
            push_pri(out);
            time::push_rfc3164_date(out, &dates.local(time));
            out.push(b' ');
            if let (LogFormat::Rfc3164, Some(host)) = (format, header.hostname) {
                out.extend_from_slice(host.as_bytes());
                out.push(b' ');
            }
            push_tag(out);
        }
        LogFormat::Rfc5424 => {
            push_pri(out);
            out.extend_from_slice(b"1 ");
            time::push_iso_date(out, &dates.local(time));
            out.push(b' ');
            out.extend_from_slice(header.hostname.unwrap_or("-").as_bytes());
            out.push(b' ');
            out.extend_from_slice(header.tag.as_bytes());
            out.push(b' ');
            push_uint(out, u64::from(header.pid));
            out.extend_from_slice(b" - - ");
        }
        LogFormat::Priority => push_pri(out),
        LogFormat::Short | LogFormat::Timed => {
            out.push(b'<');
            push_uint(out, u64::from(level as u8));
            out.push(b'>');
            if format == LogFormat::Timed {
                time::push_iso_date(out, &dates.local(time));
                out.push(b' ');
            }
        }
        LogFormat::Iso => {
            time::push_iso_date(out, &dates.local(time));
            out.push(b' ');
        }
        LogFormat::Raw => {}
    }
    let room = max_len.saturating_sub(out.len() - start + 1);
    out.extend_from_slice(&message[..message.len().min(room)]);
    // A header longer than `len` itself (a tiny `len`, a long tag) is cut too.
    out.truncate(start + max_len.saturating_sub(1));
    out.push(b'\n');
}

/// The level a target sends a line of `level` at, or `None` when it filters the line out:
/// a target sends levels up to its `max` (the most verbose), and raises the severity of
/// lines more severe than its `min` to `min` (HAProxy's `minlevel`, which keeps `emerg`
/// lines off terminals).
pub fn level_for(level: Level, max: Option<Level>, min: Option<Level>) -> Option<Level> {
    if max.is_some_and(|m| level > m) {
        return None;
    }
    Some(match min {
        Some(m) if level < m => m,
        _ => level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn framed(format: LogFormat, host: Option<&str>, message: &str, max_len: usize) -> String {
        let mut out = Vec::new();
        let header = Header { tag: "pylon", hostname: host, pid: 4242 };
        // 6 Feb 2009 12:14:14.655123 UTC; rendered in local time, so the test uses the
        // local offset of that moment.
        let t = UNIX_EPOCH + Duration::from_micros(1_233_922_454_655_123);
        let framing = Framing { format, facility: Facility::Local0, max_len };
        frame(&mut out, &framing, Level::Info, t, &header, message.as_bytes(), &mut DateCache::default());
        String::from_utf8(out).unwrap()
    }

    fn local_parts() -> (String, String) {
        let t = UNIX_EPOCH + Duration::from_micros(1_233_922_454_655_123);
        let c = time::Civil::local(t);
        let mut a = Vec::new();
        time::push_rfc3164_date(&mut a, &c);
        let mut b = Vec::new();
        time::push_iso_date(&mut b, &c);
        (String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap())
    }

    #[test]
    fn each_format() {
        let (bsd, iso) = local_parts();
        assert_eq!(framed(LogFormat::Rfc3164, None, "hello", 1024), format!("<134>{bsd} pylon[4242]: hello\n"));
        assert_eq!(
            framed(LogFormat::Rfc3164, Some("lb1"), "hello", 1024),
            format!("<134>{bsd} lb1 pylon[4242]: hello\n")
        );
        assert_eq!(framed(LogFormat::Local, Some("lb1"), "hello", 1024), format!("<134>{bsd} pylon[4242]: hello\n"));
        assert_eq!(framed(LogFormat::Rfc5424, None, "hello", 1024), format!("<134>1 {iso} - pylon 4242 - - hello\n"));
        assert_eq!(framed(LogFormat::Priority, None, "hello", 1024), "<134>hello\n");
        assert_eq!(framed(LogFormat::Short, None, "hello", 1024), "<6>hello\n");
        assert_eq!(framed(LogFormat::Timed, None, "hello", 1024), format!("<6>{iso} hello\n"));
        assert_eq!(framed(LogFormat::Iso, None, "hello", 1024), format!("{iso} hello\n"));
        assert_eq!(framed(LogFormat::Raw, None, "hello", 1024), "hello\n");
    }

    #[test]
    fn frames_are_cut_to_len_with_their_line_feed() {
        let long = "x".repeat(2000);
        let f = framed(LogFormat::Rfc3164, None, &long, 1024);
        assert_eq!(f.len(), 1024);
        assert!(f.ends_with("xx\n"));
        assert_eq!(framed(LogFormat::Raw, None, "abcdef", 4), "abc\n");
        assert_eq!(framed(LogFormat::Rfc3164, None, "abcdef", 5), "<134\n");
    }

    #[test]
    fn levels_filter_and_cap() {
        assert_eq!(level_for(Level::Info, None, None), Some(Level::Info));
        assert_eq!(level_for(Level::Info, Some(Level::Notice), None), None);
        assert_eq!(level_for(Level::Err, Some(Level::Notice), None), Some(Level::Err));
        assert_eq!(level_for(Level::Emerg, None, Some(Level::Err)), Some(Level::Err));
        assert_eq!(level_for(Level::Info, None, Some(Level::Err)), Some(Level::Info));
    }
}
