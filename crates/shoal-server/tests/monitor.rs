//! `MONITOR` end to end, against a real redis-server 7.0.
//!
//! A monitoring client receives one line per command any client runs:
//! `+<seconds>.<micros> [<db> <client>] "arg" ...`. The tests send the same commands to Shoal and
//! to redis-server and expect the same lines from both, with the timestamp checked and masked and
//! client ports replaced by names: what is shown and what is hidden (administrative commands,
//! commands refused before running), how arguments are escaped, which database is named, how
//! passwords are redacted, how Unix-socket clients are named, how a monitoring client's own
//! commands are treated, and how `CLIENT LIST` shows a monitor. The last test is Shoal's own: a monitor that stops reading is
//! disconnected instead of making the server's memory grow.
//! `SHOAL_TEST_AGAINST=redis` runs the Shoal side against a second redis-server.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shoal_testkit::client::escape;
use shoal_testkit::server::make_temp_dir;
use shoal_testkit::{
    against_redis, encode_command, target_kind, Frame, RawClient, ServerKind, ServerProcess,
};

/// Bounds every read and every wait; a healthy server answers in milliseconds.
const TIMEOUT: Duration = Duration::from_secs(30);

/// How often polled conditions are checked.
const POLL: Duration = Duration::from_millis(10);

/// Redis 7 refuses `DEBUG` unless `enable-debug-command` allows it; Shoal has no such directive.
fn start(kind: ServerKind, args: &[&str]) -> ServerProcess {
    let mut all: Vec<&str> = args.to_vec();
    if kind == ServerKind::Redis {
        all.extend(["--enable-debug-command", "yes"]);
    }
    ServerProcess::start(kind, &all).expect("server starts")
}

/// The server under test: Shoal's binary, unless `SHOAL_TEST_AGAINST=redis`.
fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

fn connect(addr: SocketAddr) -> RawClient {
    RawClient::connect_with_timeout(addr, TIMEOUT).expect("connect")
}

fn cmd(client: &mut RawClient, args: &[&[u8]]) -> Frame {
    client.command(args).expect("reply")
}

fn port_of(client: &RawClient) -> u16 {
    client.stream().local_addr().expect("local address").port()
}

/// A monitor line with its timestamp checked (seconds within a minute of now, six digits of
/// microseconds) and replaced by `TS`, and the listed client addresses replaced by names.
fn normalise(line: &Frame, names: &[(String, &str)]) -> String {
    let Frame::Simple(bytes) = line else {
        panic!("expected a monitor line, got {line:?}");
    };
    let line = String::from_utf8_lossy(bytes).into_owned();
    let (stamp, rest) = line
        .split_once(' ')
        .unwrap_or_else(|| panic!("no timestamp in {line:?}"));
    let (secs, micros) = stamp
        .split_once('.')
        .unwrap_or_else(|| panic!("bad timestamp in {line:?}"));
    assert_eq!(micros.len(), 6, "{line:?}");
    assert!(micros.bytes().all(|b| b.is_ascii_digit()), "{line:?}");
    let secs: i64 = secs.parse().unwrap_or_else(|_| panic!("{line:?}"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    assert!((now - 60..=now + 60).contains(&secs), "{line:?}");
    let mut rest = rest.to_string();
    for (addr, name) in names {
        rest = rest.replace(addr.as_str(), name);
    }
    format!("TS {rest}")
}

/// Reads monitor lines until one contains `marker`, normalised.
fn lines_until(monitor: &mut RawClient, marker: &str, names: &[(String, &str)]) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = normalise(&monitor.read_frame().expect("monitor line"), names);
        let done = line.contains(marker);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

#[test]
fn other_clients_commands_are_streamed_like_redis() {
    let run = |kind: ServerKind| -> Vec<String> {
        let server = start(kind, &[]);
        let mut monitor = connect(server.addr());
        assert_eq!(cmd(&mut monitor, &[b"MONITOR"]), Frame::Simple("OK".into()));
        let mut w = connect(server.addr());
        let names = [(format!("127.0.0.1:{}", port_of(&w)), "W")];
        let script: &[&[&[u8]]] = &[
            &[b"SET", b"k", b"bin\x00\xff\"\\\n\r\t\x07\x08 \xc3\xa9"],
            &[b"GET", b"k"],
            &[b"SELECT", b"3"],
            &[b"SET", b"12345", b"-12"],
            &[b"CLIENT", b"ID"],
            // Administrative commands are never shown.
            &[b"CLIENT", b"LIST"],
            &[b"CONFIG", b"GET", b"hz"],
            &[b"DEBUG", b"SLEEP", b"0"],
            &[b"SLOWLOG", b"LEN"],
            // Neither are commands refused before they run.
            &[b"NOSUCHCOMMAND", b"x"],
            &[b"GET"],
            // Passwords are redacted, unless the command fails before reading them.
            &[b"AUTH", b"pw"],
            &[b"AUTH", b"user", b"pw"],
            &[b"AUTH", b"a", b"b", b"c"],
            &[b"HELLO", b"2", b"AUTH", b"default", b"pw", b"SETNAME", b"w"],
            &[b"SELECT", b"0"],
            &[b"ECHO", b"done"],
        ];
        for args in script {
            cmd(&mut w, args);
        }
        lines_until(&mut monitor, "\"done\"", &names)
    };
    let expected = [
        r#"TS [0 W] "SET" "k" "bin\x00\xff\"\\\n\r\t\a\b \xc3\xa9""#,
        r#"TS [0 W] "GET" "k""#,
        r#"TS [3 W] "SELECT" "3""#,
        r#"TS [3 W] "SET" "12345" "-12""#,
        r#"TS [3 W] "CLIENT" "ID""#,
        r#"TS [3 W] "AUTH" "(redacted)""#,
        r#"TS [3 W] "AUTH" "(redacted)" "(redacted)""#,
        r#"TS [3 W] "AUTH" "a" "b" "c""#,
        r#"TS [3 W] "HELLO" "2" "AUTH" "(redacted)" "(redacted)" "SETNAME" "w""#,
        r#"TS [0 W] "SELECT" "0""#,
        r#"TS [0 W] "ECHO" "done""#,
    ];
    assert_eq!(run(candidate()), expected, "server under test");
    assert_eq!(run(ServerKind::Redis), expected, "redis-server");
}

/// Sends one command on the monitoring connection and returns every frame up to and including
/// the reply to a following `ECHO <marker>`, rendered: replies as their escaped bytes, monitor
/// lines normalised. The marker fences off the command's effects, including a missing reply.
fn monitor_step(
    m: &mut RawClient,
    args: &[&[u8]],
    marker: &str,
    names: &[(String, &str)],
) -> Vec<String> {
    m.send_command(args).expect("send");
    m.send_command(&[b"ECHO", marker.as_bytes()]).expect("send");
    let mut out = Vec::new();
    let mut echo_replied = false;
    let mut echo_shown = false;
    while !(echo_replied && echo_shown) {
        let reply = m.read_reply().expect("reply");
        match &reply.frame {
            // Lines come from the monitor stream; the rest are replies.
            Frame::Simple(b) if b.first().is_some_and(u8::is_ascii_digit) => {
                let line = normalise(&reply.frame, names);
                echo_shown |= line.contains(&format!("\"ECHO\" \"{marker}\""));
                out.push(line);
            }
            frame => {
                echo_replied |= *frame == Frame::Bulk(marker.as_bytes().to_vec().into());
                out.push(escape(&reply.raw));
            }
        }
    }
    // A monitor sees its own ECHO after the reply; which comes first otherwise may vary.
    out
}

#[test]
fn a_monitoring_client_is_a_replica_for_its_own_commands_like_redis() {
    let run = |kind: ServerKind| -> Vec<String> {
        let server = start(kind, &[]);
        let mut m = connect(server.addr());
        let names = [(format!("127.0.0.1:{}", port_of(&m)), "M")];
        assert_eq!(cmd(&mut m, &[b"MONITOR"]), Frame::Simple("OK".into()));
        let mut out = Vec::new();
        let steps: &[&[&[u8]]] = &[
            // Allowed, answered, and shown to itself after the reply.
            &[b"PING"],
            // Reads and writes are refused, and not shown.
            &[b"GET", b"k"],
            &[b"SET", b"k", b"v"],
            &[b"DBSIZE"],
            // A second MONITOR is ignored without a reply.
            &[b"MONITOR"],
            &[b"SELECT", b"2"],
        ];
        for (i, args) in steps.iter().enumerate() {
            let marker = format!("m{i}");
            out.push(format!("> {}", String::from_utf8_lossy(&args.join(&b' '))));
            out.extend(monitor_step(&mut m, args, &marker, &names));
        }
        // RESET makes it an ordinary client again: no more lines.
        out.push("> RESET".into());
        m.send_command(&[b"RESET"]).expect("send");
        out.push(escape(&m.read_reply().expect("reply").raw));
        let mut w = connect(server.addr());
        cmd(&mut w, &[b"SET", b"after", b"reset"]);
        let after: [&[&[u8]]; 2] = [&[b"PING"], &[b"ECHO", b"x"]];
        for args in after {
            out.push(escape(&m.command_raw(args).expect("reply").raw));
        }
        out
    };
    let expected = [
        "> PING",
        "+PONG\\r\\n",
        "$2\\r\\nm0\\r\\n",
        r#"TS [0 M] "PING""#,
        r#"TS [0 M] "ECHO" "m0""#,
        "> GET k",
        "-ERR Replica can't interact with the keyspace\\r\\n",
        "$2\\r\\nm1\\r\\n",
        r#"TS [0 M] "ECHO" "m1""#,
        "> SET k v",
        "-ERR Replica can't interact with the keyspace\\r\\n",
        "$2\\r\\nm2\\r\\n",
        r#"TS [0 M] "ECHO" "m2""#,
        "> DBSIZE",
        "-ERR Replica can't interact with the keyspace\\r\\n",
        "$2\\r\\nm3\\r\\n",
        r#"TS [0 M] "ECHO" "m3""#,
        "> MONITOR",
        "$2\\r\\nm4\\r\\n",
        r#"TS [0 M] "ECHO" "m4""#,
        "> SELECT 2",
        "+OK\\r\\n",
        "$2\\r\\nm5\\r\\n",
        r#"TS [2 M] "SELECT" "2""#,
        r#"TS [2 M] "ECHO" "m5""#,
        "> RESET",
        "+RESET\\r\\n",
        "+PONG\\r\\n",
        "$1\\r\\nx\\r\\n",
    ];
    // Within a step, replies and lines are two streams that may interleave; each keeps its order.
    let split = |v: &[String]| -> (Vec<String>, Vec<String>) {
        v.iter()
            .cloned()
            .partition(|l| l.starts_with("TS ") || l.starts_with("> "))
    };
    let want = split(&expected.map(String::from));
    assert_eq!(split(&run(candidate())), want, "server under test");
    assert_eq!(split(&run(ServerKind::Redis)), want, "redis-server");
}

#[test]
fn a_monitor_is_listed_with_flag_o_like_redis() {
    let run = |kind: ServerKind| -> Vec<String> {
        let server = start(kind, &[]);
        let mut m = connect(server.addr());
        let Frame::Integer(id) = cmd(&mut m, &[b"CLIENT", b"ID"]) else {
            panic!("CLIENT ID");
        };
        assert_eq!(cmd(&mut m, &[b"MONITOR"]), Frame::Simple("OK".into()));
        let mut w = connect(server.addr());
        let mut shown = Vec::new();
        let id_text = id.to_string();
        let lists: [&[&[u8]]; 2] = [
            &[b"CLIENT", b"LIST"],
            &[b"CLIENT", b"LIST", b"ID", id_text.as_bytes()],
        ];
        for args in lists {
            let list = match cmd(&mut w, args) {
                Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                other => panic!("CLIENT LIST reply {other:?}"),
            };
            let line = list
                .lines()
                .find(|l| l.starts_with(&format!("id={id} ")))
                .unwrap_or_else(|| panic!("monitor missing from {list}"));
            shown.extend(
                line.split(' ')
                    .filter(|f| f.starts_with("flags=") || f.starts_with("cmd="))
                    .map(str::to_string),
            );
        }
        shown
    };
    let expected = ["flags=O", "cmd=monitor", "flags=O", "cmd=monitor"];
    assert_eq!(run(candidate()), expected, "server under test");
    assert_eq!(run(ServerKind::Redis), expected, "redis-server");
}

/// Sends one command over a Unix socket and reads its one-line reply.
fn unix_command(path: &Path, args: &[&[u8]]) -> String {
    let mut s = UnixStream::connect(path).expect("connect to the Unix socket");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    s.write_all(&encode_command(args)).expect("send");
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\r\n") {
        assert_eq!(s.read(&mut byte).expect("read"), 1, "connection closed");
        reply.push(byte[0]);
    }
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn unix_socket_clients_are_named_by_the_socket_like_redis() {
    let run = |kind: ServerKind| -> Vec<String> {
        let dir = make_temp_dir("monitor-unix").expect("temp dir");
        let path = dir.join("s.sock");
        let path_arg = path.to_string_lossy().into_owned();
        let server = start(kind, &["--unixsocket", &path_arg]);
        let mut m = connect(server.addr());
        assert_eq!(cmd(&mut m, &[b"MONITOR"]), Frame::Simple("OK".into()));
        assert_eq!(unix_command(&path, &[b"SET", b"k", b"v"]), "+OK\r\n");
        assert!(unix_command(&path, &[b"AUTH", b"pw"]).starts_with("-ERR"));
        let names = [(format!("unix:{path_arg}"), "unix:SOCKET")];
        let lines = lines_until(&mut m, "\"AUTH\"", &names);
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
        lines
    };
    let expected = [
        r#"TS [0 unix:SOCKET] "SET" "k" "v""#,
        r#"TS [0 unix:SOCKET] "AUTH" "(redacted)""#,
    ];
    assert_eq!(run(candidate()), expected, "server under test");
    assert_eq!(run(ServerKind::Redis), expected, "redis-server");
}

/// `INFO memory`'s `used_memory`, in bytes.
fn used_memory(client: &mut RawClient) -> u64 {
    let info = match cmd(client, &[b"INFO", b"memory"]) {
        Frame::Bulk(b) | Frame::Verbatim { text: b, .. } => {
            String::from_utf8_lossy(&b).into_owned()
        }
        other => panic!("INFO reply {other:?}"),
    };
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no used_memory in {info}"))
}

fn is_connected(client: &mut RawClient, id: i64) -> bool {
    let list = match cmd(client, &[b"CLIENT", b"LIST"]) {
        Frame::Bulk(b) | Frame::Verbatim { text: b, .. } => {
            String::from_utf8_lossy(&b).into_owned()
        }
        other => panic!("CLIENT LIST reply {other:?}"),
    };
    list.lines().any(|l| l.starts_with(&format!("id={id} ")))
}

#[test]
fn a_monitor_that_stops_reading_is_disconnected_and_memory_stays_bounded() {
    if against_redis() {
        // Redis lets a monitor's output buffer grow without limit by default
        // (client-output-buffer-limit normal 0 0 0); the bound is Shoal's.
        return;
    }
    let server = start(candidate(), &[]);
    let mut m = connect(server.addr());
    let Frame::Integer(monitor_id) = cmd(&mut m, &[b"CLIENT", b"ID"]) else {
        panic!("CLIENT ID");
    };
    assert_eq!(cmd(&mut m, &[b"MONITOR"]), Frame::Simple("OK".into()));
    // From here on the monitor reads nothing.

    let mut w = connect(server.addr());
    let before = used_memory(&mut w);
    let value = vec![b'x'; 64 * 1024];
    let batch = 32;
    let mut sent = 0usize;
    let mut peak = before;
    // Each command's monitor line is a little over 64 KiB; the monitor's backlog is bounded at
    // 32 MiB, and the kernel buffers a few MiB more on loopback.
    let limit = 512 << 20;
    while is_connected(&mut w, monitor_id) {
        assert!(
            sent < limit,
            "the monitor was not disconnected after {sent} bytes"
        );
        for _ in 0..batch {
            w.send_command(&[b"SET", b"k", &value]).expect("send");
        }
        for _ in 0..batch {
            assert_eq!(w.read_frame().expect("reply"), Frame::Simple("OK".into()));
        }
        sent += batch * value.len();
        peak = peak.max(used_memory(&mut w));
    }
    assert!(
        peak < before + (96 << 20),
        "used_memory grew from {before} to {peak} while the monitor lagged"
    );

    // The monitor's connection ends once what was already in the socket is read.
    m.set_timeout(TIMEOUT).expect("timeout");
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    let deadline = Instant::now() + TIMEOUT;
    let mut stream = m.stream();
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => received += n,
        }
        assert!(Instant::now() < deadline, "the monitor was not closed");
    }
    assert!(received < sent, "received {received} of {sent} bytes");

    // The server says why, and carries on.
    let deadline = Instant::now() + TIMEOUT;
    while !server
        .log()
        .contains("closing MONITOR client that fell behind")
    {
        assert!(
            Instant::now() < deadline,
            "no log line in:\n{}",
            server.log()
        );
        std::thread::sleep(POLL);
    }
    assert_eq!(cmd(&mut w, &[b"PING"]), Frame::Simple("PONG".into()));
}
