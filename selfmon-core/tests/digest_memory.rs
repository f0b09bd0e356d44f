//! The digest's memory does not grow with the number of records: 1,000,000 records, many of them
//! never seen before, go through one builder while a counting allocator tracks live bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use selfmon_core::digest::DigestBuilder;
use selfmon_core::template::{Templater, TemplaterConfig};
use selfmon_core::{Level, LogRecord, SelfMonitoringConfig};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now =
                LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn word(mut n: u64) -> String {
    let mut s = String::new();
    for _ in 0..6 {
        s.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
    }
    s
}

/// Realistic messages with ids, paths and durations, plus one record in eight with words never seen
/// before (new signatures all the way through).
fn message(i: u64) -> String {
    match i % 8 {
        0 => format!(
            "[GIT-SYNC-001] clone of /repos/r{} failed after {} attempts",
            i % 97,
            i % 5
        ),
        1 => format!(
            "request {} GET /api/v1/jobs/{} took {}ms",
            i,
            i % 1000,
            i % 300
        ),
        2 => format!(
            "user u{} logged in from 10.0.{}.{}",
            i % 50,
            i % 250,
            i % 200
        ),
        3 => format!("Job {:08x}-aaaa-bbbb-cccc-{:012x} finished", i, i * 7),
        4 => format!("cache miss for key k{} in region eu-{}", i, i % 3),
        5 => format!("slow query took {}.{}s on table jobs", i % 20, i % 10),
        6 => format!("worker {} heartbeat ok", i % 16),
        _ => format!("novel {} {} {}", word(i), word(i / 3), word(i * 13)),
    }
}

fn push_range(b: &mut DigestBuilder, from: u64, to: u64) {
    for i in from..to {
        let level = if i % 5 == 0 {
            Level::Error
        } else {
            Level::Info
        };
        let mut r =
            LogRecord::new(i as i64 + 1, level, message(i)).with_source(format!("svc.m{}", i % 4));
        if i % 3 == 0 {
            r = r.with_correlation_id(format!("c{i}"));
        }
        b.push(&r);
    }
}

#[test]
fn a_million_records_fit_in_the_memory_of_the_first_hundred_thousand() {
    let config = SelfMonitoringConfig::default();
    let templater = Templater::with_config(TemplaterConfig {
        max_clusters: 2_000,
        ..TemplaterConfig::default()
    });
    let mut b = DigestBuilder::with_templater(&config, templater)
        .unwrap()
        .with_max_signatures(1_000);
    push_range(&mut b, 0, 100_000);
    let after_100k = PEAK.load(Ordering::Relaxed);
    push_range(&mut b, 100_000, 1_000_000);
    let after_1m = PEAK.load(Ordering::Relaxed);
    assert!(b.signature_count() <= 1_000);
    assert!(b.templater().cluster_count() <= 2_000);
    let d = b.finish();
    assert_eq!(d.records, 1_000_000);
    assert_eq!(
        d.signatures.iter().map(|s| s.count).sum::<u64>() + d.ignored_records,
        1_000_000
    );
    println!("peak live bytes: {after_100k} after 100k records, {after_1m} after 1M records");
    // Growth allowed: hash maps that were about to resize, and evictions that happen in batches.
    assert!(
        after_1m <= after_100k + after_100k / 2,
        "peak live memory grew from {after_100k} to {after_1m} bytes"
    );
}
