//! `amp-ingest`: a bounded ingestion bench. It runs the real Storage pipeline (uploads over
//! HTTP on loopback, blob store, job queue, workers, extraction, chunking, the local
//! embedder, the vector index) on a corpus it builds from BEIR SciFact abstracts, then
//! embeds the same passages with a bare embedder in the same run, so the pipeline's speed
//! is a ratio to the physical bound, measured under the same conditions.
//!
//! ```text
//! cargo run --release -p amp-benches --bin amp-ingest -- pipeline --pdfs 12
//! cargo run --release -p amp-benches --bin amp-ingest -- upload-rss --server target/release/amp-server
//! ```

#![allow(clippy::print_stdout, reason = "a command-line harness reports on stdout")]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use amp_core::{AmpConfig, Embedder};
use amp_providers::embed::fastembed::{LocalEmbedder, LocalEmbedderOptions};
use clap::{Parser, Subcommand};
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(name = "amp-ingest", about = "Bounded ingestion benches for AMP's Storage pipeline")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// A mixed corpus through the whole pipeline, then the same passages through a bare
    /// embedder; then 10-page text PDFs alone for files per hour.
    Pipeline {
        /// 10-page text PDFs in the mixed corpus (one SciFact abstract a page).
        #[arg(long, default_value_t = 12)]
        pdfs: usize,
        /// Embedder threads (0: every core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Parallel workers.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// The SciFact corpus.
        #[arg(long, default_value = "../shared/data/scifact/corpus.jsonl")]
        corpus: PathBuf,
    },
    /// The server's peak memory while it receives a 25 MiB upload, direct and presigned.
    UploadRss {
        /// The amp-server binary (build it with `cargo build --release -p amp-server`).
        #[arg(long, default_value = "target/release/amp-server")]
        server: PathBuf,
    },
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().mode {
        Mode::Pipeline { pdfs, threads, workers, corpus } => pipeline(pdfs, threads, workers, &corpus).await,
        Mode::UploadRss { server } => upload_rss(&server).await,
    }
}

fn abstracts(corpus: &Path, n: usize) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(corpus)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| Some(format!("{}. {}", v["title"].as_str()?, v["text"].as_str()?)))
        .filter(|t| t.len() > 600)
        .take(n)
        .collect())
}

/// A PDF with one page per text, wrapped at ~95 characters in Helvetica 10.
fn pdf(pages: &[String]) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font =
        doc.add_object(dictionary! {"Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica"});
    let resources = doc.add_object(dictionary! {"Font" => dictionary! {"F1" => font}});
    let mut kids = Vec::new();
    for text in pages {
        let mut ops = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 10.into()]),
            Operation::new("TL", vec![12.into()]),
            Operation::new("Td", vec![50.into(), 760.into()]),
        ];
        let mut line = String::new();
        for word in text.split_whitespace() {
            if line.len() + word.len() > 95 {
                ops.push(Operation::new("Tj", vec![Object::string_literal(line.clone())]));
                ops.push(Operation::new("T*", vec![]));
                line.clear();
            }
            line.push_str(word);
            line.push(' ');
        }
        ops.push(Operation::new("Tj", vec![Object::string_literal(line)]));
        ops.push(Operation::new("ET", vec![]));
        let content = Content { operations: ops }.encode().unwrap_or_default();
        let contents = doc.add_object(Stream::new(dictionary! {}, content));
        kids.push(Object::Reference(doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => contents,
            "Resources" => resources, "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        })));
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {"Type" => "Pages", "Kids" => kids, "Count" => count}),
    );
    let catalog = doc.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages_id});
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("writing a PDF to memory cannot fail");
    out
}

fn docx(paragraphs: &[String]) -> Vec<u8> {
    let escape = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body: String =
        paragraphs.iter().map(|p| format!("<w:p><w:r><w:t>{}</w:t></w:r></w:p>", escape(p))).collect();
    let parts = [
        ("[Content_Types].xml", r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#.to_owned()),
        ("_rels/.rels", r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="r1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#.to_owned()),
        ("word/document.xml", format!(r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#)),
    ];
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, text) in parts {
        zip.start_file(name, options).expect("a zip entry in memory");
        zip.write_all(text.as_bytes()).expect("writing to memory");
    }
    zip.finish().expect("a zip in memory").into_inner()
}

fn html(paragraphs: &[String]) -> Vec<u8> {
    let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>\n")).collect();
    format!("<!doctype html><html><head><style>p{{color:red}}</style><script>var x = 1;</script></head><body>{body}</body></html>")
        .into_bytes()
}

/// One page scanned: a text PDF page rendered to PNG by pdftoppm (what a scanner makes).
fn scanned_png(text: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("page.pdf"), pdf(&[text.to_owned()]))?;
    let status = Command::new("pdftoppm")
        .args(["-r", "200", "-png", "-singlefile", "page.pdf", "page"])
        .current_dir(dir.path())
        .status()?;
    if !status.success() {
        return Err("pdftoppm failed".into());
    }
    Ok(std::fs::read(dir.path().join("page.png"))?)
}

struct Server {
    base: String,
    token: String,
    client: reqwest::Client,
    state: amp_server::AppState,
    _dir: tempfile::TempDir,
}

async fn server(threads: usize, workers: usize) -> Result<Server, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut config = AmpConfig { data_dir: dir.path().to_owned(), ..AmpConfig::default() };
    config.model_dir =
        std::env::var_os("AMP_MODEL_DIR").map(Into::into).unwrap_or(".amp-cache/models".into());
    config.auth.jwt_secret = Some(amp_core::Secret::new("ingest-bench-signing-key-0123456789"));
    config.storage.embed_threads = threads;
    config.storage.workers = workers;
    let state = amp_server::AppState::open(config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let serving = state.clone();
    tokio::spawn(async move { amp_server::serve(listener, serving, std::future::pending()).await });
    let client = reqwest::Client::new();
    let who = json!({"email": "bench@example.test", "password": "correct horse battery"});
    client.post(format!("{base}/auth/register")).json(&who).send().await?;
    let login: Value = client.post(format!("{base}/auth/login")).json(&who).send().await?.json().await?;
    let token = login["access_token"].as_str().ok_or("no access token")?.to_owned();
    Ok(Server { base, token, client, state, _dir: dir })
}

/// Uploads every file at once and waits until all are ready; the wall time from the first
/// byte sent to the last file ready.
async fn ingest(
    s: &Server,
    files: &[(String, &str, Vec<u8>)],
) -> Result<(Duration, Vec<Value>), Box<dyn std::error::Error>> {
    let started = Instant::now();
    for (name, media_type, bytes) in files {
        let answer = s
            .client
            .post(format!("{}/files?name={name}", s.base))
            .bearer_auth(&s.token)
            .header("content-type", *media_type)
            .body(bytes.clone())
            .send()
            .await?;
        if !answer.status().is_success() {
            return Err(format!("{name}: {}", answer.text().await?).into());
        }
    }
    loop {
        let listed: Value =
            s.client.get(format!("{}/files", s.base)).bearer_auth(&s.token).send().await?.json().await?;
        let files = listed.as_array().cloned().unwrap_or_default();
        if files.iter().all(|f| matches!(f["status"]["state"].as_str(), Some("ready" | "failed"))) {
            for f in files.iter().filter(|f| f["status"]["state"] == "failed") {
                eprintln!("failed: {} {}", f["name"], f["status"]["reason"]);
            }
            return Ok((started.elapsed(), files));
        }
        if started.elapsed() > Duration::from_secs(3_600) {
            return Err("ingestion did not finish within an hour".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `amp_ingest_stage_seconds_sum` per stage from the Prometheus exposition.
fn stage_seconds(metrics: &str) -> BTreeMap<String, f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with("amp_ingest_stage_seconds_sum{"))
        .filter_map(|l| {
            let stage = l.split("stage=\"").nth(1)?.split('"').next()?.to_owned();
            Some((stage, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

async fn pipeline(
    pdfs: usize,
    threads: usize,
    workers: usize,
    corpus: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let texts = abstracts(corpus, pdfs * 10 + 40)?;
    if texts.len() < pdfs * 10 + 40 {
        return Err(format!("{} has too few abstracts", corpus.display()).into());
    }
    let mut files: Vec<(String, &str, Vec<u8>)> = Vec::new();
    for n in 0..pdfs {
        files.push((format!("paper-{n}.pdf"), "application/pdf", pdf(&texts[n * 10..n * 10 + 10])));
    }
    let rest = &texts[pdfs * 10..];
    files.push(("review.docx".into(), amp_agents::storage::DOCX, docx(&rest[0..15])));
    files.push(("page.html".into(), "text/html", html(&rest[15..30])));
    files.push(("scan.png".into(), "image/png", scanned_png(&rest[30])?));
    let pages = pdfs * 10 + 3;
    let bytes: usize = files.iter().map(|f| f.2.len()).sum();

    let s = server(threads, workers).await?;
    let (wall, listed) = ingest(&s, &files).await?;
    let mut chunks = Vec::new();
    for f in &listed {
        chunks
            .extend(s.state.stores().files.list_chunks(f["id"].as_str().unwrap_or_default().parse()?).await?);
    }
    let pieces: u64 = chunks.iter().map(|c| u64::from(c.token_count)).sum();
    let stages = stage_seconds(&s.state.render_metrics().unwrap_or_default());
    let threads = s.state.config().storage.embedder_threads();
    drop(s);

    // The bound: the same passages, embedded by a bare embedder with the same threads.
    let model_dir: PathBuf =
        std::env::var_os("AMP_MODEL_DIR").map(Into::into).unwrap_or(".amp-cache/models".into());
    let bare = LocalEmbedder::load(LocalEmbedderOptions::new(&model_dir).with_intra_threads(threads))?;
    let texts: Vec<String> = chunks.iter().map(|c| c.text.clone()).collect();
    let started = Instant::now();
    for batch in texts.chunks(bare.preferred_batch_size().max(1)) {
        bare.embed(batch).await?;
    }
    let bare_wall = started.elapsed();

    let pipeline_rate = pieces as f64 / wall.as_secs_f64();
    let bare_rate = pieces as f64 / bare_wall.as_secs_f64();
    println!(
        "mixed corpus: {} files ({pdfs} ten-page PDFs, a DOCX, an HTML page, a scanned PNG), {pages} pages, {:.1} MB",
        files.len(),
        bytes as f64 / 1e6
    );
    println!(
        "  passages {}, word pieces {pieces}, embedder threads {threads}, workers {workers}",
        chunks.len()
    );
    println!(
        "  pipeline: {:.2} s wall, {:.0} word pieces/s, {:.1} passages/s, {:.2} pages/s, {:.0} files/hour",
        wall.as_secs_f64(),
        pipeline_rate,
        chunks.len() as f64 / wall.as_secs_f64(),
        pages as f64 / wall.as_secs_f64(),
        files.len() as f64 * 3600.0 / wall.as_secs_f64()
    );
    println!(
        "  bare embedder on the same passages: {:.2} s, {:.0} word pieces/s",
        bare_wall.as_secs_f64(),
        bare_rate
    );
    println!("  pipeline / bare embedder: {:.1} %", 100.0 * pipeline_rate / bare_rate);
    println!("  time per stage, summed over files (s): {stages:?}");
    drop(bare);

    // 10-page text PDFs alone, for files per hour beside the seed's 10,000 uploads/hour.
    let s = server(threads, workers).await?;
    let only: Vec<_> = files.into_iter().take(pdfs).collect();
    let (wall, _) = ingest(&s, &only).await?;
    println!(
        "ten-page text PDFs alone: {pdfs} in {:.2} s = {:.0} files/hour ({:.1} pages/s)",
        wall.as_secs_f64(),
        pdfs as f64 * 3600.0 / wall.as_secs_f64(),
        (pdfs * 10) as f64 / wall.as_secs_f64()
    );
    Ok(())
}

/// VmHWM (peak resident memory) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).ok_or("no VmHWM")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmHWM")?.parse()?)
}

async fn upload_rss(binary: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("amp.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = '{}'\n[server]\nlisten = '127.0.0.1:{port}'\n[storage]\nworkers = 1\n\
             [storage.blobs]\nkind = 'local'\npublic_url = '{base}'\n",
            dir.path().join("data").display()
        ),
    )?;
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let client = reqwest::Client::new();
    let result = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(format!("{base}/healthz")).send().await.is_err() {
            if Instant::now() > deadline {
                return Err::<(), Box<dyn std::error::Error>>("the server did not start".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let who = json!({"email": "rss@example.test", "password": "correct horse battery"});
        client.post(format!("{base}/auth/register")).json(&who).send().await?;
        let login: Value = client.post(format!("{base}/auth/login")).json(&who).send().await?.json().await?;
        let token = login["access_token"].as_str().ok_or("no token")?.to_owned();
        // The one worker is kept busy embedding a long text, so what is measured next is
        // receiving the uploads, not processing them (a 25 MiB text takes minutes to embed).
        let blocker: String = (0..60_000).map(|i| format!("word{} ", i % 997)).collect();
        let queued: Value = client
            .post(format!("{base}/files?name=blocker.txt"))
            .bearer_auth(&token)
            .header("content-type", "text/plain")
            .body(blocker)
            .send()
            .await?
            .json()
            .await?;
        let id = queued["id"].as_str().ok_or("no file id")?.to_owned();
        loop {
            let file: Value = client
                .get(format!("{base}/files/{id}/status"))
                .bearer_auth(&token)
                .send()
                .await?
                .json()
                .await?;
            if file["status"]["state"] == "embedding" {
                break;
            }
            if Instant::now() > deadline + Duration::from_secs(60) {
                return Err("the blocker never reached embedding".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The embedder's own working memory grows over its first batches: let it settle,
        // and show that it has (the same wait again, without uploads, as the control).
        tokio::time::sleep(Duration::from_secs(4)).await;
        let settled = peak_rss_kib(child.id())?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = peak_rss_kib(child.id())?;
        println!(
            "server peak RSS while embedding, settled: {:.1} MiB, 2 s later: {:.1} MiB",
            settled as f64 / 1024.0,
            before as f64 / 1024.0
        );
        // 25 MiB of text (processing would take minutes: the upload is what is measured).
        let size = 25 * 1024 * 1024 - 1;
        let body: Vec<u8> =
            (0..size).map(|i| if i % 80 == 79 { b'\n' } else { b'a' + (i % 26) as u8 }).collect();
        let started = Instant::now();
        let answer = client
            .post(format!("{base}/files?name=big.txt"))
            .bearer_auth(&token)
            .header("content-type", "text/plain")
            .body(body.clone())
            .send()
            .await?;
        let direct = (answer.status(), started.elapsed(), peak_rss_kib(child.id())?);
        let announce =
            json!({"files": [{"name": "big2.txt", "media_type": "text/plain", "size_bytes": size}]});
        let urls: Value = client
            .post(format!("{base}/files/upload-urls"))
            .bearer_auth(&token)
            .json(&announce)
            .send()
            .await?
            .json()
            .await?;
        let upload = &urls["files"][0]["upload"];
        let mut put = client
            .put(upload["url"].as_str().ok_or("no url")?)
            .body(body.iter().rev().copied().collect::<Vec<u8>>());
        for (name, value) in upload["headers"].as_object().ok_or("no headers")? {
            put = put.header(name, value.as_str().unwrap_or_default());
        }
        let started = Instant::now();
        let answer = put.send().await?;
        let presigned = (answer.status(), started.elapsed(), peak_rss_kib(child.id())?);
        println!("server peak RSS before uploads: {:.1} MiB", before as f64 / 1024.0);
        println!(
            "after a 25 MiB direct upload ({}, {:.2} s): {:.1} MiB",
            direct.0,
            direct.1.as_secs_f64(),
            direct.2 as f64 / 1024.0
        );
        println!(
            "after a 25 MiB presigned upload ({}, {:.2} s): {:.1} MiB",
            presigned.0,
            presigned.1.as_secs_f64(),
            presigned.2 as f64 / 1024.0
        );
        Ok(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    result
}
