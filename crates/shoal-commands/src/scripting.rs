//! Lua scripting: `EVAL`, `EVALSHA`, their `_RO` forms, and `SCRIPT`.
//!
//! A script runs under the keyspace gate held alone (its specs are `exclusive`), so nothing else
//! changes the data while it runs, whatever keys it touches, declared or not. Each
//! `redis.call` goes through the dispatcher's nested path on a client of the script's own (so a
//! `SELECT` inside the script does not move the caller), and its journal joins the script's.
//!
//! Layout: the spec table, the handlers, then the host the engine calls back into.

use bytes::Bytes;
use shoal_resp::{Frame, Protocol};
use shoal_storage::Journal;

use crate::args::{self, is};
use crate::cx::{ClientState, Cx};
use crate::dispatch::{resolve, Engine, Nested};
use crate::error::{CmdResult, CommandError};
use crate::help::help_reply;
use crate::spec::{CommandSpec, Flags, Group, KeyAccess, Keys};

const KEYS: Keys = Keys::Counted {
    numkeys_at: 2,
    dest: false,
};
const EVAL_FLAGS: Flags = Flags::NOSCRIPT
    .with(Flags::SKIP_MONITOR)
    .with(Flags::MAY_REPLICATE)
    .with(Flags::NO_MANDATORY_KEYS)
    .with(Flags::STALE);
const EVAL_RO_FLAGS: Flags = Flags::NOSCRIPT
    .with(Flags::SKIP_MONITOR)
    .with(Flags::NO_MANDATORY_KEYS)
    .with(Flags::STALE)
    .with(Flags::READONLY);

const fn scripting(name: &'static str, arity: i32, handler: crate::spec::Handler) -> CommandSpec {
    CommandSpec::new(name, Group::Scripting, arity, handler)
}

pub(crate) static COMMANDS: &[CommandSpec] = &[
    scripting("eval", -3, eval)
        .flags(EVAL_FLAGS)
        .keys(KEYS, KeyAccess::ReadWrite)
        .key_note("We cannot tell how the keys will be used so we assume the worst, RW and UPDATE")
        .exclusive()
        .doc("Execute a Lua script server side", "2.6.0")
        .complexity("Depends on the script that is executed."),
    scripting("eval_ro", -3, eval_ro)
        .flags(EVAL_RO_FLAGS)
        .keys(KEYS, KeyAccess::Read)
        .key_note("We cannot tell how the keys will be used so we assume the worst, RO and ACCESS")
        .exclusive()
        .doc("Execute a read-only Lua script server side", "7.0.0")
        .complexity("Depends on the script that is executed."),
    scripting("evalsha", -3, evalsha)
        .flags(EVAL_FLAGS)
        .keys(KEYS, KeyAccess::ReadWrite)
        .exclusive()
        .doc("Execute a Lua script server side", "2.6.0")
        .complexity("Depends on the script that is executed."),
    scripting("evalsha_ro", -3, evalsha_ro)
        .flags(EVAL_RO_FLAGS)
        .keys(KEYS, KeyAccess::Read)
        .exclusive()
        .doc("Execute a read-only Lua script server side", "7.0.0")
        .complexity("Depends on the script that is executed."),
    scripting("fcall", -3, fcall)
        .flags(EVAL_FLAGS)
        .keys(KEYS, KeyAccess::ReadWrite)
        .key_note("We cannot tell how the keys will be used so we assume the worst, RW and UPDATE")
        .exclusive()
        .doc("Invoke a function", "7.0.0")
        .complexity("Depends on the function that is executed."),
    scripting("fcall_ro", -3, fcall_ro)
        .flags(EVAL_RO_FLAGS)
        .keys(KEYS, KeyAccess::Read)
        .key_note("We cannot tell how the keys will be used so we assume the worst, RO and ACCESS")
        .exclusive()
        .doc("Invoke a read-only function", "7.0.0")
        .complexity("Depends on the function that is executed."),
    scripting("function", -2, function_help)
        .doc("A container for function commands", "7.0.0")
        .subcommands(&[
            scripting("function|delete", 3, function_delete)
                .flags(Flags::NOSCRIPT.with(Flags::WRITE))
                .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
                .doc("Delete a function by name", "7.0.0"),
            scripting("function|dump", 2, function_dump)
                .flags(Flags::NOSCRIPT)
                .doc("Dump all functions into a serialized binary payload", "7.0.0")
                .complexity("O(N) where N is the number of functions"),
            scripting("function|flush", -2, function_flush)
                .flags(Flags::NOSCRIPT.with(Flags::WRITE))
                .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
                .doc("Deleting all functions", "7.0.0")
                .complexity("O(N) where N is the number of functions deleted"),
            scripting("function|help", 2, function_help)
                .flags(Flags::LOADING.with(Flags::STALE))
                .doc("Show helpful text about the different subcommands", "7.0.0"),
            scripting("function|kill", 2, function_kill)
                .flags(Flags::NOSCRIPT.with(Flags::ALLOW_BUSY))
                .tips(&["request_policy:all_shards", "response_policy:one_succeeded"])
                .doc("Kill the function currently in execution.", "7.0.0"),
            scripting("function|list", -2, function_list)
                .flags(Flags::NOSCRIPT)
                .tips(&["nondeterministic_output_order"])
                .doc("List information about all the functions", "7.0.0")
                .complexity("O(N) where N is the number of functions"),
            scripting("function|load", -3, function_load)
                .flags(Flags::NOSCRIPT.with(Flags::WRITE).with(Flags::DENYOOM))
                .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
                .doc(
                    "Create a function with the given arguments (name, code, description)",
                    "7.0.0",
                )
                .complexity("O(1) (considering compilation time is redundant)"),
            scripting("function|restore", -3, function_restore)
                .flags(Flags::NOSCRIPT.with(Flags::WRITE).with(Flags::DENYOOM))
                .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
                .doc("Restore all the functions on the given payload", "7.0.0")
                .complexity("O(N) where N is the number of functions on the payload"),
            scripting("function|stats", 2, function_stats)
                .flags(Flags::NOSCRIPT.with(Flags::ALLOW_BUSY))
                .tips(&[
                    "nondeterministic_output",
                    "request_policy:all_shards",
                    "response_policy:special",
                ])
                .doc(
                    "Return information about the function currently running (name, description, duration)",
                    "7.0.0",
                ),
        ]),
    scripting("script", -2, script_help)
        .doc("A container for Lua scripts management commands", "2.6.0")
        .subcommands(&[
            scripting("script|debug", 3, script_debug)
                .flags(Flags::NOSCRIPT)
                .doc("Set the debug mode for executed scripts.", "3.2.0"),
            scripting("script|exists", -3, script_exists)
                .flags(Flags::NOSCRIPT)
                .tips(&["request_policy:all_shards", "response_policy:agg_logical_and"])
                .doc("Check existence of scripts in the script cache.", "2.6.0")
                .complexity("O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation)."),
            scripting("script|flush", -2, script_flush)
                .flags(Flags::NOSCRIPT)
                .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"])
                .doc("Remove all the scripts from the script cache.", "2.6.0")
                .complexity("O(N) with N being the number of scripts in cache"),
            scripting("script|help", 2, script_help)
                .flags(Flags::LOADING.with(Flags::STALE))
                .doc("Show helpful text about the different subcommands", "5.0.0"),
            scripting("script|kill", 2, script_kill)
                .flags(Flags::NOSCRIPT.with(Flags::ALLOW_BUSY))
                .tips(&["request_policy:all_shards", "response_policy:one_succeeded"])
                .doc("Kill the script currently in execution.", "2.6.0"),
            scripting("script|load", 3, script_load)
                .flags(Flags::NOSCRIPT.with(Flags::STALE))
                .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"])
                .doc("Load the specified Lua script into the script cache.", "2.6.0")
                .complexity("O(N) with N being the length in bytes of the script body."),
        ]),
];

// Command: EVAL
// > EVAL "return redis.call('set', KEYS[1], ARGV[1])" 1 k v   => OK
// > EVAL "return x" 0   => (error) ERR user_script:1: Script attempted to access nonexistent global variable 'x' script: ..., on @user_script:1.
fn eval(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    run(cx, a, Source::Body, false)
}

// Command: EVAL_RO
// > EVAL_RO "return redis.call('set', 'k', 'v')" 0   => (error) ERR Write commands are not allowed from read-only scripts. script: ...
fn eval_ro(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    run(cx, a, Source::Body, true)
}

// Command: EVALSHA
// > EVALSHA ffffffffffffffffffffffffffffffffffffffff 0   => (error) NOSCRIPT No matching script. Please use EVAL.
fn evalsha(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    run(cx, a, Source::Sha, false)
}

// Command: EVALSHA_RO
fn evalsha_ro(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    run(cx, a, Source::Sha, true)
}

// Command: FCALL
// > FUNCTION LOAD "#!lua name=lib\nredis.register_function('f', function(keys, args) return args[1] end)"
// "lib"
// > FCALL f 0 hello   => "hello"
fn fcall(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    run(cx, a, Source::Function, false)
}

// Command: FCALL_RO
// > FCALL_RO f 0   => (error) ERR Can not execute a script with write flag using *_ro command.
fn fcall_ro(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    run(cx, a, Source::Function, true)
}

// Command: FUNCTION DELETE
// > FUNCTION DELETE nolib   => (error) ERR Library not found
fn function_delete(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let name = String::from_utf8_lossy(&a[2]).into_owned();
    engine(cx)?
        .lock()
        .function_delete(&name)
        .map_err(CommandError::Other)?;
    Ok(Frame::ok())
}

// Command: FUNCTION DUMP
fn function_dump(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Frame::Bulk(Bytes::from(engine(cx)?.lock().function_dump())))
}

// Command: FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]
// > FUNCTION RESTORE bad   => (error) ERR DUMP payload version or checksum are wrong
fn function_restore(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    use shoal_script::RestorePolicy;
    let policy = match a.get(3) {
        None => RestorePolicy::Append,
        Some(p) if a.len() == 4 && is(p, "flush") => RestorePolicy::Flush,
        Some(p) if a.len() == 4 && is(p, "append") => RestorePolicy::Append,
        Some(p) if a.len() == 4 && is(p, "replace") => RestorePolicy::Replace,
        Some(_) => {
            return Err(CommandError::err(
                "Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ))
        }
    };
    engine(cx)?
        .lock()
        .function_restore(&a[2], policy)
        .map_err(CommandError::Other)?;
    Ok(Frame::ok())
}

// Command: FUNCTION FLUSH [ASYNC|SYNC]
fn function_flush(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    match a.get(2) {
        None => {}
        Some(m) if a.len() == 3 && (is(m, "async") || is(m, "sync")) => {}
        Some(_) => {
            return Err(CommandError::err(
                "FUNCTION FLUSH only supports SYNC|ASYNC option",
            ))
        }
    }
    engine(cx)?.lock().function_flush();
    Ok(Frame::ok())
}

// Command: FUNCTION HELP
fn function_help(_cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "FUNCTION",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    ))
}

// Command: FUNCTION KILL
// > FUNCTION KILL   => (error) NOTBUSY No scripts in execution right now.
fn function_kill(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    cx.server.script_kill(false)?;
    Ok(Frame::ok())
}

// Command: FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]
fn function_list(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let mut pattern = None;
    let mut withcode = false;
    let mut i = 2;
    while i < a.len() {
        if is(&a[i], "withcode") && !withcode {
            withcode = true;
        } else if is(&a[i], "libraryname") && pattern.is_none() && i + 1 < a.len() {
            i += 1;
            pattern = Some(a[i].clone());
        } else {
            return Err(CommandError::err(format!(
                "Unknown argument {}",
                String::from_utf8_lossy(&a[i])
            )));
        }
        i += 1;
    }
    Ok(engine(cx)?
        .lock()
        .function_list(pattern.as_deref(), withcode))
}

// Command: FUNCTION LOAD [REPLACE] code
fn function_load(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let (replace, code) = match a {
        [_, _, code] => (false, code),
        [_, _, opt, code] if is(opt, "replace") => (true, code),
        [_, _, opt, _] => {
            return Err(CommandError::err(format!(
                "Unknown option given: {}",
                String::from_utf8_lossy(opt)
            )))
        }
        _ => return Err(CommandError::WrongArity("function|load".into())),
    };
    let name = engine(cx)?
        .lock()
        .function_load(code, replace)
        .map_err(CommandError::Other)?;
    Ok(Frame::Bulk(Bytes::from(name)))
}

// Command: FUNCTION STATS
fn function_stats(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    // A running function holds the engine; its statistics wait for it to finish.
    let (libraries, functions) = match engine(cx)?.try_lock() {
        Some(e) => e.function_counts(),
        None => {
            return Err(CommandError::Other(
                "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.".into(),
            ))
        }
    };
    Ok(Frame::Map(vec![
        (Frame::bulk("running_script"), Frame::Null),
        (
            Frame::bulk("engines"),
            Frame::Map(vec![(
                Frame::bulk("LUA"),
                Frame::Map(vec![
                    (
                        Frame::bulk("libraries_count"),
                        Frame::Integer(libraries as i64),
                    ),
                    (
                        Frame::bulk("functions_count"),
                        Frame::Integer(functions as i64),
                    ),
                ]),
            )]),
        ),
    ]))
}

// Command: SCRIPT DEBUG
// > SCRIPT DEBUG no   => OK
fn script_debug(_cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    if is(&a[2], "no") {
        Ok(Frame::ok())
    } else if is(&a[2], "yes") || is(&a[2], "sync") {
        // The Lua debugger (LDB) is not part of Shoal.
        Err(CommandError::err("SCRIPT DEBUG is not supported by Shoal"))
    } else {
        Err(CommandError::err("Use SCRIPT DEBUG YES/SYNC/NO"))
    }
}

// Command: SCRIPT EXISTS
// > SCRIPT EXISTS e0e1f9fabfc9d4800c877a703b823ac0578ff8db ffff   => 1) (integer) 1  2) (integer) 0
fn script_exists(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let engine = engine(cx)?.lock();
    Ok(Frame::Array(
        a[2..]
            .iter()
            .map(|sha| {
                let found = std::str::from_utf8(sha).is_ok_and(|s| engine.exists(s));
                Frame::Integer(found as i64)
            })
            .collect(),
    ))
}

// Command: SCRIPT FLUSH
// > SCRIPT FLUSH ASYNC   => OK
fn script_flush(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    match a.get(2) {
        None => {}
        Some(m) if a.len() == 3 && (is(m, "async") || is(m, "sync")) => {}
        Some(_) => {
            return Err(CommandError::err(
                "SCRIPT FLUSH only support SYNC|ASYNC option",
            ))
        }
    }
    engine(cx)?.lock().flush();
    Ok(Frame::ok())
}

// Command: SCRIPT HELP
fn script_help(_cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "SCRIPT",
        &[
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    ))
}

// Command: SCRIPT KILL
// > SCRIPT KILL   => (error) NOTBUSY No scripts in execution right now.
fn script_kill(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    cx.server.script_kill(true)?;
    Ok(Frame::ok())
}

// Command: SCRIPT LOAD
// > SCRIPT LOAD "return 1"   => "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
fn script_load(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let sha = engine(cx)?
        .lock()
        .load(&a[2])
        .map_err(CommandError::Other)?;
    Ok(Frame::Bulk(Bytes::from(sha)))
}

/// Where a script comes from.
enum Source {
    /// `EVAL`: the body, compiled and cached on first use.
    Body,
    /// `EVALSHA`: a script already cached.
    Sha,
    /// `FCALL`: a function of a loaded library.
    Function,
}

fn engine<'a>(cx: &Cx<'a>) -> Result<&'a parking_lot::Mutex<shoal_script::Engine>, CommandError> {
    cx.server
        .script_engine()
        .ok_or_else(|| CommandError::err("scripting is not available"))
}

fn run(cx: &mut Cx<'_>, a: &[Bytes], source: Source, read_only: bool) -> CmdResult {
    let numkeys = args::int(&a[2])?;
    if numkeys < 0 {
        return Err(CommandError::err("Number of keys can't be negative"));
    }
    let rest = &a[3..];
    if numkeys as u64 > rest.len() as u64 {
        return Err(CommandError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    let (keys, argv) = rest.split_at(numkeys as usize);
    let mut vm = engine(cx)?.lock();
    let mut read_only = read_only;
    let sha = match source {
        Source::Function => {
            let name = String::from_utf8_lossy(&a[1]).into_owned();
            let info = vm
                .function_info(&name)
                .ok_or_else(|| CommandError::err("Function not found"))?;
            if read_only && !info.no_writes {
                return Err(CommandError::err(
                    "Can not execute a script with write flag using *_ro command.",
                ));
            }
            // A `no-writes` function is refused writes whichever command called it.
            read_only |= info.no_writes;
            name
        }
        Source::Body => vm.load(&a[1]).map_err(CommandError::Other)?,
        Source::Sha => {
            let sha = String::from_utf8_lossy(&a[1]).to_ascii_lowercase();
            if !vm.exists(&sha) {
                return Err(CommandError::Other(
                    "NOSCRIPT No matching script. Please use EVAL.".into(),
                ));
            }
            sha
        }
    };
    let mut client = script_client(cx.client);
    let mut host = ScriptHost {
        engine: Engine {
            table: cx.table,
            ks: cx.ks,
            server: cx.server,
        },
        client: &mut client,
        journal: &mut cx.journal,
        nested: Vec::new(),
        now_us: cx.now_us,
        read_only,
    };
    let is_function = matches!(source, Source::Function);
    cx.server.script_begin(!is_function);
    let reply = if is_function {
        vm.fcall(&sha, keys, argv, &mut host)
    } else {
        vm.run(&sha, keys, argv, &mut host)
    };
    cx.server.script_end();
    let nested = std::mem::take(&mut host.nested);
    cx.client.nested.extend(nested);
    reply.ok_or(CommandError::Other(
        "NOSCRIPT No matching script. Please use EVAL.".into(),
    ))
}

/// The client a script's commands run as: the caller's database and identity, nothing that
/// belongs to the caller's session (transaction, watches, tracking), and never blocking.
fn script_client(caller: &ClientState) -> ClientState {
    let mut c = caller.clone();
    c.multi = None;
    c.watching = None;
    c.tracking = None;
    c.tracking_caching = false;
    c.nested = Vec::new();
    c.action = None;
    c.no_block = true;
    c.woken = false;
    c
}

/// What `redis.call` reaches: the dispatcher's nested path, after the checks Redis makes on
/// commands called from scripts.
struct ScriptHost<'e, 'c> {
    engine: Engine<'e>,
    client: &'c mut ClientState,
    journal: &'c mut Journal,
    nested: Vec<Nested>,
    now_us: u64,
    read_only: bool,
}

impl shoal_script::Host for ScriptHost<'_, '_> {
    fn call(&mut self, args: Vec<Bytes>, resp: u8) -> Frame {
        let spec = match resolve(self.engine.table, &args) {
            Ok(spec) => spec,
            Err((None, _)) => {
                return Frame::error("ERR Unknown Redis command called from script");
            }
            Err((Some(_), CommandError::WrongArity(_))) => {
                return Frame::error("ERR Wrong number of args calling Redis command from script");
            }
            Err((Some(_), e)) => return e.to_frame(),
        };
        if spec.flags.has(Flags::NOSCRIPT) {
            return Frame::error("ERR This Redis command is not allowed from script");
        }
        if self.read_only && spec.flags.has(Flags::WRITE) {
            return Frame::error("ERR Write commands are not allowed from read-only scripts.");
        }
        self.client.protocol = if resp == 3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        };
        let ex = self.engine.execute_nested(self.client, &args, self.now_us);
        if ex.journal.dirty > 0 {
            self.engine.server.script_wrote();
        }
        self.journal.absorb(ex.journal);
        self.nested.push(Nested {
            spec: ex.spec,
            args,
            error: ex.error,
            rejected: ex.rejected,
        });
        ex.reply
    }
}
