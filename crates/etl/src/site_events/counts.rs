//! The seven aggregate tables, counted while the events stream by (docs/SEMANTICS.md, base b,
//! "Counts", "NULL keys", "City and state", "Sessions"). Memory grows with the number of
//! groups (students, pages, campaigns' distinct sessions), not with the number of events.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use std::hash::Hasher;

use hashbrown::HashTable;
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use xxhash_rust::xxh3::xxh3_128;

use super::events::{renamed, schema_of, Derived};
use super::line::{slots, Event};
use super::students::Students;
use crate::short_eq::short_eq;
use crate::warehouse::{table, TableDef};

/// Events per value of one key; the NULL key is a group of its own.
///
/// The keys' bytes are kept in one arena, each entry its hash, place and count: no allocation
/// per distinct key, and a probe compares the full hash before any bytes.
#[derive(Debug, Default)]
pub struct Counts {
    table: HashTable<Entry>,
    arena: Vec<u8>,
    null: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    start: usize,
    len: usize,
    n: u64,
}

fn hash_of(key: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(key);
    h.finish()
}

impl Counts {
    pub fn add(&mut self, key: Option<&str>, n: u64) {
        match key {
            None => self.null += n,
            Some(k) => self.add_hashed(k.as_bytes(), hash_of(k.as_bytes()), n),
        }
    }

    fn add_hashed(&mut self, key: &[u8], hash: u64, n: u64) {
        let arena = &self.arena;
        let found = self.table.find_mut(hash, |e| {
            e.hash == hash && short_eq(&arena[e.start..e.start + e.len], key)
        });
        match found {
            Some(e) => e.n += n,
            None => {
                let start = self.arena.len();
                self.arena.extend_from_slice(key);
                self.table.insert_unique(
                    hash,
                    Entry {
                        hash,
                        start,
                        len: key.len(),
                        n,
                    },
                    |e| e.hash,
                );
            }
        }
    }

    fn key(&self, e: &Entry) -> &str {
        std::str::from_utf8(&self.arena[e.start..e.start + e.len]).expect("keys are UTF-8")
    }

    fn merge(&mut self, other: Counts) {
        self.null += other.null;
        for e in other.table.iter() {
            self.add_hashed(&other.arena[e.start..e.start + e.len], e.hash, e.n);
        }
    }

    /// (key, count) pairs, the NULL group included when it has events.
    fn rows(&self) -> impl Iterator<Item = (Option<&str>, u64)> {
        self.table
            .iter()
            .map(|e| (Some(self.key(e)), e.n))
            .chain((self.null > 0).then_some((None, self.null)))
    }
}

/// One campaign's events and the distinct sessions among them.
#[derive(Debug, Default)]
struct Campaign {
    events: u64,
    /// 128-bit hashes of (`uuid`, `session_uuid`): two distinct sessions share one with a
    /// probability of about n^2 / 2^129 (below 10^-20 for a billion sessions).
    sessions: FxHashSet<u128>,
}

/// Every count of one worker's events.
#[derive(Debug, Default)]
pub struct Tally {
    per_student: Counts,
    pages: Counts,
    clients: Counts,
    universities: Counts,
    courses: Counts,
    /// Keyed by the three marketing columns, encoded (see [`campaign_key`]).
    campaigns: FxHashMap<Box<[u8]>, Campaign>,
    key: Vec<u8>,
    pub events_without_session: u64,
    pub missing_student_key: u64,
    pub key_without_at: u64,
    pub unparsed_at: u64,
}

/// The three marketing values as one key: for each, 0 (NULL) or 1, its length and its bytes.
fn campaign_key(out: &mut Vec<u8>, values: [Option<&str>; 3]) {
    out.clear();
    for v in values {
        match v {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

fn campaign_values(key: &[u8]) -> [Option<String>; 3] {
    let mut out: [Option<String>; 3] = Default::default();
    let mut at = 0;
    for v in &mut out {
        if key[at] == 1 {
            let len = u32::from_le_bytes(key[at + 1..at + 5].try_into().expect("4 bytes")) as usize;
            *v = Some(String::from_utf8(key[at + 5..at + 5 + len].to_vec()).expect("UTF-8"));
            at += 5 + len;
        } else {
            at += 1;
        }
    }
    out
}

impl Tally {
    pub fn add(&mut self, event: &Event<'_>, d: &Derived<'_>) {
        // The key's split says both: no student id, no key; a student without a client type,
        // a key without `@` (`derive::student_and_client`).
        match (d.student_id, d.client_type) {
            (None, _) => self.missing_student_key += 1,
            (Some(_), None) => self.key_without_at += 1,
            (Some(_), Some(_)) => {}
        }
        if d.time.is_none() {
            self.unparsed_at += 1;
        }
        self.per_student.add(d.student_id, 1);
        self.pages
            .add(renamed(event, slots::PAGE_NAME.0, slots::PAGE_NAME.1), 1);
        self.clients.add(d.client_type, 1);
        self.universities.add(event.get(slots::CUSTOM_1), 1);
        self.courses.add(event.get(slots::CUSTOM_2), 1);
        let session = match (event.get(slots::UUID), event.get(slots::SESSION_UUID)) {
            (Some(u), Some(s)) => {
                let buf = &mut self.key;
                buf.clear();
                buf.extend_from_slice(&(u.len() as u32).to_le_bytes());
                buf.extend_from_slice(u.as_bytes());
                buf.extend_from_slice(s.as_bytes());
                Some(xxh3_128(buf))
            }
            _ => {
                self.events_without_session += 1;
                None
            }
        };
        campaign_key(&mut self.key, slots::MARKETING.map(|m| event.get(m)));
        let campaign = match self.campaigns.get_mut(self.key.as_slice()) {
            Some(c) => c,
            None => self
                .campaigns
                .entry(self.key.clone().into_boxed_slice())
                .or_default(),
        };
        campaign.events += 1;
        if let Some(s) = session {
            campaign.sessions.insert(s);
        }
    }

    pub fn merge(&mut self, other: Tally) {
        // The pages (about one per event) merge on a thread of their own, beside the rest:
        // the run's one step where a core would otherwise wait.
        let (pages, other_pages) = (&mut self.pages, other.pages);
        std::thread::scope(|s| {
            s.spawn(move || pages.merge(other_pages));
            self.per_student.merge(other.per_student);
        });
        self.clients.merge(other.clients);
        self.universities.merge(other.universities);
        self.courses.merge(other.courses);
        for (k, c) in other.campaigns {
            let mine = self.campaigns.entry(k).or_default();
            mine.events += c.events;
            mine.sessions.extend(c.sessions);
        }
        self.events_without_session += other.events_without_session;
        self.missing_student_key += other.missing_student_key;
        self.key_without_at += other.key_without_at;
        self.unparsed_at += other.unparsed_at;
    }

    /// Events whose student id is not NULL and not in the students table.
    pub fn unknown_students(&self, students: &Students) -> u64 {
        self.per_student
            .rows()
            .filter_map(|(id, n)| id.filter(|id| students.get(id).is_none()).map(|_| n))
            .sum()
    }

    /// The seven tables, by folder, as one batch each (row order not defined).
    pub fn tables(&self, students: &Students) -> Vec<(&'static TableDef, RecordBatch)> {
        // Events of students the table holds, as the original's inner join counts them
        // (docs/SEMANTICS.md, "City and state"): an unknown student's events, and those
        // without a student id, are in no row; the NULL row is known students without a city
        // (or state).
        let (mut cities, mut states) = (Counts::default(), Counts::default());
        for (id, n) in self.per_student.rows() {
            let Some((city, state)) = id.and_then(|id| students.get(id)) else {
                continue;
            };
            cities.add(city, n);
            states.add(state, n);
        }
        let one = |name: &str, counts: &Counts| {
            let def = table(name).expect("a base-b table");
            let (keys, n): (Vec<_>, Vec<_>) = counts.rows().map(|(k, n)| (k, n as i64)).unzip();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(keys)),
                Arc::new(Int64Array::from(n)),
            ];
            (def, batch(def, columns))
        };
        let mut out = vec![
            one("events_by_city", &cities),
            one("events_by_state", &states),
            self.campaign_table(),
            one("events_by_pagename", &self.pages),
            one("events_by_client_type", &self.clients),
            one("events_by_university", &self.universities),
            one("events_by_course", &self.courses),
        ];
        out.sort_by_key(|(def, _)| def.folder);
        out
    }

    fn campaign_table(&self) -> (&'static TableDef, RecordBatch) {
        let def = table("sessions_by_campaign").expect("a base-b table");
        let mut keys: [Vec<Option<String>>; 3] = Default::default();
        let (mut sessions, mut events) = (Vec::new(), Vec::new());
        for (k, c) in &self.campaigns {
            for (column, v) in keys.iter_mut().zip(campaign_values(k)) {
                column.push(v);
            }
            // NULL, not 0, when no event of the campaign names a whole session.
            sessions.push((!c.sessions.is_empty()).then_some(c.sessions.len() as i64));
            events.push(c.events as i64);
        }
        let [source, medium, campaign] = keys;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(source)),
            Arc::new(StringArray::from(medium)),
            Arc::new(StringArray::from(campaign)),
            Arc::new(Int64Array::from(sessions)),
            Arc::new(Int64Array::from(events)),
        ];
        (def, batch(def, columns))
    }
}

fn batch(def: &TableDef, columns: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(schema_of(def), columns).expect("columns follow the contract")
}
