//! Bad input: oversized bulks, malformed frames, million-argument commands, clients that stall
//! mid-frame or never finish a bulk, thousands of idle connections, `maxclients`, and binary
//! garbage. Each gets Redis's exact error or a clean close, never a crash, with memory bounded.
//! `SHOAL_TEST_AGAINST=redis` runs every test against redis-server instead, which is how the
//! expectations here were checked to be Redis's own.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use shoal_testkit::probe::{self, SplitMix64};
use shoal_testkit::{render, target_kind, Frame, RawClient, ServerKind, ServerProcess};

/// The server under test: Shoal's binary, unless redirected to Redis.
fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

fn start(args: &[&str]) -> ServerProcess {
    ServerProcess::start(candidate(), args).expect("start the server under test")
}

/// How long a test waits for the server to close a connection or reach a state. It only
/// bounds the wait for an event (a healthy server takes milliseconds), so it is generous enough
/// for a debug build on a loaded two-core machine.
const EVENT_DEADLINE: Duration = Duration::from_secs(30);

/// How often polled conditions are checked.
const POLL: Duration = Duration::from_millis(50);

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, EVENT_DEADLINE).expect("connect");
    stream.set_read_timeout(Some(EVENT_DEADLINE)).unwrap();
    stream.set_write_timeout(Some(EVENT_DEADLINE)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// How a connection ended, seen from the client.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// An orderly close (read returned 0).
    Eof,
    /// The server closed while our unread bytes were still in its socket, so the kernel sent a
    /// reset; for a server that disconnects a client mid-stream this is as clean as EOF.
    Reset,
}

/// Reads until the server closes the connection and returns what arrived. Fails the test if
/// the connection stays open for `EVENT_DEADLINE`.
fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, Ending) {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return (out, Ending::Eof),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return (out, Ending::Reset)
            }
            Err(e) => panic!(
                "the server did not close the connection ({e}); received so far: {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// Sends `bytes` on a fresh connection and returns everything the server answered before it
/// closed the connection.
fn send_and_read_until_closed(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    stream.write_all(bytes).expect("send");
    let (reply, ending) = read_until_closed(&mut stream);
    assert_eq!(
        ending,
        Ending::Eof,
        "the whole input was read by the server, so the close should be orderly"
    );
    reply
}

/// Checks that the process is alive and answers PING on a fresh connection.
fn assert_serving(server: &mut ServerProcess) {
    assert!(
        server.is_running(),
        "the server exited; log:\n{}",
        server.log()
    );
    let mut client = RawClient::connect(server.addr()).expect("connect a fresh client");
    let reply = client
        .command(&[b"PING"])
        .expect("PING on a fresh connection");
    assert_eq!(reply, Frame::Simple("PONG".into()));
    let log = server.log();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
}

/// Builds `*<n>\r\n$<len(name)>\r\n<name>\r\n` followed by `n - 1` arguments from `arg(i)`.
fn big_command(name: &str, args: usize, arg: impl Fn(usize) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(args * 16 + 64);
    out.extend_from_slice(format!("*{}\r\n${}\r\n{name}\r\n", args + 1, name.len()).as_bytes());
    for i in 0..args {
        let a = arg(i);
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(&a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends one pre-encoded command and reads its reply's raw bytes. The write runs on its own
/// thread so that a server which answers (or closes) before reading everything cannot
/// deadlock the test.
fn send_big_command(addr: SocketAddr, bytes: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut client = RawClient::connect_with_timeout(addr, EVENT_DEADLINE)?;
    let mut writer = client.stream().try_clone()?;
    let sender = std::thread::spawn(move || writer.write_all(&bytes));
    let reply = client.read_reply().map(|r| r.raw.to_vec());
    let sent = sender.join().expect("writer thread");
    match (reply, sent) {
        (Ok(reply), _) => Ok(reply),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(w)) => Err(io::Error::new(e.kind(), format!("{e}; while writing: {w}"))),
    }
}

#[test]
fn oversized_bulk_gets_protocol_error_and_close() {
    let mut server = start(&["--proto-max-bulk-len", "1mb"]);
    // One byte over proto-max-bulk-len is refused from the length line alone, before any of
    // the payload is buffered.
    let reply = send_and_read_until_closed(server.addr(), b"*1\r\n$1048577\r\n");
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    // Exactly proto-max-bulk-len is still accepted, so the limit is not off by one.
    let payload = vec![b'x'; 1024 * 1024];
    let mut client = RawClient::connect(server.addr()).expect("connect");
    let reply = client.command(&[b"ECHO", &payload]).expect("ECHO 1 MiB");
    assert_eq!(reply, Frame::Bulk(payload.into()));
    assert_serving(&mut server);
}

#[test]
fn malformed_frames_get_protocol_errors_and_close() {
    let mut server = start(&[]);
    // A client connected before the bad ones must be unaffected by them.
    let mut bystander = RawClient::connect(server.addr()).expect("connect the bystander");
    let too_long_count = [b"*".as_slice(), &[b'1'; 70_000]].concat();
    let too_long_inline = vec![b'a'; 70_000];
    let too_long_bulk_len = [b"*1\r\n$".as_slice(), &[b'1'; 70_000]].concat();
    let cases: Vec<(&str, &[u8], &str)> = vec![
        (
            "non-numeric multibulk count",
            b"*abc\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            "simple string where a bulk is expected",
            b"*1\r\n+foo\r\n",
            "-ERR Protocol error: expected '$', got '+'\r\n",
        ),
        (
            "integer where a bulk is expected",
            b"*1\r\n:4\r\n",
            "-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            "unbalanced double quote inline",
            b"SET \"foo bar\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            "closing quote followed by a character inline",
            b"ECHO \"a\"b\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            "unbalanced single quote inline",
            b"ECHO 'a\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            // Redis 7 caps the count at INT_MAX (Redis 6 capped it at 1048576).
            "multibulk count above INT_MAX",
            b"*2147483648\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            "non-numeric bulk length",
            b"*1\r\n$abc\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            "negative bulk length",
            b"*1\r\n$-1\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            "multibulk count line longer than 64 KiB",
            &too_long_count,
            "-ERR Protocol error: too big mbulk count string\r\n",
        ),
        (
            "bulk length line longer than 64 KiB",
            &too_long_bulk_len,
            "-ERR Protocol error: too big bulk count string\r\n",
        ),
        (
            "inline request longer than 64 KiB",
            &too_long_inline,
            "-ERR Protocol error: too big inline request\r\n",
        ),
        (
            // Replies to the good commands before the bad frame are still delivered.
            "valid command then a bad frame",
            b"*1\r\n$4\r\nPING\r\n*x\r\n",
            "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n",
        ),
    ];
    for (what, input, expected) in cases {
        let reply = send_and_read_until_closed(server.addr(), input);
        assert_eq!(String::from_utf8_lossy(&reply), expected, "{what}");
        let pong = bystander.command(&[b"PING"]).expect("bystander PING");
        assert_eq!(pong, Frame::Simple("PONG".into()), "after {what}");
    }
    assert_serving(&mut server);
}

#[test]
fn two_million_argument_command_is_accepted_like_redis_7() {
    let mut redis = ServerProcess::start(ServerKind::Redis, &[]).expect("start redis");
    let mut server = start(&[]);
    // `*2000000` is over the 1048576 of Redis 6 but far below Redis 7's INT_MAX, so Redis 7
    // reads all the arguments and answers with the unknown-command error.
    let command = big_command("nosuchcommand", 1_999_999, |_| b"a".to_vec());
    let expected = send_big_command(redis.addr(), command.clone()).expect("redis reply");
    let got = send_big_command(server.addr(), command).expect("reply of the server under test");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );
    assert_serving(&mut redis);
    assert_serving(&mut server);
}

/// Runs the million-argument checks against `server`, with `redis` as the oracle: an unknown
/// command and a DEL of a million keys must get Redis's exact replies, and the server's peak
/// RSS must stay far below what a copy per argument object would cost.
fn million_argument_commands_match_redis(server: &mut ServerProcess, redis: &mut ServerProcess) {
    let unknown = big_command("nosuchcommand", 999_999, |_| b"a".to_vec());
    // Three of the million keys exist, spread over different slots, so DEL must find them
    // among the others.
    let del = big_command("DEL", 1_000_000, |i| format!("key:{i}").into_bytes());
    for target in [&mut *redis, &mut *server] {
        let mut client = RawClient::connect(target.addr()).expect("connect");
        for key in ["key:0", "key:500000", "key:999999"] {
            let reply = client.command(&[b"SET", key.as_bytes(), b"v"]).unwrap();
            assert_eq!(reply, Frame::Simple("OK".into()));
        }
    }
    let expected_unknown = send_big_command(redis.addr(), unknown.clone()).expect("redis");
    let expected_del = send_big_command(redis.addr(), del.clone()).expect("redis");
    assert_eq!(expected_del, b":3\r\n");
    let got_unknown = send_big_command(server.addr(), unknown).expect("unknown command reply");
    assert_eq!(
        String::from_utf8_lossy(&got_unknown),
        String::from_utf8_lossy(&expected_unknown)
    );
    let got_del = send_big_command(server.addr(), del).expect("DEL reply");
    assert_eq!(String::from_utf8_lossy(&got_del), ":3\r\n");
    // The arguments are about 14 MB on the wire; a peak of 400 MB leaves room for a per-argument
    // object overhead of a few hundred bytes but catches anything quadratic or leaking.
    let peak = probe::peak_rss_bytes(server.pid()).expect("read VmHWM");
    eprintln!(
        "million arguments: peak RSS {:.1} MB ({} under test), redis {:.1} MB",
        peak as f64 / 1e6,
        server.kind().name(),
        probe::peak_rss_bytes(redis.pid()).unwrap_or(0) as f64 / 1e6
    );
    assert!(
        peak < 400 * 1024 * 1024,
        "peak RSS {peak} bytes after a million-argument command"
    );
    assert_serving(server);
}

#[test]
fn million_argument_command_gets_the_same_reply_as_redis() {
    let mut redis = ServerProcess::start(ServerKind::Redis, &[]).expect("start redis");
    let mut server = start(&[]);
    million_argument_commands_match_redis(&mut server, &mut redis);
}

#[test]
fn million_argument_command_fits_a_small_query_buffer_limit_like_redis() {
    // The command is about 14 MB but every argument is tiny, and Redis's limit applies to the
    // unparsed query buffer, never to arguments already turned into objects.
    let args = ["--client-query-buffer-limit", "1mb"];
    let mut redis = ServerProcess::start(ServerKind::Redis, &args).expect("start redis");
    let mut server = start(&args);
    million_argument_commands_match_redis(&mut server, &mut redis);
}

#[test]
fn half_frame_stall_does_not_block_other_clients() {
    let mut server = start(&[]);
    let mut stalled = connect(server.addr());
    stalled
        .write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk")
        .expect("send half a frame");
    // While that client sits mid-frame, others are served: the half frame holds no lock and
    // does not stop the server's loop.
    let mut other = RawClient::connect(server.addr()).expect("connect");
    for i in 0..100 {
        let reply = other.command(&[b"INCR", b"counter"]).expect("INCR");
        assert_eq!(reply, Frame::Integer(i + 1));
    }
    assert_eq!(other.command(&[b"GET", b"k"]).unwrap(), Frame::Null);
    // The stalled client finishes its frame and gets its reply: the parser resumed where it
    // stopped instead of discarding the half it had.
    stalled
        .write_all(b"\r\n$1\r\nv\r\n")
        .expect("finish the frame");
    let mut reply = [0u8; 5];
    stalled
        .read_exact(&mut reply)
        .expect("reply to the finished frame");
    assert_eq!(&reply, b"+OK\r\n");
    assert_eq!(
        other.command(&[b"GET", b"k"]).unwrap(),
        Frame::Bulk("v".into())
    );
    assert_serving(&mut server);
}

#[test]
fn idle_timeout_disconnects_a_client_stalled_mid_frame() {
    let mut server = start(&["--timeout", "1"]);
    let mut stalled = connect(server.addr());
    stalled
        .write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk")
        .expect("send half a frame");
    let mut other = RawClient::connect(server.addr()).expect("connect");
    assert_eq!(
        other.command(&[b"PING"]).unwrap(),
        Frame::Simple("PONG".into())
    );
    // `timeout 1` closes a client idle for more than a second, and a half frame is no
    // activity. Redis checks idle clients from its cron, so this can take a few seconds.
    let (reply, _) = read_until_closed(&mut stalled);
    assert!(
        reply.is_empty(),
        "an idle timeout closes silently, got {:?}",
        String::from_utf8_lossy(&reply)
    );
    let mut fresh = RawClient::connect(server.addr()).expect("connect");
    assert_eq!(fresh.command(&[b"GET", b"k"]).unwrap(), Frame::Null);
    assert_serving(&mut server);
}

#[test]
fn query_buffer_limit_disconnects_a_client_streaming_an_unfinished_bulk() {
    let mut server = start(&["--client-query-buffer-limit", "1mb"]);
    let rss_before = probe::rss_bytes(server.pid()).expect("read VmRSS");
    let mut stream = connect(server.addr());
    // The bulk is announced as 64 MiB (allowed by proto-max-bulk-len) and streamed slowly in
    // 64 KiB chunks; the server must give up at about 1 MiB instead of buffering it all.
    const DECLARED: usize = 64 * 1024 * 1024;
    stream
        .write_all(format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${DECLARED}\r\n").as_bytes())
        .expect("send the header");
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    let mut write_failed = false;
    while sent + chunk.len() < DECLARED {
        match stream.write_all(&chunk) {
            Ok(()) => sent += chunk.len(),
            Err(e) => {
                assert!(
                    matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
                    "unexpected write error after {sent} bytes: {e}"
                );
                write_failed = true;
                break;
            }
        }
    }
    if !write_failed {
        // Loopback buffers could in principle absorb the rest; the server must still have
        // closed the connection rather than wait for the end of the bulk.
        let (reply, _) = read_until_closed(&mut stream);
        assert!(reply.is_empty(), "{:?}", String::from_utf8_lossy(&reply));
    }
    eprintln!(
        "query buffer limit: disconnected after {:.1} MB of a {} MB bulk",
        sent as f64 / 1e6,
        DECLARED / (1024 * 1024)
    );
    assert!(
        sent < DECLARED / 2,
        "the server accepted {sent} bytes of a bulk it should have cut off at 1 MiB"
    );
    let peak = probe::peak_rss_bytes(server.pid()).expect("read VmHWM");
    assert!(
        peak < rss_before + 32 * 1024 * 1024,
        "peak RSS grew from {rss_before} to {peak} bytes for a 1 MiB query buffer limit"
    );
    let mut other = RawClient::connect(server.addr()).expect("connect");
    assert_eq!(other.command(&[b"GET", b"k"]).unwrap(), Frame::Null);
    assert_serving(&mut server);
}

/// `connected_clients` from INFO clients.
fn connected_clients(client: &mut RawClient) -> u64 {
    probe::info_u64(client, "clients", "connected_clients").expect("INFO clients")
}

/// Waits until the server reports exactly `n` connected clients.
fn await_connected_clients(client: &mut RawClient, n: u64) {
    let mut last = 0;
    let reached = probe::wait_for(EVENT_DEADLINE, POLL, || {
        last = connected_clients(client);
        (last == n).then_some(())
    });
    assert!(
        reached.is_some(),
        "connected_clients stayed at {last}, expected {n}"
    );
}

#[test]
fn thousands_of_idle_connections_cost_bounded_memory() {
    const IDLE: usize = 2000;
    // Both ends of every connection are file descriptors: the client ends in this process and
    // the accepted ends in the server, which inherits this limit when it is spawned.
    let limit = probe::raise_open_files_limit(2 * IDLE as u64 + 1024).expect("raise RLIMIT_NOFILE");
    assert!(
        limit >= IDLE as u64 + 256,
        "the open-file limit {limit} is too low"
    );
    let mut server = start(&[]);
    let mut admin = RawClient::connect(server.addr()).expect("connect");
    // The start-up readiness probe may not have been reaped yet.
    await_connected_clients(&mut admin, 1);
    let rss_before = probe::rss_bytes(server.pid()).expect("read VmRSS");
    let mut idle = Vec::with_capacity(IDLE);
    // Connections are opened in batches that are each awaited, so the listen backlog never
    // overflows (an overflow only delays connects, but by whole seconds).
    while idle.len() < IDLE {
        for _ in 0..250.min(IDLE - idle.len()) {
            idle.push(connect(server.addr()));
        }
        await_connected_clients(&mut admin, idle.len() as u64 + 1);
    }
    // The server still answers promptly enough for a blocking client, on the admin connection
    // and on a sample of the idle ones.
    assert_eq!(
        admin.command(&[b"PING"]).unwrap(),
        Frame::Simple("PONG".into())
    );
    for stream in idle.iter_mut().step_by(100) {
        stream
            .write_all(b"PING\r\n")
            .expect("PING on an idle connection");
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).expect("PONG");
        assert_eq!(&reply, b"+PONG\r\n");
    }
    let rss = probe::rss_bytes(server.pid()).expect("read VmRSS");
    let per_connection = rss.saturating_sub(rss_before) / IDLE as u64;
    eprintln!(
        "{IDLE} idle connections: RSS {:.1} MB (was {:.1} MB), {:.1} KB per connection",
        rss as f64 / 1e6,
        rss_before as f64 / 1e6,
        per_connection as f64 / 1e3
    );
    assert!(
        rss < 200 * 1024 * 1024,
        "RSS {rss} bytes with {IDLE} idle connections"
    );
    assert!(
        per_connection < 64 * 1024,
        "{per_connection} bytes of RSS per idle connection"
    );
    drop(idle);
    await_connected_clients(&mut admin, 1);
    assert_serving(&mut server);
}

#[test]
fn maxclients_refuses_the_eleventh_connection() {
    let mut server = start(&["--maxclients", "10"]);
    let mut first = RawClient::connect(server.addr()).expect("connect");
    // The start-up readiness probe may still count as a client for a moment.
    await_connected_clients(&mut first, 1);
    let mut clients = vec![first];
    for _ in 1..10 {
        let mut client = RawClient::connect(server.addr()).expect("connect");
        assert_eq!(
            client.command(&[b"PING"]).unwrap(),
            Frame::Simple("PONG".into())
        );
        clients.push(client);
    }
    // The eleventh is told why and closed, without having sent anything.
    let mut eleventh = connect(server.addr());
    let (reply, _) = read_until_closed(&mut eleventh);
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "-ERR max number of clients reached\r\n"
    );
    // The ten are unaffected, and a slot freed by one of them can be taken again once the
    // server has noticed the close.
    assert_eq!(connected_clients(&mut clients[0]), 10);
    drop(clients.pop());
    let accepted = probe::wait_for(EVENT_DEADLINE, POLL, || {
        let mut client = RawClient::connect(server.addr()).ok()?;
        match client.command(&[b"PING"]) {
            Ok(Frame::Simple(s)) if s == "PONG" => Some(client),
            _ => None,
        }
    });
    assert!(accepted.is_some(), "a freed client slot was never reusable");
    // A full server cannot take the fresh client `assert_serving` would open, so only its
    // liveness is checked here; the accepted client above has already been served.
    assert!(
        server.is_running(),
        "the server exited; log:\n{}",
        server.log()
    );
}

/// Sends `garbage` from a writer thread, then half-closes the connection so the server sees
/// the end of input; reads everything the server sends until it closes. The concurrent read
/// keeps a server that answers every garbage line with an error from filling its output
/// buffer and stalling on us.
fn feed_garbage(addr: SocketAddr, garbage: Vec<u8>) -> Vec<u8> {
    let mut stream = connect(addr);
    let mut writer = stream.try_clone().expect("clone the stream");
    let sender = std::thread::spawn(move || {
        // The server may close the connection on the first protocol error, so write errors
        // are expected and ignored.
        if writer.write_all(&garbage).is_ok() {
            let _ = writer.shutdown(Shutdown::Write);
        }
    });
    let (reply, _) = read_until_closed(&mut stream);
    sender.join().expect("writer thread");
    reply
}

/// Fails unless `reply` is a sequence of RESP error frames (the last may be cut short by the
/// close): garbage must never be taken for a successful command.
fn assert_only_errors(reply: &[u8], what: &str) {
    let mut rest = reply;
    while !rest.is_empty() {
        assert_eq!(
            rest[0],
            b'-',
            "{what}: a reply that is not an error: {:?}",
            String::from_utf8_lossy(&rest[..rest.len().min(200)])
        );
        match rest.windows(2).position(|w| w == b"\r\n") {
            Some(end) => rest = &rest[end + 2..],
            None => break,
        }
    }
}

#[test]
fn binary_garbage_never_crashes_the_server() {
    let mut server = start(&[]);
    let mut rng = SplitMix64::new(0x5EED_0001);
    // Uniformly random bytes (NULs included): mostly inline lines of nonsense, until a line
    // that starts with '*' or holds an odd quote ends the connection with a protocol error.
    let mut garbage = vec![0u8; 1024 * 1024];
    rng.fill(&mut garbage);
    let reply = feed_garbage(server.addr(), garbage);
    assert_only_errors(&reply, "random bytes");
    assert_serving(&mut server);
    // RESP-shaped garbage reaches deeper into the parser: counts and lengths (some huge or
    // negative) mixed with random payloads and stray line ends.
    for seed in 0..16 {
        let mut rng = SplitMix64::new(seed);
        let mut garbage = Vec::with_capacity(70 * 1024);
        while garbage.len() < 64 * 1024 {
            match rng.below(6) {
                0 => garbage.extend_from_slice(format!("*{}\r\n", rng.below(8)).as_bytes()),
                1 => garbage.extend_from_slice(format!("${}\r\n", rng.below(40)).as_bytes()),
                2 => garbage.extend_from_slice(
                    format!(
                        "{}{}\r\n",
                        ["*", "$"][rng.below(2) as usize],
                        rng.next_u64() as i64
                    )
                    .as_bytes(),
                ),
                3 => garbage.extend_from_slice(b"\r\n"),
                4 => garbage.push(b"*$+-:_,#!=(%~>\r\n"[rng.below(16) as usize]),
                _ => {
                    let mut bytes = vec![0u8; rng.below(40) as usize];
                    rng.fill(&mut bytes);
                    garbage.extend_from_slice(&bytes);
                }
            }
        }
        // Whatever the garbage did, the connection must end (by a protocol error or by our
        // end of input) and the server must carry on.
        feed_garbage(server.addr(), garbage);
        assert!(
            server.is_running(),
            "the server exited on RESP-shaped garbage (seed {seed}); log:\n{}",
            server.log()
        );
    }
    // Binary payloads inside a well-formed frame are data, not garbage: every byte value,
    // NUL included, comes back unchanged.
    let mut payload = vec![0u8; 1024 * 1024];
    rng.fill(&mut payload);
    let mut client = RawClient::connect(server.addr()).expect("connect");
    let reply = client.command(&[b"ECHO", &payload]).expect("ECHO");
    assert!(
        reply == Frame::Bulk(payload.into()),
        "ECHO altered a binary payload: {}",
        render(&reply).chars().take(200).collect::<String>()
    );
    assert_serving(&mut server);
}
