//! Owns the case-file format (documented in tests/cases/README.md): one command per line in
//! redis-cli quoting, `#` comments, `!directive` prefixes, `@file-directive` lines and
//! `=> expected` reply lines.

use std::fmt;
use std::path::{Path, PathBuf};

/// A parse error with the file and line it happened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseError {
    /// The file being parsed.
    pub file: PathBuf,
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

impl std::error::Error for CaseError {}

/// How a reply is compared with the other server's (or with the expectation).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Compare {
    /// Byte for byte: the default.
    #[default]
    Exact,
    /// An aggregate compared as a multiset of elements: for replies whose order Redis itself
    /// leaves arbitrary (KEYS).
    Sorted,
    /// Only the reply's type: for replies Redis randomises (RANDOMKEY, client ids).
    Type,
    /// An integer within `lo..=hi` on both sides: for time-dependent replies (PTTL).
    Range(i64, i64),
}

/// Per-line options written as `!name` prefixes before the command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Directives {
    /// How to compare the reply.
    pub compare: Compare,
    /// Do not run this line in the RESP2 pass.
    pub skip_resp2: bool,
    /// Do not run this line in the RESP3 pass.
    pub skip_resp3: bool,
    /// The line needs data types Shoal does not have yet (lists, hashes, ...).
    pub needs_types: bool,
    /// Send the rest of the line verbatim as an inline command instead of a RESP array.
    pub inline: bool,
}

/// One command line of a case file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// 1-based line number in the file.
    pub line: usize,
    /// The line as written, without directives (for messages, and for `!inline`).
    pub text: String,
    /// The parsed arguments.
    pub args: Vec<Vec<u8>>,
    /// The line's directives, merged with the file's.
    pub directives: Directives,
    /// Expected rendering of the reply, from `=>` lines (both protocols, or one of them).
    pub expect: Expectation,
}

/// Hand-written expected replies, as produced by [`crate::render::render`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expectation {
    /// From `=> ...`: applies to both protocols unless a protocol-specific line overrides it.
    pub both: Option<String>,
    /// From `=2> ...`.
    pub resp2: Option<String>,
    /// From `=3> ...`.
    pub resp3: Option<String>,
}

impl Expectation {
    /// The expected rendering for protocol `proto` (2 or 3), if any was written.
    pub fn for_protocol(&self, proto: u8) -> Option<&str> {
        let specific = if proto == 3 { &self.resp3 } else { &self.resp2 };
        specific.as_deref().or(self.both.as_deref())
    }

    fn is_empty(&self) -> bool {
        self.both.is_none() && self.resp2.is_none() && self.resp3.is_none()
    }
}

/// A parsed case file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFile {
    /// Where it came from.
    pub path: PathBuf,
    /// Its commands in order.
    pub cases: Vec<Case>,
    /// Directives from `@name` lines that apply to every line of the file.
    pub file_directives: Directives,
}

impl CaseFile {
    /// Reads and parses a case file.
    pub fn load(path: &Path) -> Result<CaseFile, CaseError> {
        let text = std::fs::read_to_string(path).map_err(|e| CaseError {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        parse_case_file(path, &text)
    }
}

/// Lists the `*.txt` case files directly inside `dir`, sorted by name.
pub fn case_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    Ok(files)
}

/// Parses the text of a case file.
pub fn parse_case_file(path: &Path, text: &str) -> Result<CaseFile, CaseError> {
    let err = |line: usize, message: String| CaseError {
        file: path.to_path_buf(),
        line,
        message,
    };
    let mut file_directives = Directives::default();
    let mut cases: Vec<Case> = Vec::new();
    let mut seen_command = false;
    for (index, raw_line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('@') {
            // File directives come first so that a reader sees them before any command.
            if seen_command {
                return Err(err(line_no, "@directives must precede all commands".into()));
            }
            for name in rest.split_whitespace() {
                apply_directive(&mut file_directives, name, &mut std::iter::empty())
                    .map_err(|m| err(line_no, m))?;
            }
            continue;
        }
        if let Some((proto, expected)) = parse_expectation(line) {
            let Some(case) = cases.last_mut() else {
                return Err(err(line_no, "expected reply before any command".into()));
            };
            let slot = match proto {
                None => &mut case.expect.both,
                Some(2) => &mut case.expect.resp2,
                Some(_) => &mut case.expect.resp3,
            };
            if slot.is_some() {
                return Err(err(line_no, "second expected reply for one command".into()));
            }
            *slot = Some(expected.to_string());
            continue;
        }
        seen_command = true;
        let mut directives = file_directives.clone();
        let mut rest = line;
        // Directives are the leading words that start with `!`; `!range` takes two numbers.
        loop {
            let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let word = &rest[..word_end];
            if !word.starts_with('!') {
                break;
            }
            rest = rest[word_end..].trim_start();
            let mut operands = OperandReader { rest: &mut rest };
            apply_directive(&mut directives, &word[1..], &mut operands)
                .map_err(|m| err(line_no, m))?;
        }
        if rest.is_empty() {
            return Err(err(line_no, "directive without a command".into()));
        }
        let args = split_args(rest).map_err(|m| err(line_no, m))?;
        if args.is_empty() {
            return Err(err(line_no, "empty command".into()));
        }
        cases.push(Case {
            line: line_no,
            text: rest.to_string(),
            args,
            directives,
            expect: Expectation::default(),
        });
    }
    Ok(CaseFile {
        path: path.to_path_buf(),
        cases,
        file_directives,
    })
}

/// Reads whitespace-separated operands of a directive off the front of the line.
struct OperandReader<'a, 'b> {
    rest: &'a mut &'b str,
}

impl Iterator for OperandReader<'_, '_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let text: &str = self.rest;
        let end = text.find(char::is_whitespace).unwrap_or(text.len());
        if end == 0 {
            return None;
        }
        let word = text[..end].to_string();
        *self.rest = text[end..].trim_start();
        Some(word)
    }
}

fn apply_directive(
    d: &mut Directives,
    name: &str,
    operands: &mut dyn Iterator<Item = String>,
) -> Result<(), String> {
    match name {
        "sort" => d.compare = Compare::Sorted,
        "type" => d.compare = Compare::Type,
        "range" => {
            let mut number = || -> Result<i64, String> {
                let word = operands
                    .next()
                    .ok_or_else(|| "!range needs two integers".to_string())?;
                word.parse()
                    .map_err(|_| format!("!range operand {word:?} is not an integer"))
            };
            let lo = number()?;
            let hi = number()?;
            if lo > hi {
                return Err(format!("!range {lo} {hi} is empty"));
            }
            d.compare = Compare::Range(lo, hi);
        }
        "skip-resp2" => d.skip_resp2 = true,
        "skip-resp3" => d.skip_resp3 = true,
        "needs-types" => d.needs_types = true,
        "inline" => d.inline = true,
        other => return Err(format!("unknown directive {other:?}")),
    }
    Ok(())
}

/// Recognises `=> text`, `=2> text` and `=3> text`.
fn parse_expectation(line: &str) -> Option<(Option<u8>, &str)> {
    let (proto, rest) = if let Some(rest) = line.strip_prefix("=>") {
        (None, rest)
    } else if let Some(rest) = line.strip_prefix("=2>") {
        (Some(2), rest)
    } else if let Some(rest) = line.strip_prefix("=3>") {
        (Some(3), rest)
    } else {
        return None;
    };
    Some((proto, rest.trim()))
}

/// Splits a line into arguments with redis-cli's rules: whitespace separates; `"..."` allows
/// `\n \r \t \b \a \\ \"` and `\xHH` escapes; `'...'` allows only `\'`; `""` and `''` are an
/// empty argument; a closing quote must be followed by whitespace or the end of the line.
pub fn split_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let bytes = line.as_bytes();
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            return Ok(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            if in_double {
                let Some(&c) = bytes.get(i) else {
                    return Err("unbalanced double quotes".into());
                };
                if c == b'\\' && bytes.get(i + 1) == Some(&b'x') {
                    let hex = bytes.get(i + 2..i + 4).and_then(|h| {
                        std::str::from_utf8(h)
                            .ok()
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                    });
                    if let Some(byte) = hex {
                        current.push(byte);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < bytes.len() {
                    current.push(match bytes[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                    i += 2;
                } else if c == b'"' {
                    if bytes.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                        return Err("closing quote must be followed by a space".into());
                    }
                    i += 1;
                    break;
                } else {
                    current.push(c);
                    i += 1;
                }
            } else if in_single {
                let Some(&c) = bytes.get(i) else {
                    return Err("unbalanced single quotes".into());
                };
                if c == b'\\' && bytes.get(i + 1) == Some(&b'\'') {
                    current.push(b'\'');
                    i += 2;
                } else if c == b'\'' {
                    if bytes.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                        return Err("closing quote must be followed by a space".into());
                    }
                    i += 1;
                    break;
                } else {
                    current.push(c);
                    i += 1;
                }
            } else {
                match bytes.get(i) {
                    None => break,
                    Some(c) if c.is_ascii_whitespace() => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(&c) => current.push(c),
                }
                i += 1;
            }
        }
        args.push(current);
    }
}

impl Case {
    /// The arguments as slices, for [`crate::RawClient::command`].
    pub fn arg_slices(&self) -> Vec<&[u8]> {
        self.args.iter().map(Vec::as_slice).collect()
    }

    /// True when the case has at least one hand-written expected reply.
    pub fn has_expectation(&self) -> bool {
        !self.expect.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[u8]) -> Vec<u8> {
        v.to_vec()
    }

    #[test]
    fn splits_like_redis_cli() {
        assert_eq!(
            split_args(r#"SET "a b" '' "\x00\xffz\n" 'it\'s'"#).expect("parses"),
            vec![s(b"SET"), s(b"a b"), s(b""), s(b"\x00\xffz\n"), s(b"it's")]
        );
        assert_eq!(
            split_args("  KEYS  h[ae]llo  ").expect("parses"),
            vec![s(b"KEYS"), s(b"h[ae]llo")]
        );
        assert!(split_args(r#"GET "a"b"#).is_err());
        assert!(split_args(r#"GET "a"#).is_err());
    }

    #[test]
    fn parses_directives_and_expectations() {
        let text = "@needs-types\n# c\nSET k v\n=> OK\n!sort !range 1 2 KEYS *\n=2> [\"k\"]\n";
        let file = parse_case_file(Path::new("x.txt"), text).expect("parses");
        assert!(file.file_directives.needs_types);
        assert_eq!(file.cases.len(), 2);
        assert_eq!(file.cases[0].expect.for_protocol(3), Some("OK"));
        assert_eq!(file.cases[1].directives.compare, Compare::Range(1, 2));
        assert!(file.cases[1].directives.needs_types);
        assert_eq!(file.cases[1].expect.for_protocol(2), Some("[\"k\"]"));
        assert_eq!(file.cases[1].expect.for_protocol(3), None);
        assert_eq!(file.cases[1].line, 5);
        assert!(parse_case_file(Path::new("x"), "!bogus GET a").is_err());
        assert!(parse_case_file(Path::new("x"), "GET a\n@sort").is_err());
    }
}
