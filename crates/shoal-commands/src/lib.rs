//! Command families (placeholder).
