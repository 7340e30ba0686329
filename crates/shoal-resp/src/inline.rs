//! Owns the splitting of an inline request line into arguments, with Redis `sdssplitargs` semantics.
//!
//! The rules, as Redis applies them to inline commands:
//! * blanks (C `isspace`: space, `\t`, `\n`, `\v`, `\f`, `\r`) between arguments are skipped;
//! * an unquoted argument ends at a space, `\t`, `\n` or `\r` (not at `\v` or `\f`);
//! * a `"` anywhere in an argument opens a double-quoted section that understands
//!   `\n \r \t \b \a`, `\xHH` and `\<any>` (the character itself);
//! * a `'` opens a single-quoted section where only `\'` is an escape;
//! * a closing quote must be followed by a blank or the end of the line;
//! * a missing closing quote or a closing quote followed by anything else is an error.
//!
//! One deliberate difference: Redis works on C strings, so a NUL byte ends its view of the
//! line. Shoal is binary safe and treats NUL as an ordinary argument byte.

use bytes::Bytes;

/// One argument, either a plain slice of the line (shared, not copied) or bytes rebuilt
/// because quotes or escapes changed them.
pub(crate) enum Arg {
    Slice(usize, usize),
    Owned(Vec<u8>),
}

impl Arg {
    /// Materialises the argument against the frozen line it was parsed from.
    pub(crate) fn into_bytes(self, line: &Bytes) -> Bytes {
        match self {
            Arg::Slice(start, end) => line.slice(start..end),
            Arg::Owned(v) => Bytes::from(v),
        }
    }
}

/// C `isspace` in the "C" locale, which is what `sdssplitargs` uses to skip blanks.
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits `line` (without its line terminator) into arguments.
///
/// Returns `None` for unbalanced quotes, which the caller reports as
/// `Protocol error: unbalanced quotes in request`.
pub(crate) fn split_args(line: &[u8]) -> Option<Vec<Arg>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_blank(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let start = i;
        // Stays `None` while the argument is a verbatim slice of the line; quotes switch it
        // to an owned buffer because the quote characters themselves must be dropped.
        let mut owned: Option<Vec<u8>> = None;
        let end = loop {
            match line.get(i) {
                None | Some(b' ' | b'\n' | b'\r' | b'\t') => break i,
                Some(&q @ (b'"' | b'\'')) => {
                    let buf = owned.get_or_insert_with(|| line[start..i].to_vec());
                    i = if q == b'"' {
                        double_quoted(line, i + 1, buf)?
                    } else {
                        single_quoted(line, i + 1, buf)?
                    };
                    // A closing quote ends the argument; `sdssplitargs` demands a blank or the
                    // end of the line right after it.
                    match line.get(i) {
                        None => break i,
                        Some(&b) if is_blank(b) => break i,
                        Some(_) => return None,
                    }
                }
                Some(&b) => {
                    if let Some(buf) = owned.as_mut() {
                        buf.push(b);
                    }
                    i += 1;
                }
            }
        };
        args.push(match owned {
            Some(v) => Arg::Owned(v),
            None => Arg::Slice(start, end),
        });
    }
}

/// Consumes a double-quoted section starting after the opening quote; returns the index
/// just past the closing quote, or `None` when the line ends first.
fn double_quoted(line: &[u8], mut i: usize, out: &mut Vec<u8>) -> Option<usize> {
    loop {
        match *line.get(i)? {
            b'\\' => {
                let hex = line
                    .get(i + 1)
                    .filter(|&&x| x == b'x')
                    .and(line.get(i + 2).copied().and_then(hex_value))
                    .zip(line.get(i + 3).copied().and_then(hex_value));
                if let Some((hi, lo)) = hex {
                    out.push(hi * 16 + lo);
                    i += 4;
                } else if let Some(&c) = line.get(i + 1) {
                    out.push(match c {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                    i += 2;
                } else {
                    // A backslash as the last byte is kept literally; the quote is then
                    // unterminated, which the next iteration reports.
                    out.push(b'\\');
                    i += 1;
                }
            }
            b'"' => return Some(i + 1),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
}

/// Consumes a single-quoted section starting after the opening quote; only `\'` is an escape.
fn single_quoted(line: &[u8], mut i: usize, out: &mut Vec<u8>) -> Option<usize> {
    loop {
        match *line.get(i)? {
            b'\\' if line.get(i + 1) == Some(&b'\'') => {
                out.push(b'\'');
                i += 2;
            }
            b'\'' => return Some(i + 1),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &[u8]) -> Option<Vec<Vec<u8>>> {
        let frozen = Bytes::copy_from_slice(line);
        split_args(line).map(|args| {
            args.into_iter()
                .map(|a| a.into_bytes(&frozen).to_vec())
                .collect()
        })
    }

    fn ok(line: &[u8], expected: &[&[u8]]) {
        let got = split(line).unwrap_or_else(|| panic!("{:?} failed", line));
        let expected: Vec<Vec<u8>> = expected.iter().map(|e| e.to_vec()).collect();
        assert_eq!(got, expected, "line {:?}", String::from_utf8_lossy(line));
    }

    #[test]
    fn plain_words() {
        ok(b"set key value", &[b"set", b"key", b"value"]);
        ok(b"  \t get   k \t", &[b"get", b"k"]);
        ok(b"", &[]);
        ok(b" \x0b\x0c ", &[]);
        ok(b"a\x0bb", &[b"a\x0bb"]);
        ok(b"a\rb", &[b"a", b"b"]);
        ok(b"nul\0byte", &[b"nul\0byte"]);
    }

    #[test]
    fn double_quotes() {
        ok(br#"set "a b" "c""#, &[b"set", b"a b", b"c"]);
        ok(br#""\n\r\t\b\a\\\"\q""#, &[b"\n\r\t\x08\x07\\\"q"]);
        ok(br#""\x41\x7a\xfF""#, &[b"Az\xff"]);
        ok(br#""\x4""#, &[b"x4"]);
        ok(br#""\xZZ""#, &[b"xZZ"]);
        ok(br#"""#.as_slice().repeat(2).as_slice(), &[b""]);
        ok(br#"pre"mid dle""#, &[b"premid dle"]);
        ok(b"\"a\"\t\"b\"", &[b"a", b"b"]);
        ok(b"\"a\"\x0bb", &[b"a", b"b"]);
    }

    #[test]
    fn single_quotes() {
        ok(br"'a b' 'it\'s' '\n'", &[b"a b", b"it's", b"\\n"]);
        ok(b"''", &[b""]);
    }

    #[test]
    fn unbalanced() {
        for bad in [
            &br#""abc"#[..],
            br#"'abc"#,
            br#""abc"def"#,
            br#"'abc'def"#,
            br#""abc\"#,
            br#""\x4"#,
            br#"a "b"c"#,
        ] {
            assert!(split(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
