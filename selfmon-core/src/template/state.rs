//! The learned state: serialising and restoring a [`Templater`].

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::redact::Redactor;

use super::cluster::{len_key, Cluster, ClusterId, Templater};
use super::config::TemplaterConfig;
use super::seal::{carries_text, is_stand_in, seal_token, secret_tokens};

/// Version of the serialised learned state ([`Templater::to_state_json`]). Raised whenever masking
/// changes the template of a message that could have been learned before, so state learned under
/// the old masks is refused (and the templater starts afresh) rather than mixed with new
/// templates. 2: quoted prose is masked word by word, not as one `<STR>`. 3: a number that names
/// an outcome (`status 137`, `HTTP 503`, `errno 28`) is kept, not masked as `<NUM>`. 4: two
/// digits ending a name (`bglio46`, `db12`) are masked as `<NUM>`, as three or more were. 5: other
/// systems' error codes (`ORA-00942`, `SQLSTATE[23505]`, `HRESULT 0x80070005`, `ERROR 1213`) are kept.
pub const STATE_VERSION: u32 = 5;
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
    /// The fingerprint of the clear template, present when a token is sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
}
impl Templater {
    /// Serialises the learned state (configuration and clusters, sorted by id) as JSON, sealed with
    /// the default [`Redactor`]: see [`to_sealed_state_json`](Self::to_sealed_state_json).
    pub fn to_state_json(&self) -> String {
        self.to_sealed_state_json(Redactor::shared())
    }

    /// Serialises the learned state as JSON with every template token and tree key that
    /// `redactor` flags replaced by a hashed stand-in (see the `seal` module docs): the state holds
    /// no secret in clear, and [`from_state_json`](Self::from_state_json) restores a templater that
    /// maps the same messages to the same templates and fingerprints.
    pub fn to_sealed_state_json(&self, redactor: &Redactor) -> String {
        let clusters = self
            .sorted_ids()
            .into_iter()
            .filter_map(|id| self.clusters.get(&id).map(|c| (id, c)))
            .map(|(id, c)| {
                let toks: Vec<&str> = c.tokens.iter().map(|t| &**t).collect();
                // What the redactor recognises in the masked tokens, and what it saw in the raw
                // message a token came from (masking can leave part of a secret unrecognisable).
                let known = |t: &str| c.secrets.iter().any(|s| &**s == t) && carries_text(t);
                let secret: Vec<bool> = secret_tokens(&toks, redactor)
                    .into_iter()
                    .zip(&toks)
                    .map(|(s, t)| s || known(t))
                    .collect();
                let sealed: Vec<&str> = toks
                    .iter()
                    .zip(&secret)
                    .filter(|(_, s)| **s)
                    .map(|(t, _)| *t)
                    .collect();
                let tokens: Vec<String> = toks
                    .iter()
                    .zip(&secret)
                    .map(|(t, s)| if *s { seal_token(t) } else { t.to_string() })
                    .collect();
                let paths = c
                    .paths
                    .iter()
                    .map(|p| {
                        // The first key is the token count; the rest are (former) tokens.
                        let keys: Vec<&str> = p.iter().skip(1).map(|k| &**k).collect();
                        let secret_keys = secret_tokens(&keys, redactor);
                        p.iter()
                            .take(1)
                            .map(|k| k.to_string())
                            .chain(keys.iter().zip(&secret_keys).map(|(k, s)| {
                                if *s || sealed.contains(k) || known(k) {
                                    seal_token(k)
                                } else {
                                    k.to_string()
                                }
                            }))
                            .collect()
                    })
                    .collect();
                let any_sealed = tokens.iter().any(|t| is_stand_in(t));
                ClusterState {
                    id,
                    tokens,
                    paths,
                    size: c.size,
                    last_seen: c.last_seen,
                    fingerprint: any_sealed.then(|| c.fingerprint.clone()),
                }
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
            let mut cluster = Cluster::new(tokens, paths, c.size, c.last_seen);
            if let Some(fp) = c.fingerprint {
                cluster.fingerprint = fp;
            }
            t.clusters.insert(c.id, cluster);
        }
        t.rebuild_indexes();
        Ok(t)
    }
}
