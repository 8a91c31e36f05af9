//! Health checking (issue 5). So far only the pure part: `state`, the rise/fall counter that
//! turns check results into up/down transitions exactly as HAProxy counts them. The checker
//! thread and its probes come next.

pub mod state;
