//! Online log template mining: every log message gets the template it is an
//! instance of (its constant words, the variable parts as `<*>`) and a stable
//! template id, learned as lines arrive, in one pass and bounded memory.
//!
//! The method is Drain's (He et al., "Drain: An Online Log Parsing Approach
//! with Fixed Depth Tree", ICWS 2017; also the Drain3 project) with three
//! changes that each fix a measured, generic failure (BENCHMARKS.md has the
//! grouping accuracy per Loghub file):
//!
//! - [`mask`]: variables are masked inside tokens, before routing, so ids
//!   like `attempt_1445_0020_m_3`, sizes like `1.2 KB` and dates are
//!   variables without per-source regexes;
//! - [`tree`]: names never route, and the joining rule tolerates one
//!   differing word in short messages but only a fifth in long ones;
//! - variable-length variables: a message whose constant words (its
//!   *shape*: the tokens without `<*>`) equal those of a template of
//!   another length is an instance of it (`0 bytes sent` and
//!   `1234 bytes (1.2 KB) sent`), as in Brain's (Yu et al., TSC 2023)
//!   grouping by the common constant pattern rather than by position.
//!
//! Template ids are a hash of the template a cluster was created with, so a
//! miner that sees the same lines in the same order (batch or streaming, or
//! after a restart from a snapshot) gives the same ids: every index is a
//! function of the clusters alone and is rebuilt on restore. A miner holds
//! at most [`MAX_TEMPLATES`] clusters; past that, a message that matches none
//! joins the *overflow* template of its token count (`<overflow>` tokens)
//! instead of creating one: counts stay exact, only the grouping of the rare
//! tail coarsens. A template never changes id, and a line's id never
//! changes: clusters are not merged after the fact.

pub mod mask;
pub mod tree;

use hashbrown::HashMap;
use mask::Masked;
pub use mask::{tokens, WILDCARD};

/// Clusters one miner holds at most.
pub const MAX_TEMPLATES: usize = 1_000;
/// The overflow template's token.
const OVERFLOW: &str = "<overflow>";

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
    /// Shape (the constant tokens) → indices into `clusters`, ascending.
    shapes: HashMap<String, Vec<usize>>,
    dirty: bool,
    /// Scratch space for masking a message.
    masked: Masked,
    /// Scratch space for a message's route.
    route: String,
    /// Masked messages (tokens joined by a space, which no token holds)
    /// learned since the templates last changed, and the template each
    /// went to. Learning a message leaves the templates as they are for
    /// it again (it agrees with its template, which stays the most
    /// similar), so until a template is added or widened the same masked
    /// message goes to the same template: looked up, not routed and
    /// compared again. Emptied at every change, and when full.
    seen: HashMap<String, usize>,
    /// Scratch space for a message's key in `seen`.
    key: String,
}

/// Masked messages [`Miner::seen`] holds at most (about 100 KiB).
const SEEN_MAX: usize = 1024;

/// The constant tokens, joined; empty when there are none.
fn shape<S: AsRef<str>>(tokens: &[S]) -> String {
    let mut s = String::new();
    for t in tokens
        .iter()
        .map(AsRef::as_ref)
        .filter(|t| !t.contains(WILDCARD))
    {
        s.push_str(t);
        s.push('\u{1f}');
    }
    s
}

fn id_of<S: AsRef<str>>(tokens: &[S]) -> String {
    let joined: Vec<&str> = tokens.iter().map(AsRef::as_ref).collect();
    format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(joined.join(" ").as_bytes())
    )
}

fn is_overflow(c: &Cluster) -> bool {
    c.tokens.first().is_some_and(|t| t == OVERFLOW)
}

impl Miner {
    /// A miner resuming from `snapshot`.
    pub fn restore(snapshot: Vec<Cluster>) -> Self {
        let mut m = Miner::default();
        for c in snapshot {
            m.insert(c);
        }
        m
    }

    /// Adds a cluster to the store and its indices.
    fn insert(&mut self, c: Cluster) -> usize {
        self.seen.clear();
        let i = self.clusters.len();
        self.leaves
            .entry(tree::route(&c.tokens))
            .or_default()
            .push(i);
        if !is_overflow(&c) {
            self.index_shape(i, &c.tokens);
        }
        self.clusters.push(c);
        i
    }

    fn index_shape(&mut self, i: usize, tokens: &[String]) {
        let s = shape(tokens);
        if s.is_empty() {
            return;
        }
        let v = self.shapes.entry(s).or_default();
        if let Err(at) = v.binary_search(&i) {
            v.insert(at, i);
        }
    }

    fn unindex_shape(&mut self, i: usize, tokens: &[String]) {
        let s = shape(tokens);
        if let Some(v) = self.shapes.get_mut(&s) {
            v.retain(|&j| j != i);
            if v.is_empty() {
                self.shapes.remove(&s);
            }
        }
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

    /// The most similar cluster of the message's leaf it may join.
    fn closest(&self, route: &str, toks: &[&str]) -> Option<usize> {
        let leaf = self.leaves.get(route)?;
        let mut best: Option<(usize, usize)> = None;
        for &i in leaf {
            let c = &self.clusters[i];
            if c.tokens.len() != toks.len() || is_overflow(c) {
                continue;
            }
            let same = tree::agreeing(&c.tokens, toks);
            // Most similar; on a tie the oldest, so ids do not flap.
            if tree::close_enough(toks.len(), same) && best.is_none_or(|(_, s)| same > s) {
                best = Some((i, same));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Matches (and learns from) one message.
    pub fn add(&mut self, message: &str) -> Matched {
        let i = self.learn(message);
        Matched {
            id: self.id(i).to_string(),
            template: self.text(i),
        }
    }

    /// The id of the template at `i` (as [`learn`](Self::learn) returned it).
    pub fn id(&self, i: usize) -> &str {
        self.clusters.get(i).map_or("", |c| c.id.as_str())
    }

    /// The text of the template at `i`, as it stands now.
    pub fn text(&self, i: usize) -> String {
        self.clusters.get(i).map(Cluster::text).unwrap_or_default()
    }

    /// Matches (and learns from) one message; returns its template's index
    /// (stable for the miner's life), without copying id or text.
    pub fn learn(&mut self, message: &str) -> usize {
        let mut masked = std::mem::take(&mut self.masked);
        masked.fill(message);
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        for t in masked.iter() {
            key.push_str(t);
            key.push(' ');
        }
        let i = match self.seen.get(key.as_str()) {
            Some(&i) => i,
            None => {
                // On the stack for the usual message (a heap vector a line
                // showed in the profile).
                let toks: smallvec::SmallVec<[&str; 32]> = masked.iter().collect();
                let i = self.learn_tokens(&toks);
                if self.seen.len() >= SEEN_MAX {
                    self.seen.clear();
                }
                self.seen.insert(key.clone(), i);
                i
            }
        };
        self.key = key;
        self.masked = masked;
        i
    }

    fn learn_tokens(&mut self, toks: &[&str]) -> usize {
        let mut r = std::mem::take(&mut self.route);
        tree::route_into(toks, &mut r);
        let closest = self.closest(&r, toks);
        self.route = r;
        if let Some(i) = closest {
            if self.clusters[i]
                .tokens
                .iter()
                .zip(toks)
                .any(|(t, m)| t != m && t != WILDCARD)
            {
                let old = std::mem::take(&mut self.clusters[i].tokens);
                self.unindex_shape(i, &old);
                let new: Vec<String> = old
                    .into_iter()
                    .zip(toks)
                    .map(|(t, m)| if t == *m { t } else { WILDCARD.to_string() })
                    .collect();
                self.index_shape(i, &new);
                self.clusters[i].tokens = new;
                self.dirty = true;
                self.seen.clear();
            }
            i
        } else if let Some(&i) = self.shapes.get(&shape(toks)).and_then(|v| v.first()) {
            // Same constant words, variables of other lengths.
            i
        } else if self.clusters.len() < MAX_TEMPLATES {
            self.dirty = true;
            self.insert(Cluster {
                id: id_of(toks),
                tokens: toks.iter().map(|t| t.to_string()).collect(),
            })
        } else {
            // At the cap: one overflow template per token count.
            let over = vec![OVERFLOW.to_string(); toks.len().max(1)];
            let key = tree::route(&over);
            match self.leaves.get(&key).and_then(|v| v.first()) {
                Some(&i) => i,
                None => {
                    self.dirty = true;
                    self.insert(Cluster {
                        id: id_of(&over),
                        tokens: over,
                    })
                }
            }
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
        assert_eq!(c.template, "Received block blk_<*> of size <*> from <*>");
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
    fn long_messages_that_differ_in_several_words_are_other_events() {
        let mut m = Miner::default();
        let a = m.add(
            "h:80 error : Could not connect to proxy p:5070 - Could not resolve p error 11001",
        );
        let b = m.add("h:443 error : Could not connect to proxy p:5070 - connection attempt failed with error 10061");
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn variables_may_span_several_tokens() {
        let mut m = Miner::default();
        let a = m.add("h:80 close, 0 bytes sent, 0 bytes received, lifetime 00:01");
        let b = m.add("h:80 close, 1394 bytes (1.36 KB) sent, 0 bytes received, lifetime <1 sec");
        assert_eq!(a.id, b.id);
        assert_eq!(
            b.template,
            "h:<*> close, <*> bytes sent, <*> bytes received, lifetime <*>"
        );
        let c = m.add("h:80 close, 1394 bytes (1.36 KB) sent, 0 bytes received, idle 00:01");
        assert_ne!(c.id, a.id);
    }

    #[test]
    fn names_opening_a_message_do_not_split_it() {
        let mut m = Miner::default();
        let a =
            m.add("com.apple.a.daily: told me to run this job; start time isn't for 21 seconds");
        let b =
            m.add("com.apple.b.weekly: told me to run this job; start time isn't for 9 seconds");
        assert_eq!(a.id, b.id);
    }

    #[test]
    fn a_restored_miner_gives_the_same_ids() {
        let mut m = Miner::default();
        let first = m.add("Connection from 10.0.0.1 closed");
        let widened = m.add("a b c 1 bytes sent");
        let mut again = Miner::restore(m.snapshot());
        assert_eq!(again.add("Connection from 10.9.9.9 closed").id, first.id);
        assert_eq!(again.add("a b c 1 bytes (2 KB) sent").id, widened.id);
        assert!(m.take_dirty() && !m.take_dirty());
    }

    #[test]
    fn a_message_seen_before_follows_an_older_template_that_widened_to_it() {
        let mut m = Miner::default();
        let older = m.add("alpha beta gamma delta epsilon").id;
        // Two words apart from the older template: a template of its own.
        let s = "alpha beta zeta eta epsilon";
        let own = m.add(s).id;
        assert_ne!(own, older);
        assert_eq!(m.add(s).id, own);
        // The older template widens at both words (a tie goes to the
        // oldest), and then agrees with `s` as fully as `s`'s own does.
        assert_eq!(m.add("alpha beta zeta delta epsilon").id, older);
        let widened = m.add("alpha beta theta eta epsilon");
        assert_eq!(widened.id, older);
        assert_eq!(widened.template, "alpha beta <*> <*> epsilon");
        assert_eq!(m.add(s).id, older);
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
        assert_eq!(m.add("another unseen shape there").id, over.id);
    }
}
