//! The server binary's tests, on real `switchboard` processes: online backup and restore,
//! a full disk, graceful shutdown, upload memory,
//! durable webhooks, erasure. One test binary (each file a module): every binary links RocksDB, so
//! fewer binaries build much faster. The three-node cluster test
//! (`tests/cluster.rs`) is a binary of its own, so it never shares the machine with these.

mod common;

mod backup;
mod disk_full;
mod erasure;
mod graceful_shutdown;
mod upload_memory;
mod webhooks;
