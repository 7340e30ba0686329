//! The sandbox scripts run in, as Redis 7.0 sets it up: only the `base`, `table`, `string` and
//! `math` libraries (no `os`, `io`, `loadfile`, `dofile`, `print`), the `redis` library, and a
//! read-only global environment where reading an undefined name is an error.
//!
//! Redis gets read-only tables from a patch to its bundled Lua. Here every script runs in one
//! shared environment table that is empty itself: reads fall through to the real globals (the
//! library tables through read-only proxies), writes and `rawset` on it fail with Redis's
//! message, so nothing a script does survives into the next one.

use mlua::{Lua, LuaOptions, StdLib, Table, Value};

use crate::convert::raised;
use crate::sha1hex;

/// Lua code run once per VM. `redis.call`, `redis.pcall`, `redis.setresp` and `__redis_log` are
/// bound to the running script's host for the duration of each run (see `Engine::call`).
const SETUP: &str = r#"
local error, type, tostring, setmetatable, rawget, rawset, select =
      error, type, tostring, setmetatable, rawget, rawset, select

redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3

local G = _G
local function readonly() error('Attempt to modify a readonly table', 2) end
local proxies = {}
local function proxy(lib)
    local p = proxies[lib]
    if p == nil then
        p = setmetatable({}, {__index = lib, __newindex = readonly, __metatable = false})
        proxies[lib] = p
    end
    return p
end
local env = {}
setmetatable(env, {
    __index = function(_, k)
        if k == '_G' then return env end
        if k == 'redis' and rawget(G, '__redis_loading') then
            return rawget(G, '__redis_loading')
        end
        local v = rawget(G, k)
        if v == nil then
            error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
        end
        if type(v) == 'table' and k ~= 'KEYS' and k ~= 'ARGV' then return proxy(v) end
        return v
    end,
    __newindex = readonly,
    __metatable = false,
})
G.rawset = function(t, k, v)
    if t == env or proxies[t] ~= nil then readonly() end
    for _, p in pairs(proxies) do if p == t then readonly() end end
    return rawset(t, k, v)
end
G.getfenv = function() return env end
G.setfenv = nil
__redis_env = env
"#;

/// A VM with Redis's libraries and none of the dangerous ones.
pub(crate) fn new_vm(version: &str) -> mlua::Result<Lua> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::new(),
    )?;
    let g = lua.globals();
    for name in ["dofile", "loadfile", "print", "load", "module", "require"] {
        g.raw_set(name, Value::Nil)?;
    }
    let redis = lua.create_table()?;
    redis.raw_set("REDIS_VERSION", version)?;
    redis.raw_set("REDIS_VERSION_NUM", version_num(version))?;
    redis.raw_set(
        "sha1hex",
        lua.create_function(|_, v: Value| match v {
            Value::String(s) => Ok(sha1hex(&s.as_bytes())),
            Value::Integer(i) => Ok(sha1hex(i.to_string().as_bytes())),
            Value::Number(n) => Ok(sha1hex(n.to_string().as_bytes())),
            _ => Err(mlua::Error::runtime("wrong number of arguments")),
        })?,
    )?;
    // Functions that raise errors are Rust functions, not Lua ones: a tail call to them
    // (`return redis.set_repl(9)`) then keeps the script's frame for the error's line number.
    redis.raw_set(
        "error_reply",
        lua.create_function(|lua, v: Value| match v {
            Value::String(s) => {
                let s = s.as_bytes();
                // The reply's `-` is added when it is sent, so a leading one is dropped here.
                crate::convert::error_table(lua, s.strip_prefix(b"-").unwrap_or(&s))
            }
            _ => Err(raised(b"ERR wrong number or type of arguments")),
        })?,
    )?;
    redis.raw_set(
        "status_reply",
        lua.create_function(|lua, v: Value| match v {
            Value::String(s) => {
                let t = lua.create_table()?;
                t.raw_set("ok", s)?;
                Ok(t)
            }
            _ => Err(raised(b"ERR wrong number or type of arguments")),
        })?,
    )?;
    redis.raw_set(
        "set_repl",
        lua.create_function(|_, v: Value| match v {
            Value::Integer(0..=3) => Ok(()),
            Value::Number(n) if (0.0..=3.0).contains(&n) => Ok(()),
            _ => Err(raised(
                b"ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
            )),
        })?,
    )?;
    redis.raw_set(
        "log",
        lua.create_function(|lua, args: mlua::MultiValue| {
            let mut args = args.into_iter();
            let level = args.next();
            let rest: Vec<Value> = args.collect();
            if rest.is_empty() {
                return Err(raised(b"ERR redis.log() requires two arguments or more."));
            }
            let level = match level {
                Some(Value::Integer(l)) if (0..=3).contains(&l) => l,
                Some(Value::Number(n)) if (0.0..=3.0).contains(&n) => n as i64,
                _ => return Err(raised(b"ERR Invalid debug level.")),
            };
            let text: Vec<String> = rest
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.to_string_lossy().to_string(),
                    other => describe(other),
                })
                .collect();
            // `__redis_log` is bound to the running script's host for each run.
            let log: Value = lua.globals().raw_get("__redis_log")?;
            if let Value::Function(f) = log {
                f.call::<()>((level, text.join(" ")))?;
            }
            Ok(())
        })?,
    )?;
    g.raw_set("redis", redis)?;
    crate::bit::install(&lua)?;
    crate::cjson::install(&lua)?;
    crate::cmsgpack::install(&lua)?;
    crate::structlib::install(&lua)?;
    g.raw_set("__redis__err__handler", error_handler(&lua)?)?;
    lua.load(SETUP).set_name("=redis_setup").exec()?;
    Ok(lua)
}

/// The environment scripts run in.
pub(crate) fn script_env(lua: &Lua) -> mlua::Result<Table> {
    lua.globals().raw_get("__redis_env")
}

/// `7.0.15` as Redis's `0x00070f`.
fn version_num(version: &str) -> i64 {
    let mut parts = version.split('.').map(|p| p.parse::<i64>().unwrap_or(0));
    let (a, b, c) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    (a << 16) | (b << 8) | c
}

/// The message handler every script runs under: turns whatever was raised into
/// `{err = <text with its code>, source = '@user_script', line = <line in the script>}`.
fn error_handler(lua: &Lua) -> mlua::Result<mlua::Function> {
    lua.create_function(|lua, err: Value| {
        let message = match &err {
            Value::Table(t) => match t.raw_get::<Value>("err")? {
                Value::String(s) => s.to_string_lossy().to_string(),
                other => format!("ERR {}", describe(&other)),
            },
            Value::String(s) => format!("ERR {}", s.to_string_lossy()),
            Value::Error(e) => crate::convert::message(e),
            other => format!("ERR {}", describe(other)),
        };
        let mut line = None;
        let mut source = "@user_script";
        for level in 1..64 {
            let Some(found) = lua.inspect_stack(level, |d| {
                let src = d.source().source.map(|s| s.to_string()).unwrap_or_default();
                let which = if src.starts_with("@user_script") {
                    Some("@user_script")
                } else if src.starts_with("@user_function") {
                    Some("@user_function")
                } else {
                    None
                };
                (which, d.current_line())
            }) else {
                break;
            };
            if let (Some(which), Some(l)) = found {
                line = Some(l as i64);
                source = which;
                break;
            }
        }
        let t = lua.create_table()?;
        t.raw_set("err", message)?;
        t.raw_set("source", source)?;
        if let Some(l) = line {
            t.raw_set("line", l)?;
        }
        Ok(t)
    })
}

fn describe(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.to_string_lossy().to_string(),
        other => other.type_name().to_string(),
    }
}
