//! Transcript-style tests of the engine with a small host: a key-value map standing in for the
//! server (the server's own behaviour is tested end to end against redis-server elsewhere).

use std::collections::HashMap;

use super::*;

#[derive(Default)]
struct MapHost {
    data: HashMap<Vec<u8>, Bytes>,
    calls: Vec<Vec<Bytes>>,
}

impl Host for MapHost {
    fn call(&mut self, args: Vec<Bytes>, resp: u8) -> Frame {
        self.calls.push(args.clone());
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        match (name.as_str(), args.len()) {
            ("get", 2) => self
                .data
                .get(&args[1][..])
                .cloned()
                .map_or(Frame::Null, Frame::Bulk),
            ("set", 3) => {
                self.data.insert(args[1].to_vec(), args[2].clone());
                Frame::ok()
            }
            ("hgetall", 2) if resp == 3 => Frame::Map(vec![(Frame::bulk("f"), Frame::bulk("v"))]),
            ("hgetall", 2) => Frame::Map(vec![(Frame::bulk("f"), Frame::bulk("v"))]),
            ("incr", 2) => Frame::error("ERR value is not an integer or out of range"),
            _ => Frame::error("ERR Unknown Redis command called from script"),
        }
    }
}

fn engine() -> Engine {
    Engine::new(Arc::new(AtomicBool::new(false)), "7.0.15").expect("vm")
}

fn eval(e: &mut Engine, host: &mut MapHost, body: &str, keys: &[&str], argv: &[&str]) -> Frame {
    let sha = match e.load(body.as_bytes()) {
        Ok(sha) => sha,
        Err(msg) => return Frame::error(msg),
    };
    let b = |v: &[&str]| {
        v.iter()
            .map(|s| Bytes::from(s.to_string()))
            .collect::<Vec<_>>()
    };
    e.run(&sha, &b(keys), &b(argv), host).expect("cached")
}

fn err(text: &str) -> Frame {
    Frame::error(text.to_string())
}

#[test]
fn values_convert_like_redis() {
    let (mut e, mut h) = (engine(), MapHost::default());
    assert_eq!(
        eval(&mut e, &mut h, "return 3.99", &[], &[]),
        Frame::Integer(3)
    );
    assert_eq!(
        eval(&mut e, &mut h, "return true", &[], &[]),
        Frame::Integer(1)
    );
    assert_eq!(eval(&mut e, &mut h, "return false", &[], &[]), Frame::Null);
    assert_eq!(
        eval(&mut e, &mut h, "return {1,2,'x',nil,5}", &[], &[]),
        Frame::Array(vec![Frame::Integer(1), Frame::Integer(2), Frame::bulk("x")])
    );
    assert_eq!(
        eval(&mut e, &mut h, "return {ok='fine'}", &[], &[]),
        Frame::simple("fine")
    );
    assert_eq!(
        eval(
            &mut e,
            &mut h,
            "return redis.error_reply('-CUSTOM x')",
            &[],
            &[]
        ),
        err("CUSTOM x")
    );
    assert_eq!(
        eval(&mut e, &mut h, "return KEYS[1]..ARGV[1]", &["k"], &["a"]),
        Frame::bulk("ka")
    );
    assert_eq!(
        eval(&mut e, &mut h, "return redis.sha1hex('')", &[], &[]),
        Frame::bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    );
}

#[test]
fn calls_reach_the_host_and_errors_carry_the_script_position() {
    let (mut e, mut h) = (engine(), MapHost::default());
    assert_eq!(
        eval(
            &mut e,
            &mut h,
            "redis.call('set', KEYS[1], 5) return redis.call('get', KEYS[1])",
            &["k"],
            &[]
        ),
        Frame::bulk("5")
    );
    assert_eq!(
        eval(
            &mut e,
            &mut h,
            "return redis.call('get', 'missing')",
            &[],
            &[]
        ),
        Frame::Null
    );
    let sha = sha1hex(b"return redis.call('incr', 'k')");
    assert_eq!(
        eval(&mut e, &mut h, "return redis.call('incr', 'k')", &[], &[]),
        err(&format!(
            "ERR value is not an integer or out of range script: {sha}, on @user_script:1."
        ))
    );
    assert_eq!(
        eval(&mut e, &mut h, "return redis.pcall('incr', 'k')", &[], &[]),
        err("ERR value is not an integer or out of range")
    );
    let body = "local x = 1\nerror('boom')";
    assert_eq!(
        eval(&mut e, &mut h, body, &[], &[]),
        err(&format!(
            "ERR user_script:2: boom script: {}, on @user_script:2.",
            sha1hex(body.as_bytes())
        ))
    );
}

#[test]
fn the_sandbox_refuses_globals_and_missing_libraries() {
    let (mut e, mut h) = (engine(), MapHost::default());
    let body = "return x";
    assert_eq!(
        eval(&mut e, &mut h, body, &[], &[]),
        err(&format!(
            "ERR user_script:1: Script attempted to access nonexistent global variable 'x' script: {}, on @user_script:1.",
            sha1hex(body.as_bytes())
        ))
    );
    let body = "x = 1";
    assert_eq!(
        eval(&mut e, &mut h, body, &[], &[]),
        err(&format!(
            "ERR user_script:1: Attempt to modify a readonly table script: {}, on @user_script:1.",
            sha1hex(body.as_bytes())
        ))
    );
    for body in [
        "return os.time()",
        "return io",
        "string.x = 1",
        "_G.x = 1",
        "rawset(_G, 'x', 1)",
    ] {
        assert!(
            matches!(eval(&mut e, &mut h, body, &[], &[]), Frame::Error(_)),
            "{body} must fail"
        );
    }
    assert_eq!(
        eval(&mut e, &mut h, "return 1 +", &[], &[]),
        err("ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'")
    );
}

#[test]
fn a_killed_script_stops_with_an_error() {
    let kill = Arc::new(AtomicBool::new(false));
    let mut e = Engine::new(kill.clone(), "7.0.15").expect("vm");
    struct KillingHost(Arc<AtomicBool>);
    impl Host for KillingHost {
        fn call(&mut self, _args: Vec<Bytes>, _resp: u8) -> Frame {
            self.0.store(true, Ordering::Relaxed);
            Frame::ok()
        }
    }
    let sha = e
        .load(b"redis.call('ping') while true do end")
        .expect("compiles");
    let reply = e
        .run(&sha, &[], &[], &mut KillingHost(kill))
        .expect("cached");
    let Frame::Error(text) = reply else {
        panic!("a killed script must fail");
    };
    assert!(String::from_utf8_lossy(&text).contains("Script killed by user with SCRIPT KILL..."));
}
