//! The slow log behind `SLOWLOG`: the latest commands that ran for at least
//! `slowlog-log-slower-than` microseconds, newest first, at most `slowlog-max-len` of them.
//!
//! Pure data, like the rest of this crate: the server measures the duration, reads the clock and
//! decides whether a command qualifies; this module keeps entries in Redis 7.0's shape (arguments
//! capped in number and length, passwords redacted) and hands them back for `SLOWLOG GET`.

use std::collections::VecDeque;

/// Arguments an entry keeps; when a command has more, the last kept one says how many more there
/// were (Redis's `SLOWLOG_ENTRY_MAX_ARGC`).
pub const MAX_ARGS: usize = 32;

/// Bytes of an argument an entry keeps, followed by how many more there were (Redis's
/// `SLOWLOG_ENTRY_MAX_STRING`).
pub const MAX_ARG_BYTES: usize = 128;

/// What a password argument is replaced with, in the slow log and in `MONITOR`.
pub const REDACTED: &[u8] = b"(redacted)";

/// Configuration parameters whose `CONFIG SET` value is a secret (Redis 7.0's `SENSITIVE_CONFIG`
/// set). Shoal has only `requirepass` today; the replication ones are listed so their values stay
/// hidden the day they exist.
const SECRET_CONFIGS: &[&str] = &["requirepass", "masterauth", "masteruser"];

/// One slow command, as `SLOWLOG GET` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Unique, increasing from 0 over the server's life; `SLOWLOG RESET` does not restart it.
    pub id: u64,
    /// Unix time in seconds when the command finished.
    pub time: u64,
    /// How long the command ran, in microseconds.
    pub duration_us: u64,
    /// The arguments, shortened and redacted by [`logged_args`].
    pub args: Vec<Vec<u8>>,
    /// The client's address: `ip:port`, or `path:0` for the Unix socket.
    pub addr: String,
    /// The client's name, empty when it has none.
    pub name: Vec<u8>,
}

/// The slow log itself. The server keeps one behind a mutex that it takes only for commands that
/// qualify, and for `SLOWLOG`.
#[derive(Debug, Default)]
pub struct SlowLog {
    /// Newest first.
    entries: VecDeque<Entry>,
    next_id: u64,
}

impl SlowLog {
    /// Adds `entry` as the newest, giving it the next id (whatever `entry.id` held), then drops
    /// the oldest entries beyond `max_len`. Returns the id. Like Redis, an entry pushed while
    /// `max_len` is 0 still uses up an id.
    pub fn push(&mut self, mut entry: Entry, max_len: usize) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        entry.id = id;
        self.entries.push_front(entry);
        self.trim(max_len);
        id
    }

    /// Drops the oldest entries beyond `max_len` (after `CONFIG SET slowlog-max-len`).
    pub fn trim(&mut self, max_len: usize) {
        self.entries.truncate(max_len);
    }

    /// Removes every entry (`SLOWLOG RESET`). Ids keep counting, as in Redis.
    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// The number of entries (`SLOWLOG LEN`).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the log holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The newest `count` entries, newest first (`SLOWLOG GET count`).
    pub fn newest(&self, count: usize) -> impl Iterator<Item = &Entry> {
        self.entries.iter().take(count)
    }
}

/// The arguments an entry keeps, as Redis's `slowlogCreateEntry` shortens them: at most
/// [`MAX_ARGS`], the last of which becomes `... (N more arguments)` when some were left out; each
/// argument at most [`MAX_ARG_BYTES`] followed by `... (N more bytes)`; and the positions listed
/// in `secret` (from [`secret_args`]) replaced by [`REDACTED`].
pub fn logged_args<A: AsRef<[u8]>>(args: &[A], secret: &[usize]) -> Vec<Vec<u8>> {
    let kept = args.len().min(MAX_ARGS);
    (0..kept)
        .map(|j| {
            if kept != args.len() && j == kept - 1 {
                return format!("... ({} more arguments)", args.len() - kept + 1).into_bytes();
            }
            if secret.contains(&j) {
                return REDACTED.to_vec();
            }
            let arg = args[j].as_ref();
            if arg.len() > MAX_ARG_BYTES {
                let mut short = arg[..MAX_ARG_BYTES].to_vec();
                let more = format!("... ({} more bytes)", arg.len() - MAX_ARG_BYTES);
                short.extend_from_slice(more.as_bytes());
                short
            } else {
                arg.to_vec()
            }
        })
        .collect()
}

/// The positions of the arguments that carry a password, which the slow log and `MONITOR` show as
/// [`REDACTED`]. `command` is the spec name (`auth`, `config|set`).
///
/// Redis redacts while the command runs, so an argument is hidden only if the command got as far
/// as reading it: `AUTH` with too many arguments, a `HELLO` whose protocol version is invalid, or
/// `HELLO` options after an invalid `SETNAME`, are shown as sent. One difference, on the safe
/// side: Redis stops reading `HELLO` options at a failed `AUTH`, so a second `AUTH` option after a
/// failed one would be shown; here every `AUTH` option's credentials are hidden.
pub fn secret_args<A: AsRef<[u8]>>(command: &str, args: &[A]) -> Vec<usize> {
    match command {
        "auth" => match args.len() {
            2 => vec![1],
            3 => vec![1, 2],
            _ => Vec::new(),
        },
        "hello" => hello_secrets(args),
        "config|set" => config_set_secrets(args),
        _ => Vec::new(),
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`: the credentials of each
/// `AUTH` option, read in order until an option Redis would reject.
fn hello_secrets<A: AsRef<[u8]>>(args: &[A]) -> Vec<usize> {
    let mut secret = Vec::new();
    // The protocol version is parsed first; anything but exactly 2 or 3 (Redis's strict integer
    // parser refuses `+3` and `03`) fails before any option is read.
    if args.len() < 2 || !matches!(args[1].as_ref(), b"2" | b"3") {
        return secret;
    }
    let mut j = 2;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = args[j].as_ref();
        if opt.eq_ignore_ascii_case(b"AUTH") && more >= 2 {
            secret.extend([j + 1, j + 2]);
            j += 3;
        } else if opt.eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
            // An invalid name ends the command before later options are read.
            if args[j + 1]
                .as_ref()
                .iter()
                .any(|b| !(b'!'..=b'~').contains(b))
            {
                break;
            }
            j += 2;
        } else {
            break;
        }
    }
    secret
}

/// `CONFIG SET name value [name value ...]`: the values of secret parameters. An odd argument
/// count is a syntax error before any pair is read.
fn config_set_secrets<A: AsRef<[u8]>>(args: &[A]) -> Vec<usize> {
    if !args.len().is_multiple_of(2) {
        return Vec::new();
    }
    (2..args.len())
        .step_by(2)
        .filter(|&i| {
            SECRET_CONFIGS
                .iter()
                .any(|c| args[i].as_ref().eq_ignore_ascii_case(c.as_bytes()))
        })
        .map(|i| i + 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(duration_us: u64) -> Entry {
        Entry {
            id: 0,
            time: 1_700_000_000,
            duration_us,
            args: vec![b"get".to_vec(), b"k".to_vec()],
            addr: "127.0.0.1:5000".into(),
            name: Vec::new(),
        }
    }

    fn text(args: &[Vec<u8>]) -> Vec<String> {
        args.iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn newest_first_trimmed_to_max_len_ids_keep_counting() {
        let mut log = SlowLog::default();
        for d in [10, 20, 30] {
            log.push(entry(d), 2);
        }
        let got: Vec<(u64, u64)> = log.newest(10).map(|e| (e.id, e.duration_us)).collect();
        assert_eq!(got, vec![(2, 30), (1, 20)]);

        log.reset();
        assert!(log.is_empty());
        assert_eq!(log.push(entry(40), 2), 3);

        // With max_len 0 nothing is kept, but the id is used up.
        assert_eq!(log.push(entry(50), 0), 4);
        assert_eq!(log.len(), 0);
    }

    #[test]
    fn trim_after_lowering_max_len() {
        let mut log = SlowLog::default();
        for d in 0..5 {
            log.push(entry(d), 128);
        }
        log.trim(2);
        let got: Vec<u64> = log.newest(usize::MAX).map(|e| e.id).collect();
        assert_eq!(got, vec![4, 3]);
    }

    #[test]
    fn long_commands_keep_32_arguments_the_last_counting_the_rest() {
        let args: Vec<String> = std::iter::once("MSET".to_string())
            .chain((0..40).map(|i| i.to_string()))
            .collect();
        let logged = text(&logged_args(&args, &[]));
        assert_eq!(logged.len(), 32);
        assert_eq!(logged[30], "29");
        assert_eq!(logged[31], "... (10 more arguments)");
    }

    #[test]
    fn long_arguments_keep_128_bytes_then_count_the_rest() {
        let long = vec![b'x'; 200];
        let logged = logged_args(&[b"SET".to_vec(), long, b"y".to_vec()], &[]);
        let expected = format!("{}... (72 more bytes)", "x".repeat(128));
        assert_eq!(text(&logged), vec!["SET", expected.as_str(), "y"]);

        let exact = vec![b'x'; 128];
        assert_eq!(logged_args(std::slice::from_ref(&exact), &[]), vec![exact]);
    }

    #[test]
    fn secrets_are_redacted() {
        let args = ["AUTH", "user", "secret"];
        assert_eq!(
            text(&logged_args(&args, &secret_args("auth", &args))),
            vec!["AUTH", "(redacted)", "(redacted)"]
        );
    }

    #[test]
    fn auth_hides_its_credentials_unless_it_has_too_many_arguments() {
        assert_eq!(secret_args("auth", &["AUTH", "pw"]), vec![1]);
        assert_eq!(secret_args("auth", &["AUTH", "u", "pw"]), vec![1, 2]);
        assert!(secret_args("auth", &["AUTH", "u", "x", "y"]).is_empty());
    }

    #[test]
    fn hello_hides_auth_credentials_read_before_an_error() {
        let hello = |a: &[&str]| secret_args("hello", a);
        assert_eq!(
            hello(&["HELLO", "3", "AUTH", "default", "pw", "SETNAME", "n"]),
            vec![3, 4]
        );
        assert_eq!(
            hello(&["HELLO", "2", "SETNAME", "n", "auth", "u", "pw"]),
            vec![5, 6]
        );
        // Redis fails on these before it reads the credentials, and shows them.
        assert!(hello(&["HELLO", "2", "SETNAME", "a b", "AUTH", "u", "pw"]).is_empty());
        assert!(hello(&["HELLO", "4", "AUTH", "u", "pw"]).is_empty());
        assert!(hello(&["HELLO", "03", "AUTH", "u", "pw"]).is_empty());
        assert!(hello(&["HELLO", "3", "BOGUS", "AUTH", "u", "pw"]).is_empty());
        assert!(hello(&["HELLO"]).is_empty());
    }

    #[test]
    fn config_set_hides_secret_values_only() {
        let args = ["CONFIG", "SET", "hz", "10", "REQUIREPASS", "pw"];
        assert_eq!(secret_args("config|set", &args), vec![5]);
        assert!(secret_args("config|set", &["CONFIG", "SET", "requirepass"]).is_empty());
        assert!(secret_args("set", &["SET", "requirepass", "pw"]).is_empty());
    }
}
