//! Retrieval quality on BEIR SciFact, through the real server: each abstract uploaded as a
//! file (chunking, the local embedder, both indexes), each claim asked through
//! `POST /agents/context/search` (the retrieval a chat turn uses), scored by nDCG@10 and
//! recall@100 at the level of abstracts (a file's best passage is its rank).
//!
//! The data is not shipped with AMP (its licence is CC BY-NC 2.0): it is read from
//! `../shared/data/scifact` or the directory given.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use amp_core::AmpConfig;
use serde_json::{Value, json};

/// A boxed error, for a harness that reports and stops.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The corpus, the queries and their judgements.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// `(id, title, text)` of each abstract, in file order.
    pub docs: Vec<(String, String, String)>,
    /// `(id, text)` of each query that has judgements, in file order.
    pub queries: Vec<(String, String)>,
    /// The relevant abstracts of each query.
    pub relevant: HashMap<String, HashSet<String>>,
}

impl Dataset {
    /// Reads `corpus.jsonl`, `queries-train.jsonl` and `qrels/train.tsv` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, BoxError> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
        };
        let mut relevant: HashMap<String, HashSet<String>> = HashMap::new();
        for line in read("qrels/train.tsv")?.lines().skip(1) {
            let mut cols = line.split('\t');
            if let (Some(q), Some(d), Some(score)) = (cols.next(), cols.next(), cols.next())
                && score.trim() != "0"
            {
                relevant.entry(q.to_owned()).or_default().insert(d.to_owned());
            }
        }
        let field = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
        let docs = read("corpus.jsonl")?
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| (field(&v, "_id"), field(&v, "title"), field(&v, "text")))
            .collect();
        let queries = read("queries-train.jsonl")?
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| (field(&v, "_id"), field(&v, "text")))
            .filter(|(id, _)| relevant.contains_key(id))
            .collect();
        Ok(Dataset { docs, queries, relevant })
    }

    /// The first `queries` queries, with their relevant abstracts and the first
    /// `distractors` other abstracts of the corpus: a small fixed sample.
    pub fn sample(&self, queries: usize, distractors: usize) -> Dataset {
        let queries: Vec<_> = self.queries.iter().take(queries).cloned().collect();
        let wanted: HashSet<&String> = queries.iter().flat_map(|(q, _)| &self.relevant[q]).collect();
        let mut others = 0;
        let docs = self
            .docs
            .iter()
            .filter(|(id, _, _)| {
                wanted.contains(id) || {
                    others += 1;
                    others <= distractors
                }
            })
            .cloned()
            .collect();
        let relevant = queries.iter().map(|(q, _)| (q.clone(), self.relevant[q].clone())).collect();
        Dataset { docs, queries, relevant }
    }
}

/// nDCG@k of a ranking of documents with binary relevance.
pub fn ndcg_at(ranked: &[String], relevant: &HashSet<String>, k: usize) -> f64 {
    let gain = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let dcg: f64 =
        ranked.iter().take(k).enumerate().filter(|(_, d)| relevant.contains(*d)).map(|(i, _)| gain(i)).sum();
    let ideal: f64 = (0..relevant.len().min(k)).map(gain).sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

/// The share of relevant documents in the first `k` of a ranking.
pub fn recall_at(ranked: &[String], relevant: &HashSet<String>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let found = ranked.iter().take(k).filter(|d| relevant.contains(*d)).count();
    found as f64 / relevant.len() as f64
}

/// A server on loopback with one signed-in person (an API key, which does not expire
/// mid-run as an access token would), on the embedded defaults apart from quotas, which
/// are off so a corpus can be uploaded at once.
pub struct Server {
    /// `http://127.0.0.1:port`.
    pub base: String,
    token: String,
    client: reqwest::Client,
    /// The server's state, for reading its stores.
    pub state: amp_server::AppState,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts one on a fresh data dir; `configure` may change the configuration first.
    pub async fn start(configure: impl FnOnce(&mut AmpConfig)) -> Result<Server, BoxError> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().to_owned();
        let mut server = Self::start_in(&path, configure).await?;
        server._dir = Some(dir);
        Ok(server)
    }

    /// Starts one on the data dir `path`, kept afterwards (what an earlier run ingested
    /// there is still there).
    pub async fn start_in(path: &Path, configure: impl FnOnce(&mut AmpConfig)) -> Result<Server, BoxError> {
        let mut config = AmpConfig { data_dir: path.to_owned(), ..AmpConfig::default() };
        config.model_dir =
            std::env::var_os("AMP_MODEL_DIR").map(Into::into).unwrap_or(".amp-cache/models".into());
        config.auth.jwt_secret = Some(amp_core::Secret::new("retrieval-eval-signing-key-0123456789"));
        config.quotas.uploads_per_hour = 0;
        config.quotas.upload_bytes_per_day = 0;
        configure(&mut config);
        let state = amp_server::AppState::open(config).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let serving = state.clone();
        tokio::spawn(async move { amp_server::serve(listener, serving, std::future::pending()).await });
        let client = reqwest::Client::new();
        let who = json!({"email": "eval@example.test", "password": "correct horse battery"});
        client.post(format!("{base}/auth/register")).json(&who).send().await?;
        let login: Value = client.post(format!("{base}/auth/login")).json(&who).send().await?.json().await?;
        let access = login["access_token"].as_str().ok_or("no access token")?;
        let key: Value = client
            .post(format!("{base}/auth/api-keys"))
            .bearer_auth(access)
            .json(&json!({"name": "retrieval evaluation"}))
            .send()
            .await?
            .json()
            .await?;
        let token = key["key"].as_str().ok_or_else(|| format!("no API key: {key}"))?.to_owned();
        Ok(Server { base, token, client, state, _dir: None })
    }

    /// How many of the person's files are ready.
    pub async fn ready_files(&self) -> Result<usize, BoxError> {
        Ok(self.files().await?.iter().filter(|f| f["status"]["state"] == "ready").count())
    }

    async fn files(&self) -> Result<Vec<Value>, BoxError> {
        let answer = self.client.get(format!("{}/files", self.base)).bearer_auth(&self.token).send().await?;
        if !answer.status().is_success() {
            return Err(format!("listing files: {}", answer.text().await?).into());
        }
        Ok(answer.json::<Value>().await?.as_array().cloned().unwrap_or_default())
    }

    /// Uploads each abstract as a text file named by its id ("title. text") and waits
    /// until every one is ready; the time it took.
    pub async fn ingest(&self, docs: &[(String, String, String)]) -> Result<Duration, BoxError> {
        let started = Instant::now();
        for (id, title, text) in docs {
            let answer = self
                .client
                .post(format!("{}/files?name={id}.txt", self.base))
                .bearer_auth(&self.token)
                .header("content-type", "text/plain")
                .body(format!("{title}. {text}"))
                .send()
                .await?;
            if !answer.status().is_success() {
                return Err(format!("uploading {id}: {}", answer.text().await?).into());
            }
        }
        loop {
            let files = self.files().await?;
            let failed: Vec<_> = files.iter().filter(|f| f["status"]["state"] == "failed").collect();
            if let Some(f) = failed.first() {
                return Err(format!("{} failed: {}", f["name"], f["status"]["reason"]).into());
            }
            if files.len() >= docs.len() && files.iter().all(|f| f["status"]["state"] == "ready") {
                return Ok(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(7_200) {
                return Err("ingestion did not finish within two hours".into());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The abstracts `POST /agents/context/search` ranks for `query` by `mode`, best first,
    /// each once (at its best passage's place).
    pub async fn rank(&self, query: &str, mode: &str, limit: usize) -> Result<Vec<String>, BoxError> {
        let body = json!({"query": query, "mode": mode, "limit": limit});
        let answer = self
            .client
            .post(format!("{}/agents/context/search", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        if !answer.status().is_success() {
            return Err(format!("search: {}", answer.text().await?).into());
        }
        let found: Value = answer.json().await?;
        let mut seen = HashSet::new();
        Ok(found["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str()?.strip_suffix(".txt").map(str::to_owned))
            .filter(|d| seen.insert(d.clone()))
            .collect())
    }
}

/// Mean nDCG@10 and recall@100 of one mode over a dataset's queries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Mean nDCG@10.
    pub ndcg_10: f64,
    /// Mean recall@100.
    pub recall_100: f64,
}

/// Runs every query of `data` by `mode` and averages the scores.
pub async fn evaluate(server: &Server, data: &Dataset, mode: &str) -> Result<Scores, BoxError> {
    let (mut ndcg, mut recall) = (0.0, 0.0);
    for (id, text) in &data.queries {
        let ranked = server.rank(text, mode, 100).await?;
        let relevant = &data.relevant[id];
        ndcg += ndcg_at(&ranked, relevant, 10);
        recall += recall_at(&ranked, relevant, 100);
    }
    let n = data.queries.len().max(1) as f64;
    Ok(Scores { ndcg_10: ndcg / n, recall_100: recall / n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn ndcg_is_one_for_a_perfect_ranking_and_discounts_lower_places() {
        let relevant: HashSet<String> = ["a", "b"].iter().map(|s| (*s).to_owned()).collect();
        assert!((ndcg_at(&docs(&["a", "b", "c"]), &relevant, 10) - 1.0).abs() < 1e-12);
        let second = ndcg_at(&docs(&["c", "a", "d", "b"]), &relevant, 10);
        let expected = (1.0 / 3f64.log2() + 1.0 / 5f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!((second - expected).abs() < 1e-12, "{second} vs {expected}");
        assert_eq!(ndcg_at(&docs(&["c"]), &relevant, 10), 0.0);
        assert_eq!(recall_at(&docs(&["c", "a"]), &relevant, 100), 0.5);
        assert_eq!(recall_at(&docs(&["c", "a"]), &relevant, 1), 0.0);
    }
}
