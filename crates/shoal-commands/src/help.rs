//! The `HELP` replies of container commands, in Redis's format.

use bytes::Bytes;
use shoal_resp::Frame;

/// `<CMD> <subcommand> [<arg> [value] [opt] ...]. Subcommands are:`, the lines, then the `HELP`
/// entry, each as a status reply, as Redis's `addReplyHelp` sends them.
pub(crate) fn help_reply(cmd: &str, lines: &[&str]) -> Frame {
    let mut out = Vec::with_capacity(lines.len() + 3);
    out.push(Frame::Simple(Bytes::from(format!(
        "{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))));
    for l in lines {
        out.push(Frame::Simple(Bytes::copy_from_slice(l.as_bytes())));
    }
    out.push(Frame::Simple(Bytes::from_static(b"HELP")));
    out.push(Frame::Simple(Bytes::from_static(b"    Prints this help.")));
    Frame::Array(out)
}
