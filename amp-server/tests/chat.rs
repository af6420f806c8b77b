//! Chat turns end to end: uploads made searchable by the real local embedder, retrieval
//! scoped by who asks and where, answers from a loopback OpenAI-compatible model, stored
//! with citations.

mod support;

use amp_providers::mock::openai::{self, ChatCompletionStream};
use amp_providers::mock::{MockResponse, MockServer, RecordedRequest};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestApp, call_as, loopback_registry, person, post_text, test_app_with, upload};

/// What the mock model answers: one real citation, one that names no source.
const ANSWER: &str = "Refunds take five business days [1]. Also [7].";

fn model_answers(request: &RecordedRequest) -> MockResponse {
    let body = request.json().unwrap_or(Value::Null);
    if body["stream"] == json!(true) {
        ChatCompletionStream::new("chatcmpl-1", "m")
            .text("Refunds take five business days [1].")
            .text(" Also [7].")
            .usage(120, 12)
            .into_response()
    } else {
        MockResponse::json_text(
            200,
            openai::chat_completion("chatcmpl-1", "m", ANSWER, &[], "stop", (120, 12)),
        )
    }
}

struct Chat {
    app: axum::Router,
    upstream: MockServer,
    t: TestApp,
}

async fn chat_app() -> Chat {
    let upstream = MockServer::start(model_answers).await.unwrap();
    let models = loopback_registry(&upstream, 8192, 1024);
    let t = test_app_with(|c| {
        c.models = models;
        c.router.retry.retries_per_model = 0;
    })
    .await;
    Chat { app: amp_server::router(t.state.clone()), upstream, t }
}

async fn text_file(app: &axum::Router, token: &str, name: &str, text: &str, ws: Option<&str>) -> String {
    let (status, file) = upload(app, token, name, "text/plain", text.to_owned(), ws).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(file["status"]["state"], "ready");
    file["id"].as_str().unwrap().to_owned()
}

/// The file ids of an answer's sources, sorted.
fn source_files(answer: &Value) -> Vec<String> {
    let mut files: Vec<String> = answer["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["file"].as_str().unwrap().to_owned())
        .collect();
    files.sort();
    files.dedup();
    files
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// The system prompt the model last received.
fn last_system_prompt(upstream: &MockServer) -> String {
    let request = upstream.last_request().unwrap().json().unwrap();
    let first = &request["messages"][0];
    assert_eq!(first["role"], "system", "{request}");
    first["content"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_workspace_chat_retrieves_from_exactly_the_workspace_files() {
    let c = chat_app().await;
    let alice = person(&c.app, "alice@example.test").await;
    let bob = person(&c.app, "bob@example.test").await;
    let team = support::workspace(&c.t.state, &c.app, &alice, &[("bob@example.test", "editor")]).await;
    let solo = support::workspace(&c.t.state, &c.app, &alice, &[]).await;

    let alice_own = text_file(&c.app, &alice, "alice.txt", "Refunds for hardware take ten days.", None).await;
    let bob_own = text_file(&c.app, &bob, "bob.txt", "Refunds for travel are never granted.", None).await;
    let shared = text_file(&c.app, &bob, "policy.txt", "Refunds take five business days.", Some(&team)).await;
    let elsewhere =
        text_file(&c.app, &alice, "other.txt", "Refunds in the other team are instant.", Some(&solo)).await;

    let ask = json!({"message": "How long do refunds take?", "workspace": team});
    let (status, answer) = call_as(&c.app, Method::POST, "/chat/send", &alice, Some(ask.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Every member reads the answer, so it reads the workspace's files only: not her
    // private ones, not another workspace's, not Bob's.
    assert_eq!(source_files(&answer), vec![shared.clone()]);
    let prompt = last_system_prompt(&c.upstream);
    assert!(prompt.contains("five business days"), "{prompt}");
    assert!(
        !prompt.contains("ten days") && !prompt.contains("travel") && !prompt.contains("instant"),
        "{prompt}"
    );

    // The same question from Bob in the same workspace reads the same.
    let (status, answer) = call_as(&c.app, Method::POST, "/chat/send", &bob, Some(ask)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(source_files(&answer), vec![shared.clone()]);
    let (_, answer) =
        call_as(&c.app, Method::POST, "/chat/send", &bob, Some(json!({"message": "Refunds?"}))).await;
    assert_eq!(
        source_files(&answer),
        sorted(vec![bob_own, shared.clone()]),
        "his own, outside the workspace"
    );

    // Naming a private file in a workspace chat is refused rather than leaked.
    let ask = json!({"message": "Refunds?", "workspace": team, "files": [alice_own]});
    let (status, answer) = call_as(&c.app, Method::POST, "/chat/send", &alice, Some(ask)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    // Outside any workspace, every file Alice owns and nothing else: not the workspace's.
    let (_, answer) =
        call_as(&c.app, Method::POST, "/chat/send", &alice, Some(json!({"message": "Refunds?"}))).await;
    assert_eq!(source_files(&answer), sorted(vec![alice_own, elsewhere]));

    // A member of another workspace only: Carol's chat there never reads the team's files.
    let carol = person(&c.app, "carol@example.test").await;
    let hers = support::workspace(&c.t.state, &c.app, &carol, &[]).await;
    let carols = text_file(&c.app, &carol, "carol.txt", "Refunds for Carol are weekly.", Some(&hers)).await;
    let ask = json!({"message": "How long do refunds take?", "workspace": hers});
    let (_, answer) = call_as(&c.app, Method::POST, "/chat/send", &carol, Some(ask)).await;
    assert_eq!(source_files(&answer), vec![carols]);
}

#[tokio::test]
async fn answers_are_stored_with_citations_and_markers_naming_no_source_dropped() {
    let c = chat_app().await;
    let alice = person(&c.app, "alice@example.test").await;
    let file = text_file(&c.app, &alice, "policy.md", "Refunds take five business days.", None).await;

    let (status, answer) = call_as(
        &c.app,
        Method::POST,
        "/chat/send",
        &alice,
        Some(json!({"message": "How long do refunds take?"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["answer"]["content"], "Refunds take five business days [1]. Also.");
    let citations = answer["answer"]["citations"].as_array().unwrap();
    assert_eq!(citations.len(), 1);
    assert_eq!(citations[0]["source"], 1);
    assert_eq!(citations[0]["file"], file.as_str());
    assert_eq!(citations[0]["snippet"], "Refunds take five business days.");
    assert_eq!(answer["answer"]["usage"], json!({"prompt_tokens": 120, "completion_tokens": 12}));
    assert_eq!(answer["deployment"], "loopback");
    let conversation = answer["conversation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(answer["conversation"]["title"], "How long do refunds take?");

    // A second turn continues the conversation and sends the first one as history.
    let next = json!({"message": "And exchanges?", "conversation": conversation});
    let (status, _) = call_as(&c.app, Method::POST, "/chat/send", &alice, Some(next)).await;
    assert_eq!(status, StatusCode::OK);
    let sent = c.upstream.last_request().unwrap().json().unwrap();
    let roles: Vec<&str> =
        sent["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(sent["messages"][2]["content"], "Refunds take five business days [1]. Also.");

    let (status, page) =
        call_as(&c.app, Method::GET, &format!("/conversations/{conversation}"), &alice, None).await;
    assert_eq!(status, StatusCode::OK);
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[0]["content"], "How long do refunds take?");
    assert_eq!(messages[1]["citations"][0]["file"], file.as_str());
    assert_eq!(page["conversation"]["model"], "m");
}

#[tokio::test]
async fn streamed_turns_send_sources_first_and_store_the_cited_answer() {
    let c = chat_app().await;
    let alice = person(&c.app, "alice@example.test").await;
    let file = text_file(&c.app, &alice, "policy.txt", "Refunds take five business days.", None).await;

    let (status, _, body) =
        post_text(&c.app, "/chat/stream", &alice, json!({"message": "How long do refunds take?"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events: Vec<(String, Value)> = body
        .split("\n\n")
        .filter_map(|frame| {
            let name = frame.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = frame.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_owned(), serde_json::from_str(data).unwrap()))
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["start", "delta", "delta", "done"], "{body}");
    assert_eq!(events[0].1["sources"][0]["file"], file.as_str());
    let text: String = events[1..3].iter().map(|(_, d)| d["text"].as_str().unwrap()).collect();
    assert_eq!(text, ANSWER);
    let done = &events[3].1;
    assert_eq!(done["content"], "Refunds take five business days [1]. Also.");
    assert_eq!(done["citations"][0]["file"], file.as_str());

    let conversation = events[0].1["conversation"]["id"].as_str().unwrap();
    let (_, page) =
        call_as(&c.app, Method::GET, &format!("/conversations/{conversation}"), &alice, None).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
    assert_eq!(page["messages"][1]["id"], done["id"]);
}

#[tokio::test]
async fn an_agent_reads_only_its_sources_and_its_instructions_and_sampling_apply() {
    let c = chat_app().await;
    let alice = person(&c.app, "alice@example.test").await;
    let team = support::workspace(&c.t.state, &c.app, &alice, &[]).await;
    let cabin = text_file(&c.app, &alice, "cabin.txt", "The cabin key is under the blue pot.", None).await;
    let boat = text_file(&c.app, &alice, "boat.txt", "The boat key hangs by the door.", None).await;
    let shared =
        text_file(&c.app, &alice, "garage.txt", "The garage key is in the drawer.", Some(&team)).await;

    let spec = json!({"name": "Keys", "instructions": "Answer like a pirate.", "temperature": 0.1,
        "max_tokens": 50, "files": [cabin]});
    let (status, agent) = call_as(&c.app, Method::POST, "/agents/registry", &alice, Some(spec)).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    let ask = json!({"message": "Where is the key?", "agent": agent["id"]});
    let (status, answer) = call_as(&c.app, Method::POST, "/chat/send", &alice, Some(ask)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(source_files(&answer), vec![cabin.clone()]);
    assert_eq!(answer["conversation"]["agent"], agent["id"]);
    let sent = c.upstream.last_request().unwrap().json().unwrap();
    assert!(sent["messages"][0]["content"].as_str().unwrap().starts_with("Answer like a pirate."));
    assert_eq!(sent["temperature"], json!(0.1));
    assert_eq!(sent["max_tokens"], 50);

    // The conversation keeps its agent: the next turn reads the same sources.
    let next = json!({"message": "And the spare?", "conversation": answer["conversation"]["id"]});
    let (_, again) = call_as(&c.app, Method::POST, "/chat/send", &alice, Some(next)).await;
    assert_eq!(source_files(&again), vec![cabin.clone()]);

    // An agent over a workspace reads that workspace's files.
    let spec = json!({"name": "Team keys", "workspaces": [team]});
    let (_, team_agent) = call_as(&c.app, Method::POST, "/agents/registry", &alice, Some(spec)).await;
    let ask = json!({"message": "Where is the key?", "agent": team_agent["id"]});
    let (_, answer) = call_as(&c.app, Method::POST, "/chat/send", &alice, Some(ask)).await;
    assert_eq!(source_files(&answer), vec![shared]);

    // Files attached to a turn are exactly what it reads.
    let ask = json!({"message": "Where is the key?", "files": [boat]});
    let (_, answer) = call_as(&c.app, Method::POST, "/chat/send", &alice, Some(ask)).await;
    assert_eq!(source_files(&answer), vec![boat]);
}

#[tokio::test]
async fn a_shared_agent_never_shows_a_member_a_file_they_cannot_read() {
    let c = chat_app().await;
    let alice = person(&c.app, "alice@example.test").await;
    let bob = person(&c.app, "bob@example.test").await;
    let team = support::workspace(&c.t.state, &c.app, &alice, &[("bob@example.test", "editor")]).await;
    let private = text_file(&c.app, &alice, "diary.txt", "The key is in my secret diary.", None).await;
    let shared = text_file(&c.app, &alice, "keys.txt", "The key is at the front desk.", Some(&team)).await;
    let spec = json!({"name": "Keys", "files": [private, shared], "visibility": {"scope": "workspace", "workspace": team}});
    let (status, agent) = call_as(&c.app, Method::POST, "/agents/registry", &alice, Some(spec)).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");

    let ask = json!({"message": "Where is the key?", "agent": agent["id"], "workspace": team});
    let (status, answer) = call_as(&c.app, Method::POST, "/chat/send", &bob, Some(ask.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(source_files(&answer), vec![shared.clone()]);
    assert!(!last_system_prompt(&c.upstream).contains("diary"));
    // Even for its owner: the workspace's members read the answer, so not her diary.
    let (_, answer) = call_as(&c.app, Method::POST, "/chat/send", &alice, Some(ask)).await;
    assert_eq!(source_files(&answer), vec![shared.clone()]);
    let _ = private;
}

#[tokio::test]
async fn turns_are_authorized_and_failures_store_nothing() {
    let c = chat_app().await;
    let alice = person(&c.app, "alice@example.test").await;
    let viewer = person(&c.app, "viewer@example.test").await;
    let outsider = person(&c.app, "outsider@example.test").await;
    let team = support::workspace(&c.t.state, &c.app, &alice, &[("viewer@example.test", "viewer")]).await;
    let file = text_file(&c.app, &alice, "a.txt", "Refunds take five business days.", None).await;
    let (_, answer) = call_as(
        &c.app,
        Method::POST,
        "/chat/send",
        &alice,
        Some(json!({"message": "Refunds?", "workspace": team})),
    )
    .await;
    let conversation = answer["conversation"]["id"].as_str().unwrap().to_owned();
    let (_, mine) =
        call_as(&c.app, Method::POST, "/agents/registry", &alice, Some(json!({"name": "Mine"}))).await;

    let turn = |extra: Value| {
        let mut body = json!({"message": "Refunds?"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        Some(body)
    };
    let cases = [
        (&viewer, turn(json!({"conversation": conversation})), StatusCode::FORBIDDEN),
        (&outsider, turn(json!({"conversation": conversation})), StatusCode::NOT_FOUND),
        (&viewer, turn(json!({"workspace": team})), StatusCode::FORBIDDEN),
        (&outsider, turn(json!({"workspace": team})), StatusCode::NOT_FOUND),
        (&outsider, turn(json!({"files": [file]})), StatusCode::NOT_FOUND),
        (&outsider, turn(json!({"agent": mine["id"]})), StatusCode::NOT_FOUND),
        (&outsider, turn(json!({"model": "no-such-model"})), StatusCode::NOT_FOUND),
        (&alice, turn(json!({"model": "m", "agent": mine["id"]})), StatusCode::BAD_REQUEST),
        (&alice, Some(json!({"message": "   "})), StatusCode::BAD_REQUEST),
        (&alice, Some(json!({"message": "hi", "colour": "red"})), StatusCode::BAD_REQUEST),
    ];
    for (token, body, expected) in cases {
        let (status, error) = call_as(&c.app, Method::POST, "/chat/send", token, body.clone()).await;
        assert_eq!(status, expected, "{body:?} → {error}");
        assert!(error["error"]["code"].is_string(), "{error}");
        assert!(!error.to_string().contains("Refunds take"), "nothing leaks: {error}");
    }
    let (_, outsiders) = call_as(&c.app, Method::GET, "/conversations", &outsider, None).await;
    assert!(outsiders["conversations"].as_array().unwrap().is_empty());

    // The model failing before its first token: an error, and no conversation is made.
    drop(c.upstream);
    let (status, error) =
        call_as(&c.app, Method::POST, "/chat/send", &viewer, Some(json!({"message": "Refunds?"}))).await;
    assert!(status.is_server_error(), "{status} {error}");
    let (_, theirs) = call_as(&c.app, Method::GET, "/conversations", &viewer, None).await;
    assert!(theirs["conversations"].as_array().unwrap().is_empty(), "{theirs}");
}

#[tokio::test]
async fn closing_the_stream_stops_the_model_and_stores_no_answer() {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let slow = |_: &RecordedRequest| {
        let mut answer = ChatCompletionStream::new("chatcmpl-slow", "m");
        for i in 0..50 {
            answer = answer.text(&format!("word{i} "));
        }
        answer.into_response().with_delay_between(std::time::Duration::from_millis(100))
    };
    let upstream = MockServer::start(slow).await.unwrap();
    let models = loopback_registry(&upstream, 8192, 1024);
    let t = test_app_with(|c| c.models = models).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;

    let request = axum::http::Request::post("/chat/stream")
        .header("authorization", format!("Bearer {alice}"))
        .header("content-type", "application/json")
        .body(Body::from(json!({"message": "Talk for a while."}).to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut seen = String::new();
    while !seen.contains("event: delta") {
        let frame = body.frame().await.expect("the stream goes on").unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    let conversation = seen
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<Value>(d).unwrap()["conversation"]["id"].as_str().unwrap().to_owned())
        .unwrap();
    drop(body);
    assert!(
        upstream.wait_for_disconnect(std::time::Duration::from_secs(5)).await,
        "the model was not stopped"
    );

    let (_, page) = call_as(&app, Method::GET, &format!("/conversations/{conversation}"), &alice, None).await;
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "only the question is stored: {page}");
    assert_eq!(messages[0]["role"], "user");
}

/// A SQLite HR database as a data source; `alice@example.test` may read the pay policy,
/// everyone the leave policy and a 12,006-character handbook, only the CEO the executive one.
async fn hr_source(dir: &std::path::Path) -> (amp_core::DataSourceId, amp_core::data_source::DataSourceSpec) {
    let path = dir.join("hr.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
    for statement in [
        "CREATE TABLE policies (id TEXT, title TEXT, body TEXT, allowed TEXT, updated INTEGER)",
        "INSERT INTO policies VALUES ('p1', 'Leave', 'Parental leave is 16 weeks.', '*', 100)",
        "INSERT INTO policies VALUES ('p2', 'Pay', 'Pay leave is paid monthly.', 'alice@example.test', 200)",
        "INSERT INTO policies VALUES ('p3', 'Exec', 'Executive leave is unlimited.', 'ceo@example.test', 300)",
        "INSERT INTO policies VALUES ('p4', 'Handbook', 'leave ' || printf('%.*c', 12000, 'x'), '*', 400)",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let id = amp_core::DataSourceId::new();
    let spec = serde_json::from_value(json!({
        "id": id, "kind": "sql", "description": "HR policies",
        "url": format!("sqlite://{}", path.display()),
        "query": "SELECT id, title, body AS text, NULL AS url, allowed, updated AS updated_at FROM policies \
                  WHERE body LIKE '%' || $1 || '%' ORDER BY id LIMIT $2"
    }))
    .unwrap();
    (id, spec)
}

#[tokio::test]
async fn data_sources_give_each_person_only_their_records_and_every_read_is_audited() {
    let upstream = MockServer::start(model_answers).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (hr, spec) = hr_source(dir.path()).await;
    let models = loopback_registry(&upstream, 8192, 1024);
    let (t, tokens) = support::closed_app_with_accounts(&["alice@example.test", "bob@example.test"], |c| {
        c.models = models;
        c.data_sources.insert("hr".into(), spec);
    })
    .await;
    let app = amp_server::router(t.state.clone());
    let (alice, bob) = (tokens[0].clone(), tokens[1].clone());

    let (status, listed) = call_as(&app, Method::GET, "/datasources", &alice, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed, json!([{"id": hr, "name": "hr", "kind": "sql", "description": "HR policies"}]));

    let ask = json!({"message": "leave", "data_sources": [hr]});
    let (status, answer) = call_as(&app, Method::POST, "/chat/send", &alice, Some(ask.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let records: Vec<&str> =
        answer["sources"].as_array().unwrap().iter().map(|s| s["record"].as_str().unwrap()).collect();
    assert_eq!(records, ["p1", "p2", "p4"]);
    let handbook = &answer["sources"][2];
    assert_eq!(handbook["text"].as_str().unwrap().chars().count(), 4_000, "a long record is cut");
    assert_eq!(handbook["byte_range"], json!({"start": 0, "end": 4_000}));
    assert_eq!(answer["sources"][0]["kind"], "record");
    assert_eq!(answer["sources"][0]["title"], "hr: Leave");
    let citation = &answer["answer"]["citations"][0];
    assert_eq!((citation["kind"].as_str(), citation["record"].as_str()), (Some("record"), Some("p1")));
    assert_eq!(citation["data_source"], json!(hr));
    let prompt = last_system_prompt(&upstream);
    assert!(prompt.contains("16 weeks") && !prompt.contains("unlimited"), "{prompt}");

    let (_, answer) = call_as(&app, Method::POST, "/chat/send", &bob, Some(ask)).await;
    let records: Vec<&str> =
        answer["sources"].as_array().unwrap().iter().map(|s| s["record"].as_str().unwrap()).collect();
    assert_eq!(records, ["p1", "p4"], "Bob is on neither the pay nor the executive list");

    // In a workspace conversation every member reads the answer: only records open to all.
    let (_, ws) = call_as(&app, Method::POST, "/workspaces", &alice, Some(json!({"name": "HR"}))).await;
    let in_team = json!({"message": "leave", "data_sources": [hr], "workspace": ws["id"]});
    let (_, answer) = call_as(&app, Method::POST, "/chat/send", &alice, Some(in_team)).await;
    let records: Vec<&str> =
        answer["sources"].as_array().unwrap().iter().map(|s| s["record"].as_str().unwrap()).collect();
    assert_eq!(records, ["p1", "p4"], "the pay record is Alice's alone");

    let query = amp_core::audit::AuditQuery {
        action: Some(amp_core::audit::AuditAction::DataSourceRead),
        limit: 10,
        ..Default::default()
    };
    let reads = t.state.stores().audit.query(&query).await.unwrap();
    assert_eq!(reads.len(), 3);
    let alices =
        reads.iter().find(|e| e.event.detail["records"] == json!(["p1", "p2", "p4"])).expect("Alice's read");
    assert_eq!(alices.event.target, format!("data_source:{hr}"));
    assert_eq!(alices.event.detail["withheld"], 1);
    assert!(alices.event.success);

    // An agent over the source reads it; an unknown source is refused, on agents and turns.
    let (status, agent) = call_as(
        &app,
        Method::POST,
        "/agents/registry",
        &bob,
        Some(json!({"name": "HR", "data_sources": [hr]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    let (_, answer) = call_as(
        &app,
        Method::POST,
        "/chat/send",
        &bob,
        Some(json!({"message": "leave", "agent": agent["id"]})),
    )
    .await;
    assert_eq!(answer["sources"][0]["record"], "p1");
    let unknown = amp_core::DataSourceId::new();
    let (status, error) = call_as(
        &app,
        Method::POST,
        "/agents/registry",
        &bob,
        Some(json!({"name": "Nope", "data_sources": [unknown]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, _) = call_as(
        &app,
        Method::POST,
        "/chat/send",
        &bob,
        Some(json!({"message": "x", "data_sources": [unknown]})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_long_conversation_keeps_working_by_sending_only_the_history_that_fits() {
    let upstream = MockServer::start(model_answers).await.unwrap();
    let models = loopback_registry(&upstream, 2000, 100);
    let t = test_app_with(|c| c.models = models).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;

    // About 500 tokens a question: four of them with their answers overflow the window.
    let long = "alpha ".repeat(500);
    let mut conversation = Value::Null;
    for turn in 0..5 {
        let mut ask = json!({"message": format!("{turn} {long}")});
        if !conversation.is_null() {
            ask["conversation"] = conversation.clone();
        }
        let (status, answer) = call_as(&app, Method::POST, "/chat/send", &alice, Some(ask)).await;
        assert_eq!(status, StatusCode::OK, "turn {turn}: {answer}");
        conversation = answer["conversation"]["id"].clone();
    }
    let sent = upstream.last_request().unwrap().json().unwrap();
    let messages = sent["messages"].as_array().unwrap();
    assert!(messages.len() < 9, "older turns were left out: {} messages", messages.len());
    assert_eq!(messages.last().unwrap()["content"], format!("4 {}", long.trim()));
    assert_eq!(messages[0]["role"], "user", "the history starts with a question");
    let path = format!("/conversations/{}", conversation.as_str().unwrap());
    let (_, page) = call_as(&app, Method::GET, &path, &alice, None).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 10, "everything is still stored");
}

#[tokio::test]
async fn a_workspace_answer_never_cites_another_workspaces_files() {
    let c = chat_app().await;
    let alice = person(&c.app, "alice@example.test").await;
    let carol = person(&c.app, "carol@example.test").await;
    let team = support::workspace(&c.t.state, &c.app, &alice, &[]).await;
    let other = support::workspace(&c.t.state, &c.app, &carol, &[("alice@example.test", "viewer")]).await;
    let theirs = text_file(&c.app, &carol, "plans.txt", "The other team ships in May.", Some(&other)).await;

    // Attached in the team's conversation: refused, since every team member reads the answer.
    let ask = json!({"message": "When do they ship?", "workspace": team, "files": [theirs]});
    let (status, error) = call_as(&c.app, Method::POST, "/chat/send", &alice, Some(ask)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");

    // Through an agent over the other workspace: left out in the team's chat, read in her own.
    let spec = json!({"name": "Other team", "workspaces": [other]});
    let (_, agent) = call_as(&c.app, Method::POST, "/agents/registry", &alice, Some(spec)).await;
    let ask = json!({"message": "When do they ship?", "workspace": team, "agent": agent["id"]});
    let (status, answer) = call_as(&c.app, Method::POST, "/chat/send", &alice, Some(ask)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(source_files(&answer), Vec::<String>::new());
    let ask = json!({"message": "When do they ship?", "agent": agent["id"]});
    let (_, answer) = call_as(&c.app, Method::POST, "/chat/send", &alice, Some(ask)).await;
    assert_eq!(source_files(&answer), vec![theirs]);
}

#[tokio::test]
async fn sources_are_cut_to_the_models_window_best_first() {
    let upstream = MockServer::start(model_answers).await.unwrap();
    let models = loopback_registry(&upstream, 1200, 100);
    let t = test_app_with(|c| c.models = models).await;
    let app = amp_server::router(t.state.clone());
    let alice = person(&app, "alice@example.test").await;
    // Five files of about 300 tokens each: all five overflow the 1,100 tokens left.
    for i in 0..5 {
        let text = format!("Refund rule {i}: {}", "refunds are processed by the finance team ".repeat(35));
        text_file(&app, &alice, &format!("rule-{i}.txt"), &text, None).await;
    }
    let (status, answer) = call_as(
        &app,
        Method::POST,
        "/chat/send",
        &alice,
        Some(json!({"message": "How are refunds processed?"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let numbers: Vec<u64> =
        answer["sources"].as_array().unwrap().iter().map(|s| s["number"].as_u64().unwrap()).collect();
    assert!(!numbers.is_empty() && numbers.len() < 5, "{numbers:?}");
    assert_eq!(numbers, (1..=numbers.len() as u64).collect::<Vec<_>>(), "still numbered from 1");
    let prompt = last_system_prompt(&upstream);
    assert!(
        prompt.contains(&format!("<source id=\"{}\"", numbers.len()))
            && !prompt.contains(&format!("<source id=\"{}\"", numbers.len() + 1)),
        "{prompt}"
    );
}

#[tokio::test]
async fn sharing_a_conversation_that_cites_a_private_file_is_refused() {
    let c = chat_app().await;
    let alice = person(&c.app, "alice@example.test").await;
    person(&c.app, "bob@example.test").await;
    let team = support::workspace(&c.t.state, &c.app, &alice, &[("bob@example.test", "viewer")]).await;
    let private = text_file(&c.app, &alice, "salary.md", "My salary is 200k.", None).await;
    let (_, answer) =
        call_as(&c.app, Method::POST, "/chat/send", &alice, Some(json!({"message": "My salary?"}))).await;
    assert_eq!(answer["answer"]["citations"][0]["file"], private.as_str(), "{answer}");
    let conversation = answer["conversation"]["id"].as_str().unwrap().to_owned();

    let share = format!("/conversations/{conversation}/share");
    let (status, body) =
        call_as(&c.app, Method::POST, &share, &alice, Some(json!({"workspace": team}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(&private), "{body}");
    let (_, listed) =
        call_as(&c.app, Method::GET, &format!("/conversations?workspace={team}"), &alice, None).await;
    assert!(!listed.to_string().contains(&conversation), "nothing was shared: {listed}");

    // Once the file is in the workspace, its members may read what the answer cites.
    let (status, body) = call_as(
        &c.app,
        Method::POST,
        &format!("/files/{private}/share"),
        &alice,
        Some(json!({"workspace": team})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        call_as(&c.app, Method::POST, &share, &alice, Some(json!({"workspace": team}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
