//! The few facts pylon reads out of an X.509 certificate: the DNS names it is valid for (the
//! subject alternative names, else the subject's common name) and when it expires.
//!
//! rustls verifies certificates but does not list their names, and the SNI resolver needs
//! them to pick a certificate; a whole X.509 crate would be much more than these two fields.
//! This is a small DER walker over the TBSCertificate (RFC 5280 §4.1): it returns `None` on
//! anything it does not understand, and the caller reports the file as malformed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What pylon needs to know of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// The DNS names (`dNSName` entries of the subject alternative names, or the subject's
    /// common name when there are none), lower-case, possibly `*.`-wildcards.
    pub names: Vec<String>,
    /// The end of the validity period (`notAfter`).
    pub not_after: SystemTime,
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION_TAG: u8 = 0xa0;
const EXTENSIONS_TAG: u8 = 0xa3;
const DNS_NAME_TAG: u8 = 0x82;
/// 2.5.29.17, subjectAltName.
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
/// 2.5.4.3, commonName.
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

/// Reads the names and expiry of a DER certificate.
pub fn facts(der: &[u8]) -> Option<CertFacts> {
    let (cert, _) = Der::new(der).next(SEQUENCE)?;
    let (tbs, _) = Der::new(cert).next(SEQUENCE)?;
    let mut fields = Der::new(tbs);
    if fields.peek_tag() == Some(VERSION_TAG) {
        fields.any()?;
    }
    fields.any()?; // serialNumber
    fields.next(SEQUENCE)?; // signature algorithm
    fields.next(SEQUENCE)?; // issuer
    let (validity, _) = fields.next(SEQUENCE)?;
    let mut validity = Der::new(validity);
    validity.any()?; // notBefore
    let (tag, not_after) = validity.any()?;
    let not_after = parse_time(tag, not_after)?;
    let (subject, _) = fields.next(SEQUENCE)?;
    fields.next(SEQUENCE)?; // subjectPublicKeyInfo
    let mut names = Vec::new();
    while let Some((tag, value)) = fields.any() {
        if tag == EXTENSIONS_TAG {
            let (list, _) = Der::new(value).next(SEQUENCE)?;
            san_names(list, &mut names)?;
        }
    }
    if names.is_empty()
        && let Some(cn) = common_name(subject)
    {
        names.push(cn);
    }
    Some(CertFacts { names, not_after })
}

/// Adds the `dNSName` entries of the subjectAltName extension in `extensions`.
fn san_names(extensions: &[u8], names: &mut Vec<String>) -> Option<()> {
    let mut list = Der::new(extensions);
    while let Some((tag, ext)) = list.any() {
        if tag != SEQUENCE {
            return None;
        }
        let mut ext = Der::new(ext);
        let (oid, _) = ext.next(OID)?;
        if ext.peek_tag() == Some(BOOLEAN) {
            ext.any()?;
        }
        let (value, _) = ext.next(OCTET_STRING)?;
        if oid != OID_SAN {
            continue;
        }
        let (general_names, _) = Der::new(value).next(SEQUENCE)?;
        let mut general_names = Der::new(general_names);
        while let Some((tag, name)) = general_names.any() {
            if tag == DNS_NAME_TAG
                && let Ok(name) = std::str::from_utf8(name)
            {
                names.push(name.to_ascii_lowercase());
            }
        }
    }
    Some(())
}

/// The first common name of a subject `Name`, lower-case.
fn common_name(subject: &[u8]) -> Option<String> {
    let mut rdns = Der::new(subject);
    while let Some((tag, rdn)) = rdns.any() {
        if tag != SET {
            return None;
        }
        let mut attrs = Der::new(rdn);
        while let Some((_, attr)) = attrs.any() {
            let mut attr = Der::new(attr);
            let (oid, _) = attr.next(OID)?;
            let (_, value) = attr.any()?;
            if oid == OID_CN {
                return std::str::from_utf8(value).ok().map(str::to_ascii_lowercase);
            }
        }
    }
    None
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn parse_time(tag: u8, text: &[u8]) -> Option<SystemTime> {
    let digits = |s: &[u8]| -> Option<u64> {
        s.iter().try_fold(0u64, |n, &b| b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0')))
    };
    let (year, rest) = match tag {
        UTC_TIME if text.len() == 13 => {
            let yy = digits(&text[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        GENERALIZED_TIME if text.len() == 15 => (digits(&text[..4])?, &text[4..]),
        _ => return None,
    };
    if rest.last() != Some(&b'Z') {
        return None;
    }
    let (month, day) = (digits(&rest[0..2])?, digits(&rest[2..4])?);
    let (h, m, s) = (digits(&rest[4..6])?, digits(&rest[6..8])?, digits(&rest[8..10])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(UNIX_EPOCH + Duration::from_secs(days * 86_400 + h * 3600 + m * 60 + s))
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`, for years from 1970).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A cursor over consecutive DER elements.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Der { rest: bytes }
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element: its tag and contents.
    fn any(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.rest.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let len = rest[..count].iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
            rest = &rest[count..];
            len
        };
        if rest.len() < len {
            return None;
        }
        let (value, after) = rest.split_at(len);
        self.rest = after;
        Some((tag, value))
    }

    /// The next element, which must have tag `tag`; returns its contents and what follows.
    fn next(&mut self, tag: u8) -> Option<(&'a [u8], &'a [u8])> {
        match self.any()? {
            (t, value) if t == tag => Some((value, self.rest)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let t = parse_time(UTC_TIME, b"700101000000Z").unwrap();
        assert_eq!(t, UNIX_EPOCH);
        let t = parse_time(GENERALIZED_TIME, b"20260301120000Z").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_772_366_400);
        assert_eq!(
            parse_time(UTC_TIME, b"491231235959Z").unwrap().duration_since(UNIX_EPOCH).unwrap().as_secs(),
            2_524_607_999
        );
        assert!(parse_time(UTC_TIME, b"701301000000Z").is_none());
        assert!(parse_time(UTC_TIME, b"7001010000Z").is_none());
    }

    #[test]
    fn names_and_expiry_of_a_generated_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["Www.Example.Test".into(), "*.apps.example.test".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 5, 17);
        params.subject_alt_names.push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let cert = params.self_signed(&key).unwrap();
        let facts = facts(cert.der()).unwrap();
        assert_eq!(facts.names, ["www.example.test", "*.apps.example.test"]);
        let secs = facts.not_after.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_936_742_400); // date -u -d 2031-05-17 +%s
    }

    #[test]
    fn common_name_when_no_alternative_names() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "Legacy.Example.Test");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(facts(cert.der()).unwrap().names, ["legacy.example.test"]);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(facts(b"").is_none());
        assert!(facts(&[0x30, 0x82, 0xff, 0xff, 0]).is_none());
        assert!(facts(&[0x30, 0x03, 0x30, 0x01, 0x00]).is_none());
    }
}
