//! Byte classes of RFC 9110/9112, as 256-entry tables so that a byte's class is one load.

/// Builds a 256-entry table from a `const fn(u8) -> bool`.
macro_rules! table {
    ($class:ident) => {{
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = $class(i as u8);
            i += 1;
        }
        t
    }};
}

const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

const fn is_field_value(b: u8) -> bool {
    b == b' ' || b == b'\t' || (b >= 0x21 && b <= 0x7e) || b >= 0x80
}

const fn is_target(b: u8) -> bool {
    b >= 0x21 && b <= 0x7e
}

/// `tchar`: the characters of a token (method, header name): ``!#$%&'*+-.^_`|~``, digits,
/// letters.
pub static TOKEN: [bool; 256] = table!(is_tchar);

/// Bytes allowed inside a header value or a reason phrase: visible characters, obs-text
/// (0x80-0xFF), space and horizontal tab. NUL, CR, LF, the other controls and DEL are refused.
pub static FIELD_VALUE: [bool; 256] = table!(is_field_value);

/// Bytes allowed in a request target: visible ASCII characters only.
pub static TARGET: [bool; 256] = table!(is_target);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert!(TOKEN[b'G' as usize] && TOKEN[b'~' as usize] && !TOKEN[b':' as usize] && !TOKEN[b' ' as usize]);
        assert!(FIELD_VALUE[b'\t' as usize] && FIELD_VALUE[0xe9] && !FIELD_VALUE[0] && !FIELD_VALUE[b'\r' as usize]);
        assert!(!FIELD_VALUE[0x7f] && !TARGET[b' ' as usize] && !TARGET[0x80]);
    }
}
