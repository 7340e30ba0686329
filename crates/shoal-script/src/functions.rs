//! Redis functions (`FUNCTION LOAD`, `FCALL`): libraries of Lua functions registered with
//! `redis.register_function`, kept by name, with Redis 7.0's validation and error texts.
//!
//! A library's code runs once, at load, in an environment where `redis` offers only
//! `register_function`, `log` and the constants; its functions are then called with `(keys,
//! args)` like Redis's, under the same sandbox and error handling as `EVAL` scripts.

use std::collections::BTreeMap;

use bytes::Bytes;
use mlua::{Function, Lua, RegistryKey, Table, Value};
use shoal_resp::Frame;

/// The flags a function may declare.
pub const FLAGS: &[&str] = &[
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// One registered function.
pub(crate) struct FunctionDef {
    pub name: String,
    pub description: Option<String>,
    pub flags: Vec<&'static str>,
    pub callback: RegistryKey,
}

/// One loaded library.
pub(crate) struct Library {
    pub code: Bytes,
    pub functions: Vec<FunctionDef>,
}

/// Every library, by name, and which library each function belongs to.
#[derive(Default)]
pub(crate) struct Registry {
    pub libraries: BTreeMap<String, Library>,
    pub owner: BTreeMap<String, String>,
}

const NAME_RULE: &str = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Reads the `#!lua name=<library>` header; returns the library name and the code with the
/// header line blanked (so line numbers stay those of the code as sent).
pub(crate) fn parse_header(code: &[u8]) -> Result<(String, Vec<u8>), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let end = code.iter().position(|&c| c == b'\n').unwrap_or(code.len());
    let header = String::from_utf8_lossy(&code[2..end]).into_owned();
    let mut parts = header.split(' ').filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or_default();
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    let mut name = None;
    for part in parts {
        match part.split_once('=') {
            Some(("name", v)) => name = Some(v.to_string()),
            _ => return Err(format!("ERR Invalid metadata value given: {part}")),
        }
    }
    let name = name.ok_or_else(|| "ERR Library name was not given".to_string())?;
    if !valid_name(&name) {
        return Err(NAME_RULE.into());
    }
    Ok((name, code[end..].to_vec()))
}

/// The functions `register_function` collected while a library loaded.
pub(crate) type Collected =
    std::cell::RefCell<Vec<(String, Option<String>, Vec<&'static str>, Function)>>;

/// `redis.register_function(name, callback)` or `redis.register_function{function_name=...,
/// callback=..., flags={...}, description=...}`.
pub(crate) fn register(args: mlua::MultiValue, into: &Collected) -> Result<(), String> {
    let args: Vec<Value> = args.into_iter().collect();
    let (name, callback, flags, description) = match args.as_slice() {
        [Value::String(name), Value::Function(f)] => (
            name.to_string_lossy().to_string(),
            f.clone(),
            Vec::new(),
            None,
        ),
        [Value::Table(t)] => {
            let name = match t.raw_get::<Value>("function_name") {
                Ok(Value::String(s)) => s.to_string_lossy().to_string(),
                _ => return Err(
                    "ERR function_name argument given to redis.register_function must be a string"
                        .into(),
                ),
            };
            let callback =
                match t.raw_get::<Value>("callback") {
                    Ok(Value::Function(f)) => f,
                    _ => return Err(
                        "ERR callback argument given to redis.register_function must be a function"
                            .into(),
                    ),
                };
            let description = match t.raw_get::<Value>("description") {
                Ok(Value::String(s)) => Some(s.to_string_lossy().to_string()),
                Ok(Value::Nil) => None,
                _ => return Err(
                    "ERR description argument given to redis.register_function must be a string"
                        .into(),
                ),
            };
            let mut flags = Vec::new();
            match t.raw_get::<Value>("flags") {
                Ok(Value::Nil) => {}
                Ok(Value::Table(f)) => {
                    for v in f.sequence_values::<Value>() {
                        let Ok(Value::String(s)) = v else {
                            return Err("ERR unknown flag given".into());
                        };
                        let s = s.to_string_lossy();
                        match FLAGS.iter().find(|f| **f == s) {
                            Some(f) => flags.push(*f),
                            None => return Err("ERR unknown flag given".into()),
                        }
                    }
                }
                _ => return Err("ERR flags argument to redis.register_function must be a table representing function flags".into()),
            }
            (name, callback, flags, description)
        }
        _ => return Err("ERR wrong number of arguments to redis.register_function".into()),
    };
    if !valid_name(&name) {
        return Err(NAME_RULE.into());
    }
    let mut list = into.borrow_mut();
    if list.iter().any(|(n, ..)| *n == name) {
        return Err("ERR Function already exists in the library".into());
    }
    list.push((name, description, flags, callback));
    Ok(())
}

/// `FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]` for the libraries matching `pattern`.
pub(crate) fn list(registry: &Registry, pattern: Option<&[u8]>, withcode: bool) -> Frame {
    let mut out = Vec::new();
    for (name, lib) in &registry.libraries {
        if pattern.is_some_and(|p| !glob(p, name.as_bytes())) {
            continue;
        }
        let functions = lib
            .functions
            .iter()
            .map(|f| {
                Frame::Map(vec![
                    (
                        Frame::bulk("name"),
                        Frame::Bulk(Bytes::from(f.name.clone())),
                    ),
                    (
                        Frame::bulk("description"),
                        f.description
                            .clone()
                            .map_or(Frame::Null, |d| Frame::Bulk(Bytes::from(d))),
                    ),
                    (
                        Frame::bulk("flags"),
                        Frame::Set(f.flags.iter().map(|f| Frame::simple(f)).collect()),
                    ),
                ])
            })
            .collect();
        let mut fields = vec![
            (
                Frame::bulk("library_name"),
                Frame::Bulk(Bytes::from(name.clone())),
            ),
            (Frame::bulk("engine"), Frame::bulk("LUA")),
            (Frame::bulk("functions"), Frame::Array(functions)),
        ];
        if withcode {
            fields.push((Frame::bulk("library_code"), Frame::Bulk(lib.code.clone())));
        }
        out.push(Frame::Map(fields));
    }
    Frame::Array(out)
}

/// Redis's glob matching (`*`, `?`, `[...]`, `\`), for `LIBRARYNAME`.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(b'\\'), Some(c)) if p.len() > 1 => p[1] == *c && glob(&p[2..], &s[1..]),
        (Some(c), Some(d)) => c == d && glob(&p[1..], &s[1..]),
        (Some(_), None) => false,
    }
}

/// The `redis` library a library's code sees while it loads: only what Redis 7.0 offers there
/// (`register_function`, `log`, the constants); reading anything else is the sandbox's
/// nonexistent-variable error, and nothing can be written. The sandbox's environment hands it
/// out instead of the real `redis` while `__redis_loading` is set, so functions and helpers
/// defined by the library see the real one when they run.
pub(crate) fn loading_redis(lua: &Lua, register: Function) -> mlua::Result<Table> {
    let make: Function = lua
        .load(
            r#"
local register, real = ...
local function readonly() error('Attempt to modify a readonly table', 2) end
local lib = {register_function = register, log = real.log,
             REDIS_VERSION = real.REDIS_VERSION, REDIS_VERSION_NUM = real.REDIS_VERSION_NUM,
             LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3}
return setmetatable({}, {__index = function(_, k)
    local v = lib[k]
    if v == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
end, __newindex = readonly, __metatable = false})
"#,
        )
        .set_name("=function_loader")
        .into_function()?;
    let real: Table = lua.globals().raw_get("redis")?;
    make.call((register, real))
}
