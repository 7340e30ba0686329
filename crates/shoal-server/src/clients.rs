//! The registry of connected clients, for `CLIENT LIST`, `CLIENT KILL`, `INFO clients` and
//! `maxclients`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use shoal_commands::{ClientFilter, ClientState};
use shoal_resp::Protocol;
use tokio::sync::Notify;

/// Where a client connected from and to.
#[derive(Clone, Debug)]
pub enum Peer {
    Tcp { addr: SocketAddr, local: SocketAddr },
    Unix { path: String },
}

impl Peer {
    /// `addr=` in `CLIENT LIST`.
    pub fn addr(&self) -> String {
        match self {
            Peer::Tcp { addr, .. } => addr.to_string(),
            Peer::Unix { path } => format!("{path}:0"),
        }
    }

    /// `laddr=` in `CLIENT LIST`.
    pub fn laddr(&self) -> String {
        match self {
            Peer::Tcp { local, .. } => local.to_string(),
            Peer::Unix { path } => format!("{path}:0"),
        }
    }

    /// True for loopback TCP peers and Unix sockets (protected mode lets them in).
    pub fn is_local(&self) -> bool {
        match self {
            Peer::Tcp { addr, .. } => addr.ip().is_loopback(),
            Peer::Unix { .. } => true,
        }
    }
}

/// What the registry knows about one client, shared between its connection task and commands
/// that inspect or kill it.
pub struct ClientInfo {
    pub id: u64,
    pub peer: Peer,
    pub fd: i32,
    pub created: Instant,
    /// Milliseconds since `created` of the last command, for `idle=`.
    pub last_active_ms: AtomicU64,
    pub db: AtomicUsize,
    pub resp3: AtomicBool,
    pub details: Mutex<Details>,
    /// Set by `CLIENT KILL`; the connection task closes when it sees it.
    pub killed: AtomicBool,
    pub kill_notify: Notify,
    /// Bytes of input received but not yet parsed into a command, for `qbuf=`.
    pub qbuf: AtomicUsize,
    /// True while the client waits (`CLIENT PAUSE`), for `flags=b` and `blocked_clients`.
    pub blocked: AtomicBool,
    /// Buffer and argument sizes only the connection loop knows.
    pub io: ClientIo,
}

/// The connection loop's buffer figures, for `CLIENT LIST` (`qbuf-free`, `argv-mem`, `rbs`,
/// `rbp`, `obl`, `events`, `tot-mem`) and `INFO` (`client_recent_max_input_buffer`,
/// `mem_clients_normal`, `MEMORY DOCTOR`).
///
/// Plain atomics that only the connection task writes, so recording them costs a few relaxed
/// stores per command and no lock; readers may see figures from slightly different instants,
/// which is good enough for a listing.
#[derive(Default)]
pub struct ClientIo {
    /// Allocated size of the query buffer.
    pub input_capacity: AtomicUsize,
    /// Total length of the arguments of the command running now, 0 between commands: Redis
    /// frees a command's arguments once it has run.
    pub argv_mem: AtomicUsize,
    /// Allocated size of the reply buffer (`rbs=`).
    pub output_capacity: AtomicUsize,
    /// Most reply bytes the buffer has held at once (`rbp=`). Redis forgets its peak every few
    /// seconds because it shrinks the buffer to fit; Shoal never shrinks it, so the peak since
    /// the connection opened is what explains `rbs`.
    pub output_peak: AtomicUsize,
    /// Reply bytes waiting to be written (`obl=`); non-zero while a write is in progress.
    pub output_pending: AtomicUsize,
}

impl ClientInfo {
    /// Records the sizes of the query and reply buffers; the connection loop calls it once per
    /// batch of requests, before writing the batch's replies.
    pub fn note_buffers(&self, input: &BytesMut, output: &BytesMut) {
        let io = &self.io;
        self.qbuf.store(input.len(), Ordering::Relaxed);
        io.input_capacity.store(input.capacity(), Ordering::Relaxed);
        io.output_capacity
            .store(output.capacity(), Ordering::Relaxed);
        io.output_pending.store(output.len(), Ordering::Relaxed);
        if output.len() > io.output_peak.load(Ordering::Relaxed) {
            io.output_peak.store(output.len(), Ordering::Relaxed);
        }
    }

    /// Records that the batch's replies have been written.
    pub fn note_flushed(&self) {
        self.io.output_pending.store(0, Ordering::Relaxed);
    }

    /// Records the arguments of the command about to run (`argv-mem=`).
    pub fn command_started(&self, args: &[Bytes]) {
        let len = args.iter().map(Bytes::len).sum();
        self.io.argv_mem.store(len, Ordering::Relaxed);
    }

    /// Records that the command has run and its arguments are gone.
    pub fn command_finished(&self) {
        self.io.argv_mem.store(0, Ordering::Relaxed);
    }

    /// `flags=` in `CLIENT LIST`, in Redis's letter order: `O` monitor, `b` blocked, `U` Unix
    /// socket, `e` no-evict, `T` no-touch (Redis 7.2's letter for the 7.2 command Shoal has), `N`
    /// none.
    pub fn flags(&self, d: &Details) -> String {
        let mut f = String::new();
        if d.monitor {
            f.push('O');
        }
        if d.mailbox.as_ref().is_some_and(|m| m.total() > 0) {
            f.push('P');
        }
        if self.blocked.load(Ordering::Relaxed) {
            f.push('b');
        }
        if matches!(self.peer, Peer::Unix { .. }) {
            f.push('U');
        }
        if d.no_evict {
            f.push('e');
        }
        if d.no_touch {
            f.push('T');
        }
        if f.is_empty() {
            f.push('N');
        }
        f
    }

    /// `tot-mem=`: what the client costs, as Redis counts it: the client structures, both
    /// buffers' allocations and the arguments of the command it is running.
    pub fn total_memory(&self) -> usize {
        let io = &self.io;
        CLIENT_STRUCT_BYTES
            + io.input_capacity.load(Ordering::Relaxed)
            + io.output_capacity.load(Ordering::Relaxed)
            + io.argv_mem.load(Ordering::Relaxed)
    }
}

/// The fixed part of a client's memory: its registry entry and the state its connection task
/// keeps.
const CLIENT_STRUCT_BYTES: usize =
    std::mem::size_of::<ClientInfo>() + std::mem::size_of::<ClientState>();

/// Rarely changing fields, behind a lock: written by commands through [`Clients::update`], and
/// by the connection loop when the command it runs or its `MONITOR` mode changes.
#[derive(Default)]
pub struct Details {
    pub name: Option<String>,
    pub lib_name: Option<String>,
    pub lib_ver: Option<String>,
    pub last_cmd: &'static str,
    /// `CLIENT NO-EVICT on`, for `flags=e`.
    pub no_evict: bool,
    /// `CLIENT NO-TOUCH on`, for `flags=T`.
    pub no_touch: bool,
    /// In `MONITOR` mode, for `flags=O`.
    pub monitor: bool,
    /// The client's pub/sub mailbox, once it has used pub/sub: its subscriptions (`sub=`,
    /// `psub=`, `ssub=`, `flags=P`) and undelivered messages (`oll=`, `omem=`).
    pub mailbox: Option<Arc<crate::pubsub::Mailbox>>,
}

/// All connected clients by id.
#[derive(Default)]
pub struct Clients {
    map: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    next_id: AtomicU64,
    /// Connections refused because of `maxclients` or protected mode.
    pub rejected: AtomicU64,
    pub total_connections: AtomicU64,
}

impl Clients {
    /// A new client id (ids start at 1 and are never reused).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Registers a client.
    pub fn add(&self, info: Arc<ClientInfo>) {
        self.total_connections.fetch_add(1, Ordering::Relaxed);
        self.map.lock().insert(info.id, info);
    }

    /// Removes a client.
    pub fn remove(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    /// Every client, in id order.
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        self.map.lock().values().cloned().collect()
    }

    /// Copies a client's state into its registry entry.
    pub fn update(&self, state: &ClientState) {
        if let Some(c) = self.map.lock().get(&state.id) {
            c.db.store(state.db, Ordering::Relaxed);
            c.resp3
                .store(state.protocol == Protocol::Resp3, Ordering::Relaxed);
            let mut d = c.details.lock();
            let text = |b: &Option<bytes::Bytes>| {
                b.as_ref().map(|v| String::from_utf8_lossy(v).into_owned())
            };
            d.name = text(&state.name);
            d.lib_name = text(&state.lib_name);
            d.lib_ver = text(&state.lib_ver);
            d.no_evict = state.no_evict;
            d.no_touch = state.no_touch;
        }
    }

    /// The clients a filter selects.
    pub fn select(&self, f: &ClientFilter, me: u64) -> Vec<Arc<ClientInfo>> {
        self.all()
            .into_iter()
            .filter(|c| {
                (f.ids.is_empty() || f.ids.contains(&c.id))
                    && f.addr.as_ref().is_none_or(|a| *a == c.peer.addr())
                    && f.laddr.as_ref().is_none_or(|a| *a == c.peer.laddr())
                    && f.kind.as_ref().is_none_or(|k| k == "normal")
                    && f.user.as_ref().is_none_or(|u| u == "default")
                    && !(f.skip_me && c.id == me)
                    && f.max_age
                        .is_none_or(|age| c.created.elapsed().as_secs() >= age)
            })
            .collect()
    }

    /// Figures over every client for `INFO clients` and `INFO memory`.
    pub fn summary(&self) -> Summary {
        let mut sum = Summary::default();
        for c in self.map.lock().values() {
            let input = c.io.input_capacity.load(Ordering::Relaxed);
            sum.max_input_buffer = sum.max_input_buffer.max(input);
            sum.memory += c.total_memory();
            // A subscriber's undelivered messages are its reply list, in Redis's terms.
            if let Some(m) = &c.details.lock().mailbox {
                let (_, bytes) = m.backlog();
                sum.max_output_buffer = sum.max_output_buffer.max(bytes);
                sum.memory += bytes;
            }
        }
        sum
    }

    /// One `CLIENT LIST` line: Redis 7.0's fields in Redis's order, then the two Redis 7.2
    /// added for `CLIENT SETINFO` (which Shoal has), so that tools splitting on spaces or
    /// looking fields up by name both work.
    pub fn line(c: &ClientInfo) -> String {
        let d = c.details.lock();
        let io = &c.io;
        let age = c.created.elapsed();
        let idle_ms =
            (age.as_millis() as u64).saturating_sub(c.last_active_ms.load(Ordering::Relaxed));
        let qbuf = c.qbuf.load(Ordering::Relaxed);
        let pending = io.output_pending.load(Ordering::Relaxed);
        let mut out = String::with_capacity(320);
        let _ = write!(
            out,
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={}",
            c.id,
            c.peer.addr(),
            c.peer.laddr(),
            c.fd,
            d.name.as_deref().unwrap_or(""),
            age.as_secs(),
            idle_ms / 1000,
            c.flags(&d),
            c.db.load(Ordering::Relaxed),
        );
        let (sub, psub, ssub) = d.mailbox.as_ref().map_or((0, 0, 0), |m| m.counts());
        let _ = write!(out, " sub={sub} psub={psub} ssub={ssub}");
        // Transactions do not exist yet, so there are no queued commands (`multi=-1` means
        // "not in MULTI").
        out.push_str(" multi=-1");
        let _ = write!(
            out,
            " qbuf={qbuf} qbuf-free={} argv-mem={} multi-mem=0",
            io.input_capacity
                .load(Ordering::Relaxed)
                .saturating_sub(qbuf),
            io.argv_mem.load(Ordering::Relaxed),
        );
        // Shoal keeps pending replies in one growable buffer (`obl`); what plays the part of
        // Redis's reply list (`oll`, `omem`) is a subscriber's mailbox of undelivered messages.
        let (oll, omem) = d.mailbox.as_ref().map_or((0, 0), |m| m.backlog());
        let _ = write!(
            out,
            " rbs={} rbp={} obl={pending} oll={oll} omem={omem} tot-mem={}",
            io.output_capacity.load(Ordering::Relaxed),
            io.output_peak.load(Ordering::Relaxed),
            c.total_memory() + omem,
        );
        // The socket is always watched for input; `w` shows a write still in progress.
        let events = if pending > 0 { "rw" } else { "r" };
        let _ = writeln!(
            out,
            " events={events} cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            if d.last_cmd.is_empty() {
                "NULL"
            } else {
                d.last_cmd
            },
            if c.resp3.load(Ordering::Relaxed) {
                3
            } else {
                2
            },
            d.lib_name.as_deref().unwrap_or(""),
            d.lib_ver.as_deref().unwrap_or(""),
        );
        out
    }
}

/// Totals over the connected clients.
#[derive(Default, Clone, Copy, Debug)]
pub struct Summary {
    /// The largest query buffer allocation (`client_recent_max_input_buffer`).
    pub max_input_buffer: usize,
    /// The most undelivered pub/sub bytes any client has (`client_recent_max_output_buffer`).
    pub max_output_buffer: usize,
    /// Every client's `tot-mem` added up (`mem_clients_normal`).
    pub memory: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(peer: Peer) -> ClientInfo {
        ClientInfo {
            id: 7,
            peer,
            fd: 9,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            db: AtomicUsize::new(0),
            resp3: AtomicBool::new(false),
            details: Mutex::new(Details::default()),
            killed: AtomicBool::new(false),
            kill_notify: Notify::new(),
            qbuf: AtomicUsize::new(0),
            blocked: AtomicBool::new(false),
            io: ClientIo::default(),
        }
    }

    fn tcp() -> Peer {
        Peer::Tcp {
            addr: "127.0.0.1:50000".parse().unwrap(),
            local: "127.0.0.1:6379".parse().unwrap(),
        }
    }

    fn fields(line: &str) -> Vec<(String, String)> {
        line.trim_end()
            .split(' ')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    fn field(line: &str, name: &str) -> String {
        fields(line)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    }

    #[test]
    fn line_has_redis_fields_in_order() {
        let line = Clients::line(&client(tcp()));
        assert!(line.ends_with('\n'), "{line:?}");
        let names: Vec<String> = fields(&line).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names.join(" "),
            "id addr laddr fd name age idle flags db sub psub ssub multi qbuf qbuf-free argv-mem \
             multi-mem rbs rbp obl oll omem tot-mem events cmd user redir resp lib-name lib-ver"
        );
        assert!(line.starts_with("id=7 addr=127.0.0.1:50000 laddr=127.0.0.1:6379 fd=9 name= "));
        assert!(line.contains(" flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 "));
        assert!(
            line.ends_with(" events=r cmd=NULL user=default redir=-1 resp=2 lib-name= lib-ver=\n")
        );
    }

    #[test]
    fn buffers_and_arguments_show_in_the_line() {
        let c = client(tcp());
        let mut input = BytesMut::with_capacity(1024);
        input.extend_from_slice(b"*1\r\n$4\r\nPI");
        let mut output = BytesMut::with_capacity(4096);
        output.extend_from_slice(&[b'x'; 300]);
        c.note_buffers(&input, &output);
        c.command_started(&[Bytes::from_static(b"CLIENT"), Bytes::from_static(b"LIST")]);
        let line = Clients::line(&c);
        assert_eq!(field(&line, "qbuf"), "10");
        assert_eq!(
            field(&line, "qbuf-free"),
            (input.capacity() - 10).to_string()
        );
        assert_eq!(field(&line, "argv-mem"), "10");
        assert_eq!(field(&line, "rbs"), output.capacity().to_string());
        assert_eq!(field(&line, "rbp"), "300");
        // Replies not yet written show as pending output and a wanted write.
        assert_eq!(field(&line, "obl"), "300");
        assert_eq!(field(&line, "events"), "rw");
        let total: usize = field(&line, "tot-mem").parse().unwrap();
        assert_eq!(
            total,
            CLIENT_STRUCT_BYTES + input.capacity() + output.capacity() + 10
        );

        c.note_flushed();
        c.command_finished();
        output.clear();
        c.note_buffers(&input, &output);
        let line = Clients::line(&c);
        assert_eq!(field(&line, "argv-mem"), "0");
        assert_eq!(field(&line, "obl"), "0");
        assert_eq!(field(&line, "events"), "r");
        // The peak outlives the batch that set it.
        assert_eq!(field(&line, "rbp"), "300");
    }

    #[test]
    fn flags_follow_redis_letter_order() {
        let c = client(Peer::Unix {
            path: "/tmp/shoal.sock".into(),
        });
        assert_eq!(field(&Clients::line(&c), "flags"), "U");
        c.blocked.store(true, Ordering::Relaxed);
        {
            let mut d = c.details.lock();
            d.no_evict = true;
            d.no_touch = true;
            d.monitor = true;
        }
        assert_eq!(field(&Clients::line(&c), "flags"), "ObUeT");
    }

    #[test]
    fn update_copies_the_client_state() {
        let clients = Clients::default();
        let c = Arc::new(client(tcp()));
        clients.add(c.clone());
        let mut state = ClientState::new(7, true);
        state.db = 3;
        state.protocol = Protocol::Resp3;
        state.name = Some(Bytes::from_static(b"lister"));
        state.no_evict = true;
        clients.update(&state);
        let line = Clients::line(&c);
        assert_eq!(field(&line, "db"), "3");
        assert_eq!(field(&line, "resp"), "3");
        assert_eq!(field(&line, "name"), "lister");
        assert_eq!(field(&line, "flags"), "e");
        let summary = clients.summary();
        assert_eq!(summary.memory, c.total_memory());
    }
}
