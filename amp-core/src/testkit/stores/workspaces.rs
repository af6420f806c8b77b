use super::new_user;
use crate::error::ErrorKind;
use crate::ids::{UserId, WorkspaceId};
use crate::people::{Invitation, Membership, Workspace, WorkspaceRole};
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

    // The last owner can neither be demoted nor removed, even by two changes at once.
    let err = s.upsert_member(member(owner, WorkspaceRole::Editor)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "[workspaces] demoting the last owner must be Conflict");
    assert_eq!(s.remove_member(w.id, owner).await.unwrap_err().kind(), ErrorKind::Conflict);
    s.upsert_member(member(carol, WorkspaceRole::Owner)).await.unwrap();
    let (a, b) = futures::join!(s.remove_member(w.id, owner), s.remove_member(w.id, carol));
    assert_eq!(
        usize::from(a.is_ok()) + usize::from(b.is_ok()),
        1,
        "[workspaces] of two owners stepping down at once, one stays: {a:?} {b:?}"
    );
    let stays = if a.is_ok() { carol } else { owner };
    assert_eq!(s.member_role(w.id, stays).await.unwrap(), Some(WorkspaceRole::Owner));
    if stays == carol {
        s.upsert_member(member(owner, WorkspaceRole::Owner)).await.unwrap();
    } else {
        s.upsert_member(member(carol, WorkspaceRole::Editor)).await.unwrap();
    }
    s.upsert_member(member(carol, WorkspaceRole::Editor)).await.unwrap();

    // Invitations: by email, answered once, lapsing.
    let invite = |email: &str, role, hours: i64| Invitation {
        workspace: w.id,
        email: email.into(),
        role,
        invited_by: owner,
        created_at: now_ms(),
        expires_at: now_ms() + chrono::Duration::hours(hours),
    };
    let dave_email = format!("{}@Example.test", unique("dave"));
    s.upsert_invitation(invite(&dave_email, WorkspaceRole::Viewer, 1)).await.unwrap();
    s.upsert_invitation(invite(&dave_email, WorkspaceRole::Editor, 1)).await.unwrap();
    let listed = s.list_invitations(w.id).await.unwrap();
    assert_eq!(listed.len(), 1, "[workspaces] one invitation per workspace and email");
    assert_eq!(listed[0].role, WorkspaceRole::Editor, "[workspaces] inviting again replaces the role");
    assert_eq!(listed[0].email, dave_email.to_lowercase(), "[workspaces] invitation emails are lower-cased");
    assert_eq!(s.invitations_for(&dave_email.to_uppercase()).await.unwrap().len(), 1);
    let dave = new_user(stores).await;
    assert_eq!(
        s.member_role(w.id, dave).await.unwrap(),
        None,
        "[workspaces] an invitation is not a membership"
    );
    let joined = s.accept_invitation(w.id, &dave_email, dave, now_ms()).await.unwrap();
    assert_eq!(joined.map(|m| m.role), Some(WorkspaceRole::Editor));
    assert_eq!(s.member_role(w.id, dave).await.unwrap(), Some(WorkspaceRole::Editor));
    assert!(
        s.accept_invitation(w.id, &dave_email, dave, now_ms()).await.unwrap().is_none(),
        "[workspaces] an invitation is accepted once"
    );
    let erin_email = format!("{}@example.test", unique("erin"));
    s.upsert_invitation(invite(&erin_email, WorkspaceRole::Viewer, -1)).await.unwrap();
    let erin = new_user(stores).await;
    assert!(
        s.accept_invitation(w.id, &erin_email, erin, now_ms()).await.unwrap().is_none(),
        "[workspaces] a lapsed invitation admits nobody"
    );
    assert_eq!(s.member_role(w.id, erin).await.unwrap(), None);
    let frank_email = format!("{}@example.test", unique("frank"));
    s.upsert_invitation(invite(&frank_email, WorkspaceRole::Viewer, 1)).await.unwrap();
    assert!(s.delete_invitation(w.id, &frank_email.to_uppercase()).await.unwrap());
    assert!(!s.delete_invitation(w.id, &frank_email).await.unwrap());
    let mut ghost = invite("ghost@example.test", WorkspaceRole::Viewer, 1);
    ghost.workspace = WorkspaceId::new();
    assert_eq!(
        s.upsert_invitation(ghost).await.unwrap_err().kind(),
        ErrorKind::NotFound,
        "[workspaces] inviting into a missing workspace must be NotFound"
    );
    s.remove_member(w.id, dave).await.unwrap();
    s.upsert_invitation(invite(&dave_email, WorkspaceRole::Viewer, 1)).await.unwrap();

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
    assert!(s.list_invitations(w.id).await.unwrap().is_empty(), "[workspaces] deleting removes invitations");
    assert!(!s.delete_workspace(w.id).await.unwrap(), "[workspaces] deleting twice reports false");
    let bobs: Vec<_> = s.list_workspaces_for(bob).await.unwrap().into_iter().map(|(w, _)| w.id).collect();
    assert_eq!(bobs, vec![second.id]);
}
