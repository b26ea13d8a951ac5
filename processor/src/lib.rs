//! Farol's processing: parse log lines and posts, classify them, extract
//! hashtags, and count them in event-time base buckets with per-stream
//! watermarks. The core ([`processor::Processor`]) is synchronous and shared
//! by the streaming task ([`task`]) and batch mode.

pub mod class;
pub mod counters;
pub mod fleet;
pub mod hashtag;
pub mod logparse;
pub mod post;
pub mod processor;
pub mod task;
pub mod template;
pub mod timestamp;
pub mod window;
