//! Plugins: layers named `plugin_NAME@module` living in the plugins base dir, shipped
//! as `.plugin` files that install with no network (reference B, DESIGN §5).

pub mod config;
