//! Differential tests: every case file of tests/cases sent to Shoal and to a real redis-server,
//! replies compared byte for byte in RESP2 and RESP3; the Shoal-only transcripts; and SCAN
//! iteration compared as sets of keys. `SHOAL_TEST_AGAINST=redis` swaps Shoal for a second
//! redis-server, which validates this file without Shoal.

use std::collections::BTreeSet;

use shoal_testkit::{
    case_files, render, run_all_cases, run_transcript, shoal_only_dir, target_kind, CaseFile,
    Frame, RawClient, ServerKind, ServerProcess,
};

/// The server under test: Shoal's binary, unless redirected to Redis.
fn candidate() -> ServerKind {
    target_kind(option_env!("CARGO_BIN_EXE_shoal-server"))
}

#[test]
fn case_files_match_redis() {
    let kind = candidate();
    // Lines that need lists, sets and hashes run once Shoal has them (SHOAL_DIFF_TYPES=1), and
    // always when the candidate is Redis itself.
    let with_types =
        kind == ServerKind::Redis || std::env::var("SHOAL_DIFF_TYPES").is_ok_and(|v| v == "1");
    let report = run_all_cases(kind, with_types).expect("run the differential case files");
    eprintln!(
        "differential: {} files, {} commands, {} skipped",
        report.files, report.commands, report.skipped
    );
    assert!(report.is_clean(), "{}", report.describe());
}

#[test]
fn shoal_only_transcripts_match_their_expectations() {
    let files = case_files(&shoal_only_dir()).expect("list tests/cases/shoal-only");
    assert!(
        !files.is_empty(),
        "no transcripts in {:?}",
        shoal_only_dir()
    );
    for path in &files {
        let file = CaseFile::load(path).expect("transcript parses");
        for case in &file.cases {
            assert!(
                case.has_expectation(),
                "{}:{}: every transcript command needs an expected reply",
                path.display(),
                case.line
            );
        }
    }
    let kind = candidate();
    if kind == ServerKind::Redis {
        // Redis 7.0 has neither IFEQ nor DELIFEQ: only the files' form can be checked.
        return;
    }
    let server = ServerProcess::start(kind, &[]).expect("start the server under test");
    for path in &files {
        let report = run_transcript(server.addr(), path, "shoal").expect("run transcript");
        assert!(report.is_clean(), "{}", report.describe());
    }
}

/// Sends many commands in one write and reads all replies, failing on any error reply.
fn pipeline(client: &mut RawClient, commands: &[Vec<Vec<u8>>]) {
    let mut bytes = Vec::new();
    for command in commands {
        let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
        bytes.extend_from_slice(&shoal_testkit::encode_command(&args));
    }
    client.send_raw(&bytes).expect("send pipeline");
    for _ in commands {
        let reply = client.read_frame().expect("read pipelined reply");
        assert!(!matches!(reply, Frame::Error(_)), "{}", render(&reply));
    }
}

/// Iterates SCAN from cursor 0 until the server returns cursor 0 and collects every key.
fn scan_all(client: &mut RawClient, options: &[&str]) -> (BTreeSet<Vec<u8>>, usize) {
    let mut keys = BTreeSet::new();
    let mut cursor = b"0".to_vec();
    let mut calls = 0;
    loop {
        let mut args: Vec<&[u8]> = vec![b"SCAN", &cursor];
        args.extend(options.iter().map(|o| o.as_bytes()));
        let reply = client.command(&args).expect("SCAN");
        calls += 1;
        assert!(calls < 100_000, "SCAN does not terminate");
        let Frame::Array(parts) = reply else {
            panic!("SCAN reply is not an array: {}", render(&reply));
        };
        let [Frame::Bulk(next), Frame::Array(batch)] = parts.as_slice() else {
            panic!("SCAN reply has the wrong shape: {parts:?}");
        };
        for key in batch {
            let Frame::Bulk(key) = key else {
                panic!("SCAN key is not a bulk string: {}", render(key));
            };
            keys.insert(key.to_vec());
        }
        if next.as_ref() == b"0" {
            return (keys, calls);
        }
        cursor = next.to_vec();
    }
}

#[test]
fn scan_returns_the_same_keys_as_redis() {
    let redis = ServerProcess::start(ServerKind::Redis, &[]).expect("start redis");
    let candidate = ServerProcess::start(candidate(), &[]).expect("start the server under test");
    let mut commands = Vec::new();
    for i in 0..2000 {
        commands.push(vec![
            b"SET".to_vec(),
            format!("key:{i}").into_bytes(),
            b"v".to_vec(),
        ]);
    }
    for i in 0..300 {
        commands.push(vec![
            b"SET".to_vec(),
            format!("user:{i}:name").into_bytes(),
            format!("n{i}").into_bytes(),
        ]);
    }
    // Binary and empty keys must come back intact.
    commands.push(vec![b"SET".to_vec(), b"".to_vec(), b"empty".to_vec()]);
    commands.push(vec![
        b"SET".to_vec(),
        b"\x00\xff\r\n".to_vec(),
        b"bin".to_vec(),
    ]);
    // Expired keys must not be returned.
    commands.push(vec![
        b"SET".to_vec(),
        b"key:gone".to_vec(),
        b"v".to_vec(),
        b"PXAT".to_vec(),
        b"1".to_vec(),
    ]);
    // A key in another database must not leak into DB 0's scan.
    commands.push(vec![b"SELECT".to_vec(), b"3".to_vec()]);
    commands.push(vec![b"SET".to_vec(), b"key:db3".to_vec(), b"v".to_vec()]);
    commands.push(vec![b"SELECT".to_vec(), b"0".to_vec()]);

    let mut clients = Vec::new();
    for server in [&redis, &candidate] {
        let mut client = RawClient::connect(server.addr()).expect("connect");
        pipeline(&mut client, &commands);
        clients.push(client);
    }
    let variants: [&[&str]; 6] = [
        &[],
        &["COUNT", "1"],
        &["COUNT", "1000"],
        &["MATCH", "user:*"],
        &["MATCH", "key:1?", "COUNT", "7"],
        &["TYPE", "string", "COUNT", "50"],
    ];
    for options in variants {
        let (expected, _) = scan_all(&mut clients[0], options);
        let (got, calls) = scan_all(&mut clients[1], options);
        assert_eq!(
            got.len(),
            expected.len(),
            "SCAN {options:?}: {} keys from the candidate, {} from redis",
            got.len(),
            expected.len()
        );
        assert!(
            got == expected,
            "SCAN {options:?} returned a different key set"
        );
        // COUNT is a hint, but a full iteration must not take absurdly many calls.
        assert!(calls <= 20_000, "SCAN {options:?} took {calls} calls");
    }
    let (all, _) = scan_all(&mut clients[1], &[]);
    assert_eq!(all.len(), 2302);
    assert!(all.contains(b"".as_slice()) && all.contains(b"\x00\xff\r\n".as_slice()));
    assert!(!all.contains(b"key:gone".as_slice()) && !all.contains(b"key:db3".as_slice()));
}

/// Keys that exist for the whole iteration must be returned even while other keys are added
/// and deleted between SCAN calls (Redis's cursor guarantee).
#[test]
fn scan_guarantees_hold_under_concurrent_writes() {
    let server = ServerProcess::start(candidate(), &[]).expect("start the server under test");
    let mut client = RawClient::connect(server.addr()).expect("connect");
    let stable: Vec<Vec<Vec<u8>>> = (0..1000)
        .map(|i| {
            vec![
                b"SET".to_vec(),
                format!("stable:{i}").into_bytes(),
                b"v".to_vec(),
            ]
        })
        .collect();
    pipeline(&mut client, &stable);
    let mut seen = BTreeSet::new();
    let mut cursor = b"0".to_vec();
    let mut round = 0u32;
    loop {
        let reply = client
            .command(&[b"SCAN", &cursor, b"COUNT", b"25"])
            .expect("SCAN");
        let Frame::Array(parts) = reply else {
            panic!("SCAN reply is not an array");
        };
        let [Frame::Bulk(next), Frame::Array(batch)] = parts.as_slice() else {
            panic!("SCAN reply has the wrong shape");
        };
        for key in batch {
            if let Frame::Bulk(key) = key {
                seen.insert(key.to_vec());
            }
        }
        // Churn: add a batch of new keys and delete older churn keys between calls.
        let churn: Vec<Vec<Vec<u8>>> = (0..50)
            .map(|i| {
                vec![
                    b"SET".to_vec(),
                    format!("churn:{round}:{i}").into_bytes(),
                    b"v".to_vec(),
                ]
            })
            .chain((0..50).map(|i| {
                vec![
                    b"DEL".to_vec(),
                    format!("churn:{}:{i}", round.wrapping_sub(1)).into_bytes(),
                ]
            }))
            .collect();
        let mut bytes = Vec::new();
        for command in &churn {
            let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
            bytes.extend_from_slice(&shoal_testkit::encode_command(&args));
        }
        client.send_raw(&bytes).expect("send churn");
        for _ in &churn {
            client.read_frame().expect("churn reply");
        }
        round += 1;
        assert!(round < 50_000, "SCAN does not terminate under writes");
        if next.as_ref() == b"0" {
            break;
        }
        cursor = next.to_vec();
    }
    for i in 0..1000 {
        let key = format!("stable:{i}").into_bytes();
        assert!(seen.contains(&key), "SCAN missed stable:{i}");
    }
}
