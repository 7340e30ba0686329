//! One client connection: read requests, run them, write replies, until the client leaves, is
//! killed, idles out, breaks the protocol or the server shuts down.
//!
//! The loop reads whatever the socket has, runs every complete request in the buffer, and writes
//! all their replies with one `write`, so pipelined clients get batched I/O for free. Protocol
//! errors are answered with Redis's `-ERR Protocol error: ...` and close the connection; command
//! errors are ordinary replies.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use shoal_commands::{resolve, Action, ClientState, Engine, Flags, ReplyMode};
use shoal_resp::{encode, Frame, RequestParser};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::clients::ClientInfo;
use crate::shared::Shared;

/// Read buffer growth step. Large enough for a pipelined batch of small commands in one read.
const READ_CHUNK: usize = 16 * 1024;

/// Replies are written out mid-batch once this many bytes are waiting.
const FLUSH_AT: usize = 64 * 1024;

/// Why a connection ended, for the log.
#[derive(Debug)]
enum End {
    PeerClosed,
    Quit,
    Killed,
    Shutdown,
    Protocol,
    QueryBufferLimit,
    Timeout,
    Io,
}

/// Serves one client until it ends.
pub async fn serve<S>(shared: Arc<Shared>, mut stream: S, info: Arc<ClientInfo>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let end = run(&shared, &mut stream, &info).await;
    tracing::debug!(id = info.id, addr = %info.peer.addr(), reason = ?end, "client closed");
    let _ = stream.shutdown().await;
    shared.clients.remove(info.id);
}

async fn run<S>(shared: &Arc<Shared>, stream: &mut S, info: &Arc<ClientInfo>) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut shutdown = shared.shutdown.subscribe();
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output = BytesMut::with_capacity(READ_CHUNK);
    let mut parser = RequestParser::new();
    let authenticated = !shared.live.has_password.load(Ordering::Relaxed);
    let mut client = ClientState::new(info.id, authenticated);
    let mut last_cmd: &'static str = "";
    loop {
        // Run every complete request already buffered.
        let limits = shared.limits();
        loop {
            match parser.parse(&mut input, &limits) {
                Ok(Some(args)) => {
                    let step =
                        run_command(shared, info, &mut client, &args, &mut output, &mut last_cmd)
                            .await;
                    match step {
                        // A long pipeline is answered in slices, so replies waiting in memory
                        // stay bounded however many requests one read brought in.
                        Step::Continue if output.len() >= FLUSH_AT => {
                            if write_out(shared, stream, &mut output).await.is_err() {
                                return End::Io;
                            }
                        }
                        Step::Continue => {}
                        // DEBUG SLEEP answers after the pause, as in Redis.
                        Step::Sleep(d) => tokio::time::sleep(d).await,
                        Step::Close(end) => {
                            let _ = write_out(shared, stream, &mut output).await;
                            return end;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(id = info.id, error = %e.message, "protocol error");
                    encode(
                        &Frame::Error(format!("ERR {}", e.message).into()),
                        client.protocol,
                        &mut output,
                    );
                    let _ = write_out(shared, stream, &mut output).await;
                    return End::Protocol;
                }
            }
        }
        if write_out(shared, stream, &mut output).await.is_err() {
            return End::Io;
        }
        // Like Redis, only unparsed input counts: arguments already split out of the buffer are
        // not query buffer any more.
        let pending = input.len();
        info.qbuf.store(pending, Ordering::Relaxed);
        if pending as u64 > shared.live.query_buffer_limit.load(Ordering::Relaxed) {
            tracing::warn!(id = info.id, addr = %info.peer.addr(), bytes = pending, "closing client that reached max query buffer length");
            return End::QueryBufferLimit;
        }
        if input.capacity() - input.len() < READ_CHUNK / 4 {
            input.reserve(READ_CHUNK);
        }
        let timeout = shared.live.timeout_secs.load(Ordering::Relaxed);
        let read = stream.read_buf(&mut input);
        let n = tokio::select! {
            r = async {
                if timeout > 0 {
                    tokio::time::timeout(Duration::from_secs(timeout), read).await
                } else {
                    Ok(read.await)
                }
            } => match r {
                Err(_) => return End::Timeout,
                Ok(Err(_)) => return End::Io,
                Ok(Ok(0)) => return End::PeerClosed,
                Ok(Ok(n)) => n,
            },
            _ = info.kill_notify.notified() => return End::Killed,
            _ = shutdown.changed() => return End::Shutdown,
        };
        shared.stats.net(n as u64, 0);
        if info.killed.load(Ordering::Relaxed) {
            return End::Killed;
        }
    }
}

/// What the connection does after a command.
enum Step {
    Continue,
    Sleep(Duration),
    Close(End),
}

async fn write_out<S>(shared: &Shared, stream: &mut S, output: &mut BytesMut) -> std::io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    if output.is_empty() {
        return Ok(());
    }
    stream.write_all(output).await?;
    shared.stats.net(0, output.len() as u64);
    output.clear();
    Ok(())
}

/// Waits while `CLIENT PAUSE` holds this command back.
/// While held it counts as blocked (`blocked_clients`, `flags=b`), as in Redis.
async fn wait_if_paused(shared: &Shared, info: &ClientInfo, is_write: bool) {
    let mut blocked = false;
    loop {
        let until = shared.pause_until.load(Ordering::Relaxed);
        let now = shared.now_ms();
        if until == 0 || until <= now || !(is_write || shared.pause_all.load(Ordering::Relaxed)) {
            break;
        }
        if !blocked {
            blocked = true;
            info.blocked.store(true, Ordering::Relaxed);
            shared.blocked_clients.fetch_add(1, Ordering::Relaxed);
        }
        let notified = shared.unpaused.notified();
        let _ = tokio::time::timeout(Duration::from_millis(until - now), notified).await;
    }
    if blocked {
        shared.blocked_clients.fetch_sub(1, Ordering::Relaxed);
        info.blocked.store(false, Ordering::Relaxed);
    }
}

async fn run_command(
    shared: &Arc<Shared>,
    info: &ClientInfo,
    client: &mut ClientState,
    args: &[bytes::Bytes],
    output: &mut BytesMut,
    last_cmd: &mut &'static str,
) -> Step {
    // Resolve first so CLIENT LIST shows the command being run, and CLIENT PAUSE WRITE can tell
    // writes apart; the dispatcher reuses the result.
    let resolved = resolve(&shared.table, args);
    if let Ok(spec) = resolved {
        if !std::ptr::eq(spec.name, *last_cmd) {
            *last_cmd = spec.name;
            info.details.lock().last_cmd = spec.name;
        }
    }
    if shared.pause_until.load(Ordering::Relaxed) != 0 {
        let is_write = resolved.as_ref().is_ok_and(|s| s.flags.has(Flags::WRITE));
        wait_if_paused(shared, info, is_write).await;
    }
    let started = Instant::now();
    let engine = Engine {
        table: &shared.table,
        ks: &shared.ks,
        server: shared.as_ref(),
    };
    let ex = engine.execute_resolved(resolved, client, args, shared.clock.now_us());
    let finished = Instant::now();
    let nanos = finished.duration_since(started).as_nanos() as u64;
    let code = ex.error.as_ref().map(|e| e.code());
    shared.stats.record(
        ex.spec,
        nanos,
        ex.rejected,
        code.as_deref(),
        ex.journal.dirty,
    );
    let active = finished.duration_since(info.created).as_millis() as u64;
    info.last_active_ms.store(active, Ordering::Relaxed);

    let action = client.action.take();
    if let Some(Action::Shutdown(opts)) = action {
        tracing::info!(?opts, "user requested shutdown");
        shared.request_shutdown();
        return Step::Close(End::Shutdown);
    }
    let skip = match client.reply {
        ReplyMode::On => false,
        ReplyMode::Off => true,
        ReplyMode::SkipNext => {
            client.reply = ReplyMode::Skip;
            true
        }
        ReplyMode::Skip => {
            client.reply = ReplyMode::On;
            true
        }
    };
    if !skip {
        encode(&ex.reply, client.protocol, output);
    }
    if client.close_after_reply {
        return Step::Close(End::Quit);
    }
    match action {
        Some(Action::Sleep(d)) => Step::Sleep(d),
        _ => Step::Continue,
    }
}
