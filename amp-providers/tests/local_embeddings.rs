//! Local embeddings with fastembed on the real all-MiniLM-L6-v2 model and ONNX Runtime,
//! as `scripts/fetch-models.sh` lays them out under `AMP_MODEL_DIR`.

use std::path::PathBuf;
use std::sync::LazyLock;

use amp_core::{Embedder, ErrorKind};
use amp_providers::embed::fastembed::{DIMENSION, LocalEmbedder, LocalEmbedderOptions, MAX_INPUT_TOKENS};

fn model_dir() -> PathBuf {
    std::env::var_os("AMP_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.amp-cache/models"))
}

/// One model shared by the tests of this binary: each load costs ~0.3 s and ~100 MB.
static EMBEDDER: LazyLock<LocalEmbedder> = LazyLock::new(|| {
    LocalEmbedder::load(LocalEmbedderOptions::new(model_dir()))
        .unwrap_or_else(|e| panic!("the local embedder loads (run scripts/fetch-models.sh first): {e}"))
});

async fn embed(texts: &[&str]) -> Vec<Vec<f32>> {
    let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    EMBEDDER.embed(&texts).await.expect("embedding succeeds")
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    // Both are unit vectors, so the dot product is the cosine.
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("amp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("the temporary directory is writable");
        ScratchDir(path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn reports_the_model_its_dimension_and_its_limits() {
    assert_eq!(EMBEDDER.model(), "all-minilm-l6-v2");
    assert_eq!(EMBEDDER.dimension(), DIMENSION);
    assert_eq!(EMBEDDER.dimension(), 384);
    assert_eq!(EMBEDDER.max_input_tokens(), MAX_INPUT_TOKENS);
    assert_eq!(EMBEDDER.max_input_tokens(), 256);
    assert_eq!(EMBEDDER.preferred_batch_size(), 16);
}

#[tokio::test]
async fn a_paraphrase_scores_higher_than_an_unrelated_sentence() {
    let v = embed(&[
        "How do I reset my password?",
        "I forgot my login credentials and need to change them",
        "The recipe needs two cups of flour",
    ])
    .await;
    let (paraphrase, unrelated) = (cosine(&v[0], &v[1]), cosine(&v[0], &v[2]));
    assert!(paraphrase > unrelated + 0.2, "paraphrase {paraphrase} vs unrelated {unrelated}");
}

#[tokio::test]
async fn vectors_have_384_dimensions_and_unit_length() {
    let texts = ["short", "", "日本語のテキスト", &"a long passage about databases. ".repeat(60)];
    for vector in embed(&texts).await {
        assert_eq!(vector.len(), 384);
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
}

#[tokio::test]
async fn order_is_preserved_across_more_texts_than_one_batch() {
    // 40 texts: three batches of 16, 16 and 8. Each vector of the batched call must be the
    // one its own text gets alone (padding in a batch may move the last digits, not more).
    let texts: Vec<String> = (0..40)
        .map(|i| {
            format!(
                "Ticket {i}: the {} service fails after {} retries",
                ["db", "cache", "queue", "auth"][i % 4],
                i * 7
            )
        })
        .collect();
    let batched = EMBEDDER.embed(&texts).await.expect("batched embedding succeeds");
    assert_eq!(batched.len(), texts.len());
    for (i, text) in texts.iter().enumerate() {
        let alone = EMBEDDER.embed(std::slice::from_ref(text)).await.expect("single embedding succeeds");
        let best = (0..batched.len())
            .max_by(|&a, &b| cosine(&batched[a], &alone[0]).total_cmp(&cosine(&batched[b], &alone[0])))
            .expect("there are vectors");
        assert_eq!(best, i, "text {i} came back at position {best}");
        assert!(cosine(&batched[i], &alone[0]) > 0.999);
    }
}

#[tokio::test]
async fn identical_inputs_give_identical_vectors() {
    let first = embed(&["The quarterly report is due on Friday."]).await;
    let second = embed(&["The quarterly report is due on Friday."]).await;
    assert_eq!(first, second);
    let pair = embed(&["Same text twice.", "Same text twice."]).await;
    assert!(cosine(&pair[0], &pair[1]) > 0.9999);
}

#[tokio::test]
async fn an_empty_request_gives_no_vectors() {
    assert!(EMBEDDER.embed(&[]).await.expect("nothing to embed is fine").is_empty());
}

#[tokio::test]
async fn loading_twice_in_one_process_shares_the_runtime() {
    let second = LocalEmbedder::load(LocalEmbedderOptions::new(model_dir()).with_batch_size(4))
        .expect("a second embedder loads in the same process");
    let text = vec!["Shared runtime".to_owned()];
    let from_second = second.embed(&text).await.expect("the second embedder works");
    let from_first = EMBEDDER.embed(&text).await.expect("the first embedder still works");
    assert!(cosine(&from_first[0], &from_second[0]) > 0.9999);
}

#[test]
fn a_missing_model_directory_names_the_paths_and_the_fetch_script() {
    let scratch = ScratchDir::new("no-models");
    let empty = scratch.0.join("models");
    let err = LocalEmbedder::load(LocalEmbedderOptions::new(&empty)).expect_err("nothing to load");
    let message = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(message.contains(&empty.join("all-minilm-l6-v2/model.onnx").display().to_string()), "{message}");
    assert!(
        message.contains(&empty.join("onnxruntime/libonnxruntime.so.1.24.4").display().to_string()),
        "{message}"
    );
    assert!(message.contains("scripts/fetch-models.sh"), "{message}");
}

#[test]
fn a_missing_model_file_is_named_alone() {
    let scratch = ScratchDir::new("one-file-missing");
    let folder = scratch.0.join("all-minilm-l6-v2");
    std::fs::create_dir_all(&folder).expect("writable");
    for file in ["model.onnx", "tokenizer.json", "config.json", "special_tokens_map.json"] {
        std::fs::copy(model_dir().join("all-minilm-l6-v2").join(file), folder.join(file)).expect("copied");
    }
    let options = LocalEmbedderOptions::new(&scratch.0)
        .with_onnxruntime_path(model_dir().join("onnxruntime/libonnxruntime.so.1.24.4"));
    let message = LocalEmbedder::load(options).expect_err("a file is missing").to_string();
    assert!(message.contains("tokenizer_config.json"), "{message}");
    assert!(!message.contains("model.onnx"), "{message}");
    assert!(message.contains("scripts/fetch-models.sh"), "{message}");
}

#[test]
fn a_file_that_is_not_onnx_runtime_is_an_error_not_a_panic() {
    let scratch = ScratchDir::new("bad-runtime");
    let fake = scratch.0.join("libonnxruntime.so.1.24.4");
    std::fs::write(&fake, b"not a shared library").expect("writable");
    let options = LocalEmbedderOptions::new(model_dir()).with_onnxruntime_path(&fake);
    let message = LocalEmbedder::load(options).expect_err("not a runtime").to_string();
    // Whether another test has loaded the real runtime first or not, the refusal names the file.
    let fake = std::fs::canonicalize(&fake).expect("the file exists");
    assert!(message.contains(&fake.display().to_string()), "{message}");
}

#[test]
fn zero_threads_or_batch_size_are_refused() {
    let zero_threads = LocalEmbedderOptions::new(model_dir()).with_intra_threads(0);
    assert_eq!(LocalEmbedder::load(zero_threads).expect_err("refused").kind(), ErrorKind::InvalidInput);
    let zero_batch = LocalEmbedderOptions::new(model_dir()).with_batch_size(0);
    assert_eq!(LocalEmbedder::load(zero_batch).expect_err("refused").kind(), ErrorKind::InvalidInput);
}
