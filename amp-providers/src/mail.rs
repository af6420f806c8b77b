//! [`MailSender`] backends: the log (the embedded default) and a pickup directory.

use std::path::{Path, PathBuf};

use amp_core::{Error, Mail, MailSender, Result};
use async_trait::async_trait;

/// Writes each message to the log at `info`, for the operator to pass on: the embedded
/// default, with no mail server. The text is logged because handing its link to the person
/// is the operator's job here; use [`PickupDirMailSender`] or your own sender otherwise.
#[derive(Debug, Clone, Default)]
pub struct LogMailSender;

#[async_trait]
impl MailSender for LogMailSender {
    async fn send(&self, mail: &Mail) -> Result<()> {
        tracing::info!(to = %mail.to, subject = %mail.subject, text = %mail.text, "mail for the operator to deliver");
        Ok(())
    }
}

/// Writes each message as an RFC 5322 file (`<time>-<random>.eml`) into a directory, the
/// way a mail server's pickup directory (or a script that forwards them) expects: written
/// to a temporary name, then renamed, so a reader never sees half a message.
#[derive(Debug, Clone)]
pub struct PickupDirMailSender {
    dir: PathBuf,
}

impl PickupDirMailSender {
    /// A sender into `dir`, created if missing.
    pub fn new(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_owned();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::internal(format!("cannot create the mail directory {}", dir.display()), e))?;
        Ok(PickupDirMailSender { dir })
    }
}

/// Header values may not break lines: a newline in a subject or address would start a new
/// header (or the body) chosen by whoever wrote it.
fn header_value(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[async_trait]
impl MailSender for PickupDirMailSender {
    async fn send(&self, mail: &Mail) -> Result<()> {
        let message = format!(
            "To: {}\r\nSubject: {}\r\nDate: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
            header_value(&mail.to),
            header_value(&mail.subject),
            chrono::Utc::now().to_rfc2822(),
            mail.text.replace("\r\n", "\n").replace('\n', "\r\n"),
        );
        let name =
            format!("{}-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"), uuid::Uuid::new_v4().simple());
        let temp = self.dir.join(format!(".{name}.tmp"));
        let done = self.dir.join(format!("{name}.eml"));
        tokio::fs::write(&temp, message.as_bytes())
            .await
            .map_err(|e| Error::unavailable(format!("writing a mail to the pickup directory failed: {e}")))?;
        tokio::fs::rename(&temp, &done)
            .await
            .map_err(|e| Error::unavailable(format!("writing a mail to the pickup directory failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_message_lands_whole_and_its_headers_cannot_be_split() {
        let dir = tempfile::tempdir().unwrap();
        let sender = PickupDirMailSender::new(dir.path().join("outbox")).unwrap();
        let mail = Mail {
            to: "ada@example.test\r\nBcc: eve@example.test".into(),
            subject: "Verify\nyour address".into(),
            text: "Open https://amp.example/verify?token=abc\nto confirm.".into(),
        };
        sender.send(&mail).await.unwrap();
        let files: Vec<_> =
            std::fs::read_dir(dir.path().join("outbox")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        assert!(files[0].extension().is_some_and(|e| e == "eml"));
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(
            text.starts_with(
                "To: ada@example.test  Bcc: eve@example.test\r\nSubject: Verify your address\r\n"
            ),
            "{text}"
        );
        assert!(!text.contains("\r\nBcc:"));
        assert!(text.ends_with("Open https://amp.example/verify?token=abc\r\nto confirm.\r\n"));
        assert!(!format!("{mail:?}").contains("token=abc"), "Debug leaves the text out");
    }
}
