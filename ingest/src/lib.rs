//! Farol's sources: social feeds polled over HTTP, and files tailed line by line (log files and JSON-lines
//! post files), each with a checkpoint that only advances once the lines it
//! covers are durable downstream.

pub mod checkpoint;
pub mod feed;
pub mod fingerprint;
pub mod gz;
pub mod lines;
pub mod multiline;
pub mod tail;
