//! Turning an answer's `[n]` markers into citations of the passages it was given.

use amp_core::Citation;

use crate::context::Source;

/// The longest snippet kept in a citation, in characters.
const SNIPPET_CHARS: usize = 200;

/// The answer with markers that name no source removed, and one citation per source it
/// cites, in order of first mention.
///
/// A marker is `[n]` or a list like `[1, 3]`; numbers outside the sources are dropped from
/// a list, and a marker left empty is removed with the space before it. Brackets holding
/// anything else (`[sic]`, `[0.5]`, array indexes) are left alone.
///
/// ```
/// use amp_agents::response::cite;
///
/// let (text, citations) = cite("Paris [2]. Rome [7]. Both [1, 9].", &[]);
/// assert_eq!(text, "Paris. Rome. Both.");
/// assert!(citations.is_empty());
/// ```
pub fn cite(answer: &str, sources: &[Source]) -> (String, Vec<Citation>) {
    let mut text = String::with_capacity(answer.len());
    let mut cited: Vec<u32> = Vec::new();
    let mut rest = answer;
    while let Some(open) = rest.find('[') {
        let (before, from_open) = rest.split_at(open);
        text.push_str(before);
        let Some((numbers, len)) = marker(from_open) else {
            text.push('[');
            rest = &from_open[1..];
            continue;
        };
        let known: Vec<u32> =
            numbers.into_iter().filter(|n| (1..=sources.len()).contains(&(*n as usize))).collect();
        if known.is_empty() {
            // Drop the marker and the space that led to it.
            let trimmed = text.trim_end_matches(' ').len();
            text.truncate(trimmed);
        } else {
            let list: Vec<String> = known.iter().map(u32::to_string).collect();
            text.push('[');
            text.push_str(&list.join(", "));
            text.push(']');
            for n in known {
                if !cited.contains(&n) {
                    cited.push(n);
                }
            }
        }
        rest = &from_open[len..];
    }
    text.push_str(rest);
    let citations = cited
        .into_iter()
        .map(|n| {
            let s = &sources[n as usize - 1];
            Citation {
                source: n,
                origin: s.origin.clone(),
                page: s.page,
                byte_range: s.byte_range,
                snippet: s.text.chars().take(SNIPPET_CHARS).collect(),
            }
        })
        .collect();
    (text, citations)
}

/// The numbers of a citation marker at the start of `s` (which starts with `[`) and the
/// marker's length in bytes; `None` if it is not one.
fn marker(s: &str) -> Option<(Vec<u32>, usize)> {
    let close = s.find(']')?;
    let inside = &s[1..close];
    if inside.is_empty() || inside.len() > 40 {
        return None;
    }
    let numbers = inside
        .split(',')
        .map(|part| {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse::<u32>().ok()
        })
        .collect::<Option<Vec<u32>>>()?;
    Some((numbers, close + 1))
}

#[cfg(test)]
mod tests {
    use amp_core::{ByteRange, ChunkId, FileId, PassageOrigin};

    use super::*;

    fn source(number: u32, text: &str) -> Source {
        Source {
            number,
            origin: PassageOrigin::File { file: FileId::new(), chunk: ChunkId::new() },
            title: format!("f{number}.txt"),
            page: Some(number),
            byte_range: ByteRange { start: 0, end: text.len() as u64 },
            text: text.into(),
            score: 0.5,
            ranks: Default::default(),
        }
    }

    #[test]
    fn markers_become_citations_in_order_of_first_mention() {
        let sources = [source(1, "one"), source(2, "two"), source(3, &"x".repeat(500))];
        let (text, citations) = cite("B [2], A [1][2] and C [3, 2].", &sources);
        assert_eq!(text, "B [2], A [1][2] and C [3, 2].");
        assert_eq!(citations.iter().map(|c| c.source).collect::<Vec<_>>(), vec![2, 1, 3]);
        assert_eq!(citations[0].origin, sources[1].origin);
        assert_eq!(citations[0].page, Some(2));
        assert_eq!(citations[2].snippet.chars().count(), SNIPPET_CHARS);
    }

    #[test]
    fn markers_naming_no_source_are_dropped_and_others_left_alone() {
        let sources = [source(1, "one")];
        let (text, citations) = cite("Yes [1, 4]. No [0]. Odd [sic] a[i] [0.5] [ ] [12345678901].", &sources);
        assert_eq!(text, "Yes [1]. No. Odd [sic] a[i] [0.5] [ ] [12345678901].");
        assert_eq!(citations.len(), 1);
        let (unclosed, none) = cite("Open [1 and more", &sources);
        assert_eq!((unclosed.as_str(), none.len()), ("Open [1 and more", 0));
    }
}
