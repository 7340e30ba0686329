//! Behaviour of the keyspace through its public API: lookups, expiry, scans and eviction, all
//! driven by an explicit clock value.

use std::collections::HashSet;

use shoal_storage::{
    Entry, EvictOutcome, ExpireEffort, Journal, Keyspace, NewString, Policy, StrRef,
};

const T0: u64 = 1_700_000_000_000;

fn set(ks: &Keyspace, db: usize, key: &[u8], val: &[u8], deadline: Option<u64>, now: u64) {
    let mut l = ks.lock_key(key, now);
    let clock = l.access_clock();
    l.insert(
        db,
        Entry::new_string(key, NewString::Auto(val), deadline, clock),
    )
    .expect("stripe locked");
}

fn get(ks: &Keyspace, db: usize, key: &[u8], now: u64) -> Option<Vec<u8>> {
    let mut l = ks.lock_key(key, now);
    l.read(db, key)
        .expect("stripe locked")
        .and_then(|e| e.as_str())
        .map(|s| s.to_bytes().into_owned())
}

#[test]
fn keys_expire_lazily_at_their_deadline() {
    let ks = Keyspace::new(16, 64, 1);
    set(&ks, 0, b"k", b"v", Some(T0 + 1000), T0);
    assert_eq!(get(&ks, 0, b"k", T0 + 999), Some(b"v".to_vec()));
    assert_eq!(get(&ks, 0, b"k", T0 + 1000), None);
    assert_eq!(ks.db_info(0).keys, 0);
    assert_eq!(ks.stats().expired, 1);
}

#[test]
fn databases_are_separate_and_swappable() {
    let ks = Keyspace::new(16, 64, 1);
    set(&ks, 0, b"a", b"zero", None, T0);
    set(&ks, 1, b"a", b"one", None, T0);
    let mut swap = Journal::default();
    ks.swap_dbs(0, 1, 0, &mut swap);
    assert_eq!(swap.dirty, 1);
    assert_eq!(get(&ks, 0, b"a", T0), Some(b"one".to_vec()));
    assert_eq!(get(&ks, 1, b"a", T0), Some(b"zero".to_vec()));
    let mut j = Journal::default();
    drop(ks.flush(Some(0), &mut j));
    assert_eq!(j.dirty, 1);
    assert_eq!(ks.db_info(0).keys, 0);
    assert_eq!(ks.db_info(1).keys, 1);
}

#[test]
fn integers_are_stored_as_integers() {
    let ks = Keyspace::new(16, 64, 1);
    set(&ks, 0, b"n", b"42", None, T0);
    let mut l = ks.lock_key(b"n", T0);
    let e = l.peek(0, b"n").expect("locked").expect("present");
    assert_eq!(e.as_str(), Some(StrRef::Int(42)));
}

#[test]
fn accessing_an_unlocked_stripe_is_an_error_not_a_panic() {
    let ks = Keyspace::new(16, 256, 1);
    let mut l = ks.lock_key(b"foo", T0);
    // "bar" hashes to a different slot and, with 256 stripes, a different stripe.
    assert_ne!(ks.stripe_of(b"foo"), ks.stripe_of(b"bar"));
    assert!(l.peek(0, b"bar").is_err());
}

#[test]
fn memory_estimate_follows_inserts_updates_and_deletes() {
    let ks = Keyspace::new(16, 64, 1);
    assert_eq!(ks.dataset_estimate(), 0);
    set(&ks, 0, b"k", &[b'x'; 100], None, T0);
    let one = ks.dataset_estimate();
    assert!(one >= 100, "{one}");
    {
        let mut l = ks.lock_key(b"k", T0);
        let mut e = l.write(0, b"k").expect("locked").expect("present");
        e.get_mut().append(&[b'y'; 1000]);
    }
    assert!(ks.dataset_estimate() > one + 1000);
    let mut l = ks.lock_key(b"k", T0);
    l.remove(0, b"k").expect("locked");
    drop(l);
    assert_eq!(ks.dataset_estimate(), 0);
}

#[test]
fn full_scan_returns_every_key_once_even_while_tables_grow() {
    let ks = Keyspace::new(16, 64, 7);
    let original: Vec<Vec<u8>> = (0..5000).map(|i| format!("key:{i}").into_bytes()).collect();
    for k in &original {
        set(&ks, 0, k, b"v", None, T0);
    }
    let mut seen = Vec::new();
    let mut cursor = 0;
    let mut step = 0;
    loop {
        let (next, keys) = ks.scan(0, cursor, 10, T0, |_| true);
        seen.extend(keys);
        // Grow the tables between calls, as concurrent writers would.
        for i in 0..20 {
            set(&ks, 0, format!("new:{step}:{i}").as_bytes(), b"v", None, T0);
        }
        step += 1;
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no key returned twice");
    for k in &original {
        assert!(
            unique.contains(k),
            "missing {:?}",
            String::from_utf8_lossy(k)
        );
    }
}

#[test]
fn active_expiry_reclaims_keys_nobody_reads() {
    let ks = Keyspace::new(16, 64, 3);
    for i in 0..20_000 {
        set(
            &ks,
            0,
            format!("t:{i}").as_bytes(),
            b"v",
            Some(T0 + 100),
            T0,
        );
    }
    for i in 0..1000 {
        set(&ks, 0, format!("p:{i}").as_bytes(), b"v", None, T0);
    }
    let mut j = Journal::default();
    let mut cycles = 0;
    while ks.db_info(0).keys > 1000 {
        ks.active_expire_cycle(T0 + 200, ExpireEffort::from_effort(1), || false, &mut j);
        cycles += 1;
        assert!(cycles < 100, "expiry made no progress");
    }
    assert_eq!(
        ks.db_info(0),
        shoal_storage::DbInfo {
            keys: 1000,
            volatile: 0
        }
    );
    assert_eq!(j.dirty, 20_000);
}

#[test]
fn active_expiry_stops_when_told_and_resumes() {
    let ks = Keyspace::new(16, 64, 3);
    for i in 0..5000 {
        set(&ks, 0, format!("t:{i}").as_bytes(), b"v", Some(T0 + 1), T0);
    }
    let mut j = Journal::default();
    let mut calls = 0;
    let stats = ks.active_expire_cycle(
        T0 + 10,
        ExpireEffort::from_effort(1),
        || {
            calls += 1;
            calls > 3
        },
        &mut j,
    );
    assert!(!stats.completed);
    assert!(stats.expired > 0 && stats.expired < 5000);
}

#[test]
fn noeviction_reports_over_limit() {
    let ks = Keyspace::new(16, 64, 3);
    ks.eviction.set_maxmemory(1);
    set(&ks, 0, b"k", b"v", None, T0);
    let mut j = Journal::default();
    assert_eq!(ks.evict_if_needed(T0, &mut j), EvictOutcome::OverLimit);
}

#[test]
fn lru_eviction_keeps_recently_used_keys() {
    let ks = Keyspace::new(16, 64, 3);
    ks.eviction.set_policy(Policy::AllKeysLru);
    ks.eviction.set_samples(10);
    let val = [b'x'; 100];
    for i in 0..2000 {
        set(&ks, 0, format!("cold:{i}").as_bytes(), &val, None, T0);
    }
    // Hot keys are written and read 100 seconds later, so they are the most recently used.
    let later = T0 + 100_000;
    for i in 0..200 {
        set(&ks, 0, format!("hot:{i}").as_bytes(), &val, None, later);
    }
    let limit = ks.used_memory() / 2;
    ks.eviction.set_maxmemory(limit as u64);
    let mut j = Journal::default();
    // One call evicts a bounded number of keys and lets the write proceed, so a big overshoot
    // takes several writes; none of them may be refused while keys remain.
    let mut calls = 0;
    while ks.used_memory() > limit {
        assert_eq!(ks.evict_if_needed(later, &mut j), EvictOutcome::Ok);
        calls += 1;
        assert!(calls < 10, "eviction made no progress");
    }
    assert!(ks.used_memory() <= limit);
    let hot_left = (0..200)
        .filter(|i| get(&ks, 0, format!("hot:{i}").as_bytes(), later).is_some())
        .count();
    assert!(hot_left >= 190, "hot keys evicted: {}", 200 - hot_left);
    assert!(ks.stats().evicted > 900);
}

#[test]
fn volatile_policies_touch_only_keys_with_expiry() {
    let ks = Keyspace::new(16, 64, 3);
    ks.eviction.set_policy(Policy::VolatileTtl);
    for i in 0..100 {
        set(&ks, 0, format!("p:{i}").as_bytes(), b"v", None, T0);
    }
    for i in 0..100 {
        set(
            &ks,
            0,
            format!("v:{i}").as_bytes(),
            b"v",
            Some(T0 + 1_000_000 + i),
            T0,
        );
    }
    ks.eviction.set_maxmemory(1);
    let mut j = Journal::default();
    assert_eq!(ks.evict_if_needed(T0, &mut j), EvictOutcome::OverLimit);
    assert_eq!(
        ks.db_info(0),
        shoal_storage::DbInfo {
            keys: 100,
            volatile: 0
        }
    );
}

#[test]
fn random_key_finds_the_only_key() {
    let ks = Keyspace::new(16, 256, 3);
    let mut j = Journal::default();
    assert_eq!(ks.random_key(0, T0, &mut j), None);
    set(&ks, 0, b"only", b"v", None, T0);
    assert_eq!(ks.random_key(0, T0, &mut j), Some(b"only".to_vec()));
}

/// A single-key view remembers its key's slot; another key used through the same view (one
/// stripe holds every slot here) must still be placed in its own slot, found again by a view
/// locked on it, and seen by a scan.
#[test]
fn a_single_key_view_places_other_keys_in_their_own_slots() {
    let ks = Keyspace::new(1, 1, 1);
    let mut l = ks.lock_key(b"a", T0);
    let clock = l.access_clock();
    // The slot of "a" is 15495, of "b" 3300: a reused slot would file "b" under the wrong one.
    l.insert(
        0,
        Entry::new_string(b"b", NewString::Auto(b"1"), None, clock),
    )
    .expect("stripe locked");
    drop(l);
    assert_eq!(get(&ks, 0, b"b", T0), Some(b"1".to_vec()));
    assert_eq!(ks.keys(0, T0, |_| true), vec![b"b".to_vec()]);
    // An equal key at another address is recognised by its bytes, not its address.
    let copy = b"b".to_vec();
    let mut l = ks.lock_key(b"b", T0);
    assert!(l.read(0, &copy).expect("stripe locked").is_some());
}
