//! Compiles and runs the integration suites of crates/shoal-server/tests against
//! redis-server, so the tests themselves are known to be right before Shoal runs them: in this
//! crate `CARGO_BIN_EXE_shoal-server` is not defined and `target_kind` falls back to Redis
//! (unless SHOAL_SERVER_BIN names a Shoal binary).

#[path = "../../shoal-server/tests/client_redis_rs.rs"]
mod client_redis_rs;
#[path = "../../shoal-server/tests/differential.rs"]
mod differential;
#[path = "../../shoal-server/tests/redis_cli.rs"]
mod redis_cli;
