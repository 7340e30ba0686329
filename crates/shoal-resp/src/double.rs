//! Owns the textual form of doubles in replies: Redis 7.0's `addReplyDouble`, i.e. C `%.17g`.
//!
//! Redis 7.0 writes infinities as `inf`/`-inf` itself and everything else with
//! `snprintf("%.17g")`. That is not the shortest round-trip form (`0.1` is written as
//! `0.10000000000000001`), so it is rebuilt here from Rust's exactly rounded
//! 17-significant-digit scientific form, which rounds ties to even just like glibc:
//! * with `X` the decimal exponent, `-4 <= X < 17` uses fixed notation, otherwise
//!   scientific notation with a sign and at least two exponent digits (`1e+17`, `5e-05`);
//! * trailing zeros of the fraction, and a then-bare decimal point, are removed;
//! * NaN is `nan` (or `-nan` with the sign bit set), as glibc prints it.

use std::fmt::Write;

/// The `%.17g` repr of a double, held inline; the longest possible repr has 24 bytes.
#[derive(Clone, Copy)]
pub struct DoubleRepr {
    buf: [u8; 32],
    len: usize,
}

impl DoubleRepr {
    /// The repr as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The repr as text; it is always ASCII.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("nan")
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn push_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }
}

impl std::fmt::Debug for DoubleRepr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fixed-capacity `fmt::Write` sink so formatting needs no heap allocation.
struct StackWriter {
    buf: [u8; 40],
    len: usize,
}

impl Write for StackWriter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Formats `d` exactly as Redis 7.0 replies it: `inf`, `-inf`, else C `%.17g`.
pub fn format_double(d: f64) -> DoubleRepr {
    let mut out = DoubleRepr {
        buf: [0; 32],
        len: 0,
    };
    if d.is_nan() {
        out.push_all(if d.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        });
        return out;
    }
    if d.is_infinite() {
        out.push_all(if d > 0.0 { b"inf" } else { b"-inf" });
        return out;
    }
    // Integral values below 1e17 have at most 17 significant digits, so `%.17g` writes them as
    // plain digits; sorted set scores mostly look like this, and the digit loop is far cheaper
    // than the exact decimal conversion below.
    if d.fract() == 0.0 && d.abs() < 1e17 {
        let mut tmp = [0u8; 20];
        let digits = crate::scan::fmt_u64(d.abs() as u64, &mut tmp);
        let sign = usize::from(d.is_sign_negative());
        // The minus is overwritten by the first digit when there is no sign.
        out.buf[0] = b'-';
        if let Some(dst) = out.buf.get_mut(sign..sign + digits.len()) {
            dst.copy_from_slice(digits);
            out.len = sign + digits.len();
        }
        return out;
    }
    let mut sci = StackWriter {
        buf: [0; 40],
        len: 0,
    };
    if write!(sci, "{:.16e}", d.abs()).is_err() {
        // Cannot happen for a finite double (the form is at most 23 bytes), but a wrong
        // repr is better than a panic in a reply path.
        out.push_all(b"nan");
        return out;
    }
    let text = &sci.buf[..sci.len];
    // `text` is `D.DDDDDDDDDDDDDDDDe<exp>`: one digit, a point, sixteen digits.
    let mut digits = [b'0'; 17];
    let mut n = 0;
    let mut exp_part: &[u8] = b"0";
    for (i, &b) in text.iter().enumerate() {
        if b == b'e' {
            exp_part = &text[i + 1..];
            break;
        }
        if b.is_ascii_digit() {
            if let Some(slot) = digits.get_mut(n) {
                *slot = b;
                n += 1;
            }
        }
    }
    let exp = parse_exp(exp_part);
    // Significant digits without the zeros `%g` strips from the end.
    let sig = digits.iter().rposition(|&b| b != b'0').map_or(1, |i| i + 1);

    if d.is_sign_negative() {
        out.push(b'-');
    }
    if !(-4..17).contains(&exp) {
        out.push(digits[0]);
        if sig > 1 {
            out.push(b'.');
            out.push_all(&digits[1..sig]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let abs = exp.unsigned_abs();
        if abs >= 100 {
            out.push(b'0' + (abs / 100) as u8);
        }
        out.push(b'0' + (abs / 10 % 10) as u8);
        out.push(b'0' + (abs % 10) as u8);
    } else if exp >= 0 {
        let int_len = exp as usize + 1;
        out.push_all(&digits[..int_len]);
        if sig > int_len {
            out.push(b'.');
            out.push_all(&digits[int_len..sig]);
        }
    } else {
        out.push_all(b"0.");
        for _ in 0..(-exp - 1) {
            out.push(b'0');
        }
        out.push_all(&digits[..sig]);
    }
    out
}

/// Parses the exponent Rust's `{:e}` writes (`0`, `17`, `-5`, `-308`).
fn parse_exp(s: &[u8]) -> i32 {
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let value = digits
        .iter()
        .filter(|b| b.is_ascii_digit())
        .fold(0i32, |acc, &b| {
            acc.saturating_mul(10).saturating_add(i32::from(b - b'0'))
        });
    if negative {
        -value
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference outputs of glibc `printf("%.17g")`.
    #[test]
    fn matches_glibc_printf() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.10000000000000001"),
            (0.3, "0.29999999999999999"),
            (1e15 + 0.25, "1000000000000000.2"),
            (1e15 + 0.75, "1000000000000000.8"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e-5, "1.0000000000000001e-05"),
            (1e-4, "0.0001"),
            (0.0001234, "0.00012339999999999999"),
            (5e-324, "4.9406564584124654e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (7.1, "7.0999999999999996"),
            (1234.5678, "1234.5678"),
            (1e21, "1e+21"),
            (100.0, "100"),
            (-100.0, "-100"),
            (99999999999999984.0, "99999999999999984"),
            (9007199254740993.0, "9007199254740992"),
            (4503599627370495.5, "4503599627370495.5"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for &(d, expected) in cases {
            assert_eq!(format_double(d).as_str(), expected, "{d:e}");
        }
    }

    #[test]
    fn seventeen_digits_round_trip() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let d = f64::from_bits(x);
            if !d.is_finite() {
                continue;
            }
            let repr = format_double(d);
            let back: f64 = repr.as_str().parse().unwrap_or(f64::NAN);
            assert_eq!(back.to_bits(), d.to_bits(), "{}", repr.as_str());
            assert!(repr.as_bytes().len() <= 24);
        }
    }
}
