//! Colon-separated path lists (`PATH`, `PYTHONPATH`, …) as data.
//!
//! A [`PathList`] keeps every element exactly as found, including empty ones (an empty
//! element means "current directory" to most programs, so mfenv never adds one and never
//! drops one it did not add). The empty string is a list with no element, as in
//! layerapi2.
//!
//! Prepending an element that is already present moves it to the front (layerapi2's
//! `field_prepend`); the [`Prepend`] result says where it was, so that an unload can put
//! it back. Positions are counted from the end of the list: later loads and user edits
//! add to the front, so "how many elements followed it" survives them.

/// What a prepend did to the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepend {
    /// The element was not in the list: it was added.
    Added,
    /// The element was in the list (once or more): it was moved to the front. Each copy
    /// was followed by `from_ends[i]` elements, first copy first.
    Moved { from_ends: Vec<usize> },
}

/// An ordered list of path elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathList {
    elements: Vec<String>,
}

impl PathList {
    /// Splits `value` on `:`. The empty string gives an empty list.
    pub fn parse(value: &str) -> Self {
        if value.is_empty() {
            return PathList::default();
        }
        PathList {
            elements: value.split(':').map(str::to_owned).collect(),
        }
    }

    pub fn from_elements<I: IntoIterator<Item = S>, S: Into<String>>(elements: I) -> Self {
        PathList {
            elements: elements.into_iter().map(Into::into).collect(),
        }
    }

    pub fn elements(&self) -> &[String] {
        &self.elements
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    pub fn len(&self) -> usize {
        self.elements.len()
    }

    pub fn contains(&self, element: &str) -> bool {
        self.elements.iter().any(|existing| existing == element)
    }

    /// Joins the elements with `:`.
    pub fn join(&self) -> String {
        self.elements.join(":")
    }

    /// Puts `element` in front; an existing equal element is moved, never duplicated.
    ///
    /// An empty `element` is refused (it would mean "current directory"): the list is
    /// left as is and `None` is returned.
    pub fn prepend(&mut self, element: &str) -> Option<Prepend> {
        if element.is_empty() {
            return None;
        }
        let length = self.elements.len();
        let from_ends: Vec<usize> = self
            .elements
            .iter()
            .enumerate()
            .filter(|(_, e)| *e == element)
            .map(|(index, _)| length - index - 1)
            .collect();
        let outcome = if from_ends.is_empty() {
            Prepend::Added
        } else {
            self.elements.retain(|e| e != element);
            Prepend::Moved { from_ends }
        };
        self.elements.insert(0, element.to_owned());
        Some(outcome)
    }

    /// Removes every element equal to `element`; returns how many were removed.
    pub fn remove(&mut self, element: &str) -> usize {
        let before = self.elements.len();
        self.elements.retain(|e| e != element);
        before - self.elements.len()
    }

    /// Removes every element that lies strictly below `directory` (`directory/…`), the
    /// rule layerapi2 used to unload a layer. `directory` itself is kept, and characters
    /// in it are literal (layerapi2 treated `*` and `?` in a home as wildcards).
    pub fn remove_below(&mut self, directory: &str) -> usize {
        let before = self.elements.len();
        self.elements.retain(|e| {
            !(e.len() > directory.len()
                && e.starts_with(directory)
                && e.as_bytes()[directory.len()] == b'/')
        });
        before - self.elements.len()
    }

    /// Moves `element` back to the places recorded by [`Prepend::Moved`]: each copy so
    /// that as many elements follow it as did before (or to the front, if the list became
    /// shorter). Does nothing when `element` is no longer in the list (the user removed it).
    pub fn restore_positions(&mut self, element: &str, from_ends: &[usize]) {
        if !self.contains(element) {
            return;
        }
        self.elements.retain(|e| e != element);
        // Last copy first: each insertion then counts the copies already put back.
        for from_end in from_ends.iter().rev() {
            let index = self.elements.len().saturating_sub(*from_end);
            self.elements.insert(index, element.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepended(list: &str, element: &str) -> String {
        let mut list = PathList::parse(list);
        list.prepend(element);
        list.join()
    }

    #[test]
    fn prepending_follows_layerapi2_examples() {
        assert_eq!(prepended("foo:bar:foo2", "bar2"), "bar2:foo:bar:foo2");
        assert_eq!(prepended("foo:bar:foo2", "bar"), "bar:foo:foo2");
        assert_eq!(prepended("", "foo"), "foo");
        assert_eq!(prepended("foo:bar", ""), "foo:bar");
    }

    #[test]
    fn prepending_keeps_existing_empty_elements() {
        assert_eq!(prepended("a::b", "b"), "b:a:");
        assert_eq!(prepended(":a", "x"), "x::a");
    }

    #[test]
    fn parsing_the_empty_string_gives_no_element() {
        assert!(PathList::parse("").is_empty());
        assert_eq!(PathList::parse(":").len(), 2);
    }

    #[test]
    fn prepend_reports_the_position_from_the_end_of_a_moved_element() {
        let mut list = PathList::parse("/a:/h/bin:/usr/bin:/bin");
        assert_eq!(
            list.prepend("/h/bin"),
            Some(Prepend::Moved { from_ends: vec![2] })
        );
        assert_eq!(list.prepend("/new"), Some(Prepend::Added));
        assert_eq!(list.prepend(""), None);
    }

    #[test]
    fn restoring_a_moved_element_puts_it_back_even_after_more_prepends() {
        let mut list = PathList::parse("/a:/h/bin:/usr/bin");
        let Some(Prepend::Moved { from_ends }) = list.prepend("/h/bin") else {
            panic!("expected a move")
        };
        list.prepend("/x");
        list.restore_positions("/h/bin", &from_ends);
        assert_eq!(list.join(), "/x:/a:/h/bin:/usr/bin");
    }

    #[test]
    fn an_element_present_twice_comes_back_in_both_places() {
        let before = "/first:/h/bin:/usr/bin:/h/bin:/bin";
        let mut list = PathList::parse(before);
        let Some(Prepend::Moved { from_ends }) = list.prepend("/h/bin") else {
            panic!("expected a move")
        };
        assert_eq!(list.join(), "/h/bin:/first:/usr/bin:/bin");
        list.restore_positions("/h/bin", &from_ends);
        assert_eq!(list.join(), before);
    }

    #[test]
    fn restoring_an_element_the_user_removed_does_nothing() {
        let mut list = PathList::parse("/a:/b");
        list.restore_positions("/gone", &[1]);
        assert_eq!(list.join(), "/a:/b");
    }

    #[test]
    fn restoring_in_a_list_that_shrank_goes_to_the_front() {
        let mut list = PathList::parse("/h/bin:/a");
        list.restore_positions("/h/bin", &[5]);
        assert_eq!(list.join(), "/h/bin:/a");
    }

    #[test]
    fn removing_follows_layerapi2_examples() {
        let mut list = PathList::parse("foo:bar:foo2");
        assert_eq!(list.remove("bar"), 1);
        assert_eq!(list.join(), "foo:foo2");
        let mut list = PathList::parse("foo:bar:foo2");
        assert_eq!(list.remove("foofoo"), 0);
        assert_eq!(list.join(), "foo:bar:foo2");
    }

    #[test]
    fn removing_below_a_home_keeps_the_home_and_its_siblings() {
        let mut list = PathList::parse("/h/bin:/h:/h2/bin:/h/lib/x:/other");
        assert_eq!(list.remove_below("/h"), 2);
        assert_eq!(list.join(), "/h:/h2/bin:/other");
    }

    #[test]
    fn removing_below_treats_glob_characters_literally() {
        let mut list = PathList::parse("/a*/bin:/ab/bin");
        list.remove_below("/a*");
        assert_eq!(list.join(), "/ab/bin");
    }
}
