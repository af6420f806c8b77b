//! What a chat prompt costs beyond its texts, as OpenAI's chat models frame it.
//!
//! OpenAI's cookbook ("How to count tokens with tiktoken") documents the framing of
//! `gpt-3.5-turbo-0125`, `gpt-4-0613`, `gpt-4o` and `gpt-4o-mini`: each message costs 3
//! tokens (`<|start|>{role}<|message|>…<|end|>` around its role and content), a `name`
//! costs 1 more, and every reply is primed with 3 (`<|start|>assistant<|message|>`). The
//! cookbook checked its arithmetic against the API's reported usage; our tests reproduce
//! its totals (129 tokens with cl100k, 124 with o200k).

use amp_core::{ChatMessage, Role};

/// Framing tokens around every message.
pub const TOKENS_PER_MESSAGE: usize = 3;

/// Extra tokens when a message carries a `name`.
pub const TOKENS_PER_NAME: usize = 1;

/// Tokens priming the model's reply, counted once per prompt.
pub const REPLY_PRIMING_TOKENS: usize = 3;

/// Extra tokens per tool call an assistant message carries.
///
/// The cookbook does not document how tool calls are framed; one token each (beside the
/// function's name and arguments) is tiktoken-rs's heuristic. Counting the call's id as
/// well over-counts a little, which errs on the side that keeps prompts within the window.
pub const TOKENS_PER_TOOL_CALL: usize = 1;

/// The name a role is rendered with in the prompt.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// Tokens a chat prompt costs with OpenAI's framing, counting each text with `count`.
///
/// ```
/// use amp_core::ChatMessage;
/// use amp_providers::tokenize::chat_overhead::openai_chat_tokens;
///
/// // With one token per word: (3 + "system" + 2 words) + 3 priming the reply.
/// let words = |text: &str| text.split_whitespace().count();
/// assert_eq!(openai_chat_tokens(&[ChatMessage::system("Be brief.")], words), 3 + 1 + 2 + 3);
/// ```
pub fn openai_chat_tokens(messages: &[ChatMessage], count: impl Fn(&str) -> usize) -> usize {
    let per_message = |m: &ChatMessage| {
        let mut tokens = TOKENS_PER_MESSAGE + count(role_name(m.role)) + count(&m.content);
        if let Some(name) = &m.name {
            tokens += count(name) + TOKENS_PER_NAME;
        }
        for call in &m.tool_calls {
            tokens += count(&call.id) + count(&call.name) + count(&call.arguments) + TOKENS_PER_TOOL_CALL;
        }
        if let Some(id) = &m.tool_call_id {
            tokens += count(id);
        }
        tokens
    };
    messages.iter().map(per_message).sum::<usize>() + REPLY_PRIMING_TOKENS
}

#[cfg(test)]
mod tests {
    use amp_core::ToolCall;

    use super::*;

    /// One token per byte, so every total below can be checked by hand.
    fn bytes(text: &str) -> usize {
        text.len()
    }

    #[test]
    fn an_empty_prompt_costs_only_the_reply_priming() {
        assert_eq!(openai_chat_tokens(&[], bytes), 3);
    }

    #[test]
    fn each_message_costs_its_framing_role_and_content() {
        let messages = [ChatMessage::system("abc"), ChatMessage::user("hello")];
        // system: 3 + 6 ("system") + 3; user: 3 + 4 ("user") + 5; reply: 3.
        assert_eq!(openai_chat_tokens(&messages, bytes), 12 + 12 + 3);
    }

    #[test]
    fn a_name_costs_its_text_and_one_more_token() {
        let mut message = ChatMessage::user("hi");
        message.name = Some("ann".into());
        // 3 + 4 ("user") + 2 ("hi") + 3 ("ann") + 1, then 3.
        assert_eq!(openai_chat_tokens(&[message], bytes), 13 + 3);
    }

    #[test]
    fn tool_calls_and_tool_results_are_counted() {
        let mut call = ChatMessage::new(Role::Assistant, "");
        call.tool_calls = vec![ToolCall { id: "c1".into(), name: "get".into(), arguments: "{}".into() }];
        let mut result = ChatMessage::new(Role::Tool, "42");
        result.tool_call_id = Some("c1".into());
        // assistant: 3 + 9 + 0 + (2 + 3 + 2 + 1); tool: 3 + 4 + 2 + 2; reply: 3.
        assert_eq!(openai_chat_tokens(&[call, result], bytes), 20 + 11 + 3);
    }
}
