//! oslo's `_MsgIdCache`: the `_unique_id`s of the last messages taken, so that a message the
//! broker delivers twice is handled once. An RPC server and a notification listener each keep
//! one.

use std::collections::VecDeque;

/// The last [`RecentIds::CAPACITY`] `_unique_id`s taken, oldest first.
#[derive(Debug, Default)]
pub(crate) struct RecentIds(VecDeque<String>);

impl RecentIds {
    /// How many ids are kept (oslo's `DUP_MSG_CHECK_SIZE`).
    pub const CAPACITY: usize = 16;

    /// Whether `id` is among them.
    pub fn contains(&self, id: &str) -> bool {
        self.0.iter().any(|seen| seen == id)
    }

    /// Keeps `id`, forgetting the oldest when full.
    pub fn insert(&mut self, id: String) {
        if self.0.len() == Self::CAPACITY {
            self.0.pop_front();
        }
        self.0.push_back(id);
    }

    /// Whether `id` is among them; keeps it if it is not.
    pub fn seen_before(&mut self, id: &str) -> bool {
        let seen = self.contains(id);
        if !seen {
            self.insert(id.to_owned());
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_sixteen_are_kept() {
        let mut ids = RecentIds::default();
        for i in 0..=RecentIds::CAPACITY {
            assert!(!ids.seen_before(&i.to_string()));
        }
        assert!(ids.seen_before("16") && ids.seen_before("1"), "the newest sixteen are kept");
        assert!(!ids.contains("0"), "the oldest was forgotten");
    }
}
