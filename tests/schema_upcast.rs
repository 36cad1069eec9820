//! Schema evolution end to end: a log holding `DeliveryUpdated` at schema version 1 (as
//! written before the carrier's id and error code existed) still rehydrates the
//! conversation, projects into the read model, verifies, and prints for an auditor.

use std::sync::Arc;
use std::time::Duration;

use actors::{ActorConfig, Registry};
use domain::conversation::legacy::DeliveryUpdatedV1;
use domain::conversation::DeliveryStatus;
use domain::{Conversation, MessageId, PhoneNumber};
use eventlog::{EventData, EventStore, ExpectedVersion, StreamName};
use reqwest::StatusCode;
use serde_json::json;
use testkit::server::{call, customer_text, TestServer, PASSWORD};
use workers::inbound_router;

const INBOX_NUMBER: &str = "+15550103000";
const CUSTOMER: &str = "+15557770123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_event_reads_projects_verifies_and_prints() {
    let s = TestServer::start().await;
    let c = testkit::http();
    let (status, boot) = call(c.post(s.url("/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": "ada@upcast.example", "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{boot}");
    let admin = boot["token"].as_str().unwrap().to_owned();
    let admin_id = boot["user_id"].as_str().unwrap().to_owned();
    let org: domain::OrgId = serde_json::from_value(boot["organization_id"].clone()).unwrap();
    let (_, inbox) = call(
        c.post(s.url("/v1/inboxes"))
            .bearer_auth(&admin)
            .json(&json!({ "name": "Desk", "number": INBOX_NUMBER })),
    )
    .await;
    let inbox = inbox["inbox_id"].as_str().unwrap().to_owned();
    call(
        c.post(s.url(&format!("/v1/inboxes/{inbox}/members")))
            .bearer_auth(&admin)
            .json(&json!({ "user": admin_id })),
    )
    .await;
    // The carrier's registration callback: the inbox number may send SMS.
    s.ws.directories
        .execute(
            &org,
            domain::CommandMeta::system(org, 1).issue(
                domain::DirectoryCommand::SetSmsRegistration {
                    number: PhoneNumber::parse(INBOX_NUMBER).unwrap(),
                    registered: true,
                },
            ),
            actors::ExecuteOptions::default(),
        )
        .await
        .unwrap();
    let record = customer_text(&s, org, INBOX_NUMBER, CUSTOMER, "Hello?").await;
    let conv = match inbound_router::route(&s.ws, &record).await.unwrap() {
        inbound_router::Routed::Recorded(id) => id,
        other => panic!("{other:?}"),
    };
    let (status, v) = call(
        c.post(s.url(&format!("/v1/conversations/{conv}/assign-to-me")))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, posted) = call(
        c.post(s.url(&format!("/v1/conversations/{conv}/messages")))
            .bearer_auth(&admin)
            .json(&json!({ "text": "On its way" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    let message: MessageId = serde_json::from_value(posted["message_id"].clone()).unwrap();

    // What an older build wrote: the v1 struct under schema version 1.
    let v1 = DeliveryUpdatedV1 {
        message_id: message,
        to: PhoneNumber::parse(CUSTOMER).unwrap(),
        status: DeliveryStatus::Delivered,
        at_ms: 42,
    };
    let old = EventData::new("DeliveryUpdated", 1, eventlog::codec::encode(&v1).unwrap());
    let stream = StreamName::from_parts("conversation", conv).unwrap();
    let written =
        s.ws.store
            .append(stream, ExpectedVersion::Any, vec![old])
            .await
            .unwrap();

    // It rehydrates: a fresh registry reads the whole stream, upcasting the v1 event.
    let fresh: Registry<Conversation> = Registry::new(
        s.ws.store.clone(),
        s.ws.runtime.clone(),
        ActorConfig::default(),
    );
    let to = PhoneNumber::parse(CUSTOMER).unwrap();
    let delivered = fresh
        .query(&conv, move |c: &Conversation, _| {
            c.delivery(&message, &to).cloned()
        })
        .await
        .unwrap();
    assert_eq!(delivered, Some(DeliveryStatus::Delivered));

    // It projects: the read model passes it (a decode failure would stop it short).
    assert!(
        s.interactions
            .wait_for(written.last_position, Duration::from_secs(5))
            .await
    );

    // It verifies.
    let store = s.ws.store.clone();
    let report = tokio::task::spawn_blocking(move || store.verify_all_blocking())
        .await
        .unwrap()
        .unwrap();
    assert!(report.first_break.is_none(), "{:?}", report.first_break);

    // It prints for an auditor, as text and as JSON lines naming the stored version.
    let store: Arc<dyn EventStore> = s.ws.store.clone();
    let (text, jsonl) = tokio::task::spawn_blocking(move || {
        let mut text = Vec::new();
        replay::conversation::print(
            store.as_ref(),
            conv,
            replay::conversation::Format::Text,
            None,
            &mut text,
        )
        .unwrap();
        let mut jsonl = Vec::new();
        replay::conversation::print(
            store.as_ref(),
            conv,
            replay::conversation::Format::Jsonl,
            None,
            &mut jsonl,
        )
        .unwrap();
        (
            String::from_utf8(text).unwrap(),
            String::from_utf8(jsonl).unwrap(),
        )
    })
    .await
    .unwrap();
    assert!(
        text.contains(&format!(
            "delivery of message {message} to {CUSTOMER}: delivered"
        )),
        "{text}"
    );
    assert!(text.contains("message 2 by Ada: \"On its way\""), "{text}");
    assert!(text.contains("assigned to Ada"), "{text}");
    let last: serde_json::Value = serde_json::from_str(jsonl.lines().last().unwrap()).unwrap();
    assert_eq!(last["event_type"], "DeliveryUpdated");
    assert_eq!(last["stored_schema_version"], 1);
    assert_eq!(
        last["event"]["DeliveryUpdated"]["carrier_message_id"],
        serde_json::Value::Null
    );
    assert_eq!(last["event"]["DeliveryUpdated"]["status"], "Delivered");
}
