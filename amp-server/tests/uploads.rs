//! Uploading and deleting files: what is refused and why, who may delete, and that a
//! refusal or failure loses nothing already stored.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::Value;
use support::{call_as, person, test_app, test_app_with, upload};

fn names(files: &Value) -> Vec<&str> {
    files.as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_text_upload_is_ready_with_its_type_size_and_hash() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let (status, file) =
        upload(&app, &alice, "notes.md", "text/markdown; charset=utf-8", "# Notes\n\nHello.", None).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(file["status"]["state"], "ready");
    assert_eq!(file["media_type"], "text/markdown");
    assert_eq!(file["size_bytes"], 15);
    assert_eq!(file["sha256"], SHA256_OF_NOTES);
    let (status, listed) = call_as(&app, Method::GET, "/files", &alice, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&listed), ["notes.md"]);
}

/// `sha256sum` of `# Notes\n\nHello.`.
const SHA256_OF_NOTES: &str = "0705d97c3fd8ac43b6428d30591850f24fbc00da22a30454053e9c290d952973";

/// Who uploads, the name, media type, bytes and workspace, and the status and code expected.
type Refusal<'a> = (&'a str, &'a str, &'a str, Vec<u8>, Option<&'a str>, StatusCode, &'a str);

#[tokio::test]
async fn bad_uploads_are_refused_with_the_right_status_and_lose_nothing() {
    let t = test_app_with(|c| c.storage.max_file_bytes = 64).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let viewer = person(&app, "viewer@example.test").await;
    let outsider = person(&app, "outsider@example.test").await;
    let team = support::workspace(&t.state, &app, &alice, &[("viewer@example.test", "viewer")]).await;
    let (status, _) = upload(&app, &alice, "keep.txt", "text/plain", "Keep me.", None).await;
    assert_eq!(status, StatusCode::CREATED);

    let pdf_claiming_text: &[u8] = b"%PDF-1.7\n\xE2\xE3\xCF\xD3 binary";
    let cases: Vec<Refusal> = vec![
        (
            &alice,
            "big.txt",
            "text/plain",
            vec![b'a'; 65],
            None,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            &alice,
            "big.txt",
            "text/plain",
            vec![b'a'; 10_000],
            None,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            &alice,
            "lie.txt",
            "text/plain",
            pdf_claiming_text.to_vec(),
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            &alice,
            "a.png",
            "image/png",
            b"\x89PNG".to_vec(),
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (&alice, "empty.txt", "text/plain", Vec::new(), None, StatusCode::BAD_REQUEST, "invalid_input"),
        (
            &alice,
            "blank.txt",
            "text/plain",
            b"  \n ".to_vec(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (&viewer, "v.txt", "text/plain", b"hi".to_vec(), Some(&team), StatusCode::FORBIDDEN, "forbidden"),
        (&outsider, "o.txt", "text/plain", b"hi".to_vec(), Some(&team), StatusCode::NOT_FOUND, "not_found"),
        (
            &alice,
            "w.txt",
            "text/plain",
            b"hi".to_vec(),
            Some("not-an-id"),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
    ];
    for (token, name, media_type, bytes, ws, status, code) in cases {
        let (got, body) = upload(&app, token, name, media_type, bytes, ws).await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{name}: {body}");
    }
    // Refused before anything was stored; the earlier file is untouched.
    let (_, listed) = call_as(&app, Method::GET, "/files", &alice, None).await;
    assert_eq!(names(&listed), ["keep.txt"], "{listed}");
    assert_eq!(listed[0]["status"]["state"], "ready");
}

#[tokio::test]
async fn an_unavailable_embedder_leaves_the_file_failed_with_a_reason_and_no_paths() {
    let missing = tempfile::tempdir().unwrap();
    let t = test_app_with(|c| {
        c.model_dir = missing.path().to_owned();
        c.storage.max_attempts = 1;
    })
    .await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let (status, body) = upload(&app, &alice, "a.txt", "text/plain", "Some text.", None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["state"], "failed", "{body}");
    assert!(!body.to_string().contains(missing.path().to_str().unwrap()), "paths stay in the log: {body}");
    let (_, listed) = call_as(&app, Method::GET, "/files", &alice, None).await;
    assert_eq!(listed[0]["status"]["state"], "failed");
}

#[tokio::test]
async fn owners_and_workspace_owners_delete_files_and_others_cannot() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let editor = person(&app, "editor@example.test").await;
    let outsider = person(&app, "outsider@example.test").await;
    let team = support::workspace(&t.state, &app, &alice, &[("editor@example.test", "editor")]).await;
    let (_, mine) = upload(&app, &alice, "mine.txt", "text/plain", "Alice's notes.", None).await;
    let (_, theirs) = upload(&app, &editor, "theirs.txt", "text/plain", "Editor's notes.", Some(&team)).await;
    let (_, alices_shared) =
        upload(&app, &alice, "shared.txt", "text/plain", "Shared notes.", Some(&team)).await;
    let path = |f: &Value| format!("/files/{}", f["id"].as_str().unwrap());

    assert_eq!(call_as(&app, Method::DELETE, &path(&mine), &outsider, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call_as(&app, Method::DELETE, &path(&mine), &editor, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        call_as(&app, Method::DELETE, &path(&alices_shared), &editor, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call_as(&app, Method::DELETE, "/files/not-an-id", &alice, None).await.0,
        StatusCode::BAD_REQUEST
    );

    // The workspace's owner may remove a member's workspace file; an owner their own.
    assert_eq!(call_as(&app, Method::DELETE, &path(&theirs), &alice, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(call_as(&app, Method::DELETE, &path(&mine), &alice, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(call_as(&app, Method::DELETE, &path(&mine), &alice, None).await.0, StatusCode::NOT_FOUND);
    let status_path = format!("{}/status", path(&mine));
    assert_eq!(call_as(&app, Method::GET, &status_path, &alice, None).await.0, StatusCode::NOT_FOUND);
    let (_, listed) = call_as(&app, Method::GET, &format!("/files?workspace={team}"), &alice, None).await;
    assert_eq!(names(&listed), ["shared.txt"]);
}

#[tokio::test]
async fn a_file_being_processed_cannot_be_deleted_until_it_is_stale() {
    let t = test_app().await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let me = call_as(&app, Method::GET, "/session/current", &alice, None).await.1;
    let owner: amp_core::UserId = me["user"]["id"].as_str().unwrap().parse().unwrap();
    let processing = |minutes_ago: i64| {
        let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
        amp_core::FileMeta {
            id: amp_core::FileId::new(),
            owner,
            workspace: None,
            name: "big.txt".into(),
            media_type: "text/plain".into(),
            size_bytes: 10,
            sha256: None,
            status: amp_core::FileStatus::Embedding { done: 1, total: 2 },
            blob_key: None,
            job: None,
            created_at: at,
            updated_at: at,
        }
    };
    let (busy, abandoned) = (processing(0), processing(11));
    for file in [&busy, &abandoned] {
        t.state.stores().files.create_file(file.clone()).await.unwrap();
    }
    let (status, body) = call_as(&app, Method::DELETE, &format!("/files/{}", busy.id), &alice, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = call_as(&app, Method::DELETE, &format!("/files/{}", abandoned.id), &alice, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}
