//! The [`KeywordIndex`] kit.

use std::sync::Arc;

use super::{Open, unique};
use crate::document::{SearchFilter, Visibility};
use crate::ids::{ChunkId, FileId, UserId, WorkspaceId};
use crate::traits::index::{KeywordEntry, KeywordIndex};

fn entry(
    chunk: ChunkId,
    file: FileId,
    owner: UserId,
    workspace: Option<WorkspaceId>,
    text: &str,
) -> KeywordEntry {
    KeywordEntry { chunk, file, visibility: Visibility { owner, workspace }, text: text.to_owned() }
}

/// Checks every promise of [`KeywordIndex`].
pub async fn run(index: Arc<dyn KeywordIndex>) {
    // A made-up word keeps the kit's matches apart from anything else in a shared index.
    let word = unique("w").replace('-', "");
    let (me, other, ws) = (UserId::new(), UserId::new(), WorkspaceId::new());
    let (f1, f2, f_other) = (FileId::new(), FileId::new(), FileId::new());
    let [dense, sparse, unrelated, theirs, shared] = std::array::from_fn(|_| ChunkId::new());
    index
        .upsert(vec![
            entry(dense, f1, me, None, &format!("{word} {word} {word} appears often here")),
            entry(
                sparse,
                f2,
                me,
                None,
                &format!("a long passage that mentions {word} once among many other words of text"),
            ),
            entry(unrelated, f1, me, None, "nothing relevant in this passage at all"),
            entry(theirs, f_other, other, None, &format!("{word} private to another user")),
            entry(shared, f_other, other, Some(ws), &format!("{word} shared with the workspace")),
        ])
        .await
        .unwrap();

    let hits = index.search(&word, &SearchFilter::owner(me), 10).await.unwrap();
    let order: Vec<_> = hits.iter().map(|h| h.chunk).collect();
    assert_eq!(order, vec![dense, sparse], "[keyword_index] only passages with the term, best match first");
    assert!(hits[0].score >= hits[1].score, "[keyword_index] scores must not increase");
    assert_eq!(hits[1].file, f2, "[keyword_index] hits must carry their file");

    let phrase =
        index.search(&format!("nothing relevant {word}"), &SearchFilter::owner(me), 10).await.unwrap();
    assert_eq!(phrase.len(), 3, "[keyword_index] any query term may match");

    let top1 = index.search(&word, &SearchFilter::owner(me), 1).await.unwrap();
    assert_eq!(top1.len(), 1, "[keyword_index] limit must cut the tail");

    let with_ws = index.search(&word, &SearchFilter::owner(me).with_workspace(ws), 10).await.unwrap();
    let ids: Vec<_> = with_ws.iter().map(|h| h.chunk).collect();
    assert!(ids.contains(&shared), "[keyword_index] entries shared into a readable workspace must match");
    assert!(!ids.contains(&theirs), "[keyword_index] another user's private entry must never match");

    let in_f2 = index.search(&word, &SearchFilter::owner(me).with_files(vec![f2]), 10).await.unwrap();
    assert_eq!(
        in_f2.iter().map(|h| h.chunk).collect::<Vec<_>>(),
        vec![sparse],
        "[keyword_index] the file filter must apply"
    );
    assert!(
        index.search(&word, &SearchFilter::default(), 10).await.unwrap().is_empty(),
        "[keyword_index] an empty filter must match nothing"
    );

    for blank in ["", "   ", "!!! ??? ..."] {
        let hits = index.search(blank, &SearchFilter::owner(me), 10).await;
        assert!(
            matches!(&hits, Ok(h) if h.is_empty()),
            "[keyword_index] a query without searchable terms ({blank:?}) must return nothing, got {hits:?}"
        );
    }

    index.upsert(vec![entry(dense, f1, me, None, "rewritten without the term")]).await.unwrap();
    let hits = index.search(&word, &SearchFilter::owner(me), 10).await.unwrap();
    assert_eq!(
        hits.iter().map(|h| h.chunk).collect::<Vec<_>>(),
        vec![sparse],
        "[keyword_index] upsert must replace the text"
    );
    let hits = index.search("rewritten", &SearchFilter::owner(me).with_files(vec![f1]), 10).await.unwrap();
    assert_eq!(hits.len(), 1, "[keyword_index] upsert must not duplicate the chunk");

    let never = FileId::new();
    assert_eq!(
        index.missing_files(&[f1, never, f2, f_other]).await.unwrap(),
        vec![never],
        "[keyword_index] missing_files must name exactly the files without entries"
    );
    assert!(index.missing_files(&[]).await.unwrap().is_empty(), "[keyword_index] no files, none missing");
    assert_eq!(
        index.delete_file(f2).await.unwrap(),
        1,
        "[keyword_index] delete_file must report what it removed"
    );
    assert!(
        index.search(&word, &SearchFilter::owner(me), 10).await.unwrap().is_empty(),
        "[keyword_index] a deleted file's entries must be gone"
    );
    assert_eq!(index.delete_file(f2).await.unwrap(), 0, "[keyword_index] deleting twice removes nothing");
    assert_eq!(
        index.missing_files(&[f1, f2]).await.unwrap(),
        vec![f2],
        "[keyword_index] a deleted file's entries must be missing"
    );

    // Words are matched by their stem and case, and common words alone match nothing.
    let plural = ChunkId::new();
    index
        .upsert(vec![entry(plural, f1, me, None, "The engines were running when we measured them")])
        .await
        .unwrap();
    for query in ["ENGINE", "measuring runs"] {
        let hits = index.search(query, &SearchFilter::owner(me), 5).await.unwrap();
        assert_eq!(
            hits.iter().map(|h| h.chunk).collect::<Vec<_>>(),
            vec![plural],
            "[keyword_index] {query:?} must match other forms and cases of its words"
        );
    }
    let common = index.search("the of was", &SearchFilter::owner(me).with_files(vec![f1]), 5).await.unwrap();
    assert!(common.is_empty(), "[keyword_index] stop words alone must match nothing, got {common:?}");
}

/// Checks that entries survive closing and reopening the index.
pub async fn persists(open: Open<dyn KeywordIndex>) {
    let word = unique("w").replace('-', "");
    let (owner, file, chunk) = (UserId::new(), FileId::new(), ChunkId::new());
    let index = open().await;
    index.upsert(vec![entry(chunk, file, owner, None, &format!("durable {word}"))]).await.unwrap();
    drop(index);
    let hits = open().await.search(&word, &SearchFilter::owner(owner), 5).await.unwrap();
    assert_eq!(
        hits.iter().map(|h| h.chunk).collect::<Vec<_>>(),
        vec![chunk],
        "[keyword_index] entries must survive a reopen"
    );
}
