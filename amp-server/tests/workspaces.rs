//! Workspaces over HTTP: roles decide what each member may do, and outsiders learn nothing.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::{call_as, send, test_app};

async fn person(app: &axum::Router, email: &str) -> (String, String) {
    let body = json!({"email": email, "password": "correct horse battery"});
    let user = send(app.clone(), Method::POST, "/auth/register", None, Some(body.clone())).await;
    let login = send(app.clone(), Method::POST, "/auth/login", None, Some(body)).await;
    (login.body["access_token"].as_str().unwrap().to_owned(), user.body["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn owners_manage_editors_and_viewers_read_and_outsiders_see_nothing() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let (owner, _) = person(&app, "owner@example.test").await;
    let (editor, _) = person(&app, "editor@example.test").await;
    let (viewer, viewer_id) = person(&app, "viewer@example.test").await;
    let (outsider, _) = person(&app, "outsider@example.test").await;

    let (status, ws) =
        call_as(&app, Method::POST, "/workspaces", &owner, Some(json!({"name": "Research"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = ws["id"].as_str().unwrap().to_owned();
    let path = |rest: &str| format!("/workspaces/{id}{rest}");

    for (email, role) in [("editor@example.test", "editor"), ("viewer@example.test", "viewer")] {
        support::join(&t.state, &app, &owner, &id, email, role).await;
    }
    let (_, mine) = call_as(&app, Method::GET, "/workspaces", &viewer, None).await;
    assert_eq!(mine[0]["role"], "viewer");
    assert_eq!(
        call_as(&app, Method::GET, &path("/members"), &viewer, None).await.1.as_array().unwrap().len(),
        3
    );

    // Viewers and editors may read but not manage.
    let rename = Some(json!({"name": "Mine now"}));
    assert_eq!(call_as(&app, Method::PUT, &path(""), &viewer, rename.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call_as(&app, Method::PUT, &path(""), &editor, rename.clone()).await.0, StatusCode::FORBIDDEN);
    let invite = Some(json!({"email": "outsider@example.test", "role": "owner"}));
    assert_eq!(
        call_as(&app, Method::POST, &path("/members"), &editor, invite).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(call_as(&app, Method::DELETE, &path(""), &editor, None).await.0, StatusCode::FORBIDDEN);

    // An outsider cannot tell the workspace exists: every route answers 404.
    for (method, rest, body) in [
        (Method::GET, "", None),
        (Method::PUT, "", rename.clone()),
        (Method::DELETE, "", None),
        (Method::GET, "/members", None),
        (Method::POST, "/members", Some(json!({"email": "outsider@example.test", "role": "owner"}))),
        (Method::GET, "/activity", None),
    ] {
        let (s, b) = call_as(&app, method.clone(), &path(rest), &outsider, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {rest}");
        assert!(!b.to_string().contains("Research"), "nothing about the workspace leaks");
    }
    let unknown = format!("/workspaces/{}", amp_core::WorkspaceId::new());
    let (s, b) = call_as(&app, Method::GET, &unknown, &outsider, None).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found")),
        "same answer as a real one"
    );

    // The owner renames; members see it; the activity log records the membership changes.
    let (s, renamed) =
        call_as(&app, Method::PUT, &path(""), &owner, Some(json!({"name": "Research 2"}))).await;
    assert_eq!((s, renamed["name"].clone()), (StatusCode::OK, json!("Research 2")));
    let (_, log) = call_as(&app, Method::GET, &path("/activity"), &viewer, None).await;
    assert!(log.as_array().unwrap().len() >= 3, "creation and two invitations are logged: {log}");

    // A viewer may leave; then they are an outsider.
    let leave = format!("/workspaces/{id}/members/{viewer_id}");
    assert_eq!(call_as(&app, Method::DELETE, &leave, &viewer, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(call_as(&app, Method::GET, &path(""), &viewer, None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_last_owner_can_neither_leave_nor_step_down() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let (owner, owner_id) = person(&app, "owner@example.test").await;
    let (_, ws) = call_as(&app, Method::POST, "/workspaces", &owner, Some(json!({"name": "Solo"}))).await;
    let id = ws["id"].as_str().unwrap();
    let leave = format!("/workspaces/{id}/members/{owner_id}");
    assert_eq!(call_as(&app, Method::DELETE, &leave, &owner, None).await.0, StatusCode::CONFLICT);
    let demote = Some(json!({"email": "owner@example.test", "role": "viewer"}));
    assert_eq!(
        call_as(&app, Method::POST, &format!("/workspaces/{id}/members"), &owner, demote).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        call_as(&app, Method::DELETE, &format!("/workspaces/{id}"), &owner, None).await.0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn bad_workspace_input_is_400_and_unknown_invitees_404() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let (owner, _) = person(&app, "owner@example.test").await;
    assert_eq!(
        call_as(&app, Method::POST, "/workspaces", &owner, Some(json!({"name": "  "}))).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call_as(&app, Method::GET, "/workspaces/not-an-id", &owner, None).await.0,
        StatusCode::BAD_REQUEST
    );
    let (_, ws) = call_as(&app, Method::POST, "/workspaces", &owner, Some(json!({"name": "Team"}))).await;
    let members = format!("/workspaces/{}/members", ws["id"].as_str().unwrap());
    // An address with no account yet is invited all the same: whether one exists is not told.
    let ghost = Some(json!({"email": "ghost@example.test", "role": "viewer"}));
    assert_eq!(call_as(&app, Method::POST, &members, &owner, ghost).await.0, StatusCode::ACCEPTED);
    let bad_role = Some(json!({"email": "owner@example.test", "role": "emperor"}));
    assert_eq!(call_as(&app, Method::POST, &members, &owner, bad_role).await.0, StatusCode::BAD_REQUEST);
}
