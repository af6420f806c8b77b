//! The real binary killed with SIGKILL at random points while it ingests several files,
//! twenty times, restarted each time: at the end every file is ready exactly once, with one
//! set of passages and vectors, and no blob, row or vector that no file owns.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amp_core::{BlobStore, VectorIndex};
use serde_json::Value;

/// Kills the child when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("a bound listener has an address").port()
}

fn start(config: &Path, addr: SocketAddr) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_amp-server"));
    command.arg("--config").arg(config).arg("--listen").arg(addr.to_string()).stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AMP") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::null());
    Server(command.spawn().expect("the binary starts"))
}

async fn wait_up(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not come up at {base}");
}

/// A document of distinct paragraphs, long enough to take several embedding batches.
fn document(n: usize) -> String {
    (0..40)
        .map(|p| {
            format!(
                "Document {n}, paragraph {p}: the expedition logged {} samples of lichen at station {} and \
                 noted the wind from the {} at {} knots before the weather turned.",
                n * 100 + p,
                p % 7,
                ["north", "east", "south", "west"][p % 4],
                10 + (n + p) % 30
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A small deterministic generator, so a failing run can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

async fn upload_missing(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    docs: &[String],
    ids: &mut BTreeMap<usize, String>,
) {
    for (n, text) in docs.iter().enumerate() {
        if ids.contains_key(&n) {
            continue;
        }
        let sent = client
            .post(format!("{base}/files?name=doc-{n}.txt"))
            .bearer_auth(token)
            .header("content-type", "text/plain")
            .body(text.clone())
            .send()
            .await;
        let Ok(answer) = sent else { return }; // killed mid-request: retried next round
        let Ok(body) = answer.json::<Value>().await else { return };
        if let Some(id) = body["id"].as_str() {
            ids.insert(n, id.to_owned());
        }
    }
}

/// The stage of every file, as the API shows them (empty if the server does not answer).
async fn stages(client: &reqwest::Client, base: &str, token: &str) -> Vec<String> {
    let Ok(answer) = client.get(format!("{base}/files")).bearer_auth(token).send().await else {
        return Vec::new();
    };
    let listed: Value = answer.json().await.unwrap_or(Value::Null);
    listed
        .as_array()
        .map(|files| files.iter().filter_map(|f| f["status"]["state"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn ingestion_survives_twenty_sigkills_without_loss_or_duplicates() {
    let models = std::env::var("AMP_MODEL_DIR").expect("AMP_MODEL_DIR is unset: run scripts/test.sh");
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = dir.path().join("amp.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = '{}'\nmodel_dir = '{models}'\n[auth]\njwt_secret = 'crash-test-signing-key-0123456789abcdef'\n\
             [storage]\nlease_secs = 2\nworkers = 2\nembed_threads = 1\nmax_attempts = 50\n",
            dir.path().join("data").display()
        ),
    )
    .expect("the config is written");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let docs: Vec<String> = (0..4).map(document).collect();

    let mut server = start(&config, addr);
    wait_up(&client, &base).await;
    let who = serde_json::json!({"email": "crash@example.test", "password": "correct horse battery"});
    client.post(format!("{base}/auth/register")).json(&who).send().await.unwrap();
    let login: Value =
        client.post(format!("{base}/auth/login")).json(&who).send().await.unwrap().json().await.unwrap();
    let token = login["access_token"].as_str().expect("an access token").to_owned();

    let mut ids = BTreeMap::new();
    let mut rng = Lcg(0x5eed_1234);
    let mut mid_processing = 0;
    for _ in 0..20 {
        let delay = Duration::from_millis(100 + rng.below(3_000));
        let _ = tokio::time::timeout(delay, upload_missing(&client, &base, &token, &docs, &mut ids)).await;
        tokio::time::sleep(delay / 2).await;
        let stages = stages(&client, &base, &token).await;
        if stages.iter().any(|s| !["pending", "queued", "ready", "failed"].contains(&s.as_str())) {
            mid_processing += 1;
        }
        server.0.kill().expect("SIGKILL is delivered");
        server.0.wait().expect("the killed server is reaped");
        server = start(&config, addr);
        wait_up(&client, &base).await;
    }

    assert!(mid_processing >= 3, "only {mid_processing} kills landed while a file was being processed");

    let deadline = Instant::now() + Duration::from_secs(180);
    let files = loop {
        upload_missing(&client, &base, &token, &docs, &mut ids).await;
        let listed: Value = client
            .get(format!("{base}/files"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let files = listed.as_array().cloned().unwrap_or_default();
        let done = files.iter().all(|f| f["status"]["state"] == "ready" || f["status"]["state"] == "failed");
        if ids.len() == docs.len() && done && !files.is_empty() {
            break files;
        }
        assert!(Instant::now() < deadline, "files did not finish: {files:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    drop(server);

    assert_eq!(files.len(), docs.len(), "every file exactly once: {files:?}");
    let listed: BTreeSet<String> = files.iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(listed, ids.values().cloned().collect(), "the ids the uploads were answered with");
    for f in &files {
        assert_eq!(f["status"]["state"], "ready", "{f}");
    }

    let data = dir.path().join("data");
    let stores = std::sync::Arc::new(
        amp_providers::sql::SqliteStores::open(&data.join("amp.db"), &Default::default())
            .await
            .expect("the database opens"),
    )
    .stores();
    let mut passages = 0;
    for id in &listed {
        let chunks = stores.files.list_chunks(id.parse().unwrap()).await.unwrap();
        let ordinals: Vec<u32> = chunks.iter().map(|c| c.ordinal).collect();
        assert!(!chunks.is_empty(), "file {id} has passages");
        assert_eq!(ordinals, (0..chunks.len() as u32).collect::<Vec<_>>(), "one set of passages for {id}");
        passages += chunks.len();
    }
    let vectors =
        amp_providers::FlatVectorIndex::open(data.join("vectors.flat"), 384).expect("the index opens");
    assert_eq!(vectors.len(), passages, "one vector per passage, none left by an interrupted run");
    assert_eq!(vectors.dimension(), 384);

    let blobs =
        amp_providers::blob::LocalBlobStore::open(data.join("blobs"), vec![0; 32], "http://unused".into())
            .await
            .expect("the blob store opens");
    let kept = blobs.list("users/").await.unwrap();
    let originals: BTreeSet<String> = kept
        .iter()
        .filter(|k| k.as_str().contains("/files/"))
        .map(|k| k.as_str().rsplit('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(originals, listed, "one original per file and no orphan: {kept:?}");
    for key in &kept {
        let owner_file = key.as_str().split('/').nth(3).unwrap_or_default();
        assert!(listed.contains(owner_file), "blob {key} belongs to no file");
    }
    let spool = data.join("spool");
    let left = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
    assert!(left <= 1, "spool files are cleaned at start ({left} left)");
}
