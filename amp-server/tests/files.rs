//! Files over HTTP: their owner reads them, sharing puts them in a workspace for its
//! members, and nobody else learns they exist.

mod support;

use amp_core::{FileId, FileMeta, FileStatus, UserId};
use axum::http::{Method, StatusCode};
use serde_json::json;
use support::{call_as, send, test_app};

async fn person(app: &axum::Router, email: &str) -> (String, UserId) {
    let body = json!({"email": email, "password": "correct horse battery"});
    let user = send(app.clone(), Method::POST, "/auth/register", None, Some(body.clone())).await;
    let login = send(app.clone(), Method::POST, "/auth/login", None, Some(body)).await;
    let id = user.body["id"].as_str().unwrap().parse().unwrap();
    (login.body["access_token"].as_str().unwrap().to_owned(), id)
}

/// A file record as the Storage agent leaves it once indexed.
async fn stored_file(t: &support::TestApp, owner: UserId, name: &str) -> FileId {
    let now = chrono::Utc::now();
    let file = FileMeta {
        id: FileId::new(),
        owner,
        workspace: None,
        name: name.to_owned(),
        media_type: "application/pdf".to_owned(),
        size_bytes: 1_234,
        sha256: None,
        status: FileStatus::Ready,
        blob_key: None,
        job: None,
        created_at: now,
        updated_at: now,
    };
    t.state.stores().files.create_file(file.clone()).await.unwrap();
    file.id
}

#[tokio::test]
async fn files_are_read_by_their_owner_and_shared_into_workspaces_for_members() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let (owner, owner_id) = person(&app, "owner@example.test").await;
    let (viewer, _) = person(&app, "viewer@example.test").await;
    let (outsider, _) = person(&app, "outsider@example.test").await;
    let file = stored_file(&t, owner_id, "q3-report.pdf").await;
    let status = format!("/files/{file}/status");
    let share = format!("/files/{file}/share");

    let (s, meta) = call_as(&app, Method::GET, &status, &owner, None).await;
    assert_eq!((s, meta["name"].clone()), (StatusCode::OK, json!("q3-report.pdf")));
    let (_, mine) = call_as(&app, Method::GET, "/files", &owner, None).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    for who in [&viewer, &outsider] {
        let (s, body) = call_as(&app, Method::GET, &status, who, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(!body.to_string().contains("q3-report"), "nothing leaks");
        assert_eq!(call_as(&app, Method::GET, "/files", who, None).await.1, json!([]));
    }
    assert_eq!(
        call_as(&app, Method::GET, "/files/not-an-id/status", &owner, None).await.0,
        StatusCode::BAD_REQUEST
    );

    let (_, ws) = call_as(&app, Method::POST, "/workspaces", &owner, Some(json!({"name": "Finance"}))).await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    support::join(&t.state, &app, &owner, &ws, "viewer@example.test", "viewer").await;

    // Only the owner may share, and only where they are an editor.
    let into = Some(json!({"workspace": ws}));
    assert_eq!(call_as(&app, Method::POST, &share, &outsider, into.clone()).await.0, StatusCode::NOT_FOUND);
    let (_, other_ws) =
        call_as(&app, Method::POST, "/workspaces", &outsider, Some(json!({"name": "Other"}))).await;
    let elsewhere = Some(json!({"workspace": other_ws["id"]}));
    assert_eq!(call_as(&app, Method::POST, &share, &owner, elsewhere).await.0, StatusCode::NOT_FOUND);

    let (s, shared) = call_as(&app, Method::POST, &share, &owner, into.clone()).await;
    assert_eq!((s, shared["workspace"].clone()), (StatusCode::OK, json!(ws)));
    assert_eq!(call_as(&app, Method::POST, &share, &owner, into).await.0, StatusCode::CONFLICT);

    // Members read it now; the outsider still sees nothing.
    assert_eq!(call_as(&app, Method::GET, &status, &viewer, None).await.0, StatusCode::OK);
    let (_, listed) = call_as(&app, Method::GET, &format!("/files?workspace={ws}"), &viewer, None).await;
    assert_eq!(listed[0]["id"], json!(file.to_string()));
    assert_eq!(call_as(&app, Method::GET, &status, &outsider, None).await.0, StatusCode::NOT_FOUND);
    let (s, _) = call_as(&app, Method::GET, &format!("/files?workspace={ws}"), &outsider, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A viewer cannot share the file onward, even though they read it.
    let (_, viewer_ws) =
        call_as(&app, Method::POST, "/workspaces", &viewer, Some(json!({"name": "V"}))).await;
    let (s, _) =
        call_as(&app, Method::POST, &share, &viewer, Some(json!({"workspace": viewer_ws["id"]}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The workspace's activity log records the share.
    let (_, log) = call_as(&app, Method::GET, &format!("/workspaces/{ws}/activity"), &viewer, None).await;
    assert!(log.as_array().unwrap().iter().any(|e| e["action"] == "shared"), "{log}");
}

#[tokio::test]
async fn a_viewer_cannot_share_their_own_file_into_the_workspace() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let (owner, _) = person(&app, "owner@example.test").await;
    let (viewer, viewer_id) = person(&app, "viewer@example.test").await;
    let (_, ws) = call_as(&app, Method::POST, "/workspaces", &owner, Some(json!({"name": "W"}))).await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    support::join(&t.state, &app, &owner, &ws, "viewer@example.test", "viewer").await;
    let file = stored_file(&t, viewer_id, "notes.txt").await;
    let (s, _) =
        call_as(&app, Method::POST, &format!("/files/{file}/share"), &viewer, Some(json!({"workspace": ws})))
            .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, meta) = call_as(&app, Method::GET, &format!("/files/{file}/status"), &viewer, None).await;
    assert_eq!(meta["workspace"], serde_json::Value::Null, "nothing changed");
}
