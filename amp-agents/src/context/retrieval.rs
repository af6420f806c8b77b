//! Finding passages: embedding similarity, keyword search (BM25), or both with their
//! rankings fused.
//!
//! Hybrid retrieval asks each retriever for its best `candidates` passages (the access
//! filter applied inside each search) and fuses the two rankings by weighted reciprocal
//! rank fusion: a passage at rank `r` (from 1) of a retriever with weight `w` gains
//! `w / (k + r)`. A passage only one retriever found still counts, which is the point: an
//! exact product code is found by its words, a paraphrase by its meaning. Ties break by the
//! better single rank, then by id, so results are repeatable.
//!
//! Optionally, maximal marginal relevance re-ranks the fused list so near-identical
//! passages (the same paragraph in two versions of a file) do not fill the results.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use amp_core::config::{RetrievalConfig, RetrievalMode};
use amp_core::{ChunkId, Embedder, FileId, KeywordIndex, Result, SearchFilter, SearchHit, VectorIndex};
use serde::{Deserialize, Serialize};

/// Where a passage stood in each retriever's ranking (from 1), if it was there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranks {
    /// Its rank by embedding similarity.
    pub vector: Option<u32>,
    /// Its rank by keyword search.
    pub keyword: Option<u32>,
}

/// One passage found.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// The passage.
    pub chunk: ChunkId,
    /// Its file.
    pub file: FileId,
    /// Cosine similarity (vector mode), BM25 (keyword mode) or the fused score (hybrid).
    pub score: f32,
    /// Its place in each retriever's ranking.
    pub ranks: Ranks,
}

/// The retrievers and how their results are combined. Cheap to clone.
#[derive(Clone)]
pub struct Retriever {
    embedder: Arc<dyn Embedder>,
    vectors: Arc<dyn VectorIndex>,
    keywords: Arc<dyn KeywordIndex>,
    settings: RetrievalConfig,
}

impl Retriever {
    /// Searches `vectors` with queries embedded by `embedder`, and `keywords`, as
    /// `settings` say (validated by the configuration).
    pub fn new(
        embedder: Arc<dyn Embedder>,
        vectors: Arc<dyn VectorIndex>,
        keywords: Arc<dyn KeywordIndex>,
        settings: RetrievalConfig,
    ) -> Self {
        Retriever { embedder, vectors, keywords, settings }
    }

    /// The deployment's settings.
    pub fn settings(&self) -> &RetrievalConfig {
        &self.settings
    }

    /// The `limit` best passages the filter allows, found as `settings` say (the
    /// deployment's, or an agent's over them: see [`Retriever::settings`]).
    pub async fn search(
        &self,
        query: &str,
        filter: &SearchFilter,
        limit: usize,
        settings: &RetrievalConfig,
    ) -> Result<Vec<Ranked>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mode = settings.mode;
        let candidates = settings.candidates.max(limit);
        let vector = async {
            match mode {
                RetrievalMode::Keyword => Ok(Vec::new()),
                RetrievalMode::Vector | RetrievalMode::Hybrid => {
                    let query = self.embedder.embed(&[query.to_owned()]).await?.pop().unwrap_or_default();
                    let want = if mode == RetrievalMode::Vector { limit } else { candidates };
                    self.vectors.search(&query, filter, want).await
                }
            }
        };
        let keyword = async {
            match mode {
                RetrievalMode::Vector => Ok(Vec::new()),
                RetrievalMode::Keyword => self.keywords.search(query, filter, limit).await,
                RetrievalMode::Hybrid => self.keywords.search(query, filter, candidates).await,
            }
        };
        let (vector, keyword) = tokio::try_join!(vector, keyword)?;
        Ok(match mode {
            RetrievalMode::Vector => alone(vector, |rank| Ranks { vector: Some(rank), keyword: None }),
            RetrievalMode::Keyword => alone(keyword, |rank| Ranks { vector: None, keyword: Some(rank) }),
            RetrievalMode::Hybrid => {
                let mut fused = fuse(&vector, &keyword, settings);
                // Maximal marginal relevance chooses `limit` from three times as many.
                let pool = if settings.mmr_lambda.is_some() { limit.saturating_mul(3) } else { limit };
                fused.truncate(pool);
                fused
            }
        })
    }

    /// `ranked` cut to `limit`, re-ranked by maximal marginal relevance first when
    /// `settings` turn it on (`text` gives each passage's text).
    pub fn diversify<T>(
        settings: &RetrievalConfig,
        ranked: Vec<T>,
        limit: usize,
        text: impl Fn(&T) -> &str,
    ) -> Vec<T> {
        match settings.mmr_lambda {
            Some(lambda) => mmr(ranked, limit, lambda, text),
            None => {
                let mut ranked = ranked;
                ranked.truncate(limit);
                ranked
            }
        }
    }
}

impl std::fmt::Debug for Retriever {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retriever").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// One retriever's hits, ranked as they came.
fn alone(hits: Vec<SearchHit>, ranks: impl Fn(u32) -> Ranks) -> Vec<Ranked> {
    hits.into_iter()
        .enumerate()
        .map(|(i, h)| Ranked {
            chunk: h.chunk,
            file: h.file,
            score: h.score,
            ranks: ranks(u32::try_from(i + 1).unwrap_or(u32::MAX)),
        })
        .collect()
}

/// Weighted reciprocal rank fusion of two rankings (see the module docs).
pub fn fuse(vector: &[SearchHit], keyword: &[SearchHit], settings: &RetrievalConfig) -> Vec<Ranked> {
    let mut by_chunk: HashMap<ChunkId, Ranked> = HashMap::with_capacity(vector.len() + keyword.len());
    let lists = [(vector, settings.vector_weight, true), (keyword, settings.keyword_weight, false)];
    for (hits, weight, is_vector) in lists {
        for (i, hit) in hits.iter().enumerate() {
            let rank = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let entry = by_chunk.entry(hit.chunk).or_insert(Ranked {
                chunk: hit.chunk,
                file: hit.file,
                score: 0.0,
                ranks: Ranks::default(),
            });
            if is_vector {
                entry.ranks.vector.get_or_insert(rank);
            } else {
                entry.ranks.keyword.get_or_insert(rank);
            }
            entry.score += weight / (settings.rrf_k + rank as f32);
        }
    }
    let mut fused: Vec<Ranked> = by_chunk.into_values().collect();
    let best = |r: &Ranked| r.ranks.vector.unwrap_or(u32::MAX).min(r.ranks.keyword.unwrap_or(u32::MAX));
    fused.sort_by(|a, b| {
        b.score.total_cmp(&a.score).then_with(|| best(a).cmp(&best(b))).then_with(|| a.chunk.cmp(&b.chunk))
    });
    fused
}

/// The lower-cased words of `text`, for comparing passages.
fn word_set(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Jaccard similarity of two word sets.
fn overlap(a: &HashSet<String>, b: &HashSet<String>) -> f32 {
    let union = a.union(b).count();
    if union == 0 { 0.0 } else { a.intersection(b).count() as f32 / union as f32 }
}

/// Maximal marginal relevance over a ranked list: each step takes the passage with the best
/// `λ · relevance − (1 − λ) · (greatest word overlap with one already taken)`, relevance
/// being `1 − position / length` so the list's order is what counts. Each candidate's
/// greatest overlap is kept and updated against the newest choice only, so the cost is
/// `limit × candidates` overlaps.
fn mmr<T>(ranked: Vec<T>, limit: usize, lambda: f32, text: impl Fn(&T) -> &str) -> Vec<T> {
    let n = ranked.len();
    let words: Vec<HashSet<String>> = ranked.iter().map(|r| word_set(text(r))).collect();
    let mut nearest = vec![0.0f32; n];
    let mut taken = vec![false; n];
    let mut chosen: Vec<usize> = Vec::with_capacity(limit.min(n));
    while chosen.len() < limit.min(n) {
        let mut best: Option<(usize, f32)> = None;
        for i in (0..n).filter(|&i| !taken[i]) {
            let value = lambda * (1.0 - i as f32 / n as f32) - (1.0 - lambda) * nearest[i];
            if best.is_none_or(|(_, v)| value > v) {
                best = Some((i, value));
            }
        }
        let Some((pick, _)) = best else { break };
        taken[pick] = true;
        chosen.push(pick);
        for i in (0..n).filter(|&i| !taken[i]) {
            nearest[i] = nearest[i].max(overlap(&words[i], &words[pick]));
        }
    }
    let mut slots: Vec<Option<T>> = ranked.into_iter().map(Some).collect();
    chosen.into_iter().filter_map(|i| slots[i].take()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(chunk: ChunkId, score: f32) -> SearchHit {
        SearchHit { chunk, file: FileId::from_uuid(uuid::Uuid::nil()), score }
    }

    #[test]
    fn fusion_ranks_what_both_retrievers_found_first_and_keeps_what_only_one_found() {
        let [a, b, c, d] = std::array::from_fn(|_| ChunkId::new());
        let settings = RetrievalConfig::default();
        let fused = fuse(&[hit(a, 0.9), hit(b, 0.8), hit(c, 0.7)], &[hit(c, 9.0), hit(d, 5.0)], &settings);
        let order: Vec<_> = fused.iter().map(|r| r.chunk).collect();
        assert_eq!(order[..2], [c, a], "c is in both lists, a leads one");
        assert_eq!(
            order[2..].iter().collect::<HashSet<_>>(),
            HashSet::from([&b, &d]),
            "d and b tie at rank 2"
        );
        assert_eq!(fused[0].ranks, Ranks { vector: Some(3), keyword: Some(1) });
        assert_eq!(fused[1].ranks, Ranks { vector: Some(1), keyword: None });
        let expected = 1.0 / 63.0 + 1.0 / 61.0;
        assert!((fused[0].score - expected).abs() < 1e-6, "{} vs {expected}", fused[0].score);
    }

    #[test]
    fn a_weight_of_zero_leaves_only_the_other_ranking() {
        let [a, b] = std::array::from_fn(|_| ChunkId::new());
        let settings = RetrievalConfig { vector_weight: 0.0, ..RetrievalConfig::default() };
        let fused = fuse(&[hit(a, 0.9)], &[hit(b, 1.0), hit(a, 0.5)], &settings);
        assert_eq!(fused.iter().map(|r| r.chunk).collect::<Vec<_>>(), vec![b, a]);
    }

    #[test]
    fn mmr_moves_a_near_copy_below_a_different_passage() {
        let texts = vec![
            "the reactor cooling loop failed at noon",
            "the reactor cooling loop failed at noon today",
            "staff were evacuated from building seven",
        ];
        let plain = mmr(texts.clone(), 3, 1.0, |t| t);
        assert_eq!(plain, texts, "λ = 1 keeps the ranking");
        let diverse = mmr(texts.clone(), 2, 0.5, |t| t);
        assert_eq!(diverse, vec![texts[0], texts[2]], "the near copy gives way");
    }
}
