//! Conversions between RESP replies and Lua values, in both directions and both protocols, as
//! Redis 7.0's `script_lua.c` defines them, and the shape of a script's failure.

use bytes::Bytes;
use mlua::{Lua, MultiValue, Table, Value};
use shoal_resp::{format_double, Frame, Protocol};

/// A script that failed: the error text (code first), and where in the script it happened.
#[derive(Debug)]
pub(crate) struct Failure {
    pub message: String,
    pub source: String,
    pub line: Option<i64>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// A Redis error raised inside a script (`redis.call` failing, `redis.setresp(4)`): its text,
/// code first, reported as is.
#[derive(Debug)]
pub(crate) struct Raised(pub String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

/// Raises `text` as a Redis error.
pub(crate) fn raised(text: &[u8]) -> mlua::Error {
    mlua::Error::external(Raised(String::from_utf8_lossy(text).into_owned()))
}

/// The text of an error raised from Rust: a [`Raised`] verbatim, anything else with `ERR`.
pub(crate) fn message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::ExternalError(inner) => match inner.downcast_ref::<Raised>() {
            Some(r) => r.0.clone(),
            None => format!("ERR {inner}"),
        },
        mlua::Error::CallbackError { cause, .. } => message(cause),
        mlua::Error::RuntimeError(m) => format!("ERR {m}"),
        other => format!("ERR {other}"),
    }
}

/// The arguments of `redis.call`: strings, or numbers (which Redis turns into their text).
pub(crate) fn command_args(args: MultiValue) -> mlua::Result<Vec<Bytes>> {
    if args.is_empty() {
        return Err(raised(
            b"ERR Please specify at least one argument for this redis lib call",
        ));
    }
    args.into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Integer(i) => Ok(Bytes::from(i.to_string())),
            Value::Number(n) => Ok(Bytes::from(lua_number_text(n))),
            _ => Err(raised(
                b"ERR Lua redis lib command arguments must be strings or integers",
            )),
        })
        .collect()
}

/// How Lua 5.1 writes a number as a string (`%.14g`).
pub(crate) fn lua_number_text(n: f64) -> String {
    if n.is_nan() {
        return "nan".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if n == 0.0 {
        return "0".into();
    }
    let exp = n.abs().log10().floor() as i32;
    let trim = |mut t: String| {
        if t.contains('.') {
            while t.ends_with('0') {
                t.pop();
            }
            if t.ends_with('.') {
                t.pop();
            }
        }
        t
    };
    if (-5..14).contains(&exp) {
        let decimals = (13 - exp).max(0) as usize;
        trim(format!("{n:.decimals$}"))
    } else {
        let s = format!("{n:.13e}");
        let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        let sign = if e < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa.to_string()), e.abs())
    }
}

/// `{err = message}`, the table Redis uses for errors inside scripts.
pub(crate) fn error_table(lua: &Lua, message: &[u8]) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(message)?)?;
    Ok(Value::Table(t))
}

/// A reply from the server as the script sees it, with replies in RESP version `resp`.
pub(crate) fn frame_to_lua(lua: &Lua, frame: &Frame, resp: u8) -> mlua::Result<Value> {
    let resp3 = resp == 3;
    Ok(match frame {
        Frame::Integer(i) => Value::Integer(*i),
        Frame::Bulk(b) => Value::String(lua.create_string(&b[..])?),
        Frame::Simple(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(&s[..])?)?;
            Value::Table(t)
        }
        Frame::Error(e) => error_table(lua, e)?,
        Frame::Null | Frame::NullArray if resp3 => Value::Nil,
        Frame::Null | Frame::NullArray => Value::Boolean(false),
        Frame::Array(items) | Frame::Push(items) => array(lua, items.iter(), resp)?,
        Frame::Set(items) if !resp3 => array(lua, items.iter(), resp)?,
        Frame::Set(items) => {
            let set = lua.create_table()?;
            for item in items {
                set.raw_set(frame_to_lua(lua, item, resp)?, true)?;
            }
            wrap(lua, "set", Value::Table(set))?
        }
        Frame::Map(pairs) if !resp3 => {
            let t = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (k, v)) in pairs.iter().enumerate() {
                t.raw_set(2 * i + 1, frame_to_lua(lua, k, resp)?)?;
                t.raw_set(2 * i + 2, frame_to_lua(lua, v, resp)?)?;
            }
            Value::Table(t)
        }
        Frame::Map(pairs) => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                map.raw_set(frame_to_lua(lua, k, resp)?, frame_to_lua(lua, v, resp)?)?;
            }
            wrap(lua, "map", Value::Table(map))?
        }
        Frame::Double(d) if !resp3 => {
            Value::String(lua.create_string(format_double(*d).as_bytes())?)
        }
        Frame::Double(d) => wrap(lua, "double", Value::Number(*d))?,
        Frame::DoubleText(t) if !resp3 => Value::String(lua.create_string(&t[..])?),
        Frame::DoubleText(t) => {
            let d = std::str::from_utf8(t)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0);
            wrap(lua, "double", Value::Number(d))?
        }
        Frame::Boolean(b) if !resp3 => Value::Integer(*b as i64),
        Frame::Boolean(b) => Value::Boolean(*b),
        Frame::BigNumber(s) if !resp3 => Value::String(lua.create_string(&s[..])?),
        Frame::BigNumber(s) => wrap(lua, "big_number", Value::String(lua.create_string(&s[..])?))?,
        Frame::Verbatim { text, .. } if !resp3 => Value::String(lua.create_string(&text[..])?),
        Frame::Verbatim { format, text } => {
            let v = lua.create_table()?;
            v.raw_set("format", lua.create_string(&format[..])?)?;
            v.raw_set("string", lua.create_string(&text[..])?)?;
            wrap(lua, "verbatim_string", Value::Table(v))?
        }
    })
}

fn array<'a>(lua: &Lua, items: impl Iterator<Item = &'a Frame>, resp: u8) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    for (i, item) in items.enumerate() {
        t.raw_set(i + 1, frame_to_lua(lua, item, resp)?)?;
    }
    Ok(Value::Table(t))
}

fn wrap(lua: &Lua, field: &str, v: Value) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, v)?;
    Ok(Value::Table(t))
}

/// A script's return value as a reply, under the RESP version the script chose with
/// `redis.setresp` (`protocol`): a boolean is `:1`/nil under RESP2 and `#t`/`#f` under RESP3.
/// The connection then encodes the reply in its client's own protocol.
pub fn lua_to_frame(v: &Value, protocol: Protocol) -> Frame {
    let resp3 = protocol != Protocol::Resp2;
    match v {
        Value::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(true) if !resp3 => Frame::Integer(1),
        Value::Boolean(false) if !resp3 => Frame::Null,
        Value::Boolean(b) => Frame::Boolean(*b),
        Value::Integer(i) => Frame::Integer(*i),
        // Lua numbers become integers, truncated, as in Redis.
        Value::Number(n) => Frame::Integer(truncate(*n)),
        Value::Table(t) => table_to_frame(t, protocol),
        _ => Frame::Null,
    }
}

fn truncate(n: f64) -> i64 {
    if n.is_nan() {
        i64::MIN
    } else {
        n as i64
    }
}

fn table_to_frame(t: &Table, protocol: Protocol) -> Frame {
    let field = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(e) = field("err") {
        return Frame::Error(Bytes::copy_from_slice(&e.as_bytes()));
    }
    if let Value::String(s) = field("ok") {
        return Frame::Simple(Bytes::copy_from_slice(&s.as_bytes()));
    }
    match field("double") {
        Value::Number(d) => return Frame::Double(d),
        Value::Integer(i) => return Frame::Double(i as f64),
        _ => {}
    }
    if let Value::String(s) = field("big_number") {
        return Frame::BigNumber(Bytes::copy_from_slice(&s.as_bytes()));
    }
    if let Value::Table(m) = field("map") {
        let pairs = m
            .pairs::<Value, Value>()
            .filter_map(|p| p.ok())
            .map(|(k, v)| (lua_to_frame(&k, protocol), lua_to_frame(&v, protocol)))
            .collect();
        return Frame::Map(pairs);
    }
    if let Value::Table(s) = field("set") {
        let items = s
            .pairs::<Value, Value>()
            .filter_map(|p| p.ok())
            .map(|(k, _)| lua_to_frame(&k, protocol))
            .collect();
        return Frame::Set(items);
    }
    if let Value::Table(v) = field("verbatim_string") {
        let format: Option<mlua::String> = v.raw_get("format").ok();
        let text: Option<mlua::String> = v.raw_get("string").ok();
        if let (Some(format), Some(text)) = (format, text) {
            let f = format.as_bytes();
            if f.len() == 3 {
                return Frame::Verbatim {
                    format: [f[0], f[1], f[2]],
                    text: Bytes::copy_from_slice(&text.as_bytes()),
                };
            }
        }
    }
    // An array: elements 1, 2, ... up to the first nil.
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(lua_to_frame(&v, protocol)),
        }
    }
    Frame::Array(items)
}

/// The value the error handler produced (a table `{err, source, line}`), as a Rust error.
pub(crate) fn failure(v: Value) -> mlua::Error {
    let mut f = Failure {
        message: "ERR unknown error".into(),
        source: "@user_script".into(),
        line: None,
    };
    if let Value::Table(t) = &v {
        if let Ok(Value::String(m)) = t.raw_get::<Value>("err") {
            f.message = m.to_string_lossy().to_string();
        }
        if let Ok(Value::String(s)) = t.raw_get::<Value>("source") {
            f.source = s.to_string_lossy().to_string();
        }
        if let Ok(Value::Integer(l)) = t.raw_get::<Value>("line") {
            f.line = Some(l);
        }
    }
    mlua::Error::external(f)
}
