//! The command table: every family's specs, one line per family. Start here to add a command.

use std::collections::HashMap;

use foldhash::fast::FixedState;

use crate::spec::CommandSpec;
use crate::{
    bitmaps, connection, geo, hashes, hyperloglog, keys, lists, pubsub, scripting, server, sets,
    streams, strings, transactions, zsets,
};

/// Every family, alphabetical for the foolish consistency.
const FAMILIES: &[&[CommandSpec]] = &[
    bitmaps::COMMANDS,
    connection::COMMANDS,
    geo::COMMANDS,
    hashes::COMMANDS,
    hyperloglog::COMMANDS,
    keys::COMMANDS,
    lists::COMMANDS,
    pubsub::COMMANDS,
    scripting::COMMANDS,
    server::COMMANDS,
    sets::COMMANDS,
    streams::COMMANDS,
    strings::COMMANDS,
    transactions::COMMANDS,
    zsets::COMMANDS,
];

/// Looks commands up by name, case-insensitively.
pub struct CommandTable {
    by_name: HashMap<Vec<u8>, &'static CommandSpec, FixedState>,
}

impl Default for CommandTable {
    fn default() -> Self {
        Self::new()
    }
}

impl CommandTable {
    /// Builds the table from every family.
    pub fn new() -> CommandTable {
        let by_name = FAMILIES
            .iter()
            .flat_map(|f| f.iter())
            .map(|s| (s.name.as_bytes().to_vec(), s))
            .collect();
        CommandTable { by_name }
    }

    /// Finds a command by name in any case.
    pub fn get(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        if name.len() > 32 {
            return None;
        }
        let mut buf = [0u8; 32];
        let lower = &mut buf[..name.len()];
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        self.by_name.get(&lower[..]).copied()
    }

    /// Every top-level command.
    pub fn all(&self) -> impl Iterator<Item = &'static CommandSpec> + '_ {
        self.by_name.values().copied()
    }

    /// The number of top-level commands.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when the table is empty.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// Finds a subcommand of a container command, case-insensitively.
pub fn subcommand(spec: &'static CommandSpec, name: &[u8]) -> Option<&'static CommandSpec> {
    spec.subcommands.iter().find(|s| {
        s.name
            .split('|')
            .nth(1)
            .is_some_and(|n| n.as_bytes().eq_ignore_ascii_case(name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lower_case() {
        let mut seen = std::collections::HashSet::new();
        for f in FAMILIES {
            for s in f.iter() {
                assert!(seen.insert(s.name), "duplicate {}", s.name);
                assert_eq!(s.name, s.name.to_ascii_lowercase());
                for sub in s.subcommands {
                    assert!(
                        sub.name.starts_with(&format!("{}|", s.name)),
                        "{}",
                        sub.name
                    );
                }
            }
        }
    }

    #[test]
    fn key_specs_agree_with_arity() {
        for f in FAMILIES {
            for s in f.iter().chain(f.iter().flat_map(|s| s.subcommands.iter())) {
                // `SUNSUBSCRIBE` declares channels (not keys) that may all be missing.
                if s.access == crate::spec::KeyAccess::NotKey {
                    continue;
                }
                if let crate::spec::Keys::Range { first, .. } = s.keys {
                    assert!(first >= 1, "{}", s.name);
                    assert!(
                        s.arity.abs() > first,
                        "{} arity too small for its keys",
                        s.name
                    );
                }
            }
        }
    }
}
