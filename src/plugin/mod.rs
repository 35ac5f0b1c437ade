//! Plugins: layers named `plugin_NAME@module` living in the plugins base dir, shipped
//! as `.plugin` files that install with no network (reference B, DESIGN §5).
//!
//! - [`model`]: names, labels, the plugin files, metadata and hash, source-tree checks;
//! - [`config`]: the `config.ini` dialect, variants, `[general]`, the layering of the
//!   override files and the exported variables;
//! - [`environment`]: the plugin environment of `plugin env`, `plugin wrapper`, cron;
//! - [`cron`]: the plugin crontab blocks of `mfenv cron install|uninstall`;
//! - [`cron_context`]: the module context recorded for cron jobs, the `{{MFENV_BIN}}` and
//!   `{{MFENV_CRONWRAP}}` placeholders;
//! - [`archive`]: reading `.plugin` files: the whole-archive check and safe extraction;
//! - [`bootstrap`]: the embedded plugin templates and `plugin bootstrap`;
//! - [`release`]: building `.plugin` files (`.releaseignore`, reproducible output);
//! - [`make`]: `plugin make`: the python3 virtualenv in `local/` and `node_modules`;
//! - [`overrides`]: the OP override template and the baking done by repackage;
//! - [`manager`]: the plugins base dir: list, info, hash, install, uninstall, develop,
//!   provision, release, repackage;
//! - [`transaction`]: the journal that makes installs all or nothing across kills;
//! - [`hotswap`]: `plugin hotswap`: a new version with no lost request;
//! - [`lock`]: the plugin-management lock;
//! - [`table`], [`progress`]: terminal output helpers;
//! - [`cli`]: the `mfenv plugin …` commands (the edge).

pub mod archive;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod cron;
pub mod cron_context;
pub mod environment;
pub mod hotswap;
pub mod lock;
pub mod make;
pub mod manager;
pub mod model;
pub mod overrides;
pub mod progress;
pub mod release;
pub mod table;
pub mod transaction;
