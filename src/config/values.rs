//! Parsers for the values inside words: times, sizes and plain integers.
//!
//! They follow HAProxy's rules (configuration manual §2.5 and §2.6): a time is an integer with
//! an optional unit `us`, `ms` (the default), `s`, `m` (minutes), `h` or `d`; a size is an
//! integer with an optional `k`, `m` or `g` (powers of 1024, any case). No decimals, no signs.
//! Each parser works on one word's text and returns a typed value or a [`ValueError`] that the
//! keyword handler turns into a located diagnostic.

use std::fmt;
use std::time::Duration;

use nom::branch::alt;
use nom::bytes::complete::tag;
use nom::character::complete::digit1;
use nom::combinator::{opt, value};
use nom::{IResult, Parser};

/// The largest time HAProxy accepts: timers are signed 32-bit millisecond counts.
pub const MAX_TIME_MS: u64 = i32::MAX as u64;

/// Why a value could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// The word does not start with a digit.
    NotANumber,
    /// The number does not fit the type or the keyword's range.
    OutOfRange {
        /// The smallest value accepted.
        min: u64,
        /// The largest value accepted.
        max: u64,
    },
    /// A unit or character that is not allowed after the number.
    BadSuffix(String),
    /// A time above [`MAX_TIME_MS`].
    TimeOverflow,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::NotANumber => f.write_str("expected a number"),
            ValueError::OutOfRange { min, max } => write!(f, "expected a value from {min} to {max}"),
            ValueError::BadSuffix(s) => write!(f, "unexpected '{s}' after the number"),
            ValueError::TimeOverflow => {
                write!(f, "time too large: the maximum is {MAX_TIME_MS} ms (about 24.8 days)")
            }
        }
    }
}

/// A time value, and the text HAProxy would warn about when it ignored trailing characters
/// (as it does for `15min`, read as 15 minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedTime<'a> {
    /// The time read (microsecond precision, `us` being the finest unit).
    pub duration: Duration,
    /// What followed a valid unit and was ignored (`in` of `15min`); `None` when the whole
    /// word was read.
    pub ignored_suffix: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeUnit {
    Micros,
    Millis,
    Seconds,
    Minutes,
    Hours,
    Days,
}

impl TimeUnit {
    fn micros(self) -> u64 {
        match self {
            TimeUnit::Micros => 1,
            TimeUnit::Millis => 1_000,
            TimeUnit::Seconds => 1_000_000,
            TimeUnit::Minutes => 60_000_000,
            TimeUnit::Hours => 3_600_000_000,
            TimeUnit::Days => 86_400_000_000,
        }
    }
}

fn time_unit(i: &str) -> IResult<&str, TimeUnit> {
    alt((
        value(TimeUnit::Micros, tag("us")),
        value(TimeUnit::Millis, tag("ms")),
        value(TimeUnit::Seconds, tag("s")),
        value(TimeUnit::Minutes, tag("m")),
        value(TimeUnit::Hours, tag("h")),
        value(TimeUnit::Days, tag("d")),
    ))
    .parse(i)
}

/// Reads a time such as `5s`, `250` (milliseconds), `1m` or `500us`.
///
/// Trailing characters after a valid unit are reported in `ignored_suffix` rather than failing,
/// because HAProxy 2.x accepts `15min` with a warning and real configurations contain it.
pub fn parse_time(text: &str) -> Result<ParsedTime<'_>, ValueError> {
    let parsed: IResult<&str, (&str, Option<TimeUnit>)> = (digit1, opt(time_unit)).parse(text);
    let Ok((rest, (digits, unit))) = parsed else { return Err(ValueError::NotANumber) };
    let unit = match unit {
        Some(unit) => unit,
        // No unit was recognised and something follows: `5x`, `5u`, `3.5s`.
        None if !rest.is_empty() => return Err(ValueError::BadSuffix(rest.to_string())),
        None => TimeUnit::Millis,
    };
    let n: u64 = digits.parse().map_err(|_| ValueError::TimeOverflow)?;
    let micros = n.checked_mul(unit.micros()).ok_or(ValueError::TimeOverflow)?;
    // HAProxy rounds sub-millisecond times up to the next millisecond.
    if micros.div_ceil(1_000) > MAX_TIME_MS {
        return Err(ValueError::TimeOverflow);
    }
    let ignored_suffix = (!rest.is_empty()).then_some(rest);
    Ok(ParsedTime { duration: Duration::from_micros(micros), ignored_suffix })
}

/// Reads a size such as `16384`, `16k`, `1m` or `2G` (multiples of 1024).
pub fn parse_size(text: &str) -> Result<u64, ValueError> {
    let parsed: IResult<&str, &str> = digit1(text);
    let Ok((rest, digits)) = parsed else { return Err(ValueError::NotANumber) };
    let shift = match rest {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        other => return Err(ValueError::BadSuffix(other.to_string())),
    };
    let n: u64 = digits.parse().map_err(|_| ValueError::OutOfRange { min: 0, max: u64::MAX })?;
    n.checked_mul(1u64 << shift).ok_or(ValueError::OutOfRange { min: 0, max: u64::MAX })
}

/// Reads a plain unsigned integer and checks it lies in `min..=max`.
pub fn parse_uint(text: &str, min: u64, max: u64) -> Result<u64, ValueError> {
    let parsed: IResult<&str, &str> = digit1(text);
    let Ok((rest, digits)) = parsed else { return Err(ValueError::NotANumber) };
    if !rest.is_empty() {
        return Err(ValueError::BadSuffix(rest.to_string()));
    }
    match digits.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ValueError::OutOfRange { min, max }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> u128 {
        parse_time(text).unwrap().duration.as_millis()
    }

    #[test]
    fn times_with_every_unit() {
        assert_eq!(ms("250"), 250);
        assert_eq!(ms("250ms"), 250);
        assert_eq!(ms("5s"), 5_000);
        assert_eq!(ms("1m"), 60_000);
        assert_eq!(ms("2h"), 7_200_000);
        assert_eq!(ms("1d"), 86_400_000);
        assert_eq!(parse_time("500us").unwrap().duration, Duration::from_micros(500));
        assert_eq!(ms("0"), 0);
    }

    #[test]
    fn fifteen_min_is_fifteen_minutes_with_a_suffix_to_warn_about() {
        let t = parse_time("15min").unwrap();
        assert_eq!(t.duration, Duration::from_secs(900));
        assert_eq!(t.ignored_suffix, Some("in"));
    }

    #[test]
    fn bad_times() {
        assert_eq!(parse_time("s"), Err(ValueError::NotANumber));
        assert_eq!(parse_time("-5s"), Err(ValueError::NotANumber));
        assert_eq!(parse_time("3.5s"), Err(ValueError::BadSuffix(".5s".into())));
        assert_eq!(parse_time("5u"), Err(ValueError::BadSuffix("u".into())));
        assert_eq!(parse_time("5x"), Err(ValueError::BadSuffix("x".into())));
        assert_eq!(parse_time("25d"), Err(ValueError::TimeOverflow));
        assert_eq!(parse_time("99999999999999999999999"), Err(ValueError::TimeOverflow));
        assert!(parse_time("24d").is_ok());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16384"), Ok(16384));
        assert_eq!(parse_size("16k"), Ok(16384));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("1kb"), Err(ValueError::BadSuffix("kb".into())));
        assert_eq!(parse_size("k"), Err(ValueError::NotANumber));
    }

    #[test]
    fn uints() {
        assert_eq!(parse_uint("42", 1, 100), Ok(42));
        assert_eq!(parse_uint("0", 1, 100), Err(ValueError::OutOfRange { min: 1, max: 100 }));
        assert_eq!(parse_uint("4x", 1, 100), Err(ValueError::BadSuffix("x".into())));
        assert_eq!(parse_uint("", 1, 100), Err(ValueError::NotANumber));
    }
}
