use super::new_user;
use crate::document::{ByteRange, Chunk, FileMeta, FileStatus, SearchFilter};
use crate::error::ErrorKind;
use crate::ids::{ChunkId, FileId, UserId, WorkspaceId};
use crate::store::Stores;
use crate::testkit::now_ms;
use crate::traits::blob_store::BlobKey;

fn file(owner: UserId, workspace: Option<WorkspaceId>, name: &str) -> FileMeta {
    let now = now_ms();
    FileMeta {
        id: FileId::new(),
        owner,
        workspace,
        name: name.into(),
        media_type: "application/pdf".into(),
        size_bytes: 1234,
        sha256: None,
        status: FileStatus::Pending,
        blob_key: Some(BlobKey::new(format!("users/{owner}/files/{name}")).expect("kit keys are valid")),
        job: None,
        created_at: now,
        updated_at: now,
    }
}

fn chunk(file: FileId, ordinal: u32, text: &str) -> Chunk {
    let start = u64::from(ordinal) * 100;
    Chunk {
        id: ChunkId::new(),
        file,
        ordinal,
        text: text.into(),
        page: Some(ordinal + 1),
        byte_range: ByteRange { start, end: start + text.len() as u64 },
        token_count: 7,
    }
}

/// Checks every promise of [`FileStore`](crate::store::FileStore).
pub async fn files(stores: &Stores) {
    let s = &stores.files;
    let (me, other) = (new_user(stores).await, new_user(stores).await);
    let ws = WorkspaceId::new();
    let mine = file(me, None, "mine.pdf");
    let shared = file(other, Some(ws), "shared.pdf");
    let theirs = file(other, None, "theirs.pdf");
    for f in [&mine, &shared, &theirs] {
        s.create_file(f.clone()).await.unwrap();
    }
    assert_eq!(s.get_file(mine.id).await.unwrap(), Some(mine.clone()), "[files] metadata reads back intact");
    assert_eq!(s.get_file(FileId::new()).await.unwrap(), None);
    let err = s.create_file(mine.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "[files] a duplicate file id must be Conflict");

    let mut ready = mine.clone();
    ready.status = FileStatus::Failed { reason: "not a PDF".into() };
    ready.sha256 = Some("ab".repeat(32));
    ready.media_type = "text/plain".into();
    ready.job = Some(crate::ids::JobId::new());
    ready.updated_at = now_ms();
    s.update_file(&ready).await.unwrap();
    assert_eq!(
        s.get_file(mine.id).await.unwrap(),
        Some(ready.clone()),
        "[files] update must persist status and hash"
    );
    let err = s.update_file(&file(me, None, "ghost")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "[files] updating a missing file must be NotFound");

    let ids = |v: Vec<FileMeta>| v.into_iter().map(|f| f.id).collect::<Vec<_>>();
    unfinished_and_duplicates(stores, me, other).await;
    assert_eq!(
        ids(s.list_files(&SearchFilter::owner(me)).await.unwrap()),
        vec![mine.id],
        "[files] only the owner's files"
    );
    let with_ws = ids(s.list_files(&SearchFilter::owner(me).with_workspace(ws)).await.unwrap());
    assert_eq!(
        with_ws,
        vec![shared.id, mine.id],
        "[files] own and workspace files, newest first, never others' private"
    );
    let only = ids(s
        .list_files(&SearchFilter::owner(me).with_workspace(ws).with_files(vec![shared.id]))
        .await
        .unwrap());
    assert_eq!(only, vec![shared.id], "[files] the file filter must apply");
    assert!(
        s.list_files(&SearchFilter::default()).await.unwrap().is_empty(),
        "[files] an empty filter lists nothing"
    );

    let chunks = vec![chunk(mine.id, 0, "first"), chunk(mine.id, 1, "second"), chunk(mine.id, 2, "third")];
    s.insert_chunks(chunks.clone()).await.unwrap();
    s.insert_chunks(vec![chunk(shared.id, 0, "other file")]).await.unwrap();
    assert_eq!(s.list_chunks(mine.id).await.unwrap(), chunks, "[files] a file's chunks, by ordinal, intact");
    let asked = [chunks[2].id, ChunkId::new(), chunks[0].id];
    assert_eq!(
        s.get_chunks(&asked).await.unwrap(),
        vec![chunks[2].clone(), chunks[0].clone()],
        "[files] get_chunks keeps the order asked and skips unknown ids"
    );
    let replacement = chunk(mine.id, 1, "second, re-extracted");
    s.insert_chunks(vec![replacement.clone()]).await.unwrap();
    let listed = s.list_chunks(mine.id).await.unwrap();
    assert_eq!(listed.len(), 3, "[files] a chunk with the same file and ordinal must replace the old one");
    assert_eq!(listed[1], replacement);
    let err = s.insert_chunks(vec![chunk(FileId::new(), 0, "orphan")]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "[files] chunks of a missing file must be NotFound");

    assert!(s.delete_file(mine.id).await.unwrap(), "[files] deleting reports it existed");
    assert_eq!(s.get_file(mine.id).await.unwrap(), None);
    assert!(
        s.list_chunks(mine.id).await.unwrap().is_empty(),
        "[files] deleting a file must delete its chunks"
    );
    assert!(
        s.get_chunks(&[chunks[0].id]).await.unwrap().is_empty(),
        "[files] deleted chunks must not be readable"
    );
    assert!(!s.delete_file(mine.id).await.unwrap(), "[files] deleting twice reports false");
    assert_eq!(s.list_chunks(shared.id).await.unwrap().len(), 1, "[files] other files' chunks are untouched");
}

/// `find_by_sha256` and `list_unfinished`, the lookups of uploads and the crash sweep.
async fn unfinished_and_duplicates(stores: &Stores, me: UserId, other: UserId) {
    let s = &stores.files;
    let sha = format!("{:064x}", uuid::Uuid::new_v4().as_u128());
    let mut first = file(me, None, "copy-1.txt");
    first.sha256 = Some(sha.clone());
    first.status = FileStatus::Ready;
    let mut second = file(me, None, "copy-2.txt");
    second.sha256 = Some(sha.clone());
    second.status = FileStatus::Embedding { done: 3, total: 9 };
    let mut theirs = file(other, None, "their-copy.txt");
    theirs.sha256 = Some(sha.clone());
    for f in [&first, &second, &theirs] {
        s.create_file(f.clone()).await.unwrap();
    }
    let found = s.find_by_sha256(me, &sha).await.unwrap();
    assert_eq!(
        found.iter().map(|f| f.id).collect::<Vec<_>>(),
        vec![second.id, first.id],
        "[files] find_by_sha256 finds only the owner's files with that hash, newest first"
    );
    assert!(s.find_by_sha256(me, &"0".repeat(64)).await.unwrap().is_empty());

    let later = now_ms() + chrono::TimeDelta::seconds(1);
    let unfinished: Vec<_> =
        s.list_unfinished(later, 10_000).await.unwrap().into_iter().map(|f| f.id).collect();
    assert!(unfinished.contains(&second.id), "[files] a file mid-embedding is unfinished");
    assert!(unfinished.contains(&theirs.id), "[files] a pending file is unfinished, whoever owns it");
    assert!(!unfinished.contains(&first.id), "[files] a ready file is finished");
    let earlier = second.updated_at - chrono::TimeDelta::seconds(1);
    assert!(
        !s.list_unfinished(earlier, 10_000).await.unwrap().iter().any(|f| f.id == second.id),
        "[files] list_unfinished only lists files last changed before the given time"
    );
    assert!(
        s.list_unfinished(later, 1).await.unwrap().len() <= 1,
        "[files] list_unfinished honours its limit"
    );

    let mut ready = Vec::new();
    let mut after = None;
    loop {
        let page = s.list_ready(after, 500).await.unwrap();
        assert!(page.len() <= 500, "[files] list_ready honours its limit");
        assert!(
            page.iter().all(|f| f.status == FileStatus::Ready),
            "[files] list_ready lists ready files only"
        );
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        ready.extend(page.iter().map(|f| f.id));
    }
    assert!(ready.contains(&first.id), "[files] list_ready pages over every ready file, whoever owns it");
    assert!(
        !ready.contains(&second.id) && !ready.contains(&theirs.id),
        "[files] unfinished files are not ready"
    );
    assert!(ready.windows(2).all(|w| w[0] < w[1]), "[files] list_ready pages in id order, each file once");

    // A share made while the file is processed survives the worker's next stage.
    let mut shared = second.clone();
    let workspace = crate::people::Workspace {
        id: WorkspaceId::new(),
        name: "kit".into(),
        context: None,
        created_by: me,
        created_at: now_ms(),
    };
    stores.workspaces.create_workspace(workspace.clone()).await.unwrap();
    shared.workspace = Some(workspace.id);
    shared.name = "renamed.txt".into();
    s.update_file(&shared).await.unwrap();
    let mut stage = second.clone();
    stage.status = FileStatus::Indexing;
    stage.job = Some(crate::ids::JobId::new());
    stage.updated_at = now_ms();
    s.update_processing(&stage).await.unwrap();
    let after = s.get_file(second.id).await.unwrap().unwrap();
    assert_eq!(
        (after.workspace, after.name.as_str(), &after.status, after.job),
        (shared.workspace, "renamed.txt", &FileStatus::Indexing, stage.job),
        "[files] update_processing writes the processing state and keeps the workspace and name"
    );
    let err = s.update_processing(&file(me, None, "ghost")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "[files] update_processing of a missing file is NotFound");

    // Sharing while processing finishes: both the share and the final state stay.
    let processing = file(me, None, "processing.txt");
    s.create_file(processing.clone()).await.unwrap();
    let ws = shared.workspace.expect("the kit's shared file is in a workspace");
    let done = FileMeta { status: FileStatus::Ready, updated_at: now_ms(), ..processing.clone() };
    let (shared_now, _) =
        futures::join!(s.share_file(processing.id, ws, now_ms()), s.update_processing(&done));
    assert!(shared_now.unwrap(), "[files] share_file moves a personal file");
    let after = s.get_file(processing.id).await.unwrap().unwrap();
    assert_eq!(
        (after.workspace, &after.status),
        (Some(ws), &FileStatus::Ready),
        "[files] a share and a finishing job at once both stay"
    );
    assert!(
        !s.share_file(processing.id, ws, now_ms()).await.unwrap(),
        "[files] a shared file is not shared again"
    );
    assert!(
        !s.share_file(FileId::new(), ws, now_ms()).await.unwrap(),
        "[files] a missing file is not shared"
    );
    // Deleting the workspace hands back what was still shared into it, in the same
    // transaction, and nothing more can be shared into it.
    assert!(stores.workspaces.delete_workspace(ws).await.unwrap());
    for id in [processing.id, second.id] {
        assert_eq!(
            s.get_file(id).await.unwrap().unwrap().workspace,
            None,
            "[files] a deleted workspace's files go back to their owners"
        );
    }
    assert!(
        !s.share_file(processing.id, ws, now_ms()).await.unwrap(),
        "[files] nothing is shared into a deleted workspace"
    );
    s.delete_file(processing.id).await.unwrap();

    s.insert_chunks(vec![chunk(second.id, 0, "a"), chunk(second.id, 1, "b")]).await.unwrap();
    s.delete_chunks(second.id).await.unwrap();
    assert!(s.list_chunks(second.id).await.unwrap().is_empty(), "[files] delete_chunks removes every chunk");
    assert!(s.get_file(second.id).await.unwrap().is_some(), "[files] delete_chunks keeps the file");
    for f in [&first, &second, &theirs] {
        s.delete_file(f.id).await.unwrap();
    }
}
