//! The local model's own tokenizer, read from its GGUF file.
//!
//! candle's `TokenizerFromGguf` builds the BPE vocabulary and merges correctly, but it does
//! not know `tokenizer.ggml.pre = "smollm"` and falls back to GPT-2 pre-tokenizing, which
//! adds a leading space and groups digits. The ids then differ from the ones the model was
//! trained on (llama.cpp's and Hugging Face's), so the pre-tokenizer is replaced with
//! SmolLM's own: individual digits, then byte-level without a prefix space.

use std::path::Path;
use std::sync::Arc;

use amp_core::{ChatMessage, Error, Result, Tokenizer};
use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;

use super::template::ChatTemplate;
use super::weights::read_gguf_header;

/// The tokenizer of the local chat model: counts, encodes and decodes exactly as the model
/// sees text, and renders chats through the model's chat template.
///
/// Cheap to clone (the vocabulary is shared).
///
/// ```no_run
/// use amp_core::{ChatMessage, Tokenizer};
/// use amp_providers::chat::local::LocalTokenizer;
///
/// let path = ".amp-cache/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// let tokenizer = LocalTokenizer::from_gguf_file(path.as_ref())?;
/// assert_eq!(tokenizer.count("12345"), 5); // one token per digit
/// let prompt_tokens = tokenizer.count_chat(&[ChatMessage::user("Hi")]);
/// # Ok::<(), amp_core::Error>(())
/// ```
#[derive(Clone)]
pub struct LocalTokenizer {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    tokenizer: tokenizers::Tokenizer,
    /// The bytes each id stands for; empty for control tokens, which never appear in text.
    token_bytes: Vec<Box<[u8]>>,
    /// Ids that end an answer: the GGUF's end-of-sequence token and `<|endoftext|>`, as
    /// llama.cpp does.
    end_tokens: Vec<u32>,
    template: ChatTemplate,
}

impl std::fmt::Debug for LocalTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTokenizer")
            .field("name", &self.inner.name)
            .field("vocab_size", &self.inner.token_bytes.len())
            .finish()
    }
}

impl LocalTokenizer {
    /// Reads the tokenizer and chat template from a GGUF file's metadata (the tensors are
    /// not read).
    pub fn from_gguf_file(path: &Path) -> Result<Self> {
        let (content, _) = read_gguf_header(path)?;
        Self::from_gguf(&content)
    }

    pub(crate) fn from_gguf(content: &Content) -> Result<Self> {
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            Error::invalid_input(format!("the GGUF file's tokenizer {what}: {e}"))
        };
        let mut tokenizer =
            tokenizers::Tokenizer::from_gguf(content).map_err(|e| invalid("cannot be built", &e))?;
        tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ])));
        // Message text is text: a `<|im_end|>` typed by a user must not end their turn.
        // The template inserts control tokens by id instead.
        tokenizer.set_encode_special_tokens(true);

        let control: std::collections::HashSet<u32> = tokenizer
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| id)
            .collect();
        let vocab_size = u32::try_from(tokenizer.get_vocab_size(true))
            .map_err(|e| invalid("has an impossible vocabulary size", &e))?;
        let table = char_to_byte_table();
        let token_bytes = (0..vocab_size)
            .map(|id| match tokenizer.id_to_token(id) {
                Some(token) if !control.contains(&id) => byte_level_bytes(&token, &table),
                _ => Box::default(),
            })
            .collect();

        let id_of =
            |token: &str| tokenizer.token_to_id(token).ok_or_else(|| invalid("lacks a token", &token));
        let eos = content
            .metadata
            .get("tokenizer.ggml.eos_token_id")
            .and_then(|v| v.to_u32().ok())
            .map_or_else(|| id_of("<|im_end|>"), Ok)?;
        let mut end_tokens = vec![eos];
        end_tokens.extend(tokenizer.token_to_id("<|endoftext|>").filter(|id| *id != eos));

        let template_source = content
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .map(String::as_str);
        let template = ChatTemplate::new(template_source, id_of("<|im_start|>")?, id_of("<|im_end|>")?)?;
        let name = content
            .metadata
            .get("general.basename")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_else(|| "local".to_owned());

        Ok(LocalTokenizer { inner: Arc::new(Inner { name, tokenizer, token_bytes, end_tokens, template }) })
    }

    /// The ids of plain text. Control-token markers in the text are encoded as text.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| Error::internal("the local tokenizer failed to encode text", e))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids`. Control tokens (`<|im_start|>`, `<|im_end|>`, …) are dropped when
    /// `skip_control` is set and written out otherwise. Bytes that are not valid UTF-8
    /// become U+FFFD.
    pub fn decode(&self, ids: &[u32], skip_control: bool) -> Result<String> {
        self.inner
            .tokenizer
            .decode(ids, skip_control)
            .map_err(|e| Error::internal("the local tokenizer failed to decode ids", e))
    }

    /// The raw bytes token `id` stands for (a token may hold part of a UTF-8 character);
    /// empty for control tokens and unknown ids.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.inner.token_bytes.get(id as usize).map_or(&[], |b| b)
    }

    /// The ids of a chat rendered through the model's chat template, ending with the
    /// assistant's turn opener: exactly the prompt the model is given.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        self.inner.template.render(messages, |text| self.encode(text))
    }

    /// Whether `id` ends an answer.
    pub(crate) fn is_end(&self, id: u32) -> bool {
        self.inner.end_tokens.contains(&id)
    }
}

impl Tokenizer for LocalTokenizer {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn count(&self, text: &str) -> usize {
        // Byte-level BPE never yields more tokens than bytes, so on the (unexpected) error
        // the byte count is a safe over-estimate.
        self.encode(text).map_or(text.len(), |ids| ids.len())
    }

    fn count_chat(&self, messages: &[ChatMessage]) -> usize {
        self.chat_prompt(messages).map_or_else(
            |_| {
                messages
                    .iter()
                    .map(|m| m.content.len() + m.name.as_ref().map_or(0, String::len) + 8)
                    .sum::<usize>()
                    + 8
            },
            |ids| ids.len(),
        )
    }
}

/// The bytes behind a byte-level BPE token, through `table` from [`char_to_byte_table`].
///
/// Mirrors the tokenizers crate's byte-level decoder (whose table is private), including
/// its fallback of taking a token with an unmapped character as literal UTF-8.
fn byte_level_bytes(token: &str, table: &CharToByte) -> Box<[u8]> {
    token
        .chars()
        .map(|c| table.get(c as usize).copied().flatten())
        .collect::<Option<Vec<u8>>>()
        .unwrap_or_else(|| token.as_bytes().to_vec())
        .into_boxed_slice()
}

/// GPT-2's byte-level alphabet inverted: indexed by code point, the byte it stands for.
type CharToByte = [Option<u8>; 0x144];

/// GPT-2 maps printable bytes to their own code points and the other 68 bytes, in order,
/// to U+0100…U+0143.
fn char_to_byte_table() -> CharToByte {
    let printable = |b: u8| matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut table = [None; 0x144];
    let mut next = 0x100;
    for b in 0..=u8::MAX {
        if printable(b) {
            table[usize::from(b)] = Some(b);
        } else {
            table[next] = Some(b);
            next += 1;
        }
    }
    table
}

/// Turns generated tokens into text without ever splitting a UTF-8 character: bytes of an
/// unfinished character wait for the token that completes it.
#[derive(Debug, Default)]
pub(crate) struct Utf8Assembler {
    pending: Vec<u8>,
}

impl Utf8Assembler {
    /// Adds a token's bytes and returns the text they complete (possibly empty).
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // An unfinished character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        // Bytes no continuation can repair: replace them, as lossy decoding does.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// The text still held back when generation ends (an unfinished character becomes U+FFFD).
    pub(crate) fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_inverts_gpt2s_alphabet() {
        let table = char_to_byte_table();
        let byte = |c: char| table.get(c as usize).copied().flatten();
        assert_eq!(byte('A'), Some(b'A'));
        assert_eq!(byte('Ġ'), Some(b' '));
        assert_eq!(byte('Ċ'), Some(b'\n'));
        assert_eq!(byte('Ā'), Some(0));
        assert_eq!(byte('ł'), Some(0xA0));
        assert_eq!(byte('Ń'), Some(0xAD));
        assert_eq!(byte('日'), None);
        let bytes: std::collections::HashSet<u8> = table.iter().flatten().copied().collect();
        assert_eq!(bytes.len(), 256);
        assert_eq!(&*byte_level_bytes("ĠcafÃ©", &table), " café".as_bytes());
    }

    #[test]
    fn assembler_holds_back_unfinished_characters() {
        let text = "é🚀 日本";
        let mut asm = Utf8Assembler::default();
        let pieces: Vec<String> = text.as_bytes().iter().map(|b| asm.push(&[*b])).collect();
        assert!(pieces.iter().all(|p| !p.contains(char::REPLACEMENT_CHARACTER)));
        assert_eq!(pieces.concat(), text);
        assert_eq!(pieces.iter().filter(|p| p.is_empty()).count(), text.len() - text.chars().count());
        assert_eq!(asm.finish(), "");
    }

    #[test]
    fn assembler_replaces_invalid_bytes_and_flushes_the_rest() {
        let mut asm = Utf8Assembler::default();
        assert_eq!(asm.push(b"a\x80b"), "a\u{FFFD}b");
        assert_eq!(asm.push(b"\xF0\x9F"), "");
        assert_eq!(asm.finish(), "\u{FFFD}");
    }
}
