//! A Kafka-protocol broker for tests: Tansu (BRIEF §9) started as a child
//! process on a free port with in-memory storage and stopped on drop, or
//! the cluster named by `FAROL_TEST_KAFKA_BROKERS`.
//!
//! The Tansu binary comes from `FAROL_TANSU_BIN` (set by `scripts/test.sh`)
//! or, when that is unset, from `scripts/install-tansu.sh` (idempotent,
//! checksum verified).

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A broker for one test.
pub struct Broker {
    /// Bootstrap servers.
    pub brokers: String,
    child: Option<Child>,
}

fn tansu_bin() -> String {
    if let Ok(b) = std::env::var("FAROL_TANSU_BIN") {
        return b;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/install-tansu.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/install-tansu.sh runs");
    assert!(out.status.success(), "installing tansu failed");
    String::from_utf8(out.stdout)
        .expect("a path")
        .trim()
        .to_string()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Broker {
    /// Starts Tansu (or points at `FAROL_TEST_KAFKA_BROKERS`) and waits
    /// until it accepts connections.
    pub fn start() -> Broker {
        if let Ok(b) = std::env::var("FAROL_TEST_KAFKA_BROKERS") {
            return Broker {
                brokers: b,
                child: None,
            };
        }
        let port = free_port();
        Broker::start_tansu(port, port)
    }

    /// Starts Tansu on `port`, telling clients to connect to `advertised`
    /// (a proxy in front of it, or `port` itself).
    pub fn start_tansu(port: u16, advertised: u16) -> Broker {
        let url = format!("tcp://127.0.0.1:{port}");
        let adv = format!("tcp://127.0.0.1:{advertised}");
        let child = Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &adv,
                "--storage-engine",
                "memory://tansu/",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {addr} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker {
            brokers: format!("127.0.0.1:{advertised}"),
            child: Some(child),
        }
    }

    /// Environment for a `farol` process using this broker, with topics and
    /// a consumer group of its own (`tag` keeps tests apart on a shared cluster).
    pub fn env(&self, tag: &str) -> Vec<(String, String)> {
        vec![
            ("FAROL_KAFKA__BROKERS".into(), self.brokers.clone()),
            // Health endpoints of `farol ingest` / `farol process` on a free port.
            ("FAROL_API__LISTEN".into(), "127.0.0.1:0".into()),
            ("FAROL_KAFKA__LOGS_TOPIC".into(), format!("{tag}.logs")),
            ("FAROL_KAFKA__POSTS_TOPIC".into(), format!("{tag}.posts")),
            (
                "FAROL_KAFKA__DEADLETTER_TOPIC".into(),
                format!("{tag}.dead"),
            ),
            (
                "FAROL_KAFKA__PROCESSED_TOPIC".into(),
                format!("{tag}.processed"),
            ),
            ("FAROL_KAFKA__STATE_TOPIC".into(), format!("{tag}.state")),
            ("FAROL_KAFKA__GROUP_ID".into(), format!("{tag}.group")),
            ("FAROL_KAFKA__PARTITIONS".into(), "6".into()),
            ("FAROL_KAFKA__SESSION_TIMEOUT".into(), "6s".into()),
            ("FAROL_KAFKA__HEARTBEAT_INTERVAL".into(), "1s".into()),
        ]
    }
}

/// A tag unique to this test run.
pub fn unique_tag(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("t{}-{test}-{}", std::process::id(), nanos % 1_000_000_000)
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A TCP proxy in front of a broker that can be taken down: while down it
/// closes every open connection and accepts new ones only to close them.
pub struct Proxy {
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Listens on `port` and forwards to `upstream`, in background threads
    /// that end with the test process.
    pub fn start(port: u16, upstream: u16) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("proxy port");
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::<TcpStream>::new()));
        let (u, c) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !u.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let pairs = [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ];
                if let Ok(mut all) = c.lock() {
                    all.extend(client.try_clone());
                    all.extend(server.try_clone());
                }
                for (from, to) in pairs {
                    if let (Ok(mut from), Ok(mut to)) = (from, to) {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        });
                    }
                }
            }
        });
        Proxy { up, conns }
    }

    /// Cuts every connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut all) = self.conns.lock() {
            for s in all.drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
