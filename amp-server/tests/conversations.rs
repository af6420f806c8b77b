//! Conversations over HTTP: owners and workspace members read them, pages follow cursors,
//! deleting takes messages and cached responses along, and outsiders learn nothing.

mod support;

use amp_core::conversation::Message;
use amp_core::{ConversationId, MessageId};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{call_as, person, test_app};

async fn create(app: &axum::Router, token: &str, body: Value) -> String {
    let (status, c) = call_as(app, Method::POST, "/conversations", token, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    c["id"].as_str().unwrap().to_owned()
}

/// A stored message; built from JSON so the test needs no date crate.
fn message(conversation: &str, role: &str, content: &str, extra: Value) -> Message {
    let mut m = json!({
        "id": MessageId::new(),
        "conversation": conversation,
        "role": role,
        "author": null,
        "content": content,
        "model": null,
        "citations": [],
        "usage": null,
        "created_at": "2026-01-01T00:00:00Z",
    });
    if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
        m.extend(extra.clone());
    }
    serde_json::from_value(m).unwrap()
}

fn ids(list: &Value) -> Vec<String> {
    list["conversations"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn conversations_list_newest_first_and_page_with_before() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let me = person(&app, "me@example.test").await;
    let (s, first) = call_as(&app, Method::POST, "/conversations", &me, Some(json!({}))).await;
    assert_eq!((s, first["title"].clone()), (StatusCode::CREATED, json!("New conversation")));
    let first = first["id"].as_str().unwrap().to_owned();
    let second = create(&app, &me, json!({"title": "Second"})).await;
    let third = create(&app, &me, json!({"title": "Third"})).await;

    let (s, page) = call_as(&app, Method::GET, "/conversations?limit=2", &me, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ids(&page), [third.clone(), second.clone()]);
    assert_eq!(page["next"], json!(second));
    let (_, rest) =
        call_as(&app, Method::GET, &format!("/conversations?limit=2&before={second}"), &me, None).await;
    assert_eq!(ids(&rest), [first]);
    assert_eq!(rest["next"], Value::Null, "the last page has no cursor");

    let (s, got) = call_as(&app, Method::GET, &format!("/conversations/{third}"), &me, None).await;
    assert_eq!((s, got["conversation"]["title"].clone()), (StatusCode::OK, json!("Third")));
    assert_eq!(got["messages"], json!([]));

    // Another person's list is their own.
    let other = person(&app, "other@example.test").await;
    assert_eq!(
        ids(&call_as(&app, Method::GET, "/conversations", &other, None).await.1),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn messages_page_with_after_and_keep_citations_and_usage() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let me = person(&app, "me@example.test").await;
    let id = create(&app, &me, json!({"title": "Cited"})).await;
    let citation = json!({
        "source": 1,
        "kind": "file",
        "file": amp_core::FileId::new(),
        "chunk": amp_core::ChunkId::new(),
        "page": 3,
        "byte_range": {"start": 10, "end": 42},
        "snippet": "the passage",
    });
    let store = &t.state.stores().conversations;
    store.append_message(message(&id, "user", "question", json!({}))).await.unwrap();
    let answer =
        json!({"citations": [citation.clone()], "usage": {"prompt_tokens": 12, "completion_tokens": 5}});
    store.append_message(message(&id, "assistant", "answer [1]", answer)).await.unwrap();
    store.append_message(message(&id, "user", "thanks", json!({}))).await.unwrap();

    let (s, page) = call_as(&app, Method::GET, &format!("/conversations/{id}?limit=2"), &me, None).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let contents: Vec<_> =
        page["messages"].as_array().unwrap().iter().map(|m| m["content"].clone()).collect();
    assert_eq!(contents, [json!("question"), json!("answer [1]")], "oldest first");
    assert_eq!(page["messages"][1]["citations"], json!([citation]));
    assert_eq!(page["messages"][1]["usage"], json!({"prompt_tokens": 12, "completion_tokens": 5}));
    let next = page["next"].as_str().unwrap();
    assert_eq!(page["messages"][1]["id"], json!(next));

    let (_, rest) =
        call_as(&app, Method::GET, &format!("/conversations/{id}?limit=2&after={next}"), &me, None).await;
    assert_eq!(rest["messages"].as_array().unwrap().len(), 1);
    assert_eq!(rest["messages"][0]["content"], "thanks");
    assert_eq!(rest["next"], Value::Null);
}

#[tokio::test]
async fn deleting_removes_messages_and_cached_responses_and_twice_is_404() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let me = person(&app, "me@example.test").await;
    let id = create(&app, &me, json!({"title": "Doomed"})).await;
    let keep = create(&app, &me, json!({"title": "Kept"})).await;
    t.state.stores().conversations.append_message(message(&id, "user", "hello", json!({}))).await.unwrap();
    let cache = t.state.cache();
    cache.set(&format!("conv:{id}:x"), b"cached answer".to_vec().into(), None).await.unwrap();
    cache.set(&format!("conv:{keep}:x"), b"other answer".to_vec().into(), None).await.unwrap();

    let path = format!("/conversations/{id}");
    assert_eq!(call_as(&app, Method::DELETE, &path, &me, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(call_as(&app, Method::GET, &path, &me, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call_as(&app, Method::DELETE, &path, &me, None).await.0, StatusCode::NOT_FOUND);
    let conversation: ConversationId = id.parse().unwrap();
    let left = t.state.stores().conversations.list_messages(conversation, None, 10).await.unwrap();
    assert!(left.is_empty(), "messages go with the conversation");
    assert_eq!(cache.get(&format!("conv:{id}:x")).await.unwrap(), None, "cached responses go too");
    assert!(cache.get(&format!("conv:{keep}:x")).await.unwrap().is_some(), "others' cache stays");
    assert_eq!(ids(&call_as(&app, Method::GET, "/conversations", &me, None).await.1), [keep]);
}

#[tokio::test]
async fn other_people_and_non_members_get_404_and_learn_nothing() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let owner = person(&app, "owner@example.test").await;
    let stranger = person(&app, "stranger@example.test").await;
    let ws = support::workspace(&t.state, &app, &owner, &[]).await;
    let personal = create(&app, &owner, json!({"title": "Secret diary"})).await;
    let shared = create(&app, &owner, json!({"title": "Secret plans", "workspace": ws})).await;

    for id in [&personal, &shared] {
        for method in [Method::GET, Method::DELETE] {
            let (s, body) =
                call_as(&app, method.clone(), &format!("/conversations/{id}"), &stranger, None).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{method} {id}");
            assert_eq!(body["error"]["code"], "not_found");
            let text = body.to_string();
            assert!(!text.contains("Secret") && !text.contains(&ws), "nothing leaks: {text}");
        }
    }
    let unknown = format!("/conversations/{}", ConversationId::new());
    let (s, body) = call_as(&app, Method::GET, &unknown, &stranger, None).await;
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found")),
        "same as unknown"
    );
    let (s, _) = call_as(&app, Method::GET, &format!("/conversations?workspace={ws}"), &stranger, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) =
        call_as(&app, Method::POST, "/conversations", &stranger, Some(json!({"workspace": ws}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Still there for the owner.
    assert_eq!(
        call_as(&app, Method::GET, &format!("/conversations/{personal}"), &owner, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call_as(&app, Method::GET, &format!("/conversations/{shared}"), &owner, None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn workspace_roles_decide_who_reads_creates_and_deletes() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let owner = person(&app, "owner@example.test").await;
    let editor = person(&app, "editor@example.test").await;
    let viewer = person(&app, "viewer@example.test").await;
    let ws = support::workspace(
        &t.state,
        &app,
        &owner,
        &[("editor@example.test", "editor"), ("viewer@example.test", "viewer")],
    )
    .await;

    // An editor creates; a viewer may not (403: they can see the workspace).
    let by_editor = create(&app, &editor, json!({"title": "Editor's", "workspace": ws})).await;
    let (s, body) =
        call_as(&app, Method::POST, "/conversations", &viewer, Some(json!({"title": "No", "workspace": ws})))
            .await;
    assert_eq!((s, body["error"]["code"].clone()), (StatusCode::FORBIDDEN, json!("forbidden")));

    // The viewer reads it, in the workspace list and on its own; not in their personal list.
    let path = format!("/conversations/{by_editor}");
    let (s, got) = call_as(&app, Method::GET, &path, &viewer, None).await;
    assert_eq!((s, got["conversation"]["title"].clone()), (StatusCode::OK, json!("Editor's")));
    let (_, list) =
        call_as(&app, Method::GET, &format!("/conversations?workspace={ws}"), &viewer, None).await;
    assert_eq!(ids(&list), [by_editor.as_str()]);
    assert_eq!(
        ids(&call_as(&app, Method::GET, "/conversations", &viewer, None).await.1),
        Vec::<String>::new()
    );

    // A viewer cannot delete a member's conversation; a workspace owner can.
    assert_eq!(call_as(&app, Method::DELETE, &path, &viewer, None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call_as(&app, Method::DELETE, &path, &owner, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(call_as(&app, Method::GET, &path, &editor, None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_ids_and_titles_are_400() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let me = person(&app, "me@example.test").await;
    for (method, path, body) in [
        (Method::GET, "/conversations/not-an-id", None),
        (Method::DELETE, "/conversations/not-an-id", None),
        (Method::GET, "/conversations?before=nope", None),
        (Method::GET, "/conversations?workspace=nope", None),
        (Method::GET, "/conversations?limit=many", None),
        (Method::POST, "/conversations", Some(json!({"workspace": "nope"}))),
        (Method::POST, "/conversations", Some(json!({"title": ""}))),
        (Method::POST, "/conversations", Some(json!({"title": "x".repeat(201)}))),
    ] {
        let (s, b) = call_as(&app, method.clone(), path, &me, body).await;
        assert_eq!(
            (s, b["error"]["code"].clone()),
            (StatusCode::BAD_REQUEST, json!("invalid_input")),
            "{method} {path}"
        );
    }
    let id = create(&app, &me, json!({})).await;
    let (s, b) = call_as(&app, Method::GET, &format!("/conversations/{id}?after=nope"), &me, None).await;
    assert_eq!((s, b["error"]["code"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_input")));
}

#[tokio::test]
async fn creating_and_deleting_tell_the_callers_other_devices() {
    use futures::StreamExt;

    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let me = person(&app, "me@example.test").await;
    let (_, who) = call_as(&app, Method::GET, "/auth/verify", &me, None).await;
    let user: amp_core::UserId = who["user_id"].as_str().unwrap().parse().unwrap();
    let topic = amp_agents::session::sync::topic(user);
    let mut events = t.state.events().subscribe(&topic, None).await.unwrap();

    let id = create(&app, &me, json!({"title": "Synced"})).await;
    assert_eq!(
        call_as(&app, Method::DELETE, &format!("/conversations/{id}"), &me, None).await.0,
        StatusCode::NO_CONTENT
    );

    let created = events.next().await.unwrap().unwrap().payload;
    assert_eq!(
        (created["type"].clone(), created["data"]["conversation"]["id"].clone()),
        (json!("conversation_created"), json!(id))
    );
    let deleted = events.next().await.unwrap().unwrap().payload;
    assert_eq!(
        (deleted["type"].clone(), deleted["data"]["id"].clone()),
        (json!("conversation_deleted"), json!(id))
    );
}

async fn share(app: &axum::Router, token: &str, id: &str, workspace: &str) -> (StatusCode, Value) {
    let body = Some(json!({"workspace": workspace}));
    call_as(app, Method::POST, &format!("/conversations/{id}/share"), token, body).await
}

#[tokio::test]
async fn a_shared_conversation_is_read_and_listed_by_workspace_members() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let owner = person(&app, "owner@example.test").await;
    let viewer = person(&app, "viewer@example.test").await;
    let ws = support::workspace(&t.state, &app, &owner, &[("viewer@example.test", "viewer")]).await;
    let id = create(&app, &owner, json!({"title": "Notes"})).await;
    assert_eq!(
        call_as(&app, Method::GET, &format!("/conversations/{id}"), &viewer, None).await.0,
        StatusCode::NOT_FOUND
    );

    let (s, shared) = share(&app, &owner, &id, &ws).await;
    assert_eq!(s, StatusCode::OK, "{shared}");
    assert_eq!((shared["id"].clone(), shared["workspace"].clone()), (json!(id), json!(ws)));

    let (s, got) = call_as(&app, Method::GET, &format!("/conversations/{id}"), &viewer, None).await;
    assert_eq!((s, got["conversation"]["workspace"].clone()), (StatusCode::OK, json!(ws)));
    let (s, list) =
        call_as(&app, Method::GET, &format!("/conversations?workspace={ws}"), &viewer, None).await;
    assert_eq!((s, ids(&list)), (StatusCode::OK, vec![id]));
}

#[tokio::test]
async fn only_the_owner_may_share_and_others_get_not_found() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let owner = person(&app, "owner@example.test").await;
    let editor = person(&app, "editor@example.test").await;
    let stranger = person(&app, "stranger@example.test").await;
    let ws = support::workspace(&t.state, &app, &owner, &[("editor@example.test", "editor")]).await;
    let personal = create(&app, &owner, json!({})).await;
    assert_eq!(share(&app, &stranger, &personal, &ws).await.0, StatusCode::NOT_FOUND);
    assert_eq!(share(&app, &editor, &personal, &ws).await.0, StatusCode::NOT_FOUND);

    // A member who can read a workspace conversation still cannot give it away.
    let in_ws = create(&app, &owner, json!({"workspace": ws})).await;
    let (s, e) = share(&app, &editor, &in_ws, &ws).await;
    assert_eq!((s, e["error"]["code"].clone()), (StatusCode::NOT_FOUND, json!("not_found")));
}

#[tokio::test]
async fn sharing_needs_the_editor_role_in_the_target_workspace() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let owner = person(&app, "owner@example.test").await;
    let me = person(&app, "me@example.test").await;
    let viewing = support::workspace(&t.state, &app, &owner, &[("me@example.test", "viewer")]).await;
    let foreign = support::workspace(&t.state, &app, &owner, &[]).await;
    let editing = support::workspace(&t.state, &app, &owner, &[("me@example.test", "editor")]).await;
    let id = create(&app, &me, json!({})).await;

    assert_eq!(share(&app, &me, &id, &foreign).await.0, StatusCode::NOT_FOUND);
    assert_eq!(share(&app, &me, &id, &viewing).await.0, StatusCode::FORBIDDEN);
    let (_, still) = call_as(&app, Method::GET, &format!("/conversations/{id}"), &me, None).await;
    assert_eq!(still["conversation"]["workspace"], Value::Null, "a refused share changes nothing");
    assert_eq!(share(&app, &me, &id, &editing).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_conversation_already_in_a_workspace_cannot_be_shared_again() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let owner = person(&app, "owner@example.test").await;
    let first = support::workspace(&t.state, &app, &owner, &[]).await;
    let second = support::workspace(&t.state, &app, &owner, &[]).await;
    let id = create(&app, &owner, json!({"workspace": first})).await;
    let (s, e) = share(&app, &owner, &id, &second).await;
    assert_eq!((s, e["error"]["code"].clone()), (StatusCode::CONFLICT, json!("conflict")));

    let personal = create(&app, &owner, json!({})).await;
    assert_eq!(share(&app, &owner, &personal, &first).await.0, StatusCode::OK);
    assert_eq!(share(&app, &owner, &personal, &first).await.0, StatusCode::CONFLICT);
    let (s, _) = share(&app, &owner, &personal, "not-an-id").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sharing_tells_the_callers_other_devices() {
    use futures::StreamExt;

    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let me = person(&app, "me@example.test").await;
    let (_, who) = call_as(&app, Method::GET, "/auth/verify", &me, None).await;
    let user: amp_core::UserId = who["user_id"].as_str().unwrap().parse().unwrap();
    let topic = amp_agents::session::sync::topic(user);
    let mut events = t.state.events().subscribe(&topic, None).await.unwrap();

    let ws = support::workspace(&t.state, &app, &me, &[]).await;
    let id = create(&app, &me, json!({})).await;
    assert_eq!(share(&app, &me, &id, &ws).await.0, StatusCode::OK);

    let wait = std::time::Duration::from_secs(5);
    let shared = loop {
        let event = tokio::time::timeout(wait, events.next()).await.unwrap().unwrap().unwrap().payload;
        if event["type"] == json!("conversation_shared") {
            break event;
        }
    };
    assert_eq!(
        (shared["data"]["conversation"]["id"].clone(), shared["data"]["conversation"]["workspace"].clone()),
        (json!(id), json!(ws))
    );
}

#[tokio::test]
async fn deleting_a_conversation_is_audited() {
    let t = support::test_app().await;
    let app = amp_server::router(t.state.clone());
    let creds = serde_json::json!({"email": "ada@example.test", "password": "correct horse battery"});
    support::send(app.clone(), axum::http::Method::POST, "/auth/register", None, Some(creds.clone())).await;
    let login = support::send(app.clone(), axum::http::Method::POST, "/auth/login", None, Some(creds)).await;
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    let created = support::send(
        app.clone(),
        axum::http::Method::POST,
        "/conversations",
        Some(&token),
        Some(serde_json::json!({"title": "to delete"})),
    )
    .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/conversations/{id}");
    let deleted = support::send(app, axum::http::Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(deleted.status, axum::http::StatusCode::NO_CONTENT);
    let query = amp_core::audit::AuditQuery {
        action: Some(amp_core::audit::AuditAction::Deleted),
        limit: 10,
        ..Default::default()
    };
    let records = t.state.stores().audit.query(&query).await.unwrap();
    assert!(records.iter().any(|r| r.event.target == format!("conversation:{id}")), "{records:?}");
}
