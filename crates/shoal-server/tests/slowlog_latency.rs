//! `SLOWLOG` and the latency monitor (`LATENCY`) end to end, against a real redis-server 7.0.
//!
//! Each test starts Shoal and redis-server with the same arguments and sends both the same
//! commands. Replies that Redis makes deterministic (help texts, errors, counts, the reports of an
//! idle instance) must be byte-identical; replies that carry times and durations are compared
//! after those numbers are checked for plausibility and masked. `DEBUG SLEEP` makes a command slow
//! on purpose. `SHOAL_TEST_AGAINST=redis` runs the Shoal side against a second redis-server,
//! which checks that every expectation here is Redis's own behaviour.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shoal_testkit::client::escape;
use shoal_testkit::{against_redis, target_kind, Frame, RawClient, ServerKind, ServerProcess};

/// Bounds every read and every wait; a healthy server answers in milliseconds.
const TIMEOUT: Duration = Duration::from_secs(30);

/// How often polled conditions are checked.
const POLL: Duration = Duration::from_millis(10);

/// Starts the server under test (Shoal, unless redirected to Redis) and a reference Redis, both
/// with `args`. Redis 7 refuses `DEBUG` unless `enable-debug-command` allows it, and Shoal has no
/// such directive, so it is added for Redis only.
fn start_pair(args: &[&str]) -> (ServerProcess, ServerProcess) {
    (start(candidate(), args), start(ServerKind::Redis, args))
}

/// The server under test: Shoal's binary, unless `SHOAL_TEST_AGAINST=redis`.
fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

fn start(kind: ServerKind, args: &[&str]) -> ServerProcess {
    let mut all: Vec<&str> = args.to_vec();
    if kind == ServerKind::Redis {
        all.extend(["--enable-debug-command", "yes"]);
    }
    ServerProcess::start(kind, &all).expect("server starts")
}

fn connect(addr: SocketAddr) -> RawClient {
    RawClient::connect_with_timeout(addr, TIMEOUT).expect("connect")
}

/// Sends one command and returns the reply's exact bytes, escaped for readable diffs.
fn raw(client: &mut RawClient, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    escape(&client.command_raw(&args).expect("reply").raw)
}

/// Runs `script` on a fresh connection and returns `command -> raw reply` lines.
fn transcript(addr: SocketAddr, script: &[&[&str]]) -> Vec<String> {
    let mut client = connect(addr);
    script
        .iter()
        .map(|args| format!("{} -> {}", args.join(" "), raw(&mut client, args)))
        .collect()
}

fn elements(frame: &Frame) -> &[Frame] {
    match frame {
        Frame::Array(items) => items,
        other => panic!("expected an array, got {other:?}"),
    }
}

fn integer(frame: &Frame) -> i64 {
    match frame {
        Frame::Integer(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn text(frame: &Frame) -> String {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) => String::from_utf8_lossy(b).into_owned(),
        Frame::Verbatim { text, .. } => String::from_utf8_lossy(text).into_owned(),
        other => panic!("expected a string, got {other:?}"),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Asserts `t` is a Unix time within a minute of now.
fn assert_recent(t: i64) {
    let now = unix_now();
    assert!(
        (now - 60..=now + 60).contains(&t),
        "time {t} is not near {now}"
    );
}

/// Replaces every run of digits by `N`, for texts whose numbers are times and durations.
fn mask_digits(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_number = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            out.push(c);
            in_number = false;
        }
    }
    out
}

/// True when the process uses transparent huge pages, which makes `LATENCY DOCTOR` add advice
/// about them (on Shoal as on Redis), so its exact text cannot be compared.
fn uses_huge_pages(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("AnonHugePages:"))
        .any(|v| v.trim().trim_end_matches("kB").trim() != "0")
}

/// One `SLOWLOG GET` entry rendered as a transcript line: its arguments, then the client name.
/// The id, time, duration and address are checked here: ids count down by one from `first_id`,
/// the time is recent, the duration at least `min_us`, the address is `addr`.
fn entry_line(entry: &Frame, expected_id: i64, min_us: i64, addr: &str) -> String {
    let fields = elements(entry);
    assert_eq!(fields.len(), 6, "{entry:?}");
    assert_eq!(integer(&fields[0]), expected_id, "{entry:?}");
    assert_recent(integer(&fields[1]));
    assert!(integer(&fields[2]) >= min_us, "{entry:?}");
    assert_eq!(text(&fields[4]), addr);
    let args: Vec<String> = elements(&fields[3])
        .iter()
        .map(|a| match a {
            Frame::Bulk(b) => escape(b),
            other => panic!("argument {other:?}"),
        })
        .collect();
    format!("{} | name={}", args.join(" "), text(&fields[5]))
}

/// Renders a whole `SLOWLOG GET` reply, newest first, checking ids count down.
fn slowlog_lines(reply: &Frame, addr: &str) -> Vec<String> {
    let entries = elements(reply);
    let Some(first) = entries.first() else {
        return Vec::new();
    };
    let newest = integer(&elements(first)[0]);
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| entry_line(e, newest - i as i64, 0, addr))
        .collect()
}

fn local_addr(client: &RawClient) -> String {
    client
        .stream()
        .local_addr()
        .expect("local address")
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// SLOWLOG
// ---------------------------------------------------------------------------------------------

#[test]
fn help_texts_and_errors_match_redis() {
    let (shoal, redis) = start_pair(&[]);
    let script: &[&[&str]] = &[
        &["SLOWLOG", "HELP"],
        &["SLOWLOG", "GET", "x"],
        &["SLOWLOG", "GET", "-2"],
        &["SLOWLOG", "GET", "99999999999999999999"],
        &["SLOWLOG", "GET", "1", "2"],
        &["SLOWLOG", "get", "1", "2"],
        &["SLOWLOG", "FOO"],
        &["SLOWLOG"],
        &["SLOWLOG", "LEN", "1"],
        &["SLOWLOG", "RESET", "now"],
        &["LATENCY", "HELP"],
        &["LATENCY"],
        &["LATENCY", "FOO"],
        &["LATENCY", "HISTORY"],
        &["LATENCY", "HISTORY", "command", "more"],
        &["LATENCY", "GRAPH", "command"],
        &["LATENCY", "LATEST", "x"],
        &["MONITOR", "x"],
        // An idle instance: no events, and monitoring off.
        &["LATENCY", "LATEST"],
        &["LATENCY", "HISTORY", "command"],
        &["LATENCY", "RESET"],
        &["LATENCY", "RESET", "command", "fast-command"],
        &["LATENCY", "DOCTOR"],
        // The same in RESP3, where the reports are verbatim strings.
        &["HELLO", "3"],
        &["SLOWLOG", "HELP"],
        &["LATENCY", "DOCTOR"],
        &["LATENCY", "GRAPH", "command"],
    ];
    let shoal_lines = transcript(shoal.addr(), script);
    let redis_lines = transcript(redis.addr(), script);
    // HELLO's reply carries the client id, which may differ.
    let without_hello = |lines: Vec<String>| -> Vec<String> {
        lines
            .into_iter()
            .filter(|l| !l.starts_with("HELLO"))
            .collect()
    };
    assert_eq!(without_hello(shoal_lines), without_hello(redis_lines));
}

#[test]
fn entries_keep_what_redis_keeps() {
    let (shoal, redis) = start_pair(&["--slowlog-log-slower-than", "0"]);
    let long = "x".repeat(200);
    let mset: Vec<String> = std::iter::once("MSET".to_string())
        .chain((0..40).map(|i| i.to_string()))
        .collect();
    let mset: Vec<&str> = mset.iter().map(String::as_str).collect();
    let run = |addr: SocketAddr| -> Vec<String> {
        let mut c = connect(addr);
        let me = local_addr(&c);
        c.call(&["CLIENT", "SETNAME", "logger"]);
        c.call(&["SLOWLOG", "RESET"]);
        c.call(&["SET", &long, "v"]);
        c.call(&mset);
        c.call(&["AUTH", "pw"]);
        c.call(&["AUTH", "user", "pw"]);
        c.call(&["AUTH", "a", "b", "c"]);
        c.call(&["CONFIG", "SET", "REQUIREPASS", "", "hz", "10"]);
        c.call(&["HELLO", "2", "AUTH", "default", "pw", "SETNAME", "hello"]);
        // Commands refused before they run are not logged.
        c.call(&["NOSUCHCOMMAND", "x"]);
        c.call(&["GET"]);
        let all = c.call(&["SLOWLOG", "GET", "-1"]);
        let mut lines = slowlog_lines(&all, &me);
        // The GET itself is logged once it has run; default count 10, and explicit counts.
        assert_eq!(integer(&c.call(&["SLOWLOG", "LEN"])), 9);
        assert_eq!(elements(&c.call(&["SLOWLOG", "GET"])).len(), 10);
        assert_eq!(elements(&c.call(&["SLOWLOG", "GET", "0"])).len(), 0);
        let two = c.call(&["SLOWLOG", "GET", "2"]);
        lines.push("-- SLOWLOG GET 2:".into());
        lines.extend(slowlog_lines(&two, &me));
        lines
    };
    let expected: Vec<String> = [
        "HELLO 2 AUTH (redacted) (redacted) SETNAME hello | name=hello",
        "CONFIG SET REQUIREPASS (redacted) hz 10 | name=logger",
        "AUTH a b c | name=logger",
        "AUTH (redacted) (redacted) | name=logger",
        "AUTH (redacted) | name=logger",
        &format!(
            "MSET {} ... (10 more arguments) | name=logger",
            (0..30).map(|i| i.to_string()).collect::<Vec<_>>().join(" ")
        ),
        &format!("SET {}... (72 more bytes) v | name=logger", "x".repeat(128)),
        "SLOWLOG RESET | name=logger",
        "-- SLOWLOG GET 2:",
        "SLOWLOG GET 0 | name=hello",
        "SLOWLOG GET | name=hello",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(run(shoal.addr()), expected, "shoal");
    assert_eq!(run(redis.addr()), expected, "redis-server");
}

#[test]
fn thresholds_and_length_behave_like_redis() {
    let (shoal, redis) = start_pair(&[]);
    let script: &[&[&str]] = &[
        // A threshold above a command's run time skips it. (Ten seconds rather than the default
        // 10 ms, which a busy machine can exceed for any command.)
        &["CONFIG", "SET", "slowlog-log-slower-than", "10000000"],
        &["SLOWLOG", "RESET"],
        &["PING"],
        &["SLOWLOG", "LEN"],
        // Every command, and the length cap applied by the CONFIG SET that lowers it.
        &["CONFIG", "SET", "slowlog-log-slower-than", "0"],
        &["SLOWLOG", "RESET"],
        &["PING"],
        &["PING"],
        &["SLOWLOG", "LEN"],
        &["CONFIG", "SET", "slowlog-max-len", "2"],
        &["SLOWLOG", "LEN"],
        // Turned off, nothing is added and nothing trimmed.
        &[
            "CONFIG",
            "SET",
            "slowlog-log-slower-than",
            "-1",
            "slowlog-max-len",
            "1",
        ],
        &["PING"],
        &["SLOWLOG", "LEN"],
        // Turned on again: the next command trims.
        &["CONFIG", "SET", "slowlog-log-slower-than", "0"],
        &["SLOWLOG", "LEN"],
        // A length of 0 keeps nothing.
        &["CONFIG", "SET", "slowlog-max-len", "0"],
        &["PING"],
        &["SLOWLOG", "LEN"],
        &["SLOWLOG", "GET"],
    ];
    assert_eq!(
        transcript(shoal.addr(), script),
        transcript(redis.addr(), script)
    );
}

#[test]
fn a_sleeping_command_is_logged_with_its_duration() {
    let (shoal, redis) = start_pair(&[]);
    for server in [&shoal, &redis] {
        let mut c = connect(server.addr());
        let me = local_addr(&c);
        c.call(&["SLOWLOG", "RESET"]);
        let started = Instant::now();
        c.call(&["DEBUG", "SLEEP", "0.05"]);
        assert!(started.elapsed() >= Duration::from_millis(50));
        let got = c.call(&["SLOWLOG", "GET", "1"]);
        let entry = &elements(&got)[0];
        let id = integer(&elements(entry)[0]);
        assert_eq!(
            entry_line(entry, id, 50_000, &me),
            "DEBUG SLEEP 0.05 | name=",
            "{:?}",
            server.kind()
        );
    }
}

#[test]
fn slow_commands_are_logged_with_their_name_duration_and_client() {
    if against_redis() {
        // Redis's slow log stays out of its log file; this line is Shoal's own.
        return;
    }
    let shoal = start(candidate(), &[]);
    let mut c = connect(shoal.addr());
    let me = local_addr(&c);
    c.call(&["DEBUG", "SLEEP", "0.02"]);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let log = shoal.log();
        let line = log.lines().find(|l| l.contains("slow command"));
        if let Some(line) = line {
            assert!(line.contains("INFO"), "{line}");
            assert!(line.contains("command=\"debug\""), "{line}");
            assert!(line.contains(&format!("client={me}")), "{line}");
            let duration: u64 = line
                .split_once("duration_us=")
                .and_then(|(_, rest)| rest.split(' ').next())
                .and_then(|d| d.parse().ok())
                .unwrap_or_else(|| panic!("no duration in {line}"));
            assert!(duration >= 20_000, "{line}");
            break;
        }
        assert!(Instant::now() < deadline, "no slow command line in:\n{log}");
        std::thread::sleep(POLL);
    }
}

// ---------------------------------------------------------------------------------------------
// LATENCY
// ---------------------------------------------------------------------------------------------

#[test]
fn latency_monitor_records_a_sleeping_command_like_redis() {
    let (shoal, redis) = start_pair(&[]);
    let huge_pages = uses_huge_pages(shoal.pid()) || uses_huge_pages(redis.pid());
    let run = |addr: SocketAddr| -> Vec<String> {
        let mut c = connect(addr);
        let mut lines = Vec::new();
        let doctor = |c: &mut RawClient| text(&c.call(&["LATENCY", "DOCTOR"]));
        // Off and never used, then on without events: Redis's two fixed reports.
        lines.push(doctor(&mut c));
        c.call(&["CONFIG", "SET", "latency-monitor-threshold", "100"]);
        lines.push(doctor(&mut c));
        // Below the threshold nothing is recorded.
        c.call(&["DEBUG", "SLEEP", "0"]);
        lines.push(format!("{:?}", c.call(&["LATENCY", "LATEST"])));
        c.call(&["DEBUG", "SLEEP", "0.2"]);

        let latest = c.call(&["LATENCY", "LATEST"]);
        let latest = elements(&latest);
        assert_eq!(latest.len(), 1, "{latest:?}");
        let event = elements(&latest[0]);
        assert_eq!(text(&event[0]), "command");
        assert_recent(integer(&event[1]));
        let latency = integer(&event[2]);
        assert!((200..2000).contains(&latency), "{latency}");
        assert_eq!(integer(&event[3]), latency, "the worst so far");

        let history = c.call(&["LATENCY", "HISTORY", "command"]);
        let history = elements(&history);
        assert_eq!(history.len(), 1);
        let sample = elements(&history[0]);
        assert_eq!(integer(&sample[0]), integer(&event[1]));
        assert_eq!(integer(&sample[1]), latency);
        // Event names are case-sensitive for HISTORY, as in Redis.
        lines.push(format!("{:?}", c.call(&["LATENCY", "HISTORY", "COMMAND"])));

        lines.push(mask_digits(&text(
            &c.call(&["LATENCY", "GRAPH", "command"]),
        )));
        lines.push(mask_digits(&doctor(&mut c)));
        // RESET names events in any case.
        lines.push(format!(
            "{:?}",
            c.call(&["LATENCY", "RESET", "COMMAND", "command"])
        ));
        lines.push(format!("{:?}", c.call(&["LATENCY", "LATEST"])));
        lines.push(raw(&mut c, &["LATENCY", "GRAPH", "command"]));
        lines.push(doctor(&mut c));
        lines
    };
    let (got, want) = (run(shoal.addr()), run(redis.addr()));
    if huge_pages {
        // Both reports then carry advice about huge pages only one of the processes may use.
        let strip = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .filter(|l| !l.contains("Dave") && !l.contains("Sam"))
                .collect()
        };
        assert_eq!(strip(got), strip(want));
    } else {
        assert_eq!(got, want);
    }
}
