//! `farol process`: one member of the processor fleet (see
//! `farol_processor::fleet` for how members share partitions and why the
//! totals stay exact). It serves `/healthz` and `/metrics` on `api.listen`.

use crate::pipeline::shutdown_signal;
use anyhow::{bail, Context};
use farol_common::bus::kafka::{self, group::GroupConsumer, output};
use farol_common::config::Config;
use farol_common::health::Health;
use farol_processor::fleet::{self, Member};
use farol_processor::processor::Parsers;
use farol_processor::window::WindowParams;
use tokio::sync::watch;

/// Runs the member until SIGINT/SIGTERM or a failure.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let Some(k) = cfg.kafka.clone() else {
        bail!("farol process reads Kafka: set [kafka] brokers (or FAROL_KAFKA__BROKERS)");
    };
    let parsers = Parsers::new(cfg.logs.iter().map(|l| (l.name.as_str(), &l.format)))
        .context("compiling log formats")?;
    kafka::ensure_topics(&k, &[k.logs_topic.as_str(), k.posts_topic.as_str()])
        .await
        .with_context(|| format!("creating the Kafka topics on {}", k.brokers))?;
    output::ensure_output_topics(&k)
        .await
        .with_context(|| format!("creating the processors' topics on {}", k.brokers))?;
    let out_partitions = kafka::partition_count(&k, &k.processed_topic)
        .await?
        .min(kafka::partition_count(&k, &k.state_topic).await?);
    let consumer = GroupConsumer::join(&k, &[k.logs_topic.as_str(), k.posts_topic.as_str()])
        .with_context(|| format!("joining consumer group {}", k.group_id))?;
    let out = output::OutputProducer::new(&k).context("creating the Kafka producer")?;
    let health = Health::default();
    let (_server, addr) = crate::health_server::start(&cfg.api.listen, health.clone()).await?;
    crate::pipeline::announce(addr)?;
    tracing::info!(group = %k.group_id, "processing as a member of the group");
    let (stop_tx, stop_rx) = watch::channel(false);
    let member = Member {
        kafka: k,
        params: WindowParams::from_config(&cfg.windows),
        parsers,
        events: cfg.index.events,
        templates: cfg.processor.templates,
        health: health.clone(),
    };
    let mut task = tokio::spawn(fleet::run(member, consumer, out, out_partitions, stop_rx));
    let finished = tokio::select! {
        r = &mut task => Some(r),
        _ = shutdown_signal() => None,
    };
    let r = match finished {
        Some(r) => r,
        None => {
            let _ = stop_tx.send(true);
            match tokio::time::timeout(cfg.shutdown_timeout, &mut task).await {
                Ok(r) => r,
                Err(_) => bail!(
                    "shutdown did not finish within {:?}; the next owner of the partitions processes again what was not snapshotted",
                    cfg.shutdown_timeout
                ),
            }
        }
    };
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            health.down(fleet::COMPONENT, e.to_string());
            Err(anyhow::Error::new(e).context("processing"))
        }
        Err(e) => Err(anyhow::anyhow!("the processor task failed: {e}")),
    }
}
