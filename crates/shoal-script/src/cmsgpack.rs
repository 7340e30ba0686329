//! The `cmsgpack` library as bundled with Redis (lua-cmsgpack): `pack(...)` encodes each
//! argument in MessagePack and concatenates them, `unpack(s)` returns every value encoded in
//! `s`. Numbers that are integers use the smallest integer encoding, others a 32-bit float
//! when that loses nothing, else a double; tables without holes from index 1 are arrays, other
//! tables maps; nesting deeper than 16 levels is encoded as nil, as lua-cmsgpack does.

use mlua::{Lua, MultiValue, Table, Value};

const MAX_NESTING: usize = 16;

/// Installs `cmsgpack` in the globals.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let lib: Table = lua.create_table()?;
    lib.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(crate::cjson::lib_error(
                    lua,
                    "MessagePack pack needs input.",
                ));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                encode(v, 0, &mut out);
            }
            Ok(mlua::BString::from(out))
        })?,
    )?;
    lib.raw_set(
        "unpack",
        lua.create_function(|lua, s: mlua::String| {
            let bytes = s.as_bytes();
            let mut d = Decoder { s: &bytes, at: 0 };
            let mut values = Vec::new();
            while d.at < d.s.len() {
                values.push(d.value(lua).map_err(|e| crate::cjson::lib_error(lua, e))?);
            }
            Ok(MultiValue::from_vec(values))
        })?,
    )?;
    lua.globals().raw_set("cmsgpack", lib)
}

fn encode(v: &Value, depth: usize, out: &mut Vec<u8>) {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => int(*i, out),
        Value::Number(n) => number(*n, out),
        Value::String(s) => string(&s.as_bytes(), out),
        Value::Table(t) if depth < MAX_NESTING => table(t, depth, out),
        _ => out.push(0xc0),
    }
}

fn number(n: f64, out: &mut Vec<u8>) {
    if n.is_finite() && n == n.trunc() && n.abs() < 9.2e18 {
        int(n as i64, out);
    } else if (n as f32) as f64 == n || n.is_nan() {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        let u = i as u64;
        if u <= 0x7f {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= -128 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= i32::MIN as i64 {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn header(out: &mut Vec<u8>, n: usize, fix: u8, b16: u8, b32: u8) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn table(t: &Table, depth: usize, out: &mut Vec<u8>) {
    let pairs: Vec<(Value, Value)> = t.pairs::<Value, Value>().filter_map(|p| p.ok()).collect();
    // An array: keys exactly 1..n.
    let mut max = 0usize;
    let is_array = pairs.iter().all(|(k, _)| match k {
        Value::Integer(i) if *i >= 1 => {
            max = max.max(*i as usize);
            true
        }
        Value::Number(n) if *n >= 1.0 && *n == n.trunc() => {
            max = max.max(*n as usize);
            true
        }
        _ => false,
    }) && max == pairs.len();
    if is_array {
        header(out, max, 0x90, 0xdc, 0xdd);
        for i in 1..=max {
            let v: Value = t.raw_get(i).unwrap_or(Value::Nil);
            encode(&v, depth + 1, out);
        }
    } else {
        header(out, pairs.len(), 0x80, 0xde, 0xdf);
        for (k, v) in &pairs {
            encode(k, depth + 1, out);
            encode(v, depth + 1, out);
        }
    }
}

struct Decoder<'a> {
    s: &'a [u8],
    at: usize,
}

const MISSING: &str = "Missing bytes in input.";
const BAD: &str = "Bad data format in input.";

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], &'static str> {
        let end = self.at.checked_add(n).ok_or(MISSING)?;
        let out = self.s.get(self.at..end).ok_or(MISSING)?;
        self.at = end;
        Ok(out)
    }

    fn uint(&mut self, n: usize) -> Result<u64, &'static str> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    fn value(&mut self, lua: &Lua) -> Result<Value, &'static str> {
        let b = self.take(1)?[0];
        Ok(match b {
            0x00..=0x7f => Value::Integer(b as i64),
            0xe0..=0xff => Value::Integer(b as i8 as i64),
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xcc => Value::Integer(self.uint(1)? as i64),
            0xcd => Value::Integer(self.uint(2)? as i64),
            0xce => Value::Integer(self.uint(4)? as i64),
            0xcf => Value::Number(self.uint(8)? as f64),
            0xd0 => Value::Integer(self.uint(1)? as u8 as i8 as i64),
            0xd1 => Value::Integer(self.uint(2)? as u16 as i16 as i64),
            0xd2 => Value::Integer(self.uint(4)? as u32 as i32 as i64),
            0xd3 => Value::Integer(self.uint(8)? as i64),
            0xca => Value::Number(f32::from_bits(self.uint(4)? as u32) as f64),
            0xcb => Value::Number(f64::from_bits(self.uint(8)?)),
            0xa0..=0xbf => self.str(lua, (b & 0x1f) as usize)?,
            0xd9 | 0xc4 => {
                let n = self.uint(1)? as usize;
                self.str(lua, n)?
            }
            0xda | 0xc5 => {
                let n = self.uint(2)? as usize;
                self.str(lua, n)?
            }
            0xdb | 0xc6 => {
                let n = self.uint(4)? as usize;
                self.str(lua, n)?
            }
            0x90..=0x9f => self.array(lua, (b & 0x0f) as usize)?,
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(lua, n)?
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(lua, n)?
            }
            0x80..=0x8f => self.map(lua, (b & 0x0f) as usize)?,
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(lua, n)?
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(lua, n)?
            }
            _ => return Err(BAD),
        })
    }

    fn str(&mut self, lua: &Lua, n: usize) -> Result<Value, &'static str> {
        let bytes = self.take(n)?;
        lua.create_string(bytes).map(Value::String).map_err(|_| BAD)
    }

    fn array(&mut self, lua: &Lua, n: usize) -> Result<Value, &'static str> {
        // Each element takes at least a byte: a count beyond the input is corrupt.
        if n > self.s.len() - self.at {
            return Err(MISSING);
        }
        let t = lua.create_table().map_err(|_| BAD)?;
        for i in 1..=n {
            let v = self.value(lua)?;
            t.raw_set(i, v).map_err(|_| BAD)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, n: usize) -> Result<Value, &'static str> {
        if n > self.s.len() - self.at {
            return Err(MISSING);
        }
        let t = lua.create_table().map_err(|_| BAD)?;
        for _ in 0..n {
            let k = self.value(lua)?;
            let v = self.value(lua)?;
            if !matches!(k, Value::Nil) {
                t.raw_set(k, v).map_err(|_| BAD)?;
            }
        }
        Ok(Value::Table(t))
    }
}
