//! Owns the byte-level helpers shared by the parser and decoder: terminator search and strict integer parsing.

/// Returns the index of the first `needle` in `haystack`.
///
/// Length lines and inline requests are searched on every read, so this looks at eight bytes
/// per step (the classic "has zero byte" bit trick) instead of one, without any `unsafe`.
pub(crate) fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO.wrapping_mul(u64::from(needle));
    let mut chunks = haystack.chunks_exact(8);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        // A zero byte in `x` marks a match; the expression below is non-zero exactly then.
        if x.wrapping_sub(LO) & !x & HI != 0 {
            return chunk.iter().position(|&b| b == needle).map(|i| offset + i);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|i| offset + i)
}

/// Redis' `LONG_STR_SIZE`: strings this long or longer are never valid integers.
const LONG_STR_SIZE: usize = 21;

/// Parses a signed 64-bit integer with the exact strictness of Redis' `string2ll`.
///
/// No sign other than a leading `-`, no leading zeros, no whitespace, no `-0`, at most 20
/// characters; request length lines are validated with it so that Shoal rejects exactly
/// what Redis rejects.
pub(crate) fn parse_ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= LONG_STR_SIZE {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut value: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    if negative {
        if value > i64::MAX as u64 + 1 {
            return None;
        }
        // `0 - value` in i128 cannot overflow and the bound above keeps it within i64.
        i64::try_from(-(value as i128)).ok()
    } else {
        i64::try_from(value).ok()
    }
}

/// Formats `value` in decimal into `buf`, returning the used tail; no allocation.
pub(crate) fn fmt_u64(mut value: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    &buf[pos..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_byte_matches_naive_search() {
        let data: Vec<u8> = (0..200u32).map(|i| (i * 7 % 13) as u8).collect();
        for start in 0..data.len() {
            for needle in 0..14u8 {
                let hay = &data[start..];
                assert_eq!(
                    find_byte(hay, needle),
                    hay.iter().position(|&b| b == needle)
                );
            }
        }
        assert_eq!(find_byte(b"", b'\r'), None);
        assert_eq!(
            find_byte(b"\x80\x80\x80\x80\x80\x80\x80\x80\r", b'\r'),
            Some(8)
        );
    }

    #[test]
    fn parse_ll_is_as_strict_as_string2ll() {
        assert_eq!(parse_ll(b"0"), Some(0));
        assert_eq!(parse_ll(b"12"), Some(12));
        assert_eq!(parse_ll(b"-12"), Some(-12));
        assert_eq!(parse_ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"18446744073709551616",
            b"000000000000000000001",
        ] {
            assert_eq!(parse_ll(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn fmt_u64_formats_extremes() {
        let mut buf = [0u8; 20];
        assert_eq!(fmt_u64(0, &mut buf), b"0");
        assert_eq!(fmt_u64(u64::MAX, &mut buf), b"18446744073709551615");
    }
}
