//! The `/search` query text, answered by Elasticsearch the way the embedded
//! index answers it: parsed with the same grammar (tantivy's), every term
//! required unless `OR` says otherwise, the same field names allowed
//! (`text`, `tags`, `class`, `source`) and the same errors for the rest,
//! then translated into the query DSL over Farol's mappings: `text` (and
//! no field) is the log message, the post text or the dead letter's raw
//! record; `tags` the hashtags; `class` the log class (a dead letter's
//! reason); `source` the source.

use serde_json::{json, Value};
use tantivy::query_grammar::{
    parse_query, Delimiter, Occur, UserInputAst, UserInputBound, UserInputLeaf, UserInputLiteral,
};

/// Fields a search text may name, as in the embedded index.
const SEARCHABLE: &[&str] = &["text", "tags", "class", "source"];
/// The mapped fields of `text`.
const TEXT_FIELDS: &[&str] = &["message", "text", "raw"];

/// The message of a text that does not parse.
const INVALID: &str =
    "is not a valid query (check quotes, parentheses and ranges; \\ escapes a special character)";

/// The query DSL for a (non-empty, size-checked) search text.
pub fn to_dsl(text: &str) -> Result<Value, String> {
    let ast = parse_query(text).map_err(|_| INVALID.to_string())?;
    node(&ast)
}

fn field_ok(name: &Option<String>) -> Result<(), String> {
    match name {
        Some(n) if !SEARCHABLE.contains(&n.as_str()) => Err(format!(
            "unknown field '{}' (searchable: {}; put text containing ':' in double quotes)",
            crate::params::echo(n),
            SEARCHABLE.join(", ")
        )),
        _ => Ok(()),
    }
}

/// The keyword fields a field name stands for (none for `text`).
fn keyword_fields(name: &str) -> &'static [&'static str] {
    match name {
        "tags" => &["hashtags"],
        "class" => &["class", "reason"],
        "source" => &["source"],
        _ => &[],
    }
}

fn any_of(mut qs: Vec<Value>) -> Value {
    if qs.len() == 1 {
        return qs.remove(0);
    }
    json!({"bool": {"should": qs, "minimum_should_match": 1}})
}

fn node(ast: &UserInputAst) -> Result<Value, String> {
    match ast {
        UserInputAst::Clause(cs) => {
            let (mut must, mut should, mut not) = (vec![], vec![], vec![]);
            for (occur, c) in cs {
                let q = node(c)?;
                match occur {
                    // Every term is required by default (grep-like).
                    None | Some(Occur::Must) => must.push(q),
                    Some(Occur::Should) => should.push(q),
                    Some(Occur::MustNot) => not.push(q),
                }
            }
            let mut b = json!({"must": must, "must_not": not});
            if !should.is_empty() {
                b["should"] = should.into();
                if b["must"].as_array().is_some_and(Vec::is_empty) {
                    b["minimum_should_match"] = 1.into();
                }
            }
            Ok(json!({ "bool": b }))
        }
        UserInputAst::Boost(inner, _) => node(inner),
        UserInputAst::Leaf(leaf) => match leaf.as_ref() {
            UserInputLeaf::Literal(l) => {
                field_ok(&l.field_name)?;
                Ok(literal(l))
            }
            UserInputLeaf::All => Ok(json!({"match_all": {}})),
            UserInputLeaf::Range {
                field,
                lower,
                upper,
            } => {
                field_ok(field)?;
                let r: serde_json::Map<String, Value> =
                    [bound(lower, "gte", "gt"), bound(upper, "lte", "lt")]
                        .into_iter()
                        .flatten()
                        .collect();
                let fields = match field.as_deref() {
                    Some(f) if !keyword_fields(f).is_empty() => keyword_fields(f),
                    _ => TEXT_FIELDS,
                };
                Ok(any_of(
                    fields
                        .iter()
                        .map(|f| json!({"range": { *f: r.clone() }}))
                        .collect(),
                ))
            }
            UserInputLeaf::Set { field, elements } => {
                field_ok(field)?;
                let qs: Vec<Value> = elements
                    .iter()
                    .map(|e| {
                        literal(&UserInputLiteral {
                            field_name: field.clone(),
                            phrase: e.clone(),
                            delimiter: Delimiter::None,
                            slop: 0,
                            prefix: false,
                        })
                    })
                    .collect();
                Ok(json!({"bool": {"should": qs, "minimum_should_match": 1}}))
            }
            UserInputLeaf::Exists { field } => Err(format!(
                "'{}:*' (field exists) is not supported",
                crate::params::echo(field)
            )),
            UserInputLeaf::Regex { .. } => Err("regular expressions are not supported".into()),
        },
    }
}

/// One end of a range, under its DSL key.
fn bound(b: &UserInputBound, inclusive: &str, exclusive: &str) -> Option<(String, Value)> {
    match b {
        UserInputBound::Inclusive(v) => Some((inclusive.into(), v.clone().into())),
        UserInputBound::Exclusive(v) => Some((exclusive.into(), v.clone().into())),
        UserInputBound::Unbounded => None,
    }
}

/// A word or phrase: analysed text for `text`, an exact value for the
/// keyword fields (a prefix with `*`).
fn literal(l: &UserInputLiteral) -> Value {
    let keywords = l.field_name.as_deref().map(keyword_fields).unwrap_or(&[]);
    if !keywords.is_empty() {
        return any_of(
            keywords
                .iter()
                .map(|f| {
                    if l.prefix {
                        json!({"prefix": { *f: l.phrase }})
                    } else {
                        json!({"term": { *f: l.phrase }})
                    }
                })
                .collect(),
        );
    }
    let kind = if l.prefix { "phrase_prefix" } else { "phrase" };
    json!({"multi_match": {
        "query": l.phrase,
        "fields": TEXT_FIELDS,
        "type": kind,
        "slop": l.slop,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_all_required_and_fields_map_to_the_mappings() {
        let q = to_dsl("timeout tags:rust").expect("parses");
        let must = q["bool"]["must"].as_array().expect("must");
        assert_eq!(must.len(), 2);
        assert_eq!(must[0]["multi_match"]["query"], "timeout");
        assert_eq!(must[0]["multi_match"]["fields"], json!(TEXT_FIELDS));
        assert_eq!(must[1], json!({"term": {"hashtags": "rust"}}));
        let q = to_dsl("class:ERROR OR source:web").expect("parses");
        assert_eq!(q["bool"]["minimum_should_match"], 1);
        assert_eq!(q["bool"]["should"].as_array().map(Vec::len), Some(2));
        let q = to_dsl("-\"disk full\"").expect("parses");
        assert_eq!(q["bool"]["must_not"][0]["multi_match"]["type"], "phrase");
    }

    #[test]
    fn the_embedded_index_errors_are_kept() {
        let e = to_dsl("author:bob").expect_err("unknown field");
        assert!(e.starts_with("unknown field 'author'"), "{e}");
        assert_eq!(to_dsl("\"open").expect_err("bad"), INVALID);
        assert!(to_dsl("class:*")
            .expect_err("exists")
            .contains("not supported"));
    }
}
