//! Values users write — on the command line and in the configuration file — with their parsing
//! and defaults, in one place below every layer that reads them: retention spans and policies
//! (`snap forget`, `[retention]`), data subsets (`snap check`, `[check]`), repack limits and the
//! prune grace (`snap prune`, `[prune]`). The commands re-export them (`ops::forget::Policy`, …);
//! the configuration file (`config`) reads them without depending on the commands.

mod repack;
mod retention;
mod subset;

pub use repack::{DEFAULT_GRACE, RepackLimit};
pub use retention::{DEFAULT_KEEP_WITHIN, Policy, RetentionDuration};
pub use subset::DataSubset;
