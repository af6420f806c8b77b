//! Writing files made searchable before the keyword index existed (or before it was
//! switched to another backend) into it.

use amp_core::{KeywordEntry, Result, Visibility};

use super::Storage;

/// Files read from the store per page.
const PAGE: usize = 200;

impl Storage {
    /// Writes every `ready` file that the keyword index holds nothing of into it, from the
    /// passages already stored (nothing is re-extracted or re-embedded), and returns how
    /// many files it wrote. Safe to run while the server serves and on several processes at
    /// once: writes replace by passage id, and a file deleted meanwhile is taken out again.
    pub async fn backfill_keywords(&self) -> Result<u64> {
        let mut written = 0;
        let mut after = None;
        loop {
            let page = self.stores.files.list_ready(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            let ids: Vec<_> = page.iter().map(|f| f.id).collect();
            for id in self.keywords.missing_files(&ids).await? {
                let Some(file) = page.iter().find(|f| f.id == id) else { continue };
                let visibility = Visibility { owner: file.owner, workspace: file.workspace };
                let entries: Vec<KeywordEntry> = self
                    .stores
                    .files
                    .list_chunks(id)
                    .await?
                    .into_iter()
                    .map(|c| KeywordEntry { chunk: c.id, file: id, visibility, text: c.text })
                    .collect();
                if entries.is_empty() {
                    continue;
                }
                self.keywords.upsert(entries).await?;
                match self.stores.files.get_file(id).await? {
                    None => {
                        self.keywords.delete_file(id).await?;
                        continue;
                    }
                    Some(now) if now.updated_at != file.updated_at || now.status != file.status => {
                        // Re-processed meanwhile: what was written may be its old passages.
                        // Its ingestion writes the new ones; until then it has none.
                        self.keywords.delete_file(id).await?;
                        if now.status == amp_core::FileStatus::Ready {
                            let fresh: Vec<KeywordEntry> = self
                                .stores
                                .files
                                .list_chunks(id)
                                .await?
                                .into_iter()
                                .map(|c| KeywordEntry { chunk: c.id, file: id, visibility, text: c.text })
                                .collect();
                            self.keywords.upsert(fresh).await?;
                        }
                        continue;
                    }
                    Some(_) => {}
                }
                written += 1;
            }
        }
        if written > 0 {
            tracing::info!(files = written, "keyword index back-filled");
        }
        Ok(written)
    }
}
