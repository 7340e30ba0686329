//! Listeners: bind the configured TCP addresses and Unix socket, accept clients (enforcing
//! `maxclients` and protected mode), and stop everything on shutdown.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UnixListener};

use crate::clients::{ClientInfo, Details, Peer};
use crate::connection;
use crate::shared::Shared;

const MAXCLIENTS_ERR: &[u8] = b"-ERR max number of clients reached\r\n";
const DENIED_ERR: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// A start-up failure.
#[derive(Debug)]
pub struct StartError(pub String);

/// Binds every configured listener. Addresses prefixed with `-` may fail to bind (Redis's
/// convention for optional addresses such as `-::1` on hosts without IPv6).
pub async fn bind(
    shared: &Shared,
) -> Result<(Vec<TcpListener>, Option<(UnixListener, String)>), StartError> {
    let cfg = shared.config.read().clone();
    let port = cfg.int("port") as u16;
    let backlog = cfg.int("tcp-backlog") as u32;
    let mut tcp = Vec::new();
    if port != 0 {
        for word in cfg.get("bind").split_whitespace() {
            let (optional, host) = match word.strip_prefix('-') {
                Some(h) => (true, h),
                None => (false, word),
            };
            let host = if host == "*" { "0.0.0.0" } else { host };
            let addr: SocketAddr = match format!("{host}:{port}")
                .parse()
                .or_else(|_| format!("[{host}]:{port}").parse())
            {
                Ok(a) => a,
                Err(_) if optional => continue,
                Err(_) => return Err(StartError(format!("Invalid bind address '{host}'"))),
            };
            match listen(addr, backlog) {
                Ok(l) => tcp.push(l),
                Err(e) if optional => {
                    tracing::debug!(%addr, error = %e, "optional bind address unavailable")
                }
                Err(e) => {
                    return Err(StartError(format!(
                        "Warning: Could not create server TCP listening socket {addr}: {e}"
                    )))
                }
            }
        }
    }
    let unix = match cfg.get("unixsocket") {
        "" => None,
        path => {
            let _ = std::fs::remove_file(path);
            let l = UnixListener::bind(path)
                .map_err(|e| StartError(format!("Failed opening Unix socket {path}: {e}")))?;
            let perm = u32::from_str_radix(cfg.get("unixsocketperm"), 8).unwrap_or(0);
            if perm != 0 {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm));
            }
            Some((l, path.to_string()))
        }
    };
    if tcp.is_empty() && unix.is_none() {
        return Err(StartError(
            "Configured to not listen anywhere, exiting.".into(),
        ));
    }
    Ok((tcp, unix))
}

fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let domain = if addr.is_ipv6() {
        socket2::Domain::IPV6
    } else {
        socket2::Domain::IPV4
    };
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(backlog.max(1) as i32)?;
    TcpListener::from_std(s.into())
}

fn register(shared: &Shared, peer: Peer, fd: i32) -> Arc<ClientInfo> {
    let info = Arc::new(ClientInfo {
        id: shared.clients.next_id(),
        peer,
        fd,
        created: Instant::now(),
        last_active_ms: Default::default(),
        db: Default::default(),
        resp3: Default::default(),
        details: parking_lot::Mutex::new(Details::default()),
        killed: Default::default(),
        kill_notify: tokio::sync::Notify::new(),
        qbuf: Default::default(),
        blocked: Default::default(),
        io: Default::default(),
    });
    shared.clients.add(info.clone());
    info
}

/// Decides whether a new client may connect; if not, returns the error line to send it.
fn admission(shared: &Shared, peer: &Peer) -> Option<&'static [u8]> {
    if shared.clients.len() as u64 >= shared.live.maxclients.load(Ordering::Relaxed) {
        return Some(MAXCLIENTS_ERR);
    }
    if shared.live.protected_mode.load(Ordering::Relaxed)
        && !shared.live.has_password.load(Ordering::Relaxed)
        && !peer.is_local()
    {
        return Some(DENIED_ERR);
    }
    None
}

/// Logs a client refused by [`admission`], naming the reason from the error it was sent.
fn log_rejected(shared: &Shared, peer: &str, err: &[u8]) {
    // At most a line a second: a reconnect storm at maxclients must not flood the log.
    let Some(suppressed) = shared.rejected_log_lines.admit(shared.now_ms() / 1000) else {
        return;
    };
    if err == MAXCLIENTS_ERR {
        let maxclients = shared.live.maxclients.load(Ordering::Relaxed);
        tracing::warn!(
            peer,
            reason = "maxclients",
            maxclients,
            suppressed,
            "client rejected: max number of clients reached"
        );
    } else {
        tracing::warn!(
            peer,
            reason = "protected-mode",
            suppressed,
            "client rejected: protected mode is on and no password is set"
        );
    }
}

/// Accepts TCP clients until shutdown.
pub async fn accept_tcp(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => return,
        };
        let (mut stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Running out of file descriptors must not spin the loop at full speed.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let local = stream.local_addr().unwrap_or(addr);
        let peer = Peer::Tcp { addr, local };
        if let Some(err) = admission(&shared, &peer) {
            shared.clients.rejected.fetch_add(1, Ordering::Relaxed);
            log_rejected(&shared, &addr.to_string(), err);
            let _ = stream.write_all(err).await;
            continue;
        }
        let _ = stream.set_nodelay(true);
        let keepalive = shared.live.tcp_keepalive.load(Ordering::Relaxed);
        if keepalive > 0 {
            let sock = socket2::SockRef::from(&stream);
            let ka = socket2::TcpKeepalive::new().with_time(Duration::from_secs(keepalive));
            let _ = sock.set_tcp_keepalive(&ka);
        }
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        let info = register(&shared, peer, fd);
        tokio::spawn(connection::serve(shared.clone(), stream, info));
    }
}

/// Accepts Unix-socket clients until shutdown.
pub async fn accept_unix(shared: Arc<Shared>, listener: UnixListener, path: String) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => return,
        };
        let mut stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let peer = Peer::Unix { path: path.clone() };
        if let Some(err) = admission(&shared, &peer) {
            shared.clients.rejected.fetch_add(1, Ordering::Relaxed);
            log_rejected(&shared, &format!("unix:{path}"), err);
            let _ = stream.write_all(err).await;
            continue;
        }
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        let info = register(&shared, peer, fd);
        tokio::spawn(connection::serve(shared.clone(), stream, info));
    }
}
