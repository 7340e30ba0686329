//! Lua scripting: one Lua 5.1 VM, the sandbox Redis scripts run in, the script cache, and the
//! conversions between Lua values and RESP replies, following Redis 7.0.
//!
//! **Architecture invariant:** no I/O, no sockets, no locks of the keyspace. A script reaches
//! the server only through [`Host`], whose `call` runs one command; the caller (the `EVAL`
//! family) holds the keyspace gate alone for the whole run, which is what makes a script
//! atomic. Time limits work through the VM's instruction hook: every [`HOOK_EVERY`]
//! instructions it checks the kill flag the server raises on `SCRIPT KILL`.
//!
//! Use: [`Engine::new`] once; [`Engine::load`] compiles and caches a body under its SHA1
//! (`EVAL` and `SCRIPT LOAD`); [`Engine::run`] runs a cached script with its `KEYS` and `ARGV`
//! and returns the reply frame, errors included, exactly as Redis would send it.

mod bit;
mod cjson;
mod cmsgpack;
mod convert;
mod functions;
mod payload;
mod sandbox;
mod structlib;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, RegistryKey, Table, Value, VmState};
use shoal_resp::{Frame, Protocol};

pub use convert::lua_to_frame;

/// How often (in VM instructions) a running script checks whether it was killed.
pub const HOOK_EVERY: u32 = 100_000;

/// The chunk name scripts are compiled under; Lua prints it as `user_script:<line>:`.
const CHUNK: &str = "@user_script";

/// What a script may ask of the server.
pub trait Host {
    /// Runs `args` as a command from the script (`redis.call`/`redis.pcall`), with replies in
    /// RESP version `resp` (2 or 3, from `redis.setresp`). Refusals (unknown command, `noscript`,
    /// a write from a read-only script, ...) come back as `Frame::Error` with Redis's text.
    fn call(&mut self, args: Vec<Bytes>, resp: u8) -> Frame;
    /// `redis.log(level, message)`.
    fn log(&mut self, _level: i64, _message: &str) {}
}

/// The Lua VM and the scripts compiled in it.
pub struct Engine {
    lua: Lua,
    /// SHA1 (40 lower-case hex digits) -> the compiled script.
    scripts: HashMap<String, RegistryKey>,
    /// The environment every script runs in (reads fall through to the globals, writes fail).
    env: RegistryKey,
    /// Raised by the server on `SCRIPT KILL`; checked by the instruction hook.
    kill: Arc<AtomicBool>,
    /// Function libraries (`FUNCTION LOAD`).
    functions: functions::Registry,
}

/// How `FUNCTION RESTORE` treats libraries that already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    Flush,
    Append,
    Replace,
}

/// What `FCALL` needs to know about a function before running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionInfo {
    /// Declared `no-writes`: callable from `FCALL_RO`, and refused writes.
    pub no_writes: bool,
}

/// Redis's lower-case hex SHA1 of a script body.
pub fn sha1hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

impl Engine {
    /// A fresh VM with Redis's sandbox. `version` is what `redis.REDIS_VERSION` reports.
    pub fn new(kill: Arc<AtomicBool>, version: &str) -> mlua::Result<Engine> {
        let lua = sandbox::new_vm(version)?;
        let env = sandbox::script_env(&lua)?;
        let env = lua.create_registry_value(env)?;
        let hook_kill = kill.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_lua, _debug| {
                if hook_kill.load(Ordering::Relaxed) {
                    return Err(mlua::Error::runtime(
                        "Script killed by user with SCRIPT KILL...",
                    ));
                }
                Ok(VmState::Continue)
            },
        )?;
        Ok(Engine {
            lua,
            scripts: HashMap::new(),
            env,
            kill,
            functions: functions::Registry::default(),
        })
    }

    /// Compiles `body` and caches it under its SHA1, which it returns; a script already cached
    /// is not compiled again. A syntax error gives Redis's `Error compiling script` text.
    pub fn load(&mut self, body: &[u8]) -> Result<String, String> {
        let sha = sha1hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let f = self
            .lua
            .load(body)
            .set_name(CHUNK)
            .into_function()
            .map_err(|e| {
                format!(
                    "ERR Error compiling script (new function): {}",
                    compile_message(&e)
                )
            })?;
        let env: Table = self
            .lua
            .registry_value(&self.env)
            .map_err(|e| format!("ERR {e}"))?;
        f.set_environment(env).map_err(|e| format!("ERR {e}"))?;
        let key = self
            .lua
            .create_registry_value(f)
            .map_err(|e| format!("ERR {e}"))?;
        self.scripts.insert(sha.clone(), key);
        Ok(sha)
    }

    /// Whether a script with this SHA1 (any case) is cached.
    pub fn exists(&self, sha: &str) -> bool {
        self.scripts.contains_key(&sha.to_ascii_lowercase())
    }

    /// Forgets every script (`SCRIPT FLUSH`).
    pub fn flush(&mut self) {
        for (_, key) in self.scripts.drain() {
            let _ = self.lua.remove_registry_value(key);
        }
        self.lua.expire_registry_values();
        let _ = self.lua.gc_collect();
    }

    /// Runs the cached script `sha` with `keys` and `argv`, returning its reply (the caller's
    /// connection encodes it in its own protocol). `None` when no such script is cached
    /// (`-NOSCRIPT`).
    pub fn run(
        &mut self,
        sha: &str,
        keys: &[Bytes],
        argv: &[Bytes],
        host: &mut dyn Host,
    ) -> Option<Frame> {
        let sha = sha.to_ascii_lowercase();
        let f: Function = self.lua.registry_value(self.scripts.get(&sha)?).ok()?;
        self.kill.store(false, Ordering::Relaxed);
        let globals = self.lua.globals();
        let prepared = strings(&self.lua, keys)
            .and_then(|k| globals.raw_set("KEYS", k))
            .and_then(|_| strings(&self.lua, argv))
            .and_then(|a| globals.raw_set("ARGV", a));
        let reply = match prepared.and_then(|_| self.call(&f, host)) {
            Ok(frame) => frame,
            Err(e) => Frame::Error(Bytes::from(error_reply(&e, &sha))),
        };
        // Garbage from one script is not left for the next one to pay for.
        let _ = self.lua.gc_step();
        Some(reply)
    }

    /// `FUNCTION LOAD [REPLACE]`: runs the library's code, which must register at least one
    /// function, and returns the library's name. Nothing changes unless all of it succeeds.
    pub fn function_load(&mut self, code: &[u8], replace: bool) -> Result<String, String> {
        let (name, body) = functions::parse_header(code)?;
        if self.functions.libraries.contains_key(&name) && !replace {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        let lua = &self.lua;
        let f = lua
            .load(&body[..])
            .set_name("@user_function")
            .into_function()
            .map_err(|e| format!("ERR Error compiling function: {}", compile_message(&e)))?;
        let env: Table = lua
            .registry_value(&self.env)
            .map_err(|e| format!("ERR {e}"))?;
        f.set_environment(env).map_err(|e| format!("ERR {e}"))?;
        let collected: functions::Collected = std::cell::RefCell::new(Vec::new());
        let globals = lua.globals();
        let outcome = lua.scope(|scope| {
            let register = scope.create_function(|_, args: mlua::MultiValue| {
                functions::register(args, &collected).map_err(|e| convert::raised(e.as_bytes()))
            })?;
            globals.raw_set("__redis_loading", functions::loading_redis(lua, register)?)?;
            let handler: Function = globals.raw_get("__redis__err__handler")?;
            let xpcall: Function = globals.raw_get("xpcall")?;
            let result = xpcall.call::<(bool, Value)>((f, handler));
            globals.raw_set("__redis_loading", Value::Nil)?;
            result
        });
        let (ok, value) = outcome.map_err(|e| format!("ERR {e}"))?;
        if !ok {
            let message = match convert::failure(value) {
                mlua::Error::ExternalError(inner) => inner.to_string(),
                other => other.to_string(),
            };
            return Err(format!("ERR Error registering functions: {message}"));
        }
        let collected = collected.into_inner();
        if collected.is_empty() {
            return Err("ERR No functions registered".into());
        }
        for (fname, ..) in &collected {
            if let Some(owner) = self.functions.owner.get(fname) {
                if *owner != name {
                    return Err(format!("ERR Function {fname} already exists"));
                }
            }
        }
        self.function_delete(&name).ok();
        let mut defs = Vec::with_capacity(collected.len());
        for (fname, description, flags, callback) in collected {
            let callback = self
                .lua
                .create_registry_value(callback)
                .map_err(|e| format!("ERR {e}"))?;
            self.functions.owner.insert(fname.clone(), name.clone());
            defs.push(functions::FunctionDef {
                name: fname,
                description,
                flags,
                callback,
            });
        }
        self.functions.libraries.insert(
            name.clone(),
            functions::Library {
                code: Bytes::copy_from_slice(code),
                functions: defs,
            },
        );
        Ok(name)
    }

    /// `FUNCTION DUMP`: every library's code in Redis's payload format.
    pub fn function_dump(&self) -> Vec<u8> {
        payload::dump(self.functions.libraries.values().map(|l| &l.code[..]))
    }

    /// `FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]`: loads the payload's libraries. With
    /// APPEND (the default) an existing library of the same name is an error and nothing is
    /// loaded; FLUSH deletes every library first.
    pub fn function_restore(&mut self, data: &[u8], policy: RestorePolicy) -> Result<(), String> {
        let codes = payload::parse(data)?;
        if policy == RestorePolicy::Append {
            for code in &codes {
                let (name, _) = functions::parse_header(code)?;
                if self.functions.libraries.contains_key(&name) {
                    return Err(format!("ERR Library {name} already exists"));
                }
            }
        }
        if policy == RestorePolicy::Flush {
            self.function_flush();
        }
        for code in &codes {
            self.function_load(code, policy != RestorePolicy::Append)?;
        }
        Ok(())
    }

    /// `FUNCTION DELETE library`.
    pub fn function_delete(&mut self, name: &str) -> Result<(), String> {
        let lib = self
            .functions
            .libraries
            .remove(name)
            .ok_or_else(|| "ERR Library not found".to_string())?;
        for f in lib.functions {
            self.functions.owner.remove(&f.name);
            let _ = self.lua.remove_registry_value(f.callback);
        }
        Ok(())
    }

    /// `FUNCTION FLUSH`.
    pub fn function_flush(&mut self) {
        let names: Vec<String> = self.functions.libraries.keys().cloned().collect();
        for name in names {
            let _ = self.function_delete(&name);
        }
    }

    /// `FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]`.
    pub fn function_list(&self, pattern: Option<&[u8]>, withcode: bool) -> Frame {
        functions::list(&self.functions, pattern, withcode)
    }

    /// Libraries and functions loaded (`FUNCTION STATS`).
    pub fn function_counts(&self) -> (usize, usize) {
        (self.functions.libraries.len(), self.functions.owner.len())
    }

    /// What `FCALL` checks before running `name`; `None` when there is no such function.
    pub fn function_info(&self, name: &str) -> Option<FunctionInfo> {
        let lib = self.functions.owner.get(name)?;
        let f = self
            .functions
            .libraries
            .get(lib)?
            .functions
            .iter()
            .find(|f| f.name == name)?;
        Some(FunctionInfo {
            no_writes: f.flags.contains(&"no-writes"),
        })
    }

    /// `FCALL name numkeys key... arg...`: runs the function with `(keys, args)`.
    pub fn fcall(
        &mut self,
        name: &str,
        keys: &[Bytes],
        argv: &[Bytes],
        host: &mut dyn Host,
    ) -> Option<Frame> {
        let lib = self.functions.owner.get(name)?;
        let def = self
            .functions
            .libraries
            .get(lib)?
            .functions
            .iter()
            .find(|f| f.name == name)?;
        let callback: Function = self.lua.registry_value(&def.callback).ok()?;
        self.kill.store(false, Ordering::Relaxed);
        // Lua 5.1's xpcall passes no arguments, so a closure hands the function its two tables.
        let bound = strings(&self.lua, keys).and_then(|k| {
            let a = strings(&self.lua, argv)?;
            self.lua
                .load("local f, k, a = ... return function() return f(k, a) end")
                .set_name("=fcall")
                .call::<Function>((callback, k, a))
        });
        let reply = match bound.and_then(|f| self.call(&f, host)) {
            Ok(frame) => frame,
            Err(e) => Frame::Error(Bytes::from(error_reply(&e, name))),
        };
        let _ = self.lua.gc_step();
        Some(reply)
    }

    /// Runs `f` (no arguments) with the `redis` library bound to `host`, under the error
    /// handler that records where in the user's code an error happened.
    fn call(&self, f: &Function, host: &mut dyn Host) -> mlua::Result<Frame> {
        let lua = &self.lua;
        let globals = lua.globals();
        let host = std::cell::RefCell::new(host);
        let resp = std::cell::Cell::new(2u8);
        lua.scope(|scope| {
            // `redis.call` and `redis.setresp` raise Redis errors as [`convert::Raised`], which the
            // error handler reads back verbatim. They are Rust functions, not Lua wrappers, so
            // a tail call (`return redis.call(...)`) keeps the script's frame for the error's
            // line number, as Redis's C functions do.
            let call = scope.create_function(|lua, args: mlua::MultiValue| {
                let args = convert::command_args(args)?;
                let reply = host.borrow_mut().call(args, resp.get());
                if let Frame::Error(e) = &reply {
                    return Err(convert::raised(e));
                }
                convert::frame_to_lua(lua, &reply, resp.get())
            })?;
            let pcall = scope.create_function(|lua, args: mlua::MultiValue| {
                let args = match convert::command_args(args) {
                    Ok(a) => a,
                    Err(e) => return convert::error_table(lua, convert::message(&e).as_bytes()),
                };
                let reply = host.borrow_mut().call(args, resp.get());
                convert::frame_to_lua(lua, &reply, resp.get())
            })?;
            let setresp = scope.create_function(|_, v: Value| {
                match v {
                    Value::Integer(2) => resp.set(2),
                    Value::Number(2.0) => resp.set(2),
                    Value::Integer(3) => resp.set(3),
                    Value::Number(3.0) => resp.set(3),
                    _ => return Err(convert::raised(b"ERR RESP version must be 2 or 3.")),
                }
                Ok(())
            })?;
            let log = scope.create_function(|_, (level, msg): (i64, mlua::String)| {
                host.borrow_mut().log(level, &msg.to_string_lossy());
                Ok(())
            })?;
            let redis: Table = globals.raw_get("redis")?;
            redis.raw_set("call", call)?;
            redis.raw_set("pcall", pcall)?;
            redis.raw_set("setresp", setresp)?;
            globals.raw_set("__redis_log", log)?;
            let handler: Function = globals.raw_get("__redis__err__handler")?;
            let xpcall: Function = globals.raw_get("xpcall")?;
            let (ok, value): (bool, Value) = xpcall.call((f.clone(), handler))?;
            for name in ["call", "pcall", "setresp"] {
                redis.raw_set(name, Value::Nil)?;
            }
            globals.raw_set("__redis_log", Value::Nil)?;
            if ok {
                let version = if resp.get() == 3 {
                    Protocol::Resp3
                } else {
                    Protocol::Resp2
                };
                Ok(lua_to_frame(&value, version))
            } else {
                Err(convert::failure(value))
            }
        })
    }
}

fn strings(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(&item[..])?)?;
    }
    Ok(t)
}

/// The compile error as Lua reports it (`user_script:1: unexpected symbol near '<eof>'`).
fn compile_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// A failed run's error reply, as Redis 7.0 words it: the error's own text, then
/// ` script: <sha>, on @user_script:<line>.`.
fn error_reply(e: &mlua::Error, sha: &str) -> String {
    match e {
        mlua::Error::ExternalError(inner) => {
            if let Some(f) = inner.downcast_ref::<convert::Failure>() {
                return match f.line {
                    Some(line) => format!("{} script: {sha}, on {}:{line}.", f.message, f.source),
                    None => format!("{} script: {sha}", f.message),
                };
            }
            format!("ERR {inner}")
        }
        other => format!("ERR {other}"),
    }
}

#[cfg(test)]
mod tests;
