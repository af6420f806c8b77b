use super::new_user;
use crate::error::ErrorKind;
use crate::ids::{UserId, WorkspaceId};
use crate::people::{Membership, Workspace, WorkspaceRole};
use crate::store::Stores;
use crate::testkit::{now_ms, unique};

fn workspace(creator: UserId, name: &str) -> Workspace {
    Workspace {
        id: WorkspaceId::new(),
        name: name.into(),
        context: None,
        created_by: creator,
        created_at: now_ms(),
    }
}

/// Checks every promise of [`WorkspaceStore`](crate::store::WorkspaceStore).
pub async fn workspaces(stores: &Stores) {
    let s = &stores.workspaces;
    let (owner, bob, carol) = (new_user(stores).await, new_user(stores).await, new_user(stores).await);
    let prefix = unique("ws");
    let w = workspace(owner, &format!("{prefix} b-team"));
    s.create_workspace(w.clone()).await.unwrap();
    assert_eq!(s.get_workspace(w.id).await.unwrap(), Some(w.clone()), "[workspaces] reads back intact");
    assert_eq!(s.get_workspace(WorkspaceId::new()).await.unwrap(), None);
    assert_eq!(
        s.member_role(w.id, owner).await.unwrap(),
        Some(WorkspaceRole::Owner),
        "[workspaces] the creator must be an owner from the start"
    );

    let mut renamed = w.clone();
    renamed.name = format!("{prefix} a-team");
    renamed.context = Some("We build AMP.".into());
    s.update_workspace(&renamed).await.unwrap();
    assert_eq!(
        s.get_workspace(w.id).await.unwrap(),
        Some(renamed.clone()),
        "[workspaces] update must persist"
    );
    let err = s.update_workspace(&workspace(owner, "ghost")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "[workspaces] updating a missing workspace must be NotFound");

    let member = |user, role| Membership { workspace: w.id, user, role, added_at: now_ms() };
    s.upsert_member(member(bob, WorkspaceRole::Viewer)).await.unwrap();
    s.upsert_member(member(carol, WorkspaceRole::Editor)).await.unwrap();
    s.upsert_member(member(bob, WorkspaceRole::Editor)).await.unwrap();
    assert_eq!(
        s.member_role(w.id, bob).await.unwrap(),
        Some(WorkspaceRole::Editor),
        "[workspaces] upsert must change the role"
    );
    assert_eq!(
        s.member_role(w.id, UserId::new()).await.unwrap(),
        None,
        "[workspaces] a non-member has no role"
    );
    let members: Vec<_> = s.list_members(w.id).await.unwrap().into_iter().map(|m| (m.user, m.role)).collect();
    assert_eq!(
        members,
        vec![(owner, WorkspaceRole::Owner), (bob, WorkspaceRole::Editor), (carol, WorkspaceRole::Editor)],
        "[workspaces] members, earliest first, one entry each"
    );
    let orphan = Membership {
        workspace: WorkspaceId::new(),
        user: bob,
        role: WorkspaceRole::Viewer,
        added_at: now_ms(),
    };
    let err = s.upsert_member(orphan).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "[workspaces] joining a missing workspace must be NotFound");

    let second = workspace(bob, &format!("{prefix} c-team"));
    s.create_workspace(second.clone()).await.unwrap();
    let bobs: Vec<_> =
        s.list_workspaces_for(bob).await.unwrap().into_iter().map(|(w, r)| (w.id, r)).collect();
    assert_eq!(
        bobs,
        vec![(w.id, WorkspaceRole::Editor), (second.id, WorkspaceRole::Owner)],
        "[workspaces] a user's workspaces with their role, by name"
    );

    assert!(s.remove_member(w.id, carol).await.unwrap(), "[workspaces] removing a member reports true");
    assert!(!s.remove_member(w.id, carol).await.unwrap(), "[workspaces] removing a non-member reports false");
    assert_eq!(s.member_role(w.id, carol).await.unwrap(), None);

    assert!(s.delete_workspace(w.id).await.unwrap(), "[workspaces] deleting reports it existed");
    assert_eq!(s.get_workspace(w.id).await.unwrap(), None);
    assert_eq!(
        s.member_role(w.id, bob).await.unwrap(),
        None,
        "[workspaces] deleting must remove memberships"
    );
    assert!(s.list_members(w.id).await.unwrap().is_empty());
    assert!(!s.delete_workspace(w.id).await.unwrap(), "[workspaces] deleting twice reports false");
    let bobs: Vec<_> = s.list_workspaces_for(bob).await.unwrap().into_iter().map(|(w, _)| w.id).collect();
    assert_eq!(bobs, vec![second.id]);
}
