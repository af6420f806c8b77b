//! The agent registry over HTTP: owners manage their agents, workspace members see shared
//! ones, and nobody learns about an agent they may not see.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{call_as, person, test_app_with, upload};

async fn create(app: &axum::Router, token: &str, spec: Value) -> String {
    let (s, agent) = call_as(app, Method::POST, "/agents/registry", token, Some(spec)).await;
    assert_eq!(s, StatusCode::CREATED, "{agent}");
    agent["id"].as_str().unwrap().to_owned()
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect()
}

/// The models the agents below name (agents may only name registry models). Nothing is
/// called: the deployments are never used here.
fn with_models(c: &mut amp_core::AmpConfig) {
    let models = serde_json::json!({"models": {
        "gpt-4o": {"provider": "OpenAI", "context_window": 128000, "max_tokens": 16384, "tier": "Premium"},
        "claude-3": {"provider": "Anthropic", "context_window": 200000, "max_tokens": 4096, "tier": "Balanced"},
        "local": {"provider": "Local", "context_window": 4096, "max_tokens": 1024, "tier": "Economical"}}});
    c.models = serde_json::from_value(models).unwrap();
}

/// The embedded defaults plus [`with_models`].
async fn app_with_models() -> support::TestApp {
    test_app_with(with_models).await
}

/// The id of the data source the round-trip test configures.
const REPORTS: &str = "01a2112a-0000-7000-8000-000000000001";

#[tokio::test]
async fn agents_round_trip_every_field_and_list_by_name() {
    // A data source (never connected to here: connections open on first use) needs closed
    // registration.
    let source = serde_json::json!({"id": REPORTS, "kind": "sql", "url": "sqlite://reports.db",
        "query": "SELECT id, title, body AS text, NULL AS url, '*' AS allowed, 0 AS updated_at FROM reports LIMIT $2"});
    let (t, tokens) = support::closed_app_with_accounts(&["owner@example.test"], |c| {
        with_models(c);
        c.data_sources.insert("reports".into(), serde_json::from_value(source).unwrap());
    })
    .await;
    let app = amp_server::router(t.state.clone());
    let owner = tokens[0].clone();
    let ws = support::workspace(&t.state, &app, &owner, &[]).await;
    let (status, file) = upload(&app, &owner, "report.txt", "text/plain", "Q3 revenue rose.", None).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    let file = file["id"].as_str().unwrap().to_owned();
    let source = REPORTS;

    let spec = json!({
        "name": "Zeta summarizer",
        "description": "Summarizes reports",
        "instructions": "Answer in three bullet points.",
        "model": "gpt-4o",
        "fallbacks": ["claude-3", "local"],
        "temperature": 0.5,
        "max_tokens": 512,
        "files": [file],
        "workspaces": [ws],
        "data_sources": [source],
        "visibility": {"scope": "workspace", "workspace": ws}
    });
    let (s, created) = call_as(&app, Method::POST, "/agents/registry", &owner, Some(spec.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    for field in spec.as_object().unwrap().keys() {
        assert_eq!(created[field], spec[field], "{field}");
    }
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/agents/registry/{id}");
    assert_eq!(call_as(&app, Method::GET, &path, &owner, None).await, (StatusCode::OK, created.clone()));

    create(&app, &owner, json!({"name": "Alpha"})).await;
    let (s, list) = call_as(&app, Method::GET, "/agents/registry", &owner, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(names(&list), ["Alpha", "Zeta summarizer"]);

    let changed = json!({
        "name": "Beta",
        "description": "Translates",
        "instructions": "Answer in French.",
        "model": "claude-3",
        "fallbacks": ["gpt-4o"],
        "temperature": 2.0,
        "max_tokens": 1,
        "files": [],
        "workspaces": [],
        "data_sources": [],
        "visibility": {"scope": "private"}
    });
    let (s, updated) = call_as(&app, Method::PUT, &path, &owner, Some(changed.clone())).await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    for field in changed.as_object().unwrap().keys() {
        assert_eq!(updated[field], changed[field], "{field}");
    }
    assert_eq!((&updated["id"], &updated["created_at"]), (&created["id"], &created["created_at"]));
    assert_eq!(call_as(&app, Method::GET, &path, &owner, None).await.1, updated);

    assert_eq!(call_as(&app, Method::DELETE, &path, &owner, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(call_as(&app, Method::GET, &path, &owner, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call_as(&app, Method::DELETE, &path, &owner, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(names(&call_as(&app, Method::GET, "/agents/registry", &owner, None).await.1), ["Alpha"]);
}

#[tokio::test]
async fn invalid_specs_are_400_naming_the_field() {
    let t = app_with_models().await;
    let app = amp_server::router(t.state.clone());
    let owner = person(&app, "owner@example.test").await;
    let id = create(&app, &owner, json!({"name": "Valid"})).await;

    for (field, spec) in [
        ("name", json!({"name": "  "})),
        ("name", json!({"name": "x".repeat(101)})),
        ("instructions", json!({"name": "a", "instructions": "x".repeat(20_001)})),
        ("temperature", json!({"name": "a", "temperature": 2.5})),
        ("temperature", json!({"name": "a", "temperature": -0.1})),
        ("max_tokens", json!({"name": "a", "max_tokens": 0})),
        ("fallbacks", json!({"name": "a", "model": "gpt-4o", "fallbacks": ["gpt-4o"]})),
        ("fallbacks", json!({"name": "a", "fallbacks": ["local", "local"]})),
        ("colour", json!({"name": "a", "colour": "red"})),
    ] {
        for (method, path) in
            [(Method::POST, "/agents/registry".to_owned()), (Method::PUT, format!("/agents/registry/{id}"))]
        {
            let (s, body) = call_as(&app, method.clone(), &path, &owner, Some(spec.clone())).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {spec}");
            assert_eq!(body["error"]["code"], "invalid_input");
            assert!(body["error"]["message"].as_str().unwrap().contains(field), "{field}: {body}");
        }
    }
    assert_eq!(
        call_as(&app, Method::GET, "/agents/registry/not-an-id", &owner, None).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(names(&call_as(&app, Method::GET, "/agents/registry", &owner, None).await.1), ["Valid"]);
}

#[tokio::test]
async fn private_agents_are_invisible_to_everyone_else() {
    let t = app_with_models().await;
    let app = amp_server::router(t.state.clone());
    let owner = person(&app, "owner@example.test").await;
    let other = person(&app, "other@example.test").await;
    let id = create(&app, &owner, json!({"name": "Secret plans"})).await;
    let path = format!("/agents/registry/{id}");

    for (method, body) in
        [(Method::GET, None), (Method::PUT, Some(json!({"name": "Mine now"}))), (Method::DELETE, None)]
    {
        let (s, b) = call_as(&app, method.clone(), &path, &other, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method}");
        assert!(!b.to_string().contains("Secret plans"), "nothing about the agent leaks");
    }
    assert_eq!(call_as(&app, Method::GET, "/agents/registry", &other, None).await.1, json!([]));
    assert_eq!(call_as(&app, Method::GET, &path, &owner, None).await.1["name"], "Secret plans");
}

#[tokio::test]
async fn workspace_agents_are_listed_for_members_and_viewers_cannot_change_them() {
    let t = app_with_models().await;
    let app = amp_server::router(t.state.clone());
    let owner = person(&app, "owner@example.test").await;
    let editor = person(&app, "editor@example.test").await;
    let viewer = person(&app, "viewer@example.test").await;
    let outsider = person(&app, "outsider@example.test").await;
    let ws = support::workspace(
        &t.state,
        &app,
        &owner,
        &[("editor@example.test", "editor"), ("viewer@example.test", "viewer")],
    )
    .await;
    let shared = json!({"name": "Team helper", "visibility": {"scope": "workspace", "workspace": ws}});
    let id = create(&app, &editor, shared).await;
    create(&app, &editor, json!({"name": "Editor's own"})).await;
    let path = format!("/agents/registry/{id}");

    for member in [&owner, &viewer] {
        assert_eq!(
            names(&call_as(&app, Method::GET, "/agents/registry", member, None).await.1),
            ["Team helper"]
        );
        assert_eq!(call_as(&app, Method::GET, &path, member, None).await.0, StatusCode::OK);
    }
    let rename = Some(json!({"name": "Viewer's now"}));
    assert_eq!(call_as(&app, Method::PUT, &path, &viewer, rename.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call_as(&app, Method::DELETE, &path, &viewer, None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call_as(&app, Method::GET, &path, &viewer, None).await.1["name"], "Team helper");

    assert_eq!(call_as(&app, Method::GET, "/agents/registry", &outsider, None).await.1, json!([]));
    assert_eq!(call_as(&app, Method::GET, &path, &outsider, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call_as(&app, Method::PUT, &path, &outsider, rename).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn sharing_needs_the_editor_role_and_readable_workspaces_need_membership() {
    let t = app_with_models().await;
    let app = amp_server::router(t.state.clone());
    let owner = person(&app, "owner@example.test").await;
    let viewer = person(&app, "viewer@example.test").await;
    let outsider = person(&app, "outsider@example.test").await;
    let ws = support::workspace(&t.state, &app, &owner, &[("viewer@example.test", "viewer")]).await;
    let shared = json!({"name": "Shared", "visibility": {"scope": "workspace", "workspace": ws}});

    let create_as = |token: String, spec: Value| {
        let app = app.clone();
        async move { call_as(&app, Method::POST, "/agents/registry", &token, Some(spec)).await }
    };
    assert_eq!(create_as(viewer.clone(), shared.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(create_as(outsider.clone(), shared).await.0, StatusCode::NOT_FOUND);
    let reads = json!({"name": "Reader", "workspaces": [ws]});
    let (s, b) = create_as(outsider.clone(), reads.clone()).await;
    assert_eq!((s, b["error"]["code"].clone()), (StatusCode::NOT_FOUND, json!("not_found")));
    assert!(!b.to_string().contains("Team"), "nothing about the workspace leaks");
    assert_eq!(create_as(viewer.clone(), reads).await.0, StatusCode::CREATED);

    // A private agent cannot be given a foreign workspace later either.
    let id = create(&app, &outsider, json!({"name": "Mine"})).await;
    let sneak = Some(json!({"name": "Mine", "workspaces": [ws]}));
    let path = format!("/agents/registry/{id}");
    assert_eq!(call_as(&app, Method::PUT, &path, &outsider, sneak).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call_as(&app, Method::GET, &path, &outsider, None).await.1["workspaces"], json!([]));

    // Nor someone else's file: it is unknown to them.
    let (_, file) = upload(&app, &owner, "plan.txt", "text/plain", "The plan.", None).await;
    let grab = json!({"name": "Grab", "files": [file["id"]]});
    let (s, b) = create_as(outsider.clone(), grab.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    assert_eq!(create_as(owner.clone(), grab).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn the_workspace_owner_can_delete_a_members_workspace_agent() {
    let t = app_with_models().await;
    let app = amp_server::router(t.state.clone());
    let owner = person(&app, "owner@example.test").await;
    let editor = person(&app, "editor@example.test").await;
    let ws = support::workspace(&t.state, &app, &owner, &[("editor@example.test", "editor")]).await;
    let shared = json!({"name": "Team helper", "visibility": {"scope": "workspace", "workspace": ws}});
    let id = create(&app, &editor, shared).await;
    let path = format!("/agents/registry/{id}");

    assert_eq!(call_as(&app, Method::DELETE, &path, &owner, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(call_as(&app, Method::GET, &path, &editor, None).await.0, StatusCode::NOT_FOUND);
    let (_, log) = call_as(&app, Method::GET, &format!("/workspaces/{ws}/activity"), &owner, None).await;
    let deleted = log.as_array().unwrap().iter().find(|e| e["action"] == "deleted").expect("an audit record");
    assert_eq!(deleted["target"], format!("agent:{id}"));
}

#[tokio::test]
async fn the_lists_an_agent_or_a_turn_carries_are_bounded_and_de_duplicated() {
    let t = test_app_with(|_| {}).await;
    let app = amp_server::router(t.state.clone());
    let owner = person(&app, "owner@example.test").await;
    let (status, file) = upload(&app, &owner, "a.txt", "text/plain", "Refunds take five days.", None).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    let id = file["id"].as_str().unwrap().to_owned();
    let agent = create(&app, &owner, json!({"name": "Dups", "files": [id, id, id]})).await;
    let (_, stored) = call_as(&app, Method::GET, &format!("/agents/registry/{agent}"), &owner, None).await;
    assert_eq!(stored["files"], json!([id]), "listed once");

    let many: Vec<String> = (0..101).map(|_| uuid_like()).collect();
    let (status, body) =
        call_as(&app, Method::POST, "/agents/registry", &owner, Some(json!({"name": "Many", "files": many})))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("at most 100"), "{body}");
    let workspaces: Vec<String> = (0..21).map(|_| uuid_like()).collect();
    let spec = json!({"name": "Wide", "workspaces": workspaces});
    let (status, _) = call_as(&app, Method::POST, "/agents/registry", &owner, Some(spec)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let files: Vec<String> = (0..51).map(|_| uuid_like()).collect();
    let (status, body) =
        call_as(&app, Method::POST, "/chat/send", &owner, Some(json!({"message": "Hi?", "files": files})))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("at most 50"), "{body}");
}

/// A fresh time-ordered id, as any id type of AMP parses.
fn uuid_like() -> String {
    amp_core::FileId::new().to_string()
}
