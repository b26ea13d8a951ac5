//! `/search` on the embedded index: the user's query text, bounded and
//! checked before parsing, restricted to the searchable fields, newest
//! events first and at most [`MAX_SEARCH_BYTES`] of them.

use super::Inner;
use crate::params::check_query_text;
use crate::query::{SearchHits, SearchQuery, MAX_SEARCH_BYTES};
use crate::IndexError;
use std::ops::Bound;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::query_grammar::{UserInputAst, UserInputLeaf};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{Order, TantivyDocument, Term};

impl Inner {
    pub(super) fn search(&self, q: &SearchQuery) -> Result<SearchHits, IndexError> {
        let f = self.f;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if !q.q.trim().is_empty() {
            clauses.push((Occur::Must, self.user_query(&q.q)?));
        } else {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        let term = |t: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(f.doc_type, t),
                IndexRecordOption::Basic,
            ))
        };
        match q.kind.as_deref() {
            Some(k) => clauses.push((Occur::Must, term(k))),
            None => clauses.push((
                Occur::Must,
                Box::new(BooleanQuery::new(vec![
                    (Occur::Should, term("log")),
                    (Occur::Should, term("post")),
                ])),
            )),
        }
        if let Some(t) = &q.template_id {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.key, t),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if q.from.is_some() || q.to.is_some() {
            let lo = q.from.map_or(Bound::Unbounded, |v| {
                Bound::Included(Term::from_field_i64(f.ts, v))
            });
            let hi = q.to.map_or(Bound::Unbounded, |v| {
                Bound::Excluded(Term::from_field_i64(f.ts, v))
            });
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(q.limit.max(1)).order_by_fast_field::<i64>("ts", Order::Desc);
        let (total, top_hits) = searcher.search(&query, &(Count, top))?;
        let mut out = SearchHits {
            total: total as u64,
            ..SearchHits::default()
        };
        let mut bytes = 0usize;
        for (_, addr) in top_hits {
            let d: TantivyDocument = searcher.doc(addr)?;
            if let Some(body) = d.get_first(f.body).and_then(|v| v.as_str()) {
                bytes += body.len();
                if bytes > MAX_SEARCH_BYTES {
                    out.truncated = true;
                    break;
                }
                if let Ok(v) = serde_json::from_str(body) {
                    out.hits.push(v);
                }
            }
        }
        Ok(out)
    }

    /// The user's query text as a tantivy query: bounded before parsing,
    /// parsed strictly (a syntax error is the user's to fix, not something
    /// to guess around), and limited to the fields worth searching.
    fn user_query(&self, text: &str) -> Result<Box<dyn Query>, IndexError> {
        check_query_text(text).map_err(IndexError::Query)?;
        let ast = tantivy::query_grammar::parse_query(text).map_err(|_| {
            IndexError::Query(
                "is not a valid query (check quotes, parentheses and ranges; \\ escapes a special character)"
                    .into(),
            )
        })?;
        check_fields(&ast).map_err(IndexError::Query)?;
        self.parser
            .build_query_from_user_input_ast(ast)
            .map_err(|e| IndexError::Query(e.to_string()))
    }
}

/// Fields a search text may name (`class:ERROR`); the rest of the schema
/// is internal.
const SEARCHABLE: &[&str] = &["text", "tags", "class", "source"];

fn check_fields(ast: &UserInputAst) -> Result<(), String> {
    let field_ok = |name: &Option<String>| match name {
        Some(n) if !SEARCHABLE.contains(&n.as_str()) => Err(format!(
            "unknown field '{}' (searchable: {}; put text containing ':' in double quotes)",
            crate::params::echo(n),
            SEARCHABLE.join(", ")
        )),
        _ => Ok(()),
    };
    match ast {
        UserInputAst::Clause(cs) => cs.iter().try_for_each(|(_, c)| check_fields(c)),
        UserInputAst::Boost(inner, _) => check_fields(inner),
        UserInputAst::Leaf(leaf) => match leaf.as_ref() {
            UserInputLeaf::Literal(l) => field_ok(&l.field_name),
            UserInputLeaf::All => Ok(()),
            UserInputLeaf::Range { field, .. } | UserInputLeaf::Set { field, .. } => {
                field_ok(field)
            }
            UserInputLeaf::Exists { field } => Err(format!(
                "'{}:*' (field exists) is not supported",
                crate::params::echo(field)
            )),
            UserInputLeaf::Regex { .. } => Err("regular expressions are not supported".into()),
        },
    }
}
