//! The dispatcher: everything that happens around a handler, exactly once, driven by the spec.
//!
//! Lookup, subcommand resolution, arity, authentication, the `maxmemory` check, key extraction and
//! stripe locking happen here, so handlers only parse their arguments and compute a reply. What a
//! command changed comes back in its [`Journal`] for the server to account and propagate.

use bytes::Bytes;
use shoal_resp::Frame;
use shoal_storage::{EvictOutcome, ExclusiveEntry, Journal, Keyspace, SharedEntry};

use crate::cx::{take_journal, ClientState, Cx, ServerOps};
use crate::error::CommandError;
use crate::spec::{CommandSpec, Flags, Keys};
use crate::table::{subcommand, CommandTable};

/// The outcome of one command.
pub struct Executed {
    pub reply: Frame,
    /// The command (or subcommand) that ran, if it was found.
    pub spec: Option<&'static CommandSpec>,
    /// The error, if the reply is one.
    pub error: Option<CommandError>,
    /// True when the command was refused before its handler ran (`rejected_calls`).
    pub rejected: bool,
    /// True when the command was queued for `EXEC` rather than run.
    pub queued: bool,
    pub journal: Journal,
}

/// The last command name a connection sent, byte for byte, and its spec. Clients repeat their
/// commands, and comparing a short name exactly is cheaper than the table's case-insensitive
/// lookup.
#[derive(Default)]
pub struct NameCache {
    name: [u8; NameCache::MAX],
    len: usize,
    spec: Option<&'static CommandSpec>,
}

impl NameCache {
    /// Longest name remembered.
    const MAX: usize = 16;

    fn get(&mut self, table: &CommandTable, name: &[u8]) -> Option<&'static CommandSpec> {
        if let Some(spec) = self.spec {
            if name.len() == self.len && name == &self.name[..self.len] {
                return Some(spec);
            }
        }
        let spec = table.get(name)?;
        if name.len() <= Self::MAX {
            self.name[..name.len()].copy_from_slice(name);
            self.len = name.len();
            self.spec = Some(spec);
        }
        Some(spec)
    }
}

/// Resolves `args` to a command or subcommand spec, checking arity.
pub fn resolve(table: &CommandTable, args: &[Bytes]) -> Resolved {
    resolve_with(table, args, &mut NameCache::default())
}

/// [`resolve`], looking the command name up through a connection's [`NameCache`].
pub fn resolve_with(table: &CommandTable, args: &[Bytes], names: &mut NameCache) -> Resolved {
    let Some(name) = args.first() else {
        return Err((None, CommandError::err("empty command")));
    };
    let Some(spec) = names.get(table, name) else {
        return Err((None, unknown_command(args)));
    };
    if !spec.subcommands.is_empty() {
        if args.len() < 2 && spec.arity == -1 {
            // `COMMAND` alone is a command of its own.
            return Ok(spec);
        }
        if args.len() < 2 {
            return Err((Some(spec), CommandError::WrongArity(spec.name.to_string())));
        }
        let Some(sub) = subcommand(spec, &args[1]) else {
            return Err((
                Some(spec),
                CommandError::err(format!(
                    "unknown subcommand '{}'. Try {} HELP.",
                    truncate(&args[1], 128),
                    spec.name.to_ascii_uppercase()
                )),
            ));
        };
        if !sub.arity_ok(args.len()) {
            return Err((Some(sub), CommandError::WrongArity(sub.name.to_string())));
        }
        return Ok(sub);
    }
    if !spec.arity_ok(args.len()) {
        return Err((Some(spec), CommandError::WrongArity(spec.name.to_string())));
    }
    Ok(spec)
}

/// Formats an argument the way Redis's `%.*s` does: at most `max` bytes, stopping at a NUL.
fn truncate(b: &[u8], max: usize) -> String {
    let b = &b[..b.len().min(max)];
    let b = &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())];
    let s = String::from_utf8_lossy(b).into_owned();
    s.replace(['\r', '\n'], " ")
}

/// Redis's reply to an unknown command: the name and the first arguments, 128 characters at most.
fn unknown_command(args: &[Bytes]) -> CommandError {
    let mut rest = String::new();
    for a in &args[1..] {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        rest.push_str(&format!("'{}' ", truncate(a, room)));
    }
    CommandError::err(format!(
        "unknown command '{}', with args beginning with: {}",
        truncate(&args[0], 128),
        rest
    ))
}

/// The outcome of [`resolve`].
pub type Resolved = Result<&'static CommandSpec, (Option<&'static CommandSpec>, CommandError)>;

/// What commands run against: the command table, the keyspace and the server's services.
#[derive(Clone, Copy)]
pub struct Engine<'a> {
    pub table: &'a CommandTable,
    pub ks: &'a Keyspace,
    pub server: &'a dyn ServerOps,
}

impl<'a> Engine<'a> {
    /// Runs one command at `now_us` (Unix microseconds) to completion.
    pub fn execute(&self, client: &mut ClientState, args: &[Bytes], now_us: u64) -> Executed {
        self.execute_resolved(resolve(self.table, args), client, args, now_us)
    }

    /// Runs a command already resolved with [`resolve`] (the connection resolves early to show
    /// the command in `CLIENT LIST` and to hold writes during `CLIENT PAUSE WRITE`).
    ///
    /// Between `MULTI` and `EXEC` a command is checked and queued instead of run; a command
    /// refused then (unknown, wrong arity, `-OOM`, ...) makes `EXEC` fail with `-EXECABORT`.
    pub fn execute_resolved(
        &self,
        resolved: Resolved,
        client: &mut ClientState,
        args: &[Bytes],
        now_us: u64,
    ) -> Executed {
        let Engine { ks, .. } = *self;
        let now = now_us / 1000;
        let spec = match resolved {
            Ok(s) => s,
            Err((spec, e)) => return refuse(client, spec, e),
        };
        if !client.authenticated && !spec.flags.has(Flags::NO_AUTH) {
            return refuse(client, Some(spec), CommandError::NoAuth);
        }
        let in_multi = client.multi.is_some();
        let queue = in_multi && !runs_inside_multi(spec);
        if queue && spec.flags.has(Flags::NO_MULTI) {
            let e = CommandError::err("Command not allowed inside a transaction");
            return refuse(client, Some(spec), e);
        }
        // Every command passes the gate; `EXEC` passes it alone. Commands allowed while a script
        // is busy (`SCRIPT KILL`, `SHUTDOWN NOSAVE`, `MULTI`, ...) never change the data, so they
        // do not wait for it.
        let _gate = if spec.exclusive {
            Some(GateEntry::Exclusive(ks.gate.exclusive()))
        } else if spec.flags.has(Flags::ALLOW_BUSY) {
            None
        } else {
            Some(GateEntry::Shared(ks.gate.shared()))
        };
        let mut journal = Journal::default();
        let maxmemory = ks.eviction.snapshot().maxmemory;
        // Eviction changes the data, so a command that did not pass the gate only looks.
        let over_limit = maxmemory > 0
            && match _gate {
                Some(_) => ks.evict_if_needed(now, &mut journal) == EvictOutcome::OverLimit,
                None => ks.used_memory() as u64 > maxmemory,
            };
        if over_limit {
            // Queueing could take unbounded memory, so inside MULTI every command but the
            // ones that end it is refused when memory is over the limit, as in Redis; `EXEC` is
            // refused when a queued command would be.
            let refuse_oom = spec.flags.has(Flags::DENYOOM)
                || (in_multi && !matches!(spec.name, "exec" | "discard" | "quit" | "reset"))
                || (spec.name == "exec" && client.multi.as_ref().is_some_and(|m| m.denyoom));
            if refuse_oom {
                let mut ex = refuse(client, Some(spec), CommandError::Oom);
                ex.journal = journal;
                return ex;
            }
        }
        if queue {
            if let Some(m) = client.multi.as_mut() {
                m.writes |= spec.flags.has(Flags::WRITE);
                m.denyoom |= spec.flags.has(Flags::DENYOOM);
                m.queued.push(args.to_vec());
            }
            return Executed {
                reply: Frame::simple("QUEUED"),
                spec: Some(spec),
                error: None,
                rejected: false,
                queued: true,
                journal,
            };
        }
        self.run(spec, client, args, now_us, journal)
    }

    /// Runs a command from inside another one that already passed the gate (a command of a
    /// transaction): no gate, no eviction, no queueing.
    pub fn execute_nested(
        &self,
        client: &mut ClientState,
        args: &[Bytes],
        now_us: u64,
    ) -> Executed {
        match resolve(self.table, args) {
            Ok(spec) => self.run(spec, client, args, now_us, Journal::default()),
            Err((spec, e)) => refuse(client, spec, e),
        }
    }

    /// Locks the command's stripes and runs its handler.
    #[inline(always)]
    fn run(
        &self,
        spec: &'static CommandSpec,
        client: &mut ClientState,
        args: &[Bytes],
        now_us: u64,
        journal: Journal,
    ) -> Executed {
        let Engine { table, ks, server } = *self;
        let now = now_us / 1000;
        let locked = match spec.keys {
            // A command that runs alone (EXEC, EVAL) runs other commands, which lock their own
            // stripes: it must hold none itself, even for the keys it declares.
            _ if spec.exclusive => None,
            Keys::None => None,
            // Most commands have exactly one key: lock its stripe directly.
            Keys::Range { first, last, .. } if first == last => {
                let key = args.get(first as usize).map_or(&[][..], |k| &k[..]);
                Some(ks.lock_key(key, now))
            }
            _ => Some(ks.lock(
                spec.key_positions(args).map(|i| ks.stripe_of(&args[i])),
                now,
            )),
        };
        let mut cx = Cx {
            ks,
            server,
            client,
            table,
            now,
            now_us,
            locked,
            journal,
        };
        let result = (spec.handler)(&mut cx, args);
        let mut journal = std::mem::take(&mut cx.journal);
        if let Some(l) = cx.locked.take() {
            journal.absorb(take_journal(l));
        }
        let (reply, error) = match result {
            Ok(reply) => (reply, None),
            Err(e) => (e.to_frame(), Some(e)),
        };
        Executed {
            reply,
            spec: Some(spec),
            error,
            rejected: false,
            queued: false,
            journal,
        }
    }
}

/// Commands that run at once even between `MULTI` and `EXEC`.
fn runs_inside_multi(spec: &CommandSpec) -> bool {
    matches!(
        spec.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// A command refused before its handler ran. Inside `MULTI` that dooms the transaction.
fn refuse(
    client: &mut ClientState,
    spec: Option<&'static CommandSpec>,
    err: CommandError,
) -> Executed {
    if let Some(m) = client.multi.as_mut() {
        m.aborted = true;
    }
    Executed {
        reply: err.to_frame(),
        spec,
        error: Some(err),
        rejected: true,
        queued: false,
        journal: Journal::default(),
    }
}

/// How a command passed the keyspace gate; dropping it leaves.
enum GateEntry<'a> {
    Shared(#[allow(dead_code)] SharedEntry<'a>),
    Exclusive(#[allow(dead_code)] ExclusiveEntry<'a>),
}

/// A command run by another (`EXEC`), reported so the server counts and monitors it as Redis does.
#[derive(Debug, Clone)]
pub struct Nested {
    pub spec: Option<&'static CommandSpec>,
    pub args: Vec<Bytes>,
    pub error: Option<CommandError>,
    pub rejected: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    fn name(r: Resolved) -> Option<&'static str> {
        r.ok().map(|s| s.name)
    }

    #[test]
    fn the_name_cache_answers_only_for_the_same_bytes() {
        let table = CommandTable::new();
        let mut names = NameCache::default();
        let run = |names: &mut NameCache, w: &[&str]| name(resolve_with(&table, &args(w), names));
        assert_eq!(run(&mut names, &["get", "k"]), Some("get"));
        assert_eq!(run(&mut names, &["get", "k"]), Some("get"));
        // Another spelling or another command goes back to the table.
        assert_eq!(run(&mut names, &["GeT", "k"]), Some("get"));
        assert_eq!(run(&mut names, &["set", "k", "v"]), Some("set"));
        assert_eq!(run(&mut names, &["ge", "k"]), None);
        assert_eq!(run(&mut names, &["gett", "k"]), None);
        // Arity and subcommands are still checked on a cached name.
        assert_eq!(run(&mut names, &["get"]), None);
        assert_eq!(
            run(&mut names, &["config", "get", "port"]),
            Some("config|get")
        );
        assert_eq!(
            run(&mut names, &["config", "set", "a", "b"]),
            Some("config|set")
        );
        // Names longer than the cache holds are looked up every time.
        assert_eq!(run(&mut names, &["getnamethatisverylong"]), None);
    }
}
