//! Argument parsing helpers shared by every family, with Redis's parsing rules and error replies.

use bytes::Bytes;

use crate::error::CommandError;

/// Parses a signed 64-bit integer the way Redis's `string2ll` does (no spaces, no `+`, no leading
/// zeros other than `0` itself), failing with `ERR value is not an integer or out of range`.
pub fn int(arg: &[u8]) -> Result<i64, CommandError> {
    parse_i64(arg).ok_or(CommandError::NotInteger)
}

/// Like [`int`], returning `None` instead of an error.
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    shoal_storage::parse_canonical_i64(arg)
}

/// Parses a float as Redis's `string2ld`/`strtold` accepts it: decimal or exponent notation,
/// `inf`, no surrounding spaces, not NaN. Returns `None` when it does not parse.
pub fn parse_f64(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let v = match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        }
        _ => {
            // Rust's parser rejects hex floats and accepts the same decimal forms strtold does,
            // apart from words like "nan", which Redis rejects too.
            if !lower
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
            {
                return None;
            }
            let v = lower.parse::<f64>().ok()?;
            // strtold reports overflow and underflow as range errors, which Redis rejects.
            let mantissa = lower.split('e').next().unwrap_or("");
            if v.is_infinite() || (v == 0.0 && mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)))
            {
                return None;
            }
            v
        }
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

/// An argument as lossy UTF-8 text, for error messages.
pub fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// A cursor over a command's arguments after the name.
pub struct Args<'a> {
    args: &'a [Bytes],
    pos: usize,
}

impl<'a> Args<'a> {
    /// Wraps the arguments, skipping the first `skip` (the command name, and the subcommand).
    pub fn new(args: &'a [Bytes], skip: usize) -> Args<'a> {
        Args { args, pos: skip }
    }

    /// The next argument, or a syntax error.
    pub fn next(&mut self) -> Result<&'a Bytes, CommandError> {
        let a = self.args.get(self.pos).ok_or(CommandError::Syntax)?;
        self.pos += 1;
        Ok(a)
    }

    /// The next argument, if any.
    pub fn try_next(&mut self) -> Option<&'a Bytes> {
        let a = self.args.get(self.pos)?;
        self.pos += 1;
        Some(a)
    }

    /// True when every argument was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.args.len()
    }
}

/// The unit of a blocking command's timeout argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutUnit {
    /// Seconds, fractions allowed (`BLPOP`, `BZPOPMIN`, ...).
    Seconds,
    /// Whole milliseconds (`XREAD BLOCK`).
    Millis,
}

/// Parses a blocking timeout as Redis's `getTimeoutFromObjectOrReply` does, returning the
/// absolute deadline in Unix milliseconds, or `None` for 0 (wait forever).
pub fn block_timeout(arg: &[u8], unit: TimeoutUnit, now: u64) -> Result<Option<u64>, CommandError> {
    let ms: i64 = match unit {
        TimeoutUnit::Seconds => {
            let secs = parse_f64(arg)
                .ok_or_else(|| CommandError::err("timeout is not a float or out of range"))?;
            let ms = (secs * 1000.0).ceil();
            if ms > i64::MAX as f64 {
                return Err(CommandError::err("timeout is out of range"));
            }
            ms as i64
        }
        TimeoutUnit::Millis => parse_i64(arg)
            .ok_or_else(|| CommandError::err("timeout is not an integer or out of range"))?,
    };
    if ms < 0 {
        return Err(CommandError::err("timeout is negative"));
    }
    if ms == 0 {
        return Ok(None);
    }
    (ms as u64)
        .checked_add(now)
        .filter(|d| *d <= i64::MAX as u64)
        .map(Some)
        .ok_or_else(|| CommandError::err("timeout is out of range"))
}
