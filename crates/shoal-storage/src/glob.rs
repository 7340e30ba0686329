//! Redis glob patterns (`KEYS`, `SCAN MATCH`, `CONFIG GET`): `*`, `?`, `[...]` classes with `^`
//! negation and `a-z` ranges, and `\` escapes.
//!
//! Redis matches recursively and caps the nesting to stop hostile patterns; we use the classic
//! backtracking loop that remembers only the last `*`, which is correct because every other token
//! consumes exactly one byte, and which runs in O(pattern x string) time with no recursion.

/// One pattern token.
#[derive(Debug, PartialEq)]
enum Token<'p> {
    Star,
    Any,
    Byte(u8),
    Class { negate: bool, body: &'p [u8] },
}

/// Splits a pattern into tokens, following Redis's parsing of escapes and unterminated classes.
fn tokenize(pattern: &[u8]) -> Vec<Token<'_>> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'*' => {
                // Consecutive stars mean the same as one.
                if out.last() != Some(&Token::Star) {
                    out.push(Token::Star);
                }
                i += 1;
            }
            b'?' => {
                out.push(Token::Any);
                i += 1;
            }
            b'\\' if i + 1 < pattern.len() => {
                out.push(Token::Byte(pattern[i + 1]));
                i += 2;
            }
            b'[' => {
                i += 1;
                let negate = pattern.get(i) == Some(&b'^');
                if negate {
                    i += 1;
                }
                let start = i;
                // A class runs to the first unescaped `]`, or to the end of the pattern.
                while i < pattern.len() && pattern[i] != b']' {
                    if pattern[i] == b'\\' && i + 1 < pattern.len() {
                        i += 1;
                    }
                    i += 1;
                }
                out.push(Token::Class {
                    negate,
                    body: &pattern[start..i.min(pattern.len())],
                });
                i += 1;
            }
            b => {
                out.push(Token::Byte(b));
                i += 1;
            }
        }
    }
    out
}

fn fold(b: u8, nocase: bool) -> u8 {
    if nocase {
        b.to_ascii_lowercase()
    } else {
        b
    }
}

fn class_matches(body: &[u8], c: u8, nocase: bool) -> bool {
    let c = fold(c, nocase);
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' && i + 1 < body.len() {
            if fold(body[i + 1], nocase) == c {
                return true;
            }
            i += 2;
        } else if i + 2 < body.len() && body[i + 1] == b'-' {
            let (mut lo, mut hi) = (fold(body[i], nocase), fold(body[i + 2], nocase));
            if lo > hi {
                std::mem::swap(&mut lo, &mut hi);
            }
            if (lo..=hi).contains(&c) {
                return true;
            }
            i += 3;
        } else {
            if fold(body[i], nocase) == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

fn token_matches(t: &Token<'_>, c: u8, nocase: bool) -> bool {
    match t {
        Token::Star => true,
        Token::Any => true,
        Token::Byte(b) => fold(*b, nocase) == fold(c, nocase),
        Token::Class { negate, body } => class_matches(body, c, nocase) != *negate,
    }
}

/// True when `s` matches the glob `pattern`.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    // Redis's matcher never enters its loop for an empty string, so only an empty pattern matches
    // it (`KEYS *` and `SCAN MATCH *` short-cut before matching, which the callers mirror).
    if s.is_empty() {
        return pattern.is_empty();
    }
    let tokens = tokenize(pattern);
    let (mut t, mut i) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while i < s.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                backtrack = Some((t, i));
                t += 1;
            }
            Some(tok) if token_matches(tok, s[i], nocase) => {
                t += 1;
                i += 1;
            }
            _ => match backtrack {
                Some((bt, bi)) => {
                    t = bt + 1;
                    i = bi + 1;
                    backtrack = Some((bt, bi + 1));
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|tok| *tok == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn stars_and_questions() {
        assert!(!m("*", ""));
        assert!(!m("**", ""));
        assert!(m("", ""));
        assert!(m("a*", "a"));
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!m("*a*b*c*", "xxaxxcxxbxx"));
        assert!(m("a**b", "ab"));
    }

    #[test]
    fn classes_ranges_and_escapes() {
        assert!(m("h[ae]llo", "hello"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("[\\]]", "]"));
        assert!(m("a[bc", "ab"));
    }

    #[test]
    fn nocase() {
        assert!(glob_match(b"HeLLo", b"hello", true));
        assert!(!glob_match(b"HeLLo", b"hello", false));
    }

    #[test]
    fn hostile_pattern_is_fast() {
        let p = "*a".repeat(5000) + "b";
        let s = "a".repeat(5000);
        assert!(!m(&p, &s));
    }
}
