//! Hybrid retrieval through `POST /agents/context/search` on the embedded defaults (the
//! local embedder, the flat vector index, tantivy): keyword search finds an exact product
//! code the embedder ranks below look-alikes, embeddings find a paraphrase that shares no
//! word with its passage, and hybrid (the default) finds both. The endpoint is authorized
//! as a chat turn is; deletes leave nothing in either index; files indexed before keyword
//! search existed are back-filled at start.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{call_as, person, reopen_in, state_in, test_app_with, upload, workspace};

const CODE: &str = "QZ-7731";

/// Catalogue entries that talk like the question about codes but share none of its words
/// (so BM25 ranks the answer first whatever order it breaks ties in), and the answer.
fn catalogue() -> Vec<String> {
    let mut entries: Vec<String> = [
        ("RT-2200", "3.1"),
        ("MV-5510", "2.4"),
        ("HX-9012", "5.0"),
        ("LP-3348", "1.7"),
        ("DW-6605", "2.9"),
        ("KC-1184", "3.6"),
    ]
    .iter()
    .map(|(code, kg)| {
        format!("Packed for delivery, the regulator {code} weighs about {kg} kilograms with its box.")
    })
    .collect();
    entries.push(format!("{CODE}: brass fitting in crates of twelve, gross mass 4.2."));
    entries
}

fn names(found: &Value) -> Vec<String> {
    found["results"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect()
}

async fn search(app: &axum::Router, token: &str, body: Value) -> Value {
    let (status, found) = call_as(app, Method::POST, "/agents/context/search", token, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    found
}

#[tokio::test]
async fn hybrid_finds_what_keyword_search_and_embeddings_each_miss() {
    let t = test_app_with(|c| c.quotas.uploads_per_hour = 0).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    for (i, entry) in catalogue().iter().enumerate() {
        let name =
            if entry.starts_with(CODE) { "answer.txt".to_owned() } else { format!("regulator-{i}.txt") };
        let (status, file) = upload(&app, &alice, &name, "text/plain", entry.clone(), None).await;
        assert_eq!(status, StatusCode::CREATED, "{file}");
    }
    let photosynthesis =
        "Photosynthesis lets green plants turn sunlight, water and carbon dioxide into sugar.";
    let (status, file) = upload(&app, &alice, "biology.txt", "text/plain", photosynthesis, None).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");

    // An exact code: only the answer holds any of the query's words, so BM25 puts it first;
    // the embedder sees a question about a part's shipping weight and prefers the passages
    // that talk like that.
    let code_query = format!("shipping weight of the {CODE} valve");
    let by = |mode: &str| json!({"query": code_query, "mode": mode, "limit": 3});
    let keyword = names(&search(&app, &alice, by("keyword")).await);
    assert_eq!(keyword.first().map(String::as_str), Some("answer.txt"), "{keyword:?}");
    let vector = names(&search(&app, &alice, by("vector")).await);
    assert!(!vector.contains(&"answer.txt".to_owned()), "the embedder alone misses it: {vector:?}");
    let found = search(&app, &alice, json!({"query": code_query, "limit": 3})).await;
    let hybrid = names(&found);
    assert!(hybrid.contains(&"answer.txt".to_owned()), "hybrid (the default) finds it: {found}");
    let hit = found["results"].as_array().unwrap().iter().find(|r| r["name"] == "answer.txt").unwrap();
    assert_eq!(hit["ranks"]["keyword"], 1, "each result carries its rank in each retriever: {hit}");
    assert!(hit["ranks"]["vector"].as_u64().is_none_or(|r| r > 3), "{hit}");
    assert_eq!(hit["kind"], "file");
    assert!(
        hit["file"].is_string() && hit["chunk"].is_string() && hit["byte_range"]["end"].is_u64(),
        "{hit}"
    );
    assert!(hit["text"].as_str().unwrap().contains(CODE), "{hit}");
    assert!(hit["score"].as_f64().unwrap() > 0.0, "{hit}");

    // A paraphrase shares no word with its passage: keyword search cannot find it.
    let paraphrase = "how do leaves make food out of light";
    let by = |mode: &str| json!({"query": paraphrase, "mode": mode, "limit": 3});
    let keyword = names(&search(&app, &alice, by("keyword")).await);
    assert!(!keyword.contains(&"biology.txt".to_owned()), "{keyword:?}");
    let vector = names(&search(&app, &alice, by("vector")).await);
    assert_eq!(vector.first().map(String::as_str), Some("biology.txt"), "{vector:?}");
    let hybrid = names(&search(&app, &alice, by("hybrid")).await);
    assert_eq!(hybrid.first().map(String::as_str), Some("biology.txt"), "{hybrid:?}");
}

#[tokio::test]
async fn context_search_reads_only_what_a_turn_may_and_refuses_bad_requests() {
    let t = test_app_with(|_| {}).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let bob = person(&app, "bob@example.test").await;
    let secret = "The vault combination for the Zephyr project is kept in drawer nine.";
    let (_, file) = upload(&app, &alice, "private.txt", "text/plain", secret, None).await;
    let private = file["id"].as_str().unwrap().to_owned();
    let carol = person(&app, "carol@example.test").await;
    let ws = workspace(&t.state, &app, &alice, &[("carol@example.test", "viewer")]).await;
    let shared = "Zephyr project meetings happen on Tuesdays in room four.";
    let (status, file) = upload(&app, &alice, "meetings.txt", "text/plain", shared, Some(&ws)).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");

    let query = |extra: Value| {
        let mut body = json!({"query": "Zephyr project"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    for mode in ["vector", "keyword", "hybrid"] {
        let mut mine = names(&search(&app, &alice, query(json!({"mode": mode}))).await);
        mine.sort();
        assert_eq!(
            mine,
            ["meetings.txt", "private.txt"],
            "a personal search reads the caller's own files ({mode})"
        );
        for who in [&bob, &carol] {
            let theirs = search(&app, who, query(json!({"mode": mode}))).await;
            assert_eq!(theirs["results"], json!([]), "never another person's files ({mode})");
        }
        for who in [&alice, &carol] {
            let team = names(&search(&app, who, query(json!({"mode": mode, "workspace": ws}))).await);
            assert_eq!(
                team,
                ["meetings.txt"],
                "a workspace search reads the workspace's files only ({mode})"
            );
        }
    }
    let asks = [
        (&bob, query(json!({"files": [private]})), StatusCode::NOT_FOUND),
        (&bob, query(json!({"workspace": ws})), StatusCode::NOT_FOUND),
        (&carol, query(json!({"workspace": ws, "files": [private]})), StatusCode::NOT_FOUND),
        (&alice, query(json!({"workspace": ws, "files": [private]})), StatusCode::BAD_REQUEST),
        (&alice, query(json!({"mode": "fuzzy"})), StatusCode::BAD_REQUEST),
        (&alice, query(json!({"limit": 0})), StatusCode::BAD_REQUEST),
        (&alice, query(json!({"limit": 101})), StatusCode::BAD_REQUEST),
        (&alice, json!({"query": "  "}), StatusCode::BAD_REQUEST),
        (&alice, json!({"query": "x".repeat(4_001)}), StatusCode::BAD_REQUEST),
        (&alice, query(json!({"extra": true})), StatusCode::BAD_REQUEST),
        (&alice, query(json!({"files": ["not-an-id"]})), StatusCode::BAD_REQUEST),
        (&alice, query(json!({"data_sources": [uuid::Uuid::new_v4()]})), StatusCode::NOT_FOUND),
        // No more than a turn may name: each costs a lookup.
        (
            &alice,
            query(json!({"files": (0..51).map(|_| uuid::Uuid::new_v4()).collect::<Vec<_>>()})),
            StatusCode::BAD_REQUEST,
        ),
        (
            &alice,
            query(json!({"data_sources": (0..21).map(|_| uuid::Uuid::new_v4()).collect::<Vec<_>>()})),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (who, body, expected) in asks {
        let (status, answer) =
            call_as(&app, Method::POST, "/agents/context/search", who, Some(body.clone())).await;
        assert_eq!(status, expected, "{body} → {answer}");
        assert!(answer["error"]["message"].is_string(), "a clear error: {answer}");
    }
    let anonymous = support::call(app.clone(), Method::POST, "/agents/context/search").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_deleted_file_leaves_nothing_in_either_index() {
    let dir = tempfile::tempdir().unwrap();
    let (kept, gone) = {
        let state = state_in(dir.path(), |_| {}).await;
        let app = amp_server::router(state.clone());
        let alice = person(&app, "alice@example.test").await;
        let mut ids = Vec::new();
        for name in ["kept.txt", "gone.txt"] {
            let text = format!("Quokkas live on Rottnest Island ({name}).");
            let (_, file) = upload(&app, &alice, name, "text/plain", text, None).await;
            ids.push(file["id"].as_str().unwrap().parse::<amp_core::FileId>().unwrap());
        }
        let found = search(&app, &alice, json!({"query": "quokkas", "mode": "keyword"})).await;
        assert_eq!(names(&found).len(), 2, "{found}");
        let (status, _) = call_as(&app, Method::DELETE, &format!("/files/{}", ids[1]), &alice, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let found = search(&app, &alice, json!({"query": "quokkas", "mode": "keyword"})).await;
        assert_eq!(names(&found), vec!["kept.txt"], "{found}");
        (ids[0], ids[1])
    };
    // Read the indexes themselves, not through the file list a search starts from.
    let state = reopen_in(dir.path(), |_| {}).await;
    drop(state);
    let keywords = loop {
        match amp_providers::TantivyKeywordIndex::open(&dir.path().join("keywords")) {
            Ok(index) => break index,
            Err(e) if e.to_string().contains("already open") => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    };
    use amp_core::KeywordIndex;
    assert_eq!(
        keywords.missing_files(&[kept, gone]).await.unwrap(),
        vec![gone],
        "no keyword entry outlives its file"
    );
    assert_eq!(keywords.delete_file(gone).await.unwrap(), 0);
}

#[tokio::test]
async fn files_indexed_before_keyword_search_are_back_filled_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let state = state_in(dir.path(), |_| {}).await;
        let app = amp_server::router(state.clone());
        let alice = person(&app, "alice@example.test").await;
        let (status, file) =
            upload(&app, &alice, "old.txt", "text/plain", "Axolotls regrow their limbs.", None).await;
        assert_eq!(status, StatusCode::CREATED, "{file}");
        file["id"].as_str().unwrap().to_owned()
    };
    // An installation from before keyword search: the passages and vectors, no keyword
    // index (removed once the first server has let go of it).
    drop(reopen_in(dir.path(), |_| {}).await);
    for _ in 0..50 {
        if std::fs::remove_dir_all(dir.path().join("keywords")).is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let state = reopen_in(dir.path(), |_| {}).await;
    let app = amp_server::router(state.clone());
    let alice = person(&app, "alice@example.test").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let found = search(&app, &alice, json!({"query": "axolotls", "mode": "keyword"})).await;
        if found["results"][0]["file"] == id.as_str() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not back-filled: {found}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_agent_keeps_its_own_retrieval_settings_within_bounds() {
    let t = test_app_with(|_| {}).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    let body = json!({"name": "Codes", "retrieval": {"mode": "keyword", "keyword_weight": 2.0}});
    let (status, agent) = call_as(&app, Method::POST, "/agents/registry", &alice, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    assert_eq!(agent["retrieval"], json!({"mode": "keyword", "keyword_weight": 2.0}));
    let (_, read) = call_as(
        &app,
        Method::GET,
        &format!("/agents/registry/{}", agent["id"].as_str().unwrap()),
        &alice,
        None,
    )
    .await;
    assert_eq!(read["retrieval"], agent["retrieval"], "stored as given");
    for retrieval in [
        json!({"vector_weight": -1.0}),
        json!({"keyword_weight": 101.0}),
        json!({"vector_weight": 0.0, "keyword_weight": 0.0}),
        json!({"mode": "fuzzy"}),
        json!({"rrf_k": 5}),
    ] {
        let body = json!({"name": "Bad", "retrieval": retrieval});
        let (status, answer) =
            call_as(&app, Method::POST, "/agents/registry", &alice, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
    }
}
