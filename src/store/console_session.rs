//! Web console sessions: a hash of the session token, the AccessKey it was opened with, and its
//! expiry. The console decides what a token is and when it expires; the store only keeps rows.

use super::principal::{principal_from_row, Principal};
use super::sql::{sql, Sql};
use super::{Store, StoreResult};

impl Store {
    /// Records a session opened with `access_key_id`.
    pub async fn create_console_session(&self, token_hash: &str, access_key_id: &str, created_at: i64, expires_at: i64) -> StoreResult<()> {
        self.write(sql!(
            "INSERT INTO console_sessions (token_hash, access_key_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            token_hash,
            access_key_id,
            created_at,
            expires_at
        ))
        .await?;
        Ok(())
    }

    /// The principal of the session `token_hash` and the session's expiry, if it exists (its
    /// AccessKey still existing).
    pub async fn console_session(&self, token_hash: &str) -> StoreResult<Option<(Principal, i64)>> {
        let mut sql = Sql::new(
            "SELECT p.principal_id, p.principal_type, p.name, p.is_admin, p.created_at, s.expires_at \
             FROM console_sessions s JOIN access_keys k ON k.access_key_id = s.access_key_id \
             JOIN principals p ON p.principal_id = k.principal_id WHERE s.token_hash = ",
        );
        sql.text(token_hash);
        self.fetch_optional(&sql, |row| Ok((principal_from_row(row)?, row.get("expires_at")?))).await
    }

    /// Ends the session `token_hash`.
    pub async fn delete_console_session(&self, token_hash: &str) -> StoreResult<()> {
        self.write(sql!("DELETE FROM console_sessions WHERE token_hash = $1", token_hash)).await?;
        Ok(())
    }

    /// Drops the sessions expired at `now`.
    pub async fn purge_console_sessions(&self, now: i64) -> StoreResult<()> {
        self.write(sql!("DELETE FROM console_sessions WHERE expires_at <= $1", now)).await?;
        Ok(())
    }
}
