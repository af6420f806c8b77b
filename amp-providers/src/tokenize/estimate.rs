//! A conservative token count for models whose tokenizer is not public (Claude).
//!
//! # Why it over-estimates, and by how much
//!
//! The count decides whether a prompt fits a model's context window. Counting too many
//! costs a little of the window; counting too few sends a prompt the provider refuses
//! after the person has waited for it. So the estimate is built to be at least the
//! cl100k count, never below, and then some:
//!
//! - **cl100k scaled up by a margin**: `n + ceil(n × margin_ratio)` for cl100k's count `n`.
//!   Integer arithmetic on top of `n` keeps `estimate ≥ n` exact (no float rounding).
//!   The default margin, [`EstimateTokenizer::DEFAULT_MARGIN_RATIO`], is a judgement,
//!   not a measurement: there is no Claude tokenizer here to measure against, and
//!   published comparisons vary by text (code and non-English text cost most). Set it
//!   from the usage your provider reports for your own traffic.
//! - **a floor of one token per [`EstimateTokenizer::BYTES_PER_TOKEN_FLOOR`] bytes**:
//!   cl100k merges long runs (indentation, `=====` rulers, repeated characters) into very
//!   few tokens, and scaling a tiny count by a margin leaves it tiny; another tokenizer
//!   may split such runs far finer. The floor binds only where cl100k packs more than
//!   `4 × (1 + margin)` bytes into a token (5.2 at the default margin): runs like those,
//!   and text of long, common words (the 1 MiB bench corpus, at 5.4, is one). Ordinary
//!   prose (~4.5) and code sit below it, where the floor costs nothing.
//!
//! Chat prompts add OpenAI's per-message framing, with each text estimated as above, so
//! a chat estimate is never below the cl100k chat count either.

use amp_core::{ChatMessage, Error, Result, Tokenizer};

use super::chat_overhead::openai_chat_tokens;
use super::tiktoken::TiktokenTokenizer;

/// Over-estimates tokens for models without a public tokenizer; never below cl100k.
///
/// See the [module documentation](self) for the reasoning.
///
/// ```
/// use amp_core::Tokenizer;
/// use amp_providers::tokenize::{EstimateTokenizer, TiktokenTokenizer};
///
/// let text = "fn main() { println!(\"hello\"); }";
/// let cl100k = TiktokenTokenizer::cl100k_base()?.count(text);
/// let estimate = EstimateTokenizer::with_margin_ratio(0.5)?.count(text);
/// assert!(estimate >= cl100k + cl100k / 2);
/// # Ok::<(), amp_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct EstimateTokenizer {
    margin_ratio: f64,
    cl100k: TiktokenTokenizer,
}

impl EstimateTokenizer {
    /// The margin used by [`EstimateTokenizer::new`]: 30 % above cl100k.
    pub const DEFAULT_MARGIN_RATIO: f64 = 0.3;

    /// The largest margin accepted. Above it, a percentage was almost certainly passed
    /// where a ratio was meant (`30` for `0.3`), which would waste nearly all the window.
    pub const MAX_MARGIN_RATIO: f64 = 1.0;

    /// Bytes per token of the floor: OpenAI's rule of thumb for English text.
    pub const BYTES_PER_TOKEN_FLOOR: usize = 4;

    /// An estimator with the [default margin](Self::DEFAULT_MARGIN_RATIO).
    pub fn new() -> Result<Self> {
        Self::with_margin_ratio(Self::DEFAULT_MARGIN_RATIO)
    }

    /// An estimator counting `margin_ratio` more than cl100k (`0.3` = 30 % more).
    ///
    /// Fails with [`Error::InvalidInput`] unless `0 ≤ margin_ratio ≤ 1`.
    pub fn with_margin_ratio(margin_ratio: f64) -> Result<Self> {
        if !(0.0..=Self::MAX_MARGIN_RATIO).contains(&margin_ratio) {
            return Err(Error::invalid_input(format!(
                "token estimate margin must be a ratio between 0 and {} (0.3 = 30 % more), got {margin_ratio}",
                Self::MAX_MARGIN_RATIO
            )));
        }
        Ok(EstimateTokenizer { margin_ratio, cl100k: TiktokenTokenizer::cl100k_base()? })
    }

    /// The margin above cl100k, as a ratio.
    pub fn margin_ratio(&self) -> f64 {
        self.margin_ratio
    }
}

impl Tokenizer for EstimateTokenizer {
    fn name(&self) -> &str {
        "estimate"
    }

    fn count(&self, text: &str) -> usize {
        let cl100k = self.cl100k.count(text);
        // `cl100k` is far below 2^53, so the product is exact enough, and the cast only
        // truncates a value `ceil` has already made whole and non-negative.
        let margin = (cl100k as f64 * self.margin_ratio).ceil() as usize;
        let floor = text.len().div_ceil(Self::BYTES_PER_TOKEN_FLOOR);
        (cl100k + margin).max(floor)
    }

    fn count_chat(&self, messages: &[ChatMessage]) -> usize {
        openai_chat_tokens(messages, |text| self.count(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_outside_zero_to_one_are_refused() {
        for bad in [-0.1, 1.5, 30.0, f64::NAN, f64::INFINITY] {
            let err = EstimateTokenizer::with_margin_ratio(bad).unwrap_err();
            assert!(err.to_string().contains("between 0 and 1"), "{bad}: {err}");
        }
        assert!(EstimateTokenizer::with_margin_ratio(0.0).is_ok());
        assert!(EstimateTokenizer::with_margin_ratio(1.0).is_ok());
    }

    #[test]
    fn the_byte_floor_covers_runs_cl100k_merges() {
        let tokenizer = EstimateTokenizer::with_margin_ratio(0.0).unwrap();
        let ruler = "=".repeat(400);
        assert!(tokenizer.cl100k.count(&ruler) < 100);
        assert_eq!(tokenizer.count(&ruler), 100);
    }
}
