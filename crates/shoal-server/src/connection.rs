//! One client connection: read requests, run them, write replies, until the client leaves, is
//! killed, idles out, breaks the protocol or the server shuts down.
//!
//! The loop reads whatever the socket has, runs every complete request in the buffer, and writes
//! all their replies with one `write`, so pipelined clients get batched I/O for free. Protocol
//! errors are answered with Redis's `-ERR Protocol error: ...` and close the connection; command
//! errors are ordinary replies.
//!
//! After each command the loop feeds what Redis's `call()` feeds: the slow log, the latency
//! monitor and the `MONITOR` stream ([`Monitors`]). A client that sends `MONITOR` stays in this
//! loop, which then also waits for lines from other clients' commands and writes them out.

use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use shoal_commands::{
    allowed_when_subscribed, resolve_with, subscribed_mode_error, unwatch_all, Action, BlockSpec,
    ClientState, CommandError, CommandSpec, Engine, Executed, Flags, Group, NameCache, ReplyMode,
};
use shoal_observe::slowlog;
use shoal_resp::{encode, Frame, Protocol, RequestParser};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

use crate::blocking::Unblock;
use crate::clients::{ClientInfo, Peer};
use crate::pubsub::{Drained, Hub, Mailbox};
use crate::shared::Shared;

/// Read buffer growth step. Large enough for a pipelined batch of small commands in one read.
const READ_CHUNK: usize = 16 * 1024;

/// Replies are written out mid-batch once this many bytes are waiting.
const FLUSH_AT: usize = 64 * 1024;

/// How far a `MONITOR` client may fall behind: bytes of lines queued for it that its connection
/// has not taken yet. Past this it is disconnected, the way Redis disconnects a client over its
/// output buffer limit, so a monitor that stops reading cannot make the server's memory grow.
/// Together with the bytes being written (at most [`FLUSH_AT`] plus a line), this bounds what one
/// monitor costs. A single line longer than this (a command with a huge argument) disconnects
/// every monitor. Redis counts monitors in the `normal` class of `client-output-buffer-limit`,
/// unlimited by default; this fixed bound governs them instead.
const MONITOR_BACKLOG_BYTES: usize = 32 << 20;

/// The most lines a `MONITOR` client may have queued (its channel's capacity), which bounds the
/// per-line overhead when lines are tiny. Reaching it disconnects the monitor too.
const MONITOR_BACKLOG_LINES: usize = 65_536;

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
    /// A `MONITOR` client fell too far behind the stream.
    MonitorLagging,
    /// The client's pending output passed its `client-output-buffer-limit` class (`normal`
    /// or `pubsub`), by the `hard` limit or the `soft` one for too long.
    OutputBufferLimit {
        class: &'static str,
        limit: &'static str,
    },
}

/// Serves one client until it ends.
pub async fn serve<S>(shared: Arc<Shared>, mut stream: S, info: Arc<ClientInfo>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let authenticated = !shared.live.has_password.load(Ordering::Relaxed);
    let mut client = ClientState::new(info.id, authenticated);
    let end = run(&shared, &mut stream, &info, &mut client).await;
    // A client that leaves takes its watched keys and its tracking with it.
    unwatch_all(&shared.ks, &mut client);
    if client.tracking.is_some() {
        shared.stop_tracking(info.id);
    }
    if let End::MonitorLagging = end {
        tracing::warn!(id = info.id, addr = %info.peer.addr(), limit_bytes = MONITOR_BACKLOG_BYTES, "closing MONITOR client that fell behind");
    }
    if let End::OutputBufferLimit { class, limit } = end {
        // Redis's words: "Client ... closed for overcoming of output buffer limits."
        tracing::warn!(id = info.id, addr = %info.peer.addr(), class, limit, "client closed for overcoming of output buffer limits");
    }
    tracing::debug!(id = info.id, addr = %info.peer.addr(), reason = ?end, "client closed");
    let _ = stream.shutdown().await;
    shared.clients.remove(info.id);
}

async fn run<S>(
    shared: &Arc<Shared>,
    stream: &mut S,
    info: &Arc<ClientInfo>,
    client: &mut ClientState,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut shutdown = shared.shutdown.subscribe();
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output = BytesMut::with_capacity(READ_CHUNK);
    let mut parser = RequestParser::new();
    let mut recent = Recent::default();
    let mut watch = Watch {
        monitors: &shared.monitors,
        kill: &info.kill_notify,
        sub: None,
    };
    let mut inbox = Inbox {
        hub: &shared.pubsub,
        info,
        mailbox: None,
        protocol: Protocol::Resp2,
    };
    // The kill and shutdown signals are waited on by futures that live as long as the
    // connection: once registered they stay registered, instead of joining and leaving the
    // waiter lists on every request (which cost a tenth of an unpipelined GET).
    let killed = info.kill_notify.notified();
    tokio::pin!(killed);
    let shut_down = shutdown.changed();
    tokio::pin!(shut_down);
    loop {
        // Run every complete request already buffered.
        let limits = shared.limits();
        loop {
            match parser.parse(&mut input, &limits) {
                Ok(Some(args)) => {
                    let monitoring = watch.is_on();
                    let step = run_command(
                        shared,
                        info,
                        client,
                        &args,
                        &mut output,
                        &mut recent,
                        &mut inbox,
                        monitoring,
                    )
                    .await;
                    match step {
                        // A long pipeline is answered in slices, so replies waiting in memory
                        // stay bounded however many requests one read brought in.
                        Step::Continue if output.len() >= FLUSH_AT => {
                            info.note_buffers(&input, &output);
                            let written = if watch.is_on() || inbox.is_on() {
                                guard(&watch, &inbox, write_out(shared, stream, &mut output)).await
                            } else {
                                // The common case skips the guard's select: only a monitor's
                                // write can be cut short.
                                write_out(shared, stream, &mut output)
                                    .await
                                    .map_err(|_| End::Io)
                            };
                            if let Err(end) = written {
                                return end;
                            }
                            info.note_flushed();
                        }
                        Step::Continue => {}
                        Step::Monitor => {
                            watch.start(info.id);
                            info.details.lock().monitor = true;
                        }
                        Step::Unmonitor => {
                            watch.stop();
                            info.details.lock().monitor = false;
                        }
                        Step::Block(block, spec) => {
                            // Replies to the commands before this one go out before it waits.
                            if write_out(shared, stream, &mut output).await.is_err() {
                                return End::Io;
                            }
                            info.note_flushed();
                            let blocked = Blocked {
                                shared,
                                info,
                                spec,
                                args: block.args.clone().unwrap_or_else(|| args.clone()),
                                block: *block,
                            };
                            let step = blocked
                                .wait(
                                    client,
                                    stream,
                                    &mut input,
                                    &mut output,
                                    &mut recent,
                                    &mut inbox,
                                    killed.as_mut(),
                                    shut_down.as_mut(),
                                )
                                .await;
                            match step {
                                Ok(Step::Close(end)) => {
                                    let _ = write_out(shared, stream, &mut output).await;
                                    return end;
                                }
                                Ok(_) => {}
                                Err(end) => return end,
                            }
                        }
                        Step::Close(end) => {
                            let _ =
                                guard(&watch, &inbox, write_out(shared, stream, &mut output)).await;
                            return end;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(id = info.id, error = %e.message, "protocol error");
                    // Redis counts protocol errors as error replies (`errorstat_ERR`).
                    shared.stats.record(None, 0, false, Some("ERR"), 0);
                    encode(
                        &Frame::Error(format!("ERR {}", e.message).into()),
                        client.protocol,
                        &mut output,
                    );
                    let _ = guard(&watch, &inbox, write_out(shared, stream, &mut output)).await;
                    return End::Protocol;
                }
            }
        }
        info.note_buffers(&input, &output);
        let written = if watch.is_on() || inbox.is_on() {
            guard(&watch, &inbox, write_out(shared, stream, &mut output)).await
        } else {
            // Once per batch, so this skips the guard's select as above. The two write sites
            // stay inline: an async helper for them cost 46 more instructions per request.
            write_out(shared, stream, &mut output)
                .await
                .map_err(|_| End::Io)
        };
        if let Err(end) = written {
            return end;
        }
        info.note_flushed();
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
        // Like Redis, which never times out replicas, a monitor is not idle while it watches.
        // A kill that came before this connection first waited is seen here.
        if info.killed.load(Ordering::Relaxed) {
            return End::Killed;
        }
        let monitoring = watch.is_on();
        // Nor are subscribers, which may wait for messages as long as they like.
        let timeout = if monitoring || client.subscriptions > 0 {
            0
        } else {
            shared.live.timeout_secs.load(Ordering::Relaxed)
        };
        let read = stream.read_buf(&mut input);
        let woke = tokio::select! {
            // The socket first: when a request is what woke the task, the other waits are not
            // polled at all. A client that keeps the socket busy still sees a kill, through the
            // flag checked after every read, and shutdown ends its task with the runtime.
            biased;
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
                Ok(Ok(n)) => Woke::Read(n),
            },
            // Not polled at all unless this client is monitoring.
            line = watch.next(), if monitoring => Woke::Line(line),
            // Nor this unless it has used pub/sub.
            _ = inbox.ready(), if inbox.is_on() => Woke::Mail,
            _ = &mut killed => return End::Killed,
            _ = &mut shut_down => return End::Shutdown,
        };
        match woke {
            Woke::Read(n) => {
                shared.stats.net(n as u64, 0);
                // Like Redis's `lastinteraction`, set when the client's bytes arrive (once per
                // read, not per command).
                let active = info.created.elapsed().as_millis() as u64;
                info.last_active_ms.store(active, Ordering::Relaxed);
                if info.killed.load(Ordering::Relaxed) {
                    return End::Killed;
                }
            }
            Woke::Line(None) => return End::MonitorLagging,
            Woke::Line(Some(line)) => {
                // `CLIENT REPLY OFF` silences the stream too, as Redis's reply suppression does.
                watch.take(line, &mut output, client.reply != ReplyMode::Off);
                if let Err(end) =
                    guard(&watch, &inbox, write_out(shared, stream, &mut output)).await
                {
                    return end;
                }
            }
            Woke::Mail => {
                // Messages go out whatever `CLIENT REPLY` says, as Redis's pushes do. A write's
                // worth at a time, until the mailbox is empty: its signal may already have been
                // taken while an earlier write waited.
                loop {
                    if let Err(end) = inbox.take(&mut output, FLUSH_AT) {
                        return end;
                    }
                    if output.is_empty() {
                        break;
                    }
                    info.note_buffers(&input, &output);
                    if let Err(end) =
                        guard(&watch, &inbox, write_out(shared, stream, &mut output)).await
                    {
                        return end;
                    }
                    info.note_flushed();
                }
            }
        }
    }
}

/// What a connection remembers of its previous command, to skip repeated work.
#[derive(Default)]
struct Recent {
    /// The name last published for `CLIENT LIST` (`cmd=`).
    last_cmd: &'static str,
    /// The last command name's spec.
    names: NameCache,
}

/// What woke the connection up between batches.
enum Woke {
    /// The socket delivered this many bytes.
    Read(usize),
    /// A `MONITOR` line arrived, or `None` when this monitor was cut off for falling behind.
    Line(Option<Bytes>),
    /// Pub/sub messages arrived, or this subscriber was cut off.
    Mail,
}

/// What the connection does after a command.
enum Step {
    Continue,
    /// Start streaming other clients' commands (`MONITOR`).
    Monitor,
    /// Stop streaming (`RESET` from a monitor).
    Unmonitor,
    /// Wait for one of these keys to be written, then run the command again (`BLPOP`, ...).
    Block(Box<BlockSpec>, &'static CommandSpec),
    Close(End),
}

/// A client parked by a blocking command, until it is served, times out, is released by
/// `CLIENT UNBLOCK`, disconnects, is killed or the server shuts down. It holds no lock while it
/// waits; see [`crate::blocking`] for the queueing rules.
struct Blocked<'a> {
    shared: &'a Arc<Shared>,
    info: &'a ClientInfo,
    spec: &'static CommandSpec,
    block: BlockSpec,
    /// The command to re-run each time a key is written.
    args: Vec<Bytes>,
}

impl Blocked<'_> {
    /// Waits, and returns what the connection does next (the reply is in `output`), or how the
    /// connection ended.
    #[allow(clippy::too_many_arguments)]
    async fn wait<S, K, D>(
        self,
        client: &mut ClientState,
        stream: &mut S,
        input: &mut BytesMut,
        output: &mut BytesMut,
        recent: &mut Recent,
        inbox: &mut Inbox<'_>,
        mut killed: std::pin::Pin<&mut K>,
        mut shut_down: std::pin::Pin<&mut D>,
    ) -> Result<Step, End>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        K: Future,
        D: Future,
    {
        let Blocked {
            shared,
            info,
            spec,
            block,
            args,
        } = self;
        let registration = shared
            .blocking
            .join(&shared.ks, info.id, block.keys.clone());
        let _shown = ShownBlocked::new(shared, info);
        // The deadline was computed on the injected clock; the timer runs on the monotonic one.
        let deadline = block.deadline.map(|d| {
            tokio::time::Instant::now() + Duration::from_millis(d.saturating_sub(shared.now_ms()))
        });
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(sleep);
        // The first run happens right after joining the queues, so a write that landed between
        // the command's first attempt and the joining is not missed.
        let mut rerun = true;
        // The first run is a re-check, not a wake-up: passing the turn on from it would make
        // every client joining a long queue re-run everyone behind it.
        let mut woken = false;
        loop {
            if rerun {
                client.woken = true;
                let step =
                    run_command(shared, info, client, &args, output, recent, inbox, false).await;
                client.woken = false;
                match step {
                    // Woken but not served: whoever waits behind may be (`Blocking::pass_on`).
                    Step::Block(..) if woken => shared.blocking.pass_on(&registration.waiter),
                    Step::Block(..) => {}
                    step => return Ok(step),
                }
            }
            rerun = false;
            tokio::select! {
                biased;
                _ = killed.as_mut() => return Err(End::Killed),
                _ = shut_down.as_mut() => return Err(End::Shutdown),
                _ = registration.waiter.wake.notified() => match registration.waiter.unblocked() {
                    Unblock::No => {
                        rerun = true;
                        woken = true;
                    }
                    Unblock::Timeout => break,
                    Unblock::Error => {
                        let error = CommandError::Other(
                            "UNBLOCKED client unblocked via CLIENT UNBLOCK".into(),
                        );
                        shared.stats.record(Some(spec), 0, false, Some(&error.code()), 0);
                        encode(&error.to_frame(), client.protocol, output);
                        return Ok(Step::Continue);
                    }
                },
                _ = &mut sleep => break,
                // A RESP3 subscriber blocked on keys still gets its messages, as in Redis.
                _ = inbox.ready(), if inbox.is_on() => {
                    inbox.take(output, FLUSH_AT)?;
                    tokio::select! {
                        r = write_out(shared, stream, output) => r.map_err(|_| End::Io)?,
                        end = inbox.cut() => return Err(end),
                    }
                }
                r = stream.read_buf(input) => match r {
                    Ok(0) => return Err(End::PeerClosed),
                    Err(_) => return Err(End::Io),
                    // Requests that arrive meanwhile wait their turn, as in Redis; the query
                    // buffer limit still applies.
                    Ok(n) => {
                        shared.stats.net(n as u64, 0);
                        if input.len() as u64 > shared.live.query_buffer_limit.load(Ordering::Relaxed) {
                            return Err(End::QueryBufferLimit);
                        }
                        if input.capacity() - input.len() < READ_CHUNK / 4 {
                            input.reserve(READ_CHUNK);
                        }
                    }
                },
            }
        }
        // Timed out (or released as if it had).
        shared.stats.record(Some(spec), 0, false, None, 0);
        if client.reply == ReplyMode::On {
            encode(&block.timeout_reply, client.protocol, output);
        }
        Ok(Step::Continue)
    }
}

/// Shows a client as blocked (`flags=b`, `blocked_clients`) while it exists.
struct ShownBlocked<'a> {
    shared: &'a Shared,
    info: &'a ClientInfo,
}

impl<'a> ShownBlocked<'a> {
    fn new(shared: &'a Shared, info: &'a ClientInfo) -> ShownBlocked<'a> {
        info.blocked.store(true, Ordering::Relaxed);
        shared.blocked_clients.fetch_add(1, Ordering::Relaxed);
        ShownBlocked { shared, info }
    }
}

impl Drop for ShownBlocked<'_> {
    fn drop(&mut self) {
        self.info.blocked.store(false, Ordering::Relaxed);
        self.shared.blocked_clients.fetch_sub(1, Ordering::Relaxed);
    }
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

/// Runs one command and queues its reply. `monitoring` is true while this client is in
/// `MONITOR` mode, where Redis treats it as a replica: it may not touch the keyspace, and
/// `CLIENT PAUSE` does not hold it.
#[allow(clippy::too_many_arguments)]
async fn run_command(
    shared: &Arc<Shared>,
    info: &ClientInfo,
    client: &mut ClientState,
    args: &[Bytes],
    output: &mut BytesMut,
    recent: &mut Recent,
    inbox: &mut Inbox<'_>,
    monitoring: bool,
) -> Step {
    // Resolve first so CLIENT LIST shows the command being run, and CLIENT PAUSE WRITE can tell
    // writes apart; the dispatcher reuses the result.
    let resolved = resolve_with(&shared.table, args, &mut recent.names);
    if let Ok(spec) = resolved {
        if !std::ptr::eq(spec.name, recent.last_cmd) {
            recent.last_cmd = spec.name;
            info.details.lock().last_cmd = spec.name;
        }
    }
    if !monitoring && shared.pause_until.load(Ordering::Relaxed) != 0 {
        // Inside MULTI, writes are only queued; EXEC is a write when it would run one.
        let is_write = match (&resolved, &client.multi) {
            (Ok(s), Some(m)) if s.name == "exec" => m.writes,
            (Ok(_), Some(_)) => false,
            (Ok(s), None) => s.flags.has(Flags::WRITE),
            (Err(_), _) => false,
        };
        wait_if_paused(shared, info, is_write).await;
    }
    // While a transaction or a script holds the keyspace gate, wait for it here, without
    // parking this worker thread (which serves other connections, perhaps the one about to send
    // SCRIPT KILL); past `busy-reply-threshold` a script makes this `-BUSY`.
    let mut busy = None;
    if shared.ks.gate.is_exclusive() {
        if let Ok(spec) = resolved {
            if !spec.flags.has(Flags::ALLOW_BUSY) {
                busy = wait_for_gate(shared).await;
            }
        }
    }
    info.command_started(args);
    let started = Instant::now();
    let ex = match resolved {
        Ok(spec) if busy.is_some() => {
            if let Some(m) = client.multi.as_mut() {
                m.aborted = true;
            }
            refuse(spec, CommandError::Other(busy.unwrap_or_default().into()))
        }
        Ok(spec) if monitoring && touches_keyspace(spec) => refuse(
            spec,
            CommandError::err("Replica can't interact with the keyspace"),
        ),
        // A subscribed RESP2 client reads every reply as a pub/sub message, so Redis lets it
        // run only the commands that make sense there.
        Ok(spec)
            if client.subscriptions > 0
                && client.protocol == Protocol::Resp2
                && !allowed_when_subscribed(spec.name) =>
        {
            refuse(spec, subscribed_mode_error(spec.name))
        }
        resolved => {
            let engine = Engine {
                table: &shared.table,
                ks: &shared.ks,
                server: shared.as_ref(),
            };
            let now_us = shared.clock.now_us();
            match resolved {
                // A script may run for long: its worker hands its other connections to another
                // thread first, so they can still be answered (-BUSY) and send SCRIPT KILL.
                Ok(spec) if spec.group == Group::Scripting && spec.exclusive => {
                    tokio::task::block_in_place(|| {
                        engine.execute_resolved(resolved, client, args, now_us)
                    })
                }
                _ => engine.execute_resolved(resolved, client, args, now_us),
            }
        }
    };
    // DEBUG SLEEP answers after the pause, as in Redis; and since Redis sleeps inside the
    // command, the pause counts as the command's run time for the statistics, the slow log and
    // the latency monitor.
    if let Some(Action::Sleep(d)) = client.action {
        // Boxed, so the timer's state does not enlarge every command's future.
        Box::pin(tokio::time::sleep(d)).await;
    }
    // Keyspace notifications go out before the command's own reply, as in Redis.
    if !ex.journal.notes.is_empty() {
        shared.publish_notifications(&ex.journal.notes);
    }
    // Clients blocked on a key this command wrote get their turn. Journals carry key events
    // only while some client is blocked.
    if ex.journal.events.is_some() || ex.journal.swapped_dbs.is_some() {
        shared.blocking.signal(&ex.journal);
    }
    // A blocking command with nothing to serve is neither answered nor counted yet: Redis counts
    // it once, when it is finally served or times out.
    if matches!(client.action, Some(Action::Block(_))) {
        if let (Some(Action::Block(block)), Some(spec)) = (client.action.take(), ex.spec) {
            return Step::Block(Box::new(block), spec);
        }
    }
    let finished = Instant::now();
    info.command_finished();
    let nanos = finished.duration_since(started).as_nanos() as u64;
    // Client-side caching: keys this command read are remembered, keys it changed are
    // invalidated; what this client itself is owed is written after its reply.
    let owed = if shared.tracking.active() > 0 {
        track(shared, client, &ex, args)
    } else {
        Vec::new()
    };
    // The commands a transaction ran are counted and shown to monitors one by one, before
    // the EXEC itself, as Redis does. Their individual run times are not measured (handlers
    // never read a clock); the EXEC's covers them all.
    if !client.nested.is_empty() {
        record_nested(shared, info, client);
    }
    let code = ex.error.as_ref().map(|e| e.code());
    // A queued command is counted when EXEC runs it, not when it is queued.
    shared.stats.record(
        if ex.queued { None } else { ex.spec },
        nanos,
        ex.rejected,
        code.as_deref(),
        ex.journal.dirty,
    );
    // Like Redis, only commands that ran are observed, not those refused before running or
    // queued for EXEC.
    if let (false, false, Some(spec)) = (ex.rejected, ex.queued, ex.spec) {
        observe(shared, info, client, spec, args, nanos / 1000);
    }

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
    // Pub/sub messages and confirmations queued meanwhile go first: Redis writes a message
    // published to the client itself before the reply to its PUBLISH.
    // The subscription count catches subscriptions made where the action was not returned
    // (a command run inside another, such as EXEC), so the mailbox is always taken and left.
    // A tracking client receives its invalidations through a mailbox too.
    let subscribed_elsewhere =
        (client.subscriptions > 0 || client.tracking.is_some()) && !inbox.is_on();
    if action == Some(Action::Pubsub)
        || subscribed_elsewhere
        || (inbox.is_on() && inbox.protocol != client.protocol)
    {
        inbox.open(client);
    }
    if inbox.is_on() {
        if let Err(end) = inbox.take(output, usize::MAX) {
            return Step::Close(end);
        }
    }
    // Redis ignores MONITOR from a client that is already monitoring, without a reply; the
    // (un)subscribe commands' replies were in the mailbox.
    let ignored = (monitoring && action == Some(Action::Monitor)) || action == Some(Action::Pubsub);
    if !skip && !ignored {
        encode(&ex.reply, client.protocol, output);
        for frame in &owed {
            encode(frame, client.protocol, output);
        }
        if output.len() > REPLY_BUFFER_BYTES {
            if let Some(end) = over_output_limit(shared, client, output) {
                return Step::Close(end);
            }
        }
    }
    if client.close_after_reply {
        return Step::Close(End::Quit);
    }
    match action {
        Some(Action::Monitor) if !monitoring => Step::Monitor,
        // RESET turns a monitor back into an ordinary client.
        _ if monitoring && ex.error.is_none() && ex.spec.is_some_and(|s| s.name == "reset") => {
            Step::Unmonitor
        }
        _ => Step::Continue,
    }
}

/// The reply bytes Redis does not count against `client-output-buffer-limit`: its fixed 16 KiB
/// reply buffer; only the reply list beyond it counts.
const REPLY_BUFFER_BYTES: usize = 16 * 1024;

/// Checks the replies waiting in `output` against the hard limit of the client's
/// `client-output-buffer-limit` class (`pubsub` while subscribed, `normal` otherwise; a
/// subscriber's mailbox is checked by the hub as messages arrive). Over it, the replies are
/// dropped unsent and the client is closed, as Redis does. The soft limit needs the buffer to
/// stay full for seconds, which replies written at the end of each batch never do here.
#[cold]
fn over_output_limit(shared: &Shared, client: &ClientState, output: &mut BytesMut) -> Option<End> {
    let (class, hard) = if client.subscriptions > 0 {
        ("pubsub", shared.pubsub.hard_limit())
    } else {
        (
            "normal",
            shared.live.normal_output_hard.load(Ordering::Relaxed),
        )
    };
    let counted = (output.len() - REPLY_BUFFER_BYTES) as u64;
    if hard == 0 || counted < hard {
        return None;
    }
    output.clear();
    Some(End::OutputBufferLimit {
        class,
        limit: "hard",
    })
}

/// True for the commands Redis refuses from replicas, and so from monitors: reads, writes and
/// commands that may be replicated.
fn touches_keyspace(spec: &CommandSpec) -> bool {
    spec.flags.has(Flags::READONLY)
        || spec.flags.has(Flags::WRITE)
        || spec.flags.has(Flags::MAY_REPLICATE)
}

/// The outcome of a command refused before it ran.
fn refuse(spec: &'static CommandSpec, error: CommandError) -> Executed {
    Executed {
        reply: error.to_frame(),
        spec: Some(spec),
        error: Some(error),
        rejected: true,
        queued: false,
        journal: Default::default(),
    }
}

/// Waits until nobody holds the keyspace gate alone; returns the `-BUSY` text instead once a
/// running script is past `busy-reply-threshold`.
#[cold]
#[inline(never)]
async fn wait_for_gate(shared: &Shared) -> Option<&'static str> {
    while shared.ks.gate.is_exclusive() {
        if let Some(busy) = shared.script.busy(shared.monotonic_ms()) {
            return Some(busy);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

/// Client-side caching after one command: remembers the keys a tracking client read (honouring
/// OPTIN/OPTOUT and `CLIENT CACHING`), invalidates the keys the command changed or flushed, and
/// returns the frames this client is owed.
#[cold]
#[inline(never)]
fn track(shared: &Shared, client: &mut ClientState, ex: &Executed, args: &[Bytes]) -> Vec<Frame> {
    let mut owed = Vec::new();
    if let (Some(mode), Some(spec)) = (client.tracking, ex.spec) {
        let wanted =
            !((mode.optin && !client.tracking_caching) || (mode.optout && client.tracking_caching));
        if !mode.bcast && wanted && !ex.rejected && !ex.queued {
            let reads = |spec: &CommandSpec| {
                spec.flags.has(Flags::READONLY) && !spec.flags.has(Flags::PUBSUB)
            };
            if reads(spec) {
                let keys = spec.key_positions(args).map(|i| &args[i][..]);
                owed.extend(shared.tracking.remember(client.id, keys));
            }
            for n in &client.nested {
                if let (Some(s), false) = (n.spec, n.rejected) {
                    if reads(s) {
                        let keys = s.key_positions(&n.args).map(|i| &n.args[i][..]);
                        owed.extend(shared.tracking.remember(client.id, keys));
                    }
                }
            }
        }
        // As in Redis, any CLIENT subcommand (not only CACHING) leaves the flag for the next
        // command, and so does queueing inside MULTI.
        if client.tracking_caching && !spec.name.starts_with("client|") && client.multi.is_none() {
            client.tracking_caching = false;
        }
    }
    let flushes = |spec: Option<&CommandSpec>, failed: bool| {
        !failed && spec.is_some_and(|s| matches!(s.name, "flushall" | "flushdb"))
    };
    if flushes(ex.spec, ex.error.is_some() || ex.queued)
        || client
            .nested
            .iter()
            .any(|n| flushes(n.spec, n.error.is_some()))
    {
        owed.extend(shared.tracking.flush());
    }
    if let Some(events) = &ex.journal.events {
        owed.extend(
            shared
                .tracking
                .invalidate(client.id, events.iter().map(|e| &e.key[..])),
        );
    }
    crate::tracking::deliver(
        shared,
        owed,
        client.id,
        client.protocol,
        client.subscriptions > 0,
    )
}

/// Counts the commands an `EXEC` ran and shows them to monitors.
#[cold]
#[inline(never)]
fn record_nested(shared: &Shared, info: &ClientInfo, client: &mut ClientState) {
    let nested = std::mem::take(&mut client.nested);
    for n in &nested {
        let code = n.error.as_ref().map(|e| e.code());
        shared
            .stats
            .record(n.spec, 0, n.rejected, code.as_deref(), 0);
        if let (false, Some(spec)) = (n.rejected, n.spec) {
            observe(shared, info, client, spec, &n.args, 0);
        }
    }
}

/// Feeds what Redis feeds after running a command: the slow log, the latency monitor and the
/// `MONITOR` stream. Each costs one relaxed load when it is off or the command does not qualify;
/// this check is inlined into the command path, the work itself is not.
#[inline]
fn observe(
    shared: &Shared,
    info: &ClientInfo,
    client: &ClientState,
    spec: &'static CommandSpec,
    args: &[Bytes],
    duration_us: u64,
) {
    let live = &shared.live;
    let slower_than = live.slowlog_slower_than.load(Ordering::Relaxed);
    let slow = slower_than >= 0
        && duration_us >= slower_than as u64
        && !spec.flags.has(Flags::SKIP_SLOWLOG);
    let threshold_ms = live.latency_threshold_ms.load(Ordering::Relaxed);
    let spike = threshold_ms > 0 && duration_us / 1000 >= threshold_ms;
    // Redis never shows administrative commands to monitors, as too dangerous.
    let watched = shared.monitors.active()
        && !spec.flags.has(Flags::ADMIN)
        && !spec.flags.has(Flags::SKIP_MONITOR);
    if slow || spike || watched {
        record_observed(
            shared,
            info,
            client,
            spec,
            args,
            duration_us,
            [slow, spike, watched],
        );
    }
}

/// The slow log entry, latency event and `MONITOR` line of one command, for those of the three
/// (`[slow, spike, watched]`) that apply.
#[cold]
#[inline(never)]
fn record_observed(
    shared: &Shared,
    info: &ClientInfo,
    client: &ClientState,
    spec: &'static CommandSpec,
    args: &[Bytes],
    duration_us: u64,
    [slow, spike, watched]: [bool; 3],
) {
    let live = &shared.live;
    let now_us = shared.clock.now_us();
    let now_secs = now_us / 1_000_000;
    if spike {
        let event = if spec.flags.has(Flags::FAST) {
            "fast-command"
        } else {
            "command"
        };
        shared
            .latency
            .lock()
            .add(event, duration_us / 1000, now_secs);
    }
    let secret = slowlog::secret_args(spec.name, args);
    if slow {
        let addr = info.peer.addr();
        // The slow log keeps every entry; the log file gets at most a line a second, since
        // `slowlog-log-slower-than 0` makes every command slow.
        if let Some(suppressed) = shared.slow_log_lines.admit(now_secs) {
            tracing::info!(
                command = spec.name,
                duration_us,
                client = %addr,
                id = info.id,
                suppressed,
                "slow command"
            );
        }
        let entry = slowlog::Entry {
            id: 0,
            time: now_secs,
            duration_us,
            args: slowlog::logged_args(args, &secret),
            addr,
            name: client.name.as_ref().map(|n| n.to_vec()).unwrap_or_default(),
        };
        let max_len = live.slowlog_max_len.load(Ordering::Relaxed) as usize;
        shared.slowlog.lock().push(entry, max_len);
    }
    if watched {
        let line = monitor_line(now_us, client.db, &info.peer, args, &secret);
        shared.monitors.feed(&line);
    }
}

/// One `MONITOR` line as Redis writes it: `+<seconds>.<micros> [<db> <client>] "arg" ...`, the
/// client as `ip:port` or `unix:<socket path>`, each argument quoted and escaped like Redis's
/// `sdscatrepr`, the positions in `secret` shown as `(redacted)`.
fn monitor_line(now_us: u64, db: usize, peer: &Peer, args: &[Bytes], secret: &[usize]) -> Bytes {
    let size = 48 + args.iter().map(|a| a.len() + 3).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    let _ = write!(
        out,
        "+{}.{:06} [{db} ",
        now_us / 1_000_000,
        now_us % 1_000_000
    );
    let _ = match peer {
        Peer::Tcp { addr, .. } => write!(out, "{addr}] "),
        Peer::Unix { path } => write!(out, "unix:{path}] "),
    };
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        let shown: &[u8] = if secret.contains(&i) {
            slowlog::REDACTED
        } else {
            arg
        };
        quote(&mut out, shown);
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// Appends `s` in double quotes, with backslash, double quote, newline, carriage return, tab,
/// bell and backspace escaped C-style, other printable ASCII as is, and every other byte as
/// `\xhh`.
fn quote(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            b' '..=b'~' => out.push(c),
            _ => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push(b'"');
}

/// The clients in `MONITOR` mode, and the lines on their way to them.
///
/// Every executed command asks [`Monitors::active`], one relaxed atomic load, and builds its
/// line only when someone is watching. Each monitor has a bounded queue (a channel of at most
/// [`MONITOR_BACKLOG_LINES`] lines and [`MONITOR_BACKLOG_BYTES`] bytes); a monitor that falls
/// that far behind is cut off and its connection closes.
#[derive(Default)]
pub struct Monitors {
    /// The number of monitors, so that commands need no lock to learn there are none.
    count: AtomicUsize,
    sinks: Mutex<Vec<Sink>>,
}

/// The sending side of one monitor's queue.
struct Sink {
    id: u64,
    tx: mpsc::Sender<Bytes>,
    state: Arc<SinkState>,
}

/// What both sides of one monitor's queue share.
#[derive(Default)]
struct SinkState {
    /// Bytes sent and not yet taken by the monitor's connection.
    queued: AtomicUsize,
    /// Signalled when the monitor is cut off for falling behind.
    cut: Notify,
}

/// The receiving side of one monitor's queue, held by its connection.
struct Subscription {
    rx: mpsc::Receiver<Bytes>,
    state: Arc<SinkState>,
}

impl Monitors {
    /// True when at least one client is monitoring.
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) != 0
    }

    /// Queues `line` for every monitor, cutting off those that fell too far behind.
    pub fn feed(&self, line: &Bytes) {
        let mut sinks = self.sinks.lock();
        sinks.retain(|s| {
            let queued = s.state.queued.fetch_add(line.len(), Ordering::Relaxed) + line.len();
            let kept = queued <= MONITOR_BACKLOG_BYTES && s.tx.try_send(line.clone()).is_ok();
            if !kept {
                // The connection learns it was cut off from this signal, or from its channel
                // closing once the sender is dropped here.
                s.state.cut.notify_one();
            }
            kept
        });
        self.count.store(sinks.len(), Ordering::Relaxed);
    }

    fn subscribe(&self, id: u64) -> Subscription {
        let (tx, rx) = mpsc::channel(MONITOR_BACKLOG_LINES);
        let state = Arc::new(SinkState::default());
        let mut sinks = self.sinks.lock();
        sinks.push(Sink {
            id,
            tx,
            state: state.clone(),
        });
        self.count.store(sinks.len(), Ordering::Relaxed);
        Subscription { rx, state }
    }

    fn unsubscribe(&self, id: u64) {
        let mut sinks = self.sinks.lock();
        sinks.retain(|s| s.id != id);
        self.count.store(sinks.len(), Ordering::Relaxed);
    }
}

/// One connection's side of `MONITOR`: its subscription while it monitors, which it leaves when
/// dropped.
struct Watch<'a> {
    monitors: &'a Monitors,
    /// The connection's `CLIENT KILL` signal, which also ends a monitor's stuck write.
    kill: &'a Notify,
    sub: Option<(u64, Subscription)>,
}

impl Watch<'_> {
    fn is_on(&self) -> bool {
        self.sub.is_some()
    }

    fn start(&mut self, id: u64) {
        if self.sub.is_none() {
            self.sub = Some((id, self.monitors.subscribe(id)));
        }
    }

    fn stop(&mut self) {
        if let Some((id, _)) = self.sub.take() {
            self.monitors.unsubscribe(id);
        }
    }

    /// The next line for this monitor, or `None` once it has been cut off; never completes for
    /// a connection that is not monitoring.
    async fn next(&mut self) -> Option<Bytes> {
        let Some((_, sub)) = self.sub.as_mut() else {
            return std::future::pending().await;
        };
        tokio::select! {
            line = sub.rx.recv() => line,
            _ = sub.state.cut.notified() => None,
        }
    }

    /// Moves `first` and the lines queued behind it (up to a write's worth) into `output`, or
    /// drops them when `deliver` is false.
    fn take(&mut self, first: Bytes, output: &mut BytesMut, deliver: bool) {
        let Some((_, sub)) = self.sub.as_mut() else {
            return;
        };
        let mut line = first;
        loop {
            sub.state.queued.fetch_sub(line.len(), Ordering::Relaxed);
            if deliver {
                output.extend_from_slice(&line);
            }
            if output.len() >= FLUSH_AT {
                break;
            }
            match sub.rx.try_recv() {
                Ok(next) => line = next,
                Err(_) => break,
            }
        }
    }

    /// Runs a write, giving up when this monitor is cut off or killed meanwhile: a monitor that
    /// stopped reading would otherwise hold its connection in the write forever.
    async fn guard(&self, write: impl Future<Output = std::io::Result<()>>) -> Result<(), End> {
        match &self.sub {
            None => write.await.map_err(|_| End::Io),
            Some((_, sub)) => tokio::select! {
                r = write => r.map_err(|_| End::Io),
                _ = sub.state.cut.notified() => Err(End::MonitorLagging),
                _ = self.kill.notified() => Err(End::Killed),
            },
        }
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One connection's side of pub/sub: its mailbox in the hub, from its first (un)subscribe
/// command until it disconnects, when it leaves every channel.
struct Inbox<'a> {
    hub: &'a Hub,
    info: &'a ClientInfo,
    mailbox: Option<Arc<Mailbox>>,
    /// The protocol the mailbox encodes in.
    protocol: Protocol,
}

impl Inbox<'_> {
    fn is_on(&self) -> bool {
        self.mailbox.is_some()
    }

    /// Takes the client's mailbox from the hub after its first (un)subscribe command, and keeps
    /// the mailbox's protocol in step with the client's (`HELLO` may switch it).
    fn open(&mut self, client: &ClientState) {
        match &self.mailbox {
            None => {
                self.mailbox = self.hub.mailbox(client.id);
                // A mailbox made for client-side caching starts without a protocol.
                if let Some(m) = &self.mailbox {
                    m.set_protocol(client.protocol);
                }
                self.info.details.lock().mailbox = self.mailbox.clone();
            }
            Some(m) => m.set_protocol(client.protocol),
        }
        self.protocol = client.protocol;
    }

    /// Moves queued messages into `output` (until it holds `upto` bytes), or reports that this
    /// subscriber was cut off for exceeding its output buffer limit.
    fn take(&self, output: &mut BytesMut, upto: usize) -> Result<(), End> {
        match self.mailbox.as_ref().map(|m| m.drain(output, upto)) {
            Some(Drained::Cut(limit)) => Err(End::OutputBufferLimit {
                class: "pubsub",
                limit,
            }),
            _ => Ok(()),
        }
    }

    /// Completes when messages may be waiting; never for a client without a mailbox. Checks
    /// the queue first, since a write's guard may have taken the signal of what is there.
    async fn ready(&self) {
        match &self.mailbox {
            Some(m) if m.has_news() => {}
            Some(m) => m.ready().await,
            None => std::future::pending().await,
        }
    }

    /// Completes once this subscriber is cut off; never otherwise.
    async fn cut(&self) -> End {
        let Some(m) = &self.mailbox else {
            return std::future::pending().await;
        };
        loop {
            if let Some(which) = m.cut_reason() {
                return End::OutputBufferLimit {
                    class: "pubsub",
                    limit: which,
                };
            }
            m.ready().await;
        }
    }
}

impl Drop for Inbox<'_> {
    fn drop(&mut self) {
        // Unconditionally: a command run inside another (EXEC) may have registered the client
        // without this connection taking its mailbox. Free when the hub has no clients.
        self.hub.leave(self.info.id);
        if self.mailbox.take().is_some() {
            self.info.details.lock().mailbox = None;
        }
    }
}

/// Runs a write for a monitor or a subscriber, giving up when it is cut off or killed
/// meanwhile: a client that stopped reading would otherwise hold its connection in the write
/// forever, while its queue is already bounded by the hub or the monitor stream.
async fn guard(
    watch: &Watch<'_>,
    inbox: &Inbox<'_>,
    write: impl Future<Output = std::io::Result<()>>,
) -> Result<(), End> {
    if !inbox.is_on() {
        return watch.guard(write).await;
    }
    tokio::select! {
        r = watch.guard(write) => r,
        end = inbox.cut() => Err(end),
        _ = watch.kill.notified() => Err(End::Killed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&[u8]]) -> Vec<Bytes> {
        list.iter().map(|a| Bytes::copy_from_slice(a)).collect()
    }

    fn tcp() -> Peer {
        let addr = "127.0.0.1:40000".parse().unwrap();
        Peer::Tcp { addr, local: addr }
    }

    #[test]
    fn monitor_line_escapes_like_sdscatrepr() {
        let line = monitor_line(
            1_700_000_000_000_042,
            5,
            &tcp(),
            &args(&[b"SET", b"k", b"a\x00b\"\\\n\r\t\x07\x08\xff \xc3\xa9"]),
            &[],
        );
        assert_eq!(
            &line[..],
            &b"+1700000000.000042 [5 127.0.0.1:40000] \"SET\" \"k\" \"a\\x00b\\\"\\\\\\n\\r\\t\\a\\b\\xff \\xc3\\xa9\"\r\n"[..]
        );
    }

    #[test]
    fn monitor_line_names_the_unix_socket_and_hides_secrets() {
        let unix = Peer::Unix {
            path: "/tmp/shoal.sock".into(),
        };
        let line = monitor_line(
            2_000_000,
            0,
            &unix,
            &args(&[b"AUTH", b"pw"]),
            &slowlog::secret_args("auth", &args(&[b"AUTH", b"pw"])),
        );
        assert_eq!(
            &line[..],
            &b"+2.000000 [0 unix:/tmp/shoal.sock] \"AUTH\" \"(redacted)\"\r\n"[..]
        );
    }

    #[test]
    fn registry_costs_one_load_when_empty_and_forgets_leavers() {
        let monitors = Monitors::default();
        assert!(!monitors.active());
        let kill = Notify::new();
        let mut watch = Watch {
            monitors: &monitors,
            kill: &kill,
            sub: None,
        };
        watch.start(7);
        assert!(monitors.active());
        monitors.feed(&Bytes::from_static(b"+1.000000 [0 x] \"PING\"\r\n"));
        let mut output = BytesMut::new();
        let (_, sub) = watch.sub.as_mut().unwrap();
        let first = sub.rx.try_recv().unwrap();
        watch.take(first, &mut output, true);
        assert_eq!(&output[..], b"+1.000000 [0 x] \"PING\"\r\n");
        drop(watch);
        assert!(!monitors.active());
    }

    #[test]
    fn a_monitor_that_stops_reading_is_cut_off_within_its_bound() {
        let monitors = Monitors::default();
        let kill = Notify::new();
        let mut watch = Watch {
            monitors: &monitors,
            kill: &kill,
            sub: None,
        };
        watch.start(1);
        let line = Bytes::from(vec![b'x'; 64 * 1024]);
        let mut fed = 0;
        while monitors.active() {
            let (_, sub) = watch.sub.as_ref().unwrap();
            assert!(sub.state.queued.load(Ordering::Relaxed) <= MONITOR_BACKLOG_BYTES);
            monitors.feed(&line);
            fed += 1;
            assert!(
                fed <= MONITOR_BACKLOG_BYTES / line.len() + 1,
                "never cut off"
            );
        }
        assert_eq!(fed, MONITOR_BACKLOG_BYTES / line.len() + 1);
        // The connection learns it was cut off: its stream ends.
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async { while watch.next().await.is_some() {} });
    }

    #[test]
    fn tiny_lines_are_bounded_by_count() {
        let monitors = Monitors::default();
        let kill = Notify::new();
        let mut watch = Watch {
            monitors: &monitors,
            kill: &kill,
            sub: None,
        };
        watch.start(1);
        let line = Bytes::from_static(b"+0.000000 [0 x] \"PING\"\r\n");
        for _ in 0..MONITOR_BACKLOG_LINES {
            monitors.feed(&line);
        }
        assert!(monitors.active());
        monitors.feed(&line);
        assert!(!monitors.active());
    }
}
