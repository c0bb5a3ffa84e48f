//! Maglev consistent hashing (Google's Maglev paper; gorouter's hash balancer uses it too): a
//! lookup table of a prime size where each endpoint fills slots along its own permutation.
//! A key's slot is its hash modulo the size; adding or removing one endpoint moves close to the
//! minimum share of keys. Endpoints are identified by instance id, so a restart on another
//! address keeps its keys.

use crate::config::fnv1a;

/// Table size: a prime, the same for every pool size (a key's slot must not move when an
/// endpoint is added). Maglev moves close to the minimum share of keys only when the table is
/// much larger than the pool: at 4093 slots adding an 11th endpoint moved 10.1% of keys, at
/// 65521 it moves 9.1% (the minimum, 1/11). 128 KiB per hash-balanced route.
const SIZE: usize = 65521;

/// Marks a free slot while filling; pools beyond this many endpoints hash over the first ones.
const FREE: u16 = u16::MAX;

/// A Maglev lookup table over a pool's endpoints (by their index in the pool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maglev {
    slots: Vec<u16>,
}

impl Maglev {
    /// Builds the table for endpoints named `names` (their instance ids), in pool order.
    pub fn new<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> Maglev {
        let count = names.len().min(usize::from(FREE));
        if count == 0 {
            return Maglev { slots: Vec::new() };
        }
        let size = SIZE;
        let permutations: Vec<(usize, usize)> = names
            .take(count)
            .map(|name| {
                let offset = fnv1a(name.as_bytes(), 0) as usize % size;
                let skip = fnv1a(name.as_bytes(), 0x9e37_79b9_7f4a_7c15) as usize % (size - 1) + 1;
                (offset, skip)
            })
            .collect();
        let mut next = vec![0usize; count];
        let mut slots = vec![FREE; size];
        let mut filled = 0;
        'fill: loop {
            for (endpoint, &(offset, skip)) in permutations.iter().enumerate() {
                let mut slot = (offset + next[endpoint] * skip) % size;
                while slots[slot] != FREE {
                    next[endpoint] += 1;
                    slot = (offset + next[endpoint] * skip) % size;
                }
                slots[slot] = endpoint as u16;
                next[endpoint] += 1;
                filled += 1;
                if filled == size {
                    break 'fill;
                }
            }
        }
        Maglev { slots }
    }

    /// Endpoint indexes for `hash`, starting at its slot and walking on (for retries and
    /// skipped endpoints); each index may repeat.
    pub fn walk(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let size = self.slots.len();
        let start = if size == 0 {
            0
        } else {
            (hash % size as u64) as usize
        };
        (0..size).map(move |k| self.slots[(start + k) % size] as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(table: &Maglev, names: &[String], key: usize) -> String {
        let hash = fnv1a(format!("user-{key}").as_bytes(), 0);
        names[table.walk(hash).next().unwrap()].clone()
    }

    #[test]
    fn adding_one_of_ten_endpoints_keeps_at_least_90_percent_of_keys() {
        let ten: Vec<String> = (0..10).map(|i| format!("instance-{i}")).collect();
        let mut eleven = ten.clone();
        eleven.push("instance-10".into());
        let before = Maglev::new(ten.iter().map(String::as_str));
        let after = Maglev::new(eleven.iter().map(String::as_str));
        let keys = 20_000;
        let kept = (0..keys)
            .filter(|&k| owner(&before, &ten, k) == owner(&after, &eleven, k))
            .count();
        let share = kept as f64 / keys as f64;
        assert!(share >= 0.90, "kept {share:.4}");
    }

    #[test]
    fn spreads_keys_evenly() {
        let names: Vec<String> = (0..5).map(|i| format!("instance-{i}")).collect();
        let table = Maglev::new(names.iter().map(String::as_str));
        let mut counts = [0usize; 5];
        for key in 0..50_000 {
            counts[table
                .walk(fnv1a(format!("k{key}").as_bytes(), 0))
                .next()
                .unwrap()] += 1;
        }
        for count in counts {
            assert!((8_000..12_000).contains(&count), "{counts:?}");
        }
    }
}
