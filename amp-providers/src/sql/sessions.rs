//! [`SessionStore`](amp_core::store::SessionStore) on SQL.

/// Implements [`SessionStore`](amp_core::store::SessionStore) for a store type with a `pool`.
macro_rules! impl_session_store {
    ($stores:ty) => {
        #[async_trait::async_trait]
        impl amp_core::store::SessionStore for $stores {
            async fn create_session(&self, s: amp_core::DeviceSession) -> amp_core::Result<()> {
                sqlx::query(
                    "INSERT INTO device_sessions \
                     (id, user_id, device_id, device_name, created_at, last_seen_at, expires_at, revoked_at, minted_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(s.id.as_uuid())
                .bind(s.user.as_uuid())
                .bind(s.device.as_uuid())
                .bind(&s.device_name)
                .bind(rows::ms(s.created_at))
                .bind(rows::ms(s.last_seen_at))
                .bind(rows::ms(s.expires_at))
                .bind(s.revoked_at.map(rows::ms))
                .bind(s.minted_by.map(|c| c.to_string()))
                .execute(&self.pool)
                .await
                .map_err(|e| error::db_error(e, "this session already exists", &format!("user {}", s.user)))?;
                Ok(())
            }

            async fn get_session(
                &self,
                id: amp_core::SessionId,
            ) -> amp_core::Result<Option<amp_core::DeviceSession>> {
                let row: Option<rows::SessionRow> = sqlx::query_as(
                    "SELECT id, user_id, device_id, device_name, created_at, last_seen_at, expires_at, revoked_at, minted_by \
                     FROM device_sessions WHERE id = $1",
                )
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(error::internal)?;
                row.map(rows::session).transpose()
            }

            async fn touch_session(
                &self,
                id: amp_core::SessionId,
                at: chrono::DateTime<chrono::Utc>,
            ) -> amp_core::Result<()> {
                let done = sqlx::query("UPDATE device_sessions SET last_seen_at = $2 WHERE id = $1")
                    .bind(id.as_uuid())
                    .bind(rows::ms(at))
                    .execute(&self.pool)
                    .await
                    .map_err(error::internal)?;
                if done.rows_affected() == 0 {
                    return Err(amp_core::Error::not_found(format!("session {id}")));
                }
                Ok(())
            }

            async fn revoke_session(
                &self,
                id: amp_core::SessionId,
                at: chrono::DateTime<chrono::Utc>,
            ) -> amp_core::Result<bool> {
                let done =
                    sqlx::query("UPDATE device_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                        .bind(id.as_uuid())
                        .bind(rows::ms(at))
                        .execute(&self.pool)
                        .await
                        .map_err(error::internal)?;
                Ok(done.rows_affected() == 1)
            }

            async fn list_sessions(
                &self,
                user: amp_core::UserId,
            ) -> amp_core::Result<Vec<amp_core::DeviceSession>> {
                let rows: Vec<rows::SessionRow> = sqlx::query_as(
                    "SELECT id, user_id, device_id, device_name, created_at, last_seen_at, expires_at, revoked_at, minted_by \
                     FROM device_sessions WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at, id",
                )
                .bind(user.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                rows.into_iter().map(rows::session).collect()
            }

            async fn insert_refresh_token(&self, t: amp_core::store::RefreshToken) -> amp_core::Result<()> {
                sqlx::query(
                    "INSERT INTO refresh_tokens \
                     (hash, family, session_id, user_id, issued_at, expires_at, used_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&t.hash)
                .bind(t.family.as_uuid())
                .bind(t.session.as_uuid())
                .bind(t.user.as_uuid())
                .bind(rows::ms(t.issued_at))
                .bind(rows::ms(t.expires_at))
                .bind(t.used_at.map(rows::ms))
                .bind(t.revoked_at.map(rows::ms))
                .execute(&self.pool)
                .await
                .map_err(|e| error::db_error(e, "this refresh token already exists", &format!("user {}", t.user)))?;
                Ok(())
            }

            async fn use_refresh_token(
                &self,
                hash: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> amp_core::Result<amp_core::store::RefreshTokenUse> {
                // One conditional UPDATE decides the race: only the caller that flips
                // `used_at` from NULL gets the row back.
                let fresh: Option<rows::RefreshRow> = sqlx::query_as(
                    "UPDATE refresh_tokens SET used_at = $2 WHERE hash = $1 AND used_at IS NULL \
                     RETURNING hash, family, session_id, user_id, issued_at, expires_at, used_at, revoked_at",
                )
                .bind(hash)
                .bind(rows::ms(at))
                .fetch_optional(&self.pool)
                .await
                .map_err(error::internal)?;
                if let Some(row) = fresh {
                    return Ok(amp_core::store::RefreshTokenUse::Fresh(rows::refresh_token(row)?));
                }
                let used: Option<rows::RefreshRow> = sqlx::query_as(
                    "SELECT hash, family, session_id, user_id, issued_at, expires_at, used_at, revoked_at \
                     FROM refresh_tokens WHERE hash = $1",
                )
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(error::internal)?;
                Ok(match used {
                    Some(row) => amp_core::store::RefreshTokenUse::Replayed(rows::refresh_token(row)?),
                    None => amp_core::store::RefreshTokenUse::Unknown,
                })
            }

            async fn revoke_token_family(
                &self,
                family: amp_core::TokenFamilyId,
                at: chrono::DateTime<chrono::Utc>,
            ) -> amp_core::Result<u64> {
                let done =
                    sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL")
                        .bind(family.as_uuid())
                        .bind(rows::ms(at))
                        .execute(&self.pool)
                        .await
                        .map_err(error::internal)?;
                Ok(done.rows_affected())
            }
        }
    };
}
