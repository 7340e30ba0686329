//! redis-cli against Shoal: commands typed on its standard input (raw and formatted output),
//! one-shot commands, a `--pipe` bulk load of 10000 SETs, and inline commands over a raw
//! socket as a person typing into telnet would send them.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use shoal_testkit::{render, target_kind, Frame, RawClient, ServerKind, ServerProcess};

/// The server under test: Shoal's binary, unless redirected to Redis.
fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

fn redis_cli() -> Command {
    let program = std::env::var_os("REDIS_CLI_BIN").unwrap_or_else(|| "redis-cli".into());
    Command::new(program)
}

/// Runs redis-cli with `args`, writes `input` to its standard input and waits for it.
fn run_cli(server: &ServerProcess, args: &[&str], input: &[u8]) -> Output {
    let mut child = redis_cli()
        .args(["-h", "127.0.0.1", "-p", &server.port().to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-cli (install redis-tools)");
    // Writing from another thread lets a large input and the output flow at the same time.
    let mut stdin = child.stdin.take().expect("redis-cli stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&input).expect("write to redis-cli");
    });
    let output = child.wait_with_output().expect("wait for redis-cli");
    writer.join().expect("stdin writer");
    output
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "redis-cli failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn typed_commands_get_raw_answers() {
    let server = ServerProcess::start(candidate(), &[]).expect("start the server under test");
    let typed = "SET a 1\nGET a\nINCR a\nGET missing\nSET \"b c\" \"d e\"\nGET \"b c\"\n\
                 MGET a \"b c\" missing\nEXISTS a missing\nTTL a\nNOSUCHCMD x\nPING\n";
    let out = stdout_of(&run_cli(&server, &[], typed.as_bytes()));
    // Without a terminal redis-cli prints raw replies: no quotes, no "(integer)", and an error
    // followed by an empty line.
    let expected = "OK\n1\n2\n\nOK\nd e\n2\nd e\n\n1\n-1\n\
                    ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' \n\nPONG\n";
    assert_eq!(out, expected);
}

#[test]
fn typed_commands_get_formatted_answers() {
    let server = ServerProcess::start(candidate(), &[]).expect("start the server under test");
    let typed = "SET a 1\nGET a\nINCR a\nGET missing\nMGET a missing\nKEYS nomatch*\n\
                 SET e v EX 0\nECHO \"x\\ty\"\n";
    let out = stdout_of(&run_cli(&server, &["--no-raw"], typed.as_bytes()));
    let expected = "OK\n\"1\"\n(integer) 2\n(nil)\n1) \"2\"\n2) (nil)\n(empty array)\n\
                    (error) ERR invalid expire time in 'set' command\n\"x\\ty\"\n";
    assert_eq!(out, expected);
}

#[test]
fn one_shot_commands_and_resp3() {
    let server = ServerProcess::start(candidate(), &[]).expect("start the server under test");
    let out = stdout_of(&run_cli(&server, &["SET", "k", "v"], b""));
    assert_eq!(out, "OK\n");
    let out = stdout_of(&run_cli(&server, &["GET", "k"], b""));
    assert_eq!(out, "v\n");
    let out = stdout_of(&run_cli(
        &server,
        &["-3", "--no-raw", "INCRBYFLOAT", "f", "1.5"],
        b"",
    ));
    assert_eq!(out, "\"1.5\"\n");
    let out = stdout_of(&run_cli(
        &server,
        &["-3", "--no-raw", "GET", "missing"],
        b"",
    ));
    assert_eq!(out, "(nil)\n");
    let out = stdout_of(&run_cli(&server, &["DBSIZE"], b""));
    assert_eq!(out, "2\n");
}

#[test]
fn pipe_mode_bulk_loads_ten_thousand_keys() {
    let server = ServerProcess::start(candidate(), &[]).expect("start the server under test");
    let mut input = Vec::new();
    for i in 0..10_000 {
        let key = format!("bulk:{i}");
        let value = format!("value-{i}");
        input.extend_from_slice(&shoal_testkit::encode_command(&[
            b"SET",
            key.as_bytes(),
            value.as_bytes(),
        ]));
    }
    let out = stdout_of(&run_cli(&server, &["--pipe"], &input));
    assert!(
        out.contains("errors: 0, replies: 10000"),
        "unexpected --pipe summary: {out}"
    );
    let mut client = RawClient::connect(server.addr()).expect("connect");
    let size = client.command(&[b"DBSIZE"]).expect("DBSIZE");
    assert_eq!(size, Frame::Integer(10_000), "{}", render(&size));
    let value = client.command(&[b"GET", b"bulk:9999"]).expect("GET");
    assert_eq!(render(&value), "\"value-9999\"");
}

#[test]
fn inline_commands_over_a_raw_socket() {
    let server = ServerProcess::start(candidate(), &[]).expect("start the server under test");
    let mut client = RawClient::connect(server.addr()).expect("connect");
    let mut exchange = |sent: &[u8]| -> String {
        client.send_raw(sent).expect("send inline command");
        let reply = client.read_reply().expect("read reply");
        String::from_utf8_lossy(&reply.raw).into_owned()
    };
    assert_eq!(exchange(b"PING\r\n"), "+PONG\r\n");
    assert_eq!(exchange(b"SET \"a b\" c\r\n"), "+OK\r\n");
    assert_eq!(exchange(b"GET \"a b\"\r\n"), "$1\r\nc\r\n");
    // A bare LF ends a line too, and blank lines are ignored without a reply.
    assert_eq!(exchange(b"\r\n\nECHO hi\n"), "$2\r\nhi\r\n");
    assert_eq!(exchange(b"set 'x y' \"\\x41\\n\"\r\n"), "+OK\r\n");
    assert_eq!(exchange(b"GET 'x y'\r\n"), "$2\r\nA\n\r\n");
    assert_eq!(exchange(b"  EXISTS   \"a b\"   missing  \r\n"), ":1\r\n");
    // Several inline commands in one write are answered in order.
    client
        .send_raw(b"INCR n\r\nINCR n\r\nGET n\r\n")
        .expect("send three inline commands");
    let replies: Vec<String> = (0..3)
        .map(|_| render(&client.read_frame().expect("pipelined inline reply")))
        .collect();
    assert_eq!(replies, ["(integer) 1", "(integer) 2", "\"2\""]);
    // Inline and RESP requests can be mixed on one connection.
    client
        .send_raw(b"*2\r\n$3\r\nGET\r\n$1\r\nn\r\nPING\r\n")
        .expect("send mixed requests");
    assert_eq!(render(&client.read_frame().expect("reply")), "\"2\"");
    assert_eq!(render(&client.read_frame().expect("reply")), "PONG");
    // Unbalanced quotes are a protocol error that closes the connection.
    client
        .send_raw(b"SET \"broken c\r\n")
        .expect("send unbalanced quotes");
    let rest = client.read_to_close().expect("read until close");
    assert_eq!(
        String::from_utf8_lossy(&rest),
        "-ERR Protocol error: unbalanced quotes in request\r\n"
    );
}
