//! pipecrawl: a pipelined web crawler whose results are a database you can query.
//!
//! # Layout
//!
//! A crawl is four stages joined by bounded [`flume`] channels. A full channel makes its
//! producer wait, so a slow stage slows the ones before it instead of growing a queue.
//!
//! ```text
//!  store (frontier table) ──► Dispatcher ──jobs──► FetchPool ──fetched──► ParsePool ──records──► StoreWriter
//!        ▲                   (frontier window,     (tokio tasks,          (OS threads,          (one writer,
//!        │                    politeness)           one reqwest Client)    html5ever)            batched txns)
//!        └──────────── new frontier rows, committed with the page that found them ─────────────────┘
//! ```
//!
//! - [`frontier`]: the in-memory window of leased URLs, ordered by priority with per-host
//!   delay and concurrency limits; [`frontier::dispatcher`] leases rows from the store into
//!   it and hands them to the fetchers, and decides when the crawl is over.
//! - [`fetcher`]: one HTTP request per job; every outcome (a 404, a timeout) is a value.
//! - [`parser`]: title, links and anchor texts out of HTML; CPU work, so plain threads;
//!   [`html`] reads them from html5ever's tokens, in time linear in the page's size.
//! - [`store`]: SQLite schema, migrations, leasing, and the single batching writer.
//! - [`pipeline`]: the wiring of all of the above, in one place.
//!
//! The database is the truth: every known URL is a `frontier` row, and a page, its links,
//! the URLs it discovered and its own frontier row turning `done` commit in one
//! transaction. Memory only ever holds a bounded window of that table.

// The library's documentation is for those who work on the crawler, built with
// `cargo doc --document-private-items`, where links to private items resolve: its
// public items are public to the binary and the tests, not a published API.
#![allow(rustdoc::private_intra_doc_links)]

pub mod admin;
pub mod charset;
pub mod coding;
pub mod config;
pub mod cookies;
pub mod credentialed_seeds;
pub mod error;
pub mod export;
pub mod fetcher;
pub mod frontier;
pub mod gaps;
pub mod host_headers;
pub mod html;
pub mod invisible;
pub mod ipgate;
pub mod link_header;
pub mod metrics;
pub mod net_outage;
pub mod netguard;
pub mod page;
pub mod parser;
pub mod pipeline;
pub mod plural;
pub mod politeness;
pub mod progress;
pub mod query;
pub mod queue;
pub mod recrawl;
pub mod resumption;
pub mod retry;
pub mod robots;
pub mod scope;
pub mod seeds_file;
pub mod sitemap;
pub mod sniff;
pub mod stages;
pub mod store;
pub mod summary;
pub mod surt;
pub mod terminal;
#[cfg(test)]
mod testing;
pub mod traps;
pub mod urlnorm;
pub mod zone;

pub use config::Config;
pub use error::Error;
pub use pipeline::{crawl, serve};
pub use summary::Summary;
