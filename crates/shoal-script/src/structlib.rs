//! The `struct` library as bundled with Redis (Roberto Ierusalimschy's `struct.c`):
//! `pack(fmt, ...)`, `unpack(fmt, s [, pos])` and `size(fmt)` over C-like binary layouts.
//!
//! Format: `<` `>` `=` set the byte order (`=` is the machine's, little endian here), `!n` the
//! maximum alignment (`!` alone: 8), `x` a zero byte, `b B h H l L T i I` integers (`i`/`I`
//! take an optional size, default 4), `f` `d` floats, `s` a zero-terminated string, `c[n]` a
//! fixed-size character array; spaces are ignored.

use mlua::{Lua, MultiValue, Table, Value};

use crate::cjson::lib_error;

#[derive(Clone, Copy)]
enum Item {
    Pad,
    Int { size: usize, signed: bool },
    Float,
    Double,
    Str,
    Chars(usize),
}

struct Format<'a> {
    s: &'a [u8],
    at: usize,
    little: bool,
    align: usize,
}

impl Format<'_> {
    fn new(s: &[u8]) -> Format<'_> {
        Format {
            s,
            at: 0,
            little: true,
            align: 1,
        }
    }

    fn number(&mut self) -> Option<usize> {
        let start = self.at;
        while self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        std::str::from_utf8(&self.s[start..self.at])
            .ok()?
            .parse()
            .ok()
    }

    /// The next item with its size, or `None` at the end; option characters are applied.
    fn next(&mut self, func: &str) -> Result<Option<(Item, usize)>, String> {
        loop {
            let Some(&c) = self.s.get(self.at) else {
                return Ok(None);
            };
            self.at += 1;
            let item = match c {
                b' ' => continue,
                b'<' => {
                    self.little = true;
                    continue;
                }
                b'>' => {
                    self.little = false;
                    continue;
                }
                b'=' => {
                    self.little = true;
                    continue;
                }
                b'!' => {
                    self.align = self.number().unwrap_or(8);
                    if !self.align.is_power_of_two() {
                        return Err(format!(
                            "bad argument #1 to '{func}' (alignment {} is not a power of 2)",
                            self.align
                        ));
                    }
                    continue;
                }
                b'x' => Item::Pad,
                b'b' => Item::Int {
                    size: 1,
                    signed: true,
                },
                b'B' => Item::Int {
                    size: 1,
                    signed: false,
                },
                b'h' => Item::Int {
                    size: 2,
                    signed: true,
                },
                b'H' => Item::Int {
                    size: 2,
                    signed: false,
                },
                b'l' => Item::Int {
                    size: 8,
                    signed: true,
                },
                b'L' | b'T' => Item::Int {
                    size: 8,
                    signed: false,
                },
                b'i' | b'I' => {
                    let size = self.number().unwrap_or(4);
                    if size > 8 {
                        return Err(format!(
                            "bad argument #1 to '{func}' (integral size {size} is larger than limit of 8)"
                        ));
                    }
                    Item::Int {
                        size,
                        signed: c == b'i',
                    }
                }
                b'f' => Item::Float,
                b'd' => Item::Double,
                b's' => Item::Str,
                b'c' => Item::Chars(self.number().unwrap_or(1)),
                other => {
                    return Err(format!(
                        "bad argument #1 to '{func}' (invalid format option '{}')",
                        other as char
                    ))
                }
            };
            let size = match item {
                Item::Pad => 1,
                Item::Int { size, .. } => size,
                Item::Float => 4,
                Item::Double => 8,
                Item::Str => 0,
                Item::Chars(n) => n,
            };
            return Ok(Some((item, size)));
        }
    }

    /// Padding needed before an item of `size` at offset `pos`.
    fn padding(&self, item: Item, size: usize, pos: usize) -> usize {
        let natural = match item {
            Item::Int { .. } | Item::Float | Item::Double => size,
            _ => 1,
        };
        let a = natural.min(self.align).max(1);
        (a - pos % a) % a
    }
}

fn to_number(v: Option<&Value>, n: usize, func: &str) -> Result<f64, String> {
    match v {
        Some(Value::Integer(i)) => Ok(*i as f64),
        Some(Value::Number(x)) => Ok(*x),
        Some(Value::String(s)) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| format!("bad argument #{n} to '{func}' (number expected, got string)")),
        other => Err(format!(
            "bad argument #{n} to '{func}' (number expected, got {})",
            other.map_or("no value", |v| v.type_name())
        )),
    }
}

fn pack(fmt: &[u8], args: &[Value]) -> Result<Vec<u8>, String> {
    let mut f = Format::new(fmt);
    let mut out = Vec::new();
    let mut arg = 0;
    while let Some((item, size)) = f.next("pack")? {
        let pad = f.padding(item, size, out.len());
        out.resize(out.len() + pad, 0);
        match item {
            Item::Pad => out.push(0),
            Item::Int { size, .. } => {
                let v = to_number(args.get(arg), arg + 2, "pack")? as i64 as u64;
                arg += 1;
                let bytes = v.to_le_bytes();
                if f.little {
                    out.extend_from_slice(&bytes[..size]);
                } else {
                    out.extend(bytes[..size].iter().rev());
                }
            }
            Item::Float | Item::Double => {
                let v = to_number(args.get(arg), arg + 2, "pack")?;
                arg += 1;
                let bytes: Vec<u8> = if matches!(item, Item::Float) {
                    (v as f32).to_le_bytes().to_vec()
                } else {
                    v.to_le_bytes().to_vec()
                };
                if f.little {
                    out.extend_from_slice(&bytes);
                } else {
                    out.extend(bytes.iter().rev());
                }
            }
            Item::Str | Item::Chars(_) => {
                let s = match args.get(arg) {
                    Some(Value::String(s)) => s.as_bytes().to_vec(),
                    Some(Value::Integer(i)) => i.to_string().into_bytes(),
                    Some(Value::Number(n)) => crate::convert::lua_number_text(*n).into_bytes(),
                    other => {
                        return Err(format!(
                            "bad argument #{} to 'pack' (string expected, got {})",
                            arg + 2,
                            other.map_or("no value", |v| v.type_name())
                        ))
                    }
                };
                arg += 1;
                match item {
                    Item::Str => {
                        out.extend_from_slice(&s);
                        out.push(0);
                    }
                    Item::Chars(0) => out.extend_from_slice(&s),
                    Item::Chars(n) => {
                        if s.len() < n {
                            return Err(format!(
                                "bad argument #{arg} to 'pack' (string too short)",
                                arg = arg + 1
                            ));
                        }
                        out.extend_from_slice(&s[..n]);
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

fn unpack(lua: &Lua, fmt: &[u8], data: &[u8], start: usize) -> Result<Vec<Value>, String> {
    let mut f = Format::new(fmt);
    let mut pos = start;
    let mut out = Vec::new();
    let too_short = "bad argument #2 to 'unpack' (data string too short)".to_string();
    while let Some((item, size)) = f.next("unpack")? {
        pos += f.padding(item, size, pos);
        match item {
            Item::Pad => pos += 1,
            Item::Int { size, signed } => {
                let bytes = data.get(pos..pos + size).ok_or_else(|| too_short.clone())?;
                let mut v: u64 = 0;
                for (i, &b) in bytes.iter().enumerate() {
                    let shift = if f.little { i } else { size - 1 - i };
                    v |= (b as u64) << (8 * shift);
                }
                let value = if signed && size < 8 && v & (1 << (8 * size - 1)) != 0 {
                    (v | (!0u64 << (8 * size))) as i64 as f64
                } else if signed {
                    v as i64 as f64
                } else {
                    v as f64
                };
                out.push(Value::Number(value));
                pos += size;
            }
            Item::Float | Item::Double => {
                let bytes = data.get(pos..pos + size).ok_or_else(|| too_short.clone())?;
                let mut b: Vec<u8> = bytes.to_vec();
                if !f.little {
                    b.reverse();
                }
                let value = if size == 4 {
                    f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64
                } else {
                    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                };
                out.push(Value::Number(value));
                pos += size;
            }
            Item::Str => {
                let rest = data.get(pos..).ok_or_else(|| too_short.clone())?;
                let end = rest
                    .iter()
                    .position(|&c| c == 0)
                    .ok_or_else(|| "unfinished string in data".to_string())?;
                out.push(Value::String(
                    lua.create_string(&rest[..end]).map_err(|e| e.to_string())?,
                ));
                pos += end + 1;
            }
            Item::Chars(n) => {
                let bytes = data.get(pos..pos + n).ok_or_else(|| too_short.clone())?;
                out.push(Value::String(
                    lua.create_string(bytes).map_err(|e| e.to_string())?,
                ));
                pos += n;
            }
        }
    }
    out.push(Value::Integer(pos as i64 + 1));
    Ok(out)
}

fn size(fmt: &[u8]) -> Result<usize, String> {
    let mut f = Format::new(fmt);
    let mut pos = 0;
    while let Some((item, size)) = f.next("size")? {
        if matches!(item, Item::Str) {
            return Err("bad argument #1 to 'size' (options 's' has no fixed size)".into());
        }
        pos += f.padding(item, size, pos) + size;
    }
    Ok(pos)
}

/// Installs `struct` in the globals.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let lib: Table = lua.create_table()?;
    lib.raw_set(
        "pack",
        lua.create_function(|lua, (fmt, rest): (mlua::String, MultiValue)| {
            let args: Vec<Value> = rest.into_iter().collect();
            pack(&fmt.as_bytes(), &args)
                .map(mlua::BString::from)
                .map_err(|e| lib_error(lua, e))
        })?,
    )?;
    lib.raw_set(
        "unpack",
        lua.create_function(
            |lua, (fmt, data, start): (mlua::String, mlua::String, Option<i64>)| {
                let start = start.unwrap_or(1).max(1) as usize - 1;
                unpack(lua, &fmt.as_bytes(), &data.as_bytes(), start)
                    .map(MultiValue::from_vec)
                    .map_err(|e| lib_error(lua, e))
            },
        )?,
    )?;
    lib.raw_set(
        "size",
        lua.create_function(|lua, fmt: mlua::String| {
            size(&fmt.as_bytes()).map_err(|e| lib_error(lua, e))
        })?,
    )?;
    lua.globals().raw_set("struct", lib)
}
