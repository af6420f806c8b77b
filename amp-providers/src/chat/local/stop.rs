//! Stop sequences over streamed text.
//!
//! A stop sequence can arrive split over several tokens ("Fr" + "ance"), so text that could
//! be the start of one is held back until the next piece settles it: the caller never sees
//! a stop sequence, nor any text after it.

/// What the answer text became after one more piece of it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// Text that is safe to send (possibly empty); generation goes on.
    Continue(String),
    /// A stop sequence was found: send this text, which ends just before it, and stop.
    Stopped(String),
}

/// Finds the earliest stop sequence in a stream of text pieces.
#[derive(Debug)]
pub(crate) struct StopScanner {
    stops: Vec<String>,
    /// Text that may be the beginning of a stop sequence.
    held: String,
}

impl StopScanner {
    /// Empty sequences are ignored: they would stop every answer before its first word.
    pub(crate) fn new(stops: &[String]) -> Self {
        StopScanner { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), held: String::new() }
    }

    /// Takes the next piece of answer text.
    pub(crate) fn push(&mut self, piece: &str) -> Scan {
        self.held.push_str(piece);
        if let Some(at) = self.stops.iter().filter_map(|stop| self.held.find(stop.as_str())).min() {
            self.held.truncate(at);
            return Scan::Stopped(std::mem::take(&mut self.held));
        }
        let keep = self.longest_suffix_starting_a_stop();
        let safe = self.held.len() - keep;
        let rest = self.held.split_off(safe);
        Scan::Continue(std::mem::replace(&mut self.held, rest))
    }

    /// The text held back when generation ends for another reason.
    pub(crate) fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Length in bytes of the longest suffix of `held` that some stop sequence begins with.
    fn longest_suffix_starting_a_stop(&self) -> usize {
        self.held
            .char_indices()
            .map(|(i, _)| &self.held[i..])
            .find(|suffix| self.stops.iter().any(|stop| stop.starts_with(suffix)))
            .map_or(0, str::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner(stops: &[&str]) -> StopScanner {
        StopScanner::new(&stops.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn a_stop_split_over_pieces_is_cut_with_nothing_after_it() {
        let mut s = scanner(&["France"]);
        assert_eq!(s.push("The capital of Fr"), Scan::Continue("The capital of ".into()));
        assert_eq!(s.push("an"), Scan::Continue(String::new()));
        assert_eq!(s.push("ce is Paris"), Scan::Stopped(String::new()));
    }

    #[test]
    fn held_text_that_does_not_become_a_stop_is_released() {
        let mut s = scanner(&["\n\n"]);
        assert_eq!(s.push("one\n"), Scan::Continue("one".into()));
        assert_eq!(s.push("two"), Scan::Continue("\ntwo".into()));
        assert_eq!(s.push("\n"), Scan::Continue(String::new()));
        assert_eq!(s.finish(), "\n");
    }

    #[test]
    fn the_earliest_of_several_stops_wins() {
        let mut s = scanner(&["Paris", "is"]);
        assert_eq!(s.push("It is Paris"), Scan::Stopped("It ".into()));
        let mut s = scanner(&["", "é!"]);
        assert_eq!(s.push("café"), Scan::Continue("caf".into()));
        assert_eq!(s.push("!"), Scan::Stopped(String::new()));
    }

    #[test]
    fn without_stops_everything_passes_through() {
        let mut s = scanner(&[]);
        assert_eq!(s.push("abc"), Scan::Continue("abc".into()));
        assert_eq!(s.finish(), "");
    }
}
