//! The ChatML chat template SmolLM2 was tuned on.
//!
//! The GGUF carries the template as Jinja. Rather than run a Jinja engine for one fixed
//! format, the template is checked to be ChatML and rendered here to token ids directly:
//! `<|im_start|>` and `<|im_end|>` go in by id and only the text between them is tokenized,
//! which is what llama.cpp produces for the rendered string, and keeps control-token markers
//! typed into a message from acting as control tokens.
//!
//! SmolLM2's Jinja template also inserts a system prompt of its own ("You are a helpful AI
//! assistant named SmolLM, trained by Hugging Face") into chats without one. AMP renders
//! plain ChatML instead, as llama.cpp's built-in ChatML formatting does: agents bring their
//! own instructions, and the inserted prompt leaves this small model on a knife's edge. With
//! it, "What is the capital of France?" gets "The…" at 16 % against "L…" at 14 % even in
//! float32, and 8-bit activations flip the greedy answer to "L'Étoile, la Marseillaise…";
//! without it, "The capital of France is Paris." leads at 53 %.

use amp_core::{ChatMessage, Error, Result, Role};

/// A ChatML template: `<|im_start|>role\ncontent<|im_end|>\n` per message, then
/// `<|im_start|>assistant\n` to open the answer.
#[derive(Debug, Clone)]
pub(crate) struct ChatTemplate {
    im_start: u32,
    im_end: u32,
}

impl ChatTemplate {
    /// Checks the GGUF's Jinja `source` (when present) is ChatML.
    pub(crate) fn new(source: Option<&str>, im_start: u32, im_end: u32) -> Result<Self> {
        if let Some(source) = source
            && !(source.contains("<|im_start|>") && source.contains("<|im_end|>"))
        {
            return Err(Error::invalid_input(
                "the GGUF file's chat template is not ChatML (<|im_start|>role … <|im_end|>), \
                 the only one the local model renders",
            ));
        }
        Ok(ChatTemplate { im_start, im_end })
    }

    /// The prompt's ids; `encode` tokenizes plain text.
    pub(crate) fn render(
        &self,
        messages: &[ChatMessage],
        encode: impl Fn(&str) -> Result<Vec<u32>>,
    ) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for message in messages {
            ids.push(self.im_start);
            ids.extend(encode(&format!("{}\n{}", role_name(message.role), message.content))?);
            ids.push(self.im_end);
            ids.extend(encode("\n")?);
        }
        ids.push(self.im_start);
        ids.extend(encode("assistant\n")?);
        Ok(ids)
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stands in for the tokenizer: one id per byte, offset past the control ids.
    fn bytes(text: &str) -> Result<Vec<u32>> {
        Ok(text.bytes().map(|b| u32::from(b) + 100).collect())
    }

    fn text(ids: &[u32]) -> String {
        ids.iter()
            .map(|&id| match id {
                1 => "<|im_start|>".to_owned(),
                2 => "<|im_end|>".to_owned(),
                _ => char::from(u8::try_from(id - 100).unwrap_or(b'?')).to_string(),
            })
            .collect()
    }

    /// SmolLM2's Jinja template, as its GGUF file carries it.
    const SMOLLM2_TEMPLATE: &str = concat!(
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}",
        "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face",
        "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + ",
        "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}",
        "{% endif %}"
    );

    #[test]
    fn renders_plain_chatml_and_opens_the_answer() {
        let template = ChatTemplate::new(Some(SMOLLM2_TEMPLATE), 1, 2).unwrap();
        let ids = template.render(&[ChatMessage::user("Hi")], bytes).unwrap();
        assert_eq!(text(&ids), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        let ids = template
            .render(
                &[ChatMessage::system("Be brief."), ChatMessage::user("Hi"), ChatMessage::assistant("Hello")],
                bytes,
            )
            .unwrap();
        assert_eq!(
            text(&ids),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
             <|im_start|>assistant\nHello<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn refuses_a_template_that_is_not_chatml() {
        let err = ChatTemplate::new(Some("[INST] {{ message }} [/INST]"), 1, 2).unwrap_err();
        assert!(err.to_string().contains("ChatML"), "{err}");
    }
}
