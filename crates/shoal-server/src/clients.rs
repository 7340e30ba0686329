//! The registry of connected clients, for `CLIENT LIST`, `CLIENT KILL`, `INFO clients` and
//! `maxclients`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

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
    /// Bytes waiting in the query buffer and the output buffer, for `qbuf=`/`omem=`.
    pub qbuf: AtomicUsize,
    /// True while the client waits (`CLIENT PAUSE`), for `flags=b` and `blocked_clients`.
    pub blocked: AtomicBool,
}

impl ClientInfo {
    /// `flags=` in `CLIENT LIST`: `b` blocked, `U` Unix socket, `N` none.
    pub fn flags(&self) -> String {
        let mut f = String::new();
        if self.blocked.load(Ordering::Relaxed) {
            f.push('b');
        }
        if matches!(self.peer, Peer::Unix { .. }) {
            f.push('U');
        }
        if f.is_empty() {
            f.push('N');
        }
        f
    }
}

/// Rarely changing text fields.
#[derive(Default)]
pub struct Details {
    pub name: Option<String>,
    pub lib_name: Option<String>,
    pub lib_ver: Option<String>,
    pub last_cmd: &'static str,
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

    /// One `CLIENT LIST` line, with Redis's fields.
    pub fn line(c: &ClientInfo) -> String {
        let d = c.details.lock();
        let age = c.created.elapsed();
        let idle_ms =
            (age.as_millis() as u64).saturating_sub(c.last_active_ms.load(Ordering::Relaxed));
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub=0 psub=0 ssub=0 multi=-1 qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}\n",
            c.id,
            c.peer.addr(),
            c.peer.laddr(),
            c.fd,
            d.name.as_deref().unwrap_or(""),
            age.as_secs(),
            idle_ms / 1000,
            c.flags(),
            c.db.load(Ordering::Relaxed),
            c.qbuf.load(Ordering::Relaxed),
            if d.last_cmd.is_empty() { "NULL" } else { d.last_cmd },
            if c.resp3.load(Ordering::Relaxed) { 3 } else { 2 },
            d.lib_name.as_deref().unwrap_or(""),
            d.lib_ver.as_deref().unwrap_or(""),
        )
    }
}
