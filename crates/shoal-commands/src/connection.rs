//! Connection commands (PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT ...).

use bytes::Bytes;
use shoal_resp::{Frame, Protocol};

use crate::args::{self, is};
use crate::cx::{ClientFilter, Cx, ReplyMode, TrackingMode};
use crate::error::{CmdResult, CommandError};
use crate::help::help_reply;
use crate::keys::{db_index, int_arg};
use crate::spec::{CommandSpec, Flags, Group};

/// The Redis version Shoal is compatible with, reported where clients look for one.
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";

const CONN: Flags = Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE);

const fn spec(
    name: &'static str,
    arity: i32,
    flags: Flags,
    summary: &'static str,
    since: &'static str,
    handler: crate::spec::Handler,
) -> CommandSpec {
    CommandSpec::new(name, Group::Connection, arity, handler)
        .flags(flags)
        .doc(summary, since)
}

const fn client_sub(
    name: &'static str,
    arity: i32,
    flags: Flags,
    summary: &'static str,
    since: &'static str,
    handler: crate::spec::Handler,
) -> CommandSpec {
    spec(name, arity, CONN.with(flags), summary, since, handler)
}

/// The connection family.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    spec(
        "auth",
        -2,
        CONN.with(Flags::FAST)
            .with(Flags::NO_AUTH)
            .with(Flags::ALLOW_BUSY),
        "Authenticates the connection.",
        "1.0.0",
        auth,
    ),
    CommandSpec::new("client", Group::Connection, -2, client_help)
        .doc("A container for client connection commands.", "2.4.0")
        .subcommands(&[
            client_sub(
                "client|caching",
                3,
                Flags(0),
                "Instruct the server about tracking or not keys in the next request",
                "6.0.0",
                client_caching,
            ),
            client_sub(
                "client|getname",
                2,
                Flags(0),
                "Returns the name of the connection.",
                "2.6.9",
                client_getname,
            ),
            client_sub(
                "client|getredir",
                2,
                Flags(0),
                "Get tracking notifications redirection client ID if any",
                "6.0.0",
                client_getredir,
            ),
            spec(
                "client|help",
                2,
                Flags::LOADING.with(Flags::STALE),
                "Returns helpful text about the different subcommands.",
                "5.0.0",
                client_help,
            ),
            client_sub(
                "client|id",
                2,
                Flags(0),
                "Returns the unique client ID of the connection.",
                "5.0.0",
                client_id,
            ),
            client_sub(
                "client|info",
                2,
                Flags(0),
                "Returns information about the connection.",
                "6.2.0",
                client_info,
            )
            .tips(&["nondeterministic_output"]),
            client_sub(
                "client|kill",
                -3,
                Flags::ADMIN,
                "Terminates open connections.",
                "2.4.0",
                client_kill,
            ),
            client_sub(
                "client|list",
                -2,
                Flags::ADMIN,
                "Lists open connections.",
                "2.4.0",
                client_list,
            )
            .tips(&["nondeterministic_output"]),
            client_sub(
                "client|no-evict",
                3,
                Flags::ADMIN,
                "Sets the client eviction mode of the connection.",
                "7.0.0",
                client_no_evict,
            ),
            client_sub(
                "client|no-touch",
                3,
                Flags::FAST,
                "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
                "7.2.0",
                client_no_touch,
            ),
            client_sub(
                "client|pause",
                -3,
                Flags::ADMIN,
                "Suspends commands processing.",
                "2.9.50",
                client_pause,
            ),
            client_sub(
                "client|reply",
                3,
                Flags(0),
                "Instructs the server whether to reply to commands.",
                "3.2.0",
                client_reply,
            ),
            client_sub(
                "client|setinfo",
                4,
                Flags::FAST,
                "Sets information specific to the client or connection.",
                "7.2.0",
                client_setinfo,
            ),
            client_sub(
                "client|setname",
                3,
                Flags(0),
                "Sets the connection name.",
                "2.6.9",
                client_setname,
            ),
            client_sub(
                "client|tracking",
                -3,
                Flags(0),
                "Enable or disable server assisted client side caching support",
                "6.0.0",
                client_tracking,
            ),
            client_sub(
                "client|trackinginfo",
                2,
                Flags(0),
                "Return information about server assisted client side caching for the current connection",
                "6.2.0",
                client_trackinginfo,
            ),
            client_sub(
                "client|unblock",
                -3,
                Flags::ADMIN
                    .with(Flags::NOSCRIPT)
                    .with(Flags::LOADING)
                    .with(Flags::STALE),
                "Unblocks a client blocked by a blocking command from a different connection.",
                "5.0.0",
                client_unblock,
            ),
            client_sub(
                "client|unpause",
                2,
                Flags::ADMIN,
                "Resumes processing commands from paused clients.",
                "6.2.0",
                client_unpause,
            ),
        ]),
    spec(
        "echo",
        2,
        Flags::LOADING.with(Flags::STALE).with(Flags::FAST),
        "Returns the given string.",
        "1.0.0",
        echo,
    ),
    spec(
        "hello",
        -1,
        CONN.with(Flags::FAST)
            .with(Flags::NO_AUTH)
            .with(Flags::ALLOW_BUSY),
        "Handshakes with the Redis server.",
        "6.0.0",
        hello,
    ),
    spec(
        "ping",
        -1,
        Flags::FAST,
        "Returns the server's liveliness response.",
        "1.0.0",
        ping,
    )
    .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    spec(
        "quit",
        -1,
        CONN.with(Flags::FAST)
            .with(Flags::NO_AUTH)
            .with(Flags::ALLOW_BUSY),
        "Closes the connection.",
        "1.0.0",
        quit,
    ),
    spec(
        "reset",
        1,
        CONN.with(Flags::FAST)
            .with(Flags::NO_AUTH)
            .with(Flags::ALLOW_BUSY),
        "Resets the connection.",
        "6.2.0",
        reset,
    ),
    spec(
        "select",
        2,
        Flags::LOADING.with(Flags::STALE).with(Flags::FAST),
        "Changes the selected database.",
        "1.0.0",
        select,
    ),
];

// Command: PING [message]
//
// > PING
// PONG
// > PING hi
// "hi"
fn ping(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    if a.len() <= 2 {
        if let Some(reply) =
            crate::pubsub::subscribed_ping(cx.client.protocol, cx.client.subscriptions, a)
        {
            return Ok(reply);
        }
    }
    match a.len() {
        1 => Ok(Frame::simple("PONG")),
        2 => Ok(Frame::Bulk(a[1].clone())),
        _ => Err(CommandError::WrongArity("ping".into())),
    }
}

// Command: ECHO message
fn echo(_cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    Ok(Frame::Bulk(a[1].clone()))
}

// Command: QUIT
fn quit(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    cx.client.close_after_reply = true;
    Ok(Frame::ok())
}

// Command: SELECT index
fn select(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let id = int_arg(&a[1], None)?;
    let db = db_index(cx, id)?;
    cx.client.db = db;
    cx.server.update_client(cx.client);
    Ok(Frame::ok())
}

// Command: AUTH [username] password
fn auth(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    if a.len() > 3 {
        return Err(CommandError::Syntax);
    }
    let pass = cx.server.requirepass();
    if a.len() == 2 && pass.is_none() {
        return Err(CommandError::err("AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
    }
    let (user, given) = if a.len() == 2 {
        (&b"default"[..], &a[1])
    } else {
        (&a[1][..], &a[2])
    };
    if check_password(user, given, pass.as_deref()) {
        cx.client.authenticated = true;
        Ok(Frame::ok())
    } else {
        Err(CommandError::WrongPass)
    }
}

/// Until ACLs arrive there is one user, `default`, whose password is `requirepass` (or none).
fn check_password(user: &[u8], given: &[u8], pass: Option<&str>) -> bool {
    if user != b"default" {
        return false;
    }
    match pass {
        None => true,
        Some(p) => constant_time_eq(p.as_bytes(), given),
    }
}

/// Compares without an early exit, so the reply time does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// Command: HELLO [protover [AUTH username password] [SETNAME clientname]]
fn hello(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let mut version = None;
    let mut i = 1;
    if a.len() >= 2 {
        let v = args::parse_i64(&a[1]).ok_or_else(|| {
            CommandError::err("Protocol version is not an integer or out of range")
        })?;
        if !(2..=3).contains(&v) {
            return Err(CommandError::Other(
                "NOPROTO unsupported protocol version".into(),
            ));
        }
        version = Some(v);
        i = 2;
    }
    let mut credentials = None;
    let mut name = None;
    while i < a.len() {
        let more = a.len() - 1 - i;
        if is(&a[i], "AUTH") && more >= 2 {
            credentials = Some((a[i + 1].clone(), a[i + 2].clone()));
            i += 3;
        } else if is(&a[i], "SETNAME") && more >= 1 {
            validate_name(&a[i + 1])?;
            name = Some(a[i + 1].clone());
            i += 2;
        } else {
            return Err(CommandError::err(format!(
                "Syntax error in HELLO option '{}'",
                args::text(&a[i])
            )));
        }
    }
    if let Some((user, pass)) = credentials {
        if !check_password(&user, &pass, cx.server.requirepass().as_deref()) {
            return Err(CommandError::WrongPass);
        }
        cx.client.authenticated = true;
    }
    if !cx.client.authenticated {
        return Err(CommandError::Other("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into()));
    }
    if let Some(n) = name {
        cx.client.name = if n.is_empty() { None } else { Some(n) };
    }
    match version {
        Some(2) => cx.client.protocol = Protocol::Resp2,
        Some(3) => cx.client.protocol = Protocol::Resp3,
        _ => {}
    }
    cx.server.update_client(cx.client);
    let proto = match cx.client.protocol {
        Protocol::Resp2 => 2,
        Protocol::Resp3 => 3,
    };
    Ok(Frame::Map(vec![
        (Frame::bulk("server"), Frame::bulk("redis")),
        (Frame::bulk("version"), Frame::bulk(REDIS_COMPAT_VERSION)),
        (Frame::bulk("proto"), Frame::Integer(proto)),
        (Frame::bulk("id"), Frame::Integer(cx.client.id as i64)),
        (Frame::bulk("mode"), Frame::bulk("standalone")),
        (Frame::bulk("role"), Frame::bulk("master")),
        (Frame::bulk("modules"), Frame::Array(Vec::new())),
    ]))
}

// Command: RESET
fn reset(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    crate::transactions::unwatch_all(cx.ks, cx.client);
    if cx.client.tracking.take().is_some() {
        cx.server.tracking_disable(cx.client.id);
    }
    cx.client.tracking_caching = false;
    let c = &mut *cx.client;
    c.multi = None;
    c.db = 0;
    c.protocol = Protocol::Resp2;
    c.reply = ReplyMode::On;
    c.no_evict = false;
    c.no_touch = false;
    c.authenticated = cx.server.requirepass().is_none();
    // Redis leaves every channel silently, without confirmations.
    if c.subscriptions > 0 {
        c.subscriptions = 0;
        cx.server.unsubscribe_all(c.id);
    }
    cx.server.update_client(cx.client);
    Ok(Frame::simple("RESET"))
}

/// Redis refuses names with spaces, newlines and other characters outside `!`..`~`.
fn validate_name(name: &[u8]) -> Result<(), CommandError> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(CommandError::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

fn client_id(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Frame::Integer(cx.client.id as i64))
}

fn client_getname(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(cx.client.name.clone().map_or(Frame::Null, Frame::Bulk))
}

fn client_setname(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    validate_name(&a[2])?;
    cx.client.name = if a[2].is_empty() {
        None
    } else {
        Some(a[2].clone())
    };
    cx.server.update_client(cx.client);
    Ok(Frame::ok())
}

// Command: CLIENT SETINFO LIB-NAME|LIB-VER value
fn client_setinfo(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let value = a[3].clone();
    if value.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(CommandError::err(format!(
            "{} cannot contain spaces, newlines or special characters.",
            args::text(&a[2]).to_ascii_lowercase()
        )));
    }
    let v = if value.is_empty() { None } else { Some(value) };
    if is(&a[2], "LIB-NAME") {
        cx.client.lib_name = v;
    } else if is(&a[2], "LIB-VER") {
        cx.client.lib_ver = v;
    } else {
        return Err(CommandError::err(format!(
            "Unrecognized option '{}'",
            args::text(&a[2])
        )));
    }
    cx.server.update_client(cx.client);
    Ok(Frame::ok())
}

fn client_info(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    let filter = ClientFilter {
        ids: vec![cx.client.id],
        ..ClientFilter::default()
    };
    let text = cx.server.client_list(&filter, cx.client.id);
    Ok(Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(text),
    })
}

// Command: CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]]
fn client_list(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let mut filter = ClientFilter::default();
    let mut i = 2;
    while i < a.len() {
        if is(&a[i], "TYPE") && i + 1 < a.len() {
            let t = args::text(&a[i + 1]).to_ascii_lowercase();
            if !matches!(
                t.as_str(),
                "normal" | "master" | "replica" | "slave" | "pubsub"
            ) {
                return Err(CommandError::err(format!(
                    "Unknown client type '{}'",
                    args::text(&a[i + 1])
                )));
            }
            filter.kind = Some(t);
            i += 2;
        } else if is(&a[i], "ID") && i + 1 < a.len() {
            i += 1;
            while i < a.len() {
                let id = args::parse_i64(&a[i])
                    .filter(|v| *v > 0)
                    .ok_or_else(|| CommandError::err("Invalid client ID"))?;
                filter.ids.push(id as u64);
                i += 1;
            }
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let text = cx.server.client_list(&filter, cx.client.id);
    Ok(Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(text),
    })
}

// Command: CLIENT KILL ip:port | CLIENT KILL <filter> <value> ...
fn client_kill(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    if a.len() == 3 {
        let filter = ClientFilter {
            addr: Some(args::text(&a[2])),
            skip_me: false,
            ..ClientFilter::default()
        };
        return match cx.server.client_kill(&filter, cx.client.id) {
            0 => Err(CommandError::err("No such client")),
            _ => Ok(Frame::ok()),
        };
    }
    let mut filter = ClientFilter {
        skip_me: true,
        ..ClientFilter::default()
    };
    let mut i = 2;
    while i < a.len() {
        if i + 1 >= a.len() {
            return Err(CommandError::Syntax);
        }
        let v = &a[i + 1];
        if is(&a[i], "ID") {
            let id = args::parse_i64(v)
                .filter(|v| *v > 0)
                .ok_or_else(|| CommandError::err("client-id should be greater than 0"))?;
            filter.ids.push(id as u64);
        } else if is(&a[i], "TYPE") {
            let t = args::text(v).to_ascii_lowercase();
            if !matches!(
                t.as_str(),
                "normal" | "master" | "replica" | "slave" | "pubsub"
            ) {
                return Err(CommandError::err(format!(
                    "Unknown client type '{}'",
                    args::text(v)
                )));
            }
            filter.kind = Some(t);
        } else if is(&a[i], "ADDR") {
            filter.addr = Some(args::text(v));
        } else if is(&a[i], "LADDR") {
            filter.laddr = Some(args::text(v));
        } else if is(&a[i], "USER") {
            filter.user = Some(args::text(v));
        } else if is(&a[i], "SKIPME") {
            filter.skip_me = if is(v, "yes") {
                true
            } else if is(v, "no") {
                false
            } else {
                return Err(CommandError::Syntax);
            };
        } else if is(&a[i], "MAXAGE") {
            filter.max_age = Some(args::int(v)?.max(0) as u64);
        } else {
            return Err(CommandError::Syntax);
        }
        i += 2;
    }
    Ok(Frame::Integer(
        cx.server.client_kill(&filter, cx.client.id) as i64
    ))
}

fn on_off(arg: &[u8]) -> Result<bool, CommandError> {
    if is(arg, "on") {
        Ok(true)
    } else if is(arg, "off") {
        Ok(false)
    } else {
        Err(CommandError::Syntax)
    }
}

fn client_no_evict(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    cx.client.no_evict = on_off(&a[2])?;
    Ok(Frame::ok())
}

fn client_no_touch(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    cx.client.no_touch = on_off(&a[2])?;
    Ok(Frame::ok())
}

// Command: CLIENT REPLY ON|OFF|SKIP
fn client_reply(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    if is(&a[2], "on") {
        cx.client.reply = ReplyMode::On;
        Ok(Frame::ok())
    } else if is(&a[2], "off") {
        cx.client.reply = ReplyMode::Off;
        Ok(Frame::ok())
    } else if is(&a[2], "skip") {
        cx.client.reply = ReplyMode::SkipNext;
        Ok(Frame::ok())
    } else {
        Err(CommandError::Syntax)
    }
}

// Command: CLIENT PAUSE timeout [WRITE|ALL]
fn client_pause(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let ms = args::parse_i64(&a[2])
        .ok_or_else(|| CommandError::err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CommandError::err("timeout is negative"));
    }
    let all = match a.get(3) {
        None => true,
        Some(m) if is(m, "ALL") => true,
        Some(m) if is(m, "WRITE") => false,
        Some(_) => return Err(CommandError::err("CLIENT PAUSE mode must be WRITE or ALL")),
    };
    if a.len() > 4 {
        return Err(CommandError::Syntax);
    }
    cx.server
        .client_pause(cx.now.saturating_add(ms as u64), all);
    Ok(Frame::ok())
}

// Command: CLIENT UNBLOCK client-id [TIMEOUT|ERROR]
//
// > CLIENT UNBLOCK 12345
// (integer) 0
fn client_unblock(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    if a.len() > 4 {
        return Err(CommandError::WrongArity("client|unblock".into()));
    }
    let error = match a.get(3) {
        None => false,
        Some(r) if is(r, "timeout") => false,
        Some(r) if is(r, "error") => true,
        Some(_) => {
            return Err(CommandError::err(
                "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
    };
    let id = crate::args::int(&a[2])?;
    let done = u64::try_from(id).is_ok_and(|id| cx.server.client_unblock(id, error));
    Ok(Frame::Integer(done as i64))
}

// Command: CLIENT TRACKING
// > CLIENT TRACKING on PREFIX a       => (error) ERR PREFIX option requires BCAST mode to be enabled
// > CLIENT TRACKING on BCAST PREFIX a => OK
fn client_tracking(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let mut mode = TrackingMode::default();
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut i = 3;
    while i < a.len() {
        let more = i + 1 < a.len();
        let opt = &a[i];
        if is(opt, "redirect") && more {
            i += 1;
            if mode.redirect != 0 {
                return Err(CommandError::err(
                    "A client can only redirect to a single other client",
                ));
            }
            let id = args::int(&a[i])?;
            // Redis requires the client to exist now, even though it may leave later.
            if id <= 0 || !cx.server.client_exists(id as u64) {
                return Err(CommandError::err(
                    "The client ID you want redirect to does not exist",
                ));
            }
            mode.redirect = id as u64;
        } else if is(opt, "bcast") {
            mode.bcast = true;
        } else if is(opt, "optin") {
            mode.optin = true;
        } else if is(opt, "optout") {
            mode.optout = true;
        } else if is(opt, "noloop") {
            mode.noloop = true;
        } else if is(opt, "prefix") && more {
            i += 1;
            prefixes.push(a[i].clone());
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    if is(&a[2], "off") {
        if cx.client.tracking.take().is_some() {
            cx.server.tracking_disable(cx.client.id);
        }
        cx.client.tracking_caching = false;
        return Ok(Frame::ok());
    }
    if !is(&a[2], "on") {
        return Err(CommandError::Syntax);
    }
    if !mode.bcast && !prefixes.is_empty() {
        return Err(CommandError::err(
            "PREFIX option requires BCAST mode to be enabled",
        ));
    }
    if let Some(old) = cx.client.tracking {
        if old.bcast != mode.bcast {
            return Err(CommandError::err(
                "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
            ));
        }
    }
    if mode.bcast && (mode.optin || mode.optout) {
        return Err(CommandError::err(
            "OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if mode.optin && mode.optout {
        return Err(CommandError::err(
            "You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if let Some(old) = cx.client.tracking {
        if (mode.optin && old.optout) || (mode.optout && old.optin) {
            return Err(CommandError::err(
                "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
            ));
        }
    }
    cx.server.tracking_enable(cx.client.id, mode, &prefixes)?;
    cx.client.tracking = Some(mode);
    Ok(Frame::ok())
}

// Command: CLIENT CACHING
// > CLIENT CACHING yes   => (error) ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled
fn client_caching(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let Some(mode) = cx.client.tracking else {
        return Err(CommandError::err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    };
    if is(&a[2], "yes") {
        if !mode.optin {
            return Err(CommandError::err(
                "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if is(&a[2], "no") {
        if !mode.optout {
            return Err(CommandError::err(
                "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(CommandError::Syntax);
    }
    cx.client.tracking_caching = true;
    Ok(Frame::ok())
}

// Command: CLIENT GETREDIR
// > CLIENT GETREDIR   => (integer) -1
fn client_getredir(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Frame::Integer(
        cx.client.tracking.map_or(-1, |m| m.redirect as i64),
    ))
}

// Command: CLIENT TRACKINGINFO
// > CLIENT TRACKINGINFO   => {flags => [off], redirect => -1, prefixes => []}
fn client_trackinginfo(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    let mut flags = Vec::new();
    let (prefixes, broken) = cx.server.tracking_info(cx.client.id);
    match cx.client.tracking {
        None => flags.push("off"),
        Some(m) => {
            flags.push("on");
            if m.bcast {
                flags.push("bcast");
            }
            if m.optin {
                flags.push("optin");
                if cx.client.tracking_caching {
                    flags.push("caching-yes");
                }
            }
            if m.optout {
                flags.push("optout");
                if cx.client.tracking_caching {
                    flags.push("caching-no");
                }
            }
            if m.noloop {
                flags.push("noloop");
            }
            if broken {
                flags.push("broken_redirect");
            }
        }
    }
    Ok(Frame::Map(vec![
        (
            Frame::bulk("flags"),
            Frame::Set(flags.into_iter().map(Frame::bulk).collect()),
        ),
        (
            Frame::bulk("redirect"),
            Frame::Integer(cx.client.tracking.map_or(-1, |m| m.redirect as i64)),
        ),
        (
            Frame::bulk("prefixes"),
            Frame::Array(prefixes.into_iter().map(Frame::Bulk).collect()),
        ),
    ]))
}

fn client_unpause(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    cx.server.client_unpause();
    Ok(Frame::ok())
}

fn client_help(_cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "CLIENT",
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "    * ID <client-id>",
            "      Kill connections by client id.",
            "    * MAXAGE <maxage>",
            "      Kill connections older than the specified age.",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on.",
        ],
    ))
}
