//! The Storage agent over HTTP: real documents processed in the background, presigned
//! uploads to both blob stores, validation, deduplication, virus scanning with a real
//! clamd, re-processing, jobs, search, downloads, and deletes that leave nothing behind.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{call_as, person, processed, request_raw, test_app_with, text_pdf};

const PAGES: [&str; 3] = [
    "The aurora borealis appears when charged solar particles meet the upper atmosphere.",
    "Photosynthesis lets green plants turn sunlight, water and carbon dioxide into sugar.",
    "Quarterly revenue of the bakery grew because of its new sourdough line.",
];

/// Posts a file without waiting and returns the status and record.
async fn post_file(
    app: &axum::Router,
    token: &str,
    name: &str,
    media_type: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let auth = format!("Bearer {token}");
    let (status, _, body) = request_raw(
        app,
        Method::POST,
        &format!("/files?name={name}"),
        &[("authorization", &auth), ("content-type", media_type)],
        bytes,
    )
    .await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_multi_page_pdf_is_queued_read_page_by_page_and_found_by_search() {
    let t = test_app_with(|_| {}).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let pdf = text_pdf(&PAGES);
    let (status, file) = post_file(&app, &alice, "science.pdf", "application/pdf", pdf.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{file}");
    assert_eq!(file["status"]["state"], "queued", "answered before processing: {file}");
    let id = file["id"].as_str().unwrap().to_owned();
    let done = processed(&app, &alice, &id).await;
    assert_eq!(done["status"]["state"], "ready", "{done}");

    let query = json!({"query": "how do plants make sugar from sunlight", "limit": 3});
    let (status, found) = call_as(&app, Method::POST, "/agents/storage/search", &alice, Some(query)).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let top = &found["results"][0];
    assert_eq!(top["file"], id.as_str(), "{found}");
    assert_eq!(top["name"], "science.pdf");
    assert_eq!(top["page"], 2, "the passage keeps its page: {found}");
    assert!(top["text"].as_str().unwrap().contains("Photosynthesis"), "{found}");

    let auth = format!("Bearer {alice}");
    let (status, headers, body) =
        request_raw(&app, Method::GET, &format!("/files/{id}/content"), &[("authorization", &auth)], "")
            .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_ref(), pdf.as_slice(), "the original bytes come back");
    assert!(headers["content-disposition"].to_str().unwrap().starts_with("attachment;"));

    let bob = person(&app, "bob@example.test").await;
    let auth = format!("Bearer {bob}");
    let (status, _, _) =
        request_raw(&app, Method::GET, &format!("/files/{id}/content"), &[("authorization", &auth)], "")
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another person's file is not theirs to download");
    let (_, found) =
        call_as(&app, Method::POST, "/agents/storage/search", &bob, Some(json!({"query": "photosynthesis"})))
            .await;
    assert_eq!(found["results"], json!([]), "nobody else finds it: {found}");
}

#[tokio::test]
async fn the_same_bytes_uploaded_twice_answer_with_the_first_file() {
    let t = test_app_with(|_| {}).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let bytes = b"Meeting notes: the launch moves to March.".to_vec();
    let (status, first) = post_file(&app, &alice, "notes.txt", "text/plain", bytes.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, second) = post_file(&app, &alice, "copy%20of%20notes.txt", "text/plain", bytes).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["id"], first["id"]);
    let (_, listed) = call_as(&app, Method::GET, "/files", &alice, None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn validate_runs_the_checks_and_stores_nothing() {
    let t = test_app_with(|_| {}).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let auth = format!("Bearer {alice}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/pdf")];
    let (status, _, body) =
        request_raw(&app, Method::POST, "/files/validate?name=a.pdf", &headers, text_pdf(&["Hello."])).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["media_type"].as_str(), body["size_bytes"].is_u64()), (Some("application/pdf"), true));
    let png_as_pdf = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let (status, _, body) =
        request_raw(&app, Method::POST, "/files/validate?name=a.pdf", &headers, png_as_pdf).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{text}");
    assert!(text.contains("application/pdf") && text.contains("image/png"), "names both types: {text}");
    let named_txt = [("authorization", auth.as_str()), ("content-type", "application/pdf")];
    let (status, _, _) =
        request_raw(&app, Method::POST, "/files/validate?name=report.txt", &named_txt, text_pdf(&["x"]))
            .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "a PDF named .txt");
    let (_, listed) = call_as(&app, Method::GET, "/files", &alice, None).await;
    assert_eq!(listed, json!([]), "validation stores nothing");
}

/// The URL's path and query, to send through the router in-process.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.find('/').map(|i| rest[i..].to_owned()).unwrap_or_default()
}

async fn announce(app: &axum::Router, token: &str, name: &str, media_type: &str, size: usize) -> Value {
    let body = json!({"files": [{"name": name, "media_type": media_type, "size_bytes": size}]});
    let (status, answer) = call_as(app, Method::POST, "/files/upload-urls", token, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["files"][0].clone()
}

#[tokio::test]
async fn presigned_uploads_to_the_local_store_process_and_refuse_what_was_not_signed() {
    let t = test_app_with(|_| {}).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let text = b"Presigned uploads send bytes straight to the blob store.".to_vec();

    let good = announce(&app, &alice, "direct.txt", "text/plain", text.len()).await;
    assert_eq!(good["file"]["status"]["state"], "pending");
    assert_eq!(good["upload"]["method"], "PUT");
    let id = good["file"]["id"].as_str().unwrap().to_owned();
    let (status, body) = call_as(&app, Method::POST, &format!("/files/{id}/complete"), &alice, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "nothing uploaded yet: {body}");
    let url = path_of(good["upload"]["url"].as_str().unwrap());
    let put = |ct: &'static str, bytes: Vec<u8>, url: String| {
        let app = app.clone();
        async move { request_raw(&app, Method::PUT, &url, &[("content-type", ct)], bytes).await.0 }
    };
    assert_eq!(put("application/pdf", text.clone(), url.clone()).await, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut longer = text.clone();
    longer.extend_from_slice(b" and one more sentence");
    assert_eq!(put("text/plain", longer, url.clone()).await, StatusCode::PAYLOAD_TOO_LARGE);
    let tampered = url.replace("sig=", "sig=00");
    assert_eq!(put("text/plain", text.clone(), tampered).await, StatusCode::FORBIDDEN);
    let (_, still) = call_as(&app, Method::GET, &format!("/files/{id}/status"), &alice, None).await;
    assert_eq!(still["status"]["state"], "pending", "refused uploads store nothing: {still}");

    assert_eq!(put("text/plain", text.clone(), url.clone()).await, StatusCode::OK);
    assert_eq!(processed(&app, &alice, &id).await["status"]["state"], "ready");
    // The URL is still within its lifetime, but it delivered once: swapping the scanned
    // bytes for others is refused and the kept bytes stay.
    let swapped: Vec<u8> = text.iter().map(|b| b.to_ascii_uppercase()).collect();
    assert_eq!(put("text/plain", swapped, url).await, StatusCode::CONFLICT);
    let auth = format!("Bearer {alice}");
    let (status, _, kept) =
        request_raw(&app, Method::GET, &format!("/files/{id}/content"), &[("authorization", &auth)], "")
            .await;
    assert_eq!((status, kept.as_ref()), (StatusCode::OK, text.as_slice()));
    let (status, body) = call_as(&app, Method::POST, &format!("/files/{id}/complete"), &alice, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "completing twice is harmless: {body}");

    let bob = person(&app, "bob@example.test").await;
    let (status, _) = call_as(&app, Method::POST, &format!("/files/{id}/complete"), &bob, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body =
        json!({"files": [{"name": "big.txt", "media_type": "text/plain", "size_bytes": 26 * 1024 * 1024}]});
    let (status, _) = call_as(&app, Method::POST, "/files/upload-urls", &alice, Some(body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "over the 25 MiB default");
    let body =
        json!({"files": [{"name": "a.exe", "media_type": "application/x-msdownload", "size_bytes": 10}]});
    let (status, _) = call_as(&app, Method::POST, "/files/upload-urls", &alice, Some(body)).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn an_expired_upload_url_is_refused_by_the_store() {
    let t = test_app_with(|c| c.storage.upload_url_ttl_secs = 1).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let good = announce(&app, &alice, "late.txt", "text/plain", 5).await;
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let url = path_of(good["upload"]["url"].as_str().unwrap());
    let (status, _, _) =
        request_raw(&app, Method::PUT, &url, &[("content-type", "text/plain")], "hello").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn presigned_uploads_to_s3_go_straight_to_the_bucket() {
    let env =
        |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is unset: run scripts/test.sh"));
    let (endpoint, access, secret, bucket) = (
        env("AMP_TEST_S3_ENDPOINT"),
        env("AMP_TEST_S3_ACCESS_KEY"),
        env("AMP_TEST_S3_SECRET_KEY"),
        env("AMP_TEST_S3_BUCKET"),
    );
    let prefix = format!("ingestion-{}/", uuid_like());
    let t = test_app_with(|c| {
        c.storage.blobs = amp_core::config::BlobStoreConfig::S3(amp_core::config::S3Config {
            bucket,
            region: "us-east-1".into(),
            endpoint: Some(endpoint),
            force_path_style: true,
            access_key: Some(amp_core::Secret::new(access)),
            secret_key: Some(amp_core::Secret::new(secret)),
            server_side_encryption: None,
            kms_key_id: None,
            prefix: Some(prefix),
        });
    })
    .await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let pdf = text_pdf(&PAGES);
    let good = announce(&app, &alice, "bucket.pdf", "application/pdf", pdf.len()).await;
    let id = good["file"]["id"].as_str().unwrap().to_owned();
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().unwrap();
    let mut put = client.put(good["upload"]["url"].as_str().unwrap()).body(pdf.clone());
    for (name, value) in good["upload"]["headers"].as_object().unwrap() {
        put = put.header(name, value.as_str().unwrap());
    }
    let answer = put.send().await.unwrap();
    assert!(answer.status().is_success(), "{}", answer.text().await.unwrap());
    let (status, body) = call_as(&app, Method::POST, &format!("/files/{id}/complete"), &alice, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(processed(&app, &alice, &id).await["status"]["state"], "ready");
    let auth = format!("Bearer {alice}");
    let (status, _, body) =
        request_raw(&app, Method::GET, &format!("/files/{id}/content"), &[("authorization", &auth)], "")
            .await;
    assert_eq!((status, body.as_ref()), (StatusCode::OK, pdf.as_slice()));
    // Using the URL again writes only the staging object: what was scanned and processed
    // is what is served.
    // Same length, other bytes: the URL signs the exact size.
    let swapped: Vec<u8> = pdf.iter().map(|b| b.to_ascii_uppercase()).collect();
    let mut again = client.put(good["upload"]["url"].as_str().unwrap()).body(swapped);
    for (name, value) in good["upload"]["headers"].as_object().unwrap() {
        again = again.header(name, value.as_str().unwrap());
    }
    let _ = again.send().await.unwrap();
    let (_, _, body) =
        request_raw(&app, Method::GET, &format!("/files/{id}/content"), &[("authorization", &auth)], "")
            .await;
    assert_eq!(body.as_ref(), pdf.as_slice(), "the kept bytes are the completed ones");

    // The bucket refuses a body the URL was not signed for.
    let other = announce(&app, &alice, "other.pdf", "application/pdf", pdf.len()).await;
    let mut lying = client.put(other["upload"]["url"].as_str().unwrap()).body(pdf.clone());
    for (name, value) in other["upload"]["headers"].as_object().unwrap() {
        let value =
            if name.eq_ignore_ascii_case("content-type") { "text/plain" } else { value.as_str().unwrap() };
        lying = lying.header(name, value);
    }
    assert!(lying.send().await.unwrap().status().is_client_error(), "another media type is refused");
    let other_id = other["file"]["id"].as_str().unwrap();
    let (status, _) = call_as(&app, Method::POST, &format!("/files/{other_id}/complete"), &alice, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "nothing was stored");
}

fn uuid_like() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

#[tokio::test]
async fn an_infected_upload_is_refused_audited_and_never_served() {
    let clamd = std::env::var("AMP_TEST_CLAMD").expect("AMP_TEST_CLAMD is unset: run scripts/test.sh");
    let t = test_app_with(|c| c.storage.scanner.clamd = Some(format!("tcp://{clamd}"))).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let (status, file) = post_file(&app, &alice, "eicar.txt", "text/plain", EICAR.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{file}");
    let id = file["id"].as_str().unwrap().to_owned();
    let done = processed(&app, &alice, &id).await;
    assert_eq!(done["status"]["state"], "failed", "{done}");
    assert!(done["status"]["reason"].as_str().unwrap().contains("infected"), "{done}");
    let auth = format!("Bearer {alice}");
    let (status, _, _) =
        request_raw(&app, Method::GET, &format!("/files/{id}/content"), &[("authorization", &auth)], "")
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an infected file is never served");
    let (_, found) = call_as(
        &app,
        Method::POST,
        "/agents/storage/search",
        &alice,
        Some(json!({"query": "antivirus test"})),
    )
    .await;
    assert_eq!(found["results"], json!([]), "nor indexed");
    let query = amp_core::audit::AuditQuery { limit: 50, ..Default::default() };
    let events = t.state.stores().audit.query(&query).await.unwrap();
    assert!(
        events.iter().any(|e| e.event.action == amp_core::audit::AuditAction::Infected
            && e.event.target == format!("file:{id}")),
        "the infection is audited"
    );
    let (status, clean) =
        post_file(&app, &alice, "clean.txt", "text/plain", b"Nothing to see here.".to_vec()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(processed(&app, &alice, clean["id"].as_str().unwrap()).await["status"]["state"], "ready");
}

#[tokio::test]
async fn an_unreachable_scanner_never_lets_a_file_through() {
    let closed = format!("tcp://127.0.0.1:{}", support::free_port());
    let failing = test_app_with(|c| {
        c.storage.scanner.clamd = Some(closed.clone());
        c.storage.scanner.on_unavailable = amp_core::config::ScannerUnavailable::Fail;
    })
    .await;
    let app = amp_server::router(failing.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let (_, file) = post_file(&app, &alice, "a.txt", "text/plain", b"Unscanned text.".to_vec()).await;
    let done = processed(&app, &alice, file["id"].as_str().unwrap()).await;
    assert_eq!(done["status"]["state"], "failed", "fail closed: {done}");
    assert!(done["status"]["reason"].as_str().unwrap().contains("scanner"), "{done}");

    let waiting = test_app_with(|c| c.storage.scanner.clamd = Some(closed.clone())).await;
    let app = amp_server::router(waiting.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let (_, file) = post_file(&app, &alice, "a.txt", "text/plain", b"Unscanned text.".to_vec()).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let (_, status) =
        call_as(&app, Method::GET, &format!("/files/{}/status", file["id"].as_str().unwrap()), &alice, None)
            .await;
    let state = status["status"]["state"].as_str().unwrap();
    assert!(state == "queued" || state == "scanning", "it waits for the scanner: {status}");
}

#[tokio::test]
async fn files_are_processed_again_on_request_and_jobs_are_listed_per_person() {
    let t = test_app_with(|_| {}).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let bob = person(&app, "bob@example.test").await;
    let (_, file) =
        post_file(&app, &alice, "a.txt", "text/plain", b"Some text to process twice.".to_vec()).await;
    let id = file["id"].as_str().unwrap().to_owned();
    assert_eq!(processed(&app, &alice, &id).await["status"]["state"], "ready");
    let (status, _) =
        call_as(&app, Method::POST, "/agents/storage/process", &bob, Some(json!({"file": id}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not bob's");
    let (status, again) =
        call_as(&app, Method::POST, "/agents/storage/process", &alice, Some(json!({"file": id}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(processed(&app, &alice, &id).await["status"]["state"], "ready");
    let (status, jobs) = call_as(&app, Method::GET, "/agents/storage/jobs", &alice, None).await;
    assert_eq!(status, StatusCode::OK, "{jobs}");
    let jobs = jobs["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(
        jobs.iter().all(|j| j["payload"]["file"] == id.as_str() && j["state"] == "succeeded"),
        "{jobs:?}"
    );
    let (_, theirs) = call_as(&app, Method::GET, "/agents/storage/jobs", &bob, None).await;
    assert_eq!(theirs["jobs"], json!([]), "{theirs}");
    let chunks = t.state.stores().files.list_chunks(id.parse().unwrap()).await.unwrap();
    let ordinals: Vec<u32> = chunks.iter().map(|c| c.ordinal).collect();
    assert_eq!(
        ordinals,
        (0..chunks.len() as u32).collect::<Vec<_>>(),
        "processing twice writes one set of passages"
    );
}

#[tokio::test]
async fn deleting_files_leaves_no_blob_passage_or_vector_behind() {
    let dir = tempfile::tempdir().unwrap();
    let t = test_app_with(|c| c.data_dir = dir.path().to_owned()).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let mut ids = Vec::new();
    for (name, ct, bytes) in [
        ("science.pdf", "application/pdf", text_pdf(&PAGES)),
        ("notes.md", "text/markdown", b"# Notes\n\nThe aurora is green.".to_vec()),
    ] {
        let (_, file) = post_file(&app, &alice, name, ct, bytes).await;
        let id = file["id"].as_str().unwrap().to_owned();
        assert_eq!(processed(&app, &alice, &id).await["status"]["state"], "ready");
        ids.push(id);
    }
    let blobs = t.state.blob_store();
    assert!(!blobs.list("users/").await.unwrap().is_empty(), "originals and processed text are kept");
    for id in &ids {
        let (status, _) = call_as(&app, Method::DELETE, &format!("/files/{id}"), &alice, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    assert_eq!(blobs.list("users/").await.unwrap(), Vec::<amp_core::BlobKey>::new(), "no blob is left");
    for id in &ids {
        let file: amp_core::FileId = id.parse().unwrap();
        assert!(t.state.stores().files.get_file(file).await.unwrap().is_none());
        assert!(t.state.stores().files.list_chunks(file).await.unwrap().is_empty(), "no passage is left");
    }
    let (_, found) =
        call_as(&app, Method::POST, "/agents/storage/search", &alice, Some(json!({"query": "aurora"}))).await;
    assert_eq!(found["results"], json!([]));
}

#[tokio::test]
async fn deleting_a_workspace_removes_its_files_and_conversations_and_hands_back_the_rest() {
    let t = test_app_with(|_| {}).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let bob = person(&app, "bob@example.test").await;
    let (_, ws) = call_as(&app, Method::POST, "/workspaces", &alice, Some(json!({"name": "Team"}))).await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    support::join(&t.state, &app, &alice, &ws, "bob@example.test", "editor").await;

    let auth = format!("Bearer {bob}");
    let (status, _, body) = request_raw(
        &app,
        Method::POST,
        &format!("/files?wait=true&name=team.txt&workspace={ws}"),
        &[("authorization", &auth), ("content-type", "text/plain")],
        "The team's roadmap ships the mobile app in June.",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let team_file: Value = serde_json::from_slice(&body).unwrap();
    let (_, mine) =
        post_file(&app, &bob, "mine.txt", "text/plain", b"Bob's own notes on the garden.".to_vec()).await;
    let mine_id = mine["id"].as_str().unwrap().to_owned();
    assert_eq!(processed(&app, &bob, &mine_id).await["status"]["state"], "ready");
    let (status, _) =
        call_as(&app, Method::POST, &format!("/files/{mine_id}/share"), &bob, Some(json!({"workspace": ws})))
            .await;
    assert_eq!(status, StatusCode::OK);
    let (_, conversation) =
        call_as(&app, Method::POST, "/conversations", &bob, Some(json!({"title": "Plans", "workspace": ws})))
            .await;
    let agent = json!({"name": "helper", "visibility": {"scope": "workspace", "workspace": ws}});
    let (status, agent) = call_as(&app, Method::POST, "/agents/registry", &bob, Some(agent)).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");

    let (status, _) = call_as(&app, Method::DELETE, &format!("/workspaces/{ws}"), &bob, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "editors cannot delete it");
    let (status, _) = call_as(&app, Method::DELETE, &format!("/workspaces/{ws}"), &alice, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let team_id: amp_core::FileId = team_file["id"].as_str().unwrap().parse().unwrap();
    assert!(
        t.state.stores().files.get_file(team_id).await.unwrap().is_none(),
        "the workspace's file is gone"
    );
    assert!(t.state.stores().files.list_chunks(team_id).await.unwrap().is_empty());
    assert!(
        t.state.blob_store().list(&format!("workspaces/{ws}/")).await.unwrap().is_empty(),
        "and its bytes"
    );
    let (status, back) = call_as(&app, Method::GET, &format!("/files/{mine_id}/status"), &bob, None).await;
    assert_eq!((status, back["workspace"].clone()), (StatusCode::OK, Value::Null), "bob's file is his again");
    let cid = conversation["id"].as_str().unwrap();
    let (status, _) = call_as(&app, Method::GET, &format!("/conversations/{cid}"), &bob, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the workspace's conversations are gone");
    let aid = agent["id"].as_str().unwrap();
    let (status, kept) = call_as(&app, Method::GET, &format!("/agents/registry/{aid}"), &bob, None).await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    assert_eq!(kept["visibility"]["scope"], "private", "{kept}");
    let (_, found) = call_as(
        &app,
        Method::POST,
        "/agents/storage/search",
        &bob,
        Some(json!({"query": "roadmap mobile app"})),
    )
    .await;
    assert!(
        found["results"].as_array().unwrap().iter().all(|r| r["file"] != team_file["id"]),
        "nothing of the deleted file is found: {found}"
    );
}

#[tokio::test]
async fn downloads_wait_for_processing_and_never_become_programs() {
    let closed = format!("tcp://127.0.0.1:{}", support::free_port());
    let t = test_app_with(|c| c.storage.scanner.clamd = Some(closed)).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let (_, file) = post_file(&app, &alice, "setup.bat", "text/plain", b"echo unscanned".to_vec()).await;
    let id = file["id"].as_str().unwrap();
    let auth = format!("Bearer {alice}");
    let (status, _, _) =
        request_raw(&app, Method::GET, &format!("/files/{id}/content"), &[("authorization", &auth)], "")
            .await;
    assert_eq!(status, StatusCode::CONFLICT, "not served before it is scanned clean");

    let open = test_app_with(|_| {}).await;
    let app = amp_server::router(open.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let (_, file) = post_file(&app, &alice, "setup.bat", "text/plain", b"echo hello".to_vec()).await;
    let id = file["id"].as_str().unwrap();
    assert_eq!(processed(&app, &alice, id).await["status"]["state"], "ready");
    let auth = format!("Bearer {alice}");
    let (status, headers, _) =
        request_raw(&app, Method::GET, &format!("/files/{id}/content"), &[("authorization", &auth)], "")
            .await;
    assert_eq!(status, StatusCode::OK);
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.contains("setup.bat.txt"), "saved as text, not as a program: {disposition}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
}

/// A page of text rendered to PNG at 200 dpi by poppler: what a scanner makes.
fn scanned_page(text: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("page.pdf"), text_pdf(&[text])).unwrap();
    let status = std::process::Command::new("pdftoppm")
        .args(["-r", "200", "-png", "-singlefile", "page.pdf", "page"])
        .current_dir(dir.path())
        .status()
        .expect("pdftoppm is installed (scripts/test.sh installs poppler-utils)");
    assert!(status.success());
    std::fs::read(dir.path().join("page.png")).unwrap()
}

#[tokio::test]
async fn scanned_images_are_read_by_ocr_and_html_by_its_visible_text() {
    let t = test_app_with(|_| {}).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let png = scanned_page("Glaciers retreat faster when summers grow warmer.");
    let (status, scan) = post_file(&app, &alice, "scan.png", "image/png", png).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{scan}");
    let html = "<html><head><script>var secret = 'tracking pixel';</script><style>p{}</style></head>\
                <body><p>The lighthouse keeper logged every passing ship.</p>\
                <div hidden>invisible footnote</div></body></html>";
    let (_, page) = post_file(&app, &alice, "page.html", "text/html", html.as_bytes().to_vec()).await;
    for file in [&scan, &page] {
        let done = processed(&app, &alice, file["id"].as_str().unwrap()).await;
        assert_eq!(done["status"]["state"], "ready", "{done}");
    }
    let search = |query: &str| {
        let app = app.clone();
        let (alice, query) = (alice.clone(), query.to_owned());
        async move {
            let body = json!({"query": query, "limit": 1});
            call_as(&app, Method::POST, "/agents/storage/search", &alice, Some(body)).await.1["results"][0]
                .clone()
        }
    };
    let hit = search("glaciers melting in warm summers").await;
    assert_eq!(hit["file"], scan["id"], "{hit}");
    assert!(hit["text"].as_str().unwrap().to_lowercase().contains("glaciers"), "OCR read the words: {hit}");
    let hit = search("lighthouse keeper ships").await;
    assert_eq!(hit["file"], page["id"], "{hit}");
    let text = hit["text"].as_str().unwrap();
    assert!(!text.contains("tracking") && !text.contains("invisible"), "only visible text: {text}");
}
