//! OpenAI's BPE encodings, counted with tiktoken-rs.

use std::fmt;
use std::sync::LazyLock;

use amp_core::{ChatMessage, Error, Result, Tokenizer};
use tiktoken_rs::CoreBPE;

use super::chat_overhead::openai_chat_tokens;

/// An OpenAI BPE encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TiktokenEncoding {
    /// GPT-4o, GPT-4.1 and the o-series.
    O200kBase,
    /// GPT-4 and GPT-3.5.
    Cl100kBase,
}

impl TiktokenEncoding {
    /// The encoding's name as OpenAI spells it (`o200k_base`, `cl100k_base`).
    pub const fn name(self) -> &'static str {
        match self {
            TiktokenEncoding::O200kBase => "o200k_base",
            TiktokenEncoding::Cl100kBase => "cl100k_base",
        }
    }
}

// Building an encoding parses its compiled-in rank table (50 ms for cl100k, 120 ms for
// o200k), so each is built once per process, on first use, and shared. A failure is kept
// as text so every later caller gets the same error instead of a retry that cannot help.
static O200K_BASE: LazyLock<Result<CoreBPE, String>> =
    LazyLock::new(|| tiktoken_rs::o200k_base().map_err(|e| e.to_string()));
static CL100K_BASE: LazyLock<Result<CoreBPE, String>> =
    LazyLock::new(|| tiktoken_rs::cl100k_base().map_err(|e| e.to_string()));

fn shared_bpe(encoding: TiktokenEncoding) -> Result<&'static CoreBPE> {
    let loaded: &'static Result<CoreBPE, String> = match encoding {
        TiktokenEncoding::O200kBase => &O200K_BASE,
        TiktokenEncoding::Cl100kBase => &CL100K_BASE,
    };
    loaded.as_ref().map_err(|cause| {
        Error::internal(format!("loading the {} encoding failed", encoding.name()), cause.clone())
    })
}

/// Counts tokens exactly as OpenAI's models do, for one [`TiktokenEncoding`].
///
/// Text is encoded as ordinary text: a literal `<|endoftext|>` inside a document counts
/// as the characters it is made of, never as the special token, so untrusted text can
/// neither shrink its own count nor smuggle in a control token. Chat prompts add
/// OpenAI's per-message framing ([`openai_chat_tokens`]).
///
/// Cheap to construct after the first time: every tokenizer of one encoding shares one
/// rank table. The first construction in a process loads it (50–120 ms), so do it at
/// start-up or off the async runtime.
#[derive(Clone, Copy)]
pub struct TiktokenTokenizer {
    encoding: TiktokenEncoding,
    bpe: &'static CoreBPE,
}

impl TiktokenTokenizer {
    /// A tokenizer for `encoding`, loading its rank table if this process has not yet.
    pub fn new(encoding: TiktokenEncoding) -> Result<Self> {
        Ok(TiktokenTokenizer { encoding, bpe: shared_bpe(encoding)? })
    }

    /// GPT-4o, GPT-4.1 and the o-series.
    pub fn o200k_base() -> Result<Self> {
        Self::new(TiktokenEncoding::O200kBase)
    }

    /// GPT-4 and GPT-3.5.
    pub fn cl100k_base() -> Result<Self> {
        Self::new(TiktokenEncoding::Cl100kBase)
    }

    /// Which encoding this tokenizer counts with.
    pub fn encoding(&self) -> TiktokenEncoding {
        self.encoding
    }

    /// The shared encoder, for libraries that size text with tiktoken-rs directly (a text
    /// splitter, say) so they reuse the loaded table instead of loading another.
    pub fn bpe(&self) -> &'static CoreBPE {
        self.bpe
    }
}

impl fmt::Debug for TiktokenTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TiktokenTokenizer").field("encoding", &self.encoding).finish_non_exhaustive()
    }
}

impl Tokenizer for TiktokenTokenizer {
    fn name(&self) -> &str {
        self.encoding.name()
    }

    fn count(&self, text: &str) -> usize {
        self.bpe.encode_ordinary(text).len()
    }

    fn count_chat(&self, messages: &[ChatMessage]) -> usize {
        openai_chat_tokens(messages, |text| self.count(text))
    }
}
