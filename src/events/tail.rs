//! `theatre events tail`: prints the decoded event stream, for operators.
use std::time::Duration;

use prost::Message;
use rskafka::client::{
    ClientBuilder,
    error::Error,
    partition::{OffsetAt, UnknownTopicHandling},
};

use crate::proto::EventEnvelope;

/// Follows every partition of `topics` and prints one line per event until
/// interrupted; from the earliest offset when `from_beginning`, else new events only.
pub async fn tail(
    brokers: Vec<String>,
    topics: Vec<String>,
    from_beginning: bool,
) -> Result<(), Error> {
    let client = ClientBuilder::new(brokers)
        .client_id("theatre-events-tail")
        .build()
        .await?;
    let available = client.list_topics().await?;
    let mut followers = tokio::task::JoinSet::new();
    for topic in topics {
        let Some(meta) = available.iter().find(|t| t.name == topic) else {
            eprintln!("topic {topic} does not exist (yet)");
            continue;
        };
        for &partition in &meta.partitions {
            let reader = client
                .partition_client(topic.clone(), partition, UnknownTopicHandling::Retry)
                .await?;
            let topic = topic.clone();
            followers.spawn(async move {
                let at = if from_beginning {
                    OffsetAt::Earliest
                } else {
                    OffsetAt::Latest
                };
                let mut offset = reader.get_offset(at).await?;
                loop {
                    let (records, _) = reader.fetch_records(offset, 1..1_000_000, 1_000).await?;
                    for r in records {
                        offset = r.offset + 1;
                        println!("{}", describe(&topic, partition, r.offset, &r.record));
                    }
                    if offset == 0 {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                #[allow(unreachable_code)]
                Ok::<(), Error>(())
            });
        }
    }
    while let Some(done) = followers.join_next().await {
        if let Ok(Err(e)) = done {
            return Err(e);
        }
    }
    Ok(())
}

fn describe(topic: &str, partition: i32, offset: i64, record: &rskafka::record::Record) -> String {
    let key = String::from_utf8_lossy(record.key.as_deref().unwrap_or_default()).into_owned();
    match record.value.as_deref().map(EventEnvelope::decode) {
        Some(Ok(e)) => format!(
            "{topic}/{partition}@{offset} key={key} id={} type={} payload={:?}",
            e.event_id, e.event_type, e.payload
        ),
        _ => format!("{topic}/{partition}@{offset} key={key} <not a theatre.v1.EventEnvelope>"),
    }
}
