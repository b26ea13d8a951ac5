//! Static checks of the compose stack (`compose.yaml`, `docker/Dockerfile`,
//! `.env.example`). No Docker engine runs where Farol is developed, so what
//! `docker compose up` would find out is checked here instead: the file
//! against the Compose Specification's JSON schema and (when installed by
//! `scripts/install-compose.sh`) by Docker Compose itself; every name it
//! uses defined; the ordering of health checks; and every `FAROL_*`
//! variable loaded through Farol's real configuration loader.

mod compose_support;

use compose_support as cs;
use farol_common::config;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

fn schema() -> Value {
    let text = std::fs::read_to_string(cs::root().join("tests/fixtures/compose-spec.json"))
        .expect("tests/fixtures/compose-spec.json");
    serde_json::from_str(&text).expect("schema is JSON")
}

fn schema_errors(doc: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(&schema()).expect("the schema compiles");
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn compose_file_validates_against_the_compose_specification_schema() {
    let raw = cs::raw();
    let errs = schema_errors(&raw);
    assert!(errs.is_empty(), "compose.yaml as written: {errs:#?}");
    // Resolved with the defaults and with the example settings, too.
    let example = cs::dotenv(&cs::root().join(".env.example"));
    for vars in [BTreeMap::new(), example] {
        let errs = schema_errors(&cs::resolve(&raw, &vars));
        assert!(errs.is_empty(), "compose.yaml resolved: {errs:#?}");
    }
}

#[test]
fn the_schema_check_rejects_what_compose_rejects() {
    // The validator is not vacuous: an unknown service key, a depends_on
    // condition that does not exist and ports given as one string all fail.
    let mut doc = cs::resolved_with_defaults();
    doc["services"]["serve"]["helthcheck"] = serde_json::json!({});
    assert!(!schema_errors(&doc).is_empty());
    let mut doc = cs::resolved_with_defaults();
    doc["services"]["serve"]["depends_on"]["kafka-topics"]["condition"] =
        Value::from("service_ready");
    assert!(!schema_errors(&doc).is_empty());
    let mut doc = cs::resolved_with_defaults();
    doc["services"]["serve"]["ports"] = Value::from("127.0.0.1:8080:8080");
    assert!(!schema_errors(&doc).is_empty());
}

/// The Docker Compose binary `scripts/install-compose.sh` installs.
fn compose_bin() -> Option<PathBuf> {
    let bin = std::env::var_os("FAROL_COMPOSE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| cs::root().join(".venv-compose/docker-compose"));
    if bin.is_file() {
        Some(bin)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (scripts/install-compose.sh installs it)",
            bin.display()
        );
        None
    }
}

fn docker_compose(bin: &PathBuf, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(bin)
        .current_dir(cs::root())
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().copied())
        .args(["--project-directory", ".", "-f", "compose.yaml"])
        .args(args)
        .output()
        .expect("docker-compose runs")
}

#[test]
fn docker_compose_itself_accepts_the_file() {
    let Some(bin) = compose_bin() else { return };
    // --env-file points at the example so that a developer's own .env
    // does not change what is checked.
    for env_file in ["/dev/null", ".env.example"] {
        for profile in [&[][..], &["--profile", "demo"][..]] {
            let mut args = vec!["--env-file", env_file];
            args.extend_from_slice(profile);
            args.extend(["config", "--quiet"]);
            let out = docker_compose(&bin, &[], &args);
            assert!(
                out.status.success(),
                "docker-compose {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // What it resolves is what these tests resolve.
    let out = docker_compose(
        &bin,
        &[],
        &[
            "--env-file",
            "/dev/null",
            "--profile",
            "demo",
            "config",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success());
    let theirs: Value = serde_json::from_slice(&out.stdout).expect("json");
    let ours = cs::resolved_with_defaults();
    for name in cs::services(&ours).keys() {
        assert_eq!(
            cs::environment(&theirs["services"][name]),
            cs::environment(&ours["services"][name]),
            "environment of {name}"
        );
    }
    let theirs_names: BTreeSet<&String> = cs::services(&theirs).keys().collect();
    let ours_names: BTreeSet<&String> = cs::services(&ours).keys().collect();
    assert_eq!(theirs_names, ours_names);
    // The schema vendored in tests/fixtures is the one that binary embeds.
    let binary = std::fs::read(&bin).unwrap();
    let vendored = std::fs::read(cs::root().join("tests/fixtures/compose-spec.json")).unwrap();
    assert!(
        binary.windows(vendored.len()).any(|w| w == vendored),
        "tests/fixtures/compose-spec.json is not the schema inside {}",
        bin.display()
    );
}

/// Images and the evidence that each tag is published (checked by hand:
/// no registry is reachable from these machines).
const PINNED_IMAGES: &[(&str, &str)] = &[
    (
        "apache/kafka:3.9.1",
        "Apache Kafka 3.9.1 (2025-05), the official image, KRaft",
    ),
    (
        "docker.elastic.co/elasticsearch/elasticsearch:8.19.10",
        "Elasticsearch 8.19.10 release notes",
    ),
    (
        "docker.elastic.co/kibana/kibana:8.19.10",
        "Kibana 8.19.10, released with Elasticsearch 8.19.10",
    ),
];

#[test]
fn every_image_is_pinned_and_every_name_is_defined() {
    let doc = cs::resolved_with_defaults();
    let services = cs::services(&doc);
    let declared_volumes: BTreeSet<String> = doc["volumes"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let mut used_volumes = BTreeSet::new();
    for (name, s) in services {
        let image = s["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no image"));
        let (repo, tag) = image
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("{name}: image {image} has no tag"));
        assert!(
            !tag.is_empty() && tag != "latest" && !repo.is_empty(),
            "{name}: {image} is not pinned"
        );
        if repo == "farol" {
            assert_eq!(
                s["build"]["dockerfile"], "docker/Dockerfile",
                "{name} builds the farol image"
            );
            assert_eq!(s["build"]["context"], ".", "{name}: build context");
            let version = toml_version();
            assert_eq!(tag, version, "{name}: farol image tag = Cargo version");
        } else {
            assert!(
                PINNED_IMAGES.iter().any(|(i, _)| *i == image),
                "{name}: {image} is not in PINNED_IMAGES"
            );
        }
        if let Some(deps) = s["depends_on"].as_object() {
            for dep in deps.keys() {
                assert!(
                    services.contains_key(dep),
                    "{name} depends on unknown {dep}"
                );
            }
        }
        for v in s["volumes"].as_array().into_iter().flatten() {
            let spec = v.as_str().expect("short volume syntax");
            let source = spec.split(':').next().unwrap();
            if source.starts_with('.') || source.starts_with('/') {
                // A bind mount of the repository: it must exist (the log
                // directory is created by Compose when missing, but ./logs
                // is kept in the repository).
                let path = cs::root().join(source);
                assert!(path.exists(), "{name}: bind mount {source} does not exist");
            } else {
                assert!(
                    declared_volumes.contains(source),
                    "{name}: volume {source} is not declared"
                );
                used_volumes.insert(source.to_string());
            }
        }
    }
    assert_eq!(
        used_volumes, declared_volumes,
        "declared volumes nobody uses"
    );
    // Kibana and the Elasticsearch it talks to are the same version.
    let version_of = |svc: &str| {
        services[svc]["image"]
            .as_str()
            .unwrap()
            .rsplit_once(':')
            .unwrap()
            .1
            .to_string()
    };
    assert_eq!(version_of("kibana"), version_of("elasticsearch"));
    assert_eq!(version_of("kafka-topics"), version_of("kafka"));
}

fn toml_version() -> String {
    let text = std::fs::read_to_string(cs::root().join("Cargo.toml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("version = "))
        .expect("workspace version");
    line.trim_start_matches("version = ")
        .trim_matches('"')
        .to_string()
}

#[test]
fn every_variable_has_a_default_and_is_in_env_example() {
    let raw = cs::raw();
    let mut found = Vec::new();
    cs::strings(&raw, "", &mut found);
    let example = cs::dotenv(&cs::root().join(".env.example"));
    let mut used = BTreeSet::new();
    for (path, s) in &found {
        for u in cs::uses(s) {
            assert!(
                u.op == ":-",
                "{path}: ${{{}}} has no default (plain `docker compose up` needs none)",
                u.name
            );
            assert!(
                example.contains_key(&u.name),
                "{path}: {} is not in .env.example",
                u.name
            );
            used.insert(u.name.clone());
        }
    }
    let listed: BTreeSet<String> = example.keys().cloned().collect();
    assert_eq!(
        listed, used,
        ".env.example lists variables compose.yaml never uses"
    );
    // The example's values are the defaults, so copying it changes nothing.
    let with_defaults = cs::resolved_with_defaults();
    let with_example = cs::resolve(&raw, &example);
    assert_eq!(with_defaults, with_example);
    // And a value set in the environment does replace the default.
    let custom = BTreeMap::from([("FAROL_API_PORT".to_string(), "18080".to_string())]);
    let doc = cs::resolve(&raw, &custom);
    assert_eq!(doc["services"]["serve"]["ports"][0], "127.0.0.1:18080:8080");
}

#[test]
fn published_ports_bind_loopback_only() {
    let doc = cs::resolved_with_defaults();
    let mut published = BTreeMap::new();
    for (name, s) in cs::services(&doc) {
        for p in s["ports"].as_array().into_iter().flatten() {
            let p = p.as_str().expect("short port syntax");
            assert!(
                p.starts_with("127.0.0.1:"),
                "{name}: {p} is not bound to 127.0.0.1"
            );
            published.insert(name.clone(), p.to_string());
        }
    }
    let expect: BTreeMap<String, String> = [
        ("serve", "127.0.0.1:8080:8080"),
        ("kibana", "127.0.0.1:5601:5601"),
        ("elasticsearch", "127.0.0.1:9200:9200"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(published, expect);
}

/// Serializes the one test that sets process environment variables.
static ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Loads the config through `farol_common::config::load` with exactly `env`
/// set (and every other `FAROL_*` variable of this process removed).
fn load_with(env: &BTreeMap<String, String>) -> Result<config::Config, Vec<config::ConfigError>> {
    let _guard = ENV_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let saved: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("FAROL_") || env.contains_key(k))
        .collect();
    for (k, _) in &saved {
        std::env::remove_var(k);
    }
    for (k, v) in env {
        std::env::set_var(k, v);
    }
    let cfg = config::load(None);
    for k in env.keys() {
        std::env::remove_var(k);
    }
    for (k, v) in saved {
        std::env::set_var(k, v);
    }
    cfg
}

/// The dotted key a `FAROL_*` variable sets (`FAROL_KAFKA__BROKERS` → kafka.brokers).
fn key_of(var: &str) -> Vec<String> {
    var.trim_start_matches("FAROL_")
        .split("__")
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

#[test]
fn every_farol_variable_is_a_real_config_key_and_the_config_validates() {
    let raw = cs::raw();
    let example = cs::dotenv(&cs::root().join(".env.example"));
    // The feed the example shows in a comment, switched on.
    let mut with_feed = example.clone();
    with_feed.insert(
        "FAROL_FEEDS".into(),
        r#"[{name="rust",platform="mastodon",url="https://mastodon.social",timeline="tag/rust",interval="30s",token_env="MASTODON_TOKEN"}]"#.into(),
    );
    for vars in [BTreeMap::new(), example, with_feed.clone()] {
        let doc = cs::resolve(&raw, &vars);
        let farol = cs::farol_services(&doc);
        assert_eq!(
            farol.iter().map(String::as_str).collect::<BTreeSet<_>>(),
            BTreeSet::from([
                "ingest",
                "process",
                "index",
                "serve",
                "demo-feed",
                "demo-ingest"
            ])
        );
        for name in &farol {
            let env = cs::environment(&cs::services(&doc)[name]);
            if name == "demo-feed" {
                // Runs the feeder script, not farol: no FAROL_ config keys.
                assert!(env.keys().all(|k| k.starts_with("FAROL_DEMO_")));
                continue;
            }
            let cfg = load_with(&env).unwrap_or_else(|errs| {
                panic!("{name}: the compose environment does not load: {errs:?}")
            });
            let tree = serde_json::to_value(&cfg).unwrap();
            for var in env.keys().filter(|k| k.starts_with("FAROL_")) {
                let mut node = &tree;
                for part in key_of(var) {
                    node = node.get(&part).unwrap_or_else(|| {
                        panic!("{name}: {var} names no config key ({part} missing)")
                    });
                }
            }
            // Exactly what the stack means, read back from the loaded config.
            let k = cfg
                .kafka
                .as_ref()
                .expect("[kafka] from FAROL_KAFKA__BROKERS");
            assert_eq!(
                (k.brokers.as_str(), k.partitions),
                ("kafka:9092", 6),
                "{name}"
            );
            let es = cfg.elasticsearch.as_ref().expect("[elasticsearch]");
            assert_eq!(es.url, "http://elasticsearch:9200", "{name}");
            assert_eq!(es.username.as_deref(), Some("elastic"));
            assert_eq!(es.password_env.as_deref(), Some("ELASTIC_PASSWORD"));
            assert_eq!(env["ELASTIC_PASSWORD"], "farol-elastic-changeme");
            assert_eq!(cfg.api.listen, "0.0.0.0:8080");
            assert_eq!(cfg.data_dir, PathBuf::from("/var/lib/farol"));
            match name.as_str() {
                "ingest" => {
                    assert_eq!(cfg.logs.len(), 1);
                    assert_eq!(cfg.logs[0].name, "logs");
                    assert_eq!(cfg.logs[0].paths, ["/var/log/farol/*.log"]);
                    let feeds: Vec<&str> = cfg.feeds.iter().map(|f| f.name.as_str()).collect();
                    let want: Vec<&str> = if vars.get("FAROL_FEEDS") == with_feed.get("FAROL_FEEDS")
                    {
                        vec!["rust"]
                    } else {
                        vec![]
                    };
                    assert_eq!(feeds, want);
                    if let Some(f) = cfg.feeds.first() {
                        assert_eq!(f.timeline.as_deref(), Some("tag/rust"));
                        assert_eq!(f.token_env.as_deref(), Some("MASTODON_TOKEN"));
                        assert!(
                            env.contains_key("MASTODON_TOKEN"),
                            "the token is passed through"
                        );
                    }
                }
                _ => assert!(cfg.logs.is_empty() && cfg.feeds.is_empty(), "{name}"),
            }
        }
    }
}

#[test]
fn a_wrong_farol_variable_is_caught() {
    // The check above is not vacuous: a misspelt key under a section is
    // refused by the loader, a misspelt section is found by key_of.
    let mut env = cs::environment(&cs::resolved_with_defaults()["services"]["serve"]);
    env.insert("FAROL_KAFKA__BROKER".into(), "kafka:9092".into());
    assert!(load_with(&env).is_err());
    let tree = serde_json::to_value(config::Config::default()).unwrap();
    assert!(tree.get(&key_of("FAROL_KAKFA__BROKERS")[0]).is_none());
}

#[test]
fn the_farol_binary_accepts_each_service_environment() {
    // The real binary, with nothing but the service's environment.
    let doc = cs::resolved_with_defaults();
    let empty = tempfile::NamedTempFile::new().unwrap();
    for name in ["ingest", "process", "index", "serve", "demo-ingest"] {
        let env = cs::environment(&doc["services"][name]);
        let out = Command::new(env!("CARGO_BIN_EXE_farol"))
            .env_clear()
            .envs(&env)
            .arg("check-config")
            .arg(empty.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sources = if name == "ingest" {
            "1 log sources"
        } else {
            "0 log sources"
        };
        assert!(
            stdout.contains(&format!("ok ({sources}, 0 feeds, 0 post sources)")),
            "{name}: {stdout}"
        );
    }
}

#[test]
fn farol_services_run_the_subcommands_the_cli_has() {
    let doc = cs::resolved_with_defaults();
    let expect = [
        ("ingest", vec!["ingest"]),
        ("process", vec!["process"]),
        ("index", vec!["index"]),
        ("serve", vec!["serve"]),
        (
            "demo-ingest",
            vec![
                "ingest",
                "--logs",
                "/demo/access.log",
                "--posts",
                "/demo/mastodon_social.jsonl",
            ],
        ),
    ];
    for (name, cmd) in expect {
        assert_eq!(cs::command(&doc["services"][name]), cmd, "{name}");
    }
    // The processors scale: two by default, no fixed name or host port.
    let process = &doc["services"]["process"];
    assert_eq!(process["deploy"]["replicas"], 2);
    assert!(process.get("container_name").is_none() && process.get("ports").is_none());
    // ingest and serve exist in this build; process and index are checked
    // by tests/compose_topology.rs once they do.
    for sub in ["ingest", "serve"] {
        let ok = Command::new(env!("CARGO_BIN_EXE_farol"))
            .args([sub, "--help"])
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "farol {sub} --help");
    }
}

/// `depends_on` of a service: target → condition.
fn depends(doc: &Value, name: &str) -> BTreeMap<String, String> {
    doc["services"][name]["depends_on"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v["condition"].as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn health_checks_order_the_start() {
    let doc = cs::resolved_with_defaults();
    let services = cs::services(&doc);
    let one_shots: BTreeSet<&str> = services
        .iter()
        .filter(|(_, s)| s["restart"] == "no")
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        one_shots,
        BTreeSet::from(["kafka-topics", "kibana-setup", "dashboards"])
    );
    for (name, s) in services {
        if !one_shots.contains(name.as_str()) {
            assert!(
                s["healthcheck"]["test"].is_array(),
                "{name} has no health check"
            );
        }
        for (dep, cond) in depends(&doc, name) {
            match cond.as_str() {
                "service_healthy" => assert!(
                    services[&dep]["healthcheck"]["test"].is_array(),
                    "{name} waits for {dep} to be healthy, which has no health check"
                ),
                "service_completed_successfully" => assert!(
                    one_shots.contains(dep.as_str()),
                    "{name} waits for {dep} to complete, which is not a one-shot"
                ),
                other => panic!("{name} → {dep}: condition {other}: use a health check"),
            }
        }
    }
    let edges = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(depends(&doc, "kafka"), edges(&[]));
    assert_eq!(
        depends(&doc, "kafka-topics"),
        edges(&[("kafka", "service_healthy")])
    );
    assert_eq!(depends(&doc, "elasticsearch"), edges(&[]));
    assert_eq!(
        depends(&doc, "kibana-setup"),
        edges(&[("elasticsearch", "service_healthy")])
    );
    assert_eq!(
        depends(&doc, "kibana"),
        edges(&[("kibana-setup", "service_completed_successfully")])
    );
    assert_eq!(
        depends(&doc, "dashboards"),
        edges(&[("kibana", "service_healthy")])
    );
    let farol_deps = edges(&[
        ("kafka-topics", "service_completed_successfully"),
        ("elasticsearch", "service_healthy"),
    ]);
    for name in ["ingest", "process", "index", "serve"] {
        assert_eq!(depends(&doc, name), farol_deps, "{name}");
    }
    let mut demo = farol_deps.clone();
    demo.insert("demo-feed".into(), "service_healthy".into());
    assert_eq!(depends(&doc, "demo-ingest"), demo);
    // A start order exists (no cycle), and it is the documented one.
    let mut started: Vec<String> = Vec::new();
    while started.len() < services.len() {
        let next: Vec<String> = services
            .keys()
            .filter(|n| !started.contains(n))
            .filter(|n| depends(&doc, n).keys().all(|d| started.contains(d)))
            .cloned()
            .collect();
        assert!(!next.is_empty(), "depends_on has a cycle after {started:?}");
        started.extend(next);
    }
    // The farol health check asks /healthz on FAROL_API__LISTEN's port.
    for name in ["ingest", "process", "index", "serve", "demo-ingest"] {
        let s = &services[name];
        let listen = cs::environment(s)["FAROL_API__LISTEN"].clone();
        let port = listen.rsplit_once(':').unwrap().1;
        let test: Vec<&str> = s["healthcheck"]["test"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(test[0], "CMD");
        assert_eq!(
            test.last().copied(),
            Some(format!("http://127.0.0.1:{port}/healthz").as_str()),
            "{name}"
        );
    }
}

/// The shell script a one-shot runs (`entrypoint: [bash, -c]`, one command).
fn script(doc: &Value, name: &str) -> String {
    let s = &doc["services"][name];
    assert_eq!(
        s["entrypoint"],
        serde_json::json!(["/bin/bash", "-c"]),
        "{name}"
    );
    let cmd = cs::command(s);
    assert_eq!(cmd.len(), 1, "{name}: one script");
    cmd[0].clone()
}

#[test]
fn the_one_shots_call_the_right_endpoints() {
    let doc = cs::resolved_with_defaults();
    // Dashboards: every ndjson file, POSTed as the multipart field `file`
    // to Kibana's saved-objects import with the kbn-xsrf header.
    let dash = script(&doc, "dashboards");
    for needle in [
        "for file in /dashboards/*.ndjson",
        "-X POST",
        "-H 'kbn-xsrf: true'",
        "--form \"file=@$file\"",
        "'http://kibana:5601/api/saved_objects/_import?overwrite=true'",
        "grep -q '\"success\":true'",
    ] {
        assert!(dash.contains(needle), "dashboards: no {needle:?} in {dash}");
    }
    let vols = &doc["services"]["dashboards"]["volumes"];
    assert_eq!(vols, &serde_json::json!(["./dashboards:/dashboards:ro"]));
    assert!(std::fs::read_dir(cs::root().join("dashboards"))
        .unwrap()
        .any(|e| e.unwrap().path().extension().is_some_and(|x| x == "ndjson")));
    // kibana_system: set by the setup one-shot with the password Kibana uses.
    let setup = script(&doc, "kibana-setup");
    assert!(setup.contains("http://elasticsearch:9200/_security/user/kibana_system/_password"));
    assert!(
        setup.contains("\"{\\\"password\\\":\\\"$KIBANA_PASSWORD\\\"}\""),
        "{setup}"
    );
    let kib = cs::environment(&doc["services"]["kibana"]);
    let set = cs::environment(&doc["services"]["kibana-setup"]);
    assert_eq!(kib["ELASTICSEARCH_USERNAME"], "kibana_system");
    assert_eq!(kib["ELASTICSEARCH_PASSWORD"], set["KIBANA_PASSWORD"]);
    assert!(kib["XPACK_ENCRYPTEDSAVEDOBJECTS_ENCRYPTIONKEY"].len() >= 32);
    let es = cs::environment(&doc["services"]["elasticsearch"]);
    assert_eq!(es["xpack.security.enabled"], "true");
    assert_eq!(es["discovery.type"], "single-node");
    assert!(es["ELASTIC_PASSWORD"].len() >= 6);
    assert_eq!(set["ELASTIC_PASSWORD"], es["ELASTIC_PASSWORD"]);
    // Topics: the ones Farol's config names, plus the processor's internal ones.
    let topics = script(&doc, "kafka-topics");
    let defaults = config::parse_toml("[kafka]\nbrokers = \"kafka:9092\"\n").unwrap();
    let k = defaults.kafka.unwrap();
    for t in [
        k.logs_topic.as_str(),
        k.posts_topic.as_str(),
        k.deadletter_topic.as_str(),
        "farol.processed",
        "farol.processor-state --config cleanup.policy=compact",
    ] {
        assert!(
            topics.contains(&format!("create {t}\n")),
            "kafka-topics: no topic {t}"
        );
    }
    assert!(topics.contains("--partitions \"$PARTITIONS\""));
    assert_eq!(
        cs::environment(&doc["services"]["kafka-topics"])["PARTITIONS"],
        cs::environment(&doc["services"]["serve"])["FAROL_KAFKA__PARTITIONS"]
    );
    let kafka = cs::environment(&doc["services"]["kafka"]);
    assert_eq!(kafka["KAFKA_PROCESS_ROLES"], "broker,controller");
    assert_eq!(
        kafka["KAFKA_ADVERTISED_LISTENERS"],
        "PLAINTEXT://kafka:9092"
    );
    assert_eq!(kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"], "false");
}

fn dockerfile() -> String {
    std::fs::read_to_string(cs::root().join("docker/Dockerfile")).expect("docker/Dockerfile")
}

/// The `cargo build …` command in `text` (joined across `\` continuations).
fn cargo_build_command(text: &str) -> String {
    let joined = text.replace("\\\n", " ");
    let start = joined.find("cargo build").expect("a cargo build command");
    let rest = &joined[start..];
    let end = rest.find(['\n', '&', '`']).unwrap_or(rest.len());
    rest[..end].split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_dockerfile_builds_with_the_documented_release_command() {
    let df = dockerfile();
    let readme = std::fs::read_to_string(cs::root().join("README.md")).unwrap();
    let section = readme
        .split("### Building a release binary")
        .nth(1)
        .expect("README: ### Building a release binary");
    let documented = cargo_build_command(section);
    assert_eq!(documented, "cargo build --release --locked --bin farol");
    assert_eq!(cargo_build_command(&df), documented);
    // --locked needs the lock file in the build context.
    let ignore = std::fs::read_to_string(cs::root().join(".dockerignore")).unwrap();
    assert!(!ignore
        .lines()
        .any(|l| l.trim().trim_start_matches('/') == "Cargo.lock"));
    assert!(cs::root().join("Cargo.lock").is_file());
    // Multi-stage, small non-root runtime with a health check on /healthz.
    let froms: Vec<&str> = df.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[0].starts_with("FROM rust:") && froms[0].ends_with(" AS builder"));
    assert!(froms[1].starts_with("FROM debian:") && froms[1].contains("-slim"));
    assert!(df.contains("ARG DEBIAN_RELEASE=bookworm"));
    let user = df.lines().find(|l| l.starts_with("USER ")).expect("USER");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    assert!(df.contains("useradd --system --uid 10001"));
    let hc = df
        .replace("\\\n", " ")
        .lines()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .map(str::to_string)
        .expect("HEALTHCHECK");
    assert!(hc.contains("\"http://127.0.0.1:8080/healthz\""), "{hc}");
    assert!(df.contains("FAROL_API__LISTEN=0.0.0.0:8080"));
    assert!(df.contains("ENTRYPOINT [\"farol\"]"));
    // The Rust image is at least the workspace's rust-version.
    let rust = df
        .lines()
        .find_map(|l| l.strip_prefix("ARG RUST_VERSION="))
        .expect("ARG RUST_VERSION");
    let msrv = std::fs::read_to_string(cs::root().join("Cargo.toml"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("rust-version = ")
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap();
    let num = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    assert!(num(rust) >= num(&msrv), "rust {rust} < rust-version {msrv}");
    // What the image copies exists.
    for line in df
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let src = line.split_whitespace().nth(1).unwrap();
        if src != "." {
            assert!(cs::root().join(src).exists(), "COPY {src}: missing");
        }
    }
}

#[test]
fn the_demo_feeder_stamps_the_samples_with_the_current_time() {
    let dir = tempfile::tempdir().unwrap();
    let before = chrono::Utc::now() - chrono::Duration::seconds(2);
    let out = Command::new("sh")
        .arg(cs::root().join("docker/demo-feed.sh"))
        .env("FAROL_DEMO_DIR", dir.path())
        .env("FAROL_SAMPLES_DIR", cs::root().join("samples"))
        .env("FAROL_DEMO_LINES", "7")
        .env("FAROL_DEMO_TICKS", "50")
        .env("FAROL_DEMO_INTERVAL", "0")
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = chrono::Utc::now() + chrono::Duration::seconds(1);
    let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    let sample = std::fs::read_to_string(cs::root().join("samples/access.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 50 * 7);
    let ts = regex::Regex::new(r"\[([^\]]+)\]").unwrap();
    for (got, orig) in lines.iter().zip(sample.lines()) {
        // The same line with only its timestamp replaced by now.
        let stamp = &ts.captures(got).unwrap()[1];
        let t = chrono::DateTime::parse_from_str(stamp, "%d/%b/%Y:%H:%M:%S %z").unwrap();
        assert!(t >= before && t <= after, "{stamp}");
        assert_eq!(ts.replace(got, "[]"), ts.replace(orig, "[]"));
    }
    let posts = std::fs::read_to_string(dir.path().join("mastodon_social.jsonl")).unwrap();
    let sample_posts: Vec<Value> =
        std::fs::read_to_string(cs::root().join("samples/mastodon_social.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let mut ids = BTreeSet::new();
    let posts: Vec<Value> = posts
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(posts.len(), 50);
    for (i, p) in posts.iter().enumerate() {
        let orig = &sample_posts[i % sample_posts.len()];
        assert!(
            ids.insert(p["id"].as_str().unwrap().to_string()),
            "ids are unique"
        );
        assert!(p["id"]
            .as_str()
            .unwrap()
            .starts_with(orig["id"].as_str().unwrap()));
        assert_eq!(p["content"], orig["content"]);
        let t = chrono::DateTime::parse_from_rfc3339(p["created_at"].as_str().unwrap()).unwrap();
        assert!(t >= before && t <= after);
    }
}

#[test]
fn the_readme_says_what_was_checked_where() {
    let readme = std::fs::read_to_string(cs::root().join("README.md")).unwrap();
    let section = readme
        .split("## The compose stack")
        .nth(1)
        .expect("README: ## The compose stack");
    let section = section.split("\n## ").next().unwrap();
    assert!(
        section.contains("checked statically"),
        "README must say the stack is checked statically"
    );
    for s in cs::services(&cs::resolved_with_defaults()).keys() {
        assert!(
            section.contains(&format!("`{s}`")),
            "README: service {s} is not described"
        );
    }
    assert!(section.contains("docker compose up --scale process="));
}
