//! Turning configuration and CLI flags into sources: `--logs`/`--posts`
//! files become one source each (named after the file stem), and the demo
//! installs the bundled sample data under the data dir.

use farol_common::config::{
    Config, FeedConfig, FormatSpec, LogSourceConfig, Platform, PostsSourceConfig, ReadFrom,
};
use farol_ingest::feed::replay::{posts_from_bodies, Replay};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

/// The bundled redistributable access log (Apache-2.0, see samples/SOURCES.md).
const DEMO_ACCESS_LOG: &[u8] = include_bytes!("../samples/access.log");
/// Recorded Mastodon public-timeline responses (MIT, see samples/SOURCES.md).
const DEMO_TIMELINES: &str = include_str!("../samples/mastodon_public.bodies.json");
/// Real Mastodon statuses (MIT, see samples/SOURCES.md).
const DEMO_STATUSES: &str = include_str!("../samples/mastodon_social.jsonl");

/// Source name for a path: its file stem (`BGL_2k.log` → `BGL_2k`).
pub fn stem_name(path: &str) -> String {
    let stem = Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string());
    let clean: String = stem
        .chars()
        .map(|c| {
            if c == '*' || c == '?' || c == '[' || c == ']' {
                '_'
            } else {
                c
            }
        })
        .collect();
    if clean.is_empty() {
        "files".into()
    } else {
        clean
    }
}

/// Expands globs into `(source name, path)` pairs: one per matching file; a
/// glob that matches nothing yet is kept whole so files appearing later are found.
fn expand(patterns: &[String], taken: &mut HashSet<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for pat in patterns {
        let matches: Vec<String> = glob::glob(pat)
            .map(|paths| {
                paths
                    .flatten()
                    .filter(|p| p.is_file())
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let items = if matches.is_empty() {
            vec![pat.clone()]
        } else {
            matches
        };
        for path in items {
            let base = stem_name(&path);
            let mut name = base.clone();
            let mut n = 2;
            while !taken.insert(name.clone()) {
                name = format!("{base}-{n}");
                n += 1;
            }
            out.push((name, path));
        }
    }
    out
}

/// Adds `--logs` and `--posts` files to the config as sources.
pub fn add_cli_sources(cfg: &mut Config, logs: &[String], posts: &[String]) {
    let mut taken: HashSet<String> = cfg
        .logs
        .iter()
        .map(|l| l.name.clone())
        .chain(cfg.posts.iter().map(|p| p.name.clone()))
        .chain(cfg.feeds.iter().map(|f| f.name.clone()))
        .collect();
    for (name, path) in expand(logs, &mut taken) {
        cfg.logs.push(LogSourceConfig {
            name,
            paths: vec![path],
            exclude: vec![],
            format: FormatSpec::default(),
            read_from: ReadFrom::Beginning,
            max_line_bytes: 1024 * 1024,
            multiline: None,
        });
    }
    for (name, path) in expand(posts, &mut taken) {
        cfg.posts.push(PostsSourceConfig {
            name,
            paths: vec![path],
            exclude: vec![],
            read_from: ReadFrom::Beginning,
        });
    }
}

/// Writes the bundled access log under `<data_dir>/demo` (once) and points
/// the config at it.
pub fn install_demo(cfg: &mut Config) -> std::io::Result<()> {
    let dir = cfg.data_dir.join("demo");
    std::fs::create_dir_all(&dir)?;
    let access = dir.join("access.log");
    if !access.exists() {
        std::fs::write(&access, DEMO_ACCESS_LOG)?;
    }
    add_cli_sources(cfg, &[access.to_string_lossy().into_owned()], &[]);
    Ok(())
}

/// Serves the bundled Mastodon recordings on a local endpoint, revealing a
/// few more statuses every few seconds as a live timeline would, and adds a
/// feed polling it.
pub async fn start_demo_feed(cfg: &mut Config) -> anyhow::Result<Replay> {
    let mut statuses = posts_from_bodies(DEMO_TIMELINES)?;
    for line in DEMO_STATUSES.lines().filter(|l| !l.trim().is_empty()) {
        statuses.push(serde_json::from_str(line)?);
    }
    let total = statuses.len();
    let replay = Replay::start(statuses, vec![]).await?;
    replay.set_visible(Some(10));
    let inner = replay.handle();
    tokio::spawn(async move {
        let mut n = 10;
        while n < total {
            tokio::time::sleep(Duration::from_secs(3)).await;
            n += 8;
            inner.set_visible(Some(n));
        }
    });
    cfg.feeds.push(FeedConfig {
        name: "mastodon".into(),
        platform: Platform::Mastodon,
        url: replay.url(),
        timeline: Some("public".into()),
        query: None,
        interval: Duration::from_secs(2),
        token_env: None,
    });
    Ok(replay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_file_stems_and_stay_unique() {
        assert_eq!(stem_name("/x/BGL_2k.log"), "BGL_2k");
        let mut taken = HashSet::new();
        let got = expand(&["/nope/a.log".into(), "/other/a.log".into()], &mut taken);
        assert_eq!(got[0].0, "a");
        assert_eq!(got[1].0, "a-2");
    }
}
