//! Log sampling (`log <target> sample <ranges>:<size> …`): a target receives only some of
//! the lines it would otherwise get, to spread the load of the lines over several syslog
//! servers or to keep a fraction of a busy frontend's traffic.
//!
//! HAProxy's semantics: the lines a target would send (those its level filter lets through)
//! are numbered from 1 to `size`, again and again; the target sends those whose number is in
//! one of the `ranges`. `sample 1:4` keeps one line in four, the first of each four;
//! `sample 2-3,7:8` keeps the 2nd, 3rd and 7th of each eight. Ranges are written
//! `low[-high]`, numbered from 1, may not overlap, and `size` is at least the highest limit.
//!
//! The counting is done by the log writer thread, once per line and target, with one
//! uncontended atomic: nothing on the request path. Each proxy's targets count on their own
//! (a `log global` line copied into two frontends keeps two counts), as HAProxy's copies of a
//! logger do.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The most ranges one `sample` option may list (each line checks them all).
pub const MAX_RANGES: usize = 64;
/// The largest sample size.
pub const MAX_SIZE: u32 = 1_000_000;

/// A `sample <ranges>:<size>` option as written: which lines of each `size` are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSample {
    /// Inclusive `(low, high)` line numbers, from 1, sorted and not overlapping.
    ranges: Box<[(u32, u32)]>,
    /// How many lines make one period.
    size: u32,
}

/// Why a `sample` option is refused; `at` is the byte offset in the option's value where
/// the problem is, for the diagnostic's caret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleError {
    /// Where in the value (`1-2,5:10`) the problem starts.
    pub at: usize,
    /// How many bytes it spans (at least 1).
    pub len: usize,
    /// What is wrong.
    pub message: String,
}

impl LogSample {
    /// Reads `<ranges>:<size>` (`1:4`, `2-3,7:8`).
    pub fn parse(text: &str) -> Result<LogSample, SampleError> {
        let err = |at: usize, len: usize, message: String| SampleError { at, len: len.max(1), message };
        let Some(colon) = text.rfind(':') else {
            return Err(err(
                0,
                text.len(),
                format!("'{text}' lacks the sample size: write <ranges>:<size>, such as 1:4 or 1-2,5:10"),
            ));
        };
        let (list, size_text) = (&text[..colon], &text[colon + 1..]);
        let number = |s: &str, at: usize, what: &str| -> Result<u32, SampleError> {
            match s.parse::<u32>() {
                Ok(n) if (1..=MAX_SIZE).contains(&n) => Ok(n),
                _ => Err(err(at, s.len(), format!("invalid {what} '{s}': expected a number from 1 to {MAX_SIZE}"))),
            }
        };
        let size = number(size_text, colon + 1, "sample size")?;
        if list.is_empty() {
            return Err(err(0, 1, "missing sample ranges before ':'".to_string()));
        }
        let mut ranges: Vec<(u32, u32, usize)> = Vec::new();
        let mut at = 0;
        for item in list.split(',') {
            if ranges.len() == MAX_RANGES {
                return Err(err(at, item.len(), format!("more than {MAX_RANGES} sample ranges")));
            }
            let (low, high) = match item.split_once('-') {
                Some((l, h)) => (number(l, at, "range limit")?, number(h, at + l.len() + 1, "range limit")?),
                None => {
                    let n = number(item, at, "range limit")?;
                    (n, n)
                }
            };
            if low > high {
                return Err(err(
                    at,
                    item.len(),
                    format!("invalid range '{item}': its low limit is above its high one"),
                ));
            }
            ranges.push((low, high, at));
            at += item.len() + 1;
        }
        ranges.sort_unstable();
        for pair in ranges.windows(2) {
            let ((_, high, _), (low, _, where_)) = (pair[0], pair[1]);
            if low <= high {
                return Err(err(where_, 1, format!("sample ranges overlap: line {low} is in two of them")));
            }
        }
        let highest = ranges.last().map_or(0, |r| r.1);
        if size < highest {
            return Err(err(
                colon + 1,
                size_text.len(),
                format!("sample size {size} is below the highest range limit {highest}"),
            ));
        }
        Ok(LogSample { ranges: ranges.into_iter().map(|(l, h, _)| (l, h)).collect(), size })
    }

    /// True when line number `n` (from 1 to the size) is kept.
    fn keeps(&self, n: u32) -> bool {
        self.ranges.iter().any(|&(low, high)| (low..=high).contains(&n))
    }
}

/// A target's sampling while it runs: the option and how many lines it has seen.
#[derive(Debug, Clone)]
pub struct Sampler {
    sample: LogSample,
    /// Lines counted so far. Shared by the clones of one target (they are the same target).
    seen: Arc<AtomicU64>,
}

impl Sampler {
    /// A sampler that has seen no line yet.
    pub fn new(sample: LogSample) -> Sampler {
        Sampler { sample, seen: Arc::new(AtomicU64::new(0)) }
    }

    /// Counts one more line for the target and says whether the target sends it.
    pub fn take(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) % u64::from(self.sample.size);
        // `n` is below the size, a `u32`.
        self.sample.keeps(n as u32 + 1)
    }
}

/// Two samplers are the same setting whatever they have counted.
impl PartialEq for Sampler {
    fn eq(&self, other: &Sampler) -> bool {
        self.sample == other.sample
    }
}

impl Eq for Sampler {}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(text: &str, lines: usize) -> Vec<usize> {
        let s = Sampler::new(LogSample::parse(text).unwrap_or_else(|e| panic!("{text}: {}", e.message)));
        (1..=lines).filter(|_| s.take()).collect()
    }

    #[test]
    fn one_line_of_each_size_in_the_ranges() {
        assert_eq!(kept("1:4", 12), [1, 5, 9]);
        assert_eq!(kept("4:4", 12), [4, 8, 12]);
        assert_eq!(kept("2-3,7:8", 16), [2, 3, 7, 10, 11, 15]);
        // Ranges written in any order; a size beyond the ranges skips the rest of the period.
        assert_eq!(kept("3,1:5", 10), [1, 3, 6, 8]);
        assert_eq!(kept("1-3:3", 5), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn four_targets_share_the_lines() {
        let all: Vec<Vec<usize>> = ["1:4", "2:4", "3:4", "4:4"].iter().map(|s| kept(s, 8)).collect();
        let mut union: Vec<usize> = all.concat();
        union.sort_unstable();
        assert_eq!(union, (1..=8).collect::<Vec<_>>());
    }

    #[test]
    fn bad_options() {
        let e = |t: &str| LogSample::parse(t).unwrap_err();
        assert!(e("1-2").message.contains("lacks the sample size"));
        assert_eq!((e("1:x").at, e("1:x").message.contains("sample size 'x'")), (2, true));
        assert!(e(":4").message.contains("missing sample ranges"));
        assert_eq!(e("0:4").at, 0);
        assert_eq!(e("1,3-2:4").at, 2);
        assert!(e("1,3-2:4").message.contains("low limit"));
        let overlap = e("1-3,2:4");
        assert!(overlap.message.contains("overlap"), "{}", overlap.message);
        assert_eq!(overlap.at, 4);
        let small = e("1-5:4");
        assert!(small.message.contains("below the highest range limit 5"), "{}", small.message);
        assert_eq!(small.at, 4);
        assert!(e("1-2,a:4").message.contains("range limit 'a'"));
        let many = (1..=65).map(|n| n.to_string()).collect::<Vec<_>>().join(",") + ":100";
        assert!(e(&many).message.contains("more than 64"));
        assert!(e("1:0").message.contains("sample size '0'"));
    }

    #[test]
    fn clones_count_together_and_compare_by_setting() {
        let s = Sampler::new(LogSample::parse("1:2").unwrap());
        let t = s.clone();
        assert!(s.take());
        assert!(!t.take());
        assert_eq!(s, Sampler::new(LogSample::parse("1:2").unwrap()));
    }
}
