//! Redis glob patterns (`KEYS`, `SCAN MATCH`, `CONFIG GET`): `*`, `?`, `[...]` classes with `^`
//! negation and `a-z` ranges, and `\` escapes.
//!
//! Redis matches recursively and caps the nesting to stop hostile patterns; we use the classic
//! backtracking loop that remembers only the last `*`, which is correct because every other token
//! consumes exactly one byte, and which runs in O(pattern x string) time with no recursion.

/// One pattern token.
#[derive(Debug, PartialEq)]
enum Token {
    Star,
    Any,
    Byte(u8),
    /// A `[...]` class: inclusive byte ranges (a single byte is a range of one).
    Class {
        negate: bool,
        items: Vec<(u8, u8)>,
    },
}

/// Splits a pattern into tokens, following Redis's parser byte for byte, including its quirks:
/// `x-y` inside a class is a range even when `y` is `]` (so `[a-]` does not close there), and a
/// class left open runs to the end of the pattern.
fn tokenize(pattern: &[u8]) -> Vec<Token> {
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
                let mut items = Vec::new();
                while i < pattern.len() {
                    let c = pattern[i];
                    if c == b'\\' && i + 1 < pattern.len() {
                        items.push((pattern[i + 1], pattern[i + 1]));
                        i += 2;
                    } else if c == b']' {
                        i += 1;
                        break;
                    } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' {
                        let (lo, hi) = (c, pattern[i + 2]);
                        items.push((lo.min(hi), lo.max(hi)));
                        i += 3;
                    } else {
                        items.push((c, c));
                        i += 1;
                    }
                }
                out.push(Token::Class { negate, items });
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

fn class_matches(items: &[(u8, u8)], c: u8, nocase: bool) -> bool {
    items.iter().any(|&(lo, hi)| {
        if nocase {
            let (lo, hi) = (fold(lo, true), fold(hi, true));
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            (lo..=hi).contains(&fold(c, true))
        } else {
            (lo..=hi).contains(&c)
        }
    })
}

fn token_matches(t: &Token, c: u8, nocase: bool) -> bool {
    match t {
        Token::Star => true,
        Token::Any => true,
        Token::Byte(b) => fold(*b, nocase) == fold(c, nocase),
        Token::Class { negate, items } => class_matches(items, c, nocase) != *negate,
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
        // Redis reads `a-]` as a range, so this class never closes and "llo" joins it.
        assert!(!m("h[a-]llo", "hallo"));
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
