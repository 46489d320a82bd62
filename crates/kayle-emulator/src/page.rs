//! Listings, newest first, one page after a cursor at a time, as the server pages them.

/// One page of a newest-first listing.
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

/// A record a listing pages over: newest first by creation time, then id.
pub(crate) trait Listed {
    fn order(&self) -> (i64, &str);
}

/// Newest first: created_at descending, then id descending.
pub(crate) fn newest_first(a: (i64, &str), b: (i64, &str)) -> std::cmp::Ordering {
    b.0.cmp(&a.0).then_with(|| b.1.cmp(a.1))
}

/// Pages `own` (every record the cursor may name) newest first, keeping those `keep` accepts.
/// An unknown cursor is ignored and page 1 comes back, as on the real server. For small sets
/// (one endpoint's keys, deliveries): it sorts them all.
pub(crate) fn paginate<T: Listed + Clone>(
    mut own: Vec<&T>,
    keep: impl Fn(&T) -> bool,
    limit: usize,
    starting_after: Option<&str>,
) -> Page<T> {
    own.sort_by(|a, b| newest_first(a.order(), b.order()));
    let start = starting_after
        .and_then(|cursor| own.iter().position(|r| r.order().1 == cursor))
        .map_or(0, |at| at + 1);
    page(own[start..].iter().copied(), keep, limit)
}

/// The first `limit` records of `newest_first` (the records after the cursor, newest first)
/// that `keep` accepts. Reads no further than the one record that says there are more, and
/// clones only the page's records.
pub(crate) fn page<'a, T: Listed + Clone + 'a>(
    newest_first: impl Iterator<Item = &'a T>,
    keep: impl Fn(&T) -> bool,
    limit: usize,
) -> Page<T> {
    let mut kept = newest_first.filter(|r| keep(r));
    let items: Vec<T> = kept.by_ref().take(limit).cloned().collect();
    let has_more = kept.next().is_some();
    let next_cursor = if has_more {
        items.last().map(|r| r.order().1.to_owned())
    } else {
        None
    };
    Page {
        items,
        has_more,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Record(i64, String);

    impl Listed for Record {
        fn order(&self) -> (i64, &str) {
            (self.0, &self.1)
        }
    }

    fn records(n: i64) -> Vec<Record> {
        (0..n).map(|i| Record(i, format!("r{i:05}"))).collect()
    }

    #[test]
    fn a_page_reads_its_records_and_one_more_whatever_the_listing_size() {
        let all = records(10_000);
        let mut read = 0;
        let page = page(
            all.iter().rev().inspect(|_| read += 1),
            |r: &Record| r.0 % 2 == 0,
            100,
        );
        // The page's 100, the 100 odd ones among them, then up to the next even one.
        assert_eq!(read, 202);
        assert_eq!(page.items.first(), Some(&all[9_998]));
        assert_eq!(page.items.len(), 100);
        assert!(page.has_more);
        assert_eq!(page.next_cursor.as_deref(), Some("r09800"));
    }

    #[test]
    fn the_last_page_has_no_cursor() {
        let all = records(5);
        let page = page(all.iter().rev(), |_: &Record| true, 5);
        assert_eq!(page.items.len(), 5);
        assert!(!page.has_more);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn paginate_starts_after_the_cursor_and_ignores_an_unknown_one() {
        let all = records(10);
        let own: Vec<&Record> = all.iter().collect();
        let second = paginate(own.clone(), |_| true, 3, Some("r00007"));
        assert_eq!(
            second.items,
            all[4..7].iter().rev().cloned().collect::<Vec<_>>()
        );
        assert_eq!(second.next_cursor.as_deref(), Some("r00004"));
        let first = paginate(own, |_| true, 3, Some("nope"));
        assert_eq!(first.items[0], all[9]);
    }

    #[test]
    fn an_endpoint_page_costs_the_page_whatever_the_organization_size() {
        use crate::store::{NewEndpoint, ORDER_READS, Store};
        let mut store = Store::default();
        let ids: Vec<String> = (0..10_000)
            .map(|i| {
                let new = NewEndpoint {
                    name: None,
                    labels: Vec::new(),
                    url: format!("https://example.com/{i}"),
                    enabled: true,
                    subscribed_event_types: Vec::new(),
                    undelivered_payload_retention_hours: 72,
                };
                store.create_endpoint("org", new).id
            })
            .collect();
        ORDER_READS.with(|reads| reads.set(0));
        let page = store.list_endpoints("org", None, 100, Some(&ids[5_000]));
        let reads = ORDER_READS.with(|reads| reads.get());
        assert_eq!(
            page.items.first().map(|e| e.id.as_str()),
            Some(ids[4_999].as_str())
        );
        assert_eq!(page.next_cursor.as_deref(), Some(ids[4_900].as_str()));
        assert!(
            reads < 100,
            "{reads} reads of the order for one page of 100"
        );
    }
}
