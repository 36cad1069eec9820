//! The server binary's tests, on real `switchboard` processes: online backup and restore,
//! a three-node cluster on NATS JetStream, a full disk, graceful shutdown, upload memory,
//! durable webhooks. One test binary (each file a module): every binary links RocksDB, so
//! fewer binaries build much faster.

mod common;

mod backup;
mod cluster;
mod disk_full;
mod graceful_shutdown;
mod upload_memory;
mod webhooks;
