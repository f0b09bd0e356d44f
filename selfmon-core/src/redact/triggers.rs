//! The trigger scan: which rules' literal triggers occur in a text, in one cache-friendly pass.
//!
//! Every text that leaves the process is scanned, so this is the redactor's hottest loop. An
//! Aho-Corasick automaton over the ~170 trigger literals walks a transition table of a few hundred
//! kilobytes, one dependent load per byte, and many of those loads miss the cache. Here each byte
//! costs one probe of an 8 KiB bit table of the pairs of bytes a trigger can start with (a
//! one-byte trigger such as `@` with any byte after it). Only where it hits is the start looked
//! at: a one-byte trigger, an exact two-byte one (`SK`, `==`), and, when a hash of the first three
//! bytes is one of a longer trigger's, the few triggers with that start are compared with the
//! text. Ordinary text often holds such a pair (`to`, `co`, `pa` begin many words) but rarely
//! the three bytes, and a comparison is a few bytes.
//!
//! The rules armed are exactly those whose trigger occurs somewhere in the text: every occurrence
//! starts at some byte, every start is probed with the trigger's own first bytes, and a probe that
//! hits compares the whole trigger. That is what the overlapping Aho-Corasick search reported
//! (the redactor's property test compares the two).

/// The trigger literals, indexed by their first bytes.
pub(super) struct TriggerIndex {
    /// Bit `(a << 8) | b` is set when a trigger can start at a byte `a` followed by `b`: a
    /// one-byte trigger `a` (whatever follows), a two-byte trigger `a b`, or a longer one
    /// starting with `a b`. The hot loop's only probe.
    starts: Box<[u64; 1024]>,
    /// Per byte, the rules a one-byte trigger equal to it arms (0: none).
    single: Box<[u128; 256]>,
    /// Bit `(a << 8) | b` is set when `a b` is a two-byte trigger.
    pairs: Box<[u64; 1024]>,
    /// Bit `hash(a, b, c)` is set when some trigger of three or more bytes starts with `a, b, c`.
    triples: Box<[u64; 1024]>,
    /// The triggers of two or more bytes with the rules each arms, sorted by key (their first
    /// three bytes; a two-byte trigger is keyed by its two bytes, above every three-byte key).
    longer: Vec<(u32, Vec<u8>, u128)>,
}

impl TriggerIndex {
    /// The index of `triggers`, each with the bit set of rules it arms. Empty triggers are
    /// ignored (they would arm their rules on every text).
    pub(super) fn new(triggers: &[(String, u128)]) -> Self {
        let mut starts = Box::new([0u64; 1024]);
        let mut single = Box::new([0u128; 256]);
        let mut triples = Box::new([0u64; 1024]);
        let mut pairs = Box::new([0u64; 1024]);
        let mut longer = Vec::new();
        for (t, mask) in triggers {
            match t.as_bytes() {
                [] => {}
                [a] => {
                    single[usize::from(*a)] |= mask;
                    for b in 0..=255u8 {
                        set(&mut starts, usize::from(pair(*a, b)));
                    }
                }
                [a, b] => {
                    set(&mut starts, usize::from(pair(*a, *b)));
                    set(&mut pairs, usize::from(pair(*a, *b)));
                    longer.push((pair_key(*a, *b), t.as_bytes().to_vec(), *mask));
                }
                [a, b, c, ..] => {
                    set(&mut starts, usize::from(pair(*a, *b)));
                    let key = triple_key(*a, *b, *c);
                    set(&mut triples, hash(key));
                    longer.push((key, t.as_bytes().to_vec(), *mask));
                }
            }
        }
        longer.sort_by(|x, y| x.0.cmp(&y.0).then_with(|| x.1.cmp(&y.1)));
        TriggerIndex {
            starts,
            single,
            pairs,
            triples,
            longer,
        }
    }

    /// The union of the masks of every trigger that occurs in `text`.
    pub(super) fn armed(&self, text: &str) -> u128 {
        let b = text.as_bytes();
        let Some(last) = b.len().checked_sub(1) else {
            return 0;
        };
        let mut armed = 0u128;
        for i in 0..last {
            if test(&self.starts, usize::from(pair(b[i], b[i + 1]))) {
                armed |= self.starting_at(b, i);
            }
        }
        armed | self.single[usize::from(b[last])]
    }

    /// The masks of the triggers that start at `b[i]` (which has a byte after it).
    #[inline(never)]
    fn starting_at(&self, b: &[u8], i: usize) -> u128 {
        let mut armed = self.single[usize::from(b[i])];
        if test(&self.pairs, usize::from(pair(b[i], b[i + 1]))) {
            armed |= self.keyed(b, i, pair_key(b[i], b[i + 1]));
        }
        if let Some(&c) = b.get(i + 2) {
            let key = triple_key(b[i], b[i + 1], c);
            if test(&self.triples, hash(key)) {
                armed |= self.keyed(b, i, key);
            }
        }
        armed
    }

    /// The masks of the triggers keyed `key` that start at `b[i..]`.
    fn keyed(&self, b: &[u8], i: usize, key: u32) -> u128 {
        let from = self.longer.partition_point(|(k, _, _)| *k < key);
        let rest = &b[i..];
        self.longer[from..]
            .iter()
            .take_while(|(k, _, _)| *k == key)
            .filter(|(_, t, _)| rest.starts_with(t))
            .fold(0, |m, (_, _, mask)| m | mask)
    }
}

fn pair(a: u8, b: u8) -> u16 {
    (u16::from(a) << 8) | u16::from(b)
}

/// A two-byte trigger's key: above every three-byte key, so the two kinds never share one.
fn pair_key(a: u8, b: u8) -> u32 {
    0x0100_0000 | (u32::from(a) << 8) | u32::from(b)
}

fn triple_key(a: u8, b: u8, c: u8) -> u32 {
    (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c)
}

/// A 16-bit hash of three bytes (Fibonacci hashing): ordinary text's common triples spread over
/// the table instead of colliding with the triggers'.
fn hash(triple: u32) -> usize {
    (triple.wrapping_mul(0x9E37_79B1) >> 16) as usize
}

fn set(bits: &mut [u64; 1024], i: usize) {
    bits[i >> 6] |= 1u64 << (i & 63);
}

fn test(bits: &[u64; 1024], i: usize) -> bool {
    bits[i >> 6] & (1u64 << (i & 63)) != 0
}
