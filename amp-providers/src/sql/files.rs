//! [`FileStore`](amp_core::store::FileStore) on SQL.

/// Implements [`FileStore`](amp_core::store::FileStore) for a store type with a `pool`.
macro_rules! impl_file_store {
    ($stores:ty) => {
        #[async_trait::async_trait]
        impl amp_core::store::FileStore for $stores {
            async fn create_file(&self, f: amp_core::FileMeta) -> amp_core::Result<()> {
                sqlx::query(
                    "INSERT INTO files (id, owner_id, workspace_id, name, media_type, size_bytes, sha256, status, \
                     created_at, updated_at, blob_key, job_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(f.id.as_uuid())
                .bind(f.owner.as_uuid())
                .bind(f.workspace.map(|w| w.as_uuid()))
                .bind(&f.name)
                .bind(&f.media_type)
                .bind($crate::sql::to_i64(f.size_bytes, "file size")?)
                .bind(&f.sha256)
                .bind(sqlx::types::Json(&f.status))
                .bind(rows::ms(f.created_at))
                .bind(rows::ms(f.updated_at))
                .bind(f.blob_key.as_ref().map(|k| k.as_str()))
                .bind(f.job.map(|j| j.as_uuid()))
                .execute(&self.pool)
                .await
                .map_err(|e| error::db_error(e, &format!("file {} already exists", f.id), &format!("user {}", f.owner)))?;
                Ok(())
            }

            async fn get_file(&self, id: amp_core::FileId) -> amp_core::Result<Option<amp_core::FileMeta>> {
                let row: Option<rows::FileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM files WHERE id = $1",
                    rows::FILE_COLUMNS
                )))
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(error::internal)?;
                row.map(rows::file).transpose()
            }

            async fn update_file(&self, f: &amp_core::FileMeta) -> amp_core::Result<()> {
                let done = sqlx::query(
                    "UPDATE files SET workspace_id = $2, name = $3, media_type = $4, size_bytes = $5, sha256 = $6, \
                     status = $7, created_at = $8, updated_at = $9, blob_key = $10, job_id = $11 WHERE id = $1",
                )
                .bind(f.id.as_uuid())
                .bind(f.workspace.map(|w| w.as_uuid()))
                .bind(&f.name)
                .bind(&f.media_type)
                .bind($crate::sql::to_i64(f.size_bytes, "file size")?)
                .bind(&f.sha256)
                .bind(sqlx::types::Json(&f.status))
                .bind(rows::ms(f.created_at))
                .bind(rows::ms(f.updated_at))
                .bind(f.blob_key.as_ref().map(|k| k.as_str()))
                .bind(f.job.map(|j| j.as_uuid()))
                .execute(&self.pool)
                .await
                .map_err(error::internal)?;
                if done.rows_affected() == 0 {
                    return Err(amp_core::Error::not_found(format!("file {}", f.id)));
                }
                Ok(())
            }

            async fn update_processing(&self, f: &amp_core::FileMeta) -> amp_core::Result<()> {
                let done = sqlx::query(
                    "UPDATE files SET status = $2, job_id = $3, size_bytes = $4, sha256 = $5, blob_key = $6, \
                     updated_at = $7 WHERE id = $1",
                )
                .bind(f.id.as_uuid())
                .bind(sqlx::types::Json(&f.status))
                .bind(f.job.map(|j| j.as_uuid()))
                .bind($crate::sql::to_i64(f.size_bytes, "file size")?)
                .bind(&f.sha256)
                .bind(f.blob_key.as_ref().map(|k| k.as_str()))
                .bind(rows::ms(f.updated_at))
                .execute(&self.pool)
                .await
                .map_err(error::internal)?;
                if done.rows_affected() == 0 {
                    return Err(amp_core::Error::not_found(format!("file {}", f.id)));
                }
                Ok(())
            }

            async fn share_file(
                &self,
                id: amp_core::FileId,
                workspace: amp_core::WorkspaceId,
                at: chrono::DateTime<chrono::Utc>,
            ) -> amp_core::Result<bool> {
                // The workspace row is locked for the share, so a delete running at the same
                // time either sees the shared file or the share sees no workspace.
                let mut tx = self.pool.begin().await.map_err(error::internal)?;
                if !Self::lock_live_workspace(&mut tx, workspace).await? {
                    return Ok(false);
                }
                let done = sqlx::query(
                    "UPDATE files SET workspace_id = $2, updated_at = $3 WHERE id = $1 AND workspace_id IS NULL",
                )
                .bind(id.as_uuid())
                .bind(workspace.as_uuid())
                .bind(rows::ms(at))
                .execute(&mut *tx)
                .await
                .map_err(|e| error::db_error(e, "file", &format!("workspace {workspace}")))?;
                tx.commit().await.map_err(error::internal)?;
                Ok(done.rows_affected() == 1)
            }

            async fn list_files(&self, filter: &amp_core::SearchFilter) -> amp_core::Result<Vec<amp_core::FileMeta>> {
                if filter.owners.is_empty() && filter.workspaces.is_empty() {
                    return Ok(Vec::new());
                }
                if filter.files.as_ref().is_some_and(|f| f.is_empty()) {
                    return Ok(Vec::new());
                }
                let mut readable = Vec::new();
                let mut next = 1;
                if !filter.owners.is_empty() {
                    readable.push(format!("owner_id IN ({})", rows::placeholders(next, filter.owners.len())));
                    next += filter.owners.len();
                }
                if !filter.workspaces.is_empty() {
                    readable.push(format!("workspace_id IN ({})", rows::placeholders(next, filter.workspaces.len())));
                    next += filter.workspaces.len();
                }
                let mut sql = format!("SELECT {} FROM files WHERE ({})", rows::FILE_COLUMNS, readable.join(" OR "));
                if let Some(files) = &filter.files {
                    sql.push_str(&format!(" AND id IN ({})", rows::placeholders(next, files.len())));
                }
                sql.push_str(" ORDER BY id DESC");
                let mut query = sqlx::query_as::<_, rows::FileRow>(sqlx::AssertSqlSafe(sql));
                for owner in &filter.owners {
                    query = query.bind(owner.as_uuid());
                }
                for workspace in &filter.workspaces {
                    query = query.bind(workspace.as_uuid());
                }
                for file in filter.files.iter().flatten() {
                    query = query.bind(file.as_uuid());
                }
                let rows = query.fetch_all(&self.pool).await.map_err(error::internal)?;
                rows.into_iter().map(rows::file).collect()
            }

            async fn find_by_sha256(
                &self,
                owner: amp_core::UserId,
                sha256: &str,
            ) -> amp_core::Result<Vec<amp_core::FileMeta>> {
                let rows: Vec<rows::FileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM files WHERE owner_id = $1 AND sha256 = $2 ORDER BY id DESC",
                    rows::FILE_COLUMNS
                )))
                .bind(owner.as_uuid())
                .bind(sha256)
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                rows.into_iter().map(rows::file).collect()
            }

            async fn list_unfinished(
                &self,
                updated_before: chrono::DateTime<chrono::Utc>,
                limit: usize,
            ) -> amp_core::Result<Vec<amp_core::FileMeta>> {
                // `status ->> 'state'` reads the tag on both databases (SQLite reads a bare
                // label as `$.state`); the partial index `files_unfinished` covers it.
                let rows: Vec<rows::FileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM files WHERE (status ->> 'state') NOT IN ('ready', 'failed') \
                     AND updated_at < $1 ORDER BY updated_at LIMIT $2",
                    rows::FILE_COLUMNS
                )))
                .bind(rows::ms(updated_before))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                rows.into_iter().map(rows::file).collect()
            }

            async fn list_ready(
                &self,
                after: Option<amp_core::FileId>,
                limit: usize,
            ) -> amp_core::Result<Vec<amp_core::FileMeta>> {
                let rows: Vec<rows::FileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM files WHERE (status ->> 'state') = 'ready' AND id > $1 \
                     ORDER BY id LIMIT $2",
                    rows::FILE_COLUMNS
                )))
                // The nil id sorts before every other.
                .bind(after.map_or(uuid::Uuid::nil(), |id| id.as_uuid()))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                rows.into_iter().map(rows::file).collect()
            }

            async fn delete_chunks(&self, file: amp_core::FileId) -> amp_core::Result<()> {
                sqlx::query("DELETE FROM chunks WHERE file_id = $1")
                    .bind(file.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(error::internal)?;
                Ok(())
            }

            async fn delete_file(&self, id: amp_core::FileId) -> amp_core::Result<bool> {
                // Chunks go with it (ON DELETE CASCADE).
                let done = sqlx::query("DELETE FROM files WHERE id = $1")
                    .bind(id.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(error::internal)?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_chunks(&self, chunks: Vec<amp_core::Chunk>) -> amp_core::Result<()> {
                let mut tx = self.pool.begin().await.map_err(error::internal)?;
                for c in &chunks {
                    sqlx::query(
                        "INSERT INTO chunks (id, file_id, ordinal, text, page, byte_start, byte_end, token_count) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (file_id, ordinal) DO UPDATE SET id = excluded.id, text = excluded.text, \
                         page = excluded.page, byte_start = excluded.byte_start, byte_end = excluded.byte_end, \
                         token_count = excluded.token_count",
                    )
                    .bind(c.id.as_uuid())
                    .bind(c.file.as_uuid())
                    .bind(i64::from(c.ordinal))
                    .bind(&c.text)
                    .bind(c.page.map(i64::from))
                    .bind($crate::sql::to_i64(c.byte_range.start, "byte offset")?)
                    .bind($crate::sql::to_i64(c.byte_range.end, "byte offset")?)
                    .bind(i64::from(c.token_count))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| error::db_error(e, &format!("chunk {} already exists", c.id), &format!("file {}", c.file)))?;
                }
                tx.commit().await.map_err(error::internal)
            }

            async fn get_chunks(&self, ids: &[amp_core::ChunkId]) -> amp_core::Result<Vec<amp_core::Chunk>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT id, file_id, ordinal, text, page, byte_start, byte_end, token_count FROM chunks \
                     WHERE id IN ({})",
                    rows::placeholders(1, ids.len())
                );
                let mut query = sqlx::query_as::<_, rows::ChunkRow>(sqlx::AssertSqlSafe(sql));
                for id in ids {
                    query = query.bind(id.as_uuid());
                }
                let found: Vec<amp_core::Chunk> = query
                    .fetch_all(&self.pool)
                    .await
                    .map_err(error::internal)?
                    .into_iter()
                    .map(rows::chunk)
                    .collect::<amp_core::Result<_>>()?;
                // The caller's order is the ranking order; the database's is arbitrary.
                let mut by_id: std::collections::HashMap<_, _> = found.into_iter().map(|c| (c.id, c)).collect();
                Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
            }

            async fn list_chunks(&self, file: amp_core::FileId) -> amp_core::Result<Vec<amp_core::Chunk>> {
                let rows: Vec<rows::ChunkRow> = sqlx::query_as(
                    "SELECT id, file_id, ordinal, text, page, byte_start, byte_end, token_count FROM chunks \
                     WHERE file_id = $1 ORDER BY ordinal",
                )
                .bind(file.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                rows.into_iter().map(rows::chunk).collect()
            }
        }
    };
}
