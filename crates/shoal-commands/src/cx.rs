//! The execution context a handler receives: the keyspace view, the client's state and the server
//! operations it may ask for. Handlers see nothing else, in particular no socket.

use bytes::Bytes;
use shoal_resp::{Frame, Protocol};
use shoal_storage::{Garbage, Journal, Keyspace, Locked};

use crate::error::CommandError;
use crate::table::CommandTable;

/// How replies are sent (`CLIENT REPLY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    Skip,
    /// Internal: the command that set SKIP; the next one is skipped.
    SkipNext,
}

/// Something the connection must do after the reply, because only it owns the socket and timers.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Wait this long before answering (`DEBUG SLEEP`).
    Sleep(std::time::Duration),
    /// Shut the server down (`SHUTDOWN`).
    Shutdown(ShutdownOptions),
    /// Stream every command the server runs to this client (`MONITOR`).
    Monitor,
    /// Block until one of the keys changes or the deadline passes, then run the command again
    /// (`BLPOP` and the other blocking commands found nothing to serve).
    Block(BlockSpec),
    /// The replies are in this client's pub/sub mailbox, queued with the subscription changes
    /// they confirm (`SUBSCRIBE` and the other (un)subscribe commands): the connection writes
    /// nothing for the command itself and takes its mailbox from the server.
    Pubsub,
}

/// What a pub/sub (un)subscribe left: the client's subscriptions of every kind, and the
/// confirmations when the command asked for them back instead of queued (inside `EXEC`).
#[derive(Debug, Default)]
pub struct Subscriptions {
    pub count: usize,
    pub inline: Vec<Frame>,
}

/// The three kinds of pub/sub subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PubsubKind {
    /// `SUBSCRIBE`: one channel by name.
    Channel,
    /// `PSUBSCRIBE`: every channel matching a glob pattern.
    Pattern,
    /// `SSUBSCRIBE`: one shard channel by name (on a single node, a namespace of its own).
    Shard,
}

/// What a blocking command waits for. The handler returns this instead of a reply when it has
/// nothing to serve; the connection parks the client without holding any lock and re-runs the
/// command (with `args`) each time one of `keys` is written, in the order clients blocked.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockSpec {
    /// (database, key) pairs whose writes wake the client.
    pub keys: Vec<(usize, Bytes)>,
    /// Unix milliseconds after which the client gets `timeout_reply`; `None` waits forever.
    pub deadline: Option<u64>,
    /// The reply on timeout (a null array for `BLPOP`, a null bulk for `BLMOVE`, ...), already
    /// in the client's protocol.
    pub timeout_reply: Frame,
    /// The command to re-run, when it differs from the original: `XREAD ... $` re-runs with the
    /// concrete last ID it saw, so entries added while it waits are not skipped.
    pub args: Option<Vec<Bytes>>,
}

/// Options of `SHUTDOWN`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownOptions {
    pub save: Option<bool>,
    pub now: bool,
    pub force: bool,
}

/// How a client tracks keys for client-side caching (`CLIENT TRACKING ON ...`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackingMode {
    /// The client that receives the invalidations (0: this one).
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
}

/// Per-connection state that commands read and change.
#[derive(Debug, Clone)]
pub struct ClientState {
    pub id: u64,
    pub db: usize,
    pub protocol: Protocol,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub authenticated: bool,
    pub no_evict: bool,
    pub no_touch: bool,
    pub reply: ReplyMode,
    /// Close the connection once the reply is written (`QUIT`).
    pub close_after_reply: bool,
    /// Blocking commands must not block (inside `MULTI` or a script): they answer as if their
    /// timeout had passed.
    pub no_block: bool,
    /// True while the connection re-runs a blocked command because one of its keys changed.
    /// A key that now holds another type is then skipped, not an error: Redis serves a blocked
    /// client only from a key of the type it waits for, and keeps it waiting otherwise.
    pub woken: bool,
    /// Channels, patterns and shard channels subscribed to: nonzero puts a RESP2 client in
    /// subscribed mode (`CLIENT_PUBSUB` in Redis).
    pub subscriptions: usize,
    pub action: Option<Action>,
    /// The transaction being queued, between `MULTI` and `EXEC`/`DISCARD`.
    pub multi: Option<crate::transactions::Multi>,
    /// The keys this client watches (`WATCH`).
    pub watching: Option<crate::transactions::Watching>,
    /// Commands the last command ran on the client's behalf (`EXEC`'s queue), for the server to
    /// count and show to monitors; the connection empties it after each command. It lives here
    /// rather than in each command's result so ordinary commands carry nothing extra.
    pub nested: Vec<crate::dispatch::Nested>,
    /// Client-side caching, when on.
    pub tracking: Option<TrackingMode>,
    /// `CLIENT CACHING YES|NO` applies to the next command.
    pub tracking_caching: bool,
}

impl ClientState {
    /// For a blocked client re-running its command: a key of the wrong type counts as empty
    /// (see [`ClientState::woken`]); for anyone else the error stands.
    pub fn skip_wrong_type<T>(
        &self,
        r: Result<Option<T>, CommandError>,
    ) -> Result<Option<T>, CommandError> {
        match r {
            Err(CommandError::WrongType) if self.woken => Ok(None),
            other => other,
        }
    }

    /// Asks the connection to park this client until one of `keys` changes (see [`BlockSpec`]).
    /// Returns the placeholder reply a blocking handler returns with it; the connection never
    /// sends it. Inside `MULTI` or a script, where nothing may block, returns the timeout reply
    /// instead.
    pub fn block(&mut self, spec: BlockSpec) -> Frame {
        if self.no_block {
            return spec.timeout_reply;
        }
        self.action = Some(Action::Block(spec));
        Frame::Null
    }
}

impl ClientState {
    /// A fresh client in RESP2 on database 0.
    pub fn new(id: u64, authenticated: bool) -> ClientState {
        ClientState {
            id,
            db: 0,
            protocol: Protocol::Resp2,
            name: None,
            lib_name: None,
            lib_ver: None,
            authenticated,
            no_evict: false,
            no_touch: false,
            reply: ReplyMode::On,
            close_after_reply: false,
            no_block: false,
            woken: false,
            subscriptions: 0,
            action: None,
            multi: None,
            watching: None,
            nested: Vec::new(),
            tracking: None,
            tracking_caching: false,
        }
    }
}

/// Which clients `CLIENT KILL` or `CLIENT LIST` selects. Empty fields match everything.
#[derive(Debug, Default, Clone)]
pub struct ClientFilter {
    pub ids: Vec<u64>,
    pub addr: Option<String>,
    pub laddr: Option<String>,
    pub kind: Option<String>,
    pub user: Option<String>,
    /// `SKIPME yes` (the default for `CLIENT KILL` filters).
    pub skip_me: bool,
    pub max_age: Option<u64>,
}

/// Size limits that commands enforce, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct CommandLimits {
    /// `proto-max-bulk-len`: the largest string a command may create.
    pub max_string: u64,
    /// `lcs-max-table-bytes`: the largest comparison table `LCS` may allocate.
    pub lcs_table: u64,
    /// Thresholds between compact and full collection encodings.
    pub types: shoal_storage::TypeLimits,
}

/// Services the server provides to commands. Implemented by `shoal-server`; the command families
/// only see this trait, so they stay free of sockets, threads and files.
pub trait ServerOps: Send + Sync {
    /// The password `AUTH` checks, if `requirepass` is set.
    fn requirepass(&self) -> Option<String>;
    /// `CONFIG GET`: every parameter matching one of the glob patterns, with its value.
    fn config_get(&self, patterns: &[Bytes]) -> Vec<(String, String)>;
    /// `CONFIG SET` of several parameters, all or nothing.
    fn config_set(&self, pairs: &[(Bytes, Bytes)]) -> Result<(), CommandError>;
    /// `CONFIG REWRITE`.
    fn config_rewrite(&self) -> Result<(), CommandError>;
    /// `CONFIG RESETSTAT`.
    fn reset_stats(&self);
    /// `INFO` text for the given sections (lower-case; empty = default).
    fn info(&self, sections: &[String]) -> String;
    /// Publishes the client's name, database and library info for `CLIENT LIST`.
    fn update_client(&self, client: &ClientState);
    /// `CLIENT LIST`/`CLIENT INFO` lines for the matching clients.
    fn client_list(&self, filter: &ClientFilter, me: u64) -> String;
    /// `CLIENT KILL`: closes matching clients, returns how many.
    fn client_kill(&self, filter: &ClientFilter, me: u64) -> usize;
    /// `CLIENT PAUSE`: until `until_ms` (Unix ms); `all` pauses every command, else only writes.
    fn client_pause(&self, until_ms: u64, all: bool);
    /// `CLIENT UNPAUSE`.
    fn client_unpause(&self);
    /// `CLIENT UNBLOCK`: releases a client blocked on keys, as if its timeout passed or with
    /// an `-UNBLOCKED` error; false when that client is not blocked on keys.
    fn client_unblock(&self, _id: u64, _error: bool) -> bool {
        false
    }
    /// `CLIENT TRACKING ON`: registers the client's mode and `BCAST` prefixes (checking them
    /// against those it has), or refuses with Redis's error.
    fn tracking_enable(
        &self,
        _id: u64,
        _mode: TrackingMode,
        _prefixes: &[Bytes],
    ) -> Result<(), CommandError> {
        Err(CommandError::err("client tracking is not available here"))
    }
    /// `CLIENT TRACKING OFF`.
    fn tracking_disable(&self, _id: u64) {}
    /// The client's `BCAST` prefixes and whether its redirection broke (`CLIENT TRACKINGINFO`).
    fn tracking_info(&self, _id: u64) -> (Vec<Bytes>, bool) {
        (Vec::new(), false)
    }
    /// Whether a client with this id is connected (`REDIRECT` must name one).
    fn client_exists(&self, _id: u64) -> bool {
        false
    }
    /// The Lua engine scripts run in (`EVAL`, `SCRIPT`); `None` for servers without one.
    fn script_engine(&self) -> Option<&parking_lot::Mutex<shoal_script::Engine>> {
        None
    }
    /// A script starts running (`eval`: an `EVAL` script, else a function). While it runs past
    /// `busy-reply-threshold`, other clients are answered `-BUSY`.
    fn script_begin(&self, _eval: bool) {}
    /// The running script wrote to the dataset, so it can no longer be killed.
    fn script_wrote(&self) {}
    /// Whether `SCRIPT KILL` or `FUNCTION KILL` asked the running script to stop; the script
    /// engine polls this from its instruction hook.
    fn script_killed(&self) -> bool {
        false
    }
    /// The script ended.
    fn script_end(&self) {}
    /// `SCRIPT KILL` (`eval`) or `FUNCTION KILL`, with Redis's `NOTBUSY`/`UNKILLABLE` refusals.
    fn script_kill(&self, _eval: bool) -> Result<(), CommandError> {
        Err(CommandError::Other(
            "NOTBUSY No scripts in execution right now.".into(),
        ))
    }
    /// `MEMORY STATS` fields.
    fn memory_stats(&self) -> Vec<(String, Frame)>;
    /// `MEMORY MALLOC-STATS` text.
    fn malloc_stats(&self) -> String;
    /// `MEMORY DOCTOR` report. The default, for servers without memory figures (such as test
    /// stand-ins), reports nothing.
    fn memory_doctor(&self) -> String {
        String::new()
    }
    /// Frees tables taken out by a flush, on a background thread when `lazy`.
    fn free(&self, garbage: Garbage, lazy: bool);
    /// Size limits commands enforce.
    fn limits(&self) -> CommandLimits;
    /// `lazyfree-lazy-user-flush` and `lazyfree-lazy-user-del`.
    fn lazy_user_flush(&self) -> bool;

    // The slow log and the latency monitor. The defaults describe a server that records neither
    // (such as a test stand-in).

    /// `SLOWLOG GET`: the newest `count` entries, newest first, each as the six-element array
    /// Redis replies with (id, Unix time, microseconds, arguments, client address, client name).
    fn slowlog_get(&self, _count: usize) -> Vec<Frame> {
        Vec::new()
    }
    /// `SLOWLOG LEN`.
    fn slowlog_len(&self) -> usize {
        0
    }
    /// `SLOWLOG RESET`.
    fn slowlog_reset(&self) {}
    /// `LATENCY LATEST`: for each event, its name, the time (Unix seconds) and latency (ms) of its
    /// newest sample, and its worst latency.
    fn latency_latest(&self) -> Vec<(String, u64, u64, u64)> {
        Vec::new()
    }
    /// `LATENCY HISTORY event`: (Unix seconds, latency in ms) of each sample, oldest first.
    fn latency_history(&self, _event: &[u8]) -> Vec<(u64, u64)> {
        Vec::new()
    }
    /// `LATENCY RESET [event ...]`: forgets the named events (every event when none is named);
    /// returns how many were forgotten.
    fn latency_reset(&self, _events: &[Bytes]) -> usize {
        0
    }
    /// `LATENCY GRAPH event`, or `None` when the event has no samples.
    fn latency_graph(&self, _event: &[u8]) -> Option<String> {
        None
    }
    /// `LATENCY DOCTOR` report.
    fn latency_doctor(&self) -> String {
        String::new()
    }
    /// `LATENCY HISTOGRAM`: for every command with latency data, its full name (`config|get`),
    /// its number of calls, and its cumulative distribution as (microseconds, calls at or below).
    fn latency_histograms(&self) -> Vec<LatencyHistogram> {
        Vec::new()
    }

    // Pub/sub. The defaults describe a server where nobody listens (such as a test stand-in).

    /// `PUBLISH` (`kind` [`PubsubKind::Channel`]) or `SPUBLISH` ([`PubsubKind::Shard`]):
    /// delivers `message` to the subscribers of `channel`; returns how many received it.
    fn publish(&self, _kind: PubsubKind, _channel: &[u8], _message: &[u8]) -> usize {
        0
    }
    /// Subscribes `client` to `names`, with a confirmation for each queued in its mailbox
    /// (or returned, when `inline`).
    fn subscribe(
        &self,
        _client: &ClientState,
        _kind: PubsubKind,
        _names: &[Bytes],
        _inline: bool,
    ) -> Subscriptions {
        Subscriptions::default()
    }
    /// Unsubscribes `client` from `names` (every subscription of `kind` when empty), with
    /// confirmations as Redis sends them, queued in its mailbox (or returned, when `inline`).
    fn unsubscribe(
        &self,
        _client: &ClientState,
        _kind: PubsubKind,
        _names: &[Bytes],
        _inline: bool,
    ) -> Subscriptions {
        Subscriptions::default()
    }
    /// Drops every subscription of client `id` without confirmations (`RESET`).
    fn unsubscribe_all(&self, _id: u64) {}
    /// `PUBSUB CHANNELS` / `SHARDCHANNELS`: active channels of `kind` matching `pattern`.
    fn pubsub_channels(&self, _kind: PubsubKind, _pattern: Option<&[u8]>) -> Vec<Bytes> {
        Vec::new()
    }
    /// `PUBSUB NUMSUB` / `SHARDNUMSUB`: each channel's number of subscribers.
    fn pubsub_numsub(&self, _kind: PubsubKind, channels: &[Bytes]) -> Vec<usize> {
        vec![0; channels.len()]
    }
    /// `PUBSUB NUMPAT`: the number of patterns with subscribers.
    fn pubsub_numpat(&self) -> usize {
        0
    }
}

/// A server that does nothing but answer with Redis's default limits: the stand-in for handler
/// tests (unit tests and transcripts) that run commands without a real server.
pub struct InertServer;

impl ServerOps for InertServer {
    fn requirepass(&self) -> Option<String> {
        None
    }
    fn config_get(&self, _: &[Bytes]) -> Vec<(String, String)> {
        Vec::new()
    }
    fn config_set(&self, _: &[(Bytes, Bytes)]) -> Result<(), CommandError> {
        Ok(())
    }
    fn config_rewrite(&self) -> Result<(), CommandError> {
        Ok(())
    }
    fn reset_stats(&self) {}
    fn info(&self, _: &[String]) -> String {
        String::new()
    }
    fn update_client(&self, _: &ClientState) {}
    fn client_list(&self, _: &ClientFilter, _: u64) -> String {
        String::new()
    }
    fn client_kill(&self, _: &ClientFilter, _: u64) -> usize {
        0
    }
    fn client_pause(&self, _: u64, _: bool) {}
    fn client_unpause(&self) {}
    fn memory_stats(&self) -> Vec<(String, Frame)> {
        Vec::new()
    }
    fn malloc_stats(&self) -> String {
        String::new()
    }
    fn free(&self, garbage: Garbage, _: bool) {
        drop(garbage);
    }
    fn limits(&self) -> CommandLimits {
        CommandLimits {
            max_string: 512 << 20,
            lcs_table: 1 << 30,
            types: shoal_storage::TypeLimits::default(),
        }
    }
    fn lazy_user_flush(&self) -> bool {
        false
    }
}

/// One command's latency distribution, for `LATENCY HISTOGRAM`.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    /// Full name, `get` or `config|get`.
    pub command: &'static str,
    pub calls: u64,
    /// (microseconds, calls at or below), listed where the count grows.
    pub cdf: Vec<(u64, u64)>,
}

/// What a handler runs with.
pub struct Cx<'a> {
    pub ks: &'a Keyspace,
    pub server: &'a dyn ServerOps,
    pub client: &'a mut ClientState,
    pub table: &'a CommandTable,
    /// Unix time in milliseconds, fixed for the whole command.
    pub now: u64,
    /// Unix time in microseconds (for `TIME`).
    pub now_us: u64,
    pub(crate) locked: Option<Locked<'a>>,
    /// Changes made outside the locked view (flushes, `RANDOMKEY` expiring keys).
    pub journal: Journal,
}

impl<'a> Cx<'a> {
    /// The locked view of the stripes holding this command's keys.
    pub fn db(&mut self) -> Result<&mut Locked<'a>, CommandError> {
        self.locked
            .as_mut()
            .ok_or(CommandError::Internal(shoal_storage::NotLocked))
    }

    /// The selected database index.
    pub fn dbi(&self) -> usize {
        self.client.db
    }

    /// Records the keyspace notification `event` of `class` for `key` in the selected
    /// database (published after the command if `notify-keyspace-events` asks for it).
    pub fn notify(&mut self, class: shoal_storage::notify::Class, event: &'static str, key: &[u8]) {
        let db = self.client.db;
        self.notify_db(class, event, db, key);
    }

    /// [`Cx::notify`] for a key of database `db`.
    pub fn notify_db(
        &mut self,
        class: shoal_storage::notify::Class,
        event: &'static str,
        db: usize,
        key: &[u8],
    ) {
        let flags = self
            .ks
            .notify_flags
            .load(std::sync::atomic::Ordering::Relaxed);
        if flags == 0 {
            return;
        }
        // Into the locked view's journal when there is one, so the event follows the storage's
        // own (`new`, `expired`) in the order they happened.
        let journal = match self.locked.as_mut() {
            Some(l) => &mut l.journal,
            None => &mut self.journal,
        };
        journal.notify(flags, class, event, db, key);
    }
}

pub(crate) fn take_journal(mut l: Locked<'_>) -> Journal {
    std::mem::take(&mut l.journal)
}
