//! Owns the human-readable rendering of reply frames, in redis-cli's style: a compact one-line
//! form for transcripts and diff messages, and redis-cli's multi-line form.

use shoal_resp::Frame;

/// Quotes bytes the way redis-cli prints a bulk string: in double quotes, with `\n`, `\r`,
/// `\t`, `\a`, `\b`, `\\` and `\"` escaped and other non-printable bytes as `\xHH`.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

/// Bytes that should be text (status lines, errors): shown as text, with anything that is not
/// printable escaped so a transcript line stays on one line.
fn text(bytes: &[u8]) -> String {
    let quoted = quote(bytes);
    quoted[1..quoted.len() - 1].to_string()
}

/// Formats a double the way redis-cli does for RESP3 doubles (`%.17g`-like shortest form is
/// what Rust's `{}` gives; infinities and NaN spelled as Redis spells them).
fn double(value: f64) -> String {
    if value.is_nan() {
        "nan".to_string()
    } else if value.is_infinite() {
        if value > 0.0 {
            "inf".to_string()
        } else {
            "-inf".to_string()
        }
    } else {
        format!("{value}")
    }
}

/// One-line rendering used in transcripts and diffs.
///
/// Scalars look like redis-cli (`OK`, `"v"`, `(integer) 1`, `(nil)`, `(error) ERR ...`);
/// aggregates are bracketed: arrays `[a, b]`, maps `{k => v}`, sets `~[a, b]`, pushes
/// `>[a, b]`. The null array is `(nil array)` so that it is distinguishable from a null bulk.
pub fn render(frame: &Frame) -> String {
    let mut out = String::new();
    render_into(frame, &mut out);
    out
}

fn render_into(frame: &Frame, out: &mut String) {
    match frame {
        Frame::Simple(s) => out.push_str(&text(s)),
        Frame::Error(e) => {
            out.push_str("(error) ");
            out.push_str(&text(e));
        }
        Frame::Integer(n) => out.push_str(&format!("(integer) {n}")),
        Frame::Bulk(b) => out.push_str(&quote(b)),
        Frame::Null => out.push_str("(nil)"),
        Frame::NullArray => out.push_str("(nil array)"),
        Frame::Array(items) => list(out, "[", items),
        Frame::Set(items) => list(out, "~[", items),
        Frame::Push(items) => list(out, ">[", items),
        Frame::Map(pairs) => {
            out.push('{');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_into(k, out);
                out.push_str(" => ");
                render_into(v, out);
            }
            out.push('}');
        }
        Frame::Double(d) => out.push_str(&format!("(double) {}", double(*d))),
        Frame::DoubleText(t) => out.push_str(&format!("(double) {}", text(t))),
        Frame::Boolean(b) => out.push_str(if *b { "(true)" } else { "(false)" }),
        Frame::BigNumber(n) => out.push_str(&format!("(big number) {}", text(n))),
        Frame::Verbatim { format, text: body } => {
            out.push_str(&format!("(verbatim {}) ", text(format)));
            out.push_str(&quote(body));
        }
    }
}

fn list(out: &mut String, open: &str, items: &[Frame]) {
    out.push_str(open);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        render_into(item, out);
    }
    out.push(']');
}

/// Multi-line rendering in redis-cli's layout: `1) "a"` per element, nested aggregates
/// indented under their index, `(empty array)` for an empty one.
pub fn render_pretty(frame: &Frame) -> String {
    let mut out = String::new();
    pretty_into(frame, 0, &mut out);
    if out.ends_with('\n') {
        out.pop();
    }
    out
}

fn pretty_into(frame: &Frame, indent: usize, out: &mut String) {
    let items: Vec<&Frame> = match frame {
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => items.iter().collect(),
        Frame::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
        scalar => {
            out.push_str(&render(scalar));
            out.push('\n');
            return;
        }
    };
    if items.is_empty() {
        out.push_str(match frame {
            Frame::Map(_) => "(empty hash)\n",
            Frame::Set(_) => "(empty set)\n",
            _ => "(empty array)\n",
        });
        return;
    }
    let width = items.len().to_string().len();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(indent));
        }
        let label = format!("{:>width$}) ", i + 1);
        out.push_str(&label);
        pretty_into(item, indent + label.len(), out);
    }
}

/// The name of a frame's type, for `!type` comparisons and messages.
pub fn type_name(frame: &Frame) -> &'static str {
    match frame {
        Frame::Simple(_) => "simple",
        Frame::Error(_) => "error",
        Frame::Integer(_) => "integer",
        Frame::Bulk(_) => "bulk",
        Frame::Null => "null",
        Frame::NullArray => "null-array",
        Frame::Array(_) => "array",
        Frame::Map(_) => "map",
        Frame::Set(_) => "set",
        Frame::Double(_) | Frame::DoubleText(_) => "double",
        Frame::Boolean(_) => "boolean",
        Frame::BigNumber(_) => "big-number",
        Frame::Verbatim { .. } => "verbatim",
        Frame::Push(_) => "push",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn scalars_render_like_redis_cli() {
        assert_eq!(render(&Frame::Simple(Bytes::from_static(b"OK"))), "OK");
        assert_eq!(render(&bulk("v")), "\"v\"");
        assert_eq!(render(&Frame::Integer(-3)), "(integer) -3");
        assert_eq!(render(&Frame::Null), "(nil)");
        assert_eq!(
            render(&Frame::Error(Bytes::from_static(b"ERR syntax error"))),
            "(error) ERR syntax error"
        );
        assert_eq!(
            render(&Frame::Bulk(Bytes::from_static(b"a\x00\n\"\xff"))),
            "\"a\\x00\\n\\\"\\xff\""
        );
    }

    #[test]
    fn aggregates_render_on_one_line_and_pretty() {
        let frame = Frame::Array(vec![
            bulk("a"),
            Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)]),
            Frame::Array(vec![]),
        ]);
        assert_eq!(render(&frame), "[\"a\", [(integer) 1, (integer) 2], []]");
        assert_eq!(
            render_pretty(&frame),
            "1) \"a\"\n2) 1) (integer) 1\n   2) (integer) 2\n3) (empty array)"
        );
        let map = Frame::Map(vec![(bulk("k"), Frame::Double(1.5))]);
        assert_eq!(render(&map), "{\"k\" => (double) 1.5}");
    }
}
