//! Online clustering of masked messages into templates.

use std::hash::Hasher as _;

use crate::hash::{sha256_hex, FxHasher, FxMap, FxSet};

use super::config::TemplaterConfig;
use super::masks::{
    is_error_code, is_specific_template, mask_into, split_spaces, trim_lead_punct, trim_tail_punct,
};
use super::seal::{
    is_stand_in, seal_token, secret_bearing_tokens, stand_in_flags, stand_in_matches,
    template_fingerprint, template_text, SecretTokens,
};
use crate::redact::Redactor;

/// The placeholder clustering puts where the messages of a cluster differ.
pub const WILDCARD: &str = "<*>";
/// A message template and its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Template {
    /// The template text: masked, and with `<*>` where clustered messages differ.
    pub text: String,
    /// Lower-case hex SHA-256 of `text`.
    pub fingerprint: String,
}

impl Template {
    /// The template of an already final text.
    pub fn from_text(text: String) -> Self {
        let fingerprint = sha256_hex(text.as_bytes());
        Template { text, fingerprint }
    }
}

/// Identifies a learned cluster within one [`Templater`] (stable across
/// [`to_state_json`](Templater::to_state_json) round trips, reused never).
pub type ClusterId = u32;

/// Turns messages into templates; see the [module docs](crate::template).
#[derive(Debug, Clone, Default)]
pub struct Templater {
    pub(super) config: TemplaterConfig,
    pub(super) clusters: FxMap<ClusterId, Cluster>,
    pub(super) nodes: Vec<Node>,
    /// Sibling index: hash of (token count, position, every other token) → clusters.
    pub(super) siblings: FxMap<u64, Vec<ClusterId>>,
    /// Clusters merged away → the cluster that absorbed them (recent ones only).
    pub(super) redirects: FxMap<ClusterId, ClusterId>,
    pub(super) redirect_order: std::collections::VecDeque<ClusterId>,
    pub(super) next_id: ClusterId,
    pub(super) clock: u64,
    pub(super) scratch: String,
    /// Masked texts seen before (by hash) → the cluster they joined: a message whose masked text
    /// recurs, and whose cluster still covers it, joins that cluster without being compared with
    /// any other. Derived state, bounded, never serialised.
    pub(super) seen_masked: FxMap<u64, ClusterId>,
    /// The generation of [`seen_masked`](Self::seen_masked) before the current one: a full
    /// memory starts afresh but keeps the last generation, so texts that recur are not all
    /// compared with their leaves again at once (raw lines: one host and process name per line
    /// multiply the distinct masked texts).
    pub(super) seen_masked_old: FxMap<u64, ClusterId>,
    /// Judges the raw message that founds a cluster (see [`Cluster::secrets`]); the process's
    /// default redactor when unset.
    pub(super) redactor: Option<Redactor>,
    /// Founding messages are not judged by the redactor (see
    /// [`skip_secret_tracking`](Templater::skip_secret_tracking)).
    pub(super) skip_secrets: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Cluster {
    pub(super) tokens: Vec<Box<str>>,
    pub(super) paths: Vec<Vec<Box<str>>>,
    pub(super) size: u64,
    pub(super) last_seen: u64,
    pub(super) text: String,
    pub(super) fingerprint: String,
    /// [`token_flags`] of each token of the template.
    pub(super) flags: Vec<u8>,
    pub(super) sibling_keys: Vec<u64>,
    /// Every token is non-empty and holds no space (as every learned token does; restored state
    /// may hold anything): [`covers_by_walk`] can decide coverage.
    pub(super) plain: bool,
    /// Where each `<*>` token of the template starts in [`text`](Self::text), in order (for
    /// [`covers_by_walk`]).
    pub(super) wildcards: Vec<u32>,
    /// Tokens (of the template, or tree keys of its paths) that held part of a secret in the raw
    /// message they were masked from, as the redactor judged that message before masking. They
    /// are sealed whenever the cluster is persisted, whatever masking left of them. In memory
    /// only; a cluster restored from sealed state learns them again from the message that
    /// restores a stand-in's clear token.
    pub(super) secrets: Vec<Box<str>>,
}

impl Cluster {
    pub(super) fn new(
        tokens: Vec<Box<str>>,
        paths: Vec<Vec<Box<str>>>,
        size: u64,
        last_seen: u64,
    ) -> Self {
        let mut c = Cluster {
            tokens,
            paths,
            size,
            last_seen,
            text: String::new(),
            fingerprint: String::new(),
            flags: Vec::new(),
            sibling_keys: Vec::new(),
            plain: false,
            wildcards: Vec::new(),
            secrets: Vec::new(),
        };
        c.refresh();
        c
    }

    /// Recomputes what is derived from the tokens after they changed. While a token is still a
    /// stand-in (restored from sealed state, not yet seen again) the fingerprint cannot be
    /// recomputed and the restored one is kept; every path that changes such a cluster's tokens
    /// first replaces its stand-ins (by the clear token, or by `<*>`).
    pub(super) fn refresh(&mut self) {
        self.text = self.tokens.join(" ");
        if self.fingerprint.is_empty() || !self.tokens.iter().any(|t| is_stand_in(t)) {
            self.fingerprint = sha256_hex(self.text.as_bytes());
        }
        self.flags = self.tokens.iter().map(|t| token_flags(t)).collect();
        self.plain = self
            .tokens
            .iter()
            .all(|t| !t.is_empty() && !t.contains(' '));
        self.wildcards = wildcard_offsets(&self.tokens);
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct Node {
    children: FxMap<Box<str>, u32>,
    clusters: Vec<ClusterId>,
    /// Some child key is a stand-in (restored from sealed state): a key that is not found as it
    /// is is looked up by its stand-in too.
    sealed_children: bool,
}

impl Node {
    /// The child under `key` and the key it is filed under (`key` itself or its stand-in).
    fn child(&self, key: &str) -> Option<(u32, Option<Box<str>>)> {
        if let Some(&c) = self.children.get(key) {
            return Some((c, None));
        }
        if !self.sealed_children || key == WILDCARD {
            return None;
        }
        let sealed = seal_token(key);
        self.children
            .get(sealed.as_str())
            .map(|&c| (c, Some(sealed.into_boxed_str())))
    }
}

/// Clusters of one leaf compared with a message, newest first.
const MAX_LEAF_SCAN: usize = 64;

/// Clusters of one leaf checked for being covered by a just generalised template, newest first.
const MAX_ABSORB_SCAN: usize = 1024;

/// Masked texts remembered for [`Templater::join_seen`] per generation, at most (eight times the
/// cluster cap, at least 1,024, so memory stays proportional to the clusters kept: two
/// generations of 65,536 take about 3 MB).
const MAX_SEEN_MASKED: usize = 1 << 16;

/// Constant tokens a template must keep besides a position before distinct words there are taken
/// for names (see [`Templater::verified_group`]).
const MIN_CONSTANTS_BESIDE_A_NAME: usize = 2;

/// The same for the first word of a message (after any leading values): it usually names the
/// event, the subject the rest says something about (`cupsd startup succeeded`, `klogd startup
/// succeeded`), so two words of context are too few to take it for a name.
const MIN_CONSTANTS_BESIDE_A_LEADING_NAME: usize = 3;

/// Distinct words after a word that introduces a name (`user`, `client`, `queue`: see
/// [`INTRODUCERS`]), all else equal, before the position is taken for a name and the clusters
/// merge. Two are not enough: `Session: <*> initialized by client SPP.` and `… by client
/// WindowsUpdateAgent.` are two events (Loghub Windows), and grouping them hides one behind the
/// other. Over-splitting the two is cheap: deduplication joins two names after one introducer as
/// one problem ([`names_after_an_introducer`]), so triage files one issue for `queue orders` and
/// `queue billing`.
const MIN_INTRODUCED_NAMES: usize = 3;

/// Sibling positions indexed per cluster (the first this many tokens).
const MAX_SIBLING_POSITIONS: usize = 32;

impl Templater {
    /// A templater with the default configuration and nothing learned.
    pub fn new() -> Self {
        Self::with_config(TemplaterConfig::default())
    }

    /// A templater with `config` and nothing learned. Call [`TemplaterConfig::validate`] first for
    /// configuration from outside; out-of-range values are clamped here.
    pub fn with_config(mut config: TemplaterConfig) -> Self {
        config.max_children = config.max_children.max(1);
        config.max_clusters = config.max_clusters.max(1);
        config.max_tokens = config.max_tokens.max(1);
        config.min_variable_values = config.min_variable_values.max(2);
        config.depth = config.depth.min(16);
        if config.similarity_threshold.is_nan() {
            config.similarity_threshold = TemplaterConfig::default().similarity_threshold;
        }
        config.similarity_threshold = config.similarity_threshold.clamp(0.0, 1.0);
        Templater {
            config,
            clusters: FxMap::default(),
            nodes: vec![Node::default()],
            siblings: FxMap::default(),
            redirects: FxMap::default(),
            redirect_order: std::collections::VecDeque::new(),
            next_id: 0,
            clock: 0,
            scratch: String::new(),
            seen_masked: FxMap::default(),
            seen_masked_old: FxMap::default(),
            redactor: None,
            skip_secrets: false,
        }
    }

    /// Sets the redactor that judges each message founding a cluster, before masking (the
    /// engine passes the scan's configured one). Its verdict decides which tokens are sealed when
    /// the learned state or a template is persisted, so what masking makes of a secret
    /// (`AIzakZeESG61she-<ID>_<ID>`) is sealed even where no detector recognises the rest.
    pub fn set_redactor(&mut self, redactor: Redactor) {
        self.redactor = Some(redactor);
    }

    /// Stops judging the raw message that founds a cluster for secrets, for a templater whose
    /// learned state is never persisted (`selfmon templates` without `--state`): what it records
    /// serves only sealing, and judging a message can compile the redactor's rules (tens of
    /// millions of instructions for each rule a message arms). Templates and fingerprints are
    /// the same either way. Persisted after all, the state is still sealed by what the redactor
    /// recognises in the masked templates, but not by what it saw in raw messages, and
    /// [`secret_tokens`](Self::secret_tokens) holds nothing from messages learned meanwhile.
    pub fn skip_secret_tracking(&mut self) {
        self.skip_secrets = true;
    }

    /// The tokens of learned templates (and their tree keys) that held part of a secret in the
    /// raw message they came from: what [`seal_template_with`](super::seal_template_with) must
    /// seal besides what the redactor recognises in the masked text.
    pub fn secret_tokens(&self) -> SecretTokens {
        let mut known = SecretTokens::default();
        for c in self.clusters.values() {
            known.extend(&c.secrets);
        }
        known
    }

    /// The configuration.
    pub fn config(&self) -> &TemplaterConfig {
        &self.config
    }

    /// Number of learned clusters.
    pub fn cluster_count(&self) -> usize {
        self.clusters.len()
    }

    /// Only the masked text (step 1), without clustering. Pure.
    pub fn mask(&self, message: &str) -> String {
        let mut out = String::with_capacity(message.len());
        mask_into(message, &mut out);
        out
    }

    /// The template of `message` given what has been learned so far, without learning from it: the
    /// template of the best matching cluster, or the masked text when none matches. Pure.
    pub fn template(&self, message: &str) -> Template {
        let masked = self.mask(message);
        let tokens = self.tokens_of(&masked);
        let flags: Vec<u8> = tokens.iter().map(|t| token_flags(t)).collect();
        match self.best_match(&tokens, &flags) {
            Some(id) => self
                .cluster_template(id)
                .unwrap_or_else(|| Template::from_text(tokens.join(" "))),
            None => Template::from_text(tokens.join(" ")),
        }
    }

    /// Learns from `message` (joining or creating a cluster) and returns its template as it stands
    /// after this message. A cluster's template only ever generalises, so earlier messages of the
    /// cluster keep matching it.
    pub fn learn_and_template(&mut self, message: &str) -> Template {
        let id = self.learn(message);
        self.cluster_template(id)
            .unwrap_or_else(|| Template::from_text(self.mask(message)))
    }

    /// Learns from `message` and returns the id of its cluster; the cheap form of
    /// [`learn_and_template`](Self::learn_and_template) for callers that read the template later
    /// with [`cluster_template`](Self::cluster_template). Clusters can later be merged into others;
    /// [`resolve`](Self::resolve) follows such merges.
    pub fn learn(&mut self, message: &str) -> ClusterId {
        let mut masked = std::mem::take(&mut self.scratch);
        masked.clear();
        mask_into(message, &mut masked);
        let key = {
            let mut h = FxHasher::default();
            h.write(masked.as_bytes());
            h.finish()
        };
        let id = match self.join_seen(key, &masked) {
            Some(id) => id,
            None => {
                let tokens = self.tokens_of(&masked);
                let flags: Vec<u8> = tokens.iter().map(|t| token_flags(t)).collect();
                let founded = self.next_id;
                let id = self.learn_tokens(&tokens, &flags);
                if self.next_id != founded && !self.skip_secrets {
                    // A new cluster: its template and tree keys are this message's tokens. The
                    // redactor judges the raw message once, here, before masking can hide a
                    // secret from it.
                    self.note_secrets(id, message, &tokens);
                }
                self.remember_seen(key, id);
                id
            }
        };
        self.scratch = masked;
        id
    }

    /// Makes sure the templater knows `template`, the template something was filed or deferred
    /// under (an issue's, a filing's in the outbox), as persisted: possibly sealed
    /// ([`seal_template`](super::seal_template)). Returns whether it learned anything.
    ///
    /// Deduplication joins two names after one introducer (`queue billingRepository …` and
    /// `queue userController …`), but from the third name on the templater generalises the
    /// position (`queue <*> …`), and it can only count a name it knows. What it learned from the records behind
    /// an issue can be gone while the issue stays: the scan that filed it failed afterwards (what
    /// it learned is committed only with its cursor) and the records were never read again (the
    /// log was recreated, or retention removed them); the cluster was evicted; or the host keeps
    /// no learned state at all. Learning the template restores what the next name needs
    /// to generalise against, by the templater's own rules: a different constant word (`VM
    /// Started` / `VM Stopped`, `HTTPS` / `SOCKS5`) never joins it.
    ///
    /// A template some learned cluster already covers (every position equal, `<*>` in the
    /// cluster, or one side the sealed stand-in of the other) changes nothing, not even the
    /// recency the eviction goes by, so a templater that learned the records maps every
    /// message exactly as before. Otherwise it is learned as if its message had been read (it is
    /// that message's masked text, or a generalisation of it): it joins (and generalises) the
    /// cluster the message would have joined, or founds one. A cluster it founds counts as the
    /// least recently used until a message joins it, so it is the first evicted rather than
    /// displacing clusters that messages use, and a sealed template keeps the fingerprint of its
    /// clear text. A template with fewer than two constant tokens is ignored, as deduplication
    /// ignores it ([`is_specific_template`](super::is_specific_template)).
    pub fn learn_known_template(&mut self, template: &str) -> bool {
        let text = template_text(template);
        if !is_specific_template(text) {
            return false;
        }
        let tokens = self.tokens_of(text);
        let flags: Vec<u8> = tokens.iter().map(|t| token_flags(t)).collect();
        if self.covering_cluster(&tokens, &flags).is_some() {
            return false;
        }
        let founded = self.next_id;
        let id = self.learn_tokens(&tokens, &flags);
        if self.next_id != founded && id == founded {
            // Founded, and nothing merged into it.
            if let Some(c) = self.clusters.get_mut(&id).filter(|c| c.size == 1) {
                c.last_seen = 0;
                if c.tokens.iter().any(|t| is_stand_in(t)) {
                    c.fingerprint = template_fingerprint(template);
                }
            }
        }
        true
    }

    /// A learned cluster whose template covers `tokens` (a template): every position equal, `<*>`
    /// in the cluster, or one of the two the stand-in of the other. Looks through every cluster of
    /// the leaves a message of these tokens is routed to.
    fn covering_cluster(&self, tokens: &[&str], flags: &[u8]) -> Option<ClusterId> {
        let own = self.find_leaf(tokens, flags, false);
        let wild = self.find_leaf(tokens, flags, true);
        let covers = |c: &Cluster| {
            c.tokens.len() == tokens.len()
                && c.tokens.iter().zip(tokens).all(|(t, m)| {
                    &**t == WILDCARD
                        || &**t == *m
                        || stand_in_matches(t, m)
                        || stand_in_matches(m, t)
                })
        };
        [own, wild]
            .into_iter()
            .flatten()
            .flat_map(|leaf| self.nodes[leaf].clusters.iter())
            .copied()
            .find(|id| self.clusters.get(id).is_some_and(covers))
    }

    /// Records in cluster `id` the tokens of `tokens` (the masked `message`) that held part of a
    /// secret in `message`.
    fn note_secrets(&mut self, id: ClusterId, message: &str, tokens: &[&str]) {
        let secrets = {
            let redactor = self.redactor.as_ref().unwrap_or_else(|| Redactor::shared());
            secret_bearing_tokens(message, tokens, redactor)
        };
        if secrets.is_empty() {
            return;
        }
        if let Some(c) = self.clusters.get_mut(&id) {
            for t in secrets {
                if !c.secrets.contains(&t) {
                    c.secrets.push(t);
                }
            }
        }
    }

    /// The cluster a masked text joined before, when it is still live and still covers the text
    /// (every position equal or `<*>`): the message joins it again, as comparing it with its leaf
    /// would (a covering cluster agrees on every position it counts, and clusters filed since are
    /// younger, so they lose ties).
    fn join_seen(&mut self, key: u64, masked: &str) -> Option<ClusterId> {
        let (seen, from_old) = match self.seen_masked.get(&key) {
            Some(&id) => (id, false),
            None => (*self.seen_masked_old.get(&key)?, true),
        };
        let max = self.config.max_tokens;
        // Most seen clusters are still live under their id: found with one lookup.
        let (id, c) = match self.clusters.get_mut(&seen) {
            Some(c) => (seen, c),
            None => {
                let id = self.resolve(seen)?;
                (id, self.clusters.get_mut(&id)?)
            }
        };
        // The same text as the template's covers it at once (most templates have no `<*>`).
        if c.text != masked {
            let walked = if c.plain {
                covers_by_walk(&c.text, &c.wildcards, c.tokens.len(), masked, max)
            } else {
                None
            };
            if !walked.unwrap_or_else(|| covers_by_tokens(&c.tokens, masked, max)) {
                return None;
            }
        }
        self.clock += 1;
        c.size += 1;
        c.last_seen = self.clock;
        if from_old {
            self.remember_seen(key, id);
        }
        Some(id)
    }

    /// Remembers that the masked text hashed to `key` joined cluster `id`.
    fn remember_seen(&mut self, key: u64, id: ClusterId) {
        let limit = (8 * self.config.max_clusters).clamp(1024, MAX_SEEN_MASKED);
        if self.seen_masked.len() >= limit {
            // The current generation becomes the old one; the one before is forgotten.
            std::mem::swap(&mut self.seen_masked, &mut self.seen_masked_old);
            self.seen_masked.clear();
        }
        self.seen_masked.insert(key, id);
    }

    /// The live cluster that `id` is now part of: `id` itself, or the cluster it was merged into.
    /// `None` when it (or what absorbed it) was evicted, or the merge is too old to be remembered.
    pub fn resolve(&self, mut id: ClusterId) -> Option<ClusterId> {
        for _ in 0..64 {
            if self.clusters.contains_key(&id) {
                return Some(id);
            }
            id = *self.redirects.get(&id)?;
        }
        None
    }

    /// The current template of a learned cluster (following merges); `None` once evicted.
    pub fn cluster_template(&self, id: ClusterId) -> Option<Template> {
        self.cluster_text(id).map(|(text, fingerprint)| Template {
            text: text.to_string(),
            fingerprint: fingerprint.to_string(),
        })
    }

    /// The current template text and fingerprint of a learned cluster (following merges), borrowed.
    pub fn cluster_text(&self, id: ClusterId) -> Option<(&str, &str)> {
        let id = self.resolve(id)?;
        self.clusters
            .get(&id)
            .map(|c| (c.text.as_str(), c.fingerprint.as_str()))
    }

    pub(super) fn sorted_ids(&self) -> Vec<ClusterId> {
        let mut ids: Vec<ClusterId> = self.clusters.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub(super) fn tokens_of<'a>(&self, masked: &'a str) -> Vec<&'a str> {
        let mut tokens: Vec<&str> = Vec::with_capacity(16);
        let max = self.config.max_tokens;
        for (i, tok) in split_spaces(masked).filter(|t| !t.is_empty()).enumerate() {
            if i == max {
                tokens.push("<...>");
                break;
            }
            tokens.push(tok);
        }
        tokens
    }

    /// The leaf for `tokens`, following existing branches only: each token's own branch when there
    /// is one (unless `prefer_wildcard`), else the `<*>` branch.
    fn find_leaf(&self, tokens: &[&str], flags: &[u8], prefer_wildcard: bool) -> Option<usize> {
        let mut buf = [0u8; 20];
        let mut node = *self.nodes[0]
            .children
            .get(len_key_in(tokens.len(), &mut buf))? as usize;
        for key in route_keys(tokens, flags).take(self.config.depth) {
            let n = &self.nodes[node];
            let own = n.child(key).map(|(c, _)| c);
            let wild = n.children.get(WILDCARD).copied();
            node = if prefer_wildcard {
                wild.or(own)
            } else {
                own.or(wild)
            }? as usize;
        }
        Some(node)
    }

    fn best_match(&self, tokens: &[&str], flags: &[u8]) -> Option<ClusterId> {
        let own = self.find_leaf(tokens, flags, false);
        let found = own.and_then(|leaf| self.best_in_leaf(leaf, tokens, flags));
        if found.is_some() {
            return found;
        }
        match self.find_leaf(tokens, flags, true) {
            Some(leaf) if Some(leaf) != own => self.best_in_leaf(leaf, tokens, flags),
            _ => None,
        }
    }

    fn best_in_leaf(&self, leaf: usize, tokens: &[&str], flags: &[u8]) -> Option<ClusterId> {
        let mut best: Option<(f64, ClusterId)> = None;
        // Bounded work per message: only the most recently filed clusters of a crowded leaf are
        // compared (older ones age out through eviction).
        for &id in self.nodes[leaf].clusters.iter().rev().take(MAX_LEAF_SCAN) {
            let Some(c) = self.clusters.get(&id) else {
                continue;
            };
            let Some(sim) = similarity(c, tokens, flags) else {
                continue;
            };
            if sim >= self.config.similarity_threshold
                && best.is_none_or(|(b, bid)| sim > b || (sim == b && id < bid))
            {
                best = Some((sim, id));
            }
        }
        best.map(|(_, id)| id)
    }

    fn learn_tokens(&mut self, tokens: &[&str], flags: &[u8]) -> ClusterId {
        self.clock += 1;
        let clock = self.clock;
        if let Some(id) = self.best_match(tokens, flags) {
            let mut changed = false;
            let mut restored = false;
            if let Some(c) = self.clusters.get_mut(&id) {
                c.size += 1;
                c.last_seen = clock;
                for (t, m) in c.tokens.iter_mut().zip(tokens) {
                    if &**t != WILDCARD && &**t != *m {
                        if stand_in_matches(t, m) {
                            // Sealed state seen again: the clear token is back in memory, and
                            // is sealed again when the state is persisted.
                            *t = Box::from(*m);
                            if !c.secrets.iter().any(|s| &**s == *m) {
                                c.secrets.push(Box::from(*m));
                            }
                            restored = true;
                        } else {
                            *t = WILDCARD.into();
                            changed = true;
                        }
                    }
                }
                if changed || restored {
                    c.refresh();
                }
            }
            if changed || restored {
                return self.index_siblings_and_merge(id, changed);
            }
            return id;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let path = self.insertion_path(tokens, flags);
        let tokens: Vec<Box<str>> = tokens.iter().map(|t| Box::from(*t)).collect();
        let leaf = self.ensure_path(&path);
        self.nodes[leaf].clusters.push(id);
        self.clusters
            .insert(id, Cluster::new(tokens, vec![path], 1, clock));
        let id = self.index_siblings_and_merge(id, false);
        if self.clusters.len() > self.config.max_clusters {
            self.evict(id);
        }
        id
    }

    /// The tree keys a new cluster for `tokens` is filed under: the token count, then for each of
    /// the leading routing tokens ([`route_keys`]) its own key while the node has room, else `<*>`.
    fn insertion_path(&self, tokens: &[&str], flags: &[u8]) -> Vec<Box<str>> {
        let mut path: Vec<Box<str>> = Vec::with_capacity(self.config.depth + 1);
        path.push(len_key(tokens.len()).into_boxed_str());
        let mut node = self.nodes[0].children.get(&*path[0]).map(|&n| n as usize);
        for key in route_keys(tokens, flags).take(self.config.depth) {
            let existing = node.and_then(|n| self.nodes[n].child(key));
            let chosen: Box<str> = match (node.map(|n| &self.nodes[n]), existing) {
                (_, Some((_, Some(sealed)))) => sealed,
                (_, Some((_, None))) => key.into(),
                (Some(n), None)
                    if key != WILDCARD && n.children.len() + 1 >= self.config.max_children =>
                {
                    WILDCARD.into()
                }
                _ => key.into(),
            };
            node = node.and_then(|n| self.nodes[n].children.get(&*chosen).map(|&c| c as usize));
            path.push(chosen);
        }
        path
    }

    fn ensure_path(&mut self, path: &[Box<str>]) -> usize {
        let mut node = 0usize;
        for key in path {
            node = match self.nodes[node].children.get(&**key) {
                Some(&c) => c as usize,
                None => {
                    let new = self.nodes.len();
                    self.nodes.push(Node::default());
                    self.nodes[node].sealed_children |= is_stand_in(key);
                    self.nodes[node].children.insert(key.clone(), new as u32);
                    new
                }
            };
        }
        node
    }

    fn leaf_of(&self, path: &[Box<str>]) -> Option<usize> {
        let mut node = 0usize;
        for key in path {
            node = *self.nodes[node].children.get(&**key)? as usize;
        }
        Some(node)
    }

    /// (Re-)indexes cluster `id` under its sibling keys, then merges any sibling group that now
    /// shows enough distinct words in one position. Returns the cluster `id` now belongs to.
    fn index_siblings_and_merge(&mut self, id: ClusterId, generalised: bool) -> ClusterId {
        let mut current = id;
        let mut generalised = generalised;
        loop {
            self.unindex_siblings(current);
            let keys = match self.clusters.get(&current) {
                Some(c) => sibling_keys(&c.tokens, &c.flags),
                None => return current,
            };
            let mut merge: Option<(usize, Vec<ClusterId>)> = None;
            for &(pos, key) in &keys {
                let group = self.siblings.entry(key).or_default();
                group.push(current);
                let members = if merge.is_none() && group.len() > 1 {
                    group.clone()
                } else {
                    Vec::new()
                };
                if members.len() > 1 {
                    // A straggler filed before its group became `<*>` at `pos` joins it.
                    merge = self.wildcard_sibling(current, pos, &members);
                }
                if merge.is_none() && members.len() >= self.min_names() {
                    if let Some(m) = self.verified_group(current, pos, &members) {
                        merge = Some((pos, m));
                    }
                }
            }
            if let Some(c) = self.clusters.get_mut(&current) {
                c.sibling_keys = keys.iter().map(|&(_, k)| k).collect();
            }
            match merge {
                // A brand-new cluster has no `<*>`: it covers nothing it would not have matched.
                None if generalised => return self.absorb_covered(current),
                None => return current,
                Some((pos, members)) => {
                    current = self.merge_group(pos, members);
                    generalised = true;
                }
            }
        }
    }

    /// The first member of a sibling group that equals `anchor` outside `pos` where one of the two
    /// holds `<*>` at `pos`: (pos, [the one with `<*>`, the other]).
    fn wildcard_sibling(
        &self,
        anchor: ClusterId,
        pos: usize,
        members: &[ClusterId],
    ) -> Option<(usize, Vec<ClusterId>)> {
        let a = self.clusters.get(&anchor)?;
        let a_wild = &*a.tokens[pos] == WILDCARD;
        members.iter().copied().find_map(|m| {
            let c = self.clusters.get(&m).filter(|_| m != anchor)?;
            let c_wild = &*c.tokens[pos] == WILDCARD;
            let equal_elsewhere = c.tokens.len() == a.tokens.len()
                && c.tokens
                    .iter()
                    .zip(&a.tokens)
                    .enumerate()
                    .all(|(i, (x, y))| i == pos || x == y);
            (equal_elsewhere && a_wild != c_wild).then(|| {
                if a_wild {
                    (pos, vec![anchor, m])
                } else {
                    (pos, vec![m, anchor])
                }
            })
        })
    }

    /// Merges into `id` every other cluster of its leaves that its (just generalised) template now
    /// covers, so stragglers created before the generalisation do not keep a group split.
    fn absorb_covered(&mut self, id: ClusterId) -> ClusterId {
        let Some(c) = self.clusters.get(&id) else {
            return id;
        };
        let mut covered: Vec<ClusterId> = Vec::new();
        for path in &c.paths {
            let Some(leaf) = self.leaf_of(path) else {
                continue;
            };
            for &other in self.nodes[leaf].clusters.iter().rev().take(MAX_ABSORB_SCAN) {
                if other == id || covered.contains(&other) {
                    continue;
                }
                let Some(o) = self.clusters.get(&other) else {
                    continue;
                };
                if o.tokens.len() == c.tokens.len()
                    && c.tokens
                        .iter()
                        .zip(&o.tokens)
                        .all(|(a, b)| &**a == WILDCARD || a == b)
                {
                    covered.push(other);
                }
            }
        }
        if covered.is_empty() {
            return id;
        }
        covered.sort_unstable();
        for m in covered {
            self.unindex_siblings(m);
            if let Some(o) = self.clusters.remove(&m) {
                for path in &o.paths {
                    if let Some(leaf) = self.leaf_of(path) {
                        self.nodes[leaf].clusters.retain(|&x| x != m);
                    }
                }
                let mut add_paths = Vec::new();
                if let Some(s) = self.clusters.get_mut(&id) {
                    s.size += o.size;
                    s.last_seen = s.last_seen.max(o.last_seen);
                    absorb_secrets(&mut s.secrets, &o.secrets);
                    for p in o.paths {
                        if !s.paths.contains(&p) {
                            s.paths.push(p.clone());
                            add_paths.push(p);
                        }
                    }
                }
                for p in add_paths {
                    let leaf = self.ensure_path(&p);
                    if !self.nodes[leaf].clusters.contains(&id) {
                        self.nodes[leaf].clusters.push(id);
                    }
                }
            }
            self.remember_redirect(m, id);
        }
        id
    }

    /// The members of a sibling group that really equal `anchor` outside `pos` (hashes can collide),
    /// when they show at least `min_variable_values` distinct words at `pos`. When those are plain
    /// words in the first position it takes twice as many: a leading word usually names the event
    /// (`boot`, `wait`, `halt` in `boot (command 12)`), and the prefix tree routes on it first.
    fn verified_group(
        &self,
        anchor: ClusterId,
        pos: usize,
        members: &[ClusterId],
    ) -> Option<Vec<ClusterId>> {
        let a = self.clusters.get(&anchor)?;
        // Distinct words in one position are evidence of a name only against enough agreeing
        // context: two constant tokens besides it. One is not enough: with only a host name
        // around them (`<TIME> combo sshd[<NUM>]: Link error`, `... Sending DIFF`), five short
        // messages would become `<TIME> combo <*> <*> <*>` and swallow every message of that
        // length from that host; and `normal`, `warning` and `running` never become `<*>`.
        let lead = a
            .flags
            .iter()
            .take_while(|&&f| f & PLACEHOLDER != 0)
            .count();
        let min_constants = if pos == lead {
            MIN_CONSTANTS_BESIDE_A_LEADING_NAME
        } else {
            MIN_CONSTANTS_BESIDE_A_NAME
        };
        let constants_elsewhere = a
            .flags
            .iter()
            .enumerate()
            .filter(|&(i, &f)| i != pos && f & CONSTANT != 0)
            .take(min_constants)
            .count();
        if constants_elsewhere < min_constants {
            return None;
        }
        let mut same: Vec<ClusterId> = members
            .iter()
            .copied()
            .filter(|m| {
                self.clusters.get(m).is_some_and(|c| {
                    c.tokens.len() == a.tokens.len()
                        && c.tokens
                            .iter()
                            .zip(&a.tokens)
                            .enumerate()
                            .all(|(i, (x, y))| i == pos || x == y)
                })
            })
            .collect();
        same.sort_unstable();
        same.dedup();
        let mut values: Vec<&str> = same
            .iter()
            .filter_map(|m| self.clusters.get(m))
            .map(|c| &*c.tokens[pos])
            .collect();
        values.sort_unstable();
        values.dedup();
        let first_words = pos == 0 && values.iter().all(|v| is_plain_word(v));
        // Words after a word that introduces a name (`client SPP.`, `client
        // WindowsUpdateAgent.`, `client UpdateOrchestrator.`) are names at the third.
        let introduced = pos > 0
            && values
                .iter()
                .all(|v| introduced_name(&a.tokens[pos - 1], v));
        let needed = if first_words {
            self.config.min_variable_values.saturating_mul(2)
        } else if introduced {
            self.min_names()
        } else {
            self.config.min_variable_values
        };
        (values.len() >= needed).then_some(same)
    }

    /// Distinct words after a word that introduces a name before they are taken for names
    /// ([`MIN_INTRODUCED_NAMES`], or fewer when the configuration asks fewer for any word).
    fn min_names(&self) -> usize {
        MIN_INTRODUCED_NAMES.min(self.config.min_variable_values)
    }

    /// Merges `members` (equal outside `pos`) into the lowest id, with `<*>` at `pos`.
    fn merge_group(&mut self, pos: usize, members: Vec<ClusterId>) -> ClusterId {
        let survivor = members[0];
        let mut absorbed: Vec<Cluster> = Vec::new();
        for &m in &members[1..] {
            self.unindex_siblings(m);
            if let Some(c) = self.clusters.remove(&m) {
                for path in &c.paths {
                    if let Some(leaf) = self.leaf_of(path) {
                        self.nodes[leaf].clusters.retain(|&x| x != m);
                    }
                }
                absorbed.push(c);
            }
            self.remember_redirect(m, survivor);
        }
        let mut new_paths: Vec<Vec<Box<str>>> = Vec::new();
        if let Some(s) = self.clusters.get_mut(&survivor) {
            for c in &absorbed {
                s.size += c.size;
                s.last_seen = s.last_seen.max(c.last_seen);
                absorb_secrets(&mut s.secrets, &c.secrets);
                for p in &c.paths {
                    if !s.paths.contains(p) {
                        s.paths.push(p.clone());
                    }
                }
            }
            s.tokens[pos] = WILDCARD.into();
            s.refresh();
        }
        // Filed also where messages with any word at `pos` are routed, and, when `pos` is among
        // the leading values, where messages with a value there are (routing passes over leading
        // values: `com.apple.x: ...` and `<URL>: ...` must find the same `<*>: ...`).
        let wild_paths = self.clusters.get(&survivor).map(|s| {
            let tokens: Vec<&str> = s.tokens.iter().map(|t| &**t).collect();
            let mut paths = vec![self.insertion_path(&tokens, &s.flags)];
            let leading = s
                .flags
                .iter()
                .take_while(|&&f| f & PLACEHOLDER != 0)
                .count();
            if pos < leading {
                let as_values: Vec<u8> = s
                    .flags
                    .iter()
                    .enumerate()
                    .map(|(i, &f)| if i < leading { f & !WILD } else { f })
                    .collect();
                paths.push(self.insertion_path(&tokens, &as_values));
            }
            paths
        });
        if let Some(s) = self.clusters.get_mut(&survivor) {
            for wild in wild_paths.into_iter().flatten() {
                if !s.paths.contains(&wild) {
                    s.paths.push(wild);
                }
            }
            new_paths = s.paths.clone();
        }
        for p in &new_paths {
            let leaf = self.ensure_path(p);
            if !self.nodes[leaf].clusters.contains(&survivor) {
                self.nodes[leaf].clusters.push(survivor);
            }
        }
        tracing::trace!(
            survivor,
            merged = members.len(),
            position = pos,
            "templater merged sibling clusters"
        );
        survivor
    }

    fn unindex_siblings(&mut self, id: ClusterId) {
        let keys = match self.clusters.get_mut(&id) {
            Some(c) => std::mem::take(&mut c.sibling_keys),
            None => return,
        };
        for k in keys {
            if let Some(group) = self.siblings.get_mut(&k) {
                group.retain(|&x| x != id);
                if group.is_empty() {
                    self.siblings.remove(&k);
                }
            }
        }
    }

    fn remember_redirect(&mut self, from: ClusterId, to: ClusterId) {
        self.redirects.insert(from, to);
        self.redirect_order.push_back(from);
        while self.redirect_order.len() > 4 * self.config.max_clusters {
            if let Some(old) = self.redirect_order.pop_front() {
                self.redirects.remove(&old);
            }
        }
    }

    /// Evicts the least recently used tenth of the clusters (never `keep`), then rebuilds the
    /// indexes so their size stays proportional to the clusters kept.
    fn evict(&mut self, keep: ClusterId) {
        let excess = self.clusters.len().saturating_sub(self.config.max_clusters);
        let batch = (self.config.max_clusters / 10).max(1) + excess;
        let mut order: Vec<(u64, ClusterId)> = self
            .clusters
            .iter()
            .filter(|(&id, _)| id != keep)
            .map(|(&id, c)| (c.last_seen, id))
            .collect();
        order.sort_unstable();
        let victims: FxSet<ClusterId> = order.into_iter().take(batch).map(|(_, id)| id).collect();
        let mut leaves: Vec<usize> = Vec::new();
        let mut sorted: Vec<ClusterId> = victims.iter().copied().collect();
        sorted.sort_unstable();
        for &id in &sorted {
            self.unindex_siblings(id);
            if let Some(c) = self.clusters.remove(&id) {
                leaves.extend(c.paths.iter().filter_map(|p| self.leaf_of(p)));
            }
        }
        leaves.sort_unstable();
        leaves.dedup();
        for leaf in leaves {
            self.nodes[leaf].clusters.retain(|id| !victims.contains(id));
        }
        tracing::debug!(
            evicted = batch,
            kept = self.clusters.len(),
            "templater evicted clusters"
        );
        // Tree nodes of evicted clusters linger until the tree is rebuilt; keep them bounded.
        if self.nodes.len() > 8 * self.clusters.len() + 1024 {
            self.rebuild_indexes();
        }
    }

    pub(super) fn rebuild_indexes(&mut self) {
        self.nodes = vec![Node::default()];
        self.siblings = FxMap::default();
        for id in self.sorted_ids() {
            let (paths, keys) = match self.clusters.get(&id) {
                Some(c) => (c.paths.clone(), sibling_keys(&c.tokens, &c.flags)),
                None => continue,
            };
            for p in &paths {
                let leaf = self.ensure_path(p);
                self.nodes[leaf].clusters.push(id);
            }
            for &(_, k) in &keys {
                self.siblings.entry(k).or_default().push(id);
            }
            if let Some(c) = self.clusters.get_mut(&id) {
                c.sibling_keys = keys.into_iter().map(|(_, k)| k).collect();
            }
        }
    }
}

/// The sibling keys of a template: for each of its first positions holding a constant token, a
/// hash of (token count, position, every other token).
fn sibling_keys(tokens: &[Box<str>], flags: &[u8]) -> Vec<(usize, u64)> {
    let mut keys = Vec::new();
    for (pos, &f) in flags.iter().enumerate().take(MAX_SIBLING_POSITIONS) {
        if f & WILD == 0 && f & PLACEHOLDER != 0 {
            continue;
        }
        // Never a variable: messages that differ in their error code are different problems.
        if is_code_token(&tokens[pos]) {
            continue;
        }
        let mut h = FxHasher::default();
        h.write_usize(tokens.len());
        h.write_usize(pos);
        for (i, t) in tokens.iter().enumerate() {
            if i != pos {
                h.write(t.as_bytes());
                h.write_u8(0xff);
            }
        }
        keys.push((pos, h.finish()));
    }
    keys
}

pub(super) fn len_key(n: usize) -> String {
    n.to_string()
}

/// `len_key` without allocating.
fn len_key_in(mut n: usize, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// The tree keys of a message: its tokens in order after any leading values (raw lines open with
/// timestamps, and routing on them would put every message in one crowded branch), a token that
/// holds a placeholder, or follows a word that introduces a name, routing as the `<*>` branch.
/// Adds to `into` the secret-bearing tokens of a cluster merged into its owner (its tree keys
/// move with it).
fn absorb_secrets(into: &mut Vec<Box<str>>, from: &[Box<str>]) {
    for t in from {
        if !into.contains(t) {
            into.push(t.clone());
        }
    }
}

fn route_keys<'a>(tokens: &'a [&'a str], flags: &'a [u8]) -> impl Iterator<Item = &'a str> + 'a {
    let lead = flags
        .iter()
        .take_while(|&&f| f & PLACEHOLDER != 0 && f & WILD == 0)
        .count();
    let introduced = std::iter::once(false).chain(flags.iter().map(|&f| f & INTRO != 0));
    tokens[lead..]
        .iter()
        .zip(&flags[lead..])
        .zip(introduced.skip(lead))
        .map(|((t, &f), after_intro)| {
            // A word after `user`/`host`/... is a name: it must not pick the branch.
            if f & PLACEHOLDER != 0 || after_intro {
                WILDCARD
            } else {
                *t
            }
        })
}

/// How well a message agrees with a cluster's template: the share of its telling positions that
/// agree, or `None` when it must not join. Positions where the template holds `<*>`, and equal bare
/// values (`<NUM>`, `(<IP>)`), say nothing. Two different words in one position are two different
/// messages, and so are two tokens whose letters around their values hold different words
/// (`(uid=<NUM>)` / `LOGIN(uid=<NUM>)`) — unless enough distinct words turn up there for it to
/// be a name (the sibling merge: three after a word that introduces a name, as `user alice` /
/// `user bob` / `user carol`, else five), or, for tokens with values in them, the word before
/// names what follows (`package: Microsoft-Hyper-V~<HEX>`). A message joins only on at least one
/// agreeing constant token, so a template never loses its last constant.
fn similarity(c: &Cluster, tokens: &[&str], flags: &[u8]) -> Option<f64> {
    if c.tokens.len() != tokens.len() {
        return None;
    }
    let mut agree = 0usize;
    let mut counted = 0usize;
    let mut all_equal = true;
    for i in 0..tokens.len() {
        let tf = c.flags[i];
        if tf & WILD != 0 {
            all_equal = false;
            continue;
        }
        let (t, m) = (&*c.tokens[i], tokens[i]);
        if t == m || stand_in_matches(t, m) {
            if tf & CONSTANT != 0 {
                agree += 1;
                counted += 1;
            }
            continue;
        }
        all_equal = false;
        // An error code names the problem: another code is another message, whatever else agrees.
        if is_code_token(t) || is_code_token(m) {
            return None;
        }
        // Two words are different messages, even after a word that introduces a name (`client
        // SPP.` / `client WindowsUpdateAgent.` are two events): the sibling merge generalises
        // the position at the third name ([`MIN_INTRODUCED_NAMES`]), and deduplication joins
        // two names after one introducer as one problem meanwhile
        // ([`names_after_an_introducer`]).
        let words = tf & WORD != 0 && flags[i] & WORD != 0;
        if words {
            return None;
        }
        // Two tokens with letters around their values whose letters differ (`(uid=<NUM>)` /
        // `LOGIN(uid=<NUM>)`, `tty=:<NUM>` / `tty=NODEVssh`): the same difference as two
        // different constant words. Identifiers with values in them (`rdd_<NUM>_<NUM>`,
        // `broadcast_<NUM>_piece0`) are values, and so is such a token after an introducer
        // (`package: Microsoft-Hyper-V~<HEX>`: the sibling merge never sees a position holding
        // a placeholder).
        if tf & CONSTANT != 0
            && flags[i] & CONSTANT != 0
            && !(is_valued_identifier(t) && is_valued_identifier(m))
            && !(is_qualified_name(t) && is_qualified_name(m))
            && different_words_in_letters(t, m)
        {
            let introduced =
                i > 0 && c.flags[i - 1] & INTRO != 0 && *c.tokens[i - 1] == *tokens[i - 1];
            if !introduced {
                return None;
            }
        }
        // A word replaced by a value-like token (`Server` / `reduceResourceRequest:<memory:<NUM>,`)
        // is stronger evidence of a different message than two differing values: it weighs
        // twice, so two agreeing header tokens (`combo`, `sshd[<NUM>]:`) cannot outvote it.
        counted += if (tf | flags[i]) & WORD != 0 { 2 } else { 1 };
    }
    if agree == 0 {
        return all_equal.then_some(1.0);
    }
    Some(agree as f64 / counted as f64)
}

/// The runs of letters of a token outside its placeholders, in order (`LOGIN(uid=<NUM>)`:
/// `LOGIN`, `uid`), each with whether it touches a placeholder (`<NUM>xcecdefca`: part of a
/// value).
struct LetterRuns<'a> {
    b: &'a [u8],
    i: usize,
    /// The byte before `i` closed a placeholder.
    after_placeholder: bool,
}

impl<'a> LetterRuns<'a> {
    fn of(tok: &'a str) -> Self {
        LetterRuns {
            b: tok.as_bytes(),
            i: 0,
            after_placeholder: false,
        }
    }

    /// The end of the placeholder opening at `i`, if one does.
    fn placeholder_end(&self, i: usize) -> Option<usize> {
        let b = self.b;
        let mut j = i + 1;
        while j < b.len() && (b[j].is_ascii_uppercase() || b[j] == b'*' || b[j] == b'.') {
            j += 1;
        }
        (b[i] == b'<' && j > i + 1 && b.get(j) == Some(&b'>')).then_some(j + 1)
    }
}

impl<'a> Iterator for LetterRuns<'a> {
    type Item = (&'a [u8], bool);

    fn next(&mut self) -> Option<(&'a [u8], bool)> {
        let b = self.b;
        let mut start: Option<(usize, bool)> = None;
        while self.i < b.len() {
            if let Some(end) = self.placeholder_end(self.i) {
                if let Some((s, _)) = start {
                    return Some((&b[s..self.i], true));
                }
                self.i = end;
                self.after_placeholder = true;
                continue;
            }
            let c = b[self.i];
            let letter = c.is_ascii_alphabetic() || c >= 0x80;
            match (letter, start) {
                (true, None) => start = Some((self.i, self.after_placeholder)),
                (false, Some((s, touched))) => {
                    self.after_placeholder = false;
                    return Some((&b[s..self.i], touched));
                }
                _ => {}
            }
            self.after_placeholder = false;
            self.i += 1;
        }
        start.map(|(s, touched)| (&b[s..], touched))
    }
}

/// Whether a token is a qualified name (`com.example.call.run(Worker.java:<NUM>)`: a `.`
/// between letters): its parts are names, as a path's are.
fn is_qualified_name(tok: &str) -> bool {
    tok.as_bytes()
        .windows(3)
        .any(|w| w[1] == b'.' && w[0].is_ascii_alphabetic() && w[2].is_ascii_alphabetic())
}

/// An identifier holding a placeholder, possibly with brackets: only letters, digits, `_`, `-`,
/// brackets, parentheses and placeholders (`rdd_<NUM>_<NUM>`, `cron[<NUM>]:`, `QQ(<NUM>)`).
fn is_valued_identifier(tok: &str) -> bool {
    let b = trim_tail_punct(tok).as_bytes();
    let mut i = 0;
    let mut placeholder = false;
    while i < b.len() {
        if b[i] == b'<' {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_uppercase() || b[j] == b'*' || b[j] == b'.') {
                j += 1;
            }
            if j > i + 1 && b.get(j) == Some(&b'>') {
                placeholder = true;
                i = j + 1;
                continue;
            }
            return false;
        }
        if !(b[i].is_ascii_alphanumeric()
            || matches!(b[i], b'_' | b'-' | b'[' | b']' | b'(' | b')'))
        {
            return false;
        }
        i += 1;
    }
    placeholder
}

/// The key and value of a `key=value` or `key:value` token (`tty=:<NUM>`: `tty`, `:<NUM>`).
fn key_and_value(tok: &str) -> Option<(&str, &str)> {
    let core = trim_lead_punct(tok);
    let end = core.find(['=', ':']).filter(|&e| e > 0)?;
    Some((&core[..end], &core[end + 1..]))
}

/// Whether two differing tokens hold different words. Under one key (`ws=null` /
/// `ws=WorkSource{<NUM>}`, `user=root` / `user=uucp`) the values are values, and differ in kind
/// only when one holds a word and the other none (`tty=:<NUM>` / `tty=NODEVssh`; a key that
/// introduces a name takes any). Otherwise by [`different_letter_words`].
fn different_words_in_letters(a: &str, b: &str) -> bool {
    match (key_and_value(a), key_and_value(b)) {
        (Some((ka, va)), Some((kb, vb))) if ka == kb => {
            !is_introducer(ka) && holds_word(va) != holds_word(vb)
        }
        _ => different_letter_words(a, b),
    }
}

/// Whether a run of letters is a word: at least [`MIN_WORD_RUN`] letters, not touching a
/// placeholder, and not a hex value that happens to have no digit (`ffffffff`).
fn is_word_run((r, touches_value): (&[u8], bool)) -> bool {
    !touches_value
        && r.len() >= MIN_WORD_RUN
        && !(r.len() >= 8 && r.iter().all(u8::is_ascii_hexdigit))
}

/// Whether a token's letters outside placeholders hold a word.
fn holds_word(tok: &str) -> bool {
    LetterRuns::of(tok).any(is_word_run)
}

/// Letters a run that differs between two tokens must have for the two to be different words
/// (`LOGIN(uid=<NUM>)` / `(uid=<NUM>)`, `WWEN[enable]` / `WWEN[disable]`); shorter runs are
/// the letters of identifiers (`Thunderbird_A<NUM>` / `Thunderbird_B<NUM>`, `an<NUM>` / `bn<NUM>`).
const MIN_WORD_RUN: usize = 3;

/// Whether two tokens hold different words in their letters outside placeholders: the runs that
/// are words ([`is_word_run`]), in order, differ.
fn different_letter_words(a: &str, b: &str) -> bool {
    !LetterRuns::of(a)
        .filter(|&r| is_word_run(r))
        .map(|(r, _)| r)
        .eq(LetterRuns::of(b)
            .filter(|&r| is_word_run(r))
            .map(|(r, _)| r))
}

/// The token is the clustering's `<*>`.
pub(super) const WILD: u8 = 1;
/// The token holds a placeholder (`<NUM>`, `blk_<NUM>`, `<*>`).
pub(super) const PLACEHOLDER: u8 = 2;
/// Only placeholders and punctuation (`<NUM>`, `<HEX>:`, `(<IP>)`): agreeing on it is no evidence
/// of sameness.
pub(super) const BARE: u8 = 4;
/// A word or identifier (`running`, `HTTPS`, `SOCKS5`, `sqlite3.OperationalError`), possibly
/// wrapped in punctuation: the kind of token whose difference usually means a different message.
pub(super) const WORD: u8 = 8;
/// A word that names the value after it (`user`, `host`, `repository`).
pub(super) const INTRO: u8 = 16;
/// Holds a letter or digit outside placeholders: a constant a template must keep one of.
pub(super) const CONSTANT: u8 = 32;

/// Words that name the value that follows them in a message, so that the next word is a name
/// (`for user alice`, `from host db1`, `collection auth-service_v3`), not a different event.
const INTRODUCERS: &[&str] = &[
    "user",
    "username",
    "login",
    "account",
    "owner",
    "group",
    "host",
    "hostname",
    "node",
    "server",
    "client",
    "from",
    "collection",
    "repository",
    "repo",
    "table",
    "database",
    "bucket",
    "queue",
    "topic",
    "tenant",
    "container",
    "pod",
    "instance",
    "project",
    "package",
    "domain",
    "job",
    "thread",
];

const LONGEST_INTRODUCER: usize = {
    let mut longest = 0;
    let mut i = 0;
    while i < INTRODUCERS.len() {
        if INTRODUCERS[i].len() > longest {
            longest = INTRODUCERS[i].len();
        }
        i += 1;
    }
    longest
};

/// Whether `core` is one of [`INTRODUCERS`], in any case.
fn is_introducer(core: &str) -> bool {
    // Cheap rejections first: this runs for every word of every message.
    if !(3..=LONGEST_INTRODUCER).contains(&core.len()) || !core.as_bytes()[0].is_ascii_alphabetic()
    {
        return false;
    }
    INTRODUCERS
        .iter()
        .any(|w| w.len() == core.len() && w.eq_ignore_ascii_case(core))
}

/// Whether `x` and `y`, two tokens of templates that follow the token `before` in both, are two
/// names introduced by it (`queue orders` / `queue billing`, `client SPP.` / `client
/// WindowsUpdateAgent.`): both are [`introduced_name`]s and differ only inside the same
/// punctuation. The templater keeps two such names apart until a third turns up
/// ([`MIN_INTRODUCED_NAMES`]); deduplication takes them for one problem.
pub(crate) fn names_after_an_introducer(before: &str, x: &str, y: &str) -> bool {
    fn punct(t: &str) -> (&str, &str) {
        let rest = trim_lead_punct(t);
        let core = trim_tail_punct(rest);
        (&t[..t.len() - rest.len()], &rest[core.len()..])
    }
    x != y && introduced_name(before, x) && introduced_name(before, y) && punct(x) == punct(y)
}

/// Whether `tok`, after the token `before`, is a name `before` introduces: `before` is one of
/// [`INTRODUCERS`] (`user`, `client`, `queue`, …) and `tok` a word or identifier ([`WORD`]: no
/// placeholder, no sealed stand-in, no error code) that does not read as a past participle
/// (`Instance destroyed successfully` / `Instance spawned successfully`, `job failed` / `job
/// succeeded`: after the word comes what happened to it, not which one it is).
pub(crate) fn introduced_name(before: &str, tok: &str) -> bool {
    token_flags(before) & INTRO != 0
        && token_flags(tok) & (WORD | PLACEHOLDER) == WORD
        && !is_stand_in(tok)
        && !is_code_token(tok)
        && !reads_as_participle(tok)
}

/// A word of five or more ASCII letters, lower case after the first, ending in `ed` (`failed`,
/// `Destroyed`, `spawned`), possibly in punctuation.
fn reads_as_participle(tok: &str) -> bool {
    let b = trim_tail_punct(trim_lead_punct(tok)).as_bytes();
    b.len() >= 5
        && b[0].is_ascii_alphabetic()
        && b[1..].iter().all(u8::is_ascii_lowercase)
        && b.ends_with(b"ed")
}

/// An error code (`[GIT-SYNC-001]`, `DB-LOCK-003:`), possibly wrapped in punctuation.
fn is_code_token(tok: &str) -> bool {
    tok.len() >= 7 && is_error_code(trim_tail_punct(trim_lead_punct(tok)))
}

/// A word of letters (possibly wrapped in punctuation, possibly with an apostrophe).
fn is_plain_word(tok: &str) -> bool {
    let core = trim_tail_punct(trim_lead_punct(tok));
    !core.is_empty() && core.chars().all(|c| c.is_alphabetic() || c == '\'')
}

/// Whether the template `tokens` covers the masked text: the same number of tokens (the
/// `max`-th and later counted as one `<...>`), each equal or under `<*>`.
pub(super) fn covers_by_tokens(tokens: &[Box<str>], masked: &str, max: usize) -> bool {
    let mut template = tokens.iter();
    for (i, tok) in split_spaces(masked).filter(|t| !t.is_empty()).enumerate() {
        let tok = if i == max { "<...>" } else { tok };
        let Some(t) = template.next() else {
            return false;
        };
        if &**t != WILDCARD && &**t != tok {
            return false;
        }
        if i == max {
            break;
        }
    }
    template.next().is_none()
}

/// Where each `<*>` of `tokens` starts in their text (the tokens joined by single spaces), in
/// order.
pub(super) fn wildcard_offsets(tokens: &[Box<str>]) -> Vec<u32> {
    let mut offsets = Vec::new();
    let mut at = 0usize;
    for t in tokens {
        if &**t == WILDCARD {
            offsets.push(u32::try_from(at).unwrap_or(u32::MAX));
        }
        at += t.len() + 1;
    }
    offsets
}

/// [`covers_by_tokens`] in one walk over the masked bytes, for a template whose `tokens` tokens
/// are non-empty and hold no space, with the template's `text` and where its `<*>`s start in it
/// (`wildcards`): the literal text between two `<*>`s is compared where it must lie at once, each
/// `<*>` skips a token. `None` when the walk cannot decide (an empty masked token, more than
/// `max` tokens): the caller asks [`covers_by_tokens`].
pub(super) fn covers_by_walk(
    text: &str,
    wildcards: &[u32],
    tokens: usize,
    masked: &str,
    max: usize,
) -> Option<bool> {
    if tokens > max {
        return None;
    }
    let (t, m) = (text.as_bytes(), masked.as_bytes());
    // What a mismatch means: not covered, unless an empty masked token (which the token test
    // skips) put the tokens out of step.
    let mismatch = || {
        let empty_token =
            m.first() == Some(&b' ') || m.last() == Some(&b' ') || m.windows(2).any(|w| w == b"  ");
        (!empty_token).then_some(false)
    };
    // Where the literal text to compare next starts in the template and in the masked text.
    let (mut tp, mut mp) = (0usize, 0usize);
    for &w in wildcards {
        let w = w as usize;
        let literal = t.get(tp..w)?;
        if m.get(mp..mp + literal.len()) != Some(literal) {
            return mismatch();
        }
        mp += literal.len();
        // The `<*>`: one non-empty masked token.
        let end = super::masks::find_space(m, mp);
        if end == mp {
            return if mp < m.len() { None } else { mismatch() };
        }
        mp = end;
        tp = w + WILDCARD.len();
    }
    let literal = t.get(tp..)?;
    if m.get(mp..) != Some(literal) {
        return mismatch();
    }
    Some(true)
}

/// [`covers_by_walk`] given the template's tokens (the tests' form).
#[cfg(test)]
pub(super) fn covers_by_walk_tokens(tokens: &[Box<str>], masked: &str, max: usize) -> Option<bool> {
    let text = tokens.join(" ");
    covers_by_walk(&text, &wildcard_offsets(tokens), tokens.len(), masked, max)
}

/// The [`WILD`] .. [`CONSTANT`] flags of a token.
pub(super) fn token_flags(tok: &str) -> u8 {
    if tok == WILDCARD {
        return WILD | PLACEHOLDER | BARE;
    }
    if let Some(flags) = stand_in_flags(tok) {
        return flags;
    }
    let b = tok.as_bytes();
    let mut i = 0;
    let mut placeholder = false;
    let mut alnum = false;
    while i < b.len() {
        if b[i] == b'<' {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_uppercase() || b[j] == b'*' || b[j] == b'.') {
                j += 1;
            }
            if j > i + 1 && j < b.len() && b[j] == b'>' {
                placeholder = true;
                i = j + 1;
                continue;
            }
        }
        if b[i].is_ascii_alphanumeric() || b[i] >= 0x80 {
            alnum = true;
        }
        i += 1;
    }
    let mut flags = 0;
    if placeholder {
        flags |= PLACEHOLDER;
        if !alnum {
            flags |= BARE;
        }
    }
    if alnum {
        flags |= CONSTANT;
    }
    if !placeholder {
        let core = trim_tail_punct(trim_lead_punct(tok));
        let word = if core.is_ascii() {
            // The same test byte-wise: most tokens are ASCII.
            let b = core.as_bytes();
            b.iter().any(u8::is_ascii_alphabetic)
                && b.iter().all(|&c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'\'' | b'_' | b'-' | b'.' | b':')
                })
        } else {
            core.chars().any(char::is_alphabetic)
                && core
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '\'' | '_' | '-' | '.' | ':'))
        };
        if word {
            flags |= WORD;
            if is_introducer(core) {
                flags |= INTRO;
            }
        }
    }
    flags
}
