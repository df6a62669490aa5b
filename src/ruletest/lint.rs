//! Lint for rule files (`forewarn check`): findings that load fine but are
//! probably mistakes.
