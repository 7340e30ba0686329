//! The dispatcher: everything that happens around a handler, exactly once, driven by the spec.
//!
//! Lookup, subcommand resolution, arity, authentication, the `maxmemory` check, key extraction and
//! stripe locking happen here, so handlers only parse their arguments and compute a reply. What a
//! command changed comes back in its [`Journal`] for the server to account and propagate.

use bytes::Bytes;
use shoal_resp::Frame;
use shoal_storage::{EvictOutcome, Journal, Keyspace};

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
    pub fn execute_resolved(
        &self,
        resolved: Resolved,
        client: &mut ClientState,
        args: &[Bytes],
        now_us: u64,
    ) -> Executed {
        let Engine { table, ks, server } = *self;
        let now = now_us / 1000;
        let reject = |spec, err: CommandError| Executed {
            reply: err.to_frame(),
            spec,
            error: Some(err),
            rejected: true,
            journal: Journal::default(),
        };
        let spec = match resolved {
            Ok(s) => s,
            Err((spec, e)) => return reject(spec, e),
        };
        if !client.authenticated && !spec.flags.has(Flags::NO_AUTH) {
            return reject(Some(spec), CommandError::NoAuth);
        }
        let mut journal = Journal::default();
        if ks.eviction.snapshot().maxmemory > 0
            && ks.evict_if_needed(now, &mut journal) == EvictOutcome::OverLimit
            && spec.flags.has(Flags::DENYOOM)
        {
            let mut ex = reject(Some(spec), CommandError::Oom);
            ex.journal = journal;
            return ex;
        }
        let locked = match spec.keys {
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
        match result {
            Ok(reply) => Executed {
                reply,
                spec: Some(spec),
                error: None,
                rejected: false,
                journal,
            },
            Err(e) => Executed {
                reply: e.to_frame(),
                spec: Some(spec),
                error: Some(e),
                rejected: false,
                journal,
            },
        }
    }
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
