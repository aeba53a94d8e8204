//! The broker's ceiling: a minimal lapin server that answers oslo RPC calls with a fixed result.
//! No Wasm, no dispatcher, no serializer: read `_msg_id` and `_reply_q`, publish the reply.
//! Tuned the way ../shared/wasmtime-notes.md §4 found fastest: manual acks, prefetch 100, a
//! task per delivery, replies published without waiting for confirms. With `confirm`, replies
//! are published the way oslo publishes them (mandatory, awaiting the publisher confirm), to
//! show what that costs the broker.

use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use serde::Deserialize;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "oslo.message", borrow)]
    message: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct Call {
    #[serde(rename = "_msg_id")]
    msg_id: String,
    #[serde(rename = "_reply_q")]
    reply_q: String,
}

/// Serves `topic` on exchange `openstack` until killed; prints `ready` once consuming.
pub async fn serve(url: &str, topic: &str, confirm: bool) -> anyhow::Result<()> {
    let conn = Connection::connect(url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    ch.exchange_declare(
        "openstack".into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(topic.into(), QueueDeclareOptions::default(), FieldTable::default()).await?;
    ch.queue_bind(topic.into(), "openstack".into(), topic.into(), QueueBindOptions::default(), FieldTable::default())
        .await?;
    ch.basic_qos(100, BasicQosOptions::default()).await?;
    let publisher = conn.create_channel().await?;
    if confirm {
        publisher.confirm_select(ConfirmSelectOptions::default()).await?;
    }
    let mut consumer =
        ch.basic_consume(topic.into(), "echo".into(), BasicConsumeOptions::default(), FieldTable::default()).await?;
    println!("ready");
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let publisher = publisher.clone();
        tokio::spawn(async move {
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
            let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(&delivery.data) else { return };
            let Ok(call) = serde_json::from_str::<Call>(&envelope.message) else { return };
            let inner = format!(
                r#"{{"result": 3, "failure": null, "ending": true, "_msg_id": "{}", "_unique_id": "00000000000000000000000000000000"}}"#,
                call.msg_id
            );
            let body = serde_json::to_vec(&serde_json::json!({"oslo.version": "2.0", "oslo.message": inner}))
                .unwrap_or_default();
            let props = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_content_encoding("utf-8".into());
            let options = BasicPublishOptions { mandatory: confirm, immediate: false };
            let published =
                publisher.basic_publish("".into(), call.reply_q.as_str().into(), options, &body, props).await;
            if confirm && let Ok(pending) = published {
                let _ = pending.await;
            }
        });
    }
    Ok(())
}
