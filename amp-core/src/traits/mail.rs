//! Sending mail to people (email-verification links).

use async_trait::async_trait;

use crate::error::Result;

/// One message to one person. Its text may carry a one-time link, so `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail").field("to", &self.to).field("subject", &self.subject).finish_non_exhaustive()
    }
}

/// Delivers [`Mail`]. The embedded default writes the message to the log for the operator;
/// deployments plug in their own (SMTP, a mail API) through this trait.
#[async_trait]
pub trait MailSender: Send + Sync {
    /// Sends one message; an error means it was not sent.
    async fn send(&self, mail: &Mail) -> Result<()>;
}
