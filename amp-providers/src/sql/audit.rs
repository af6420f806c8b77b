//! [`AuditLog`](amp_core::store::AuditLog) on SQL.

/// Implements [`AuditLog`](amp_core::store::AuditLog) for a store type with a `pool`.
macro_rules! impl_audit_log {
    ($stores:ty) => {
        #[async_trait::async_trait]
        impl amp_core::store::AuditLog for $stores {
            async fn append(
                &self,
                e: amp_core::audit::NewAuditEvent,
            ) -> amp_core::Result<amp_core::audit::AuditEvent> {
                let at = $crate::sql::now_ms();
                let seq: i64 = sqlx::query_scalar(
                    "INSERT INTO audit_log (at, actor_id, action, target, workspace_id, success, client_addr, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq",
                )
                .bind(rows::ms(at))
                .bind(e.actor.map(|a| a.as_uuid()))
                .bind(rows::enum_text(&e.action)?)
                .bind(&e.target)
                .bind(e.workspace.map(|w| w.as_uuid()))
                .bind(e.success)
                .bind(&e.client_addr)
                .bind(sqlx::types::Json(&e.detail))
                .fetch_one(&self.pool)
                .await
                .map_err(error::internal)?;
                let seq = u64::try_from(seq).map_err(|_| amp_core::Error::bug("negative audit seq"))?;
                Ok(amp_core::audit::AuditEvent { seq, at, event: e })
            }

            async fn query(
                &self,
                q: &amp_core::audit::AuditQuery,
            ) -> amp_core::Result<Vec<amp_core::audit::AuditEvent>> {
                // Unset filters bind NULL and drop out of the WHERE clause.
                let rows: Vec<rows::AuditRow> = sqlx::query_as(
                    "SELECT seq, at, actor_id, action, target, workspace_id, success, client_addr, detail \
                     FROM audit_log WHERE ($1 IS NULL OR actor_id = $1) AND ($2 IS NULL OR workspace_id = $2) \
                     AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR seq < $4) \
                     AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at < $6) ORDER BY seq DESC LIMIT $7",
                )
                .bind(q.actor.map(|a| a.as_uuid()))
                .bind(q.workspace.map(|w| w.as_uuid()))
                .bind(q.action.as_ref().map(rows::enum_text).transpose()?)
                .bind(q.before_seq.map(|s| i64::try_from(s).unwrap_or(i64::MAX)))
                .bind(q.since.map(rows::ms))
                .bind(q.until.map(rows::ms))
                .bind(i64::from(q.limit))
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                rows.into_iter().map(rows::audit).collect()
            }
        }
    };
}
