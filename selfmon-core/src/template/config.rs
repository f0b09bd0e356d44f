//! The clustering step's tunables.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Tunables of the clustering step. The defaults are the one configuration selfmon ships and
/// measures; there is no per-system tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplaterConfig {
    /// Leading tokens used as keys in the prefix tree (after the token count). Tokens holding a
    /// placeholder are routed through a `<*>` branch.
    pub depth: usize,
    /// Share of positions (0..=1) on which a message must agree with a cluster's template to join it.
    /// Positions where the template holds `<*>`, or where both hold the same bare placeholder
    /// (`<NUM>`, `<HEX>:`), are not counted; a template of nothing else matches any message of its
    /// length.
    pub similarity_threshold: f64,
    /// Children a tree node may have before further distinct tokens share its `<*>` branch.
    pub max_children: usize,
    /// Clusters kept; beyond this the least recently used tenth is evicted.
    pub max_clusters: usize,
    /// Tokens of a message that take part in clustering; the rest are folded into one `<...>` token.
    pub max_tokens: usize,
    /// Distinct words seen in one position, all else equal, before that position is taken to be a
    /// variable (a user, host or repository name) and the clusters merge. Fewer distinct words are
    /// taken to be constants (`VM Started` / `VM Stopped`) and stay apart.
    pub min_variable_values: usize,
}

impl Default for TemplaterConfig {
    fn default() -> Self {
        TemplaterConfig {
            depth: 2,
            similarity_threshold: 0.5,
            max_children: 100,
            max_clusters: 10_000,
            max_tokens: 200,
            min_variable_values: 5,
        }
    }
}

impl TemplaterConfig {
    /// Checks ranges: `similarity_threshold` in 0..=1, `max_children`, `max_clusters` and
    /// `max_tokens` at least 1, `depth` at most 16.
    pub fn validate(&self) -> Result<()> {
        let t = self.similarity_threshold;
        if !(0.0..=1.0).contains(&t) || t.is_nan() {
            return Err(Error::config(
                "templater.similarity_threshold",
                format!("{t} is outside 0..=1"),
            ));
        }
        if self.depth > 16 {
            return Err(Error::config(
                "templater.depth",
                format!("{} is more than 16", self.depth),
            ));
        }
        for (name, v) in [
            ("templater.max_children", self.max_children),
            ("templater.max_clusters", self.max_clusters),
            ("templater.max_tokens", self.max_tokens),
            ("templater.min_variable_values", self.min_variable_values),
        ] {
            if v == 0 {
                return Err(Error::config(name, "must be at least 1"));
            }
        }
        Ok(())
    }
}
