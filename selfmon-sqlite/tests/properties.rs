//! Property: whatever the levels, deletions (retention) and page sizes, paging through a logs.db
//! returns every surviving record at or above the level exactly once, in id order, and the gaps
//! reported add up to the ids deleted before the cursor reached them.

use proptest::prelude::*;
use rusqlite::{params, Connection};
use selfmon_core::Level;
use selfmon_sqlite::{create_logs_table, LogSourceOptions, SqliteLogSource};

const LEVELS: [&str; 7] = [
    "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "warn", "BOGUS",
];

fn parsed(level: &str) -> Level {
    level.parse().unwrap_or(Level::Error)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn paging_reads_every_surviving_record_once_in_order(
        levels in proptest::collection::vec(0usize..LEVELS.len(), 0..120),
        deleted in proptest::collection::vec(any::<bool>(), 120),
        page_size in 1usize..40,
        min in 0usize..5,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        let conn = Connection::open(&path).unwrap();
        create_logs_table(&conn).unwrap();
        for (i, l) in levels.iter().enumerate() {
            conn.execute(
                "INSERT INTO logs (timestamp, level, message) VALUES ('t', ?1, ?2)",
                params![LEVELS[*l], format!("m{i}")],
            ).unwrap();
        }
        for (i, gone) in deleted.iter().enumerate().take(levels.len()) {
            if *gone {
                conn.execute("DELETE FROM logs WHERE id = ?1", [i as i64 + 1]).unwrap();
            }
        }
        let min_level = Level::ALL[min];
        let src = SqliteLogSource::open(&path, LogSourceOptions { page_size, min_level, ..LogSourceOptions::default() }).unwrap();

        let mut cursor = 0;
        let mut got = Vec::new();
        let mut gaps = 0;
        loop {
            let page = src.read_after_blocking(cursor, page_size).unwrap();
            prop_assert!(page.records.len() <= page_size);
            prop_assert!(page.scanned_through >= cursor);
            gaps += page.missing_before_first;
            for r in &page.records {
                prop_assert!(r.id > cursor && r.id <= page.scanned_through);
            }
            got.extend(page.records.iter().map(|r| r.id));
            if page.scanned_through == cursor {
                break;
            }
            cursor = page.scanned_through;
        }
        let want: Vec<i64> = levels
            .iter()
            .enumerate()
            .filter(|(i, l)| !deleted[*i] && parsed(LEVELS[**l]) >= min_level)
            .map(|(i, _)| i as i64 + 1)
            .collect();
        prop_assert_eq!(got, want);
        // Every deleted id below the last surviving one was seen as a gap at most once.
        let last_alive = (0..levels.len()).rev().find(|i| !deleted[*i]).map_or(0, |i| i + 1);
        let deleted_before_last = (0..last_alive).filter(|i| deleted[*i]).count() as u64;
        prop_assert!(gaps <= deleted_before_last);
    }
}
