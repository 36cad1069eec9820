//! HTTP steps of texting tests against any server base URL (a `TestServer`, or a child
//! process): an organization with an SMS number, an External conversation, a post.

use reqwest::{Client, StatusCode};
use serde_json::json;

use domain::{ConversationId, MessageId, OrgId, UserId};

use crate::server::{call, PASSWORD};

/// An organization and its first admin, who holds one SMS-registered number.
pub struct Org {
    pub id: OrgId,
    pub admin: UserId,
    pub token: String,
}

/// Bootstraps an organization at `base` whose admin holds `number`.
pub async fn org_with_number(c: &Client, base: &str, email: &str, number: &str) -> Org {
    let (status, boot) = call(c.post(format!("{base}/v1/bootstrap")).json(&json!({
        "organization": "Acme", "name": "Ada", "extension": "100", "email": email, "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{boot}");
    let org = Org {
        id: serde_json::from_value(boot["organization_id"].clone()).expect("org id"),
        admin: serde_json::from_value(boot["user_id"].clone()).expect("user id"),
        token: boot["token"].as_str().expect("token").to_owned(),
    };
    let (status, v) = call(
        c.post(format!("{base}/v1/numbers"))
            .bearer_auth(&org.token)
            .json(&json!({ "number": number, "user": org.admin })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    org
}

/// The External conversation of `our` and `their`, started by the admin.
pub async fn start_external(
    c: &Client,
    base: &str,
    org: &Org,
    our: &str,
    their: &str,
) -> ConversationId {
    let (status, v) = call(
        c.post(format!("{base}/v1/conversations/external"))
            .bearer_auth(&org.token)
            .json(&json!({ "our": our, "their": their })),
    )
    .await;
    assert!(status.is_success(), "{status} {v}");
    serde_json::from_value(v["conversation_id"].clone()).expect("conversation id")
}

/// The admin posts `text`; its message id.
pub async fn post_text(
    c: &Client,
    base: &str,
    org: &Org,
    id: ConversationId,
    text: &str,
) -> MessageId {
    let (status, v) = call(
        c.post(format!("{base}/v1/conversations/{id}/messages"))
            .bearer_auth(&org.token)
            .json(&json!({ "text": text })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    serde_json::from_value(v["message_id"].clone()).expect("message id")
}
