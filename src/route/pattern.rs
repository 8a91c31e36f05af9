//! ACL patterns: the values a fetched sample is compared with, parsed once at load time.
//!
//! Addresses match by network (`10.0.0.0/8`, `192.168.1.0/255.255.255.0`, a single address,
//! IPv4 patterns also matching IPv4-mapped IPv6 samples); integers match by value, inclusive
//! range (`1024:65535`, `1024:`, `:1023`) or operator (`lt 1024`), as in HAProxy §7.1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nom::character::complete::{char, digit1};
use nom::combinator::{all_consuming, opt, recognize};
use nom::{IResult, Parser};

/// An address with a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// The network's address, host bits cleared.
    pub addr: IpAddr,
    /// Prefix length: 0-32 for IPv4, 0-128 for IPv6 (a lone address is 32 or 128).
    pub prefix_len: u8,
}

impl IpNet {
    /// Parses `ADDR`, `ADDR/LEN` or (IPv4) `ADDR/MASK`. Host bits are cleared.
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let (addr_text, len_text) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| format!("'{addr_text}' is not an IPv4 or IPv6 address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = match len_text {
            None => max,
            Some(l) => match (l.parse::<u8>(), l.parse::<Ipv4Addr>()) {
                (Ok(n), _) if n <= max => n,
                (_, Ok(mask)) if addr.is_ipv4() => {
                    let bits = u32::from(mask);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        return Err(format!("'{l}' is not a contiguous netmask"));
                    }
                    bits.leading_ones() as u8
                }
                _ => return Err(format!("'{l}' is not a prefix length from 0 to {max}")),
            },
        };
        Ok(IpNet { addr: mask(addr, prefix_len), prefix_len })
    }

    /// True when `ip` lies in this network. IPv4 networks also match IPv4-mapped IPv6
    /// addresses, since that is how an IPv4 client appears on a dual-stack socket.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            _ => ip,
        };
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        mask(ip, self.prefix_len) == self.addr
    }
}

fn mask(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix_len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix_len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// An inclusive integer range; `None` ends are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntRange {
    /// The lowest value matched; `None`: no lower bound (`:1023`, `le`, `lt`).
    pub min: Option<i64>,
    /// The highest value matched; `None`: no upper bound (`1024:`, `ge`, `gt`).
    pub max: Option<i64>,
}

/// HAProxy's integer operators, written before the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOp {
    /// `eq`: equal to the value (the default, and the only operator ranges allow).
    Eq,
    /// `ge`: greater than or equal to the value.
    Ge,
    /// `gt`: greater than the value.
    Gt,
    /// `le`: less than or equal to the value.
    Le,
    /// `lt`: less than the value.
    Lt,
}

impl IntOp {
    /// The operator named by `word`, if it is one.
    pub fn parse(word: &str) -> Option<IntOp> {
        Some(match word {
            "eq" => IntOp::Eq,
            "ge" => IntOp::Ge,
            "gt" => IntOp::Gt,
            "le" => IntOp::Le,
            "lt" => IntOp::Lt,
            _ => return None,
        })
    }
}

fn signed(i: &str) -> IResult<&str, i64> {
    let (rest, text) = recognize((opt(char('-')), digit1)).parse(i)?;
    match text.parse() {
        Ok(n) => Ok((rest, n)),
        Err(_) => Err(nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::TooLarge))),
    }
}

/// `min`, the colon of a range, `max`, as written.
type RangeParts = (Option<i64>, Option<char>, Option<i64>);

impl IntRange {
    /// Parses `N`, `N:M`, `N:` or `:M` under operator `op` (`eq` unless one was given).
    pub fn parse(text: &str, op: IntOp) -> Result<IntRange, String> {
        let bad = || format!("'{text}' is not an integer or a range such as 1024:65535");
        let range: IResult<&str, RangeParts> = all_consuming((opt(signed), opt(char(':')), opt(signed))).parse(text);
        let (min, colon, max) = range.map_err(|_| bad())?.1;
        let value = match (min, colon, max) {
            (Some(n), None, None) => n,
            (min, Some(_), max) if (min.is_some() || max.is_some()) && op == IntOp::Eq => {
                return Ok(IntRange { min, max });
            }
            _ => return Err(bad()),
        };
        Ok(match op {
            IntOp::Eq => IntRange { min: Some(value), max: Some(value) },
            IntOp::Ge => IntRange { min: Some(value), max: None },
            IntOp::Gt => IntRange {
                min: Some(value.checked_add(1).ok_or_else(|| format!("no integer is greater than {value}"))?),
                max: None,
            },
            IntOp::Le => IntRange { min: None, max: Some(value) },
            IntOp::Lt => IntRange {
                min: None,
                max: Some(value.checked_sub(1).ok_or_else(|| format!("no integer is less than {value}"))?),
            },
        })
    }

    /// True when `n` lies in the range.
    pub fn contains(&self, n: i64) -> bool {
        self.min.is_none_or(|m| n >= m) && self.max.is_none_or(|m| n <= m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let net = IpNet::parse("10.1.2.3/8").unwrap();
        assert_eq!(net, IpNet { addr: "10.0.0.0".parse().unwrap(), prefix_len: 8 });
        assert!(net.contains("10.200.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.9.9.9".parse().unwrap()));
        let masked = IpNet::parse("192.168.1.0/255.255.255.0").unwrap();
        assert_eq!(masked.prefix_len, 24);
        assert!(IpNet::parse("192.168.1.0/255.0.255.0").is_err());
        let v6 = IpNet::parse("::1").unwrap();
        assert!(v6.contains("::1".parse().unwrap()));
        assert!(!v6.contains("127.0.0.1".parse().unwrap()));
        assert!(IpNet::parse("fd00::/8").unwrap().contains("fd12::1".parse().unwrap()));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("example.com").is_err());
    }

    #[test]
    fn integer_ranges() {
        let r = |t: &str| IntRange::parse(t, IntOp::Eq).unwrap();
        assert!(r("80").contains(80) && !r("80").contains(81));
        assert!(r("1024:65535").contains(1024) && r("1024:65535").contains(65535) && !r("1024:65535").contains(80));
        assert!(r("1024:").contains(70000) && !r(":1023").contains(1024));
        assert!(IntRange::parse("1024", IntOp::Lt).unwrap().contains(1023));
        assert!(!IntRange::parse("1024", IntOp::Lt).unwrap().contains(1024));
        assert!(IntRange::parse("0", IntOp::Gt).unwrap().contains(1));
        assert!(IntRange::parse("-1", IntOp::Ge).unwrap().contains(0));
        assert!(IntRange::parse(":", IntOp::Eq).is_err());
        assert!(IntRange::parse("8a", IntOp::Eq).is_err());
        assert!(IntRange::parse("1:2", IntOp::Lt).is_err());
    }
}
