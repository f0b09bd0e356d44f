//! A small memo of masked tokens: the masked form of the tokens [`mask_token`](super::masks)
//! decides on its slow paths (host names, `proc[pid]:`, dotted class names, `key=value`, node
//! names such as `R02-M1-N0-C:J12-U11`), which real logs repeat on nearly every line (a raw
//! line's header, a system's constant identifiers).
//!
//! Masking a token is a pure function of the token, so a memo never changes what masking gives:
//! a token found in the memo gets the text masking gave it when it was stored. The memo is
//! direct-mapped (a token has one slot; a token hashing to a taken slot takes it over) and
//! bounded (a fixed number of slots over one text buffer of fixed capacity, emptied when full),
//! so its memory is flat whatever the input, and a hostile stream of distinct tokens only makes
//! every lookup miss. A token is stored on its second miss only (each slot remembers a tag of the
//! last token that missed there): tokens seen once (a pid, a counter) would otherwise evict the
//! ones that recur and fill the text, emptying it every few thousand lines. One memo per thread.

use std::cell::RefCell;
use std::hash::Hasher as _;

use crate::hash::FxHasher;

/// The longest token the memo keeps (longer tokens are masked every time: few recur).
pub(super) const MAX_TOKEN: usize = 64;

/// Slots of the thread's memo (a power of two).
const SLOTS: usize = 4096;

/// Bytes of the thread's memo text (tokens and their masked forms): emptied when full.
const TEXT_BYTES: usize = 1 << 16;

/// Where a slot's token and its masked form lie in the memo text (the masked form follows the
/// token). An empty slot has `token_len` 0, which no token matches.
#[derive(Clone, Copy, Default)]
struct Slot {
    start: u32,
    token_len: u16,
    masked_len: u16,
}

/// Tokens and their masked forms (see the module docs).
pub(super) struct TokenMemo {
    slots: Vec<Slot>,
    /// Per slot, the tag of the last token that missed there and was not stored.
    missed: Vec<u32>,
    text: String,
    text_bytes: usize,
}

impl TokenMemo {
    /// A memo of `slots` slots (a power of two) over `text_bytes` bytes of text.
    pub(super) fn new(slots: usize, text_bytes: usize) -> TokenMemo {
        debug_assert!(slots.is_power_of_two());
        TokenMemo {
            slots: vec![Slot::default(); slots],
            missed: vec![0; slots],
            text: String::with_capacity(text_bytes),
            text_bytes,
        }
    }

    /// The slot of `token`, and its tag (other bits of its hash, for [`missed`](Self::missed)).
    fn slot_of(&self, token: &str) -> (usize, u32) {
        let mut h = FxHasher::default();
        h.write(token.as_bytes());
        // The high bits of a multiply mix every byte of the hash into the slot number.
        let mixed = h.finish().wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (
            (mixed >> 32) as usize & (self.slots.len() - 1),
            mixed as u32 | 1,
        )
    }

    /// The masked form stored for `token` in `slot`, if `slot` holds `token`.
    fn get(&self, token: &str, slot: usize) -> Option<&str> {
        let s = self.slots[slot];
        if usize::from(s.token_len) != token.len() {
            return None;
        }
        let start = s.start as usize;
        let mid = start + token.len();
        if self.text.get(start..mid)? != token {
            return None;
        }
        self.text.get(mid..mid + usize::from(s.masked_len))
    }

    /// Stores `masked` as the masked form of `token` in `slot` (when both fit).
    fn put(&mut self, token: &str, masked: &str, slot: usize) {
        let (Ok(token_len), Ok(masked_len)) =
            (u16::try_from(token.len()), u16::try_from(masked.len()))
        else {
            return;
        };
        let need = token.len() + masked.len();
        if need > self.text_bytes || token.is_empty() {
            return;
        }
        if self.text.len() + need > self.text_bytes {
            self.text.clear();
            self.slots.fill(Slot::default());
        }
        let Ok(start) = u32::try_from(self.text.len()) else {
            return;
        };
        self.text.push_str(token);
        self.text.push_str(masked);
        self.slots[slot] = Slot {
            start,
            token_len,
            masked_len,
        };
    }
}

/// Appends the masked form of `token` to `out`: from `memo` when it holds the token, else by
/// `mask` (which appends it), storing what `mask` gave.
pub(super) fn masked_in(
    memo: &mut TokenMemo,
    token: &str,
    out: &mut String,
    mask: impl FnOnce(&mut String),
) {
    let (slot, tag) = memo.slot_of(token);
    if let Some(masked) = memo.get(token, slot) {
        out.push_str(masked);
        return;
    }
    let at = out.len();
    mask(out);
    // Stored when it missed here last time too (its tag is remembered); else remembered.
    if memo.missed[slot] == tag {
        memo.put(token, &out[at..], slot);
    } else {
        memo.missed[slot] = tag;
    }
}

thread_local! {
    static MEMO: RefCell<TokenMemo> = RefCell::new(TokenMemo::new(SLOTS, TEXT_BYTES));
}

/// [`masked_in`] with the thread's memo (`token` at most [`MAX_TOKEN`] bytes). Without it (the
/// thread is ending) `mask` masks the token.
pub(super) fn masked(token: &str, out: &mut String, mask: impl FnOnce(&mut String)) {
    let mut mask = Some(mask);
    // `mask` never masks another token, so the memo is never borrowed twice; if it were, the
    // token would just be masked without it.
    let _ = MEMO.try_with(|m| {
        if let Ok(mut memo) = m.try_borrow_mut() {
            if let Some(mask) = mask.take() {
                masked_in(&mut memo, token, out, mask);
            }
        }
    });
    if let Some(mask) = mask {
        mask(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::masks::{mask_token, mask_token_general};
    use proptest::prelude::*;

    proptest! {
        /// A memo of two slots over little text (so tokens take each other's slots and the text
        /// is emptied often) gives every token, seen again or not, what masking gives it.
        #[test]
        fn a_memo_gives_what_masking_gives(
            tokens in prop::collection::vec(
                "[a-fxA-FZ0-9_()\\[\\]{},;!?\"'`.:/\\\\@=<>*+-]{1,12}", 1..24),
            rounds in 1usize..4,
        ) {
            let mut memo = TokenMemo::new(2, 48);
            for _ in 0..rounds {
                for token in &tokens {
                    let (mut memoised, mut general) = (String::from("x "), String::from("x "));
                    masked_in(&mut memo, token, &mut memoised, |out| mask_token_general(token, out));
                    mask_token_general(token, &mut general);
                    prop_assert_eq!(&memoised, &general);
                }
            }
        }
    }

    #[test]
    fn a_token_seen_again_is_masked_from_the_memo_as_it_was() {
        let mut memo = TokenMemo::new(16, 1024);
        let mut calls = 0;
        for _ in 0..3 {
            let mut out = String::new();
            masked_in(&mut memo, "sshd[19939]:", &mut out, |out| {
                calls += 1;
                mask_token("sshd[19939]:", out);
            });
            assert_eq!(out, "sshd[<NUM>]:");
        }
        assert_eq!(
            calls, 2,
            "masked twice (stored on its second miss), then found"
        );
        // Text that does not fit is not kept; emptying the text forgets every token.
        let mut small = TokenMemo::new(4, 20);
        let mut out = String::new();
        masked_in(&mut small, "node-246.example.com", &mut out, |o| {
            mask_token("node-246.example.com", o)
        });
        assert_eq!(out, "<HOST>");
        assert!(small.text.is_empty());
        for token in ["a=1", "b=22", "c=333", "a=1"] {
            let mut out = String::new();
            masked_in(&mut small, token, &mut out, |o| mask_token(token, o));
            assert!(small.text.len() <= 20);
            let mut general = String::new();
            mask_token_general(token, &mut general);
            assert_eq!(out, general, "{token}");
        }
    }
}
