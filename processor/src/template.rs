//! Online log template mining: every log message gets the template it is an
//! instance of (its constant words, the variable parts as `<*>`) and a stable
//! template id, learned as lines arrive, in bounded memory.
//!
//! The method is Drain's (He et al., "Drain: An Online Log Parsing Approach
//! with Fixed Depth Tree", ICWS 2017; also the Drain3 project): messages are
//! masked (numbers, hex, IPs, paths, UUIDs, block ids become `<*>`),
//! tokenized on white space, routed by token count and their first tokens
//! (tokens holding a variable never route) to a leaf of candidate clusters,
//! and join the most similar cluster when at least half of their tokens
//! agree position by position; joining turns the disagreeing positions of
//! the template into `<*>`. Two departures from Drain: a template word that
//! once disagreed is a variable for good, and masking is done before routing
//! rather than only for similarity, which is what per-dataset tuning usually
//! adds by hand.
//!
//! Template ids are a hash of the template a cluster was created with, so a
//! miner that sees the same lines in the same order (batch or streaming, or
//! after a restart from a snapshot) gives the same ids. A miner holds at
//! most [`MAX_TEMPLATES`] clusters; past that, a message that matches none
//! joins the *overflow* template of its token count (`<overflow>` tokens)
//! instead of creating one: counts stay exact, only the grouping of the rare
//! tail coarsens.

use regex::Regex;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Clusters one miner holds at most.
pub const MAX_TEMPLATES: usize = 1_000;
/// Fraction of positions that must agree for a message to join a cluster.
pub const SIMILARITY: f64 = 0.7;
/// How many leading tokens route a message (Drain's depth minus two).
const ROUTE_TOKENS: usize = 2;
/// The variable placeholder.
pub const WILDCARD: &str = "<*>";

/// One learned template (persisted with the stream's state).
pub use farol_common::model::Template as Cluster;

/// The template a message was matched to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// Template id.
    pub id: String,
    /// Template text (as it stands after this message).
    pub template: String,
}

/// An online template miner (one per stream).
#[derive(Debug, Default, Clone)]
pub struct Miner {
    clusters: Vec<Cluster>,
    /// Route (token count + routing tokens) → indices into `clusters`.
    leaves: HashMap<String, Vec<usize>>,
    dirty: bool,
}

fn masks() -> &'static [(Regex, &'static str)] {
    static M: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    M.get_or_init(|| {
        [
            (r"\bblk_-?\d+\b", "blk_<*>"),
            // UUIDs, then MAC-like and IPv4 (with an optional port), hex, paths,
            // block ids, then any number (signed, decimal, with units glued on).
            (
                r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
                WILDCARD,
            ),
            (r"\b(?:[0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}\b", WILDCARD),
            (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", WILDCARD),
            (r"\b0[xX][0-9a-fA-F]+\b", WILDCARD),
            (r"\b[0-9a-fA-F]{16,}\b", WILDCARD),
            (r"(?:^|\s)(?:/[\w.\-@~+%]+){2,}/?", " <*>"),
            (r"[-+]?\b\d+(?:[.,:]\d+)*[a-zA-Z%]{0,3}\b", WILDCARD),
        ]
        .into_iter()
        .filter_map(|(re, to)| Regex::new(re).ok().map(|r| (r, to)))
        .collect()
    })
}

/// The message with its obvious variables masked, as tokens.
pub fn tokens(message: &str) -> Vec<String> {
    let mut s = std::borrow::Cow::Borrowed(message);
    for (re, to) in masks() {
        if re.is_match(&s) {
            s = std::borrow::Cow::Owned(re.replace_all(&s, *to).into_owned());
        }
    }
    s.split_whitespace()
        .map(|t| {
            if t.contains(WILDCARD) && t != WILDCARD && t.len() > 3 * WILDCARD.len() {
                // A token made mostly of variables is a variable.
                WILDCARD.to_string()
            } else {
                t.to_string()
            }
        })
        .collect()
}

fn routable(t: &str) -> bool {
    !t.contains(WILDCARD) && !t.bytes().any(|b| b.is_ascii_digit())
}

fn route(tokens: &[String]) -> String {
    let mut r = tokens.len().to_string();
    for t in tokens.iter().take(ROUTE_TOKENS) {
        r.push('\u{1f}');
        r.push_str(if routable(t) { t } else { WILDCARD });
    }
    r
}

fn similarity(template: &[String], tokens: &[String]) -> f64 {
    if tokens.is_empty() {
        return 1.0;
    }
    let same = template
        .iter()
        .zip(tokens)
        .filter(|(a, b)| a == b || a.as_str() == WILDCARD)
        .count();
    same as f64 / tokens.len() as f64
}

fn id_of(tokens: &[String]) -> String {
    format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(tokens.join(" ").as_bytes())
    )
}

impl Miner {
    /// A miner resuming from `snapshot`.
    pub fn restore(snapshot: Vec<Cluster>) -> Self {
        let mut m = Miner::default();
        for c in snapshot {
            let r = route(&c.tokens);
            m.leaves.entry(r).or_default().push(m.clusters.len());
            m.clusters.push(c);
        }
        m
    }

    /// The clusters, to be persisted with the stream's state.
    pub fn snapshot(&self) -> Vec<Cluster> {
        self.clusters.clone()
    }

    /// True once templates changed since the last [`take_dirty`](Self::take_dirty).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Number of templates held.
    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    /// True when no template has been learned.
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    /// Matches (and learns from) one message.
    pub fn add(&mut self, message: &str) -> Matched {
        let toks = tokens(message);
        let r = route(&toks);
        let best = self.leaves.get(&r).and_then(|ix| {
            ix.iter()
                .map(|&i| (i, similarity(&self.clusters[i].tokens, &toks)))
                .filter(|(_, s)| *s >= SIMILARITY)
                // Most similar; on a tie the oldest, so ids do not flap.
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                .map(|(i, _)| i)
        });
        let i = match best {
            Some(i) => {
                let c = &mut self.clusters[i];
                for (t, m) in c.tokens.iter_mut().zip(&toks) {
                    if t != m && t != WILDCARD {
                        *t = WILDCARD.to_string();
                        self.dirty = true;
                    }
                }
                i
            }
            None if self.clusters.len() < MAX_TEMPLATES => {
                self.dirty = true;
                self.clusters.push(Cluster {
                    id: id_of(&toks),
                    tokens: toks,
                });
                self.leaves
                    .entry(r)
                    .or_default()
                    .push(self.clusters.len() - 1);
                self.clusters.len() - 1
            }
            None => {
                // At the cap: one overflow template per token count.
                let over = vec!["<overflow>".to_string(); toks.len().max(1)];
                let key = route(&over);
                if let Some(&i) = self.leaves.get(&key).and_then(|v| v.first()) {
                    i
                } else {
                    self.dirty = true;
                    self.clusters.push(Cluster {
                        id: id_of(&over),
                        tokens: over,
                    });
                    self.leaves
                        .entry(key)
                        .or_default()
                        .push(self.clusters.len() - 1);
                    self.clusters.len() - 1
                }
            }
        };
        let c = &self.clusters[i];
        Matched {
            id: c.id.clone(),
            template: c.text(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_masked_and_instances_share_a_template() {
        let mut m = Miner::default();
        let a = m.add("PacketResponder 1 for block blk_38865049064139660 terminating");
        let b = m.add("PacketResponder 0 for block blk_-6952295868487656571 terminating");
        assert_eq!(a.id, b.id);
        assert_eq!(
            b.template,
            "PacketResponder <*> for block blk_<*> terminating"
        );
        let c = m.add("Received block blk_1 of size 67108864 from /10.251.42.84");
        assert_ne!(c.id, a.id);
        assert_eq!(c.template, "Received block blk_<*> of size <*> from /<*>");
    }

    #[test]
    fn words_that_vary_become_variables() {
        let mut m = Miner::default();
        let a = m.add("session opened for user root by uid");
        let b = m.add("session opened for user alice by uid");
        assert_eq!(a.id, b.id);
        assert_eq!(b.template, "session opened for user <*> by uid");
    }

    #[test]
    fn a_restored_miner_gives_the_same_ids() {
        let mut m = Miner::default();
        let first = m.add("Connection from 10.0.0.1 closed");
        let mut again = Miner::restore(m.snapshot());
        assert_eq!(again.add("Connection from 10.9.9.9 closed").id, first.id);
        assert!(m.take_dirty() && !m.take_dirty());
    }

    #[test]
    fn the_cap_sends_new_shapes_to_overflow() {
        let mut m = Miner::default();
        for i in 0..MAX_TEMPLATES {
            // Distinct words route apart; none is a number.
            let w: String = format!("{i:x}")
                .chars()
                .filter_map(|c| c.to_digit(16))
                .map(|d| (b'g' + d as u8) as char)
                .collect();
            m.add(&format!("unique{w} event"));
        }
        assert_eq!(m.len(), MAX_TEMPLATES);
        let over = m.add("never seen shape here");
        assert_eq!(over.template, "<overflow> <overflow> <overflow> <overflow>");
        assert_eq!(m.len(), MAX_TEMPLATES + 1);
    }
}
