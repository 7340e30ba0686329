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
    /// Not allowed inside `MULTI`.
    pub const NO_MULTI: Flags = Flags(1 << 15);
    /// A pub/sub command (`@pubsub`).
    pub const PUBSUB: Flags = Flags(1 << 16);

    /// The names `COMMAND INFO` shows, in Redis's order. `may_replicate` is missing on purpose:
    /// Redis 7.0 keeps that flag internal and never lists it.
    const NAMES: [(Flags, &'static str); 16] = [
        (Flags::WRITE, "write"),
        (Flags::READONLY, "readonly"),
        (Flags::DENYOOM, "denyoom"),
        (Flags::ADMIN, "admin"),
        (Flags::PUBSUB, "pubsub"),
        (Flags::NOSCRIPT, "noscript"),
        (Flags::BLOCKING, "blocking"),
        (Flags::LOADING, "loading"),
        (Flags::STALE, "stale"),
        (Flags::SKIP_MONITOR, "skip_monitor"),
        (Flags::SKIP_SLOWLOG, "skip_slowlog"),
        (Flags::FAST, "fast"),
        (Flags::NO_AUTH, "no_auth"),
        (Flags::NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (Flags::NO_MULTI, "no_multi"),
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
    /// The keys after a `STREAMS` keyword found from index `from` on: half of the arguments
    /// after it (the other half are IDs), as Redis's `keyword` begin-search with a `range`
    /// find-keys limited to half (`XREAD`, `XREADGROUP`). Shown as `movablekeys`.
    Streams { from: i32 },
}

/// How a group of keys is used: the flags of its `COMMAND INFO` key spec, named after Redis's
/// key-spec flags (`RO`/`RW`/`OW`/`RM` for the whole value, then what happens to the data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAccess {
    /// Reads the value (`RO ACCESS`).
    Read,
    /// Inspects metadata only, such as the length or the TTL (`RO`).
    Meta,
    /// Overwrites or creates, whatever was there (`OW UPDATE`).
    Overwrite,
    /// Creates only when the key is missing (`OW INSERT`: `SETNX`, `RENAMENX`'s destination).
    Create,
    /// Adds data without reading it (`RW INSERT`: `LPUSH`, `SADD`, `APPEND`).
    Insert,
    /// Modifies data without returning it (`RW UPDATE`: `HSET`, `ZADD`, `EXPIRE`).
    Update,
    /// Reads and modifies (`RW ACCESS UPDATE`).
    ReadWrite,
    /// Reads, and may rewrite the representation without changing the data (`RW ACCESS`:
    /// `PFCOUNT` caches its cardinality).
    ReadCache,
    /// Reads and adds data (`RW ACCESS INSERT`: `PFMERGE`'s destination).
    ReadInsert,
    /// Removes part of the value without returning it (`RW DELETE`: `HDEL`, `LTRIM`).
    Delete,
    /// Reads and removes part of the value, deleting the key when emptied (`LPOP`, `ZPOPMIN`,
    /// `GETDEL`): `RW ACCESS DELETE`.
    Pop,
    /// Deletes the whole key (`RM DELETE`).
    Remove,
    /// Overwrites, or reads too when an optional argument asks for the old value (`SET ... GET`):
    /// `RW ACCESS UPDATE VARIABLE_FLAGS`.
    OverwriteOrRead,
    /// Reads, or modifies too when a subcommand writes (`BITFIELD`): `RW ACCESS UPDATE
    /// VARIABLE_FLAGS`.
    ReadOrWrite,
    /// Not a key at all, though declared where keys would be (`NOT_KEY`): the shard channels
    /// of `SSUBSCRIBE` and `SPUBLISH`, which a cluster routes by slot. Never locked, never
    /// reported by `COMMAND GETKEYS`.
    NotKey,
}

impl KeyAccess {
    /// The key-spec flags `COMMAND INFO` lists.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            KeyAccess::Read => &["RO", "access"],
            KeyAccess::Meta => &["RO"],
            KeyAccess::Overwrite => &["OW", "update"],
            KeyAccess::Create => &["OW", "insert"],
            KeyAccess::Insert => &["RW", "insert"],
            KeyAccess::Update => &["RW", "update"],
            KeyAccess::ReadWrite => &["RW", "access", "update"],
            KeyAccess::ReadCache => &["RW", "access"],
            KeyAccess::ReadInsert => &["RW", "access", "insert"],
            KeyAccess::Delete => &["RW", "delete"],
            KeyAccess::Pop => &["RW", "access", "delete"],
            KeyAccess::Remove => &["RM", "delete"],
            KeyAccess::OverwriteOrRead | KeyAccess::ReadOrWrite => {
                &["RW", "access", "update", "variable_flags"]
            }
            KeyAccess::NotKey => &["not_key"],
        }
    }

    /// The flags of the keys of one concrete invocation (`COMMAND GETKEYSANDFLAGS`): variable
    /// flags are resolved from the arguments (`args[0]` is the command name), as Redis's
    /// `setGetKeys` and `bitfieldGetKeys` do.
    pub fn flags_for(self, args: &[Bytes]) -> &'static [&'static str] {
        match self {
            KeyAccess::OverwriteOrRead
                if args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"GET")) =>
            {
                &["RW", "access", "update"]
            }
            KeyAccess::OverwriteOrRead => &["OW", "update"],
            KeyAccess::ReadOrWrite if bitfield_reads_only(args) => &["RO", "access"],
            KeyAccess::ReadOrWrite => &["RW", "access", "update"],
            other => other.flags(),
        }
    }
}

/// True when a `BITFIELD key op...` invocation only has `GET` and `OVERFLOW` operations with all
/// their arguments; anything else (a write, a syntax error) counts as a write, as in Redis.
fn bitfield_reads_only(args: &[Bytes]) -> bool {
    let mut i = 2;
    while let Some(op) = args.get(i) {
        let remaining = args.len() - i - 1;
        if op.eq_ignore_ascii_case(b"GET") && remaining >= 2 {
            i += 3;
        } else if op.eq_ignore_ascii_case(b"OVERFLOW") && remaining >= 1 {
            i += 2;
        } else {
            return false;
        }
    }
    true
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
    Pubsub,
    Scripting,
    Transactions,
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
            Group::Pubsub => "pubsub",
            Group::Scripting => "scripting",
            Group::Transactions => "transactions",
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
    /// How the keys are used (for key specs), or the first key only when `rest` is set.
    pub access: KeyAccess,
    /// How the keys after the first are used, when they are used differently: a source then
    /// its destination (`LMOVE`), a destination then its sources (`SUNIONSTORE`, `BITOP`).
    /// `COMMAND INFO` then shows two key specs. Counted keys with a destination
    /// (`ZUNIONSTORE`) always have two, and their sources are read unless this says otherwise.
    pub rest: Option<KeyAccess>,
    /// The note of the (first) key spec, explaining unusual flags; empty for none.
    pub key_note: &'static str,
    /// Redis's command tips (`nondeterministic_output`, `request_policy:all_shards`...), which
    /// tell clients and cluster proxies how to treat the reply.
    pub tips: &'static [&'static str],
    pub group: Group,
    /// ACL categories beyond those implied by the flags, without the `@`.
    pub acl: &'static [&'static str],
    pub summary: &'static str,
    pub since: &'static str,
    pub complexity: &'static str,
    pub subcommands: &'static [CommandSpec],
    /// Shoal's own: the command passes the keyspace gate alone (`EXEC`, scripts), so the
    /// commands it runs see no other client's command in between.
    pub exclusive: bool,
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
            rest: None,
            key_note: "",
            tips: &[],
            group,
            acl: &[],
            summary: "",
            since: "",
            complexity: "O(1)",
            subcommands: &[],
            exclusive: false,
            handler,
        }
    }

    /// Makes the command run alone (see [`CommandSpec::exclusive`]).
    pub const fn exclusive(self) -> CommandSpec {
        CommandSpec {
            exclusive: true,
            ..self
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

    /// Sets how the keys after the first are used, when not as the first (see `rest`).
    pub const fn other_keys(self, access: KeyAccess) -> CommandSpec {
        CommandSpec {
            rest: Some(access),
            ..self
        }
    }

    /// Sets the note of the (first) key spec.
    pub const fn key_note(self, key_note: &'static str) -> CommandSpec {
        CommandSpec { key_note, ..self }
    }

    /// Adds ACL categories to those the flags and the group imply.
    pub const fn acl(self, acl: &'static [&'static str]) -> CommandSpec {
        CommandSpec { acl, ..self }
    }

    /// Sets the command tips.
    pub const fn tips(self, tips: &'static [&'static str]) -> CommandSpec {
        CommandSpec { tips, ..self }
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
        // As in Redis, a read-only scripting command (`EVAL_RO`) is not `@read`: what it reads
        // is up to the script.
        if self.flags.has(Flags::READONLY) && self.group != Group::Scripting {
            cats.push("read");
        }
        if self.flags.has(Flags::ADMIN) {
            cats.extend(["admin", "dangerous"]);
        }
        if self.flags.has(Flags::BLOCKING) {
            cats.push("blocking");
        }
        if self.flags.has(Flags::PUBSUB) {
            cats.push("pubsub");
        }
        cats.push(if self.flags.has(Flags::FAST) {
            "fast"
        } else {
            "slow"
        });
        // A container (`OBJECT`, `CLIENT`) is only `@slow`, whatever its group: its
        // subcommands carry the categories.
        let group = if self.subcommands.is_empty() {
            Some(self.group)
        } else {
            None
        };
        match group {
            // Pub/sub commands are `@pubsub` by their flag: `PUBSUB HELP` is not.
            None | Some(Group::Server) | Some(Group::Pubsub) => {}
            Some(Group::String) => cats.push("string"),
            Some(Group::Generic) => cats.push("keyspace"),
            Some(Group::Connection) => cats.push("connection"),
            Some(Group::Hash) => cats.push("hash"),
            Some(Group::List) => cats.push("list"),
            Some(Group::Set) => cats.push("set"),
            Some(Group::SortedSet) => cats.push("sortedset"),
            Some(Group::Bitmap) => cats.push("bitmap"),
            Some(Group::HyperLogLog) => cats.push("hyperloglog"),
            Some(Group::Geo) => cats.push("geo"),
            Some(Group::Stream) => cats.push("stream"),
            Some(Group::Transactions) => cats.push("transaction"),
            Some(Group::Scripting) => cats.push("scripting"),
        }
        let rank = |c: &str| ORDER.iter().position(|o| *o == c).unwrap_or(ORDER.len());
        cats.sort_by_key(|c| rank(c));
        cats.dedup();
        cats.into_iter().map(|c| format!("@{c}")).collect()
    }

    /// How the key at position `at` of `args` is used, for `COMMAND GETKEYSANDFLAGS`.
    pub fn key_flags(&self, args: &[Bytes], at: usize) -> &'static [&'static str] {
        let first = match self.keys {
            Keys::Range { first, .. } => first.max(1) as usize,
            // GEORADIUS ... STORE: the source is read, the destinations are overwritten.
            Keys::Store { .. } if at == 1 => return KeyAccess::Read.flags(),
            Keys::Store { .. } => return KeyAccess::Overwrite.flags(),
            Keys::Counted { dest: true, .. } => 1,
            Keys::Counted { dest: false, .. } | Keys::None | Keys::Streams { .. } => {
                return self.access.flags_for(args)
            }
        };
        match (at == first, self.rest, self.keys) {
            (true, _, _) | (false, None, Keys::Range { .. }) => self.access.flags_for(args),
            (false, Some(rest), _) => rest.flags_for(args),
            (false, None, _) => KeyAccess::Read.flags(),
        }
    }

    /// The positions of the key arguments in `args` (name at 0). A count of keys that is not a
    /// positive integer yields no counted keys: the handler reports the error.
    pub fn key_positions(&self, args: &[Bytes]) -> KeyPositions {
        let argc = args.len() as i64;
        let (dest, first, last, step) = match self.keys {
            _ if self.access == KeyAccess::NotKey => (None, 1, 0, 1),
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
            Keys::Streams { from } => {
                let at = (from.max(1) as usize..args.len())
                    .find(|&i| args[i].eq_ignore_ascii_case(b"STREAMS"));
                match at {
                    Some(k) => {
                        let n = (args.len() - k - 1) / 2;
                        (None, k as i64 + 1, (k + n) as i64, 1)
                    }
                    None => (None, 1, 0, 1),
                }
            }
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
