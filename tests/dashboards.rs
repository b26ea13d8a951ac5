//! The Kibana saved objects in `dashboards/`: every reference resolves to
//! an object in the file, and every field a data view or a visualization
//! uses exists in the index templates Farol installs.

use farol_indexer::elasticsearch::templates::IndexKind;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

fn objects() -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("dashboards/") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("ndjson") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            out.push(
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1)),
            );
        }
    }
    out
}

/// The mapped fields of the index (pattern) a data view's title names.
fn fields_of(title: &str) -> HashSet<String> {
    let kind = IndexKind::ALL
        .into_iter()
        .find(|k| k.pattern("farol") == title)
        .unwrap_or_else(|| panic!("data view '{title}' matches no Farol index"));
    kind.mappings()["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .cloned()
        .collect()
}

/// Field names a KQL query mentions (`field : value`).
fn kql_fields(q: &str) -> Vec<String> {
    let re = regex::Regex::new(r"([A-Za-z_@][A-Za-z0-9_.@]*)\s*:").expect("regex");
    re.captures_iter(q).map(|c| c[1].to_string()).collect()
}

#[test]
fn references_resolve_and_fields_exist_in_the_templates() {
    let objs = objects();
    let mut by_key: HashMap<(String, String), &Value> = HashMap::new();
    for o in &objs {
        let key = (
            o["type"].as_str().expect("type").to_string(),
            o["id"].as_str().expect("id").to_string(),
        );
        assert!(by_key.insert(key.clone(), o).is_none(), "duplicate {key:?}");
    }
    let kinds: HashSet<&str> = objs.iter().filter_map(|o| o["type"].as_str()).collect();
    for want in ["index-pattern", "lens", "dashboard"] {
        assert!(kinds.contains(want), "no {want} object");
    }
    let mut views: HashMap<String, HashSet<String>> = HashMap::new();
    for o in objs.iter().filter(|o| o["type"] == "index-pattern") {
        let title = o["attributes"]["title"].as_str().expect("title");
        let fields = fields_of(title);
        let tf = o["attributes"]["timeFieldName"]
            .as_str()
            .expect("time field");
        assert!(fields.contains(tf), "{title}: time field {tf}");
        views.insert(o["id"].as_str().unwrap().to_string(), fields);
    }
    for o in &objs {
        let id = o["id"].as_str().unwrap();
        let refs = o["references"].as_array().expect("references");
        for r in refs {
            let key = (
                r["type"].as_str().expect("ref type").to_string(),
                r["id"].as_str().expect("ref id").to_string(),
            );
            assert!(
                by_key.contains_key(&key),
                "{id}: reference {key:?} resolves"
            );
        }
        let ref_named = |name: &str| {
            refs.iter()
                .find(|r| r["name"] == name)
                .unwrap_or_else(|| panic!("{id}: no reference named {name}"))
        };
        match o["type"].as_str() {
            Some("lens") => {
                let state = &o["attributes"]["state"];
                let query = state["query"]["query"].as_str().unwrap_or("");
                let layers = state["datasourceStates"]["formBased"]["layers"]
                    .as_object()
                    .expect("layers");
                assert!(!layers.is_empty(), "{id}: no layer");
                for (layer, l) in layers {
                    let r = ref_named(&format!("indexpattern-datasource-layer-{layer}"));
                    let fields = &views[r["id"].as_str().unwrap()];
                    for (cid, c) in l["columns"].as_object().expect("columns") {
                        let f = c["sourceField"].as_str().expect("sourceField");
                        assert!(
                            f == "___records___" || fields.contains(f),
                            "{id}: column {cid} uses field '{f}' absent from the template"
                        );
                    }
                    for f in kql_fields(query) {
                        assert!(fields.contains(&f), "{id}: query uses field '{f}'");
                    }
                }
                for vl in state["visualization"]["layers"]
                    .as_array()
                    .expect("vis layers")
                {
                    let layer = vl["layerId"].as_str().expect("layerId");
                    let cols = &layers[layer]["columns"];
                    for acc in vl["accessors"].as_array().into_iter().flatten() {
                        assert!(
                            cols.get(acc.as_str().unwrap()).is_some(),
                            "{id}: accessor {acc}"
                        );
                    }
                    for a in ["xAccessor", "splitAccessor"] {
                        if let Some(c) = vl[a].as_str() {
                            assert!(cols.get(c).is_some(), "{id}: {a} {c}");
                        }
                    }
                }
            }
            Some("dashboard") => {
                let panels: Vec<Value> = serde_json::from_str(
                    o["attributes"]["panelsJSON"].as_str().expect("panelsJSON"),
                )
                .expect("panels parse");
                assert!(panels.len() >= 4, "{id}: every visualization on it");
                for p in panels {
                    ref_named(p["panelRefName"].as_str().expect("panelRefName"));
                }
            }
            _ => {}
        }
    }
}
