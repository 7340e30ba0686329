//! Server commands (INFO, CONFIG, COMMAND, DBSIZE, FLUSHALL, SWAPDB, TIME, DEBUG, MEMORY,
//! SHUTDOWN, SLOWLOG, LATENCY, MONITOR). Handlers parse and validate; anything that needs the
//! running server goes through [`ServerOps`](crate::cx::ServerOps).

use bytes::Bytes;
use shoal_resp::Frame;

use crate::args::{self, is};
use crate::cx::{Action, Cx, LatencyHistogram, ShutdownOptions};
use crate::dispatch::resolve;
use crate::error::{CmdResult, CommandError};
use crate::help::help_reply;
use crate::keys::int_arg;
use crate::spec::{CommandSpec, Flags, Group, KeyAccess, Keys};
use crate::table::{subcommand, CommandTable};

const ADMIN: Flags = Flags::ADMIN.with(Flags::NOSCRIPT);

const fn spec(
    name: &'static str,
    arity: i32,
    flags: Flags,
    summary: &'static str,
    since: &'static str,
    handler: crate::spec::Handler,
) -> CommandSpec {
    CommandSpec::new(name, Group::Server, arity, handler)
        .flags(flags)
        .doc(summary, since)
}

const fn container(
    name: &'static str,
    summary: &'static str,
    since: &'static str,
    subcommands: &'static [CommandSpec],
    handler: crate::spec::Handler,
) -> CommandSpec {
    CommandSpec::new(name, Group::Server, -2, handler)
        .doc(summary, since)
        .subcommands(subcommands)
}

/// The server family.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        arity: -1,
        flags: Flags::LOADING.with(Flags::STALE),
        acl: &["connection"],
        tips: &["nondeterministic_output_order"],
        ..container(
            "command",
            "Returns detailed information about all commands.",
            "2.8.13",
            &[
                spec(
                    "command|count",
                    2,
                    Flags::LOADING.with(Flags::STALE),
                    "Returns a count of commands.",
                    "2.8.13",
                    command_count,
                )
                .acl(&["connection"]),
                spec(
                    "command|docs",
                    -2,
                    Flags::LOADING.with(Flags::STALE),
                    "Returns documentary information about one, multiple or all commands.",
                    "7.0.0",
                    command_docs,
                )
                .tips(&["nondeterministic_output_order"])
                .acl(&["connection"]),
                spec(
                    "command|getkeys",
                    -4,
                    Flags::LOADING.with(Flags::STALE),
                    "Extracts the key names from an arbitrary command.",
                    "2.8.13",
                    command_getkeys,
                )
                .acl(&["connection"]),
                spec(
                    "command|getkeysandflags",
                    -4,
                    Flags::LOADING.with(Flags::STALE),
                    "Extracts the key names and access flags for an arbitrary command.",
                    "7.0.0",
                    command_getkeysandflags,
                )
                .acl(&["connection"]),
                spec(
                    "command|help",
                    2,
                    Flags::LOADING.with(Flags::STALE),
                    "Returns helpful text about the different subcommands.",
                    "5.0.0",
                    command_help,
                )
                .acl(&["connection"]),
                spec(
                    "command|info",
                    -2,
                    Flags::LOADING.with(Flags::STALE),
                    "Returns information about one, multiple or all commands.",
                    "2.8.13",
                    command_info,
                )
                .tips(&["nondeterministic_output_order"])
                .acl(&["connection"]),
                spec(
                    "command|list",
                    -2,
                    Flags::LOADING.with(Flags::STALE),
                    "Returns a list of command names.",
                    "7.0.0",
                    command_list,
                )
                .tips(&["nondeterministic_output_order"])
                .acl(&["connection"]),
            ],
            command_all,
        )
    },
    container(
        "config",
        "A container for server configuration commands.",
        "2.0.0",
        &[
            spec(
                "config|get",
                -3,
                ADMIN.with(Flags::LOADING).with(Flags::STALE),
                "Returns the effective values of configuration parameters.",
                "2.0.0",
                config_get,
            ),
            spec(
                "config|help",
                2,
                Flags::LOADING.with(Flags::STALE),
                "Returns helpful text about the different subcommands.",
                "5.0.0",
                config_help,
            ),
            spec(
                "config|resetstat",
                2,
                ADMIN.with(Flags::LOADING).with(Flags::STALE),
                "Resets the server's statistics.",
                "2.0.0",
                config_resetstat,
            ),
            spec(
                "config|rewrite",
                2,
                ADMIN.with(Flags::LOADING).with(Flags::STALE),
                "Persists the effective configuration to file.",
                "2.8.0",
                config_rewrite,
            ),
            spec(
                "config|set",
                -4,
                ADMIN.with(Flags::LOADING).with(Flags::STALE),
                "Sets configuration parameters in-flight.",
                "2.0.0",
                config_set,
            )
            .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        ],
        config_help,
    ),
    spec(
        "dbsize",
        1,
        Flags::READONLY.with(Flags::FAST),
        "Returns the number of keys in the database.",
        "1.0.0",
        dbsize,
    )
    .tips(&["request_policy:all_shards", "response_policy:agg_sum"])
    .acl(&["keyspace"]),
    // DEBUG is a plain command in Redis, whose handler reads the subcommand itself.
    spec(
        "debug",
        -2,
        ADMIN.with(Flags::LOADING).with(Flags::STALE),
        "A container for debugging commands.",
        "1.0.0",
        debug,
    )
    .complexity("Depends on subcommand."),
    spec(
        "flushall",
        -1,
        Flags::WRITE,
        "Removes all keys from all databases.",
        "1.0.0",
        flushall,
    )
    .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
    .acl(&["keyspace", "dangerous"]),
    spec(
        "flushdb",
        -1,
        Flags::WRITE,
        "Remove all keys from the current database.",
        "1.0.0",
        flushdb,
    )
    .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
    .acl(&["keyspace", "dangerous"]),
    spec(
        "info",
        -1,
        Flags::LOADING.with(Flags::STALE),
        "Returns information and statistics about the server.",
        "1.0.0",
        info,
    )
    .tips(&[
        "nondeterministic_output",
        "request_policy:all_shards",
        "response_policy:special",
    ])
    .acl(&["dangerous"]),
    container(
        "latency",
        "A container for latency diagnostics commands",
        "2.8.13",
        &[
            spec(
                "latency|doctor",
                2,
                ADMIN.with(Flags::LOADING).with(Flags::STALE),
                "Return a human readable latency analysis report.",
                "2.8.13",
                latency_doctor,
            )
            .tips(&[
                "nondeterministic_output",
                "request_policy:all_nodes",
                "response_policy:special",
            ]),
            spec(
                "latency|graph",
                3,
                ADMIN.with(Flags::LOADING).with(Flags::STALE),
                "Return a latency graph for the event.",
                "2.8.13",
                latency_graph,
            )
            .tips(&[
                "nondeterministic_output",
                "request_policy:all_nodes",
                "response_policy:special",
            ]),
            spec(
                "latency|help",
                2,
                Flags::LOADING.with(Flags::STALE),
                "Show helpful text about the different subcommands.",
                "2.8.13",
                latency_help,
            ),
            spec(
                "latency|histogram",
                -2,
                ADMIN.with(Flags::LOADING).with(Flags::STALE),
                "Return the cumulative distribution of latencies of a subset of commands or all.",
                "7.0.0",
                latency_histogram,
            )
            .tips(&[
                "nondeterministic_output",
                "request_policy:all_nodes",
                "response_policy:special",
            ])
            .complexity(
                "O(N) where N is the number of commands with latency information being retrieved.",
            ),
            spec(
                "latency|history",
                3,
                ADMIN.with(Flags::LOADING).with(Flags::STALE),
                "Return timestamp-latency samples for the event.",
                "2.8.13",
                latency_history,
            )
            .tips(&[
                "nondeterministic_output",
                "request_policy:all_nodes",
                "response_policy:special",
            ]),
            spec(
                "latency|latest",
                2,
                ADMIN.with(Flags::LOADING).with(Flags::STALE),
                "Return the latest latency samples for all events.",
                "2.8.13",
                latency_latest,
            )
            .tips(&[
                "nondeterministic_output",
                "request_policy:all_nodes",
                "response_policy:special",
            ]),
            spec(
                "latency|reset",
                -2,
                ADMIN.with(Flags::LOADING).with(Flags::STALE),
                "Reset latency data for one or more events.",
                "2.8.13",
                latency_reset,
            )
            .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        ],
        latency_help,
    ),
    container(
        "memory",
        "A container for memory diagnostics commands.",
        "4.0.0",
        &[
            spec(
                "memory|doctor",
                2,
                Flags(0),
                "Outputs a memory problems report.",
                "4.0.0",
                memory_doctor,
            )
            .tips(&[
                "nondeterministic_output",
                "request_policy:all_shards",
                "response_policy:special",
            ]),
            spec(
                "memory|help",
                2,
                Flags::LOADING.with(Flags::STALE),
                "Returns helpful text about the different subcommands.",
                "4.0.0",
                memory_help,
            ),
            spec(
                "memory|malloc-stats",
                2,
                Flags(0),
                "Returns the allocator statistics.",
                "4.0.0",
                memory_malloc_stats,
            )
            .tips(&[
                "nondeterministic_output",
                "request_policy:all_shards",
                "response_policy:special",
            ]),
            spec(
                "memory|purge",
                2,
                Flags(0),
                "Asks the allocator to release memory.",
                "4.0.0",
                memory_purge,
            )
            .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
            spec(
                "memory|stats",
                2,
                Flags(0),
                "Returns details about memory usage.",
                "4.0.0",
                memory_stats,
            )
            .tips(&[
                "nondeterministic_output",
                "request_policy:all_shards",
                "response_policy:special",
            ]),
            CommandSpec::new("memory|usage", Group::Server, -3, memory_usage)
                .flags(Flags::READONLY)
                .keys(
                    Keys::Range {
                        first: 2,
                        last: 2,
                        step: 1,
                    },
                    KeyAccess::Meta,
                )
                .doc("Estimates the memory usage of a key.", "4.0.0")
                .complexity("O(N) where N is the number of samples."),
        ],
        memory_help,
    ),
    spec(
        "monitor",
        1,
        ADMIN.with(Flags::LOADING).with(Flags::STALE),
        "Listen for all requests received by the server in real time",
        "1.0.0",
        monitor,
    )
    // Redis documents no complexity for MONITOR.
    .complexity(""),
    spec(
        "shutdown",
        -1,
        ADMIN
            .with(Flags::LOADING)
            .with(Flags::STALE)
            .with(Flags::NO_MULTI)
            .with(Flags::ALLOW_BUSY),
        "Synchronously saves the database(s) to disk and shuts down the Redis server.",
        "1.0.0",
        shutdown,
    ),
    container(
        "slowlog",
        "A container for slow log commands",
        "2.2.12",
        &[
            spec(
                "slowlog|get",
                -2,
                Flags::ADMIN.with(Flags::LOADING).with(Flags::STALE),
                "Get the slow log's entries",
                "2.2.12",
                slowlog_get,
            )
            .tips(&["request_policy:all_nodes", "nondeterministic_output"])
            .complexity("O(N) where N is the number of entries returned"),
            spec(
                "slowlog|help",
                2,
                Flags::LOADING.with(Flags::STALE),
                "Show helpful text about the different subcommands",
                "6.2.0",
                slowlog_help,
            ),
            spec(
                "slowlog|len",
                2,
                Flags::ADMIN.with(Flags::LOADING).with(Flags::STALE),
                "Get the slow log's length",
                "2.2.12",
                slowlog_len,
            )
            .tips(&[
                "request_policy:all_nodes",
                "response_policy:agg_sum",
                "nondeterministic_output",
            ]),
            spec(
                "slowlog|reset",
                2,
                Flags::ADMIN.with(Flags::LOADING).with(Flags::STALE),
                "Clear all entries from the slow log",
                "2.2.12",
                slowlog_reset,
            )
            .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"])
            .complexity("O(N) where N is the number of entries in the slowlog"),
        ],
        slowlog_help,
    ),
    spec(
        "swapdb",
        3,
        Flags::WRITE.with(Flags::FAST),
        "Swaps two Redis databases.",
        "4.0.0",
        swapdb,
    )
    .acl(&["keyspace", "dangerous"]),
    spec(
        "time",
        1,
        Flags::LOADING.with(Flags::STALE).with(Flags::FAST),
        "Returns the server time.",
        "2.6.0",
        time,
    )
    .tips(&["nondeterministic_output"]),
];

// Command: DBSIZE
fn dbsize(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Frame::Integer(cx.ks.db_info(cx.dbi()).keys as i64))
}

/// Parses the optional `ASYNC|SYNC` of the flush commands.
fn flush_mode(cx: &Cx<'_>, a: &[Bytes]) -> Result<bool, CommandError> {
    match a.len() {
        1 => Ok(cx.server.lazy_user_flush()),
        2 if is(&a[1], "ASYNC") => Ok(true),
        2 if is(&a[1], "SYNC") => Ok(false),
        _ => Err(CommandError::Syntax),
    }
}

// Command: FLUSHALL [ASYNC|SYNC]
fn flushall(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let lazy = flush_mode(cx, a)?;
    let garbage = cx.ks.flush(None, &mut cx.journal);
    cx.server.free(garbage, lazy);
    Ok(Frame::ok())
}

// Command: FLUSHDB [ASYNC|SYNC]
fn flushdb(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let lazy = flush_mode(cx, a)?;
    let garbage = cx.ks.flush(Some(cx.dbi()), &mut cx.journal);
    cx.server.free(garbage, lazy);
    Ok(Frame::ok())
}

// Command: SWAPDB index1 index2
fn swapdb(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let a1 = int_arg(&a[1], Some("invalid first DB index"))?;
    let a2 = int_arg(&a[2], Some("invalid second DB index"))?;
    let n = cx.ks.databases() as i64;
    if a1 < 0 || a1 >= n || a2 < 0 || a2 >= n {
        return Err(CommandError::err("DB index is out of range"));
    }
    cx.ks
        .swap_dbs(a1 as usize, a2 as usize, cx.now, &mut cx.journal);
    Ok(Frame::ok())
}

// Command: TIME
fn time(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Frame::Array(vec![
        Frame::Bulk(Bytes::from((cx.now_us / 1_000_000).to_string())),
        Frame::Bulk(Bytes::from((cx.now_us % 1_000_000).to_string())),
    ]))
}

// Command: INFO [section [section ...]]
fn info(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let sections: Vec<String> = a[1..]
        .iter()
        .map(|s| args::text(s).to_ascii_lowercase())
        .collect();
    let text = cx.server.info(&sections);
    Ok(Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(text),
    })
}

// Command: SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]
fn shutdown(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let mut o = ShutdownOptions::default();
    let mut abort = false;
    for opt in &a[1..] {
        if is(opt, "NOSAVE") {
            if o.save == Some(true) {
                return Err(CommandError::Syntax);
            }
            o.save = Some(false);
        } else if is(opt, "SAVE") {
            if o.save == Some(false) {
                return Err(CommandError::Syntax);
            }
            o.save = Some(true);
        } else if is(opt, "NOW") {
            o.now = true;
        } else if is(opt, "FORCE") {
            o.force = true;
        } else if is(opt, "ABORT") {
            abort = true;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    if abort {
        if o != ShutdownOptions::default() {
            return Err(CommandError::Syntax);
        }
        // Shoal's shutdown does not wait for replicas, so there is never one in progress.
        return Err(CommandError::err("No shutdown in progress."));
    }
    if o.save == Some(true) && !o.force {
        // Snapshots arrive with the persistence work; until then a save that was asked for
        // explicitly fails the way a failed save fails in Redis, unless FORCE says to go on.
        return Err(CommandError::err("Errors trying to SHUTDOWN. Check logs."));
    }
    cx.client.action = Some(Action::Shutdown(o));
    Ok(Frame::ok())
}

// Command: DEBUG HELP | DEBUG SLEEP seconds
fn debug(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    match a.len() {
        2 if is(&a[1], "help") => debug_help(cx, a),
        3 if is(&a[1], "sleep") => debug_sleep(cx, a),
        _ => Err(CommandError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            args::text(&a[1])
        ))),
    }
}

fn debug_sleep(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let secs = args::parse_f64(&a[2]).unwrap_or(0.0).max(0.0);
    let dur = std::time::Duration::try_from_secs_f64(secs).unwrap_or(std::time::Duration::ZERO);
    cx.client.action = Some(Action::Sleep(dur));
    Ok(Frame::ok())
}

fn debug_help(_cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "DEBUG",
        &[
            "SLEEP <seconds>",
            "    Stop the server for <seconds>. Decimals allowed.",
        ],
    ))
}

// Command: CONFIG GET parameter [parameter ...]
fn config_get(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let pairs = cx.server.config_get(&a[2..]);
    Ok(Frame::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Frame::Bulk(k.into()), Frame::Bulk(v.into())))
            .collect(),
    ))
}

// Command: CONFIG SET parameter value [parameter value ...]
fn config_set(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    if !a.len().is_multiple_of(2) {
        return Err(CommandError::Syntax);
    }
    let pairs: Vec<(Bytes, Bytes)> = a[2..]
        .chunks_exact(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    cx.server.config_set(&pairs)?;
    Ok(Frame::ok())
}

fn config_resetstat(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    cx.server.reset_stats();
    Ok(Frame::ok())
}

fn config_rewrite(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    cx.server.config_rewrite()?;
    Ok(Frame::ok())
}

fn config_help(_cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    ))
}

// Command: MEMORY USAGE key [SAMPLES count]
fn memory_usage(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let mut i = 3;
    while i < a.len() {
        if is(&a[i], "SAMPLES") && i + 1 < a.len() {
            args::int(&a[i + 1])?;
            i += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let db = cx.dbi();
    Ok(match cx.db()?.lookup(db, &a[2], false, false)? {
        Some(e) => Frame::Integer(e.mem_usage() as i64),
        None => Frame::Null,
    })
}

fn memory_stats(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    let fields = cx.server.memory_stats();
    Ok(Frame::Map(
        fields
            .into_iter()
            .map(|(k, v)| (Frame::Bulk(k.into()), v))
            .collect(),
    ))
}

// Command: MEMORY DOCTOR
fn memory_doctor(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(cx.server.memory_doctor()),
    })
}

fn memory_malloc_stats(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(cx.server.malloc_stats()),
    })
}

fn memory_purge(_cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Frame::ok())
}

fn memory_help(_cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    ))
}

// ---------------------------------------------------------------------------------------------
// SLOWLOG, LATENCY and MONITOR: the server records; these handlers parse and shape the replies.

// Command: SLOWLOG GET [count]
fn slowlog_get(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    if a.len() > 3 {
        // The arity lets any number of arguments through; Redis checks the count itself.
        return Err(CommandError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            args::text(&a[1])
        )));
    }
    let count = match a.get(2) {
        None => 10,
        Some(c) => match args::parse_i64(c) {
            Some(-1) => usize::MAX,
            Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => {
                return Err(CommandError::err(
                    "count should be greater than or equal to -1",
                ))
            }
        },
    };
    Ok(Frame::Array(cx.server.slowlog_get(count)))
}

// Command: SLOWLOG LEN
fn slowlog_len(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Frame::Integer(cx.server.slowlog_len() as i64))
}

// Command: SLOWLOG RESET
fn slowlog_reset(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    cx.server.slowlog_reset();
    Ok(Frame::ok())
}

fn slowlog_help(_cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    ))
}

// Command: LATENCY LATEST
fn latency_latest(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    let events = cx.server.latency_latest();
    Ok(Frame::Array(
        events
            .into_iter()
            .map(|(event, time, latency, max)| {
                Frame::Array(vec![
                    Frame::Bulk(Bytes::from(event)),
                    Frame::Integer(time as i64),
                    Frame::Integer(latency as i64),
                    Frame::Integer(max as i64),
                ])
            })
            .collect(),
    ))
}

// Command: LATENCY HISTORY event
fn latency_history(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let samples = cx.server.latency_history(&a[2]);
    Ok(Frame::Array(
        samples
            .into_iter()
            .map(|(time, latency)| {
                Frame::Array(vec![
                    Frame::Integer(time as i64),
                    Frame::Integer(latency as i64),
                ])
            })
            .collect(),
    ))
}

/// `LATENCY HISTOGRAM [command ...]`: every command with data, or the named ones in the order
/// given (a container brings its subcommands; unknown names and commands without data are
/// skipped; a name given twice is answered twice, as in Redis).
fn latency_histogram(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let all = cx.server.latency_histograms();
    let entry = |h: &LatencyHistogram| {
        (
            Frame::Bulk(Bytes::from_static(h.command.as_bytes())),
            Frame::Map(vec![
                (
                    Frame::Bulk(Bytes::from_static(b"calls")),
                    Frame::Integer(h.calls as i64),
                ),
                (
                    Frame::Bulk(Bytes::from_static(b"histogram_usec")),
                    Frame::Map(
                        h.cdf
                            .iter()
                            .map(|&(usec, n)| {
                                (Frame::Integer(usec as i64), Frame::Integer(n as i64))
                            })
                            .collect(),
                    ),
                ),
            ]),
        )
    };
    if a.len() == 2 {
        return Ok(Frame::Map(all.iter().map(entry).collect()));
    }
    let mut out = Vec::new();
    for name in &a[2..] {
        let Some(spec) = lookup_full_name(cx.table, name) else {
            continue;
        };
        for s in std::iter::once(spec).chain(spec.subcommands.iter()) {
            if let Some(e) = all.iter().find(|e| e.command == s.name) {
                out.push(entry(e));
            }
        }
    }
    Ok(Frame::Map(out))
}

/// A command by its full name, `get` or `config|get`, in any case (Redis's
/// `lookupCommandBySds`).
fn lookup_full_name(table: &CommandTable, name: &[u8]) -> Option<&'static CommandSpec> {
    let mut parts = name.split(|&b| b == b'|');
    let top = table.get(parts.next()?)?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(top),
        (Some(sub), None) => subcommand(top, sub),
        _ => None,
    }
}

// Command: LATENCY RESET [event ...]
fn latency_reset(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    Ok(Frame::Integer(cx.server.latency_reset(&a[2..]) as i64))
}

// Command: LATENCY GRAPH event
fn latency_graph(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let graph = cx.server.latency_graph(&a[2]).ok_or_else(|| {
        CommandError::err(format!(
            "No samples available for event '{}'",
            args::text(&a[2])
        ))
    })?;
    Ok(Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(graph),
    })
}

// Command: LATENCY DOCTOR
fn latency_doctor(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(cx.server.latency_doctor()),
    })
}

fn latency_help(_cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    ))
}

// Command: MONITOR
fn monitor(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    // A client that cannot block (inside EXEC) expects one reply per command.
    if cx.client.no_block {
        return Err(CommandError::err(
            "MONITOR isn't allowed for DENY BLOCKING client",
        ));
    }
    // The connection switches to streaming once the reply is queued; it alone owns the socket.
    cx.client.action = Some(Action::Monitor);
    Ok(Frame::ok())
}

// ---------------------------------------------------------------------------------------------
// COMMAND: everything here is generated from the specs.

fn status_set(items: impl IntoIterator<Item = String>) -> Frame {
    Frame::Set(items.into_iter().map(|s| Frame::Simple(s.into())).collect())
}

/// A `range` find-keys spec: `lastkey` relative to the first key (negative: from the end).
fn find_range(lastkey: i64, step: i64) -> (&'static str, Vec<(Frame, Frame)>) {
    (
        "range",
        vec![
            (Frame::bulk("lastkey"), Frame::Integer(lastkey)),
            (Frame::bulk("keystep"), Frame::Integer(step)),
            (Frame::bulk("limit"), Frame::Integer(0)),
        ],
    )
}

/// One key spec of `COMMAND INFO`: its note, flags, an index begin-search and a find-keys spec.
fn key_spec(
    notes: &'static str,
    access: KeyAccess,
    index: i32,
    (find, find_spec): (&'static str, Vec<(Frame, Frame)>),
) -> Frame {
    let mut spec = Vec::new();
    if !notes.is_empty() {
        spec.push((Frame::bulk("notes"), Frame::bulk(notes)));
    }
    spec.extend([
        (
            Frame::bulk("flags"),
            status_set(access.flags().iter().map(|f| f.to_string())),
        ),
        (
            Frame::bulk("begin_search"),
            Frame::Map(vec![
                (Frame::bulk("type"), Frame::bulk("index")),
                (
                    Frame::bulk("spec"),
                    Frame::Map(vec![(Frame::bulk("index"), Frame::Integer(index as i64))]),
                ),
            ]),
        ),
        (
            Frame::bulk("find_keys"),
            Frame::Map(vec![
                (Frame::bulk("type"), Frame::bulk(find)),
                (Frame::bulk("spec"), Frame::Map(find_spec)),
            ]),
        ),
    ]);
    Frame::Map(spec)
}

/// The key specs of a command: one per group of keys used the same way.
fn key_specs(s: &CommandSpec) -> Vec<Frame> {
    match s.keys {
        Keys::None => Vec::new(),
        Keys::Counted { numkeys_at, dest } => {
            let keynum = || {
                (
                    "keynum",
                    vec![
                        (Frame::bulk("keynumidx"), Frame::Integer(0)),
                        (Frame::bulk("firstkey"), Frame::Integer(1)),
                        (Frame::bulk("keystep"), Frame::Integer(1)),
                    ],
                )
            };
            if dest {
                let sources = s.rest.unwrap_or(KeyAccess::Read);
                vec![
                    key_spec(s.key_note, s.access, 1, find_range(0, 1)),
                    key_spec("", sources, numkeys_at, keynum()),
                ]
            } else {
                vec![key_spec(s.key_note, s.access, numkeys_at, keynum())]
            }
        }
        Keys::Streams { from } => vec![Frame::Map(vec![
            (
                Frame::bulk("flags"),
                status_set(s.access.flags().iter().map(|f| f.to_string())),
            ),
            (
                Frame::bulk("begin_search"),
                Frame::Map(vec![
                    (Frame::bulk("type"), Frame::bulk("keyword")),
                    (
                        Frame::bulk("spec"),
                        Frame::Map(vec![
                            (Frame::bulk("keyword"), Frame::bulk("STREAMS")),
                            (Frame::bulk("startfrom"), Frame::Integer(from as i64)),
                        ]),
                    ),
                ]),
            ),
            (
                Frame::bulk("find_keys"),
                Frame::Map(vec![
                    (Frame::bulk("type"), Frame::bulk("range")),
                    (
                        Frame::bulk("spec"),
                        Frame::Map(vec![
                            (Frame::bulk("lastkey"), Frame::Integer(-1)),
                            (Frame::bulk("keystep"), Frame::Integer(1)),
                            (Frame::bulk("limit"), Frame::Integer(2)),
                        ]),
                    ),
                ]),
            ),
        ])],
        Keys::Store { from } => {
            // The source at index 1, then the destinations Redis finds by keyword.
            let mut specs = vec![key_spec(s.key_note, KeyAccess::Read, 1, find_range(0, 1))];
            for word in ["STORE", "STOREDIST"] {
                specs.push(Frame::Map(vec![
                    (
                        Frame::bulk("flags"),
                        status_set(KeyAccess::Overwrite.flags().iter().map(|f| f.to_string())),
                    ),
                    (
                        Frame::bulk("begin_search"),
                        Frame::Map(vec![
                            (Frame::bulk("type"), Frame::bulk("keyword")),
                            (
                                Frame::bulk("spec"),
                                Frame::Map(vec![
                                    (Frame::bulk("keyword"), Frame::bulk(word)),
                                    (Frame::bulk("startfrom"), Frame::Integer(from as i64)),
                                ]),
                            ),
                        ]),
                    ),
                    (
                        Frame::bulk("find_keys"),
                        Frame::Map(vec![
                            (Frame::bulk("type"), Frame::bulk("range")),
                            (Frame::bulk("spec"), Frame::Map(find_range(0, 1).1)),
                        ]),
                    ),
                ]));
            }
            specs
        }
        Keys::Range { first, last, step } => {
            // `lastkey` counts from the spec's first key, or from the end when negative.
            let lastkey = |from: i32| i64::from(if last < 0 { last } else { last - from });
            match s.rest {
                None => vec![key_spec(
                    s.key_note,
                    s.access,
                    first,
                    find_range(lastkey(first), step as i64),
                )],
                Some(rest) => vec![
                    key_spec(s.key_note, s.access, first, find_range(0, 1)),
                    key_spec(
                        "",
                        rest,
                        first + step,
                        find_range(lastkey(first + step), step as i64),
                    ),
                ],
            }
        }
    }
}

fn command_info_frame(s: &'static CommandSpec) -> Frame {
    let (first, last, step) = match s.keys {
        Keys::None | Keys::Counted { dest: false, .. } => (0, 0, 0),
        Keys::Counted { dest: true, .. } | Keys::Store { .. } => (1, 1, 1),
        Keys::Streams { .. } => (0, 0, 0),
        Keys::Range { first, last, step } => (first as i64, last as i64, step as i64),
    };
    let mut flags: Vec<String> = s.flags.names().map(str::to_string).collect();
    if let Keys::Counted { .. } | Keys::Store { .. } | Keys::Streams { .. } = s.keys {
        // Redis lists `movablekeys` just before `allow_busy`, the last flag.
        let at = flags
            .iter()
            .position(|f| f == "allow_busy")
            .unwrap_or(flags.len());
        flags.insert(at, "movablekeys".to_string());
    }
    Frame::Array(vec![
        Frame::bulk(s.name),
        Frame::Integer(s.arity as i64),
        status_set(flags),
        Frame::Integer(first),
        Frame::Integer(last),
        Frame::Integer(step),
        status_set(s.acl_categories()),
        Frame::Set(s.tips.iter().map(|t| Frame::bulk(*t)).collect()),
        Frame::Set(key_specs(s)),
        // Redis answers an empty set for a command without subcommands, an array otherwise.
        if s.subcommands.is_empty() {
            Frame::Set(Vec::new())
        } else {
            Frame::Array(s.subcommands.iter().map(command_info_frame).collect())
        },
    ])
}

fn command_docs_frame(s: &'static CommandSpec) -> Frame {
    let mut m = vec![
        (Frame::bulk("summary"), Frame::bulk(s.summary)),
        (Frame::bulk("since"), Frame::bulk(s.since)),
        (Frame::bulk("group"), Frame::bulk(s.group.name())),
    ];
    // A few commands (MONITOR) document no complexity, and Redis then leaves the field out.
    if !s.complexity.is_empty() {
        m.push((Frame::bulk("complexity"), Frame::bulk(s.complexity)));
    }
    if !s.subcommands.is_empty() {
        m.push((
            Frame::bulk("subcommands"),
            Frame::Map(
                s.subcommands
                    .iter()
                    .map(|sub| (Frame::bulk(sub.name), command_docs_frame(sub)))
                    .collect(),
            ),
        ));
    }
    Frame::Map(m)
}

/// Finds a command or `container|sub` by name, for `COMMAND INFO` and `COMMAND DOCS`.
fn find(cx: &Cx<'_>, name: &[u8]) -> Option<&'static CommandSpec> {
    let mut parts = name.splitn(2, |&b| b == b'|');
    let top = cx.table.get(parts.next()?)?;
    match parts.next() {
        Some(sub) => subcommand(top, sub),
        None => Some(top),
    }
}

fn sorted(cx: &Cx<'_>) -> Vec<&'static CommandSpec> {
    let mut all: Vec<_> = cx.table.all().collect();
    all.sort_by_key(|s| s.name);
    all
}

// Command: COMMAND
fn command_all(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    if a.len() > 1 {
        return Err(CommandError::err(format!(
            "unknown subcommand '{}'. Try COMMAND HELP.",
            args::text(&a[1])
        )));
    }
    Ok(Frame::Array(
        sorted(cx).into_iter().map(command_info_frame).collect(),
    ))
}

fn command_count(cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Frame::Integer(cx.table.len() as i64))
}

// Command: COMMAND INFO [command-name ...]
fn command_info(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    if a.len() == 2 {
        return Ok(Frame::Array(
            sorted(cx).into_iter().map(command_info_frame).collect(),
        ));
    }
    Ok(Frame::Array(
        a[2..]
            .iter()
            .map(|n| find(cx, n).map_or(Frame::Null, command_info_frame))
            .collect(),
    ))
}

// Command: COMMAND DOCS [command-name ...]
fn command_docs(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let specs: Vec<&'static CommandSpec> = if a.len() == 2 {
        sorted(cx)
    } else {
        a[2..].iter().filter_map(|n| find(cx, n)).collect()
    };
    Ok(Frame::Map(
        specs
            .into_iter()
            .map(|s| (Frame::bulk(s.name), command_docs_frame(s)))
            .collect(),
    ))
}

// Command: COMMAND LIST [FILTERBY MODULE name|ACLCAT category|PATTERN pattern]
fn command_list(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let all = sorted(cx);
    let names: Vec<&'static str> = match a.len() {
        2 => all.iter().map(|s| s.name).collect(),
        5 if is(&a[2], "FILTERBY") => {
            if is(&a[3], "MODULE") {
                Vec::new()
            } else if is(&a[3], "ACLCAT") {
                let cat = format!("@{}", args::text(&a[4]).to_ascii_lowercase());
                all.iter()
                    .filter(|s| s.acl_categories().contains(&cat))
                    .map(|s| s.name)
                    .collect()
            } else if is(&a[3], "PATTERN") {
                all.iter()
                    .flat_map(|s| std::iter::once(*s).chain(s.subcommands.iter()))
                    .filter(|s| shoal_storage::glob_match(&a[4], s.name.as_bytes(), true))
                    .map(|s| s.name)
                    .collect()
            } else {
                return Err(CommandError::Syntax);
            }
        }
        _ => return Err(CommandError::Syntax),
    };
    Ok(Frame::Array(names.into_iter().map(Frame::bulk).collect()))
}

/// The key positions of the command in `a[2..]`, with its spec, or Redis's error.
fn getkeys(cx: &Cx<'_>, a: &[Bytes]) -> Result<(Vec<usize>, &'static CommandSpec), CommandError> {
    let target = &a[2..];
    let spec = match resolve(cx.table, target) {
        Ok(s) => s,
        Err((None, _)) => return Err(CommandError::err("Invalid command specified")),
        Err((Some(_), _)) => {
            return Err(CommandError::err(
                "Invalid number of arguments specified for command",
            ))
        }
    };
    if let Keys::Counted { numkeys_at, .. } = spec.keys {
        // A count that is not positive, or that runs past the arguments, describes no valid
        // invocation.
        let at = numkeys_at as usize;
        let room = target.len().saturating_sub(at + 1) as i64;
        let n = target.get(at).and_then(|a| crate::args::parse_i64(a));
        if !n.is_some_and(|n| n > 0 && n <= room) {
            return Err(CommandError::err("Invalid arguments specified for command"));
        }
    }
    let keys: Vec<usize> = spec.key_positions(target).collect();
    if keys.is_empty() {
        return Err(CommandError::err("The command has no key arguments"));
    }
    Ok((keys, spec))
}

// Command: COMMAND GETKEYS command [arg ...]
fn command_getkeys(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let (keys, _) = getkeys(cx, a)?;
    Ok(Frame::Array(
        keys.into_iter()
            .map(|at| Frame::Bulk(a[at + 2].clone()))
            .collect(),
    ))
}

// Command: COMMAND GETKEYSANDFLAGS command [arg ...]
fn command_getkeysandflags(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let (keys, spec) = getkeys(cx, a)?;
    Ok(Frame::Array(
        keys.into_iter()
            .map(|at| {
                Frame::Array(vec![
                    Frame::Bulk(a[at + 2].clone()),
                    status_set(spec.key_flags(&a[2..], at).iter().map(|f| f.to_string())),
                ])
            })
            .collect(),
    ))
}

fn command_help(_cx: &mut Cx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    ))
}
