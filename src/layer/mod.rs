//! Layers: what they are on disk ([`model`]), how they are found ([`discover`]) and
//! how loads and unloads are planned ([`resolve`]).

pub mod discover;
pub mod model;
pub mod resolve;
