//! The learned state: serialising and restoring a [`Templater`].

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::sha256_hex;

use super::cluster::{len_key, Cluster, ClusterId, Templater};
use super::config::TemplaterConfig;

/// Version of the serialised learned state ([`Templater::to_state_json`]).
pub const STATE_VERSION: u32 = 1;
#[derive(Serialize, Deserialize)]
struct State {
    version: u32,
    config: TemplaterConfig,
    next_id: ClusterId,
    clock: u64,
    clusters: Vec<ClusterState>,
}

#[derive(Serialize, Deserialize)]
struct ClusterState {
    id: ClusterId,
    tokens: Vec<String>,
    paths: Vec<Vec<String>>,
    size: u64,
    last_seen: u64,
}
impl Templater {
    /// Serialises the learned state (configuration and clusters, sorted by id) as JSON.
    pub fn to_state_json(&self) -> String {
        let clusters = self
            .sorted_ids()
            .into_iter()
            .filter_map(|id| self.clusters.get(&id).map(|c| (id, c)))
            .map(|(id, c)| ClusterState {
                id,
                tokens: c.tokens.iter().map(|t| t.to_string()).collect(),
                paths: c
                    .paths
                    .iter()
                    .map(|p| p.iter().map(|k| k.to_string()).collect())
                    .collect(),
                size: c.size,
                last_seen: c.last_seen,
            })
            .collect();
        let state = State {
            version: STATE_VERSION,
            config: self.config.clone(),
            next_id: self.next_id,
            clock: self.clock,
            clusters,
        };
        serde_json::to_string(&state).unwrap_or_else(|_| "{}".to_string())
    }

    /// Restores a templater from [`to_state_json`](Self::to_state_json) output. The restored
    /// templater maps every message to the same template as the saved one and, until the saved one
    /// had evicted clusters, learns exactly as it would have (after evictions the saved one may still
    /// hold empty tree branches, which only change where new clusters are filed). Malformed or newer-version
    /// state is an [`Error::Parse`]; the caller may start afresh with [`Templater::new`].
    pub fn from_state_json(json: &str) -> Result<Self> {
        let state: State = serde_json::from_str(json)
            .map_err(|e| Error::parse("templater state", json, e.to_string()))?;
        if state.version != STATE_VERSION {
            return Err(Error::parse(
                "templater state",
                json,
                format!(
                    "version {} is not supported (expected {STATE_VERSION})",
                    state.version
                ),
            ));
        }
        let mut t = Templater::with_config(state.config);
        t.next_id = state.next_id;
        t.clock = state.clock;
        for c in state.clusters {
            if c.id >= t.next_id {
                t.next_id = c.id.saturating_add(1);
            }
            let tokens: Vec<Box<str>> = c.tokens.into_iter().map(String::into_boxed_str).collect();
            let mut paths: Vec<Vec<Box<str>>> = c
                .paths
                .into_iter()
                .map(|p| p.into_iter().map(String::into_boxed_str).collect())
                .collect();
            if paths.is_empty() {
                paths.push(vec![len_key(tokens.len()).into_boxed_str()]);
            }
            let text = tokens.join(" ");
            let fingerprint = sha256_hex(text.as_bytes());
            t.clusters.insert(
                c.id,
                Cluster {
                    tokens,
                    paths,
                    size: c.size,
                    last_seen: c.last_seen,
                    text,
                    fingerprint,
                    sibling_keys: Vec::new(),
                },
            );
        }
        t.rebuild_indexes();
        Ok(t)
    }
}
