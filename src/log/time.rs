//! Dates in the forms log lines use, written straight into a byte buffer.
//!
//! HAProxy writes accept and request dates in local time (`%t`, `%tr`, syslog headers) and
//! some in GMT (`%T`, `%trg`). The local offset comes from the C library (`localtime_r`, so
//! `TZ` and `/etc/localtime` apply), but it is asked at most once a minute per process: the
//! answer is cached in one atomic word, so a worker rendering a line takes no lock (glibc's
//! `localtime_r` takes one) and makes no system call. Offsets only change on minute
//! boundaries (daylight saving time moves whole hours), so the cache is exact.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Month abbreviations, as HAProxy and syslog write them.
const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// A moment broken down into calendar fields, in some time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// The year.
    pub year: i64,
    /// The month, 1 to 12.
    pub month: u32,
    /// The day of the month, 1 to 31.
    pub day: u32,
    /// Hours, 0 to 23.
    pub hour: u32,
    /// Minutes, 0 to 59.
    pub minute: u32,
    /// Seconds, 0 to 59.
    pub second: u32,
    /// Microseconds, 0 to 999 999.
    pub micros: u32,
    /// The zone's offset from UTC, in seconds east.
    pub offset: i32,
}

impl Civil {
    /// `t` in UTC.
    pub fn utc(t: SystemTime) -> Civil {
        Civil::at_offset(t, 0)
    }

    /// `t` in the local time zone.
    pub fn local(t: SystemTime) -> Civil {
        let secs = unix_secs(t);
        Civil::at_offset(t, local_offset(secs))
    }

    /// `t` at `offset` seconds east of UTC.
    pub fn at_offset(t: SystemTime, offset: i32) -> Civil {
        let (secs, micros) = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_micros()),
            Err(_) => (0, 0),
        };
        let shifted = secs + i64::from(offset);
        let (year, month, day) = civil_from_days(shifted.div_euclid(86_400));
        let s = shifted.rem_euclid(86_400) as u32;
        Civil { year, month, day, hour: s / 3600, minute: s / 60 % 60, second: s % 60, micros, offset }
    }
}

/// The calendar fields of the second being logged, in local time and in UTC, so that the
/// lines of one second compute them once. Each worker (and the writer thread) keeps its own:
/// no sharing, no lock.
#[derive(Debug, Clone, Default)]
pub struct DateCache {
    local: Option<(i64, Civil)>,
    utc: Option<(i64, Civil)>,
}

impl DateCache {
    /// `t` in local time.
    pub fn local(&mut self, t: SystemTime) -> Civil {
        Self::get(&mut self.local, t, Civil::local)
    }

    /// `t` in UTC.
    pub fn utc(&mut self, t: SystemTime) -> Civil {
        Self::get(&mut self.utc, t, Civil::utc)
    }

    fn get(slot: &mut Option<(i64, Civil)>, t: SystemTime, compute: fn(SystemTime) -> Civil) -> Civil {
        let secs = unix_secs(t);
        let micros = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_micros());
        match slot {
            Some((s, c)) if *s == secs => Civil { micros, ..*c },
            _ => {
                let c = compute(t);
                *slot = Some((secs, c));
                c
            }
        }
    }
}

/// Whole seconds since the epoch (0 before it).
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `06/Feb/2009:12:14:14.655` in UTC, as a string (for the admin socket's replies).
pub fn haproxy_date(t: SystemTime) -> String {
    let mut out = Vec::with_capacity(24);
    push_haproxy_date(&mut out, &Civil::utc(t));
    String::from_utf8_lossy(&out).into_owned()
}

/// `06/Feb/2009:12:14:14.655`: HAProxy's accept date (`%t`, `%tr`).
pub fn push_haproxy_date(out: &mut Vec<u8>, c: &Civil) {
    push_day_month_year_time(out, c);
    out.push(b'.');
    push_padded(out, u64::from(c.micros / 1000), 3);
}

/// `06/Feb/2009:12:14:14 +0100`: HAProxy's `%T`, `%Tl`, `%trg`, `%trl` (offset `+0000` for
/// GMT).
pub fn push_haproxy_date_zone(out: &mut Vec<u8>, c: &Civil) {
    push_day_month_year_time(out, c);
    out.push(b' ');
    let (sign, abs) = if c.offset < 0 { (b'-', -c.offset) } else { (b'+', c.offset) };
    out.push(sign);
    push_padded(out, (abs / 3600) as u64, 2);
    push_padded(out, (abs / 60 % 60) as u64, 2);
}

/// `Feb  6 12:14:14`: the RFC 3164 timestamp (day padded with a space).
pub fn push_rfc3164_date(out: &mut Vec<u8>, c: &Civil) {
    out.extend_from_slice(MONTHS[(c.month - 1) as usize % 12]);
    out.push(b' ');
    if c.day < 10 {
        out.push(b' ');
    }
    push_padded(out, u64::from(c.day), 1);
    out.push(b' ');
    push_clock(out, c);
}

/// `2009-02-06T12:14:14.655123+01:00`: the RFC 5424 / ISO 8601 timestamp.
pub fn push_iso_date(out: &mut Vec<u8>, c: &Civil) {
    push_padded(out, c.year.max(0) as u64, 4);
    out.push(b'-');
    push_padded(out, u64::from(c.month), 2);
    out.push(b'-');
    push_padded(out, u64::from(c.day), 2);
    out.push(b'T');
    push_clock(out, c);
    out.push(b'.');
    push_padded(out, u64::from(c.micros), 6);
    let (sign, abs) = if c.offset < 0 { (b'-', -c.offset) } else { (b'+', c.offset) };
    out.push(sign);
    push_padded(out, (abs / 3600) as u64, 2);
    out.push(b':');
    push_padded(out, (abs / 60 % 60) as u64, 2);
}

/// Writes `n` in decimal, left-padded with zeros to `width` digits (at most 20).
pub fn push_padded(out: &mut Vec<u8>, n: u64, width: usize) {
    if n < 10 && width <= 1 {
        out.push(b'0' + n as u8);
        return;
    }
    if n < 100 && width <= 2 {
        // Dates, small timers and counts.
        out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]);
        return;
    }
    // Filled with zeros, so that the padding is part of the slice copied.
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(digits.len().saturating_sub(width));
    out.extend_from_slice(&digits[start..]);
}

/// Writes `n` in decimal.
pub fn push_uint(out: &mut Vec<u8>, n: u64) {
    push_padded(out, n, 1);
}

/// Writes `n` in decimal, with a `-` when negative.
pub fn push_int(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_uint(out, n.unsigned_abs());
}

fn push_day_month_year_time(out: &mut Vec<u8>, c: &Civil) {
    push_padded(out, u64::from(c.day), 2);
    out.push(b'/');
    out.extend_from_slice(MONTHS[(c.month - 1) as usize % 12]);
    out.push(b'/');
    push_padded(out, c.year.max(0) as u64, 4);
    out.push(b':');
    push_clock(out, c);
}

fn push_clock(out: &mut Vec<u8>, c: &Civil) {
    push_padded(out, u64::from(c.hour), 2);
    out.push(b':');
    push_padded(out, u64::from(c.minute), 2);
    out.push(b':');
    push_padded(out, u64::from(c.second), 2);
}

/// The cached local offset: `minute + 1` in the high 40 bits (0: empty), the offset plus
/// `OFFSET_BIAS` in the low 24.
static OFFSET_CACHE: AtomicU64 = AtomicU64::new(0);
const OFFSET_BIAS: i64 = 1 << 20;

/// The local zone's offset from UTC at `secs` since the epoch, in seconds east.
pub fn local_offset(secs: i64) -> i32 {
    let minute = (secs.max(0) / 60) as u64 + 1;
    let cached = OFFSET_CACHE.load(Ordering::Relaxed);
    if cached >> 24 == minute {
        return ((cached & 0xff_ffff) as i64 - OFFSET_BIAS) as i32;
    }
    let offset = ask_offset(secs);
    let packed = (minute << 24) | ((i64::from(offset) + OFFSET_BIAS) as u64 & 0xff_ffff);
    OFFSET_CACHE.store(packed, Ordering::Relaxed);
    offset
}

fn ask_offset(secs: i64) -> i32 {
    let t = secs as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills; both pointers are valid for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: see above; localtime_r is the thread-safe variant.
    let filled = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if filled { tm.tm_gmtoff as i32 } else { 0 }
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
    use std::time::Duration;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn haproxy_dates() {
        let t = UNIX_EPOCH + Duration::from_micros(1_795_579_081_443_210);
        let c = Civil::utc(t);
        assert_eq!(text(|o| push_haproxy_date(o, &c)), "25/Nov/2026:03:58:01.443");
        assert_eq!(text(|o| push_haproxy_date_zone(o, &c)), "25/Nov/2026:03:58:01 +0000");
        assert_eq!(text(|o| push_rfc3164_date(o, &c)), "Nov 25 03:58:01");
        assert_eq!(text(|o| push_iso_date(o, &c)), "2026-11-25T03:58:01.443210+00:00");
        let east = Civil::at_offset(t, 5 * 3600 + 30 * 60);
        assert_eq!(text(|o| push_haproxy_date_zone(o, &east)), "25/Nov/2026:09:28:01 +0530");
        let west = Civil::at_offset(UNIX_EPOCH + Duration::from_secs(86_400 * 3), -3600);
        assert_eq!(text(|o| push_rfc3164_date(o, &west)), "Jan  3 23:00:00");
        assert_eq!(text(|o| push_iso_date(o, &west)), "1970-01-03T23:00:00.000000-01:00");
        assert_eq!(text(|o| push_haproxy_date(o, &Civil::utc(UNIX_EPOCH))), "01/Jan/1970:00:00:00.000");
        let leap = Civil::utc(UNIX_EPOCH + Duration::from_secs(951_782_400));
        assert_eq!(text(|o| push_haproxy_date(o, &leap)), "29/Feb/2000:00:00:00.000");
    }

    #[test]
    fn numbers() {
        assert_eq!(text(|o| push_padded(o, 7, 3)), "007");
        assert_eq!(text(|o| push_padded(o, 1234, 2)), "1234");
        assert_eq!(text(|o| push_int(o, -1)), "-1");
        assert_eq!(text(|o| push_uint(o, u64::MAX)), u64::MAX.to_string());
    }

    #[test]
    fn the_date_cache_gives_the_same_fields() {
        let mut cache = DateCache::default();
        for ms in [0u64, 1, 999, 1000, 1001, 61_000, 86_400_000] {
            let t = UNIX_EPOCH + Duration::from_millis(1_795_579_081_443 + ms);
            assert_eq!(cache.utc(t), Civil::utc(t));
            assert_eq!(cache.local(t), Civil::local(t));
        }
    }

    #[test]
    fn the_local_offset_is_cached_per_minute() {
        let now = unix_secs(SystemTime::now());
        let a = local_offset(now);
        assert_eq!(local_offset(now), a);
        assert!(a.abs() <= 14 * 3600 + 1800);
    }
}
