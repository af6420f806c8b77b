//! Every resource endpoint, called with another person's token (a viewer of the owner's
//! workspace) and a non-member's: each answers 403 or 404, no answer mentions the
//! resources, and the owner finds everything as it was.

mod support;

use amp_providers::mock::openai;
use amp_providers::mock::{MockResponse, MockServer};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{call_as, loopback_registry, person, send, test_app_with, upload};

/// Words that appear only inside the owner's resources: no refusal may contain them.
const SECRETS: [&str; 5] = ["Merger plans", "salaries", "Hidden helper", "Board room", "eleven percent"];

/// A call and what the viewer and the outsider get; `None`: allowed.
type Row = (Method, String, Option<Value>, Option<StatusCode>, Option<StatusCode>);

#[tokio::test]
async fn other_people_and_non_members_get_403_or_404_on_every_resource_and_learn_nothing() {
    let upstream = MockServer::start(|_: &amp_providers::mock::RecordedRequest| {
        MockResponse::json_text(200, openai::chat_completion("c1", "m", "Noted.", &[], "stop", (5, 1)))
    })
    .await
    .unwrap();
    let t = test_app_with(|c| c.models = loopback_registry(&upstream, 8192, 1024)).await;
    let app = amp_server::router(t.state.clone());
    let owner = person(&app, "owner@example.test").await;
    let viewer = person(&app, "viewer@example.test").await;
    let outsider = person(&app, "outsider@example.test").await;
    let me = call_as(&app, Method::GET, "/session/current", &owner, None).await.1;
    let owner_id = me["user"]["id"].as_str().unwrap().to_owned();

    // The owner's resources: personal and in a workspace where `viewer` is a viewer.
    let (_, ws) =
        call_as(&app, Method::POST, "/workspaces", &owner, Some(json!({"name": "Board room"}))).await;
    let w = ws["id"].as_str().unwrap().to_owned();
    support::join(&t.state, &app, &owner, &w, "viewer@example.test", "viewer").await;
    let (_, pf) =
        upload(&app, &owner, "salaries.txt", "text/plain", "Raises are eleven percent.", None).await;
    let (_, wf) =
        upload(&app, &owner, "salaries-team.txt", "text/plain", "Raises are eleven percent.", Some(&w)).await;
    let ask = |extra: Value| {
        let mut body = json!({"message": "Merger plans?"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let (_, pc) = call_as(&app, Method::POST, "/chat/send", &owner, Some(ask(json!({})))).await;
    let (_, wc) = call_as(&app, Method::POST, "/chat/send", &owner, Some(ask(json!({"workspace": w})))).await;
    let (_, pa) =
        call_as(&app, Method::POST, "/agents/registry", &owner, Some(json!({"name": "Hidden helper"}))).await;
    let shared_agent = json!({"name": "Hidden helper", "visibility": {"scope": "workspace", "workspace": w}});
    let (_, wa) = call_as(&app, Method::POST, "/agents/registry", &owner, Some(shared_agent)).await;
    let id = |v: &Value, at: &str| v.pointer(at).and_then(Value::as_str).unwrap().to_owned();
    let (pf, wf) = (id(&pf, "/id"), id(&wf, "/id"));
    let (pc, wc) = (id(&pc, "/conversation/id"), id(&wc, "/conversation/id"));
    let (pa, wa) = (id(&pa, "/id"), id(&wa, "/id"));

    use StatusCode as S;
    const NF: Option<S> = Some(S::NOT_FOUND);
    const FB: Option<S> = Some(S::FORBIDDEN);
    let rename = json!({"name": "Taken"});
    let rows: Vec<Row> = vec![
        (Method::GET, format!("/conversations/{pc}"), None, NF, NF),
        (Method::DELETE, format!("/conversations/{pc}"), None, NF, NF),
        (Method::POST, format!("/conversations/{pc}/share"), Some(json!({"workspace": w})), NF, NF),
        (Method::GET, format!("/files/{pf}/status"), None, NF, NF),
        (Method::DELETE, format!("/files/{pf}"), None, NF, NF),
        (Method::POST, format!("/files/{pf}/share"), Some(json!({"workspace": w})), NF, NF),
        (Method::GET, format!("/agents/registry/{pa}"), None, NF, NF),
        (Method::PUT, format!("/agents/registry/{pa}"), Some(rename.clone()), NF, NF),
        (Method::DELETE, format!("/agents/registry/{pa}"), None, NF, NF),
        (Method::POST, "/chat/send".into(), Some(ask(json!({"conversation": pc}))), NF, NF),
        (Method::POST, "/chat/stream".into(), Some(ask(json!({"conversation": pc}))), NF, NF),
        (Method::POST, "/chat/send".into(), Some(ask(json!({"files": [pf]}))), NF, NF),
        (Method::POST, "/chat/send".into(), Some(ask(json!({"agent": pa}))), NF, NF),
        (Method::GET, format!("/workspaces/{w}"), None, None, NF),
        (Method::PUT, format!("/workspaces/{w}"), Some(rename.clone()), FB, NF),
        (Method::DELETE, format!("/workspaces/{w}"), None, FB, NF),
        (Method::GET, format!("/workspaces/{w}/members"), None, None, NF),
        (
            Method::POST,
            format!("/workspaces/{w}/members"),
            Some(json!({"email": "outsider@example.test", "role": "owner"})),
            FB,
            NF,
        ),
        (Method::DELETE, format!("/workspaces/{w}/members/{owner_id}"), None, FB, NF),
        (Method::GET, format!("/workspaces/{w}/activity"), None, None, NF),
        (Method::GET, format!("/conversations?workspace={w}"), None, None, NF),
        (Method::POST, "/conversations".into(), Some(json!({"workspace": w})), FB, NF),
        (Method::GET, format!("/conversations/{wc}"), None, None, NF),
        (Method::DELETE, format!("/conversations/{wc}"), None, FB, NF),
        (Method::GET, format!("/files?workspace={w}"), None, None, NF),
        (Method::GET, format!("/files/{wf}/status"), None, None, NF),
        (Method::DELETE, format!("/files/{wf}"), None, FB, NF),
        (Method::GET, format!("/agents/registry/{wa}"), None, None, NF),
        (Method::PUT, format!("/agents/registry/{wa}"), Some(rename), FB, NF),
        (Method::DELETE, format!("/agents/registry/{wa}"), None, FB, NF),
        (Method::POST, "/chat/send".into(), Some(ask(json!({"conversation": wc}))), FB, NF),
        (Method::POST, "/chat/send".into(), Some(ask(json!({"workspace": w}))), FB, NF),
        (Method::POST, "/chat/send".into(), Some(ask(json!({"agent": wa}))), None, NF),
        (Method::POST, "/chat/send".into(), Some(ask(json!({"files": [wf]}))), None, NF),
    ];
    for (method, path, body, for_viewer, for_outsider) in rows {
        for (who, token, expected) in [("viewer", &viewer, for_viewer), ("outsider", &outsider, for_outsider)]
        {
            let Some(expected) = expected else { continue };
            let r = send(app.clone(), method.clone(), &path, Some(token), body.clone()).await;
            assert_eq!(r.status, expected, "{who}: {method} {path} → {}", r.body);
            let text = r.body.to_string();
            assert!(r.body["error"]["code"].is_string(), "{who}: {method} {path}: {text}");
            for secret in SECRETS {
                assert!(!text.contains(secret), "{who}: {method} {path} leaked `{secret}`: {text}");
            }
        }
    }
    let (status, body) = upload(&app, &viewer, "x.txt", "text/plain", "x", Some(&w)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = upload(&app, &outsider, "x.txt", "text/plain", "x", Some(&w)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The owner finds everything as it was.
    for path in [
        format!("/workspaces/{w}"),
        format!("/conversations/{pc}"),
        format!("/conversations/{wc}"),
        format!("/files/{pf}/status"),
        format!("/files/{wf}/status"),
        format!("/agents/registry/{pa}"),
        format!("/agents/registry/{wa}"),
    ] {
        let (status, body) = call_as(&app, Method::GET, &path, &owner, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (_, page) = call_as(&app, Method::GET, &format!("/conversations/{pc}"), &owner, None).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
    let (_, agent) = call_as(&app, Method::GET, &format!("/agents/registry/{wa}"), &owner, None).await;
    assert_eq!(agent["name"], "Hidden helper");
    let (_, members) = call_as(&app, Method::GET, &format!("/workspaces/{w}/members"), &owner, None).await;
    assert_eq!(members.as_array().unwrap().len(), 2);
}
