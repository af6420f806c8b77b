//! Kits for the store traits. They take the whole [`Stores`] bundle because records refer
//! to each other (a conversation's owner is a user); each kit checks one trait and uses the
//! others only to create what that trait's records refer to.

mod agents;
mod audit;
mod conversations;
mod credentials;
mod files;
mod sessions;
mod users;
mod workspaces;

pub use agents::agents;
pub use audit::audit;
pub use conversations::conversations;
pub use credentials::credentials;
pub use files::files;
pub use sessions::sessions;
pub use users::users;
pub use workspaces::workspaces;

use super::unique;
use crate::ids::UserId;
use crate::store::{NewUser, Stores};

/// Runs every store kit.
pub async fn all(stores: &Stores) {
    users(stores).await;
    credentials(stores).await;
    sessions(stores).await;
    conversations(stores).await;
    files(stores).await;
    workspaces(stores).await;
    agents(stores).await;
    audit(stores).await;
}

/// A new user with a unique email.
pub(crate) async fn new_user(stores: &Stores) -> UserId {
    let email = format!("{}@example.test", unique("user"));
    stores.users.create_user(NewUser::active(email, "Kit User")).await.unwrap().id
}
