//! Keyspace notification classes (`notify-keyspace-events`) and the notifications a command
//! records in its journal for the server to publish.
//!
//! Recording is decided by one relaxed load of the keyspace's flags, so commands pay nothing
//! while notifications are off (the default).

/// A notification class, as Redis numbers them.
pub type Class = u32;

pub const KEYSPACE: Class = 1 << 0;
pub const KEYEVENT: Class = 1 << 1;
pub const GENERIC: Class = 1 << 2;
pub const STRING: Class = 1 << 3;
pub const LIST: Class = 1 << 4;
pub const SET: Class = 1 << 5;
pub const HASH: Class = 1 << 6;
pub const ZSET: Class = 1 << 7;
pub const EXPIRED: Class = 1 << 8;
pub const EVICTED: Class = 1 << 9;
pub const STREAM: Class = 1 << 10;
pub const KEY_MISS: Class = 1 << 11;
pub const MODULE: Class = 1 << 13;
pub const NEW: Class = 1 << 14;
/// `A`: every data class (not `m` nor `n`).
pub const ALL: Class =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// One event on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub class: Class,
    pub event: &'static str,
    pub db: usize,
    pub key: Vec<u8>,
}

/// Whether flags `flags` ask for events of `class`: the class must be on, and at least one of
/// the two channel kinds (`K`, `E`).
#[inline]
pub fn wanted(flags: Class, class: Class) -> bool {
    flags & class != 0 && flags & (KEYSPACE | KEYEVENT) != 0
}

/// Parses Redis's class letters; `None` for an unknown letter.
pub fn parse(classes: &str) -> Option<Class> {
    let mut flags = 0;
    for c in classes.chars() {
        flags |= match c {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// Renders flags the way Redis's `CONFIG GET` shows them (`n` is lost next to `A`, as there).
pub fn render(flags: Class) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_render_like_redis() {
        assert_eq!(parse("KEA").map(render).as_deref(), Some("AKE"));
        assert_eq!(parse("Elg").map(render).as_deref(), Some("glE"));
        assert_eq!(parse("An").map(render).as_deref(), Some("A"));
        assert_eq!(parse("Kxn").map(render).as_deref(), Some("xnK"));
        assert_eq!(parse(""), Some(0));
        assert_eq!(parse("Kq"), None);
        assert!(
            !wanted(parse("g").unwrap_or(0), GENERIC),
            "K or E is needed"
        );
        assert!(wanted(parse("gK").unwrap_or(0), GENERIC));
    }
}
