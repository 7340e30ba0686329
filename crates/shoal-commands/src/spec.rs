//! Command specs: everything the server knows about a command, declared once in its family's file.
//!
//! The same spec answers `COMMAND`, `COMMAND INFO|DOCS|LIST|GETKEYS`, checks arity, finds the keys
//! to lock (and, later, to route to slots and to check ACLs), and names the handler.

use bytes::Bytes;

use crate::cx::Cx;
use crate::error::CmdResult;

/// Command flags, with the names `COMMAND INFO` reports. Each flag has one meaning, read by the
/// dispatcher or by `COMMAND`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(pub u32);

impl Flags {
    /// May modify the keyspace.
    pub const WRITE: Flags = Flags(1 << 0);
    /// Never modifies the keyspace.
    pub const READONLY: Flags = Flags(1 << 1);
    /// May grow memory: refused with `-OOM` when over `maxmemory` and nothing can be evicted.
    pub const DENYOOM: Flags = Flags(1 << 2);
    /// Administrative command.
    pub const ADMIN: Flags = Flags(1 << 3);
    /// Not allowed from scripts.
    pub const NOSCRIPT: Flags = Flags(1 << 4);
    /// Allowed while the dataset is loading.
    pub const LOADING: Flags = Flags(1 << 5);
    /// Allowed on a replica with stale data.
    pub const STALE: Flags = Flags(1 << 6);
    /// Runs in O(1) or O(log N).
    pub const FAST: Flags = Flags(1 << 7);
    /// Allowed before authentication.
    pub const NO_AUTH: Flags = Flags(1 << 8);
    /// Not shown by `MONITOR`.
    pub const SKIP_MONITOR: Flags = Flags(1 << 9);
    /// Not recorded in the slow log.
    pub const SKIP_SLOWLOG: Flags = Flags(1 << 10);
    /// Allowed while a script is busy.
    pub const ALLOW_BUSY: Flags = Flags(1 << 11);
    /// May be replicated even though it is not a write (e.g. `PING` on a primary).
    pub const MAY_REPLICATE: Flags = Flags(1 << 12);
    /// May block the client.
    pub const BLOCKING: Flags = Flags(1 << 13);
    /// Key arguments are optional.
    pub const NO_MANDATORY_KEYS: Flags = Flags(1 << 14);

    const NAMES: [(Flags, &'static str); 15] = [
        (Flags::WRITE, "write"),
        (Flags::READONLY, "readonly"),
        (Flags::DENYOOM, "denyoom"),
        (Flags::ADMIN, "admin"),
        (Flags::NOSCRIPT, "noscript"),
        (Flags::BLOCKING, "blocking"),
        (Flags::LOADING, "loading"),
        (Flags::STALE, "stale"),
        (Flags::SKIP_MONITOR, "skip_monitor"),
        (Flags::SKIP_SLOWLOG, "skip_slowlog"),
        (Flags::FAST, "fast"),
        (Flags::NO_AUTH, "no_auth"),
        (Flags::MAY_REPLICATE, "may_replicate"),
        (Flags::NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (Flags::ALLOW_BUSY, "allow_busy"),
    ];

    /// The union of two flag sets, usable in `const` tables.
    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// True when every flag of `other` is set.
    pub const fn has(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flag names, in Redis's order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .iter()
            .filter(move |(f, _)| self.has(*f))
            .map(|(_, n)| *n)
    }
}

/// Where a command's keys are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    /// No key arguments.
    None,
    /// Keys at `first`, `first + step`, ... up to `last` (negative counts from the end, -1 = last
    /// argument), as in Redis's legacy (first, last, step) triple.
    Range { first: i32, last: i32, step: i32 },
    /// A count of keys at index `numkeys_at`, then that many keys, as Redis's `keynum` key spec
    /// (`ZUNION numkeys key ...`, `LMPOP`, `SINTERCARD`); with `dest`, also a destination key at
    /// index 1 before the count (`ZUNIONSTORE dest numkeys key ...`). `COMMAND INFO` shows these
    /// commands as `movablekeys`.
    Counted { numkeys_at: i32, dest: bool },
    /// A key at index 1, plus the key after the first `STORE` and the first `STOREDIST` keyword
    /// found from index `from` on (GEORADIUS, GEORADIUSBYMEMBER), as Redis's `keyword` key
    /// specs find them. `COMMAND INFO` shows these commands as `movablekeys`.
    Store { from: i32 },
}

/// How a key is used, for `COMMAND INFO` key specs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAccess {
    /// Read-only access (`RO ACCESS`).
    Read,
    /// Overwrites or creates (`OW UPDATE`).
    Overwrite,
    /// Reads and modifies (`RW ACCESS UPDATE`).
    ReadWrite,
    /// Modifies without returning data from the key (`RW UPDATE`: GEOADD, ZADD).
    Update,
    /// Deletes (`RM DELETE`).
    Remove,
    /// Reads and removes part of the value, deleting the key when emptied (`LPOP`, `ZPOPMIN`):
    /// `RW ACCESS DELETE`.
    Pop,
    /// Inspects metadata only (`RO`).
    Meta,
    /// Overwrites, or reads too when an optional argument asks for the old value (`SET ... GET`):
    /// `RW ACCESS UPDATE VARIABLE_FLAGS`.
    OverwriteOrRead,
}

impl KeyAccess {
    /// The key-spec flags `COMMAND INFO` lists.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            KeyAccess::Read => &["RO", "access"],
            KeyAccess::Overwrite => &["OW", "update"],
            KeyAccess::ReadWrite => &["RW", "access", "update"],
            KeyAccess::Update => &["RW", "update"],
            KeyAccess::Remove => &["RM", "delete"],
            KeyAccess::Pop => &["RW", "access", "delete"],
            KeyAccess::Meta => &["RO"],
            KeyAccess::OverwriteOrRead => &["RW", "access", "update", "variable_flags"],
        }
    }

    /// The key-spec note `COMMAND INFO` shows, if any.
    pub fn notes(self) -> Option<&'static str> {
        match self {
            KeyAccess::OverwriteOrRead => Some("RW and ACCESS due to the optional `GET` argument"),
            _ => None,
        }
    }

    /// The flags of the keys of one concrete invocation (`COMMAND GETKEYSANDFLAGS`): variable
    /// flags are resolved by looking for the `GET` argument.
    pub fn flags_for(self, args: &[bytes::Bytes]) -> &'static [&'static str] {
        match self {
            KeyAccess::OverwriteOrRead
                if args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"GET")) =>
            {
                &["RW", "access", "update"]
            }
            KeyAccess::OverwriteOrRead => &["OW", "update"],
            other => other.flags(),
        }
    }
}

/// The command group, as `COMMAND DOCS` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    String,
    Generic,
    Connection,
    Server,
    Hash,
    List,
    Set,
    SortedSet,
    Bitmap,
    HyperLogLog,
    Geo,
    Stream,
}

impl Group {
    /// The group name.
    pub fn name(self) -> &'static str {
        match self {
            Group::String => "string",
            Group::Generic => "generic",
            Group::Connection => "connection",
            Group::Server => "server",
            Group::Hash => "hash",
            Group::List => "list",
            Group::Set => "set",
            Group::SortedSet => "sorted-set",
            Group::Bitmap => "bitmap",
            Group::HyperLogLog => "hyperloglog",
            Group::Geo => "geo",
            Group::Stream => "stream",
        }
    }
}

/// A handler: parses its arguments, runs on the command's view of the keyspace, returns a reply.
pub type Handler = fn(&mut Cx<'_>, &[Bytes]) -> CmdResult;

/// Everything about one command.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// Lower-case name (`get`), or `container|sub` for subcommands.
    pub name: &'static str,
    /// Redis arity: exact argument count including the name when positive, minimum when negative.
    pub arity: i32,
    pub flags: Flags,
    pub keys: Keys,
    /// How the keys are used (for key specs).
    pub access: KeyAccess,
    pub group: Group,
    /// ACL categories beyond those implied by the flags, without the `@`.
    pub acl: &'static [&'static str],
    pub summary: &'static str,
    pub since: &'static str,
    pub complexity: &'static str,
    pub subcommands: &'static [CommandSpec],
    pub handler: Handler,
}

impl CommandSpec {
    /// A command with no flags, no keys and no documentation; the setters below fill those in,
    /// so a family's table reads as one chained line per command.
    pub const fn new(
        name: &'static str,
        group: Group,
        arity: i32,
        handler: Handler,
    ) -> CommandSpec {
        CommandSpec {
            name,
            arity,
            flags: Flags(0),
            keys: Keys::None,
            access: KeyAccess::Meta,
            group,
            acl: &[],
            summary: "",
            since: "",
            complexity: "O(1)",
            subcommands: &[],
            handler,
        }
    }

    /// Sets the flags.
    pub const fn flags(self, flags: Flags) -> CommandSpec {
        CommandSpec { flags, ..self }
    }

    /// Sets where the keys are and how they are used.
    pub const fn keys(self, keys: Keys, access: KeyAccess) -> CommandSpec {
        CommandSpec {
            keys,
            access,
            ..self
        }
    }

    /// Sets the summary and the Redis version that introduced the command.
    pub const fn doc(self, summary: &'static str, since: &'static str) -> CommandSpec {
        CommandSpec {
            summary,
            since,
            ..self
        }
    }

    /// Sets the complexity `COMMAND DOCS` reports.
    pub const fn complexity(self, complexity: &'static str) -> CommandSpec {
        CommandSpec { complexity, ..self }
    }

    /// Makes this a container of subcommands.
    pub const fn subcommands(self, subcommands: &'static [CommandSpec]) -> CommandSpec {
        CommandSpec {
            subcommands,
            complexity: "Depends on subcommand.",
            ..self
        }
    }

    /// True when `argc` (name included) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let a = self.arity as i64;
        if a >= 0 {
            argc == a
        } else {
            argc >= -a
        }
    }

    /// The ACL categories, implied ones included, in Redis's category order (which is how
    /// `COMMAND INFO` lists them).
    pub fn acl_categories(&self) -> Vec<String> {
        const ORDER: &[&str] = &[
            "keyspace",
            "read",
            "write",
            "set",
            "sortedset",
            "list",
            "hash",
            "string",
            "bitmap",
            "hyperloglog",
            "geo",
            "stream",
            "pubsub",
            "admin",
            "fast",
            "slow",
            "blocking",
            "dangerous",
            "connection",
            "transaction",
            "scripting",
        ];
        let mut cats: Vec<&str> = self.acl.to_vec();
        if self.flags.has(Flags::WRITE) {
            cats.push("write");
        }
        if self.flags.has(Flags::READONLY) {
            cats.push("read");
        }
        if self.flags.has(Flags::ADMIN) {
            cats.extend(["admin", "dangerous"]);
        }
        if self.flags.has(Flags::BLOCKING) {
            cats.push("blocking");
        }
        cats.push(if self.flags.has(Flags::FAST) {
            "fast"
        } else {
            "slow"
        });
        match self.group {
            Group::String => cats.push("string"),
            Group::Generic => cats.push("keyspace"),
            Group::Connection => cats.push("connection"),
            Group::Server => {}
            Group::Hash => cats.push("hash"),
            Group::List => cats.push("list"),
            Group::Set => cats.push("set"),
            Group::SortedSet => cats.push("sortedset"),
            Group::Bitmap => cats.push("bitmap"),
            Group::HyperLogLog => cats.push("hyperloglog"),
            Group::Geo => cats.push("geo"),
            Group::Stream => cats.push("stream"),
        }
        let rank = |c: &str| ORDER.iter().position(|o| *o == c).unwrap_or(ORDER.len());
        cats.sort_by_key(|c| rank(c));
        cats.dedup();
        cats.into_iter().map(|c| format!("@{c}")).collect()
    }

    /// The positions of the key arguments in `args` (name at 0). A count of keys that is not a
    /// positive integer yields no counted keys: the handler reports the error.
    pub fn key_positions(&self, args: &[Bytes]) -> KeyPositions {
        let argc = args.len() as i64;
        let (dest, first, last, step) = match self.keys {
            Keys::None => (None, 1, 0, 1),
            Keys::Range { first, last, step } => {
                let last = if last < 0 {
                    argc + last as i64
                } else {
                    last as i64
                };
                (None, first.max(1) as i64, last, step.max(1) as i64)
            }
            Keys::Counted { numkeys_at, dest } => {
                let at = numkeys_at as usize;
                let n = args
                    .get(at)
                    .and_then(|a| crate::args::parse_i64(a))
                    .filter(|n| *n > 0)
                    .unwrap_or(0);
                let first = numkeys_at as i64 + 1;
                let dest = (dest && argc > 1).then_some(1);
                (dest, first, first.saturating_add(n) - 1, 1)
            }
            Keys::Store { .. } => (None, 1, 1, 1),
        };
        let mut stored = [None, None];
        if let Keys::Store { from } = self.keys {
            // Like Redis's keyword search, the last argument is never taken for a keyword: it
            // would have no key after it.
            let upto = args.len().saturating_sub(1);
            for (slot, word) in stored.iter_mut().zip(["STORE", "STOREDIST"]) {
                *slot = (from.max(1) as usize..upto)
                    .find(|&i| args[i].eq_ignore_ascii_case(word.as_bytes()))
                    .map(|i| i + 1);
            }
        }
        KeyPositions {
            dest,
            next: first,
            end: last.min(argc - 1),
            step,
            stored,
        }
    }
}

/// The key positions of one invocation, in argument order.
pub struct KeyPositions {
    dest: Option<usize>,
    next: i64,
    end: i64,
    step: i64,
    /// Keys found after keywords ([`Keys::Store`]), given after the others.
    stored: [Option<usize>; 2],
}

impl Iterator for KeyPositions {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if let Some(d) = self.dest.take() {
            return Some(d);
        }
        if self.next > self.end {
            return self.stored.iter_mut().find_map(Option::take);
        }
        let at = self.next;
        self.next += self.step;
        Some(at as usize)
    }
}
